// The JS Host's own cost per input, without sockets: js/core.js's Host with the real wasm
// engine and sockets whose send() only counts. Measures what one frame costs from
// Host.message() to the last socket.send() (engine call, batch decode, per-recipient
// bookkeeping), in CPU time where the runtime reports it, so a loaded machine changes the
// figures less than wall-clock throughput.
//   node host-js/bench/host-bench.mjs [HOST_JS_DIR]
//   host-js/node_modules/.bin/bun host-js/bench/host-bench.mjs [HOST_JS_DIR]
// HOST_JS_DIR (default: this tree's host-js) lets the same bench drive another checkout's
// js/ + pkg/ (e.g. the branch point) for a before/after comparison in one session.
// Prints one JSON line per workload: ping (one connection, `ping` → `pong`) and
// publish1k (1000 subscribers of a channel, one `publish` → 1000 deliveries + reply).
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";

const args = typeof Deno !== "undefined" ? Deno.args : typeof Bun !== "undefined" ? Bun.argv.slice(2) : process.argv.slice(2);
const dir = args[0] ? pathToFileURL(args[0].replace(/\/?$/, "/")).href : new URL("../", import.meta.url).href;
const { initWasm, Host } = await import(new URL("js/core.js", dir).href);
initWasm(readFileSync(new URL("pkg/switchboard_wasm_bg.wasm", dir)));
const runtime = typeof Deno !== "undefined" ? "deno" : typeof Bun !== "undefined" ? "bun" : "node";
const seconds = Number((typeof process !== "undefined" ? process.env.BENCH_SECONDS : undefined) ?? 2);

const cpuNow =
  typeof process !== "undefined" && typeof process.cpuUsage === "function" && typeof Deno === "undefined"
    ? () => {
        const u = process.cpuUsage();
        return (u.user + u.system) / 1e6;
      }
    : () => performance.now() / 1000;

const config = {
  heartbeatInterval: 30000,
  heartbeatTimeout: 10000,
  rateLimit: { enabled: false },
  limits: { maxConnections: 100000, maxConnectionsPerIp: 0, maxBufferedBytes: 16777216, slowConsumer: "drop" },
  routes: [{ path: "/" }],
  auth: { required: false },
  resources: { bench: { publish: true } },
};
let sent = 0;
const socket = { send: () => void sent++, ping() {}, close() {}, buffered: () => 0 };

function hostWith(n) {
  const host = new Host({ config, seed: 1n, log: () => {} });
  for (let i = 0; i < n; i++) {
    const d = host.open({ path: "/", query: "", headers: [], peer: "127.0.0.1" });
    host.attach(d.conn, socket);
  }
  return host;
}

function time(f) {
  for (let i = 0; i < 200; i++) f();
  const t0 = cpuNow();
  let ops = 0;
  for (;;) {
    for (let i = 0; i < 100; i++) f();
    ops += 100;
    const t = cpuNow() - t0;
    if (t >= seconds) return [ops, t];
  }
}

function report(workload, [ops, secs], deliveries) {
  console.log(JSON.stringify({ runtime, dir: args[0] ?? "host-js", workload, ops, cpuSeconds: +secs.toFixed(3), usPerOp: +((secs * 1e6) / ops).toFixed(3), usPerDelivery: +((secs * 1e6) / (ops * deliveries)).toFixed(4) }));
}

let host = hostWith(1);
const PING = '{"type":"ping","requestId":"r1"}';
report("ping", time(() => host.message(1, PING)), 1);
host.free();

host = hostWith(1001);
for (let c = 2; c <= 1001; c++) host.message(c, '{"type":"subscribe","requestId":"s","channel":"bench"}');
const PUB = '{"type":"publish","requestId":"p","channel":"bench","message":{"room":"a","seq":1,"ts":1}}';
sent = 0;
report("publish1k", time(() => host.message(1, PUB)), 1000);
host.free();
