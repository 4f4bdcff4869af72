// End to end against real servers on 127.0.0.1: the native host and the Node host.
// The server is killed and restarted while clients are subscribed; the clients reconnect,
// resubscribe and lose no publication the protocol can deliver. Also: the `ws` package's
// socket closed during its handshake (a server that never answers it), and other
// runtimes' standard WebSocket against the native host.
import { execFile } from "node:child_process";
import { createServer } from "node:net";
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { WebSocket } from "ws";
import { Client } from "../../dist/index.js";
import { REPO, TestServer, jwt, nodeHostBuilt, until } from "./servers.mjs";

const backoff = { initialDelayMs: 50, maxDelayMs: 400, jitter: 0.5 };

function client(server, opts = {}) {
  return new Client({ url: server.url, WebSocket, reconnect: backoff, pingIntervalMs: 0, requestTimeoutMs: 5000, ...opts });
}

function collect(emitter, event, map = (x) => x) {
  const out = [];
  emitter.on(event, (x) => out.push(map(x)));
  return out;
}

function suite(kind, { durable }) {
  describe(`${kind} host`, () => {
    let server;
    const clients = [];
    const make = (opts) => {
      const c = client(server, opts);
      clients.push(c);
      return c;
    };
    before(async () => {
      server = new TestServer(kind);
      await server.start();
    });
    after(async () => {
      for (const c of clients) c.close();
      await server?.dispose();
    });

    test("kill and restart while subscribed: reconnect, resubscribe, no lost publication", async () => {
      const sub = make();
      const pub = make();
      const chat = sub.channel("e2e:chat").subscribe();
      const got = collect(chat, "message", (m) => m.data.n);
      const resubscribed = collect(chat, "subscribed");
      await Promise.all([sub.connect(), pub.connect()]);
      await chat.ready();
      const published = [];
      const publish = async (n) => {
        const r = await pub.publish("e2e:chat", { n });
        assert.equal(r.delivered, 1, `publication ${n} reached the subscriber`);
        published.push(n);
      };
      for (let n = 1; n <= 5; n++) await publish(n);
      await until(() => got.length === 5, "the first five publications");

      const disconnected = new Promise((r) => sub.once("disconnected", r));
      await server.stop("SIGKILL");
      const d = await disconnected;
      assert.equal(d.code, 1006, "a killed server is an abnormal closure");
      // While the server is down, requests fail fast (no offline queue on this client).
      await assert.rejects(pub.publish("e2e:chat", { n: -1 }), (e) => e.code === "DISCONNECTED");
      assert.equal(chat.state, "subscribing");

      await server.start();
      await until(() => sub.state === "connected" && pub.state === "connected" && chat.state === "subscribed", "both clients back, subscription restored");
      assert.deepEqual(
        resubscribed.map((c) => [c.resubscribed, c.recovered]),
        [[false, false], [true, false]],
        "resubscribed after the restart; no history on this channel, so nothing to recover",
      );
      for (let n = 6; n <= 10; n++) await publish(n);
      await until(() => got.length === 10, "publications after the restart");
      assert.deepEqual(got, published, "every acknowledged publication arrived, in order, once");
    });

    test("writes queued while the server is down are sent after resubscribing, and their events arrive", async () => {
      const c = make({ offlineQueue: { maxSize: 10 } });
      await c.connect();
      const messages = c.resource("messages");
      const sub = c.subscribe("messages", { filter: { room: "q" } });
      await sub.ready();
      const events = collect(sub, "insert", (e) => e.record.text);
      const before = await messages.insert({ room: "q", text: "before" });
      await until(() => events.length === 1, "the first insert event");

      await server.stop("SIGKILL");
      await until(() => c.state !== "connected", "the client notices the loss");
      const queued = ["q1", "q2", "q3"].map((text) => messages.insert({ room: "q", text }));
      assert.equal(c.queuedRequests, 3);
      await server.start();
      const stored = await Promise.all(queued);
      assert.deepEqual(stored.map((r) => r.text), ["q1", "q2", "q3"]);
      await until(() => events.length === 4, "events of the queued inserts");
      assert.deepEqual(events, ["before", "q1", "q2", "q3"]);
      if (durable) {
        // SQLite: the record written before the crash is still there.
        assert.equal((await messages.get(before.id)).text, "before");
      } else {
        await assert.rejects(messages.get(before.id), (e) => e.code === "NOT_FOUND");
      }
    });

    test("graceful shutdown (SIGTERM, close 1001) is reconnected the same way", async () => {
      const c = make();
      const ch = c.channel("e2e:term").subscribe();
      await c.connect();
      await ch.ready();
      const disconnected = new Promise((r) => c.once("disconnected", r));
      await server.stop("SIGTERM");
      const d = await disconnected;
      assert.equal(d.code, 1001);
      await server.start();
      await until(() => ch.state === "subscribed", "resubscribed after a graceful restart");
      const got = collect(ch, "message", (m) => m.data);
      const other = make();
      await other.connect();
      await other.publish("e2e:term", "after");
      await until(() => got.length === 1, "a publication after the restart");
    });

    test("credentials: API key and JWT from getToken; a refused token closes the client", async () => {
      const byKey = make({ token: "key_user" });
      assert.deepEqual((await byKey.connect()).user, { id: "u1", role: "user", scopes: [] });
      const exp = Math.floor(Date.now() / 1000) + 3600;
      const byJwt = make({ getToken: () => jwt({ sub: "ann", role: "admin", scope: "read write", exp }) });
      assert.deepEqual((await byJwt.connect()).user, { id: "ann", role: "admin", scopes: ["read", "write"] });
      const query = make({ token: jwt({ sub: "q", exp }), tokenTransport: "query" });
      assert.equal((await query.connect()).user.id, "q");
      const bad = make({ token: "not-a-key" });
      await assert.rejects(bad.connect(), (e) => e.code === "UNAUTHORIZED_CLIENT" && /401/.test(e.message));
      assert.equal(bad.state, "closed");
    });

    test("CRUD, rooms, direct messages and server errors over a real connection", async () => {
      const a = make();
      const b = make();
      await Promise.all([a.connect(), b.connect()]);
      const m = a.resource("messages");
      const rec = await m.insert({ text: "hi", room: "crud" });
      assert.equal((await m.update(rec.id, { text: "hey" })).text, "hey");
      assert.equal((await m.get(rec.id)).text, "hey");
      const page = await m.list({ filter: { room: "crud" }, limit: 10 });
      assert.deepEqual(page.records.map((r) => r.id), [rec.id]);
      assert.equal(await m.delete(rec.id), rec.id);
      await assert.rejects(m.get(rec.id), (e) => e.code === "NOT_FOUND");
      await assert.rejects(a.resource("nope").get("x"), (e) => e.code === "RESOURCE_NOT_FOUND");

      const ra = a.room("lobby");
      const rb = b.room("lobby");
      const joins = collect(ra, "memberJoined", (j) => j.member.clientId);
      const msgs = collect(rb, "message", (x) => [x.from, x.event, x.data]);
      await ra.join();
      assert.deepEqual(await rb.join(), { members: 2 });
      await until(() => joins.length === 1, "presence");
      assert.equal(joins[0], b.clientId);
      assert.deepEqual(await ra.send({ t: 1 }, { event: "say" }), { delivered: 1 });
      await until(() => msgs.length === 1, "room message");
      assert.deepEqual(msgs[0], [a.clientId, "say", { t: 1 }]);
      assert.equal((await rb.members()).length, 2);

      const directs = collect(b, "direct", (x) => [x.from, x.data]);
      assert.deepEqual(await a.sendDirect(b.clientId, "psst"), { delivered: 1 });
      await until(() => directs.length === 1, "direct");
      assert.deepEqual(directs[0], [a.clientId, "psst"]);
      await assert.rejects(a.sendDirect("nobody", 1), (e) => e.code === "NOT_FOUND");
      assert.ok((await a.ping()) >= 0);
    });
  });
}

suite("native", { durable: true });

// The `ws` package emits an `error` event when a socket still in its handshake is closed;
// without a listener that is an uncaught exception, which ends a Node process. A server
// on 127.0.0.1 that accepts TCP connections and never answers keeps the handshake pending.
describe("the ws package: a socket closed during its handshake", () => {
  let silent;
  const sockets = new Set();
  let accepted = 0;
  before(async () => {
    silent = createServer((s) => {
      accepted++;
      sockets.add(s);
      s.on("error", () => {}); // a reset by the client is expected here
      s.on("close", () => sockets.delete(s));
    });
    await new Promise((r) => silent.listen(0, "127.0.0.1", r));
  });
  const clients = [];
  const make = (opts) => {
    const c = new Client({ url: `ws://127.0.0.1:${silent.address().port}/`, WebSocket, pingIntervalMs: 0, ...opts });
    clients.push(c);
    return c;
  };
  after(async () => {
    for (const c of clients) c.close();
    for (const s of sockets) s.destroy();
    await new Promise((r) => silent.close(r));
  });
  // Long enough for `ws` to emit its error (next tick) while this test still runs, so an
  // uncaught exception fails this test rather than the file.
  const settle = () => new Promise((r) => setTimeout(r, 100));

  test("close() while connecting ends the client without an uncaught error", async () => {
    const start = accepted;
    const c = make({ reconnect: false });
    const connecting = c.connect();
    connecting.catch(() => {}); // asserted below; not unhandled if `until` fails first
    await until(() => accepted > start, "the TCP connection");
    c.close();
    await assert.rejects(connecting, (e) => e.code === "CLIENT_CLOSED");
    await settle();
    assert.equal(c.state, "closed");
  });

  test("connectTimeoutMs drops the pending handshake and reconnects without an uncaught error", async () => {
    const start = accepted;
    const c = make({ reconnect: backoff, connectTimeoutMs: 50 });
    const connecting = c.connect();
    connecting.catch(() => {}); // asserted below; not unhandled if `until` fails first
    const disconnects = collect(c, "disconnected", (d) => d.code);
    await until(() => accepted >= start + 2, "a second attempt after the timeout");
    c.close();
    await assert.rejects(connecting, (e) => e.code === "CLIENT_CLOSED");
    await settle();
    assert.ok(disconnects.length >= 1, "the timed-out attempt was reported as a disconnect");
    assert.equal(disconnects[0], 3000, "with the connect timeout's close code (CLIENT_CLOSE.connectTimeout)");
    assert.equal(c.state, "closed");
  });
});

describe("other runtimes with their standard WebSocket (against the native host)", () => {
  let server;
  before(async () => {
    server = new TestServer("native", { memory: true });
    await server.start();
  });
  after(() => server?.dispose());
  const script = new URL("./runtime-smoke.mjs", import.meta.url).pathname;
  const bin = (name) => `${REPO}host-js/node_modules/.bin/${name}`;
  const runtimes = {
    deno: () => [bin("deno"), ["run", "--allow-net", "--allow-read", "--allow-env", script, server.url]],
    bun: () => [bin("bun"), [script, server.url]],
    "node --experimental-websocket": () => [process.execPath, ["--experimental-websocket", "--no-warnings", script, server.url]],
  };
  for (const [name, cmd] of Object.entries(runtimes)) {
    test(name, async () => {
      const [file, args] = cmd();
      const out = await new Promise((resolve, reject) =>
        execFile(file, args, { timeout: 30000, env: { ...process.env, NO_COLOR: "1" } }, (err, stdout, stderr) =>
          err ? reject(new Error(`${name} failed: ${err.message}\n${stderr}`)) : resolve(stdout),
        ),
      );
      const r = JSON.parse(out.trim().split("\n").at(-1));
      assert.deepEqual([r.user, r.delivered, r.data.hello], ["u1", 1, `from ${name.split(" ")[0]}`]);
    });
  }
});
if (nodeHostBuilt()) suite("node", { durable: false });
else {
  test("node host", () => {
    throw new Error("host-js is not built: run `bash host-js/build.sh` first (scripts/test.sh does)");
  });
}
