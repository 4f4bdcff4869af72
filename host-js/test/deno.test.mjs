// End-to-end tests of the deno host (examples/deno/server.mjs) over real sockets.
import { runtimeSuite } from "./suite.mjs";

runtimeSuite("deno", { pings: "idle" });
