// The demo deployment on Bun:   PORT=4003 host-js/node_modules/.bin/bun host-js/examples/bun/server.mjs
// (build first: bash host-js/build.sh). Same environment variables as the Node example.
import { testControlEnabled } from "../../js/test-control.js";
import { readDeployment, serveBun } from "../../js/bun.js";

const path = process.env.SWITCHBOARD_CONFIG ?? new URL("../../../examples/demo.json", import.meta.url).pathname;
const { config, warnings } = readDeployment(path, process.env);
for (const w of warnings) console.error(`WARNING: ${w}`);
// SWITCHBOARD_TEST_CONTROL=1: the test control channel (conformance runs only; never in production).
const testControl = testControlEnabled(process.env);
if (testControl) console.error("WARNING: TEST CONTROL CHANNEL ENABLED (SWITCHBOARD_TEST_CONTROL=1): anyone reaching /__switchboard/test can reset the engine; tests only");
const srv = await serveBun({ config, port: Number(process.env.PORT ?? 3001), hostname: process.env.HOST ?? "127.0.0.1", testControl, warmUp: process.env.SWITCHBOARD_WARMUP !== "0" });
console.log(`switchboard (bun ${Bun.version}, wasm engine) listening on http://127.0.0.1:${srv.port} (config ${path}; routes ${config.routes.map((r) => r.path).join(" ")}; memory store)`);

let stopping = false;
for (const sig of ["SIGINT", "SIGTERM"]) {
  process.on(sig, async () => {
    if (stopping) return;
    stopping = true;
    await srv.close("server shutting down");
    process.exit(0);
  });
}
