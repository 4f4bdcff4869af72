// The Socket.IO compliance application on Bun (build first: bash host-js/build.sh):
//   PORT=3000 host-js/node_modules/.bin/bun host-js/examples/socketio-compliance/bun.mjs
import { serveBun } from "../../js/bun.js";
import { config, handlers } from "./app.mjs";

const srv = await serveBun({ config, handlers, port: Number(process.env.PORT ?? 3000), hostname: process.env.HOST ?? "127.0.0.1" });
console.log(`listening on 127.0.0.1:${srv.port}`);
for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, async () => { await srv.close(); process.exit(0); });
