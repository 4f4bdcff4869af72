// The demo deployment on Node:   PORT=4001 node host-js/examples/node/server.mjs
// (build first: bash host-js/build.sh). SWITCHBOARD_CONFIG=path.json serves another
// deployment document; SWITCHBOARD_JWT_SECRET / SWITCHBOARD_ADMIN_KEY override secrets;
// SWITCHBOARD_TEST_CONTROL=1 enables the test control channel (tests only).
import { testControlEnabled } from "../../js/test-control.js";
import { readDeployment, serveNode } from "../../js/node.js";

const path = process.env.SWITCHBOARD_CONFIG ?? new URL("../../../examples/demo.json", import.meta.url).pathname;
const { config, warnings } = readDeployment(path, process.env);
for (const w of warnings) console.error(`WARNING: ${w}`);
// SWITCHBOARD_TEST_CONTROL=1: the test control channel (conformance runs only; never in production).
const testControl = testControlEnabled(process.env);
if (testControl) console.error("WARNING: TEST CONTROL CHANNEL ENABLED (SWITCHBOARD_TEST_CONTROL=1): anyone reaching /__switchboard/test can reset the engine; tests only");
const srv = await serveNode({ config, port: Number(process.env.PORT ?? 3001), hostname: process.env.HOST ?? "127.0.0.1", testControl, warmUp: process.env.SWITCHBOARD_WARMUP !== "0" });
console.log(`switchboard (node ${process.version}, wasm engine) listening on http://127.0.0.1:${srv.port} (config ${path}; routes ${config.routes.map((r) => r.path).join(" ")}; memory store)`);

let stopping = false;
for (const sig of ["SIGINT", "SIGTERM"]) {
  process.on(sig, async () => {
    if (stopping) return;
    stopping = true;
    await srv.close("server shutting down");
    process.exit(0);
  });
}
