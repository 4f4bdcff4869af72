// The shared end-to-end suite: one example server per runtime serving examples/demo.json,
// driven by a real WebSocket client over 127.0.0.1. Each runtime's *.test.mjs calls
// runtimeSuite(); runtime-specific behaviour is passed in `traits`.
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { startServer, connect, demoVariant, sleep } from "./helpers.mjs";

/** Mint an HS256 JWT with the demo secret (what `switchboard token` does). */
export function jwt(claims, secret = "dev-secret") {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");
  const data = `${b64({ alg: "HS256", typ: "JWT" })}.${b64({ exp: Math.floor(Date.now() / 1000) + 3600, ...claims })}`;
  return `${data}.${createHmac("sha256", secret).update(data).digest("base64url")}`;
}

/**
 * @param {string} runtime  node | deno | bun | workerd
 * @param {object} traits
 * @param {"socket"|"idle"|"none"} traits.pings  who sends WebSocket pings: the engine
 *        through the socket, the runtime's idle timer (Deno), or nobody (workerd)
 * @param {object} [traits.env]  more environment for the server
 * @param {string} [traits.label]  the suites' name (default: runtime)
 */
export function runtimeSuite(runtime, traits) {
  const label = traits.label ?? runtime;
  describe(`${label}: demo deployment`, () => {
    let srv;
    const open = [];
    const client = async (path = "/", opts) => {
      const c = await connect(srv.url + path, opts);
      open.push(c);
      return c;
    };
    before(async () => {
      srv = await startServer(runtime, traits.env);
    });
    after(async () => {
      await Promise.all(open.map((c) => c.close()));
      await srv?.stop();
    });

    test("welcome frame on / and /ws, subprotocol echoed", async () => {
      const a = await client("/");
      const w = await a.next("connected");
      assert.equal(w.protocolVersion, 1);
      assert.match(w.clientId, /^[A-Za-z0-9_-]{22}$/);
      assert.equal(w.user, null);
      assert.match(w.timestamp, /^\d{4}-\d\d-\d\dT/);
      const b = await client("/ws", { protocols: ["switchboard.v1"] });
      assert.equal((await b.next("connected")).protocolVersion, 1);
      assert.equal(b.protocol, "switchboard.v1");
      const pong = await a.request({ type: "ping" });
      assert.equal(pong.type, "pong");
    });

    test("unknown route and bad credentials are refused with JSON bodies", async () => {
      await assert.rejects(connect(srv.url + "/nope"), (e) => e.status === 404 && JSON.parse(e.body).code === "NOT_FOUND");
      await assert.rejects(connect(srv.url + "/?token=not-a-key"), (e) => e.status === 401 && JSON.parse(e.body).code === "UNAUTHORIZED");
    });

    test("auth: API key in ?token= and an HS256 JWT", async () => {
      const u = await client("/?token=key_user");
      assert.deepEqual((await u.next("connected")).user, { id: "u1", role: "user", scopes: [] });
      const admin = await client("/?token=key_admin");
      assert.equal((await admin.next("connected")).user.role, "admin");
      const j = await client("/", { headers: { authorization: `Bearer ${jwt({ sub: "u7", role: "user" })}` } });
      assert.equal((await j.next("connected")).user.id, "u7");
    });

    test("HTTP: healthz, readyz, metrics, server info", async () => {
      const h = await fetch(srv.http + "/healthz");
      assert.equal(h.status, 200);
      assert.deepEqual(await h.json(), { status: "ok" });
      assert.equal((await fetch(srv.http + "/readyz")).status, 200);
      const m = await (await fetch(srv.http + "/metrics")).text();
      assert.match(m, /^switchboard_connections_total \d+$/m);
      assert.match(m, /^switchboard_sockets_open \d+$/m);
      const info = await (await fetch(srv.http + "/")).json();
      assert.equal(info.name, "switchboard-demo");
      assert.equal(info.protocolVersion, 1);
      // Counts and resource names are not public (Host option publicInfo).
      assert.deepEqual(info, { name: "switchboard-demo", protocolVersion: 1, draining: false });
      assert.equal((await fetch(srv.http + "/nothing-here")).status, 404);
    });

    test("subscribe + insert over the socket -> event (filtered)", async () => {
      const a = await client();
      const b = await client("/?token=key_user");
      await a.next("connected");
      await b.next("connected");
      const sub = await a.request({ type: "subscribe", resource: "messages", filter: { channel: "general" } });
      assert.equal(sub.type, "subscribed", JSON.stringify(sub));
      const ins = await b.request({ type: "insert", resource: "messages", data: { content: "off-topic", author: "u1", channel: "random" } });
      assert.equal(ins.type, "inserted");
      const ins2 = await b.request({ type: "insert", resource: "messages", data: { content: "hello", author: "u1", channel: "general" } });
      assert.equal(ins2.type, "inserted");
      const ev = await a.next("event");
      assert.equal(ev.event, "insert");
      assert.equal(ev.resource, "messages");
      assert.equal(ev.data.content, "hello"); // the "random" one was filtered out
      assert.equal(ev.data.id, ins2.data.id);
      const got = await a.request({ type: "get", resource: "messages", id: ins2.data.id });
      assert.equal(got.data.content, "hello");
      const list = await a.request({ type: "list", resource: "messages", filter: { channel: "general" } });
      assert.ok(list.data.some((r) => r.id === ins2.data.id));
      await sleep(100);
      assert.equal(a.frames.filter((f) => f.type === "event").length, 0, "no event for the filtered-out insert");
    });

    test("rooms: join, presence, room:message, members, leave", async () => {
      const a = await client();
      const b = await client();
      const wa = await a.next("connected");
      const wb = await b.next("connected");
      assert.equal((await a.request({ type: "join", room: "lobby" })).members, 1);
      assert.equal((await b.request({ type: "join", room: "lobby" })).members, 2);
      assert.equal((await a.next("room:joined")).member.clientId, wb.clientId);
      b.send({ type: "room:message", room: "lobby", event: "typing", data: { t: 1 } });
      const rm = await a.next("room:message");
      assert.deepEqual([rm.from, rm.event, rm.data], [wb.clientId, "typing", { t: 1 }]);
      const members = await a.request({ type: "room:members", room: "lobby" });
      assert.deepEqual(members.members.map((m) => m.clientId), [wa.clientId, wb.clientId]);
      await b.request({ type: "leave", room: "lobby" });
      assert.equal((await a.next("room:left")).clientId, wb.clientId);
    });

    test("rate limit: the 101st request in a minute is refused", async () => {
      const c = await client();
      await c.next("connected");
      for (let i = 0; i < 105; i++) c.send({ type: "ping", requestId: i });
      const err = await c.next((f) => f.type === "error" && f.code === "RATE_LIMIT_EXCEEDED", 5000);
      assert.ok(err.requestId >= 100, `first refusal at requestId ${err.requestId}`);
      assert.equal(c.frames.filter((f) => f.type === "pong").length, 100);
    });

    test("oversize frame: PAYLOAD_TOO_LARGE, then close 1009", async () => {
      const c = await client();
      await c.next("connected");
      c.send("x".repeat(1024 * 1024 + 1));
      const close = await c.waitClose(10000);
      assert.equal(close.code, 1009, JSON.stringify(close));
      assert.equal(close.reason, "message too big");
      assert.equal((await c.next("error")).code, "PAYLOAD_TOO_LARGE");
    });

    test("a client's close releases the connection at once (room:left, direct NOT_FOUND)", async () => {
      const a = await client();
      const b = await client();
      await a.next("connected");
      const wb = await b.next("connected");
      await a.request({ type: "join", room: "gone" });
      await b.request({ type: "join", room: "gone" });
      await a.next("room:joined");
      b.ws.close(1000); // no waiting for the TCP connection to end
      assert.equal((await a.next("room:left")).clientId, wb.clientId);
      const dm = await a.request({ type: "direct", to: wb.clientId, data: 1 });
      assert.equal(dm.code, "NOT_FOUND");
    });
  });

  describe(`${label}: heartbeat (demo with heartbeatInterval 400 ms, heartbeatTimeout 400 ms)`, () => {
    let srv;
    const open = [];
    before(async () => {
      const path = demoVariant({ heartbeatInterval: 400, heartbeatTimeout: 400 });
      srv = await startServer(runtime, { ...traits.env, SWITCHBOARD_CONFIG: path, SWITCHBOARD_TEST_HOOKS: "1" });
    });
    after(async () => {
      await Promise.all(open.map((c) => c.close()));
      await srv?.stop();
    });

    if (traits.pings === "socket") {
      test("pings are sent; a client that answers stays, one that does not is closed with 4000", async () => {
        const alive = await connect(srv.url);
        const silent = await connect(srv.url, { autoPong: false });
        open.push(alive, silent);
        const close = await silent.waitClose(3000);
        assert.equal(close.code, 4000);
        assert.equal(close.reason, "heartbeat timeout");
        assert.ok(silent.pings >= 1);
        await alive.until(() => alive.pings >= 3, 3000, "3 pings");
        assert.equal(alive.closeInfo, null);
        assert.equal((await alive.request({ type: "ping" })).type, "pong");
      });
    } else if (traits.pings === "idle") {
      test("the runtime's idle pings reach the client; a client that answers stays", async () => {
        const alive = await connect(srv.url);
        open.push(alive);
        await alive.until(() => alive.pings >= 2, 5000, "2 runtime pings");
        assert.equal(alive.closeInfo, null);
        assert.equal((await alive.request({ type: "ping" })).type, "pong");
      });
      test("a client that never answers pings is closed by the runtime", async () => {
        const silent = await connect(srv.url, { autoPong: false });
        open.push(silent);
        const close = await silent.waitClose(8000);
        assert.notEqual(close.code, 1000);
      });
    } else {
      test("engine deadlines fire through alarms; quiet connections stay open", async () => {
        const c = await connect(srv.url);
        open.push(c);
        await c.next("connected");
        await sleep(2000); // five heartbeat intervals
        const stats = await (await fetch(srv.http + "/__test/stats")).json();
        assert.ok(stats.alarms >= 2, `alarms fired: ${JSON.stringify(stats)}`);
        assert.equal(c.closeInfo, null);
        assert.equal((await c.request({ type: "ping" })).type, "pong");
      });
    }
  });
}
