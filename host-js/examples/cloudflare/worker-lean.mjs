// The example Worker with the lean module (no JSON Schema validation; under 1 MiB
// gzipped): the same as worker.mjs, importing js/cloudflare-lean.js.
// Local run (workerd via miniflare):  SWITCHBOARD_MODULE=lean PORT=4004 node host-js/examples/cloudflare/run.mjs
import { SwitchboardDurableObject, createWorker } from "../../js/cloudflare-lean.js";

export class Switchboard extends SwitchboardDurableObject {}

export default createWorker({ binding: "SWITCHBOARD" });
