// End to end against the native host (SQLite, durable channel streams) on 127.0.0.1:
// recovery of a channel with history across kill -9 + restart, presence with join/leave
// pushes, and application messages answered by a webhook handler.
import { createServer } from "node:http";
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { WebSocket } from "ws";
import { Client } from "../../dist/index.js";
import { TestServer, jwt, until } from "./servers.mjs";

const backoff = { initialDelayMs: 50, maxDelayMs: 400, jitter: 0.5 };

function collect(emitter, event, map = (x) => x) {
  const out = [];
  emitter.on(event, (x) => out.push(map(x)));
  return out;
}

/**
 * A WebSocket class whose connections can be held back: while `gate.closed`, every
 * attempt goes to a port nothing listens on (refused at once), so the client keeps
 * retrying with backoff until the gate opens. Lets a test decide exactly when a client
 * reconnects.
 */
function gatedWebSocket(gate) {
  return class extends WebSocket {
    constructor(url, protocols) {
      super(gate.closed ? "ws://127.0.0.1:1/" : url, protocols);
    }
  };
}

/** A webhook server for application messages (PROTOCOL.md "Webhooks"). */
async function webhooks() {
  const calls = [];
  const routes = {
    "/echo": (call) => ({
      commands: [{ command: "send", message: { type: "echo:push", data: call.data } }],
      reply: { echo: call.data, from: call.client.clientId },
    }),
    "/refuse": () => ({ error: { code: "FORBIDDEN", message: "the application says no" } }),
  };
  const server = createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const route = routes[req.url];
      if (req.method !== "POST" || !route) return res.writeHead(404).end();
      const call = JSON.parse(Buffer.concat(chunks).toString("utf8"));
      calls.push(call);
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(route(call)));
    });
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  return { url: `http://127.0.0.1:${server.address().port}`, calls, close: () => server.close() };
}

describe("native host: channel streams, presence and application messages", () => {
  let server;
  let hooks;
  const clients = [];
  const make = (opts = {}) => {
    const c = new Client({ url: server.url, WebSocket, reconnect: backoff, pingIntervalMs: 0, requestTimeoutMs: 5000, ...opts });
    clients.push(c);
    return c;
  };
  before(async () => {
    hooks = await webhooks();
    server = new TestServer("native", {
      extra: {
        channels: {
          namespaces: [{ pattern: "chat:*", history: { size: 1000, ttlMs: 300000 }, presence: true, joinLeave: true }],
        },
        messages: { echo: { webhook: `${hooks.url}/echo` }, refuse: { webhook: `${hooks.url}/refuse` } },
      },
    });
    await server.start();
  });
  after(async () => {
    for (const c of clients) c.close();
    await server?.dispose();
    hooks?.close();
  });

  test("kill -9 and restart with history: the client recovers (recovered: true) with no lost publication", async () => {
    const gate = { closed: false };
    const sub = make({ WebSocket: gatedWebSocket(gate) });
    const pub = make();
    const chat = sub.channel("chat:durable").subscribe();
    const got = collect(chat, "message", (m) => [m.offset, m.data.n]);
    const subscribed = collect(chat, "subscribed");
    await Promise.all([sub.connect(), pub.connect()]);
    await chat.ready();
    const epoch = chat.epoch;
    assert.equal(typeof epoch, "string");
    for (let n = 1; n <= 20; n++) assert.equal((await pub.publish("chat:durable", { n })).delivered, 1);
    await until(() => got.length === 20, "the first 20 publications");

    // Crash the server; the subscriber stays away until the gate opens.
    gate.closed = true;
    await server.stop("SIGKILL");
    await server.start();
    await until(() => pub.state === "connected", "the publisher reconnected");
    // Published while the subscriber is away: nobody receives them live.
    for (let n = 21; n <= 30; n++) assert.equal((await pub.publish("chat:durable", { n })).delivered, 0);
    assert.equal(chat.state, "subscribing");

    gate.closed = false;
    await until(() => chat.state === "subscribed" && subscribed.length === 2, "resubscribed after the restart");
    const ctx = subscribed[1];
    assert.deepEqual([ctx.resubscribed, ctx.wasRecovering, ctx.recovered], [true, true, true], "recovered across kill -9");
    assert.equal(ctx.epoch, epoch, "the stream kept its epoch across the restart");
    assert.equal(ctx.frame.publications.length, 10, "the ten missed publications were replayed");
    await until(() => got.length === 30, "the replayed publications");
    for (let n = 31; n <= 32; n++) assert.equal((await pub.publish("chat:durable", { n })).delivered, 1);
    await until(() => got.length === 32, "live publications after the recovery");
    assert.deepEqual(
      got,
      Array.from({ length: 32 }, (_, i) => [i + 1, i + 1]),
      "every publication exactly once, in order, offsets continuous",
    );
    assert.equal(chat.offset, 32);
  });

  test("presence: join/leave pushes, the client list (with the public info claim) and stats against the real host", async () => {
    const exp = Math.floor(Date.now() / 1000) + 3600;
    const a = make({ token: jwt({ sub: "ann", info: { name: "Ann" }, email: "ann@example.com", exp }) });
    const b = make();
    await Promise.all([a.connect(), b.connect()]);
    const chA = a.channel("chat:presence").subscribe();
    await chA.ready();
    const joins = collect(chA, "join", (f) => f.member.clientId);
    const leaves = collect(chA, "leave", (f) => f.member.clientId);
    const chB = b.channel("chat:presence").subscribe();
    await chB.ready();
    await until(() => joins.length === 1, "a sees b join");
    assert.deepEqual(joins, [b.clientId]);

    const list = await chB.presence();
    assert.deepEqual(list.clients.map((c) => c.clientId), [a.clientId, b.clientId], "subscription order");
    assert.deepEqual(list.clients[0].info, { name: "Ann" }, "the info claim is public");
    assert.equal(list.clients[0].user.email, undefined, "other claims are not");
    assert.equal("info" in list.clients[1], false, "an anonymous client has no info");
    const stats = await chB.presenceStats();
    assert.deepEqual([stats.clients, stats.users], [2, 1], "ann and an anonymous client");

    b.close();
    await until(() => leaves.length === 1, "a sees b leave");
    assert.deepEqual(leaves, [b.clientId]);
    assert.deepEqual((await chA.presence()).clients.map((c) => c.clientId), [a.clientId]);
  });

  test("application messages: a webhook handler's reply, its pushed message and its error", async () => {
    const c = make();
    await c.connect();
    const pushes = collect(c, "serverMessage");
    const reply = await c.call("echo", { n: 7 });
    assert.deepEqual(reply, { echo: { n: 7 }, from: c.clientId });
    await until(() => pushes.some((f) => f.type === "echo:push"), "the handler's pushed message");
    assert.deepEqual(pushes.find((f) => f.type === "echo:push").data, { n: 7 });
    const call = hooks.calls.find((x) => x.data?.n === 7);
    assert.equal(call.client.clientId, c.clientId, "the handler saw the caller");
    await assert.rejects(c.call("refuse", {}), (e) => e.code === "FORBIDDEN" && /application says no/.test(e.message));
    await assert.rejects(c.call("undeclared", {}), (e) => e.code === "UNKNOWN_MESSAGE_TYPE");
  });
});
