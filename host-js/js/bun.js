// @ts-self-types="./bun.d.ts"
// Bun host: Bun.serve with its native websocket handlers. Maps sockets and HTTP only.
import { Host, warmUpOnce, fetchRoute, handshakeRefusal, spacedSender, WARM_CONFIG } from "./core.js";
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

/** Bun.serve's `fetch` for a Host: HTTP routes, and WebSocket upgrades onto BunSockets. */
function fetchFor(host) {
  return function fetch(req, srv) {
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
  };
}

/** Bun.serve's `websocket` handlers for a Host. */
function websocketFor(host) {
  return {
    // The engine answers frames over maxPayloadSize with PAYLOAD_TOO_LARGE + close 1009;
    // Bun refuses frames over twice that itself (close 1009), bounding memory.
    maxPayloadLength: 2 * (host.config.maxPayloadSize ?? 1024 * 1024),
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
  };
}

/**
 * Warm the socket path up: a throwaway server on a loopback port (its own Host with the
 * warm-up deployment, the same handlers, BunSocket and write code as serveBun's), with
 * `subscribers` WebSocket clients of this process subscribed and `publishes` publishes
 * fanned out to them. warmUp() compiles the engine and the Host's code against stand-in
 * sockets; JavaScriptCore compiles the code that meets Bun's real sockets (queueing,
 * cork, sendText) only once real ones come, and would do it, for tens of milliseconds
 * on the server's core, during the first fan-out to real clients (BENCHMARKS.md,
 * "Issue 22: the socket path warmed up before listening"). Resolves with `{ms,
 * deliveries}` (what the clients received); never rejects: a warm-up that fails or
 * takes over `timeoutMs` is abandoned and reported in `error` (closing what it opened
 * takes up to 2 s more).
 * @returns {Promise<{ms: number, deliveries: number, error?: string}>}
 */
export async function warmUpSockets({ subscribers = 1000, publishes = 60, timeoutMs = 10000 } = {}) {
  const t0 = performance.now();
  const deadline = t0 + timeoutMs;
  let host = null;
  let server = null;
  let stopped = true; // false: the server was started and has not stopped
  const clients = [];
  let deliveries = 0;
  let error;
  try {
    host = new Host({ config: WARM_CONFIG, seed: 1n, log: () => {}, scheduler: { set() {}, clear() {} } });
    server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: fetchFor(host), websocket: websocketFor(host) });
    stopped = false;
    const url = `ws://127.0.0.1:${server.port}/`;
    // The publisher connects first: it is not a subscriber (a publisher does not receive
    // its own messages).
    const publisher = await connect(url, clients, null, deadline);
    if (publisher === null) throw new Error(`the publisher could not connect within ${timeoutMs} ms`);
    // Subscribers connect in waves; past an open-files limit the clients that cannot
    // connect (or that the server cannot accept) are left out, and a wave that adds none
    // ends the subscribing.
    const sub = '{"type":"subscribe","requestId":"s","resource":"warm","filter":{"room":"a"}}';
    const receivers = [];
    let finished = 0; // receivers that got the last publish or closed
    let closedEarly = 0; // ... closed before it
    let target = Infinity; // receivers.length once publishing
    let onAll;
    const all = new Promise((r) => (onAll = r));
    const receive = (ws) => {
      let seen = false;
      const finish = () => {
        seen = true;
        if (++finished >= target) onAll();
      };
      ws.onmessage = (e) => {
        deliveries++;
        if (!seen && typeof e.data === "string" && e.data.includes('"last":true')) finish();
      };
      ws.onclose = () => {
        if (seen) return;
        closedEarly++;
        finish();
      };
    };
    while (receivers.length < subscribers) {
      const wave = [];
      const until = Math.min(deadline, performance.now() + 1000);
      for (let i = Math.min(WARM_WAVE, subscribers - receivers.length); i > 0; i--) wave.push(connect(url, clients, sub, until));
      const ok = (await Promise.all(wave)).filter((ws) => ws !== null);
      if (ok.length === 0) break;
      for (const ws of ok) {
        receive(ws);
        receivers.push(ws);
      }
    }
    if (receivers.length === 0) throw new Error(`no client could subscribe within ${timeoutMs} ms`);
    target = receivers.length;
    if (finished >= target) onAll();
    for (let seq = 0; seq < publishes; seq++) {
      const last = seq === publishes - 1 ? ',"last":true' : "";
      publisher.send(`{"type":"publish","channel":"warm","message":{"room":"a","seq":${seq}${last}}}`);
    }
    const complete = await within(all, deadline - performance.now());
    if (!complete) throw new Error(`not done within ${timeoutMs} ms`);
    if (closedEarly > 0) throw new Error(`${closedEarly} of ${receivers.length} clients closed before the last publish`);
  } catch (e) {
    error = String(e?.message ?? e);
  } finally {
    try {
      const closed = clients.map((ws) => (ws.readyState === WebSocket.CLOSED ? null : new Promise((r) => ws.addEventListener("close", r))));
      for (const ws of clients) ws.close();
      await within(Promise.all(closed), 1000);
      if (server !== null) stopped = await within(server.stop(true), 1000);
    } catch (e) {
      error ??= `closing: ${e?.message ?? e}`;
    }
    // Freed once the server stopped and every connection is gone: their handlers call
    // the Host. Otherwise it is kept (once per process, a warm-up engine's memory).
    if (host !== null && stopped && host.conns.size === 0) host.free();
  }
  const r = { ms: performance.now() - t0, deliveries };
  if (error !== undefined) r.error = error;
  return r;
}

/** Whether `promise` settled within `ms` (at least 0); the timer is cleared either way. */
async function within(promise, ms) {
  let timer;
  const late = new Promise((r) => (timer = setTimeout(() => r(false), Math.max(0, ms))));
  try {
    return await Promise.race([promise.then(() => true), late]);
  } finally {
    clearTimeout(timer);
  }
}

/** Clients warmUpSockets connects at a time. */
const WARM_WAVE = 100;

/**
 * A warm-up client (added to `clients`), resolved once open and, given `subscribe`, once
 * its subscription is confirmed; null if it closes first or `until` (a performance.now()
 * time) passes.
 */
function connect(url, clients, subscribe, until) {
  const ws = new WebSocket(url);
  clients.push(ws);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(null), Math.max(0, until - performance.now()));
    const done = (v) => {
      clearTimeout(timer);
      resolve(v);
    };
    ws.onclose = () => done(null);
    ws.onopen = () => {
      if (subscribe === null) done(ws);
      else ws.send(subscribe);
    };
    ws.onmessage = (e) => {
      if (typeof e.data === "string" && e.data.startsWith('{"type":"subscribed"')) done(ws);
    };
  });
}

// warmUpSockets() with its defaults, once per process (the compiled code is the process's).
let socketsWarmedUp = null;

/**
 * Serve a deployment on Bun.
 * @returns {Promise<{host: Host, server: object, port: number, close(): Promise<void>}>}
 */
export async function serveBun(o) {
  initFromFile();
  // Compile the hot wasm code before the first client waits for it (core.js warmUp),
  // then the socket path against real sockets (warmUpSockets).
  if (o.warmUp !== false) {
    await warmUpOnce();
    const w = await (socketsWarmedUp ??= warmUpSockets());
    if (w.error !== undefined && !w.reported) {
      w.reported = true;
      (o.log ?? ((m) => console.error(`switchboard: ${m}`)))(`socket warm-up abandoned after ${Math.round(w.ms)} ms: ${w.error}`);
    }
  }
  const host = new Host({ config: o.config, guard: o.guard, handlers: o.handlers, store: o.store, memoryStore: !o.store, log: o.log, publicInfo: o.publicInfo });
  if (o.testControl) installTestControl(host, { name: "bun", memoryStore: !o.store });
  const server = Bun.serve({
    hostname: o.hostname ?? "127.0.0.1",
    port: o.port ?? 0,
    fetch: fetchFor(host),
    websocket: websocketFor(host),
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
