// Shared by the package smoke programs (node.mjs, deno.ts, bun.mjs), which
// scripts/packages/test.sh runs in a fresh project where @switchboard/host-js was
// installed from its `npm pack` tarball. Each passes its runtime's serve function and
// WebSocket client; this serves a deployment with a JSON Schema, connects, and checks
// the welcome, a refused insert and a stored one. Bounded: 20 s, then exit 1.

/** A small deployment: one route, `messages` with a JSON Schema (full wasm module). */
export const DEPLOYMENT = {
  routes: [{ path: "/" }],
  resources: {
    messages: {
      schema: {
        type: "object",
        required: ["content"],
        properties: { content: { type: "string", minLength: 1 } },
      },
    },
  },
};

function fail(message) {
  console.error(`smoke FAILED: ${message}`);
  // Deno and Bun have `process` too (node compatibility).
  process.exit(1);
}

/** Open a WebSocket; `next()` resolves with the next JSON frame. */
function connect(WebSocketImpl, url) {
  const ws = new WebSocketImpl(url);
  const frames = [];
  let wake = null;
  ws.addEventListener("message", (e) => {
    frames.push(JSON.parse(typeof e.data === "string" ? e.data : new TextDecoder().decode(e.data)));
    wake?.();
  });
  const opened = new Promise((resolve, reject) => {
    ws.addEventListener("open", resolve);
    ws.addEventListener("error", () => reject(new Error(`cannot connect to ${url}`)));
  });
  const next = async () => {
    while (frames.length === 0) await new Promise((r) => (wake = r));
    return frames.shift();
  };
  return { ws, opened, next };
}

/**
 * Serve DEPLOYMENT with `serve` (serveNode, serveDeno or serveBun from the package) and
 * check it over a real WebSocket `WebSocketImpl`.
 */
export async function smoke(runtime, serve, WebSocketImpl) {
  const timer = setTimeout(() => fail(`${runtime}: no answer within 20 s`), 20000);
  const served = await serve({ config: DEPLOYMENT, port: 0, hostname: "127.0.0.1" });
  const c = connect(WebSocketImpl, `ws://127.0.0.1:${served.port}/`);
  try {
    await c.opened;
    const welcome = await c.next();
    if (welcome.type !== "connected") fail(`${runtime}: expected connected, got ${JSON.stringify(welcome)}`);
    c.ws.send(JSON.stringify({ type: "insert", resource: "messages", data: { author: "ann" }, requestId: 1 }));
    const refused = await c.next();
    if (refused.code !== "VALIDATION_ERROR" || !/content/.test(refused.message)) {
      fail(`${runtime}: expected VALIDATION_ERROR naming content, got ${JSON.stringify(refused)}`);
    }
    c.ws.send(JSON.stringify({ type: "insert", resource: "messages", data: { content: "hi" }, requestId: 2 }));
    const stored = await c.next();
    if (stored.type !== "inserted" || stored.data.content !== "hi") fail(`${runtime}: expected inserted, got ${JSON.stringify(stored)}`);
  } finally {
    c.ws.close();
    await served.close();
    clearTimeout(timer);
  }
  console.log(`smoke ok: ${runtime} imported @switchboard/host-js by name, served port ${served.port}, VALIDATION_ERROR then inserted`);
}
