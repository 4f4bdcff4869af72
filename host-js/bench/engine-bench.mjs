// Engine throughput in wasm, on the same frames and workloads as the native baseline
// (host-js/examples/native_bench.rs). Runs under Node, Deno and Bun:
//   node host-js/bench/engine-bench.mjs
//   host-js/node_modules/.bin/deno run --allow-read --allow-env host-js/bench/engine-bench.mjs
//   host-js/node_modules/.bin/bun host-js/bench/engine-bench.mjs
// Paths: "batch" = one wasm call returning the batch string (the native "batch" path
// plus the JS crossing); "host" = + decoding the batch header and slicing the frames,
// what js/core.js does before writing to sockets. Prints one JSON line per measurement.
import { readFileSync } from "node:fs";
import { initWasm, wasm, decodeOps } from "../js/core.js";

// BENCH_WASM=path benchmarks another build of the module (same wasm-bindgen version).
const env = (k) => (typeof Deno !== "undefined" ? Deno.env.get(k) : process.env[k]);
initWasm(readFileSync(env("BENCH_WASM") ?? new URL("../pkg/switchboard_wasm_bg.wasm", import.meta.url)));
const runtime = typeof Deno !== "undefined" ? "deno" : typeof Bun !== "undefined" ? "bun" : "node";
const budget = Number(env("BENCH_SECONDS") ?? 2);

const NOW = 1_700_000_000_000;
const CONFIG = '{"resources":{"messages":{}},"rateLimit":{"enabled":false},"limits":{"maxConnections":100000,"maxConnectionsPerIp":0}}';
const PING = '{"type":"ping","requestId":1}';
const SUB = '{"type":"subscribe","resource":"messages"}';
const CHANGE = '{"command":"resourceChanged","resource":"messages","event":"insert","record":{"id":"m1","channel":"general","text":"hello","createdAt":"2024-01-15T10:31:00.000Z","updatedAt":"2024-01-15T10:31:00.000Z"}}';

function engineWith(n) {
  const e = new wasm.Engine(CONFIG, 1n, true);
  for (let c = 1; c <= n; c++) {
    e.open(NOW, c, JSON.stringify({ path: "/", peer: "127.0.0.1", clientId: `c${c}` }));
    e.frame(NOW, c, SUB);
  }
  return e;
}

// CPU time of this process where the runtime reports it (Node, Bun; Deno has
// Deno.cpuUsage? no: wall time there), so a shared, loaded machine changes the figures less.
const cpuNow =
  typeof process !== "undefined" && typeof process.cpuUsage === "function" && typeof Deno === "undefined"
    ? () => {
        const u = process.cpuUsage();
        return (u.user + u.system) / 1e6;
      }
    : () => performance.now() / 1000;

function time(seconds, f) {
  for (let i = 0; i < 1000; i++) f();
  const t0 = cpuNow();
  let ops = 0;
  for (;;) {
    for (let i = 0; i < 1000; i++) f();
    ops += 1000;
    const t = cpuNow() - t0;
    if (t >= seconds) return [ops, t];
  }
}

function report(workload, path, [ops, secs], recipients) {
  console.log(JSON.stringify({ runtime, workload, path, ops, seconds: +secs.toFixed(4), opsPerSec: Math.round(ops / secs), deliveriesPerSec: Math.round((ops * recipients) / secs) }));
}

let sink = 0;
let e = engineWith(1);
report("ping", "batch", time(budget, () => (sink += e.frame(NOW, 1, PING).length)), 1);
report("ping", "host", time(budget, () => {
  const batch = e.frame(NOW, 1, PING);
  const { ops, base } = decodeOps(batch); // [deadline, OP_SEND, conn, start, end]
  sink += batch.slice(base + ops[3], base + ops[4]).length;
}), 1);
e.free();

e = engineWith(1000);
report("fanout1k", "batch", time(budget, () => (sink += e.command(NOW, 1, CHANGE).length)), 1000);
report("fanout1k", "host", time(budget, () => {
  const batch = e.command(NOW, 1, CHANGE);
  const { ops, base } = decodeOps(batch);
  const i = ops.indexOf(2, 1); // OP_SEND_MANY, n, start, end (the only op of this batch)
  const rc = e.recipients();
  sink += batch.slice(base + ops[i + 2], base + ops[i + 3]).length + rc[ops[i + 1] - 1];
}), 1000);
e.free();
if (sink === 42) console.log("");
