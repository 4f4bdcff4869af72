// @ts-self-types="./bun.d.ts"
// Bun host: Bun.serve with its native websocket handlers. Maps sockets and HTTP only.
import { Host, warmUpOnce, fetchRoute, handshakeRefusal, spacedSender } from "./core.js";
import { initFromFile } from "./fs-init.js";
import { installTestControl } from "./test-control.js";

export { Host, loadDeployment, randomClientId, CommandError } from "./core.js";
export { readDeployment, initFromFile, WASM_URL, LEAN_WASM_URL } from "./fs-init.js";

// Frames for one socket are queued during an event-loop turn and written together
// (ws.cork) in setImmediate: one write per socket per turn instead of one per frame,
// the native host's write coalescing. A close flushes its socket's queue first. The
// queue lives on the socket object and the sockets to flush in one array: no Map
// lookup per delivery, no iterator (JavaScriptCore runs `for...of` and destructuring
// through the iterator protocol).
//
// A turn that queues FLUSH_AT frames writes them out at once instead of waiting for the
// end of the turn: a burst of publishes to many subscribers (the frames a turn reads
// from one publisher) would otherwise hold every frame in memory and send nothing
// until all of them are made, leaving the clients idle meanwhile. 32 768 frames is ~33
// per socket to 1 000 subscribers, enough for the writes to stay batched (BENCHMARKS.md,
// "Issues 18 and 22: a burst written out every 32 768 frames"). The native host's actor
// ends its turns early likewise (TURN_FRAMES), between messages.
/** Frames queued in one turn before they are written out without waiting for its end. */
export const FLUSH_AT = 32768;
const pending = []; // BunSocket with a queue
let queued = 0; // frames queued since the last writePending
let flushScheduled = false;
function write(ws, t) {
  // Binary frames (Socket.IO attachments) arrive as Uint8Arrays.
  if (typeof t === "string") ws.sendText(t);
  else ws.sendBinary(t);
}
function writeQueued(ws, list) {
  if (list.length === 1) {
    write(ws, list[0]);
    return;
  }
  ws.cork(() => {
    for (let i = 0; i < list.length; i++) write(ws, list[i]);
  });
}
/** Write every queued frame (in the order queued, per socket). */
function writePending() {
  queued = 0;
  for (let i = 0; i < pending.length; i++) pending[i].flush();
  pending.length = 0;
}
function flushAll() {
  flushScheduled = false;
  writePending();
}
// The socket whose message callback is running: uWebSockets corks it for the callback,
// so its replies are written together when the callback returns, without a queue.
let receiving = null;

/**
 * The Host's socket for a WebSocket route (a class: no closures per connection). It is
 * also the socket's `ws.data` (one object per connection, not two): `conn` is the
 * Host's connection, `eio` whether the route is Engine.IO's.
 */
export class BunSocket {
  constructor(conn, eio) {
    this.conn = conn;
    this.eio = eio;
    this.ws = null; // set in open()
    this.queue = null; // frames waiting for writePending
    // getBufferedAmount() read once while frames are queued (-1: not read yet). Nothing
    // is written to the socket until the queue is flushed, so it cannot grow meanwhile;
    // a drain (it shrank) forgets it. One read per socket per turn, not per delivery.
    this.queuedBuffered = -1;
  }
  send(text) {
    if (this.queue === null) {
      if (this.ws === receiving) {
        write(this.ws, text);
        return;
      }
      this.queue = [];
      this.queuedBuffered = -1;
      pending.push(this);
      if (!flushScheduled) {
        flushScheduled = true;
        setImmediate(flushAll);
      }
    }
    this.queue.push(text);
    if (++queued >= FLUSH_AT) writePending();
  }
  flush() {
    const q = this.queue;
    if (q !== null) {
      this.queue = null;
      writeQueued(this.ws, q);
    }
  }
  ping() {
    this.flush();
    this.ws.ping();
  }
  close(code, reason) {
    this.flush();
    this.ws.close(code, reason);
  }
  /** The socket is gone: drop what is queued. */
  drop() {
    this.queue = null;
  }
  buffered() {
    if (this.queue === null) return this.ws.getBufferedAmount();
    if (this.queuedBuffered < 0) this.queuedBuffered = this.ws.getBufferedAmount();
    return this.queuedBuffered;
  }
  /** The runtime's buffer drained: read its amount again. */
  drained() {
    this.queuedBuffered = -1;
  }
}

/**
 * Serve a deployment on Bun.
 * @returns {Promise<{host: Host, server: object, port: number, close(): Promise<void>}>}
 */
export async function serveBun(o) {
  initFromFile();
  // Compile the hot wasm code before the first client waits for it (core.js warmUp).
  if (o.warmUp !== false) await warmUpOnce();
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
      if (srv.upgrade(req, { data: new BunSocket(d.conn, eio), headers })) return undefined;
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
        ws.data.ws = ws;
        host.attach(ws.data.conn, ws.data);
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
        ws.data.drained();
        host.drained(ws.data.conn);
      },
      close(ws, code) {
        ws.data.drop();
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
