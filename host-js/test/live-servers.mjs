// The JS hosts in the conformance matrix: run a command (the `conformance` binary) with
// `--live-js RUNTIMES --live-factory http://127.0.0.1:PORT` appended, where PORT is a
// small server factory on loopback that the runner asks for example servers:
//
//   POST /start {runtime, config}  -> {id, port}   start RUNTIME's example server on a
//                                                  random 127.0.0.1 port serving the
//                                                  deployment file CONFIG, with the test
//                                                  control channel on
//   POST /stop  {id}               -> {stopped}
//
// The runner starts one server per host and distinct vector config (see
// conformance/src/servers.rs); how each runtime's server is launched stays here
// (helpers.mjs RUNTIMES).
//
//   node host-js/test/live-servers.mjs node,deno,bun,workerd,workerd-lean -- target/debug/conformance --all
//
// Bounded: each server has 30 s to start and 5 s to stop; the command is killed after
// LIVE_SERVERS_TIMEOUT_S seconds (default 900). Servers never outlive this process.
import { spawn } from "node:child_process";
import { createServer } from "node:http";
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

const servers = new Map(); // id -> server
let nextId = 1;

function reply(res, status, value) {
  const body = Buffer.from(JSON.stringify(value));
  res.writeHead(status, { "content-type": "application/json", "content-length": body.length });
  res.end(body);
}

async function handle(path, body) {
  if (path === "/start") {
    if (!runtimes.includes(body.runtime)) return [400, { error: `runtime '${body.runtime}' was not requested (${runtimes.join(", ")})` }];
    if (typeof body.config !== "string") return [400, { error: "config must be a deployment file path" }];
    const srv = await startServer(body.runtime, { SWITCHBOARD_CONFIG: body.config, SWITCHBOARD_TEST_CONTROL: "1" });
    const id = nextId++;
    servers.set(id, srv);
    return [200, { id, port: srv.port }];
  }
  if (path === "/stop") {
    const srv = servers.get(body.id);
    if (!srv) return [404, { error: `no server ${body.id}` }];
    servers.delete(body.id);
    await srv.stop();
    return [200, { stopped: body.id }];
  }
  return [404, { error: `nothing at ${path}` }];
}

const factory = createServer((req, res) => {
  const chunks = [];
  req.on("data", (d) => chunks.push(d));
  req.on("end", async () => {
    try {
      const [status, value] = await handle(req.url, JSON.parse(Buffer.concat(chunks).toString("utf8") || "{}"));
      reply(res, status, value);
    } catch (e) {
      reply(res, 500, { error: String(e?.message ?? e) });
    }
  });
});

let status = 1;
try {
  await new Promise((resolve, reject) => {
    factory.once("error", reject);
    factory.listen(0, "127.0.0.1", resolve);
  });
  const url = `http://127.0.0.1:${factory.address().port}`;
  args.push("--live-js", runtimes.join(","), "--live-factory", url);
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
  factory.close();
  await Promise.all([...servers.values()].map((s) => s.stop()));
}
process.exit(status);
