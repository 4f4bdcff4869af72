// Webhook handlers for examples/webhooks/switchboard.toml (Node built-ins only).
// Every request is a POST with the host call as JSON (PROTOCOL.md §20.5), signed with
// X-Switchboard-Signature: sha256=HMAC-SHA256(secret, body); the answer is
// {reply} | {error: {code, message}}, optionally with commands.
import { createServer } from "node:http";
import { createHmac, timingSafeEqual } from "node:crypto";

const SECRET = process.env.WEBHOOK_SECRET ?? "change-me";
const PORT = Number(process.env.PORT ?? 8787);
const history = [];
let nextId = 0;

function verified(req, body) {
  const got = Buffer.from(String(req.headers["x-switchboard-signature"] ?? ""));
  const want = Buffer.from("sha256=" + createHmac("sha256", SECRET).update(body).digest("hex"));
  return got.length === want.length && timingSafeEqual(got, want);
}

const routes = {
  // Everyone joins room `general` when admitted.
  "/connect": () => ({ commands: [{ command: "joinRoom", room: "general" }] }),
  "/chat-message": (call) => {
    const entry = { id: ++nextId, from: call.client.user?.id ?? call.client.clientId, text: call.data.text };
    history.push(entry);
    if (history.length > 100) history.shift();
    return { commands: [{ command: "sendToRoom", room: "general", message: { type: "chat-message", data: entry } }], reply: { id: entry.id } };
  },
  "/get-history": () => ({ reply: { messages: history.slice(-50) } }),
  // Streaming in one answer: start, a chunk per word, complete, then the reply.
  "/ai-chat": (call) => {
    const rid = call.requestId;
    const words = String(call.data.prompt).split(/\s+/).filter(Boolean);
    return {
      commands: [
        { command: "send", message: { type: "ai:response:start", requestId: rid } },
        ...words.map((w) => ({ command: "send", message: { type: "ai:response:chunk", requestId: rid, data: w } })),
        { command: "send", message: { type: "ai:response:complete", requestId: rid } },
      ],
      reply: { done: true },
    };
  },
};

createServer((req, res) => {
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    const body = Buffer.concat(chunks);
    const route = routes[req.url];
    if (req.method !== "POST" || !route) return res.writeHead(404).end();
    if (!verified(req, body)) return res.writeHead(401).end();
    const answer = route(JSON.parse(body));
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(answer));
  });
}).listen(PORT, "127.0.0.1", () => console.log(`webhooks on http://127.0.0.1:${PORT}`));
