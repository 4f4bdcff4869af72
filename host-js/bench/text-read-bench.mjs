// One frame's text read from a WebAssembly.Memory: TextDecoder.decode over a subarray (what
// js/batch.js did before) against Buffer's readers over one view of the memory (what it does
// now: Buffer#toString("utf8", start, end)). ns per read of a 60-byte text, 3 M reads.
//   node host-js/bench/text-read-bench.mjs
//   host-js/node_modules/.bin/bun host-js/bench/text-read-bench.mjs
//   host-js/node_modules/.bin/deno run host-js/bench/text-read-bench.mjs
import { Buffer } from "node:buffer";
const mem = new WebAssembly.Memory({ initial: 20 });
const u8 = new Uint8Array(mem.buffer);
const s = '{"type":"pong","timestamp":1765000000000,"requestId":"r12345"}';
const at = 123456; new TextEncoder().encodeInto(s, u8.subarray(at));
const n = s.length;
const td = new TextDecoder("utf-8", { ignoreBOM: true });
const buf = Buffer.from(mem.buffer);
let sink = 0;
function bench(name, f) {
  for (let i = 0; i < 200000; i++) sink += f().length;
  const t = performance.now(); const N = 3000000;
  for (let i = 0; i < N; i++) sink += f().length;
  console.log(name, ((performance.now() - t) * 1e6 / N).toFixed(1), "ns");
}
bench("textdecoder+subarray", () => td.decode(u8.subarray(at, at + n)));
if (buf.utf8Slice) bench("buf.utf8Slice", () => buf.utf8Slice(at, at + n));
bench("buf.toString utf8", () => buf.toString("utf8", at, at + n));
if (buf.latin1Slice) bench("buf.latin1Slice", () => buf.latin1Slice(at, at + n));
if (buf.asciiSlice) bench("buf.asciiSlice", () => buf.asciiSlice(at, at + n));
bench("fromCharCode.apply subarray", () => String.fromCharCode.apply(null, u8.subarray(at, at + n)));
