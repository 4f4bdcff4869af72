// deno-server.mjs: a plain Deno WebSocket server (Deno.serve + Deno.upgradeWebSocket), the
// Deno baseline next to Switchboard-on-Deno in wsload's side-by-side harness. It speaks the
// same minimal subset as wsload's bun-server.ts and node-ws-server.mjs (see wsload's README):
//   open -> {"type":"connected","clientId":..}
//   subscribe -> subscribed; unsubscribe -> unsubscribed; ping -> pong
//   publish {channel,message} / insert {resource,data}
//     -> {"type":"event","event":"insert","resource":R,"data":D} to subscribers of R whose
//        filter fields equal D's fields (publish excludes the sender).
// Usage: deno run --allow-net=127.0.0.1 --allow-env host-js/bench/peers/deno-server.mjs [--port 8084]
//   [--idle-timeout SECONDS]: Deno's own pings for dead-peer detection (default 0: none), as
//   Switchboard-on-Deno sets them to the engine's heartbeatInterval; a like-for-like run
//   gives both the same.
const argv = Deno.args;
const opt = (name, dflt) => {
  const i = argv.indexOf(name);
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1] : dflt;
};
const port = Number(opt("--port", Deno.env.get("PORT") ?? 8084));
const hostname = opt("--host", "127.0.0.1");
const idleTimeout = Number(opt("--idle-timeout", 0));

// resource -> Map(filterKey -> { entries: [k, v][], clients: Set<WebSocket> })
const resources = new Map();
let nextId = 0;

const canon = (filter) => JSON.stringify(Object.keys(filter).sort().map((k) => [k, filter[k]]));
const eq = (a, b) =>
  a === b || (typeof a === "object" && a !== null && typeof b === "object" && b !== null && JSON.stringify(a) === JSON.stringify(b));

function subscribe(ws, subs, resource, filter) {
  let groups = resources.get(resource);
  if (!groups) resources.set(resource, (groups = new Map()));
  const key = canon(filter);
  let g = groups.get(key);
  if (!g) groups.set(key, (g = { entries: Object.entries(filter), clients: new Set() }));
  g.clients.add(ws);
  subs.push([resource, key]);
}

function unsubscribe(ws, resource, key) {
  const groups = resources.get(resource);
  if (!groups) return;
  const g = groups.get(key);
  if (g) {
    g.clients.delete(ws);
    if (g.clients.size === 0) groups.delete(key);
  }
  if (groups.size === 0) resources.delete(resource);
}

function deliver(resource, data, except) {
  const groups = resources.get(resource);
  if (!groups) return 0;
  let frame = null;
  let n = 0;
  for (const g of groups.values()) {
    let ok = true;
    for (const [k, v] of g.entries) {
      if (data == null || !eq(data[k], v)) {
        ok = false;
        break;
      }
    }
    if (!ok) continue;
    frame ??= JSON.stringify({ type: "event", event: "insert", resource, data });
    for (const c of g.clients) {
      if (c === except || c.readyState !== 1) continue;
      c.send(frame);
      n++;
    }
  }
  return n;
}

const reply = (ws, obj, requestId) => {
  if (requestId !== undefined) obj.requestId = requestId;
  ws.send(JSON.stringify(obj));
};

Deno.serve({ hostname, port, onListen: () => console.error(`deno-server listening on ws://${hostname}:${port} (deno ${Deno.version.deno})`) }, (req) => {
  if (req.headers.get("upgrade")?.toLowerCase() !== "websocket") return new Response("WebSocket connection required", { status: 426 });
  const { socket: ws, response } = Deno.upgradeWebSocket(req, { idleTimeout });
  const subs = [];
  ws.onopen = () => ws.send(JSON.stringify({ type: "connected", clientId: "cli_" + (++nextId).toString(36), user: null }));
  ws.onmessage = (ev) => {
    let msg;
    try {
      msg = JSON.parse(typeof ev.data === "string" ? ev.data : new TextDecoder().decode(ev.data));
    } catch {
      return reply(ws, { type: "error", code: "INVALID_JSON", message: "Invalid JSON format" });
    }
    const { type, requestId } = msg ?? {};
    switch (type) {
      case "ping":
        return reply(ws, { type: "pong", timestamp: Date.now() }, requestId);
      case "subscribe": {
        if (typeof msg.resource !== "string") return reply(ws, { type: "error", code: "INVALID_REQUEST", message: "resource is required" }, requestId);
        const filter = msg.filter && typeof msg.filter === "object" ? msg.filter : {};
        subscribe(ws, subs, msg.resource, filter);
        return reply(ws, { type: "subscribed", resource: msg.resource, filter, events: msg.events ?? ["insert", "update", "delete"] }, requestId);
      }
      case "unsubscribe": {
        const key = msg.filter && typeof msg.filter === "object" ? canon(msg.filter) : null;
        for (let i = subs.length - 1; i >= 0; i--) {
          const [r, k] = subs[i];
          if (r === msg.resource && (key === null || key === k)) {
            unsubscribe(ws, r, k);
            subs.splice(i, 1);
          }
        }
        return reply(ws, { type: "unsubscribed", resource: msg.resource }, requestId);
      }
      case "publish": {
        const delivered = typeof msg.channel === "string" ? deliver(msg.channel, msg.message, ws) : 0;
        return reply(ws, { type: "published", channel: msg.channel, delivered }, requestId);
      }
      case "insert": {
        if (typeof msg.resource === "string") deliver(msg.resource, msg.data, null);
        return reply(ws, { type: "inserted", resource: msg.resource, data: msg.data }, requestId);
      }
      default:
        return reply(ws, { type: "error", code: "UNKNOWN_MESSAGE_TYPE", message: `Unknown message type: ${type}` }, requestId);
    }
  };
  ws.onclose = () => {
    for (const [r, k] of subs) unsubscribe(ws, r, k);
    subs.length = 0;
  };
  ws.onerror = () => {};
  return response;
});
for (const sig of ["SIGINT", "SIGTERM"]) Deno.addSignalListener(sig, () => Deno.exit(0));
