// The Bun host's write queue (js/bun.js BunSocket): frames to a socket are queued for the
// end of the event-loop turn and written together in one ws.cork, a turn that queues
// FLUSH_AT frames writes them out at once, in order, and getBufferedAmount() is read
// once per queued turn. Fake uWebSockets sockets; runs on any runtime.
//
//   bash host-js/build.sh && node --test host-js/test/bun-queue.test.mjs
import { test } from "node:test";
import assert from "node:assert/strict";
import { BunSocket, FLUSH_AT } from "../js/bun.js";

/** A fake Bun ServerWebSocket: `writes` holds one array of frames per native write. */
function fakeWs(bufferedAmount = 0) {
  return {
    writes: [],
    corked: null,
    bufferedReads: 0,
    bufferedAmount,
    sendText(t) {
      if (this.corked) this.corked.push(t);
      else this.writes.push([t]);
    },
    sendBinary(b) {
      this.sendText(b);
    },
    cork(fn) {
      this.corked = [];
      fn();
      this.writes.push(this.corked);
      this.corked = null;
    },
    getBufferedAmount() {
      this.bufferedReads++;
      return this.bufferedAmount;
    },
    ping() {},
    close() {},
  };
}

function socket(conn, ws) {
  const s = new BunSocket(conn, false);
  s.ws = ws;
  return s;
}

const turnEnd = () => new Promise((resolve) => setImmediate(resolve));

test("frames queued in one turn are written in one cork per socket at its end", async () => {
  const a = socket(1, fakeWs());
  const b = socket(2, fakeWs());
  for (let i = 0; i < 5; i++) {
    a.send(`a${i}`);
    b.send(`b${i}`);
  }
  assert.deepEqual(a.ws.writes, [], "nothing is written before the turn ends");
  await turnEnd();
  assert.deepEqual(a.ws.writes, [["a0", "a1", "a2", "a3", "a4"]]);
  assert.deepEqual(b.ws.writes, [["b0", "b1", "b2", "b3", "b4"]]);
});

test("a turn that queues FLUSH_AT frames writes them at once, in order, and the rest at its end", async () => {
  const subs = Array.from({ length: 100 }, (_, i) => socket(i, fakeWs()));
  const rounds = Math.ceil(FLUSH_AT / subs.length) + 10;
  let writtenEarly = -1;
  for (let r = 0; r < rounds; r++) {
    for (const s of subs) s.send(`m${r}`);
    if (writtenEarly < 0 && subs[0].ws.writes.length > 0) writtenEarly = r;
  }
  assert.ok(writtenEarly >= 0, "the queue was written before the turn ended");
  assert.ok((writtenEarly + 1) * subs.length >= FLUSH_AT, `not written before FLUSH_AT frames (round ${writtenEarly})`);
  const before = subs[0].ws.writes.length;
  await turnEnd();
  assert.equal(subs[0].ws.writes.length, before + 1, "the rest is written at the end of the turn");
  const expected = Array.from({ length: rounds }, (_, r) => `m${r}`);
  for (const s of subs) assert.deepEqual(s.ws.writes.flat(), expected, `socket ${s.conn}: every frame, in order`);
});

test("a close writes the socket's queue first; a dropped socket's queue is not written", async () => {
  const closing = fakeWs();
  closing.close = function (code) {
    this.writes.push([`close ${code}`]);
  };
  const a = socket(1, closing);
  a.send("x");
  a.send("y");
  a.close(1000, "bye");
  const b = socket(2, fakeWs());
  b.send("lost");
  b.drop();
  await turnEnd();
  assert.deepEqual(closing.writes, [["x", "y"], ["close 1000"]]);
  assert.deepEqual(b.ws.writes, []);
});

test("the buffered amount is read once per queued turn, and again after a drain", async () => {
  const ws = fakeWs(700);
  const a = socket(1, ws);
  a.send("x");
  assert.equal(a.buffered(), 700);
  ws.bufferedAmount = 900; // (cannot happen while queued; shows the read is not repeated)
  a.send("y");
  assert.equal(a.buffered(), 700);
  assert.equal(ws.bufferedReads, 1);
  ws.bufferedAmount = 0;
  a.drained();
  assert.equal(a.buffered(), 0, "a drain reads the amount again");
  await turnEnd();
  assert.equal(a.buffered(), 0);
  assert.equal(ws.bufferedReads, 3, "an unqueued socket reads it every time");
});
