// The Socket.IO compliance application as a Worker: one Durable Object runs the engine
// with the application's handlers. Local run: PORT=3000 node host-js/examples/socketio-compliance/cloudflare.mjs
import { SwitchboardDurableObject, createWorker } from "../../js/cloudflare.js";
import { handlers } from "./app.mjs";

export class Switchboard extends SwitchboardDurableObject {
  get handlers() {
    return handlers;
  }
}

export default createWorker({ binding: "SWITCHBOARD" });
