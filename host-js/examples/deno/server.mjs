// The demo deployment on Deno:
//   PORT=4002 host-js/node_modules/.bin/deno run --allow-net=127.0.0.1 --allow-read --allow-env host-js/examples/deno/server.mjs
// (build first: bash host-js/build.sh). Same environment variables as the Node example.
import { testControlEnabled } from "../../js/test-control.js";
import { readDeployment, serveDeno } from "../../js/deno.js";

const env = Deno.env.toObject();
const path = env.SWITCHBOARD_CONFIG ?? new URL("../../../examples/demo.json", import.meta.url).pathname;
const { config, warnings } = readDeployment(path, env);
for (const w of warnings) console.error(`WARNING: ${w}`);
// SWITCHBOARD_TEST_CONTROL=1: the test control channel (conformance runs only; never in production).
const testControl = testControlEnabled(env);
if (testControl) console.error("WARNING: TEST CONTROL CHANNEL ENABLED (SWITCHBOARD_TEST_CONTROL=1): anyone reaching /__switchboard/test can reset the engine; tests only");
const srv = await serveDeno({ config, port: Number(env.PORT ?? 3001), hostname: env.HOST ?? "127.0.0.1", testControl, warmUp: env.SWITCHBOARD_WARMUP !== "0" });
console.log(`switchboard (deno ${Deno.version.deno}, wasm engine) listening on http://127.0.0.1:${srv.port} (config ${path}; routes ${config.routes.map((r) => r.path).join(" ")}; memory store)`);

let stopping = false;
for (const sig of ["SIGINT", "SIGTERM"]) {
  Deno.addSignalListener(sig, async () => {
    if (stopping) return;
    stopping = true;
    await srv.close("server shutting down");
    Deno.exit(0);
  });
}
