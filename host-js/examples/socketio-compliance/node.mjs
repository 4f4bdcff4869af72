// The Socket.IO compliance application on Node (build first: bash host-js/build.sh):
//   PORT=3000 node host-js/examples/socketio-compliance/node.mjs
// PORT=0 picks a free port; the banner line names it.
import { serveNode } from "../../js/node.js";
import { config, handlers } from "./app.mjs";

const srv = await serveNode({
  config,
  handlers,
  port: Number(process.env.PORT ?? 3000),
  hostname: process.env.HOST ?? "127.0.0.1",
});
console.log(`listening on 127.0.0.1:${srv.port}`);
for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, async () => { await srv.close(); process.exit(0); });
