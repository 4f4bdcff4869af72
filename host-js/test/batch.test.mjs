// A client frame's batch read from wasm memory (engine.frameView + Host.readView) is the
// batch string engine.frame returns for the same input: the same ops, extra line and
// frame texts. Two Hosts with one seed and one clock get the same inputs; one is read
// each way.
//
//   bash host-js/build.sh && node --test host-js/test/batch.test.mjs
import { test } from "node:test";
import assert from "node:assert/strict";
import { initFromFile } from "../js/fs-init.js";
import { Host, decodeOps } from "../js/core.js";
import { memoryBytes } from "../js/batch.js";

initFromFile();

const config = {
  heartbeatInterval: 30000,
  heartbeatTimeout: 10000,
  maxPayloadSize: 4096,
  rateLimit: { enabled: false },
  limits: { maxConnectionsPerIp: 0 },
  routes: [{ path: "/" }],
  auth: { required: false },
  resources: { notes: { publish: true } },
};
const NOW = 1_800_000_000_000;
const socket = { send() {}, ping() {}, close() {}, buffered: () => 0 };

/** A Host with three open connections, on a fixed clock. */
function hostWithConnections() {
  const host = new Host({ config, seed: 7n, now: () => NOW, log: () => {} });
  const conns = [];
  for (let i = 0; i < 3; i++) {
    const d = host.open({ path: "/", query: "", headers: [], peer: "127.0.0.1" });
    assert.equal(d.accept, true, JSON.stringify(d));
    host.attach(d.conn, socket);
    conns.push(d.conn);
  }
  return { host, conns };
}

// Frames that give every part of a batch: a reply (a send), a fan-out (a send to many,
// with recipients), text outside ASCII (UTF-16 offsets), an error frame, and a frame over
// maxPayloadSize (an error and a close: the extra line).
const FRAMES = [
  [0, '{"type":"ping","requestId":"p1"}'],
  [1, '{"type":"subscribe","resource":"notes","requestId":"s1"}'],
  [2, '{"type":"subscribe","resource":"notes","requestId":"s2"}'],
  [0, '{"type":"insert","resource":"notes","data":{"id":"n1","text":"héllo 👋 \\"quoted\\""},"requestId":"i1"}'],
  [0, "not json"],
  [1, '{"type":"ping","requestId":"ünïcödé 👋"}'],
  [2, JSON.stringify({ type: "ping", requestId: "x".repeat(5000) })],
];

test("a frame's batch read from wasm memory is the batch string of the same frame", () => {
  const a = hostWithConnections();
  const b = hostWithConnections();
  let extras = 0;
  let fanOuts = 0;
  for (const [i, text] of FRAMES) {
    const batch = a.host.engine.frame(NOW, a.conns[i], text);
    const recipientsA = Array.from(a.host.engine.recipients());
    const ops = b.host.readView(b.host.engine.frameView(NOW, b.conns[i], text));
    const recipientsB = Array.from(b.host.engine.recipients());
    const want = decodeOps(batch);
    assert.deepEqual(ops, want.ops, text);
    assert.deepEqual(b.host.viewExtra, want.extra, text);
    assert.equal(b.host.viewBody, batch.slice(want.base), text);
    assert.deepEqual(recipientsB, recipientsA, text);
    if (want.extra !== null) extras++;
    if (recipientsA.length > 1) fanOuts++;
  }
  assert.ok(extras > 0, "some batch had an extra line");
  assert.ok(fanOuts > 0, "some batch had a fan-out");
});

test("frames given as bytes read from wasm memory match their batch strings too", () => {
  const a = hostWithConnections();
  const b = hostWithConnections();
  const encoder = new TextEncoder();
  for (const [i, text] of [...FRAMES, [0, "\xff"]]) {
    // Invalid UTF-8 goes in as a binary frame on both paths.
    const bytes = text === "\xff" ? new Uint8Array([0xff, 0xfe]) : encoder.encode(text);
    const batch = a.host.engine.frameBytes(NOW, a.conns[i], bytes, false);
    const ops = b.host.readView(b.host.engine.frameBytesView(NOW, b.conns[i], bytes, false));
    const want = decodeOps(batch);
    assert.deepEqual(ops, want.ops, text);
    assert.deepEqual(b.host.viewExtra, want.extra, text);
    assert.equal(b.host.viewBody, batch.slice(want.base), text);
  }
});

test("texts read after the module's memory grew are the batch's texts (no stale view)", () => {
  const big = { ...config, maxPayloadSize: 16 * 1024 * 1024 };
  const open = () => {
    const host = new Host({ config: big, seed: 7n, now: () => NOW, log: () => {} });
    const d = host.open({ path: "/", query: "", headers: [], peer: "127.0.0.1" });
    host.attach(d.conn, socket);
    return { host, conn: d.conn };
  };
  const a = open();
  const b = open();
  // A small frame first (the views are made), then one whose answer (a 12 MB requestId,
  // echoed) needs more memory than the module has, so the views' buffer is detached, then
  // a small one again.
  const frames = ['{"type":"ping","requestId":"é1"}', JSON.stringify({ type: "ping", requestId: "ü".repeat(6 * 1024 * 1024) }), '{"type":"ping","requestId":"é2"}'];
  const sizes = [];
  for (const text of frames) {
    const batch = a.host.engine.frame(NOW, a.conn, text);
    const ops = b.host.readView(b.host.engine.frameView(NOW, b.conn, text));
    const want = decodeOps(batch);
    assert.deepEqual(ops, want.ops);
    assert.equal(b.host.viewBody, batch.slice(want.base));
    sizes.push(memoryBytes());
  }
  assert.ok(sizes[1] > sizes[0], `the memory grew during the large frame: ${sizes}`);
});

test("every client frame counts in engine_handle_seconds; one in 16 is timed, for 16", () => {
  const { host, conns } = hostWithConnections();
  const realNow = performance.now;
  let clock = 0;
  let reads = 0;
  // Each read advances 1 ms: a timed frame adds 16 × 1 ms.
  performance.now = () => {
    reads++;
    return (clock += 1);
  };
  try {
    const calls = host.stats.handleCalls;
    const seconds = host.stats.handleSeconds;
    for (let i = 0; i < 48; i++) host.message(conns[0], '{"type":"ping"}');
    assert.equal(host.stats.handleCalls - calls, 48);
    assert.equal(reads, 6, "three frames of 48 timed, two clock reads each");
    assert.ok(Math.abs(host.stats.handleSeconds - seconds - 3 * 16 * 0.001) < 1e-9, String(host.stats.handleSeconds - seconds));
  } finally {
    performance.now = realNow;
  }
  assert.match(host.metricsText(), /switchboard_engine_handle_seconds_count \d+/);
});

test("an upgrade the engine does not decide is refused (no_decision) and its connection dropped", () => {
  const host = new Host({ config, seed: 7n, now: () => NOW, log: () => {} });
  // An engine answer with no accept or reject action: an empty batch.
  host.engine.open = () => "[-1]\n\n";
  const d = host.open({ path: "/", query: "", headers: [], peer: "127.0.0.1" });
  assert.equal(d.accept, false);
  assert.equal(d.status, 500, JSON.stringify(d));
  assert.match(d.body, /no_decision/);
  assert.equal(host.conns.has(d.conn), false);
});
