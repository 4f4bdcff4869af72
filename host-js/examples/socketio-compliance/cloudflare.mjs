// The Socket.IO compliance application on workerd (Cloudflare's runtime) through miniflare
// (build first: bash host-js/build.sh):
//   PORT=3000 node host-js/examples/socketio-compliance/cloudflare.mjs
import { fileURLToPath } from "node:url";
import { Miniflare } from "miniflare";
import { config } from "./app.mjs";

const hostJs = fileURLToPath(new URL("../../", import.meta.url));
const mf = new Miniflare({
  host: process.env.HOST ?? "127.0.0.1",
  port: Number(process.env.PORT ?? 3000),
  modules: true,
  scriptPath: fileURLToPath(new URL("./worker.mjs", import.meta.url)),
  modulesRoot: hostJs,
  modulesRules: [
    { type: "ESModule", include: ["**/*.js", "**/*.mjs"] },
    { type: "CompiledWasm", include: ["**/*.wasm"] },
  ],
  compatibilityDate: "2026-04-01",
  durableObjects: { SWITCHBOARD: "Switchboard" },
  // The Worker relays the sockets (SWITCHBOARD_RELAY=0 to return the Durable Object's
  // sockets directly): the suites close silent sessions (a missed pong, no CONNECT), and
  // workerd ends the TCP connection of such a hibernatable socket only once the object is
  // idle (host-js/README.md, "Closing silent sockets on workerd"). SWITCHBOARD_HIBERNATION=0
  // accepts the sockets without the Hibernation API instead.
  bindings: {
    SWITCHBOARD_CONFIG: JSON.stringify(config),
    SWITCHBOARD_RELAY: process.env.SWITCHBOARD_RELAY ?? "1",
    SWITCHBOARD_HIBERNATION: process.env.SWITCHBOARD_HIBERNATION ?? "1",
  },
});
const url = await mf.ready;
console.log(`listening on 127.0.0.1:${url.port}`);
for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, async () => { await mf.dispose(); process.exit(0); });
