// The Worker module: routes to one Durable Object that runs the engine (see js/cloudflare.js).
// Local run (workerd via miniflare):  PORT=4004 node host-js/examples/cloudflare/run.mjs
// Deploy: wrangler deploy -c host-js/examples/cloudflare/wrangler.toml (not exercised here).
import { SwitchboardDurableObject, createWorker } from "../../js/cloudflare.js";

export class Switchboard extends SwitchboardDurableObject {}

export default createWorker({ binding: "SWITCHBOARD" });
