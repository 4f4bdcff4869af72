// End-to-end tests of the Cloudflare host (examples/cloudflare: Worker + Durable Object)
// in workerd through miniflare, over real sockets, plus the hibernation tests.
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { runtimeSuite } from "./suite.mjs";
import { startServer, connect, demoVariant, sleep } from "./helpers.mjs";

runtimeSuite("workerd", { pings: "none" });
// The same with every socket accepted without the Hibernation API, and with the sockets
// relayed by the Worker (host-js/README.md, "Closing silent sockets on workerd").
runtimeSuite("workerd", { pings: "none", label: "workerd without hibernation", env: { SWITCHBOARD_HIBERNATION: "0" } });
runtimeSuite("workerd", { pings: "none", label: "workerd through the Worker relay", env: { SWITCHBOARD_RELAY: "1" } });

describe("workerd: Durable Object hibernation", () => {
  let srv;
  const open = [];
  const hook = async (p) => (await fetch(srv.http + p)).json();
  before(async () => {
    srv = await startServer("workerd", { SWITCHBOARD_TEST_HOOKS: "1" });
  });
  after(async () => {
    await Promise.all(open.map((c) => c.close()));
    await srv?.stop();
  });

  test("subscriptions, rooms and channels survive eviction (state rebuilt from attachments and storage)", async () => {
    const a = await connect(srv.url);
    const b = await connect(srv.url + "/?token=key_user");
    const big = await connect(srv.url);
    open.push(a, b, big);
    const wa = await a.next("connected");
    const wb = await b.next("connected");
    await big.next("connected");
    assert.equal((await a.request({ type: "subscribe", resource: "messages", filter: { channel: "general" } })).type, "subscribed");
    await a.request({ type: "join", room: "lobby" });
    await b.request({ type: "join", room: "lobby" });
    await a.next("room:joined");
    // > 2 KiB of connection state: its snapshot goes to Durable Object storage.
    for (let i = 0; i < 24; i++) {
      const r = await big.request({ type: "subscribe", channel: `channel-${i}-${"x".repeat(90)}` });
      assert.equal(r.type, "subscribed");
    }
    const before = await hook("/__test/stats");
    assert.ok(before.storedSnapshots >= 1, JSON.stringify(before));

    assert.deepEqual(await hook("/__test/evict"), { evicted: true });
    // The next event wakes the object: a new engine, every socket restored.
    const after = await hook("/__test/stats");
    assert.equal(after.starts, before.starts + 1);
    assert.equal(after.restored, 3, JSON.stringify(after));
    assert.equal(after.connections, 3);

    const ins = await b.request({ type: "insert", resource: "messages", data: { content: "after wake", author: "u1", channel: "general" } });
    assert.equal(ins.type, "inserted");
    assert.equal((await a.next("event")).data.content, "after wake");
    b.send({ type: "room:message", room: "lobby", data: "still here" });
    const rm = await a.next("room:message");
    assert.equal(rm.from, wb.clientId);
    const pub = await b.request({ type: "publish", channel: `channel-7-${"x".repeat(90)}`, message: { n: 7 } });
    assert.equal(pub.delivered, 1);
    assert.deepEqual((await big.next("message")).data, { n: 7 });
    // Client ids survive too: a direct message by the pre-eviction id.
    const dm = await b.request({ type: "direct", to: wa.clientId, data: "hi", ack: true });
    assert.equal(dm.delivered, 1);
    assert.equal((await a.next("direct")).data, "hi");
    // Records live in Durable Object storage, not in the engine.
    const got = await a.request({ type: "get", resource: "messages", id: ins.data.id });
    assert.equal(got.data.content, "after wake");
  });

  test("a real object reset (ctx.abort) drops the sockets but keeps the records in storage", async () => {
    // miniflare cannot evict an object while keeping its hibernated sockets (what
    // Cloudflare does); ctx.abort() is the closest real reset it offers, and it
    // disconnects every socket (1006). Records in Durable Object storage survive it.
    const a = await connect(srv.url);
    open.push(a);
    await a.next("connected");
    const ins = await a.request({ type: "insert", resource: "messages", data: { content: "durable", channel: "general" } });
    assert.equal((await fetch(srv.http + "/__test/abort")).status, 500);
    assert.equal((await a.waitClose(5000)).code, 1006);
    const b = await connect(srv.url);
    open.push(b);
    await b.next("connected");
    assert.equal((await b.request({ type: "get", resource: "messages", id: ins.data.id })).data.content, "durable");
  });
});

describe("workerd: channel history in Durable Object storage", () => {
  let srv;
  const open = [];
  before(async () => {
    srv = await startServer("workerd", { SWITCHBOARD_TEST_HOOKS: "1" });
  });
  after(async () => {
    await Promise.all(open.map((c) => c.close()));
    await srv?.stop();
  });

  test("a real object reset (ctx.abort) between a disconnect and the reconnect: the client still recovers", async () => {
    const a = await connect(srv.url);
    const b = await connect(srv.url);
    open.push(a, b);
    await a.next("connected");
    await b.next("connected");
    const sub = await a.request({ type: "subscribe", channel: "chat:durable" });
    assert.equal(sub.offset, 0);
    await b.request({ type: "publish", channel: "chat:durable", message: "seen" });
    const seen = await a.next("message");
    assert.equal(seen.offset, 1);
    await b.request({ type: "publish", channel: "chat:durable", message: "missed 1" });
    await a.next("message"); // `a` saw offset 2 too; it will resume from 1 to prove the replay
    await b.request({ type: "publish", channel: "chat:durable", message: "missed 2" });
    // The object resets: every socket drops, the engine and its memory are gone.
    assert.equal((await fetch(srv.http + "/__test/abort")).status, 500);
    assert.equal((await a.waitClose(5000)).code, 1006);
    const c = await connect(srv.url);
    open.push(c);
    await c.next("connected");
    const r = await c.request({ type: "subscribe", channel: "chat:durable", since: { offset: 1, epoch: sub.epoch } });
    assert.equal(r.recovered, true, JSON.stringify(r));
    assert.equal(r.epoch, sub.epoch);
    assert.deepEqual(
      r.publications.map((p) => [p.offset, p.data]),
      [
        [2, "missed 1"],
        [3, "missed 2"],
      ],
    );
    // And the stream goes on from there.
    const d = await connect(srv.url);
    open.push(d);
    await d.next("connected");
    assert.equal((await d.request({ type: "publish", channel: "chat:durable", message: "next" })).delivered, 1);
    assert.equal((await c.next("message")).offset, 4);
  });
});

describe("workerd: the lean module (js/cloudflare-lean.js, no JSON Schema)", () => {
  const servers = [];
  after(async () => {
    await Promise.all(servers.map((s) => s.stop()));
  });

  test("serves the demo without its schema and says so: welcome, subscribe, insert -> event", async () => {
    const srv = await startServer("workerd-lean");
    servers.push(srv);
    assert.match(srv.output(), /lean wasm engine/);
    // The lean module cannot validate: the example drops the demo's schema and says so.
    assert.match(srv.output(), /without resources\.messages\.schema: those records are not validated/);
    const a = await connect(srv.url);
    try {
      await a.next("connected");
      assert.equal((await a.request({ type: "subscribe", resource: "messages" })).type, "subscribed");
      const ins = await a.request({ type: "insert", resource: "messages", data: { content: "lean", channel: "general" } });
      assert.equal(ins.type, "inserted");
      assert.equal((await a.next("event")).data.content, "lean");
      // Not validated here (the full module answers VALIDATION_ERROR: conformance
      // vector crud/demo-messages-schema, n/a on live:workerd-lean).
      const unchecked = await a.request({ type: "insert", resource: "messages", data: { author: "ann" } });
      assert.equal(unchecked.type, "inserted", JSON.stringify(unchecked));
    } finally {
      await a.close();
    }
  });

  test("a deployment with a resource schema is refused: HTTP 500 JSON, the reason in the log", async () => {
    const path = demoVariant({ resources: { messages: { schema: { type: "object" } } } });
    const srv = await startServer("workerd-lean", { SWITCHBOARD_CONFIG: path });
    servers.push(srv);
    const r = await fetch(srv.http + "/info");
    assert.equal(r.status, 500);
    assert.match(r.headers.get("content-type"), /application\/json/);
    const body = await r.json();
    assert.deepEqual([body.type, body.code, body.reason], ["error", "INTERNAL_ERROR", "bad_deployment"]);
    // A WebSocket upgrade gets the same answer.
    const refused = await connect(srv.url).then(
      (c) => (c.close(), null),
      (e) => e,
    );
    assert.equal(refused?.status, 500, String(refused));
    assert.equal(JSON.parse(refused.body).reason, "bad_deployment");
    // The log names the field and the missing feature.
    for (let i = 0; i < 50 && !/json-schema/.test(srv.output()); i++) await sleep(100);
    assert.match(srv.output(), /resources\.messages\.schema/);
    assert.match(srv.output(), /json-schema/);
  });
});
