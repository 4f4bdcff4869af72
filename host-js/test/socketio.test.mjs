// Socket.IO v5 / Engine.IO v4 against the compliance application on every host: the
// protocol behaviours Socket.IO's own compliance suites check over WebSocket (written
// here from the protocol documents), and interop with the official `socket.io-client` v4.
//
//   cargo build -p switchboard --example socketio-compliance   (native)
//   bash host-js/build.sh                                      (the JS hosts)
//   SIO_HOST=native node --test host-js/test/socketio.test.mjs  (native|node|deno|bun|workerd)
//
// SWITCHBOARD_SIO_BIN overrides the native binary (e.g. the release build).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import WebSocket from "ws";
import { io } from "socket.io-client";
import { HOST, startServer, stopServer } from "./sio-server.mjs";

let server;
let base;

before(async () => {
  server = await startServer();
  base = server.addr;
});

after(async () => {
  await stopServer(server.child);
});

/** A raw WebSocket with a queue of received messages (strings, or Buffers for binary). */
function raw(query = "EIO=4&transport=websocket", prefix = "/socket.io/", addr = base) {
  const ws = new WebSocket(`ws://${addr}${prefix}?${query}`);
  const queue = [];
  const waiters = [];
  const closeWaiters = [];
  ws.closed = false;
  ws.on("message", (data, isBinary) => {
    const m = isBinary ? Buffer.from(data) : data.toString();
    const w = waiters.shift();
    if (w) w(m);
    else queue.push(m);
  });
  ws.on("error", () => {});
  ws.on("close", () => {
    ws.closed = true;
    closeWaiters.splice(0).forEach((w) => w());
  });
  ws.next = (ms = 2000) =>
    queue.length
      ? Promise.resolve(queue.shift())
      : new Promise((resolve, reject) => {
          const t = setTimeout(() => reject(new Error("no message")), ms);
          waiters.push((m) => {
            clearTimeout(t);
            resolve(m);
          });
        });
  ws.nextNonPing = async () => {
    for (;;) {
      const m = await ws.next();
      if (m !== "2") return m;
    }
  };
  ws.untilClosed = (ms = 3000) =>
    ws.closed
      ? Promise.resolve()
      : new Promise((resolve, reject) => {
          const t = setTimeout(() => reject(new Error("not closed")), ms);
          closeWaiters.push(() => {
            clearTimeout(t);
            resolve();
          });
        });
  return ws;
}

async function sioConnected() {
  const ws = raw();
  await ws.next(); // Engine.IO open
  ws.send("40");
  await ws.next(); // CONNECT
  await ws.next(); // auth
  return ws;
}

// ---------------------------------------------------------------- Engine.IO

test("the WebSocket handshake announces sid, no upgrades, 300/200 ms heartbeat, 1000000 bytes", async () => {
  const ws = raw();
  const open = await ws.next();
  assert.equal(open[0], "0");
  const v = JSON.parse(open.slice(1));
  assert.deepEqual(Object.keys(v).sort(), ["maxPayload", "pingInterval", "pingTimeout", "sid", "upgrades"]);
  assert.equal(typeof v.sid, "string");
  assert.deepEqual(v.upgrades, []);
  assert.equal(v.pingInterval, 300);
  assert.equal(v.pingTimeout, 200);
  assert.equal(v.maxPayload, 1000000);
  ws.close();
});

test("an invalid EIO or transport query is refused with 400", async () => {
  for (const q of ["transport=websocket", "EIO=abc&transport=websocket", "EIO=4", "EIO=4&transport=abc", "EIO=3&transport=websocket"]) {
    const status = await new Promise((resolve) => {
      const ws = new WebSocket(`ws://${base}/socket.io/?${q}`);
      ws.on("unexpected-response", (_req, res) => resolve(res.statusCode));
      ws.on("open", () => resolve("open"));
      ws.on("error", () => {});
    });
    assert.equal(status, 400, q);
  }
});

test("the server pings with `2` and keeps a session that answers `3`", async () => {
  const ws = raw();
  await ws.next();
  for (let i = 0; i < 3; i++) {
    assert.equal(await ws.next(), "2");
    ws.send("3");
  }
  ws.close();
});

test("a session that does not answer pings is closed after pingInterval + pingTimeout", async () => {
  const ws = raw();
  await ws.next();
  await ws.untilClosed(2000);
});

test("a close packet closes the session", async () => {
  const ws = raw();
  await ws.next();
  ws.send("1");
  await ws.untilClosed();
});

test("an invalid Engine.IO packet closes the session", async () => {
  const ws = raw();
  await ws.next();
  ws.send("abc");
  await ws.untilClosed();
});

test("a ping probe is answered with the same data", async () => {
  const ws = raw();
  await ws.next();
  ws.send("2probe");
  assert.equal(await ws.next(), "3probe");
  ws.close();
});

test("a bare Engine.IO session on /engine.io/ echoes text and binary message packets", async () => {
  const ws = raw("EIO=4&transport=websocket", "/engine.io/");
  const open = JSON.parse((await ws.next()).slice(1));
  assert.equal(open.pingInterval, 300);
  ws.send("4hello");
  assert.equal(await ws.nextNonPing(), "4hello");
  ws.send(Uint8Array.from([1, 2, 3, 4]));
  assert.deepEqual(await ws.nextNonPing(), Buffer.from([1, 2, 3, 4]));
  ws.send("abc");
  await ws.untilClosed();
});

test("a bare Engine.IO session closes on a close packet and on a missed pong", async () => {
  const a = raw("EIO=4&transport=websocket", "/engine.io/");
  await a.next();
  a.send("1");
  await a.untilClosed();
  const b = raw("EIO=4&transport=websocket", "/engine.io/");
  await b.next();
  await b.untilClosed(2000);
});

/**
 * Upgrade a polling session to WebSocket, then open a second WebSocket with the same sid:
 * it is closed at once (TCP ended: `ws` reports `close` within `ms`), and the first
 * still echoes.
 */
async function secondUpgradeIsClosed(addr, ms = 1000) {
  const res = await fetch(`http://${addr}/engine.io/?EIO=4&transport=polling`);
  const { sid } = JSON.parse((await res.text()).slice(1));
  const ws = raw(`EIO=4&transport=websocket&sid=${sid}`, "/engine.io/", addr);
  await new Promise((resolve) => ws.once("open", resolve));
  ws.send("2probe");
  assert.equal(await ws.next(), "3probe");
  ws.send("5");
  const ws2 = raw(`EIO=4&transport=websocket&sid=${sid}`, "/engine.io/", addr);
  await ws2.untilClosed(ms);
  ws.send("4hello");
  assert.equal(await ws.nextNonPing(), "4hello");
  ws.close();
}

test("a second WebSocket with the sid of an upgraded session is closed at once", async () => {
  await secondUpgradeIsClosed(base);
});

test("workerd without the Worker relay: a socket closed while it is attached ends its connection at once", { skip: HOST !== "workerd" && "workerd only" }, async () => {
  // The compliance application relays its sockets through the Worker on workerd by
  // default; this instance returns the Durable Object's hibernatable sockets directly.
  // The engine closes the second socket while the object attaches it, so the object
  // accepts that one without hibernation (js/cloudflare-host.js).
  const hib = await startServer(0, { SWITCHBOARD_RELAY: "0" });
  try {
    await secondUpgradeIsClosed(hib.addr);
  } finally {
    await stopServer(hib.child);
  }
});

// ---------------------------------------------------------------- Socket.IO

test("CONNECT to the main namespace, then the auth event with the (empty) payload", async () => {
  const ws = raw();
  await ws.next();
  ws.send("40");
  const c = await ws.next();
  assert.ok(c.startsWith("40"));
  assert.deepEqual(Object.keys(JSON.parse(c.slice(2))), ["sid"]);
  assert.equal(await ws.next(), '42["auth",{}]');
  ws.close();
});

test("CONNECT with a payload, to the main and a custom namespace", async () => {
  const ws = raw();
  await ws.next();
  ws.send('40{"token":"123"}');
  assert.ok((await ws.next()).startsWith("40{"));
  assert.equal(await ws.next(), '42["auth",{"token":"123"}]');
  ws.send("40/custom,");
  const c = await ws.nextNonPing();
  assert.ok(c.startsWith("40/custom,"));
  assert.deepEqual(Object.keys(JSON.parse(c.slice(10))), ["sid"]);
  assert.equal(await ws.nextNonPing(), '42/custom,["auth",{}]');
  ws.send('40/custom,{"token":"abc"}');
  await ws.nextNonPing();
  assert.equal(await ws.nextNonPing(), '42/custom,["auth",{"token":"abc"}]');
  ws.close();
});

test("an unknown namespace gets CONNECT_ERROR Invalid namespace", async () => {
  const ws = raw();
  await ws.next();
  ws.send("40/random");
  assert.equal(await ws.next(), '44/random,{"message":"Invalid namespace"}');
  ws.close();
});

test("an invalid Socket.IO handshake closes the session", async () => {
  const ws = raw();
  await ws.next();
  ws.send("4abc");
  await ws.untilClosed();
});

test("a session that never sends CONNECT is closed (it answers no ping either)", async () => {
  const ws = raw();
  await ws.untilClosed(2000);
});

test("DISCONNECT from the main namespace keeps the Engine.IO session", async () => {
  const ws = await sioConnected();
  ws.send("41");
  assert.equal(await ws.next(), "2");
  ws.close();
});

test("connect then disconnect a custom namespace; the main namespace still echoes", async () => {
  const ws = await sioConnected();
  ws.send("40/custom");
  await ws.nextNonPing();
  await ws.nextNonPing();
  ws.send("41/custom");
  ws.send('42["message","message to main namespace"]');
  assert.equal(await ws.nextNonPing(), '42["message-back","message to main namespace"]');
  ws.close();
});

test("a plain-text event is echoed with every argument", async () => {
  const ws = await sioConnected();
  ws.send('42["message",1,"2",{"3":[true]}]');
  assert.equal(await ws.nextNonPing(), '42["message-back",1,"2",{"3":[true]}]');
  ws.close();
});

test("an event with binary attachments is echoed with its attachments", async () => {
  const ws = await sioConnected();
  ws.send('452-["message",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]');
  ws.send(Uint8Array.from([1, 2, 3]));
  ws.send(Uint8Array.from([4, 5, 6]));
  assert.equal(await ws.nextNonPing(), '452-["message-back",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]');
  assert.deepEqual(await ws.nextNonPing(), Buffer.from([1, 2, 3]));
  assert.deepEqual(await ws.nextNonPing(), Buffer.from([4, 5, 6]));
  ws.close();
});

test("an event with an ack id is acknowledged with its arguments", async () => {
  const ws = await sioConnected();
  ws.send('42456["message-with-ack",1,"2",{"3":[false]}]');
  assert.equal(await ws.nextNonPing(), '43456[1,"2",{"3":[false]}]');
  ws.send('452-789["message-with-ack",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]');
  ws.send(Uint8Array.from([1, 2, 3]));
  ws.send(Uint8Array.from([4, 5, 6]));
  assert.equal(await ws.nextNonPing(), '462-789[{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]');
  assert.deepEqual(await ws.nextNonPing(), Buffer.from([1, 2, 3]));
  assert.deepEqual(await ws.nextNonPing(), Buffer.from([4, 5, 6]));
  ws.close();
});

test("a binary frame nobody announced closes the session", async () => {
  const ws = await sioConnected();
  ws.send(Uint8Array.from([1]));
  await ws.untilClosed();
});

// ---------------------------------------------------------------- socket.io-client

function client(opts = {}) {
  return io(`http://${base}`, { transports: ["websocket"], reconnection: false, forceNew: true, ...opts });
}

function once(socket, event) {
  return new Promise((resolve) => socket.once(event, (...args) => resolve(args)));
}

test("socket.io-client connects over WebSocket and gets its auth payload back", async () => {
  const s = client({ auth: { token: "t-1" } });
  const [auth] = await once(s, "auth");
  assert.deepEqual(auth, { token: "t-1" });
  assert.ok(s.connected);
  assert.equal(typeof s.id, "string");
  s.close();
});

test("socket.io-client: emit with ack, several arguments, binary payloads", async () => {
  const s = client();
  await once(s, "connect");
  const back = once(s, "message-back");
  s.emit("message", 1, "2", { 3: [true] });
  assert.deepEqual(await back, [1, "2", { 3: [true] }]);
  const bin = once(s, "message-back");
  s.emit("message", { nested: Buffer.from([9, 8, 7]) });
  const [payload] = await bin;
  assert.deepEqual(Buffer.from(payload.nested), Buffer.from([9, 8, 7]));
  const acked = await new Promise((resolve) =>
    s.emit("message-with-ack", "a", Buffer.from([1]), (...args) => resolve(args)),
  );
  assert.equal(acked[0], "a");
  assert.deepEqual(Buffer.from(acked[1]), Buffer.from([1]));
  // Built-ins answer through the ack too.
  const pong = await s.emitWithAck("ping");
  assert.equal(typeof pong.timestamp, "number");
  const err = await s.emitWithAck("nope");
  assert.equal(err.error.code, "UNKNOWN_MESSAGE_TYPE");
  s.close();
});

test("socket.io-client: the server asks the client for an ack and gets its answer", async () => {
  const s = client();
  s.on("ask", (q, cb) => cb({ answer: q.n * 2 }));
  await once(s, "connect");
  // `ask-me` makes the server emit `ask` with an ack id and wait for the client's ack.
  assert.deepEqual(await s.emitWithAck("ask-me", { n: 21 }), { answer: 42 });
  // Several arguments each way, and a binary one in the client's answer.
  s.off("ask");
  s.on("ask", (a, b, cb) => cb(a + b, Buffer.from([7])));
  const got = await new Promise((resolve) => s.emit("ask-me", 1, 2, (...args) => resolve(args)));
  assert.equal(got[0], 3);
  assert.deepEqual(Buffer.from(got[1]), Buffer.from([7]));
  // A client that never answers: the server's wait (2 s in the app) times out.
  s.off("ask");
  s.on("ask", () => {});
  const late = await s.timeout(6000).emitWithAck("ask-me", 0);
  assert.equal(late.error.code, "TIMEOUT");
  assert.match(late.error.message, /did not acknowledge `ask` within 2000 ms/);
  s.close();
});

test("the server's ack request on the wire: `2<id>[...]`, answered by `3<id>[...]`", async () => {
  const ws = await sioConnected();
  ws.send('42["ask-me","q"]');
  const ask = await ws.nextNonPing();
  const m = /^42(\d+)\["ask","q"\]$/.exec(ask);
  assert.ok(m, ask);
  // An ack nobody asked for is ignored (the session stays open).
  ws.send('4399999["stray"]');
  ws.send(`43${m[1]}["a1"]`);
  assert.equal(await ws.nextNonPing(), '42["reply","a1"]');
  assert.equal(ws.closed, false);
  ws.close();
});

test("socket.io-client: a custom namespace on the same connection", async () => {
  const s = client();
  await once(s, "auth");
  // Multiplexed: the same Engine.IO session carries both namespaces.
  const c = s.io.socket("/custom");
  const [auth] = await once(c, "auth");
  assert.deepEqual(auth, {});
  const back = once(c, "message-back");
  c.emit("message", "in custom");
  assert.deepEqual(await back, ["in custom"]);
  s.close();
  c.close();
});

test("socket.io-client: room broadcast reaches the other members", async () => {
  const a = client();
  const b = client();
  await Promise.all([once(a, "connect"), once(b, "connect")]);
  assert.equal((await a.emitWithAck("join", { room: "lobby" })).room, "lobby");
  await b.emitWithAck("join", { room: "lobby" });
  const got = once(a, "room:message");
  const sent = await b.emitWithAck("room:message", { room: "lobby", data: { hi: 1 }, ack: true });
  assert.equal(sent.delivered, 1);
  const [msg] = await got;
  assert.deepEqual(msg.data, { hi: 1 });
  assert.equal(msg.room, "lobby");
  a.close();
  b.close();
});

test("socket.io-client reconnects by itself after a server restart", async () => {
  const own = await startServer();
  const url = `http://${own.addr}`;
  const s = io(url, {
    transports: ["websocket"],
    forceNew: true,
    reconnectionDelay: 100,
    reconnectionDelayMax: 200,
  });
  try {
    await once(s, "auth");
    const firstId = s.id;
    const disconnected = once(s, "disconnect");
    await stopServer(own.child);
    const [reason] = await disconnected;
    assert.equal(reason, "transport close");
    // Same port again: the client's reconnection loop finds it.
    const reauth = once(s, "auth");
    const again = await startServer(own.port);
    try {
      await reauth;
      assert.ok(s.connected);
      assert.notEqual(s.id, firstId);
      const back = once(s, "message-back");
      s.emit("message", "after restart");
      assert.deepEqual(await back, ["after restart"]);
    } finally {
      s.close();
      await stopServer(again.child);
    }
  } finally {
    s.close();
    await stopServer(own.child);
  }
});
