// @ts-self-types="./bun.d.ts"
// Bun host: Bun.serve with its native websocket handlers. Maps sockets and HTTP only.
import { Host, fetchRoute, handshakeRefusal, spacedSender } from "./core.js";
import { initFromFile } from "./fs-init.js";
import { installTestControl } from "./test-control.js";

export { Host, loadDeployment, randomClientId, CommandError } from "./core.js";
export { readDeployment, initFromFile, WASM_URL, LEAN_WASM_URL } from "./fs-init.js";

// Frames for one socket are queued during an event-loop turn and written together
// (ws.cork) in setImmediate: one write per socket per turn instead of one per frame,
// the native host's write coalescing. A close flushes its socket's queue first.
const queued = new Map(); // ServerWebSocket -> (string | Uint8Array)[]
let flushScheduled = false;
function writeQueued(ws, list) {
  ws.cork(() => {
    // Binary frames (Socket.IO attachments) arrive as Uint8Arrays.
    for (const t of list) {
      if (typeof t === "string") ws.sendText(t);
      else ws.sendBinary(t);
    }
  });
}
function flushAll() {
  flushScheduled = false;
  for (const [ws, list] of queued) writeQueued(ws, list);
  queued.clear();
}
function flushOne(ws) {
  const list = queued.get(ws);
  if (list) {
    queued.delete(ws);
    writeQueued(ws, list);
  }
}
// The socket whose message callback is running: uWebSockets corks it for the callback,
// so its replies are written together when the callback returns, without a queue.
let receiving = null;
function enqueue(ws, text) {
  let list = queued.get(ws);
  if (ws === receiving && !list) {
    if (typeof text === "string") ws.sendText(text);
    else ws.sendBinary(text);
    return;
  }
  if (!list) {
    queued.set(ws, (list = []));
    if (!flushScheduled) {
      flushScheduled = true;
      setImmediate(flushAll);
    }
  }
  list.push(text);
}

/**
 * Serve a deployment on Bun.
 * @returns {Promise<{host: Host, server: object, port: number, close(): Promise<void>}>}
 */
export async function serveBun(o) {
  initFromFile();
  const host = new Host({ config: o.config, guard: o.guard, handlers: o.handlers, store: o.store, memoryStore: !o.store, log: o.log, publicInfo: o.publicInfo });
  if (o.testControl) installTestControl(host, { name: "bun", memoryStore: !o.store });
  const server = Bun.serve({
    hostname: o.hostname ?? "127.0.0.1",
    port: o.port ?? 0,
    fetch(req, srv) {
      const { response, accepted: d } = fetchRoute(host, req, srv.requestIP(req)?.address);
      if (response) return response;
      // Without a Sec-WebSocket-Protocol of ours, Bun echoes the client's first offer
      // (a subprotocol the engine did not accept); an empty value makes it send none.
      const headers = { "Sec-WebSocket-Protocol": d.protocol ?? "" };
      const eio = host.engine.servesHttp(new URL(req.url).pathname);
      if (srv.upgrade(req, { data: { conn: d.conn, eio }, headers })) return undefined;
      host.closed(d.conn, 1006);
      const r = handshakeRefusal("upgrade_failed");
      return new Response(r.body, { status: r.status, headers: r.headers });
    },
    websocket: {
      // The engine answers frames over maxPayloadSize with PAYLOAD_TOO_LARGE + close 1009;
      // Bun refuses frames over twice that itself (close 1009), bounding memory.
      maxPayloadLength: 2 * (o.config.maxPayloadSize ?? 1024 * 1024),
      idleTimeout: 0, // the engine's heartbeat decides
      sendPings: false, // ... and sends the pings
      perMessageDeflate: false,
      open(ws) {
        if (ws.data.eio) {
          // Engine.IO routes: one frame per macrotask (see spacedSender).
          const spaced = spacedSender((t) => (typeof t === "string" ? ws.sendText(t) : ws.sendBinary(t)));
          host.attach(ws.data.conn, {
            send: (text) => spaced.send(text),
            ping: () => ws.ping(),
            close: (code, reason) => {
              spaced.flush();
              ws.close(code, reason);
            },
            buffered: () => ws.getBufferedAmount(),
          });
          return;
        }
        host.attach(ws.data.conn, {
          send: (text) => enqueue(ws, text),
          ping: () => {
            flushOne(ws);
            ws.ping();
          },
          close: (code, reason) => {
            flushOne(ws);
            ws.close(code, reason);
          },
          buffered: () => ws.getBufferedAmount(),
        });
      },
      message(ws, msg) {
        receiving = ws;
        try {
          host.message(ws.data.conn, msg, typeof msg !== "string");
        } finally {
          receiving = null;
        }
      },
      pong(ws) {
        host.pong(ws.data.conn);
      },
      drain(ws) {
        host.drained(ws.data.conn);
      },
      close(ws, code) {
        queued.delete(ws);
        host.closed(ws.data.conn, code);
      },
    },
  });
  return {
    host,
    server,
    port: server.port,
    async close(reason) {
      await host.shutdown(reason);
      server.stop(true);
    },
  };
}
