// The connection state machine, requests, reconnects and tokens, against an in-memory
// WebSocket (test/unit/fake.mjs).
import { test } from "node:test";
import assert from "node:assert/strict";
import { Client, ServerError, SwitchboardError, UnauthorizedError } from "../../dist/index.js";
import { FakeNet, autoAnswer, fakeJwt, once, sleep } from "./fake.mjs";

const fast = { initialDelayMs: 5, maxDelayMs: 20, jitter: 0 };

function setup(opts = {}) {
  const net = new FakeNet();
  const client = new Client({ url: "ws://127.0.0.1:9/ws", WebSocket: net.WebSocket, reconnect: fast, pingIntervalMs: 0, ...opts });
  return { net, client };
}

async function connected(net, client, n = 0) {
  const p = client.state === "connected" ? null : once(client, "connected");
  const s = await net.socket(n);
  s.welcome(`c${n + 1}`);
  if (p) await p;
  return s;
}

test("connect offers switchboard.v1 with the token as a bearer subprotocol and resolves with the welcome", async () => {
  const { net, client } = setup({ token: "key_user" });
  const states = [];
  client.on("state", (s) => states.push(s.state));
  const p = client.connect();
  const s = await net.socket(0);
  assert.deepEqual(s.protocols, ["switchboard.v1", "bearer.key_user"]);
  assert.equal(s.url, "ws://127.0.0.1:9/ws");
  s.welcome("abc", { id: "u1", role: "user", scopes: [] });
  const info = await p;
  assert.deepEqual(info, { clientId: "abc", user: { id: "u1", role: "user", scopes: [] }, protocolVersion: 1, reconnected: false });
  assert.equal(client.clientId, "abc");
  assert.deepEqual(states, ["connecting", "connected"]);
  client.close();
  assert.equal(client.state, "closed");
});

test("a token that cannot be a subprotocol travels in the query; http URLs become ws", async () => {
  const net = new FakeNet();
  const client = new Client({ url: "http://127.0.0.1:9/", token: "a b/c", WebSocket: net.WebSocket, pingIntervalMs: 0 });
  client.connect().catch(() => {});
  const s = await net.socket(0);
  assert.deepEqual(s.protocols, ["switchboard.v1"]);
  assert.equal(s.url, "ws://127.0.0.1:9/?token=a+b%2Fc");
  client.close();
  assert.throws(() => new Client({ url: "ftp://x/", WebSocket: net.WebSocket }), /ws:, wss:, http: or https:/);
});

test("answers are matched by requestId, out of order; error answers reject with the protocol code", async () => {
  const { net, client } = setup();
  client.connect();
  const s = await connected(net, client);
  const a = client.request("get", { resource: "users", id: "1" });
  const b = client.request("get", { resource: "users", id: "2" });
  const [ma, mb] = [await net.sent(s, (m) => m.id === "1"), await net.sent(s, (m) => m.id === "2")];
  assert.notEqual(ma.requestId, mb.requestId);
  s.answer(mb, { type: "error", code: "NOT_FOUND", message: "Record not found" });
  s.answer(ma, { type: "data", resource: "users", data: { id: "1" } });
  assert.deepEqual((await a).data, { id: "1" });
  await assert.rejects(b, (e) => e instanceof ServerError && e.code === "NOT_FOUND" && e.message === "Record not found" && e.frame.type === "error");
  client.close();
});

test("fields cannot override the message type or the requestId", async () => {
  const { net, client } = setup();
  client.connect();
  const s = await connected(net, client);
  const p = client.request("ping", { type: "publish", requestId: "mine", extra: 1 });
  const m = await net.sent(s);
  assert.deepEqual(Object.keys(m).filter((k) => !k.startsWith("__")), ["type", "requestId", "extra"]);
  assert.equal(m.type, "ping");
  assert.equal(typeof m.requestId, "number");
  s.answer(m, { type: "pong", timestamp: 1 });
  await p;
  client.notify("direct", { to: "c2", requestId: 5, type: "x" });
  const d = await net.sent(s, (x) => x.type === "direct");
  assert.equal("requestId" in d, false);
  client.close();
});

test("a request without an answer times out with REQUEST_TIMEOUT and its late answer is ignored", async () => {
  const { net, client } = setup({ requestTimeoutMs: 30 });
  client.connect();
  const s = await connected(net, client);
  const errors = [];
  const msgs = [];
  client.on("error", (e) => errors.push(e));
  client.on("serverMessage", (m) => msgs.push(m));
  const p = client.request("get", { resource: "users", id: "1" });
  const m = await net.sent(s);
  await assert.rejects(p, (e) => e.code === "REQUEST_TIMEOUT" && /outcome is unknown/.test(e.message));
  s.answer(m, { type: "data", resource: "users", data: { id: "1" } });
  await sleep(5);
  assert.deepEqual([errors, msgs], [[], []]);
  client.close();
});

test("requests fail fast with DISCONNECTED when not connected and no offline queue is set", async () => {
  const { client } = setup();
  await assert.rejects(client.request("ping"), (e) => e.code === "DISCONNECTED" && /offlineQueue/.test(e.message));
  client.close();
  await assert.rejects(client.request("ping"), (e) => e.code === "CLIENT_CLOSED");
});

test("the offline queue is bounded, keeps order and is sent after resubscribing", async () => {
  const { net, client } = setup({ offlineQueue: { maxSize: 2 } });
  const sub = client.subscribe("messages");
  const a = client.resource("messages").insert({ n: 1 });
  const b = client.resource("messages").insert({ n: 2 });
  await assert.rejects(client.request("ping"), (e) => e.code === "QUEUE_FULL");
  assert.equal(client.queuedRequests, 2);
  client.connect();
  const s = await net.socket(0);
  const order = [];
  net.on("sent", (sock, m) => sock === s && order.push(m.type));
  let subMsg;
  net.sent(s, (m) => m.type === "subscribe").then((m) => (subMsg = m));
  s.welcome();
  await sleep(10);
  assert.deepEqual(order, ["subscribe"], "queued requests wait for the resubscribe answer");
  s.answer(subMsg, { type: "subscribed", subscriptionId: "sub-1", resource: "messages", events: ["insert"] });
  const ins = [await net.sent(s, (m) => m.type === "insert"), await net.sent(s, (m) => m.type === "insert")];
  assert.deepEqual(order, ["subscribe", "insert", "insert"]);
  assert.deepEqual(ins.map((m) => m.data.n), [1, 2]);
  for (const m of ins) s.answer(m, { type: "inserted", resource: "messages", data: { id: `r${m.data.n}` } });
  assert.deepEqual([(await a).id, (await b).id], ["r1", "r2"]);
  await sub.ready();
  client.close();
});

test("a queued request times out from the moment it was made", async () => {
  const { client } = setup({ offlineQueue: { maxSize: 5 }, requestTimeoutMs: 20 });
  await assert.rejects(client.request("ping"), (e) => e.code === "REQUEST_TIMEOUT");
  assert.equal(client.queuedRequests, 0);
  client.close();
});

test("after a loss the client reconnects with backoff, fails in-flight requests and resubscribes", async () => {
  const { net, client } = setup();
  const sub = client.channel("chat").subscribe();
  client.connect();
  const s0 = await connected(net, client);
  const stop0 = autoAnswer(net, s0);
  await sub.ready();
  const inflight = client.request("get", { resource: "users", id: "1" }); // autoAnswer: never for get? -> error
  stop0();
  const p2 = client.request("list", { resource: "users" });
  await net.sent(s0, (m) => m.type === "list");
  const disconnected = once(client, "disconnected");
  const resub = once(sub, "subscribed", (c) => c.resubscribed);
  s0.serverClose(1001, "server shutting down");
  const d = await disconnected;
  assert.deepEqual([d.code, d.reason, d.reconnectInMs], [1001, "server shutting down", 5]);
  await assert.rejects(p2, (e) => e.code === "DISCONNECTED" && /outcome is unknown/.test(e.message));
  await inflight.catch(() => {});
  assert.equal(sub.state, "subscribing");
  const s1 = await net.socket(1);
  autoAnswer(net, s1);
  const info = once(client, "connected");
  s1.welcome("c2");
  assert.equal((await info).reconnected, true);
  const ctx = await resub;
  assert.deepEqual([ctx.resubscribed, ctx.recovered, ctx.wasRecovering], [true, false, false]);
  assert.equal(sub.state, "subscribed");
  assert.equal(client.clientId, "c2");
  client.close();
});

test("backoff grows across failed attempts and resets after a welcome", async () => {
  const { net, client } = setup({ reconnect: { initialDelayMs: 5, maxDelayMs: 40, jitter: 0 } });
  const delays = [];
  client.on("disconnected", (d) => delays.push(d.reconnectInMs));
  client.connect();
  for (let i = 0; i < 4; i++) (await net.socket(i)).serverClose(1006);
  const s = await connected(net, client, 4);
  s.serverClose(1006);
  await net.socket(5);
  assert.deepEqual(delays, [5, 10, 20, 40, 5]);
  client.close();
});

test("terminal close codes stop reconnecting: 1008 (policy) and 4001 (disconnected by the server)", async () => {
  for (const code of [1008, 4001]) {
    const { net, client } = setup();
    const p = client.connect();
    const s = await connected(net, client);
    const closed = once(client, "closed");
    s.serverClose(code, "bye");
    assert.deepEqual(await closed, { code, reason: "bye" });
    await sleep(20);
    assert.equal(net.sockets.length, 1, `no reconnect after ${code}`);
    assert.equal(client.state, "closed");
    await p;
  }
});

test("a refused upgrade (401) with a static token closes; connect() rejects", async () => {
  const { net, client } = setup({ token: "bad" });
  const p = client.connect();
  (await net.socket(0)).refuse(401);
  await assert.rejects(p, (e) => e.code === "UNAUTHORIZED_CLIENT" && /401/.test(e.message));
  assert.equal(client.state, "closed");
});

test("a refused upgrade (401) with getToken retries once with a fresh token, then closes", async () => {
  const reasons = [];
  let n = 0;
  const { net, client } = setup({ getToken: ({ reason }) => (reasons.push(reason), `t${++n}`) });
  const p = client.connect();
  (await net.socket(0)).refuse(401);
  const s1 = await net.socket(1);
  assert.deepEqual(s1.protocols, ["switchboard.v1", "bearer.t2"]);
  s1.refuse(401);
  await assert.rejects(p, (e) => e.code === "UNAUTHORIZED_CLIENT");
  assert.deepEqual(reasons, ["connect", "connect"]);
});

test("503 (draining) and network failures are transient: the client keeps trying", async () => {
  const { net, client } = setup();
  const p = client.connect();
  (await net.socket(0)).refuse(503);
  (await net.socket(1)).serverClose(1006);
  await connected(net, client, 2);
  await p;
  client.close();
});

test("getToken throwing UnauthorizedError closes the client; other errors are retried", async () => {
  let calls = 0;
  const { net, client } = setup({
    getToken: () => {
      calls++;
      if (calls === 1) throw new Error("auth server down");
      throw new UnauthorizedError("user banned");
    },
  });
  const errors = [];
  client.on("error", (e) => errors.push(e.message));
  await assert.rejects(client.connect(), (e) => e instanceof UnauthorizedError && e.message === "user banned");
  assert.equal(calls, 2);
  assert.equal(net.sockets.length, 0);
  assert.match(errors[0], /auth server down/);
});

test("no welcome within connectTimeoutMs drops the socket and retries", async () => {
  const { net, client } = setup({ connectTimeoutMs: 20 });
  client.connect();
  const s0 = await net.socket(0);
  s0.open();
  const d = await once(client, "disconnected");
  assert.equal(d.code, 3000);
  assert.equal(s0.closed.by, "client");
  await connected(net, client, 1);
  client.close();
});

test("no pong within pingTimeoutMs drops the socket and reconnects", async () => {
  const { net, client } = setup({ pingIntervalMs: 15, pingTimeoutMs: 15 });
  client.connect();
  const s0 = await connected(net, client);
  await net.sent(s0, (m) => m.type === "ping");
  const d = await once(client, "disconnected");
  assert.deepEqual([d.code, d.reason], [3001, "no pong in time"]);
  await net.socket(1);
  client.close();
});

test("a JWT is refreshed before exp on the open connection by default (refresh message)", async () => {
  const soon = Math.floor(Date.now() / 1000) + 2; // margin 1.5 s -> refresh after ~1 s (minimum)
  const tokens = [fakeJwt(soon, "a"), fakeJwt(soon + 3600, "b")];
  const reasons = [];
  const { net, client } = setup({ getToken: ({ reason }) => (reasons.push(reason), tokens.shift()), refresh: { marginMs: 1500 } });
  client.connect();
  const s0 = await connected(net, client);
  const m = await net.sent(s0, (x) => x.type === "refresh");
  assert.equal(m.token, fakeJwt(soon + 3600, "b"));
  s0.answer(m, { type: "refreshed" });
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(net.sockets.length, 1, "no reconnect");
  assert.equal(s0.closed, null, "the connection stays open");
  assert.deepEqual(reasons, ["connect", "refresh"]);
  client.close();
});

test("refresh mode `reconnect` refreshes a JWT before exp by reconnecting with the new token", async () => {
  const soon = Math.floor(Date.now() / 1000) + 2; // margin 1.5 s -> refresh after ~1 s (minimum)
  const tokens = [fakeJwt(soon, "a"), fakeJwt(soon + 3600, "b")];
  const reasons = [];
  const { net, client } = setup({ getToken: ({ reason }) => (reasons.push(reason), tokens.shift()), refresh: { marginMs: 1500, mode: "reconnect" } });
  client.connect();
  const s0 = await connected(net, client);
  const s1 = await net.socket(1);
  assert.equal(s0.closed.code, 1000);
  assert.match(s1.protocols[1], /^bearer\./);
  assert.equal(s1.protocols[1].split(".")[2], fakeJwt(soon + 3600, "b").split(".")[1]);
  assert.deepEqual(reasons, ["connect", "refresh"]);
  client.close();
});

test("refresh mode `message` sends {type: refresh, token} on the open connection", async () => {
  let n = 0;
  const far = Math.floor(Date.now() / 1000) + 3600;
  const { net, client } = setup({ getToken: () => fakeJwt(far, `u${++n}`), refresh: { mode: "message" } });
  client.connect();
  const s0 = await connected(net, client);
  const done = client.refresh();
  const m = await net.sent(s0, (x) => x.type === "refresh");
  assert.equal(m.token, fakeJwt(far, "u2"));
  s0.answer(m, { type: "refreshed" });
  await done;
  assert.equal(net.sockets.length, 1, "no reconnect");
  // A refused refresh falls back to a reconnect with the new token.
  const again = client.refresh();
  s0.answer(await net.sent(s0, (x) => x.type === "refresh"), { type: "error", code: "UNKNOWN_MESSAGE_TYPE", message: "Unknown message type: refresh" });
  await again;
  assert.deepEqual((await net.socket(1)).protocols, ["switchboard.v1", `bearer.${fakeJwt(far, "u3")}`]);
  client.close();
});

test("a server push of a refresh type triggers a refresh", async () => {
  let n = 0;
  const { net, client } = setup({ getToken: () => `k${++n}` });
  client.connect();
  const s0 = await connected(net, client);
  s0.push({ type: "token:expiring", expiresAt: "2030-01-01T00:00:00Z" });
  const m = await net.sent(s0, (x) => x.type === "refresh");
  assert.equal(m.token, "k2");
  s0.answer(m, { type: "refreshed" });
  // In reconnect mode the same push reconnects with the new token.
  const r = setup({ getToken: () => `r${++n}`, refresh: { mode: "reconnect" } });
  r.client.connect();
  const r0 = await connected(r.net, r.client);
  r0.push({ type: "token:expiring", expiresAt: "2030-01-01T00:00:00Z" });
  const r1 = await r.net.socket(1);
  assert.deepEqual(r1.protocols, ["switchboard.v1", `bearer.r${n}`]);
  r.client.close();
  client.close();
});

test("call() sends an application message and resolves with the reply's data", async () => {
  const { net, client } = setup();
  client.connect();
  const s = await connected(net, client);
  const p = client.call("chat.send", { text: "hi" });
  const m = await net.sent(s);
  assert.deepEqual([m.type, m.data], ["chat.send", { text: "hi" }]);
  s.answer(m, { type: "reply", data: { ok: true } });
  assert.deepEqual(await p, { ok: true });
  const q = client.call("nope");
  s.answer(await net.sent(s, (x) => x.type === "nope"), { type: "error", code: "UNKNOWN_MESSAGE_TYPE", message: "Unknown message type: nope" });
  await assert.rejects(q, (e) => e.code === "UNKNOWN_MESSAGE_TYPE");
  client.close();
});

test("pushes: verbatim server messages, direct messages and error frames without requestId", async () => {
  const { net, client } = setup();
  client.connect();
  const s = await connected(net, client);
  const got = { serverMessage: [], direct: [], error: [] };
  for (const k of Object.keys(got)) client.on(k, (x) => got[k].push(x));
  s.push({ hello: "broadcast" });
  s.push([1, 2]);
  s.push({ type: "direct", from: "c9", data: 1, timestamp: "t" });
  s.push({ type: "error", code: "INVALID_JSON", message: "Invalid JSON format" });
  s.push("{not json");
  assert.deepEqual(got.serverMessage, [{ hello: "broadcast" }, [1, 2]]);
  assert.deepEqual(got.direct, [{ type: "direct", from: "c9", data: 1, timestamp: "t" }]);
  assert.deepEqual(got.error.map((e) => e.code), ["INVALID_JSON", "INVALID_JSON"]);
  assert.ok(got.error.every((e) => e instanceof SwitchboardError));
  client.close();
});

test("close() rejects pending requests with CLIENT_CLOSED and connect() starts again", async () => {
  const { net, client } = setup();
  client.connect();
  const s = await connected(net, client);
  const p = client.request("ping");
  await net.sent(s);
  client.close();
  await assert.rejects(p, (e) => e.code === "CLIENT_CLOSED");
  assert.equal(s.closed.code, 1000);
  const again = client.connect();
  await connected(net, client, 1);
  await again;
  client.close();
});

test("a throwing listener does not break the client", async () => {
  const { net, client } = setup();
  const orig = console.error;
  console.error = () => {};
  try {
    client.on("connected", () => {
      throw new Error("app bug");
    });
    client.connect();
    await connected(net, client);
    assert.equal(client.state, "connected");
  } finally {
    console.error = orig;
    client.close();
  }
});
