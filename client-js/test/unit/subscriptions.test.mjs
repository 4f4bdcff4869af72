// Subscriptions (resource and channel), recovery bookkeeping, and rooms, against the
// in-memory WebSocket.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Client } from "../../dist/index.js";
import { FakeNet, autoAnswer, once, sleep } from "./fake.mjs";

function setup(opts = {}) {
  const net = new FakeNet();
  const client = new Client({ url: "ws://127.0.0.1:9/", WebSocket: net.WebSocket, reconnect: { initialDelayMs: 5, jitter: 0 }, pingIntervalMs: 0, ...opts });
  return { net, client };
}

async function up(net, client, n, overrides) {
  const s = await net.socket(n);
  const stop = autoAnswer(net, s, overrides);
  const p = once(client, "connected");
  s.welcome(`c${n + 1}`);
  await p;
  return { s, stop };
}

const ev = (event, data) => ({ type: "event", event, resource: "messages", data, timestamp: "2024-01-15T10:30:00.000Z" });

test("resource events go to the subscriptions whose filter and events match", async () => {
  const { net, client } = setup();
  client.connect();
  const { s } = await up(net, client, 0);
  const general = client.subscribe("messages", { filter: { channel: "general" } });
  const random = client.subscribe("messages", { filter: { channel: "random" }, events: ["insert"] });
  const other = client.subscribe("users");
  await Promise.all([general.ready(), random.ready(), other.ready()]);
  assert.deepEqual(random.events, ["insert"]);
  const got = { general: [], random: [], other: [], all: [] };
  general.on("event", (e) => got.general.push(`${e.event}:${e.record.id}`));
  random.on("insert", (e) => got.random.push(`${e.event}:${e.record.id}`));
  other.on("event", (e) => got.other.push(e.record.id));
  client.on("event", (e) => got.all.push(e.record.id));

  s.push(ev("insert", { id: "a", channel: "general" }));
  s.push(ev("insert", { id: "b", channel: "random" }));
  // An update that moves a record out of `general` reaches `general` (before matched).
  const before = { id: "a", channel: "general" };
  const after = { id: "a", channel: "random" };
  s.push(ev("update", { ...after, $before: before, $after: after }));
  s.push(ev("delete", { ...before, $before: before, $after: null }));
  // Matches no filter here (e.g. a guard-forced view): delivered to every subscription of the resource.
  s.push(ev("insert", { id: "z", channel: "elsewhere" }));

  assert.deepEqual(got.general, ["insert:a", "update:a", "delete:a", "insert:z"]);
  assert.deepEqual(got.random, ["insert:b", "insert:z"]);
  assert.deepEqual(got.other, []);
  assert.deepEqual(got.all, ["a", "b", "a", "a", "z"]);
  client.close();
});

test("event payloads split the record from $before/$after", async () => {
  const { net, client } = setup();
  client.connect();
  const { s } = await up(net, client, 0);
  const sub = client.subscribe("messages");
  await sub.ready();
  const p = once(sub, "update");
  const b = { id: "m", n: 1 };
  const a = { id: "m", n: 2 };
  s.push(ev("update", { ...a, $before: b, $after: a }));
  const e = await p;
  assert.deepEqual([e.record, e.before, e.after, e.resource, e.timestamp], [a, b, a, "messages", "2024-01-15T10:30:00.000Z"]);
  client.close();
});

test("a permanent subscribe refusal ends the subscription; ready() rejects", async () => {
  const { net, client } = setup();
  client.connect();
  await up(net, client, 0, { subscribe: () => ({ type: "error", code: "FORBIDDEN", message: "Access denied" }) });
  const sub = client.subscribe("users");
  const unsub = once(sub, "unsubscribed");
  await assert.rejects(sub.ready(), (e) => e.code === "FORBIDDEN");
  assert.equal((await unsub).error.code, "FORBIDDEN");
  assert.equal(sub.state, "unsubscribed");
  client.close();
});

test("a transient subscribe failure is retried with backoff", async () => {
  const { net, client } = setup();
  client.connect();
  await up(net, client, 0, {
    subscribe: (m, n) => (n === 1 ? { type: "error", code: "UNAVAILABLE", message: "busy" } : { type: "subscribed", subscriptionId: "sub-9", channel: m.channel }),
  });
  const sub = client.channel("c").subscribe();
  const errs = [];
  sub.on("error", (e) => errs.push(e.code));
  await sub.ready();
  assert.deepEqual(errs, ["UNAVAILABLE"]);
  assert.equal(sub.subscriptionId, "sub-9");
  client.close();
});

test("unsubscribe removes by subscriptionId (resources) or channel, and stops resubscribing", async () => {
  const { net, client } = setup();
  client.connect();
  const { s } = await up(net, client, 0);
  const res = client.subscribe("messages");
  const ch = client.channel("news").subscribe();
  await Promise.all([res.ready(), ch.ready()]);
  await res.unsubscribe();
  await ch.unsubscribe();
  const unsubs = s.sent.filter((m) => m.type === "unsubscribe").map(({ subscriptionId, channel }) => ({ subscriptionId, channel }));
  assert.deepEqual(unsubs, [{ subscriptionId: "sub-1", channel: undefined }, { subscriptionId: undefined, channel: "news" }]);
  assert.equal(client.channel("news"), ch, "one object per channel name");
  s.serverClose(1006);
  const { s: s1 } = await up(net, client, 1);
  await sleep(10);
  assert.equal(s1.sent.filter((m) => m.type === "subscribe").length, 0);
  client.close();
});

test("unsubscribe while the subscribe is in flight undoes it on the server", async () => {
  const { net, client } = setup();
  client.connect();
  const s = await net.socket(0);
  const p = once(client, "connected");
  s.welcome();
  await p;
  const sub = client.subscribe("messages");
  const m = await net.sent(s, (x) => x.type === "subscribe");
  await sub.unsubscribe();
  s.answer(m, { type: "subscribed", subscriptionId: "sub-5", resource: "messages", events: ["insert"] });
  const un = await net.sent(s, (x) => x.type === "unsubscribe");
  assert.equal(un.subscriptionId, "sub-5");
  assert.equal(sub.state, "unsubscribed");
  client.close();
});

test("channels with history: offsets are tracked, `since` is sent on resubscribe, replays are deduplicated", async () => {
  const { net, client } = setup();
  const ch = client.channel("chat").subscribe();
  const got = [];
  ch.on("message", (m) => got.push(m.offset ?? m.data));
  client.connect();
  const { s: s0 } = await up(net, client, 0, {
    subscribe: (m) => ({ type: "subscribed", subscriptionId: "sub-1", channel: m.channel, recovered: false, offset: 2, epoch: "e1", publications: [] }),
  });
  await ch.ready();
  assert.deepEqual([ch.offset, ch.epoch], [2, "e1"]);
  s0.push({ type: "message", channel: "chat", from: "x", data: "p3", timestamp: "t", offset: 3 });
  s0.push({ type: "message", channel: "chat", from: "x", data: "p3", timestamp: "t", offset: 3 }); // duplicate
  assert.deepEqual(got, [3]);

  const resub = once(ch, "subscribed", (c) => c.resubscribed);
  s0.serverClose(1012);
  const { s: s1 } = await up(net, client, 1, {
    subscribe: (m) => ({
      type: "subscribed",
      subscriptionId: "sub-1",
      channel: m.channel,
      recovered: true,
      offset: 5,
      epoch: "e1",
      publications: [
        { from: "x", data: "p3", timestamp: "t", offset: 3 },
        { from: "x", data: "p4", timestamp: "t", offset: 4 },
        { from: "x", data: "p5", timestamp: "t", offset: 5 },
      ],
    }),
  });
  const ctx = await resub;
  const sent = s1.sent.find((m) => m.type === "subscribe");
  assert.deepEqual(sent.since, { offset: 3, epoch: "e1" });
  assert.deepEqual([ctx.recovered, ctx.wasRecovering, ctx.offset, ctx.epoch], [true, true, 5, "e1"]);
  await sleep(1);
  assert.deepEqual(got, [3, 4, 5]);
  assert.equal(ch.offset, 5);
  client.close();
});

test("a new epoch resets the channel's offset (history was reset)", async () => {
  const { net, client } = setup();
  const ch = client.channel("chat").subscribe();
  client.connect();
  let epoch = "e1";
  const { s } = await up(net, client, 0, {
    subscribe: (m) => ({ type: "subscribed", subscriptionId: "sub-1", channel: m.channel, recovered: false, offset: 7, epoch }),
  });
  await ch.ready();
  epoch = "e2";
  const resub = once(ch, "subscribed", (c) => c.resubscribed);
  s.serverClose(1001);
  await up(net, client, 1, {
    subscribe: (m) => ({ type: "subscribed", subscriptionId: "sub-1", channel: m.channel, recovered: false, offset: 0, epoch }),
  });
  const ctx = await resub;
  assert.deepEqual([ctx.recovered, ctx.epoch, ch.epoch, ch.offset], [false, "e2", "e2", 0]);
  client.close();
});

test("a channel without history subscribes without `since` and reports recovered: false", async () => {
  const { net, client } = setup();
  const ch = client.channel("plain").subscribe();
  client.connect();
  const { s } = await up(net, client, 0);
  await ch.ready();
  s.push({ type: "message", channel: "plain", from: "c2", data: { a: 1 }, timestamp: "t" });
  const resub = once(ch, "subscribed");
  s.serverClose(1001);
  const { s: s1 } = await up(net, client, 1);
  const ctx = await resub;
  assert.equal(s1.sent.find((m) => m.type === "subscribe").since, undefined);
  assert.deepEqual([ctx.resubscribed, ctx.recovered, ch.offset], [true, false, null]);
  client.close();
});

test("history, presence and presence:stats are requests on the channel", async () => {
  const { net, client } = setup();
  client.connect();
  const { s } = await up(net, client, 0, {
    history: (m) => ({ type: "history", channel: m.channel, publications: [], offset: 0, epoch: "e" }),
    presence: (m) => ({ type: "presence", channel: m.channel, clients: {} }),
    "presence:stats": (m) => ({ type: "presence:stats", channel: m.channel, numClients: 0, numUsers: 0 }),
  });
  const ch = client.channel("c");
  assert.equal((await ch.history({ limit: 10, reverse: true })).type, "history");
  assert.equal((await ch.presence()).type, "presence");
  assert.equal((await ch.presenceStats()).numClients, 0);
  const h = s.sent.find((m) => m.type === "history");
  assert.deepEqual([h.channel, h.limit, h.reverse], ["c", 10, true]);
  client.close();
});

test("presence:join and presence:leave pushes reach the channel's join and leave events", async () => {
  const { net, client } = setup();
  const ch = client.channel("chat:p").subscribe();
  const other = client.channel("chat:other").subscribe();
  const seen = [];
  ch.on("join", (f) => seen.push(["join", f.member.clientId]));
  ch.on("leave", (f) => seen.push(["leave", f.member.clientId]));
  other.on("join", () => seen.push(["wrong channel"]));
  client.connect();
  const { s } = await up(net, client, 0);
  await ch.ready();
  s.push({ type: "presence:join", channel: "chat:p", member: { clientId: "c2", user: null } });
  s.push({ type: "presence:leave", channel: "chat:p", member: { clientId: "c2", user: null } });
  await sleep(10);
  assert.deepEqual(seen, [["join", "c2"], ["leave", "c2"]]);
  await ch.unsubscribe();
  s.push({ type: "presence:join", channel: "chat:p", member: { clientId: "c3", user: null } });
  await sleep(10);
  assert.equal(seen.length, 2, "no presence events after unsubscribe");
  client.close();
});

test("rooms: join, pushes, ack and fire-and-forget sends, rejoin after reconnect, leave", async () => {
  const { net, client } = setup();
  client.connect();
  const { s } = await up(net, client, 0);
  const room = client.room("lobby");
  const events = [];
  room.on("joined", (j) => events.push(`joined:${j.rejoined}`));
  room.on("memberJoined", (j) => events.push(`+${j.member.clientId}`));
  room.on("memberLeft", (j) => events.push(`-${j.clientId}`));
  room.on("message", (m) => events.push(`msg:${m.event}:${m.data}`));
  assert.deepEqual(await room.join(), { members: 1 });
  s.push({ type: "room:joined", room: "lobby", member: { clientId: "c9", user: null } });
  s.push({ type: "room:message", room: "lobby", from: "c9", event: "typing", data: "x", timestamp: "t" });
  s.push({ type: "room:left", room: "lobby", clientId: "c9" });
  assert.deepEqual(await room.send("hi", { event: "chat" }), { delivered: 1 });
  assert.equal(await room.send("typing", { ack: false }), undefined);
  const noAck = s.sent.filter((m) => m.type === "room:message").map((m) => [m.ack, "requestId" in m]);
  assert.deepEqual(noAck, [[true, true], [undefined, false]]);
  assert.deepEqual(await room.members(), [{ clientId: "c1", user: null }]);

  s.serverClose(1001);
  const rejoined = once(room, "joined");
  await up(net, client, 1);
  assert.equal((await rejoined).rejoined, true);
  await room.leave();
  assert.deepEqual(events, ["joined:false", "+c9", "msg:typing:x", "-c9", "joined:true"]);
  assert.equal(room.joinedWanted, false);
  client.close();
});

test("direct messages: ack resolves with the count, no-ack sends without requestId", async () => {
  const { net, client } = setup();
  client.connect();
  const { s } = await up(net, client, 0);
  assert.deepEqual(await client.sendDirect("c2", { hi: 1 }), { delivered: 1 });
  await client.sendDirect("c2", "x", { ack: false });
  const sent = s.sent.filter((m) => m.type === "direct");
  assert.deepEqual(sent.map((m) => [m.to, m.data, m.ack, "requestId" in m]), [["c2", { hi: 1 }, true, true], ["c2", "x", undefined, false]]);
  client.close();
  await assert.rejects(client.sendDirect("c2", 1, { ack: false }), (e) => e.code === "DISCONNECTED");
});

test("CRUD helpers map answers to records and pages", async () => {
  const { net, client } = setup();
  client.connect();
  const pages = { undefined: { data: [{ id: "a" }, { id: "b" }], cursor: "Yg" }, Yg: { data: [{ id: "c" }], cursor: null } };
  await up(net, client, 0, {
    get: (m) => ({ type: "data", resource: m.resource, data: { id: m.id } }),
    list: (m) => ({ type: "data", resource: m.resource, ...pages[m.cursor] }),
    update: (m) => ({ type: "updated", resource: m.resource, data: { id: m.id, ...m.data } }),
    delete: (m) => ({ type: "deleted", resource: m.resource, id: m.id }),
  });
  const r = client.resource("messages");
  assert.deepEqual(await r.get("x"), { id: "x" });
  assert.deepEqual(await r.list({ limit: 2 }), { records: [{ id: "a" }, { id: "b" }], cursor: "Yg" });
  const all = [];
  for await (const rec of r.listAll()) all.push(rec.id);
  assert.deepEqual(all, ["a", "b", "c"]);
  assert.deepEqual(await r.insert({ t: 1 }), { id: "r1", t: 1 });
  assert.deepEqual(await r.update("x", { t: 2 }), { id: "x", t: 2 });
  assert.equal(await r.delete("x"), "x");
  assert.deepEqual(await client.publish("news", { a: 1 }), { delivered: 1 });
  client.close();
});

test("resources with history: offsets are tracked, `since` is sent on resubscribe, replayed changes arrive as events once", async () => {
  const { net, client } = setup();
  const sub = client.subscribe("messages", { filter: { channel: "general" } });
  const got = [];
  sub.on("event", (e) => got.push([e.event, e.record.id, e.offset, e.before?.text ?? null]));
  client.connect();
  const { s: s0 } = await up(net, client, 0, {
    subscribe: (m) => ({ type: "subscribed", subscriptionId: "sub-1", resource: m.resource, filter: m.filter, events: ["insert", "update", "delete"], offset: 2, epoch: "e1" }),
  });
  await sub.ready();
  assert.deepEqual([sub.offset, sub.epoch], [2, "e1"]);
  const live = { ...ev("insert", { id: "m3", channel: "general" }), offset: 3, epoch: "e1" };
  s0.push(live);
  s0.push(live); // duplicate
  await sleep(1);
  assert.deepEqual(got, [["insert", "m3", 3, null]]);

  const resub = once(sub, "subscribed", (c) => c.resubscribed);
  s0.serverClose(1012);
  const { s: s1 } = await up(net, client, 1, {
    subscribe: (m) => ({
      type: "subscribed",
      subscriptionId: "sub-1",
      resource: m.resource,
      filter: m.filter,
      events: ["insert", "update", "delete"],
      recovered: true,
      offset: 6,
      epoch: "e1",
      publications: [
        { offset: 3, event: "insert", data: { id: "m3", channel: "general" }, timestamp: "t" },
        { offset: 5, event: "update", data: { id: "m3", channel: "general", text: "b", $before: { id: "m3", channel: "general", text: "a" }, $after: { id: "m3", channel: "general", text: "b" } }, timestamp: "t" },
      ],
    }),
  });
  const ctx = await resub;
  const sent = s1.sent.find((m) => m.type === "subscribe");
  assert.deepEqual(sent.since, { offset: 3, epoch: "e1" });
  assert.deepEqual([ctx.recovered, ctx.wasRecovering, ctx.offset, ctx.epoch], [true, true, 6, "e1"]);
  await sleep(1);
  assert.deepEqual(got, [
    ["insert", "m3", 3, null],
    ["update", "m3", 5, "a"],
  ]);
  assert.equal(sub.offset, 6);
  client.close();
});
