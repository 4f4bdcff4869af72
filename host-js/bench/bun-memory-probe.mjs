// Where a Bun host's memory goes: the wsload deployment served by the Bun host, and on
// PORT+1000 a JSON answer with the wasm memory's size, JavaScriptCore's heap statistics
// (after a full GC) and the RSS. Not a test: a probe for BENCHMARKS.md ("Idle memory:
// where a Bun host's connection goes").
//   SWITCHBOARD_CONFIG=host-js/bench/wsload-deployment.json PORT=9301 [SWITCHBOARD_WARMUP=0] \
//     host-js/node_modules/.bin/bun host-js/bench/bun-memory-probe.mjs
//   curl -s 127.0.0.1:10301      (before and after a wsload idle run against port 9301)
import { heapStats } from "bun:jsc";
import { readDeployment, serveBun } from "../js/bun.js";
import * as wasm from "../pkg/switchboard_wasm.js";

const port = Number(process.env.PORT ?? 9301);
const { config } = readDeployment(process.env.SWITCHBOARD_CONFIG, process.env);
const srv = await serveBun({ config, port, warmUp: process.env.SWITCHBOARD_WARMUP !== "0" });
// initSync returns the instance serveBun created (the module is instantiated once).
const exports = wasm.initSync({ module: new Uint8Array(0) });

function snapshot() {
  Bun.gc(true);
  const h = heapStats();
  return {
    connections: srv.host.conns.size,
    wasmMemory: exports.memory.buffer.byteLength,
    heapSize: h.heapSize,
    extraMemorySize: h.extraMemorySize,
    objectCount: h.objectCount,
    rss: process.memoryUsage().rss,
    objectTypeCounts: h.objectTypeCounts,
  };
}
Bun.serve({ hostname: "127.0.0.1", port: port + 1000, fetch: () => Response.json(snapshot()) });
console.log(`memory probe: websocket on ${port}, figures on ${port + 1000}`);
