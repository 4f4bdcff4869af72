// The chat and AI-streaming echo apps on Node with JS handlers (PROTOCOL.md §20):
//   node host-js/examples/node/chat-ai.mjs        (build first: bash host-js/build.sh)
// then talk to ws://127.0.0.1:3004/ :
//   {"type":"chat-message","data":{"text":"hi"},"requestId":1}
//   {"type":"get-history","requestId":2}
//   {"type":"ai:chat","data":{"prompt":"hello streaming world"},"requestId":3}
import { serveNode } from "../../js/node.js";
import { HandlerError } from "../../js/core.js";

const config = {
  routes: [{ path: "/" }],
  messages: {
    "chat-message": { schema: { type: "object", required: ["text"], properties: { text: { type: "string", minLength: 1, maxLength: 500 } } } },
    "get-history": {},
    "ai:chat": { schema: { type: "object", required: ["prompt"], properties: { prompt: { type: "string", maxLength: 2000 } } }, timeoutMs: 30000 },
  },
};
const history = [];
let nextId = 0;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const srv = await serveNode({
  config,
  port: Number(process.env.PORT ?? 3004),
  handlers: {
    // Everyone joins room `general` when admitted.
    connect: () => ({ commands: [{ command: "joinRoom", room: "general" }] }),
    messages: {
      "chat-message"(msg, ctx) {
        const entry = { id: ++nextId, from: msg.client.user?.id ?? msg.client.clientId, text: msg.data.text };
        history.push(entry);
        if (history.length > 100) history.shift();
        ctx.command({ command: "sendToRoom", room: "general", message: { type: "chat-message", data: entry } });
        return { id: entry.id };
      },
      "get-history": () => ({ messages: history.slice(-50) }),
      async "ai:chat"(msg, ctx) {
        const rid = msg.requestId;
        const words = msg.data.prompt.split(/\s+/).filter(Boolean);
        if (!words.length) throw new HandlerError("EMPTY_PROMPT", "say something");
        ctx.send({ type: "ai:response:start", requestId: rid });
        for (const w of words) {
          await sleep(50);
          ctx.send({ type: "ai:response:chunk", requestId: rid, data: w });
        }
        ctx.send({ type: "ai:response:complete", requestId: rid });
        return { done: true };
      },
    },
  },
});
console.log(`chat + AI echo (node, wasm engine) on ws://127.0.0.1:${srv.port}/`);
for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, async () => { await srv.close(); process.exit(0); });
