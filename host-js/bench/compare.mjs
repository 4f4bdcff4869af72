// Engine throughput, wasm (Node, Deno, Bun) vs native, on the same frames:
//   node host-js/bench/compare.mjs [rounds=3] [seconds=2]
// Needs: bash host-js/build.sh and
//   cargo build --release -p switchboard-host-js --example native_bench
// Runs every runtime `rounds` times, interleaved (the machine is shared: best of N),
// and prints a Markdown table; ratios are against the native "batch" path.
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { join } from "node:path";

const hostJs = fileURLToPath(new URL("../", import.meta.url));
const root = join(hostJs, "..");
const rounds = Number(process.argv[2] ?? 3);
const seconds = process.argv[3] ?? "2";
const env = { ...process.env, BENCH_SECONDS: seconds };
const bench = join(hostJs, "bench/engine-bench.mjs");
const cmds = {
  native: [join(root, process.env.CARGO_TARGET_DIR ?? "target", "release/examples/native_bench"), []],
  node: [process.execPath, [bench]],
  deno: [join(hostJs, "node_modules/.bin/deno"), ["run", "--allow-read", "--allow-env", bench]],
  bun: [join(hostJs, "node_modules/.bin/bun"), [bench]],
};
const best = new Map();
for (let r = 0; r < rounds; r++) {
  for (const [name, [cmd, args]] of Object.entries(cmds)) {
    const out = execFileSync(cmd, args, { env, encoding: "utf8", timeout: 120000 });
    for (const line of out.split("\n").filter(Boolean)) {
      const m = JSON.parse(line);
      const k = `${m.runtime}|${m.workload}|${m.path}`;
      if (!best.has(k) || best.get(k).opsPerSec < m.opsPerSec) best.set(k, m);
    }
  }
}
const get = (rt, w, p) => best.get(`${rt}|${w}|${p}`);
const fmt = (n) => (n >= 1e6 ? `${(n / 1e6).toFixed(2)} M` : `${(n / 1e3).toFixed(0)} k`);
console.log(`| runtime | path | ping frames/s | × native | fan-out 1k: inputs/s (deliveries/s) | × native |`);
console.log(`|---|---|---|---|---|---|`);
const nPing = get("native", "ping", "batch").opsPerSec;
const nFan = get("native", "fanout1k", "batch").opsPerSec;
for (const rt of ["native", "node", "deno", "bun"]) {
  for (const p of rt === "native" ? ["engine", "batch"] : ["batch", "host"]) {
    const a = get(rt, "ping", p);
    const b = get(rt, "fanout1k", p);
    console.log(`| ${rt} | ${p} | ${fmt(a.opsPerSec)} | ${(a.opsPerSec / nPing).toFixed(2)} | ${fmt(b.opsPerSec)} (${fmt(b.deliveriesPerSec)}) | ${(b.opsPerSec / nFan).toFixed(2)} |`);
  }
}
