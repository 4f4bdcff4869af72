// End-to-end tests of the node host (examples/node/server.mjs) over real sockets.
import { runtimeSuite } from "./suite.mjs";

runtimeSuite("node", { pings: "socket" });

// ---- Async host guards (in-process Node host, real sockets) ----------------------------
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readDeployment, serveNode } from "../js/node.js";
import { connect, demoVariant, sleep } from "./helpers.mjs";

describe("node: async JS guard callbacks through HostRequest::Guard", () => {
  let srv;
  const calls = [];
  before(async () => {
    const path = demoVariant({
      resources: { notes: { hostGuards: ["create", "delete"] } },
      limits: { hostCallTimeoutMs: 300 },
    });
    const { config } = readDeployment(path, {});
    srv = await serveNode({
      config,
      log: () => {},
      async guard(call) {
        calls.push(call);
        if (call.action === "delete") return new Promise(() => {}); // never answers
        await sleep(20);
        if (call.context.data?.secret) return { decision: "deny", message: "no secrets here" };
        return { decision: "allow" };
      },
    });
  });
  after(async () => {
    await srv?.close();
  });

  test("allow, deny with message, and a guard that misses the deadline", async () => {
    const c = await connect(`ws://127.0.0.1:${srv.port}/?token=key_user`);
    await c.next("connected");
    const ok = await c.request({ type: "insert", resource: "notes", data: { text: "hi" } });
    assert.equal(ok.type, "inserted", JSON.stringify(ok));
    assert.equal(calls[0].resource, "notes");
    assert.equal(calls[0].action, "create");
    assert.equal(calls[0].context.user.id, "u1");
    const denied = await c.request({ type: "insert", resource: "notes", data: { text: "x", secret: true } });
    assert.equal(denied.code, "FORBIDDEN");
    assert.equal(denied.message, "no secrets here");
    const t0 = Date.now();
    const late = await c.request({ type: "delete", resource: "notes", id: ok.data.id }, 3000);
    assert.equal(late.code, "TIMEOUT", JSON.stringify(late));
    assert.ok(Date.now() - t0 >= 250, "answered by the engine's deadline timer");
    await c.close();
  });
});

describe("node: server-side resource writes (Host.commandAsync)", () => {
  let srv;
  before(async () => {
    const { config } = readDeployment(demoVariant({}), {});
    srv = await serveNode({ config, log: () => {} });
  });
  after(async () => {
    await srv?.close();
  });

  test("insert/update/delete fan out to subscribers; errors reject with codes", async () => {
    const c = await connect(`ws://127.0.0.1:${srv.port}/?token=key_user`);
    await c.next("connected");
    const sub = await c.request({ type: "subscribe", resource: "messages", filter: { channel: "general" } });
    assert.equal(sub.type, "subscribed", JSON.stringify(sub));

    const ins = await srv.host.commandAsync({ command: "insert", resource: "messages", data: { content: "hi", author: "srv", channel: "general" } });
    assert.equal(ins.record.content, "hi");
    assert.equal(typeof ins.record.id, "string");
    assert.equal(ins.delivered, 1);
    const ev = await c.next((f) => f.type === "event" && f.event === "insert");
    assert.deepEqual(ev.data, ins.record);

    const upd = await srv.host.commandAsync({ command: "update", resource: "messages", id: ins.record.id, data: { content: "edited" } });
    assert.equal(upd.record.content, "edited");
    assert.equal((await c.next((f) => f.type === "event" && f.event === "update")).data.content, "edited");

    const del = await srv.host.commandAsync({ command: "delete", resource: "messages", id: ins.record.id });
    assert.equal(del.record.id, ins.record.id);
    assert.equal((await c.next((f) => f.type === "event" && f.event === "delete")).data.id, ins.record.id);

    await assert.rejects(srv.host.commandAsync({ command: "delete", resource: "messages", id: ins.record.id }), { name: "CommandError", code: "NOT_FOUND" });
    await assert.rejects(srv.host.commandAsync({ command: "insert", resource: "nope", data: {} }), { name: "CommandError", code: "RESOURCE_NOT_FOUND" });
    // With the in-wasm memory store the write completes inside the call, so the
    // synchronous form returns it too (with an async JS store it throws, pointing to
    // commandAsync).
    const direct = srv.host.command({ command: "insert", resource: "messages", data: { content: "x", channel: "other" } });
    assert.equal(direct.record.content, "x");
    assert.equal(direct.delivered, 0);
    // Immediate commands still work through both forms.
    assert.equal((await srv.host.commandAsync({ command: "serverInfo" })).connections ?? 1, srv.host.command({ command: "serverInfo" }).connections ?? 1);
    await c.close();
  });
});

// ---- Test control channel: refusals carry the engine's error codes ---------------------
describe("node: test control refusals use the engine's error codes", () => {
  let on;
  let off;
  before(async () => {
    const { config } = readDeployment(demoVariant({}), {});
    on = await serveNode({ config, log: () => {}, testControl: true });
    off = await serveNode({ config, log: () => {} });
  });
  after(async () => {
    await on?.close();
    await off?.close();
  });

  const ask = async (srv, method, op, body) => {
    const r = await fetch(`http://127.0.0.1:${srv.port}/__switchboard/test${op}`, { method, body });
    return { status: r.status, body: await r.json() };
  };

  test("bad requests are INVALID_MESSAGE, unknown operations and connections NOT_FOUND, a disabled channel FORBIDDEN", async () => {
    assert.deepEqual((await ask(on, "GET", "", undefined)).body, { enabled: true, host: "node", store: "memory" });
    const put = await ask(on, "PUT", "/reset", "{}");
    assert.equal(put.status, 405);
    assert.equal(put.body.code, "INVALID_MESSAGE");
    const bad = await ask(on, "POST", "/reset", "not json");
    assert.equal(bad.status, 400);
    assert.equal(bad.body.code, "INVALID_MESSAGE");
    assert.match(bad.body.message, /^bad body: /);
    const noSeed = await ask(on, "POST", "/reset", "{}");
    assert.deepEqual(noSeed, { status: 400, body: { code: "INVALID_MESSAGE", message: "reset needs a non-negative integer `seed`" } });
    const op = await ask(on, "POST", "/nope", "{}");
    assert.equal(op.status, 404);
    assert.equal(op.body.code, "NOT_FOUND");
    const ghost = await ask(on, "POST", "/input", JSON.stringify({ clientId: "ghost", input: { kind: "pong" } }));
    assert.deepEqual(ghost, { status: 404, body: { code: "NOT_FOUND", message: "no open connection with client id `ghost`" } });
    const kind = await ask(on, "POST", "/input", JSON.stringify({ input: { kind: "shout" } }));
    assert.equal(kind.status, 400);
    assert.equal(kind.body.code, "INVALID_MESSAGE");
    const refused = await ask(off, "POST", "/reset", "{}");
    assert.equal(refused.status, 403);
    assert.equal(refused.body.code, "FORBIDDEN");
    assert.match(refused.body.message, /SWITCHBOARD_TEST_CONTROL=1/);
  });
});

// ---- Warm-up before listening (core.js warmUp) -----------------------------------------
import { warmUp } from "../js/core.js";

describe("node: the warm-up runs on its own engine", () => {
  test("a warmed-up server starts with empty counters and serves its first client", async () => {
    assert.equal(typeof (await warmUp({ messages: 200, round: 50, pauseMs: 0, settleMs: 0 })), "number");
    const { config } = readDeployment(demoVariant({}), {});
    const srv = await serveNode({ config, log: () => {} });
    try {
      const m = srv.host.metrics();
      assert.equal(m.connections, 0);
      assert.equal(m.messagesReceived, 0);
      assert.equal(srv.host.command({ command: "serverInfo" }).clients, 0);
      const c = await connect(`ws://127.0.0.1:${srv.port}/`);
      assert.equal((await c.request({ type: "ping" })).type, "pong");
      c.close();
    } finally {
      await srv.close();
    }
  });
});
