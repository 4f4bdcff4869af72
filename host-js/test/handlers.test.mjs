// Application handlers on the JS hosts (serveNode in-process, real sockets): message
// handlers (reply, streaming through ctx.send, HandlerError, a handler that throws),
// the connect hook (metadata, refusal), the disconnect hook and interceptors.
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readDeployment, serveNode } from "../js/node.js";
import { HandlerError } from "../js/core.js";
import { connect, demoVariant, sleep } from "./helpers.mjs";

describe("node: application handlers (messages, hooks, interceptors)", () => {
  let srv;
  const gone = [];
  before(async () => {
    const path = demoVariant({
      messages: { chat: { schema: { type: "object", required: ["text"] } } },
      limits: { hostCallTimeoutMs: 300 },
      routes: [{ path: "/" }, { path: "/ws" }, { path: "/ws/game/:sessionId" }],
    });
    const { config } = readDeployment(path, {});
    srv = await serveNode({
      config,
      log: () => {},
      handlers: {
        messages: {
          async "ai:chat"(msg, ctx) {
            ctx.send({ type: "ai:response:start", requestId: msg.requestId });
            for (const w of String(msg.data?.prompt ?? "").split(" ")) {
              await sleep(1);
              ctx.send({ type: "ai:response:chunk", data: w });
            }
            if (!msg.data?.prompt) throw new HandlerError("EMPTY_PROMPT", "say something");
            return { done: true };
          },
          chat(msg, ctx) {
            ctx.join("chatters");
            return { from: msg.client.clientId, text: msg.data.text, meta: msg.client.meta };
          },
          boom() {
            throw new TypeError("handler bug");
          },
          slow() {
            return new Promise(() => {});
          },
        },
        connect(call) {
          if (call.client.user?.id === "admin1") return { error: { code: "FORBIDDEN", message: "not here", closeCode: 4003 } };
          return { meta: { greeted: true } };
        },
        disconnect(call) {
          gone.push(call);
        },
        intercept: {
          publish(call) {
            if (call.message.message === "spam") return { error: { code: "SPAM", message: "no spam" } };
            return { modified: { channel: call.message.channel, message: "[ok] " + call.message.message } };
          },
        },
      },
    });
  });
  after(async () => {
    await srv?.close();
  });

  test("replies, streams, errors and failures", async () => {
    const c = await connect(`ws://127.0.0.1:${srv.port}/?token=key_user`);
    const welcome = await c.next("connected");
    c.send({ type: "ai:chat", data: { prompt: "hello big world" }, requestId: 7 });
    assert.deepEqual(await c.next("ai:response:start"), { type: "ai:response:start", requestId: 7 });
    for (const w of ["hello", "big", "world"]) assert.equal((await c.next("ai:response:chunk")).data, w);
    assert.deepEqual(await c.next("reply"), { type: "reply", requestId: 7, data: { done: true } });

    c.send({ type: "ai:chat", data: {}, requestId: "empty" });
    const empty = await c.next((f) => f.type === "error" && f.requestId === "empty");
    assert.equal(empty.code, "EMPTY_PROMPT", JSON.stringify(empty));
    assert.equal((await c.next("ai:response:start")).requestId, "empty");

    const chat = await c.request({ type: "chat", data: { text: "yo" } });
    assert.deepEqual(chat.data, { from: welcome.clientId, text: "yo", meta: { greeted: true } });
    assert.equal((await c.next("joined")).room, "chatters");

    assert.equal((await c.request({ type: "chat", data: {} })).code, "VALIDATION_ERROR");
    const boom = await c.request({ type: "boom" });
    assert.equal(boom.code, "INTERNAL_ERROR");
    assert.ok(!boom.message.includes("handler bug"), "no internals");
    assert.equal((await c.request({ type: "slow" }, 3000)).code, "TIMEOUT");
    assert.equal((await c.request({ type: "nope" })).code, "UNKNOWN_MESSAGE_TYPE");
    await c.close();
  });

  test("a plain GET on a route with parameters is server info, as on / (same as the native host)", async () => {
    const base = `http://127.0.0.1:${srv.port}`;
    const root = await (await fetch(base + "/")).json();
    for (const path of ["/ws/game/42", "/ws/game/42/"]) {
      const r = await fetch(base + path);
      assert.equal(r.status, 200, path);
      assert.deepEqual(await r.json(), root, path);
    }
    for (const path of ["/ws/game", "/ws/game/42/x"]) {
      const r = await fetch(base + path);
      assert.equal(r.status, 404, path);
      assert.equal((await r.json()).code, "NOT_FOUND");
    }
    const c = await connect(`ws://127.0.0.1:${srv.port}/ws/game/42`);
    assert.equal((await c.next("connected")).protocolVersion, 1);
    await c.close();
  });

  test("interceptors cancel and modify; hooks refuse and hear disconnects", async () => {
    const a = await connect(`ws://127.0.0.1:${srv.port}/?token=key_user`);
    const b = await connect(`ws://127.0.0.1:${srv.port}/`);
    await a.next("connected");
    const wb = await b.next("connected");
    await b.request({ type: "subscribe", channel: "news" });
    assert.equal((await a.request({ type: "publish", channel: "news", message: "spam" })).code, "SPAM");
    const ok = await a.request({ type: "publish", channel: "news", message: "hi" });
    assert.equal(ok.type, "published", JSON.stringify(ok));
    assert.equal((await b.next("message")).data, "[ok] hi");

    const admin = await connect(`ws://127.0.0.1:${srv.port}/?token=key_admin`);
    assert.equal((await admin.next("error")).code, "FORBIDDEN");
    assert.equal((await admin.waitClose()).code, 4003);

    await b.close();
    const deadline = Date.now() + 2000;
    while (!gone.some((g) => g.client.clientId === wb.clientId) && Date.now() < deadline) await sleep(10);
    assert.ok(gone.some((g) => g.client.clientId === wb.clientId), "disconnect hook called");
    await a.close();
  });
});
