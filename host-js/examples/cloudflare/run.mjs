// The demo deployment on workerd (Cloudflare's runtime) through miniflare:
//   PORT=4004 node host-js/examples/cloudflare/run.mjs
// (build first: bash host-js/build.sh). SWITCHBOARD_CONFIG=path.json serves another
// deployment; SWITCHBOARD_MODULE=lean runs worker-lean.mjs (the lean module, without JSON
// Schema); SWITCHBOARD_TEST_HOOKS=1 enables /__test/* and
// SWITCHBOARD_TEST_CONTROL=1 the test control channel (tests only); SWITCHBOARD_HIBERNATION=0
// accepts sockets without the Hibernation API, SWITCHBOARD_RELAY=1 relays them through the
// Worker (host-js/README.md, "Closing silent sockets on workerd").
//
// The lean module refuses a deployment with `schema`. The demo validates `messages` with
// one, so with SWITCHBOARD_MODULE=lean and no SWITCHBOARD_CONFIG this serves the demo
// without its resource schemas and says so: records there are not validated. (An
// explicit SWITCHBOARD_CONFIG is served as written, and refused if it has a schema.)
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Miniflare } from "miniflare";

const module = process.env.SWITCHBOARD_MODULE ?? "full";
if (module !== "full" && module !== "lean") {
  console.error(`SWITCHBOARD_MODULE must be "full" or "lean", got "${module}"`);
  process.exit(2);
}
const lean = module === "lean";

const hostJs = fileURLToPath(new URL("../../", import.meta.url));
const configPath = process.env.SWITCHBOARD_CONFIG ?? fileURLToPath(new URL("../../../examples/demo.json", import.meta.url));
let configText = readFileSync(configPath, "utf8");
let note = "";
if (lean && !process.env.SWITCHBOARD_CONFIG) {
  const doc = JSON.parse(configText);
  const stripped = Object.entries(doc.resources ?? {}).filter(([, r]) => r && typeof r === "object" && "schema" in r);
  for (const [, r] of stripped) delete r.schema;
  configText = JSON.stringify(doc);
  if (stripped.length) {
    note = `; the lean module has no JSON Schema validation, so this is the demo without ${stripped.map(([n]) => `resources.${n}.schema`).join(", ")}: those records are not validated`;
  }
}
const bindings = { SWITCHBOARD_CONFIG: configText };
for (const k of ["SWITCHBOARD_JWT_SECRET", "SWITCHBOARD_ADMIN_KEY", "SWITCHBOARD_TEST_HOOKS", "SWITCHBOARD_TEST_CONTROL", "SWITCHBOARD_HIBERNATION", "SWITCHBOARD_RELAY"]) {
  if (process.env[k]) bindings[k] = process.env[k];
}

const mf = new Miniflare({
  host: process.env.HOST ?? "127.0.0.1",
  port: Number(process.env.PORT ?? 3001),
  modules: true,
  scriptPath: fileURLToPath(new URL(lean ? "./worker-lean.mjs" : "./worker.mjs", import.meta.url)),
  modulesRoot: hostJs,
  // wasm-bindgen emits ESM .js (miniflare's default rule says CommonJS); the .wasm is
  // imported precompiled (workerd forbids compiling wasm from bytes at run time).
  modulesRules: [
    { type: "ESModule", include: ["**/*.js", "**/*.mjs"] },
    { type: "CompiledWasm", include: ["**/*.wasm"] },
  ],
  compatibilityDate: "2026-04-01",
  durableObjects: { SWITCHBOARD: "Switchboard" },
  bindings,
});
const url = await mf.ready;
console.log(`switchboard (workerd via miniflare, ${module} wasm engine in a Durable Object) listening on http://127.0.0.1:${url.port} (config ${configPath}${note})`);

let stopping = false;
for (const sig of ["SIGINT", "SIGTERM"]) {
  process.on(sig, async () => {
    if (stopping) return;
    stopping = true;
    await mf.dispose();
    process.exit(0);
  });
}
