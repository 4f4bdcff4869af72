// The Socket.IO compliance application on Deno (build first: bash host-js/build.sh):
//   PORT=3000 host-js/node_modules/.bin/deno run --allow-net=127.0.0.1 --allow-read --allow-env host-js/examples/socketio-compliance/deno.mjs
import { serveDeno } from "../../js/deno.js";
import { config, handlers } from "./app.mjs";

const env = Deno.env.toObject();
const srv = await serveDeno({ config, handlers, port: Number(env.PORT ?? 3000), hostname: env.HOST ?? "127.0.0.1" });
console.log(`listening on 127.0.0.1:${srv.port}`);
for (const sig of ["SIGINT", "SIGTERM"]) Deno.addSignalListener(sig, async () => { await srv.close(); Deno.exit(0); });
