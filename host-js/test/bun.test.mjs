// End-to-end tests of the bun host (examples/bun/server.mjs) over real sockets.
import { runtimeSuite } from "./suite.mjs";

runtimeSuite("bun", { pings: "socket" });
