// Start the JS example servers (the demo deployment) on random 127.0.0.1 ports, run a
// command with one `--live-url RUNTIME=ws://127.0.0.1:PORT` argument per server appended,
// then stop the servers and exit with the command's status. scripts/conformance.sh uses
// it to put every JS host into the conformance matrix:
//
//   node host-js/test/live-servers.mjs node,deno,bun,workerd -- target/debug/conformance --all
//
// Bounded: each server has 30 s to start and 5 s to stop; the command is killed after
// LIVE_SERVERS_TIMEOUT_S seconds (default 900). Servers never outlive this process.
import { spawn } from "node:child_process";
import { RUNTIMES, startServer } from "./helpers.mjs";

const argv = process.argv.slice(2);
const sep = argv.indexOf("--");
if (sep !== 1 || argv.length < 3) {
  console.error("usage: node live-servers.mjs RUNTIME[,RUNTIME...] -- COMMAND [ARGS...]");
  process.exit(2);
}
const runtimes = argv[0].split(",").filter(Boolean);
for (const r of runtimes) {
  if (!RUNTIMES[r]) {
    console.error(`live-servers: unknown runtime '${r}' (known: ${Object.keys(RUNTIMES).join(", ")})`);
    process.exit(2);
  }
}
const [cmd, ...args] = argv.slice(2);

const servers = [];
let status = 1;
try {
  for (const r of runtimes) {
    const srv = await startServer(r);
    servers.push(srv);
    console.log(`live:${r}: example server at ${srv.url}`);
    args.push("--live-url", `${r}=${srv.url}`);
  }
  status = await new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: "inherit" });
    const limit = Number(process.env.LIVE_SERVERS_TIMEOUT_S ?? 900) * 1000;
    const timer = setTimeout(() => {
      console.error(`live-servers: ${cmd} still running after ${limit / 1000} s; killing it`);
      child.kill("SIGKILL");
    }, limit);
    child.once("error", (e) => {
      clearTimeout(timer);
      console.error(`live-servers: cannot run ${cmd}: ${e.message}`);
      resolve(2);
    });
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      resolve(code ?? (signal ? 1 : 0));
    });
  });
} catch (e) {
  console.error(`live-servers: ${e.message}`);
  status = 2;
} finally {
  await Promise.all(servers.map((s) => s.stop()));
}
process.exit(status);
