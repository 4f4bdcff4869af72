// What one client frame costs at the wasm boundary, in process (no sockets): a `ping`
// through Host.message, through engine.frame (the batch as a string) and through
// engine.frameView + Host.readView (the batch read from wasm memory), plus the cost of a
// string returned from wasm at all (version()). Wall-clock ns per call, 3 rounds.
//   node host-js/bench/crossing-bench.mjs          (bun / deno run --allow-read the same)
import { readFileSync } from "node:fs";

const dir = new URL("../", import.meta.url);
const { initWasm, Host, engineVersion } = await import(new URL("js/core.js", dir).href);
initWasm(readFileSync(new URL("pkg/switchboard_wasm_bg.wasm", dir)));
const runtime = typeof Deno !== "undefined" ? "deno" : typeof Bun !== "undefined" ? "bun" : "node";
const config = {
  heartbeatInterval: 30000,
  heartbeatTimeout: 10000,
  rateLimit: { enabled: false },
  limits: { maxConnections: 100000, maxConnectionsPerIp: 0 },
  routes: [{ path: "/" }],
  auth: { required: false },
};
const host = new Host({ config, seed: 1n, log: () => {} });
const d = host.open({ path: "/", query: "", headers: [], peer: "127.0.0.1" });
host.attach(d.conn, { send() {}, ping() {}, close() {}, buffered: () => 0 });
const { conn } = d;
const engine = host.engine;
const PING = '{"type":"ping","requestId":"r123456"}';
const now = Date.now();

function ns(f, n = 2e6) {
  for (let i = 0; i < 1e5; i++) f();
  const t = performance.now();
  for (let i = 0; i < n; i++) f();
  return Math.round(((performance.now() - t) / n) * 1e6);
}
for (let round = 1; round <= 3; round++) {
  console.log(
    JSON.stringify({
      runtime,
      round,
      hostMessage: ns(() => host.message(conn, PING)),
      engineFrame: ns(() => engine.frame(now, conn, PING)),
      engineFrameView: ns(() => engine.frameView(now, conn, PING)),
      frameViewAndRead: ns(() => host.readView(engine.frameView(now, conn, PING))),
      stringOut: ns(() => engineVersion()),
    }),
  );
}
