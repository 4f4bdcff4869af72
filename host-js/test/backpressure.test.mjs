// The JS hosts report a connection's queued bytes at the engine's thresholds
// (switchboard_engine::backpressure: past limits.maxBufferedBytes, and back at half of
// it), like the native host, so a limit that is not a power of two acts at that limit.
// A Host with a fake socket whose buffered() the test sets.
//
//   bash host-js/build.sh && node --test host-js/test/backpressure.test.mjs
import { test } from "node:test";
import assert from "node:assert/strict";
import { initFromFile } from "../js/fs-init.js";
import { Host } from "../js/core.js";

initFromFile();

/** A Host with one open connection on a fake socket: {host, socket, conn}. */
function setup(slowConsumer) {
  const host = new Host({ config: { limits: { maxBufferedBytes: 100000, slowConsumer } }, log: () => {} });
  const d = host.open({ path: "/", query: "", headers: [], peer: "127.0.0.1" });
  assert.equal(d.accept, true, JSON.stringify(d));
  const socket = {
    queued: 0,
    sent: [],
    closed: null,
    send(text) {
      this.sent.push(text);
    },
    ping() {},
    close(code, reason) {
      this.closed = { code, reason };
    },
    buffered() {
      return this.queued;
    },
  };
  host.attach(d.conn, socket);
  return { host, socket, conn: d.conn };
}

const broadcast = (host) => host.command({ command: "broadcast", message: { type: "tick" } });

test("a queue past a limit that is not a power of two closes the connection with 1013", () => {
  const { host, socket } = setup("close");
  socket.queued = 70000; // over 64 KiB, under the limit: no report
  broadcast(host);
  assert.equal(socket.closed, null);
  socket.queued = 100001; // past the limit (the old power-of-two levels waited for 131072)
  broadcast(host);
  assert.equal(socket.closed?.code, 1013, JSON.stringify(socket.closed));
});

test("a queue at the limit is not reported; drained to half it is, and pushes resume", () => {
  const { host, socket, conn } = setup("drop");
  socket.queued = 100000; // at the limit: not over
  broadcast(host);
  const before = socket.sent.length;
  broadcast(host);
  assert.equal(socket.sent.length, before + 1, "delivered at the limit");
  socket.queued = 100001;
  broadcast(host); // reported over after this send
  const over = socket.sent.length;
  broadcast(host);
  assert.equal(socket.sent.length, over, "dropped while over");
  socket.queued = 60000; // drained, but above half: still over
  host.drained(conn);
  broadcast(host);
  assert.equal(socket.sent.length, over, "still dropped above half the limit");
  socket.queued = 50000; // half: reported under
  host.drained(conn);
  broadcast(host);
  assert.equal(socket.sent.length, over + 1, "delivered again");
});
