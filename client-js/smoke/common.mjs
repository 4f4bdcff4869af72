// Shared by the package smoke programs (node.mjs, deno.ts, bun.mjs), which
// scripts/packages/test.sh runs in a fresh project where @switchboard/client and
// @switchboard/host-js were installed from their `npm pack` tarballs. A host-js server
// (the same runtime) serves a deployment with a JSON Schema; the client connects,
// subscribes, has one insert refused and one stored, and sees its event. Bounded: 20 s.
import { Client } from "@switchboard/client";

const DEPLOYMENT = {
  routes: [{ path: "/" }],
  resources: {
    messages: { schema: { type: "object", required: ["content"], properties: { content: { type: "string" } } } },
  },
};

function fail(message) {
  console.error(`smoke FAILED: ${message}`);
  process.exit(1);
}

/** `serve`: serveNode, serveDeno or serveBun from @switchboard/host-js; `WebSocket`: the runtime's client. */
export async function smoke(runtime, serve, WebSocket) {
  const timer = setTimeout(() => fail(`${runtime}: no answer within 20 s`), 20000);
  const served = await serve({ config: DEPLOYMENT, port: 0, hostname: "127.0.0.1" });
  const client = new Client({ url: `ws://127.0.0.1:${served.port}/`, WebSocket, reconnect: false });
  try {
    const welcome = await client.connect();
    if (typeof welcome.clientId !== "string") fail(`${runtime}: welcome without clientId: ${JSON.stringify(welcome)}`);
    const sub = client.subscribe("messages");
    const inserted = new Promise((resolve) => sub.on("insert", (e) => resolve(e.record)));
    await sub.ready();
    const messages = client.resource("messages");
    const refused = await messages.insert({ author: "ann" }).then(
      (r) => fail(`${runtime}: an insert without content was stored: ${JSON.stringify(r)}`),
      (e) => e,
    );
    if (refused.code !== "VALIDATION_ERROR") fail(`${runtime}: expected VALIDATION_ERROR, got ${refused.code} ${refused.message}`);
    await messages.insert({ content: "hi" });
    const event = await inserted;
    if (event.content !== "hi") fail(`${runtime}: event ${JSON.stringify(event)}`);
  } finally {
    await client.close();
    await served.close();
    clearTimeout(timer);
  }
  console.log(`smoke ok: ${runtime} imported @switchboard/client by name: connect, subscribe, VALIDATION_ERROR, insert event`);
}
