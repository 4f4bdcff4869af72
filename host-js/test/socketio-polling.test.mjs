// Engine.IO v4 HTTP long-polling and the polling → WebSocket upgrade against the
// compliance application on every host (the behaviours of Socket.IO's compliance suites
// for long-polling, written here from the protocol documents, and more), and the official
// `socket.io-client` v4 with its default transports (polling, then the upgrade).
//
//   cargo build -p switchboard --example socketio-compliance   (native)
//   bash host-js/build.sh                                      (the JS hosts)
//   SIO_HOST=native node --test host-js/test/socketio-polling.test.mjs  (native|node|deno|bun|workerd)
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import WebSocket from "ws";
import { io } from "socket.io-client";
import { startServer, stopServer } from "./sio-server.mjs";

let server;
let base;

before(async () => {
  server = await startServer();
  base = server.addr;
});

after(async () => {
  await stopServer(server.child);
});

const url = (prefix, query) => `http://${base}${prefix}?EIO=4&transport=polling${query}`;

/** A polling session on `prefix`: {sid, get(opts), post(body)}. */
async function session(prefix = "/engine.io/") {
  const r = await fetch(url(prefix, ""));
  assert.equal(r.status, 200);
  const open = JSON.parse((await r.text()).slice(1));
  const at = url(prefix, `&sid=${open.sid}`);
  return {
    open,
    at,
    get: (opts = {}) => fetch(at, opts),
    post: (body) => fetch(at, { method: "POST", body }),
  };
}

/** Text packets received by polling until `n` non-ping packets arrived. */
async function collect(s, n) {
  const got = [];
  while (got.length < n) {
    const r = await s.get();
    assert.equal(r.status, 200);
    for (const p of (await r.text()).split("\x1e")) {
      if (p === "2") await s.post("3");
      else got.push(p);
    }
  }
  return got;
}

test("a polling handshake answers the open packet with the websocket upgrade", async () => {
  const r = await fetch(url("/socket.io/", ""));
  assert.equal(r.status, 200);
  assert.match(r.headers.get("content-type"), /^text\/plain/);
  const body = await r.text();
  assert.equal(body[0], "0");
  const open = JSON.parse(body.slice(1));
  assert.deepEqual(Object.keys(open).sort(), ["maxPayload", "pingInterval", "pingTimeout", "sid", "upgrades"]);
  assert.deepEqual(open.upgrades, ["websocket"]);
  assert.equal(open.pingInterval, 300);
  assert.equal(open.pingTimeout, 200);
  assert.equal(open.maxPayload, 1000000);
});

test("bad polling requests get 400 with Engine.IO's error codes", async () => {
  const cases = [
    ["GET", "/socket.io/?transport=polling", 5],
    ["GET", "/socket.io/?EIO=abc&transport=polling", 5],
    ["GET", "/socket.io/?EIO=4", 0],
    ["GET", "/socket.io/?EIO=4&transport=abc", 0],
    ["POST", "/socket.io/?EIO=4&transport=polling", 2],
    ["PUT", "/socket.io/?EIO=4&transport=polling", 2],
    ["GET", "/socket.io/?EIO=4&transport=polling&sid=unknown", 1],
    ["POST", "/engine.io/?EIO=4&transport=polling&sid=unknown", 1],
  ];
  for (const [method, path, code] of cases) {
    const r = await fetch(`http://${base}${path}`, { method });
    assert.equal(r.status, 400, `${method} ${path}`);
    assert.equal((await r.json()).code, code, `${method} ${path}`);
  }
});

test("a POST payload is split on \\x1e and the echoes come back batched, binary as base64", async () => {
  const s = await session();
  const p = await s.post("4one\x1e4two\x1ebAQIDBA==");
  assert.equal(p.status, 200);
  assert.equal(await p.text(), "ok");
  // One GET carries the three echoes (a heartbeat ping may ride along on a slow machine).
  const parts = (await (await s.get()).text()).split("\x1e").filter((p) => p !== "2");
  assert.deepEqual(parts, ["4one", "4two", "bAQIDBA=="]);
});

test("a held GET is released by the heartbeat ping, and answering it keeps the session", async () => {
  const s = await session();
  for (let i = 0; i < 2; i++) {
    assert.equal(await (await s.get()).text(), "2");
    assert.equal((await s.post("3")).status, 200);
  }
  await s.post("4still");
  assert.equal(await (await s.get()).text(), "4still");
});

test("a session that does not answer the ping is closed: its next request is 400", async () => {
  const s = await session();
  assert.equal(await (await s.get()).text(), "2");
  const r = await s.get(); // held until the pong deadline closes the session
  assert.equal(await r.text(), "1");
  assert.equal((await s.get()).status, 400);
});

test("Socket.IO over polling: CONNECT, auth event, event echo and ack", async () => {
  const s = await session("/socket.io/");
  await s.post('40{"token":"p"}');
  const [connect, auth] = await collect(s, 2);
  assert.equal(JSON.parse(connect.slice(2)).sid.length > 0, true);
  assert.equal(auth, '42["auth",{"token":"p"}]');
  await s.post('42["message",1,"2"]\x1e421["message-with-ack",{"a":true}]');
  assert.deepEqual(await collect(s, 2), ['42["message-back",1,"2"]', '431[{"a":true}]']);
});

test("overlapping GETs close the session: the first gets the close packet, the second 400", async () => {
  const s = await session();
  const first = s.get();
  await new Promise((r) => setTimeout(r, 50));
  const second = await s.get();
  assert.equal(second.status, 400);
  assert.equal(await (await first).text(), "1");
  assert.equal((await s.get()).status, 400);
});

test("a GET the client aborts closes the session", async () => {
  const s = await session();
  const c = new AbortController();
  const held = s.get({ signal: c.signal }).catch(() => "aborted");
  await new Promise((r) => setTimeout(r, 50));
  c.abort();
  assert.equal(await held, "aborted");
  await new Promise((r) => setTimeout(r, 50));
  assert.equal((await s.get()).status, 400);
});

test("the close packet ends the held GET with a noop and the session", async () => {
  const s = await session();
  const held = s.get();
  await new Promise((r) => setTimeout(r, 50));
  assert.equal((await s.post("1")).status, 200);
  assert.equal(await (await held).text(), "6");
  assert.equal((await s.get()).status, 400);
});

test("an invalid packet in a POST is 400 and closes the session", async () => {
  const s = await session();
  assert.equal((await s.post("abc")).status, 400);
  assert.equal((await s.get()).status, 400);
});

test("a POST over maxPayload is 413 and closes the session", async () => {
  const s = await session();
  assert.equal((await s.post("4" + "x".repeat(1000001))).status, 413);
  assert.equal((await s.get()).status, 400);
});

function wsFor(s, prefix = "/engine.io/") {
  const ws = new WebSocket(`ws://${base}${prefix}?EIO=4&transport=websocket&sid=${s.open.sid}`);
  const queue = [];
  const waiters = [];
  ws.on("message", (d, bin) => {
    const m = bin ? Buffer.from(d) : d.toString();
    if (m === "2") return void ws.send("3"); // the heartbeat, once upgraded
    const w = waiters.shift();
    if (w) w(m);
    else queue.push(m);
  });
  ws.on("error", () => {});
  ws.next = () => (queue.length ? Promise.resolve(queue.shift()) : new Promise((r) => waiters.push(r)));
  ws.opened = new Promise((r) => ws.once("open", r));
  ws.closedP = new Promise((r) => ws.once("close", r));
  return ws;
}

test("the upgrade: probe, the held GET released with a noop, then the WebSocket carries the session", async () => {
  const s = await session();
  const held = s.get();
  const ws = wsFor(s);
  await ws.opened;
  ws.send("2probe");
  assert.equal(await ws.next(), "3probe");
  assert.equal(await (await held).text(), "6");
  ws.send("5");
  ws.send("4over ws");
  assert.equal(await ws.next(), "4over ws");
  // Polling requests for the upgraded session are refused; the socket goes on.
  assert.equal((await s.get()).status, 400);
  // A second WebSocket for the same session is closed.
  const again = wsFor(s);
  await again.closedP;
  ws.send("4still");
  assert.equal(await ws.next(), "4still");
  ws.close();
});

test("packets queued during the upgrade arrive over the WebSocket", async () => {
  const s = await session();
  const ws = wsFor(s);
  await ws.opened;
  ws.send("2probe");
  assert.equal(await ws.next(), "3probe");
  await s.post("4queued");
  ws.send("5");
  assert.equal(await ws.next(), "4queued");
  ws.close();
});

test("a WebSocket naming an unknown session is refused", async () => {
  const ws = new WebSocket(`ws://${base}/engine.io/?EIO=4&transport=websocket&sid=nope`);
  const status = await new Promise((resolve) => {
    ws.on("unexpected-response", (_req, res) => resolve(res.statusCode));
    ws.on("error", () => {});
  });
  assert.equal(status, 400);
});

test("CORS: OPTIONS is answered and an Origin is echoed with credentials", async () => {
  const o = await fetch(url("/socket.io/", ""), { method: "OPTIONS", headers: { origin: "http://app.example" } });
  assert.equal(o.status, 204);
  assert.equal(o.headers.get("access-control-allow-origin"), "http://app.example");
  const r = await fetch(url("/socket.io/", ""), { headers: { origin: "http://app.example" } });
  assert.equal(r.headers.get("access-control-allow-origin"), "http://app.example");
  assert.equal(r.headers.get("access-control-allow-credentials"), "true");
});

function once(socket, event) {
  return new Promise((resolve) => socket.once(event, (...args) => resolve(args)));
}

test("socket.io-client with its default transports connects by polling, upgrades, emits with ack", async () => {
  const s = io(`http://${base}`, { reconnection: false, forceNew: true, auth: { token: "d" } });
  const [auth] = await once(s, "auth");
  assert.deepEqual(auth, { token: "d" });
  const upgraded = s.io.engine.transport.name === "websocket" ? Promise.resolve() : once(s.io.engine, "upgrade");
  await upgraded;
  assert.equal(s.io.engine.transport.name, "websocket");
  const ack = await new Promise((resolve) => s.emit("message-with-ack", "x", Buffer.from([1, 2]), (...a) => resolve(a)));
  assert.equal(ack[0], "x");
  assert.deepEqual([...ack[1]], [1, 2]);
  s.close();
});

test("socket.io-client polling only: events, binary and acks over long-polling", async () => {
  const s = io(`http://${base}`, { transports: ["polling"], reconnection: false, forceNew: true });
  await once(s, "connect");
  const back = once(s, "message-back");
  s.emit("message", 1, { b: Buffer.from([7, 8, 9]) });
  const [one, obj] = await back;
  assert.equal(one, 1);
  assert.deepEqual([...obj.b], [7, 8, 9]);
  const ack = await new Promise((resolve) => s.emit("message-with-ack", "y", (...a) => resolve(a)));
  assert.deepEqual(ack, ["y"]);
  assert.equal(s.io.engine.transport.name, "polling");
  s.close();
});

test("socket.io-client polling only: the server asks the client for an ack", async () => {
  const s = io(`http://${base}`, { transports: ["polling"], reconnection: false, forceNew: true });
  s.on("ask", (q, cb) => cb({ answer: q.n + 1, bytes: Buffer.from([q.n]) }));
  await once(s, "connect");
  const r = await s.emitWithAck("ask-me", { n: 4 });
  assert.equal(r.answer, 5);
  assert.deepEqual([...r.bytes], [4]);
  assert.equal(s.io.engine.transport.name, "polling");
  s.close();
});
