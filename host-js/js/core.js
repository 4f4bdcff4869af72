// The runtime-independent part of every JavaScript host: it owns the wasm engine,
// executes the actions it returns (sockets, timers, host calls) and keeps the one
// timer. Adapters (node.js, deno.js, bun.js, cloudflare.js) only map their runtime's
// sockets, timers and storage onto the small interfaces below.
//
// One input = one call into wasm = one batch back, as a string (format: host-js/src/batch.rs):
//   [timeout|-1, op, args..., ...]\n<{"actions":[...],"error","logs"} or empty>\n<frame texts...>
// Sends and pings are numbers (no object per action); frame texts are sliced out of the
// batch (no JSON escaping, no parse); a fan-out's recipients come as one Float64Array
// (engine.recipients(), a second call only for batches with a fan-out). A client frame,
// the input that comes most often, leaves the same batch in wasm memory instead
// (engine.frameView): its ops are read as numbers and only its frame texts are decoded.
// Reading batches lives in batch.js, the HTTP side (routes, handshake refusals,
// Fetch-API requests, key-source fetches) in http.js; both are re-exported from here.

import * as wasm from "../pkg/switchboard_wasm.js";
import { bindMemory, memoryF64, memoryText, VIEW_HEADER, OP_SEND, OP_SEND_MANY, OP_PING } from "./batch.js";
import { errorCodes, fetchDocument, handshakeRefusal } from "./http.js";

export { decodeOps, decodeBatch } from "./batch.js";
export {
  errorCodes,
  normalizePeer,
  fetchDocument,
  handshakeCheck,
  handshakeRefusal,
  fetchRoute,
  spacedSender,
  TEST_PREFIX,
  isTestPath,
  testControlRefusal,
  httpRoute,
  STATUS_TEXT,
} from "./http.js";

let initialized = false;

/**
 * Client frames are timed one in this many (a power of two) for the
 * `switchboard_engine_handle_seconds` summary, each timed one counted this many times;
 * every other input is timed.
 */
const FRAME_TIMING_SAMPLE = 16;

/** Instantiate the wasm module once: `module` is the .wasm bytes or a WebAssembly.Module. */
export function initWasm(module) {
  if (!initialized) {
    bindMemory(wasm.initSync({ module }).memory);
    initialized = true;
  }
}

/** Whether initWasm() ran. */
export const wasmReady = () => initialized;

export const engineVersion = () => wasm.version();

/**
 * Split a deployment document (demo.json) into the engine config and the host's
 * `server` settings, applying SWITCHBOARD_JWT_SECRET / SWITCHBOARD_ADMIN_KEY from `env`.
 * Throws an Error listing every problem with its field path.
 */
export function loadDeployment(doc, env = {}) {
  const text = typeof doc === "string" ? doc : JSON.stringify(doc);
  const pick = {};
  for (const k of ["SWITCHBOARD_JWT_SECRET", "SWITCHBOARD_ADMIN_KEY"]) {
    if (typeof env?.[k] === "string") pick[k] = env[k];
  }
  return JSON.parse(wasm.loadDeployment(text, JSON.stringify(pick)));
}

/** A random 64-bit seed for the engine's id generator (call inside a handler on workerd). */
export function randomSeed() {
  return crypto.getRandomValues(new BigUint64Array(1))[0];
}

const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
/** A random URL-safe client id (22 chars, 132 bits), like the native host's. */
export function randomClientId() {
  const b = crypto.getRandomValues(new Uint8Array(22));
  let s = "";
  for (let i = 0; i < b.length; i++) s += ALPHABET[b[i] & 63];
  return s;
}

/**
 * Thrown by an application message handler to answer an error: `code` is a documented
 * code (FORBIDDEN, VALIDATION_ERROR, ...) or the application's own (UPPER_SNAKE_CASE).
 * A connect hook may throw it too (with `closeCode` 4000-4999) to refuse.
 */
export class HandlerError extends Error {
  constructor(code, message, closeCode) {
    super(message ?? code);
    this.name = "HandlerError";
    this.code = code;
    this.closeCode = closeCode;
  }
}

/**
 * The config with what the registered handlers need switched on: message types with
 * a handler are declared (with defaults) if the config does not declare them; hooks and
 * interceptors with a handler are enabled.
 */
export function enableHandlers(config, handlers) {
  if (!handlers) return config;
  const c = { ...config };
  const messages = { ...(c.messages ?? {}) };
  for (const t of Object.keys(handlers.messages ?? {})) messages[t] ??= {};
  if (Object.keys(messages).length) c.messages = messages;
  const hooks = { ...(c.hooks ?? {}) };
  if (handlers.connect) hooks.connect ??= true;
  if (handlers.disconnect) hooks.disconnect ??= true;
  if (Object.keys(hooks).length) c.hooks = hooks;
  const interceptors = { ...(c.interceptors ?? {}) };
  for (const t of Object.keys(handlers.intercept ?? {})) interceptors[t] ??= true;
  if (Object.keys(interceptors).length) c.interceptors = interceptors;
  return c;
}

/** Thrown by Host.command() when the engine refuses a command. */
export class CommandError extends Error {
  constructor(code, message) {
    super(message);
    this.name = "CommandError";
    this.code = code;
  }
}


/**
 * Default scheduler: one setTimeout. A deadline that moves later does not re-arm it: the
 * armed timer fires first and then waits for the rest, so deadlines pushed back by
 * traffic cost no clearTimeout/setTimeout per input.
 */
export function timerScheduler(now = Date.now) {
  let handle = null;
  let armedAt = 0; // when the armed timer fires
  let target = null; // the deadline asked for
  let onFire = null;
  const arm = (at) => {
    if (handle !== null) clearTimeout(handle);
    armedAt = at;
    handle = setTimeout(tick, Math.max(0, at - now()));
    handle?.unref?.(); // never keeps a process alive by itself (Node, Bun, Deno)
  };
  const tick = () => {
    handle = null;
    if (target === null) return;
    if (now() < target) arm(target);
    else onFire();
  };
  return {
    set(at, fire) {
      target = at;
      onFire = fire;
      if (handle === null || at < armedAt) arm(at);
    },
    clear() {
      if (handle !== null) clearTimeout(handle);
      handle = null;
      target = null;
    },
  };
}

// The deployment warmUp() (and bun.js's warmUpSockets()) drives: one route, no auth, no
// limits in the way, one resource clients can publish to.
export const WARM_CONFIG = JSON.stringify({
  name: "warm-up",
  routes: [{ path: "/" }],
  auth: { required: false },
  rateLimit: { enabled: false },
  limits: { maxConnectionsPerIp: 0 },
  resources: { warm: { publish: true } },
});
const WARM_SOCKET = { send() {}, ping() {}, close() {}, buffered: () => 0 };

/**
 * Warm the engine up before a server takes traffic. The runtimes compile the wasm
 * module's hot functions again, optimized, on background threads once they have run
 * often enough (JavaScriptCore's OMG tier, V8's TurboFan); under load that compilation
 * takes the server's core for milliseconds at a time during the first second or two of
 * traffic, and every request in flight waits (BENCHMARKS.md, issue 22, "The tail").
 * This drives a throwaway Host (its own engine, fake sockets) through `messages` common
 * frames (pings; every 16th a publish delivered to the 3 other subscribers), in rounds of
 * `round` with `pauseMs` pauses so the compiler threads get the core, then waits
 * `settleMs` for the last compilations. Resolves with the wall time it took (ms).
 */
export async function warmUp({ messages = 50000, round = 2000, pauseMs = 2, settleMs = 100 } = {}) {
  const t0 = performance.now();
  const host = new Host({ config: WARM_CONFIG, seed: 1n, log: () => {}, scheduler: { set() {}, clear() {} } });
  const conns = [];
  try {
    for (let i = 0; i < 4; i++) {
      const d = host.open({ path: "/", query: "", headers: [], peer: "127.0.0.1", clientId: `warm-up-${i}` });
      if (!d.accept) return performance.now() - t0;
      host.attach(d.conn, WARM_SOCKET);
      conns.push(d.conn);
    }
    const filter = '"resource":"warm","filter":{"room":"a"}}';
    for (const c of conns) host.message(c, `{"type":"subscribe","requestId":"s",${filter}`);
    for (let seq = 0; seq < messages; ) {
      for (let i = 0; i < round && seq < messages; i++, seq++) {
        const c = conns[seq % conns.length];
        if (seq % 16 === 15) host.message(c, `{"type":"publish","requestId":"p${seq}","channel":"warm","message":{"room":"a","seq":${seq}}}`);
        else host.message(c, `{"type":"ping","requestId":"r${seq}"}`);
      }
      await new Promise((r) => setTimeout(r, pauseMs));
    }
    for (const c of conns) host.message(c, `{"type":"unsubscribe","requestId":"u",${filter}`);
  } finally {
    for (const c of conns) host.closed(c, 1000);
    host.free();
  }
  await new Promise((r) => setTimeout(r, settleMs));
  return performance.now() - t0;
}

let warmedUp = null;

/**
 * `warmUp()` with its defaults, once per process: the optimized code belongs to the wasm
 * module, which every Host of the process shares, so a second server in the same process
 * starts without warming up again. `serveNode`, `serveDeno` and `serveBun` call this.
 */
export function warmUpOnce() {
  return (warmedUp ??= warmUp());
}

/**
 * One engine plus the connections it serves.
 *
 * Sockets given to attach() implement: send(text), ping(), close(code, reason), and
 * optionally buffered() → bytes queued (for the slow-consumer policy).
 */
export class Host {
  /**
   * @param {object} o
   * @param {object|string} o.config   engine config (object or JSON; engine keys only)
   * @param {bigint} [o.seed]          id generator seed (default: random)
   * @param {boolean} [o.memoryStore]  answer storage calls inside wasm (default true)
   * @param {{apply(request: object): Promise<object|string>}} [o.store]  own storage (when memoryStore is false)
   * @param {(call: {resource: string, action: string, context: object}) => any} [o.guard]  async host guard
   * @param {Handlers} [o.handlers]  application handlers: {messages: {type: fn}, connect, disconnect, intercept: {type: fn}}
   * @param {{set(at: number, fire: () => void): void, clear(): void}} [o.scheduler]
   * @param {"socket"|"emulate"} [o.ping]  "emulate" where the runtime cannot send WebSocket pings
   * @param {(text: string) => any} [o.encodeShared]  encode a fan-out frame once (sockets' send() gets the result)
   * @param {() => number} [o.now]
   * @param {(conn: number) => void} [o.onConnState]  called after inputs that may change a connection's state
   * @param {() => void} [o.onEngineStep]  called after every engine call, before its actions run
   *        (the Durable Object writes the stream histories' changes to storage here)
   * @param {(msg: string) => void} [o.log]
   * @param {boolean} [o.publicInfo]  GET / shows client and subscription counts, routes and
   *   resources (default false: only name, protocolVersion and draining)
   */
  constructor(o) {
    if (!initialized) throw new Error("call initWasm() before creating a Host");
    this.handlers = o.handlers ?? null;
    const parsed = typeof o.config === "string" ? JSON.parse(o.config) : o.config;
    this.config = enableHandlers(parsed, this.handlers);
    const cfg = JSON.stringify(this.config);
    this.now = o.now ?? Date.now;
    this.engine = new wasm.Engine(cfg, o.seed ?? randomSeed(), o.memoryStore ?? true);
    // When to report queued bytes (the engine's thresholds; a reset engine has the same config).
    this.pressure = this.engine.backpressureThresholds();
    this.store = o.store ?? null;
    this.guard = o.guard ?? null;
    this.capabilities(this.engine);
    this.scheduler = o.scheduler ?? timerScheduler(this.now);
    this.pingMode = o.ping ?? "socket";
    this.encodeShared = o.encodeShared ?? null;
    this.onConnState = o.onConnState ?? null;
    this.onEngineStep = o.onEngineStep ?? null;
    this.log = o.log ?? ((m) => console.error(`switchboard: ${m}`));
    this.publicInfo = o.publicInfo ?? false;
    this.conns = new Map(); // conn id -> {socket, queue, closing, reported, over}
    this.nextConn = 1;
    this.deadline = null;
    this.tag = 0;
    this.busy = false;
    this.deferred = [];
    this.decision = null;
    this.commandResult = null;
    this.commandTag = null;
    this.pendingCommands = new Map(); // tag -> {resolve, reject} (commandAsync)
    this.httpPending = new Map(); // long-polling request id -> resolve (poll)
    this.httpReq = 0;
    this.draining = false;
    // The test control channel (js/test-control.js), when installed: it may hold host
    // calls (intercept returns true) and pick client ids.
    this.testControl = null;
    this.intercept = null;
    this.stats = { handleCalls: 0, handleSeconds: 0, socketsOpen: 0, timeouts: 0, hostCalls: 0 };
    /** Client frames fed since the last timed one, modulo FRAME_TIMING_SAMPLE (0: time the next). */
    this.frameTick = 0;
    // The last batch view's extra line and frame texts (readView).
    this.viewExtra = null;
    this.viewBody = "";
  }

  /**
   * Tell `engine` which host calls this host answers (a guard callback, application
   * handlers, or calls the test control channel holds); the engine answers the others.
   */
  capabilities(engine) {
    const tc = this.testControl;
    engine.setHostCapabilities(this.guard !== null || (tc?.holdGuard ?? false), this.handlers !== null || tc !== null);
  }

  // ---------------------------------------------------------------- inputs

  /**
   * An upgrade request: {path, query, headers: [[name, value]...], peer, clientId?}.
   * Returns {conn, accept: true, protocol} or {conn, accept: false, status, body}.
   * On accept, call attach(conn, socket) once the socket exists (frames queue until
   * then), or closed(conn, 1006) if the handshake failed.
   */
  open(request) {
    const conn = this.nextConn++;
    const req = { ...request, clientId: request.clientId ?? randomClientId() };
    if (this.testControl) this.testControl.upgradeRequest(req);
    this.conns.set(conn, { socket: null, queue: [], closing: false, reported: 0, over: false });
    this.decision = null;
    this.run(() => this.engine.open(this.now(), conn, JSON.stringify(req)));
    const d = this.decision ?? { accept: false, ...handshakeRefusal("no_decision") };
    this.decision = null;
    if (!d.accept) this.conns.delete(conn);
    return { conn, ...d };
  }

  /**
   * A long-polling request on an Engine.IO route (`engine.servesHttp(path)`): method,
   * {path, query, headers, peer} and the body bytes (at most maxPayloadSize + 1). Returns
   * {promise, abort}: the promise resolves with {status, headers: [[name, value]], body}
   * when the engine answers, at once or when it releases a held GET; call abort() if the
   * client goes away first (the engine closes the session, as Engine.IO does).
   */
  poll(method, request, body) {
    const req = ++this.httpReq;
    const r = { ...request, clientId: request.clientId ?? randomClientId() };
    const promise = new Promise((resolve) => this.httpPending.set(req, resolve));
    this.run(() => this.engine.http(this.now(), req, method, JSON.stringify(r), body));
    const abort = () => {
      const resolve = this.httpPending.get(req);
      if (!resolve) return;
      this.httpPending.delete(req);
      this.run(() => this.engine.httpAborted(this.now(), req));
      // Nobody reads it; the runtime's handler still finishes (Deno's shutdown waits).
      resolve({ status: 400, headers: [], body: "" });
    };
    return { promise, abort };
  }

  /** The socket for an accepted connection exists: flush what queued up. */
  attach(conn, socket) {
    const c = this.conns.get(conn);
    if (!c) {
      socket.close(1011, "unknown connection");
      return;
    }
    c.socket = socket;
    this.stats.socketsOpen++;
    const q = c.queue;
    c.queue = null;
    for (const op of q) op(socket);
  }

  /** A text frame as a string (Deno, Bun, workerd) or bytes (Node Buffers). */
  message(conn, data, binary = false) {
    if (this.busy) {
      // A socket callback fired while a batch was executing: keep the engine's order.
      this.deferred.push(() => this.message(conn, data, binary));
      return;
    }
    // run() without its closure: the one input every frame is.
    this.busy = true;
    try {
      // One frame in FRAME_TIMING_SAMPLE is timed, for FRAME_TIMING_SAMPLE frames: two
      // performance.now() calls per frame cost 5-18 % of a ping (Bun, Node, Deno).
      const timed = this.frameTick === 0;
      this.frameTick = (this.frameTick + 1) & (FRAME_TIMING_SAMPLE - 1);
      const t0 = timed ? performance.now() : 0;
      // The batch is left in wasm memory (src/batch.rs: no string built, returned or parsed).
      const at =
        typeof data === "string"
          ? this.engine.frameView(this.now(), conn, data)
          : this.engine.frameBytesView(this.now(), conn, data instanceof Uint8Array ? data : new Uint8Array(data), binary);
      // Read before anything else calls into the module (onEngineStep may).
      const ops = this.readView(at);
      if (timed) this.stats.handleSeconds += (FRAME_TIMING_SAMPLE * (performance.now() - t0)) / 1000;
      this.stats.handleCalls++;
      this.onEngineStep?.();
      const extra = this.viewExtra;
      const body = this.viewBody;
      // Not kept past this frame (a history reply's texts can be large).
      this.viewExtra = null;
      this.viewBody = "";
      this.executeParts(ops, extra, body);
    } finally {
      this.busy = false;
    }
    while (this.deferred.length) this.deferred.shift()();
    this.onConnState?.(conn);
  }

  pong(conn) {
    this.run(() => this.engine.pong(this.now(), conn));
  }

  /** The socket is gone (client close, error, or after a close action). Idempotent. */
  closed(conn, code) {
    const c = this.conns.get(conn);
    if (!c) return;
    this.conns.delete(conn);
    if (c.socket) this.stats.socketsOpen--;
    const valid = Number.isInteger(code) && code >= 1000 && code <= 4999 ? code : undefined;
    this.run(() => this.engine.closed(this.now(), conn, valid));
  }

  /** Re-create a connection from a snapshot (after hibernation); no welcome is sent. */
  restore(conn, snapshotJson, socket) {
    if (conn >= this.nextConn) this.nextConn = conn + 1;
    this.conns.set(conn, { socket: null, queue: [], closing: false, reported: 0, over: false });
    let error = null;
    this.run(() => {
      const b = this.engine.restore(this.now(), conn, snapshotJson);
      return b;
    }, (e) => (error = e));
    if (error) {
      this.conns.delete(conn);
      return false;
    }
    this.attach(conn, socket);
    return true;
  }

  /** The connection's state as JSON (undefined if unknown). */
  snapshot(conn) {
    return this.engine.snapshot(conn);
  }

  /**
   * Run a server-API command whose result is immediate; returns its result or throws a
   * CommandError. Resource writes (insert/update/delete) finish when the store answers:
   * at once with the in-wasm memory store, later with an async JS store (then this
   * throws, and commandAsync() is the form to use).
   */
  command(command) {
    const tag = ++this.tag;
    this.commandResult = null;
    this.commandTag = tag;
    this.run(() => this.engine.command(this.now(), tag, JSON.stringify(command)));
    const r = this.commandResult;
    this.commandResult = null;
    this.commandTag = null;
    if (!r) {
      throw new CommandError(
        errorCodes().InternalError,
        `the '${command?.command}' command completes asynchronously (it waits for the store): use await host.commandAsync(...)`,
      );
    }
    if ("Err" in r) throw new CommandError(r.Err.code, r.Err.message);
    return r.Ok;
  }

  /**
   * Run any server-API command, including resource writes that wait for the store
   * (`{command: "insert", resource, data}`, `update` with `id`, `delete` with `id`):
   * resolves with its result (writes: `{record, delivered}`) or rejects with a
   * CommandError (VALIDATION_ERROR, NOT_FOUND, RESOURCE_NOT_FOUND, TIMEOUT, ...).
   */
  commandAsync(command) {
    const tag = ++this.tag;
    return new Promise((resolve, reject) => {
      this.pendingCommands.set(tag, { resolve, reject });
      this.run(() => this.engine.command(this.now(), tag, JSON.stringify(command)));
    });
  }

  /**
   * Socket.IO: emit `event` to a client asking for an acknowledgement; resolves with the
   * ack's arguments (none: null, several: {$args: [...]}) or rejects with a CommandError
   * (TIMEOUT, NOT_FOUND, ...). opts: namespace (default "/"), timeoutMs (default
   * limits.hostCallTimeoutMs).
   */
  async emitWithAck(clientId, event, data, opts = {}) {
    const command = { command: "emitWithAck", clientId, event, ...opts };
    if (data !== undefined) command.data = data;
    const r = await this.commandAsync(command);
    return r.data;
  }

  /** Publish into a channel as the server: `{delivered}`, plus `{offset, epoch}` on a stream (opts: tenant). */
  publish(channel, data, opts = {}) {
    return this.command(data === undefined ? { command: "publish", channel, ...opts } : { command: "publish", channel, data, ...opts });
  }

  /** A channel's history: `{channel, publications, offset, epoch}` (opts: limit, since {offset, epoch}, reverse, tenant). */
  history(channel, opts = {}) {
    return this.command({ command: "history", channel, ...opts });
  }

  /** The clients subscribed to a channel: `{channel, clients: [{clientId, user}]}` (opts: tenant). */
  presence(channel, opts = {}) {
    return this.command({ command: "presence", channel, ...opts });
  }

  /** Client and user counts of a channel: `{channel, clients, users}` (opts: tenant). */
  presenceStats(channel, opts = {}) {
    return this.command({ command: "presenceStats", channel, ...opts });
  }

  /** Refuse new upgrades and close every connection with 1001. Resolves when all are gone or after `ms`. */
  async shutdown(reason = "server shutting down", ms = 10000) {
    this.draining = true;
    this.command({ command: "shutdown", reason });
    const until = Date.now() + ms;
    while (this.conns.size > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    for (const [conn] of this.conns) this.closed(conn, 1006);
    this.scheduler.clear();
  }

  /** Feed Timeout (called by the scheduler). */
  timeout() {
    this.deadline = null;
    this.stats.timeouts++;
    this.run(() => this.engine.timeout(this.now()));
  }

  // ---------------------------------------------------------------- actions

  run(call, onError) {
    if (this.busy) {
      // A socket callback fired while a batch was executing: keep the engine's order.
      this.deferred.push(() => this.run(call, onError));
      return;
    }
    this.busy = true;
    try {
      const t0 = performance.now();
      const batch = call();
      this.stats.handleSeconds += (performance.now() - t0) / 1000;
      this.stats.handleCalls++;
      this.onEngineStep?.();
      this.execute(batch, onError);
    } finally {
      this.busy = false;
    }
    while (this.deferred.length) this.deferred.shift()();
  }

  /** Execute a batch string (format: src/batch.rs). */
  execute(batch, onError) {
    const nl = batch.indexOf("\n");
    const ops = JSON.parse(batch.slice(0, nl));
    const nl2 = batch.indexOf("\n", nl + 1);
    const extra = nl2 > nl + 1 ? JSON.parse(batch.slice(nl + 1, nl2)) : null;
    this.executeParts(ops, extra, batch.slice(nl2 + 1), onError);
  }

  /**
   * Read the batch view at `at` (src/batch.rs, "The same batch in wasm memory"): returns
   * the ops as the string form's ops line has them (deadline first), and leaves the
   * extra line (parsed, or null) in `viewExtra` and the frame texts in `viewBody`.
   */
  readView(at) {
    const f = memoryF64();
    const h = at / 8; // the op buffer is an array of f64: 8-byte aligned
    const n = f[h];
    // A literal grown by push: JavaScriptCore fills `new Array(n)` 5x slower.
    const ops = [f[h + 1]];
    for (let i = 0; i < n; i++) ops.push(f[h + VIEW_HEADER + i]);
    const extraLen = f[h + 3];
    const bodyLen = f[h + 5];
    this.viewExtra = extraLen > 0 ? JSON.parse(memoryText(f[h + 2], extraLen)) : null;
    this.viewBody = bodyLen > 0 ? memoryText(f[h + 4], bodyLen) : "";
    return ops;
  }

  /**
   * Execute a batch: `ops` as its ops line (deadline first), `extra` its extra line
   * (parsed, or null), `body` its frame texts (sends slice them by UTF-16 offsets).
   */
  executeParts(ops, extra, body, onError) {
    let other = 0;
    let rc = null; // recipients of the fan-outs, read at the first one
    let next = 0;
    let pongs = null;
    let pressure = null;
    for (let i = 1; i < ops.length; ) {
      switch (ops[i]) {
        case OP_SEND: {
          const conn = ops[i + 1];
          const c = this.conns.get(conn);
          if (c && this.sendTo(conn, c, body.slice(ops[i + 2], ops[i + 3]))) (pressure ??= []).push(conn);
          i += 4;
          break;
        }
        case OP_SEND_MANY: {
          // Nothing calls the engine while a batch executes (run() defers), so the
          // recipients are still this batch's.
          rc ??= this.engine.recipients();
          const end = next + ops[i + 1];
          let text = body.slice(ops[i + 2], ops[i + 3]);
          // Encode once for every recipient where the runtime would encode per send (Node).
          if (this.encodeShared) text = this.encodeShared(text);
          for (; next < end; next++) {
            const id = rc[next];
            const c = this.conns.get(id);
            if (c && this.sendTo(id, c, text)) (pressure ??= []).push(id);
          }
          i += 4;
          break;
        }
        case OP_PING: {
          const conn = ops[i + 1];
          const c = this.conns.get(conn);
          if (c) {
            if (this.pingMode === "emulate") (pongs ??= []).push(conn);
            else if (c.socket) safe(() => c.socket.ping());
          }
          i += 2;
          break;
        }
        default: {
          const a = extra.actions[other++];
          i += 1;
          switch (a.action) {
            case "send": {
              // Binary frames (text ones are OP_SEND).
              const c = this.conns.get(a.conn);
              if (c && this.sendTo(a.conn, c, b64(a.binary))) (pressure ??= []).push(a.conn);
              break;
            }
            case "sendMany": {
              const bytes = b64(a.binary);
              for (const id of a.conns) {
                const c = this.conns.get(id);
                if (c && this.sendTo(id, c, bytes)) (pressure ??= []).push(id);
              }
              break;
            }
            case "accept":
              this.decision = { accept: true, protocol: a.protocol ?? null };
              break;
            case "reject":
              this.decision = { accept: false, status: a.status, body: a.body };
              break;
            case "close": {
              const c = this.conns.get(a.conn);
              if (!c) break;
              c.closing = true;
              if (c.socket) safe(() => c.socket.close(a.code, a.reason));
              else c.queue.push((s) => safe(() => s.close(a.code, a.reason)));
              break;
            }
            case "call":
              if (!this.intercept?.(a)) this.hostCall(a);
              break;
            case "respond": {
              const resolve = this.httpPending.get(a.req);
              if (resolve) {
                this.httpPending.delete(a.req);
                resolve(a);
              }
              break;
            }
            case "commandResult": {
              const p = this.pendingCommands.get(a.tag);
              if (p) {
                this.pendingCommands.delete(a.tag);
                if (p.raw) p.resolve(a.result);
                else if ("Err" in a.result) p.reject(new CommandError(a.result.Err.code, a.result.Err.message));
                else p.resolve(a.result.Ok);
              } else if (a.tag === this.commandTag) {
                this.commandResult = a.result;
              } else {
                this.log(`result of command ${a.tag} arrived after command() returned: ${JSON.stringify(a.result)}`);
              }
              break;
            }
            default:
              this.log(`unknown action ${a.action}`);
          }
        }
      }
    }
    if (extra !== null) {
      if (extra.error) {
        if (onError) onError(extra.error);
        else this.log(`engine: ${extra.error}`);
      }
      if (extra.logs) for (const line of extra.logs) this.log(line);
    }
    this.schedule(ops[0] < 0 ? null : ops[0]);
    // Inputs produced while executing go in after the batch, in order.
    if (pongs) for (const conn of pongs) this.deferred.push(() => this.pong(conn));
    if (pressure) {
      for (const conn of pressure) {
        this.deferred.push(() => {
          const c = this.conns.get(conn);
          if (c) this.run(() => this.engine.backpressure(this.now(), conn, c.reported));
        });
      }
    }
  }

  /**
   * Whether `b` queued bytes cross the engine's thresholds (js: backpressureThresholds)
   * given what the engine was last told; records the new state when they do.
   */
  crossed(c, b) {
    // Indexed, not destructured: array destructuring runs the iterator protocol, which
    // JavaScriptCore (Bun) does not optimize away (a fifth of a fan-out's CPU on Bun).
    if (c.over ? b > this.pressure[1] : b <= this.pressure[0]) return false;
    c.over = !c.over;
    c.reported = b;
    return true;
  }

  /** Send one frame; returns true when the queue crossed a threshold (report it). */
  sendTo(conn, c, text) {
    if (!c.socket) {
      c.queue.push((s) => s.send(text));
      return false;
    }
    c.socket.send(text);
    const b = c.socket.buffered?.();
    return b !== undefined && this.crossed(c, b);
  }

  /** A runtime told us a connection's queue drained (Bun's drain, ...). */
  drained(conn) {
    const c = this.conns.get(conn);
    if (!c || !c.socket) return;
    const b = c.socket.buffered?.() ?? 0;
    if (this.crossed(c, b)) this.run(() => this.engine.backpressure(this.now(), conn, b));
  }

  schedule(at) {
    if (at === this.deadline) return;
    this.deadline = at;
    if (at === null || at === undefined) this.scheduler.clear();
    else this.scheduler.set(at, () => this.timeout());
  }

  async hostCall(a) {
    this.stats.hostCalls++;
    const req = a.request;
    let result;
    let guardValue = false; // what the guard callback returned (the engine reads it)
    try {
      if (req.kind === "guard") {
        // (Without a callback the engine denies guard calls itself: see capabilities().)
        const v = this.guard ? await this.guard({ resource: req.resource, action: req.action, context: req.context }) : false;
        guardValue = v === undefined ? null : v;
      } else if (req.kind === "message" || req.kind === "hook" || req.kind === "intercept") {
        result = await this.runHandler(req);
      } else if (req.kind === "fetch") {
        result = await fetchDocument(req.url, Math.max(1, a.deadline - this.now()));
      } else if (req.kind === "store") {
        if (!this.store) throw new Error("no store configured");
        const r = await this.store.apply(req);
        result = typeof r === "string" ? JSON.parse(r) : r;
      } else {
        throw new Error(`unknown host call ${req.kind}`);
      }
    } catch (e) {
      this.log(`host call ${a.op} (${req.kind}) failed: ${e?.message ?? e}`);
      guardValue = false;
      result =
        req.kind === "message" || req.kind === "hook" || req.kind === "intercept"
          ? { kind: "handler", failed: String(e?.message ?? e) }
          : { kind: "store", failed: { kind: "internal", message: String(e?.message ?? e) } };
    }
    if (req.kind === "guard") {
      let json;
      try {
        json = JSON.stringify(guardValue);
      } catch {
        json = "false"; // not JSON (a cycle, a BigInt): deny
      }
      this.run(() => this.engine.guardCompleted(this.now(), a.op, json ?? "false"));
    } else {
      const json = JSON.stringify(result);
      this.run(() => this.engine.completed(this.now(), a.op, json));
    }
    if (a.conn !== undefined && a.conn !== null) this.onConnState?.(a.conn);
  }

  /**
   * Run an application handler, hook or interceptor for a host call; the answer
   * ({kind: "handler", reply?, error?, commands?, user?, meta?, modified?, failed?}).
   * Message handlers return the reply (undefined: none) and throw HandlerError to
   * answer an error; hooks and interceptors return an answer object (or nothing).
   */
  async runHandler(req) {
    // Run outside the batch that made the call, so the handler's commands run at once.
    await null;
    const h = this.handlers ?? {};
    const fn =
      req.kind === "message"
        ? h.messages?.[req.type]
        : req.kind === "hook"
          ? h[req.hook]
          : h.intercept?.[req.type];
    if (typeof fn !== "function") {
      const what = req.kind === "hook" ? `${req.hook} hook` : `${req.kind} handler for \`${req.type}\``;
      this.log(`no ${what} is registered`);
      return { kind: "handler", failed: `no ${what} is registered` };
    }
    const ctx = this.handlerContext(req.client.clientId);
    const call = req.kind === "message" ? { type: req.type, data: req.data, requestId: req.requestId, client: req.client } : req;
    try {
      const out = await fn(call, ctx);
      if (req.kind === "message") return out === undefined ? { kind: "handler" } : { kind: "handler", reply: out };
      return { kind: "handler", ...(out && typeof out === "object" ? out : {}) };
    } catch (e) {
      if (e instanceof HandlerError) {
        return { kind: "handler", error: { code: e.code, message: e.message, ...(e.closeCode ? { closeCode: e.closeCode } : {}) } };
      }
      this.log(`application handler failed: ${e?.stack ?? e}`);
      return { kind: "handler", failed: String(e?.message ?? e) };
    }
  }

  /** What a handler gets: the caller's id and the server API. */
  handlerContext(clientId) {
    const run = (command) => {
      try {
        return this.command(command);
      } catch (e) {
        return { error: { code: e.code ?? errorCodes().InternalError, message: e.message } };
      }
    };
    return {
      clientId,
      /** Send `message` verbatim to the caller (several times to stream). */
      send: (message) => run({ command: "sendTo", clientId, message }),
      /** Put the caller in a room / take it out. */
      join: (room) => run({ command: "joinRoom", clientId, room }),
      leave: (room) => run({ command: "leaveRoom", clientId, room }),
      /** Any server-API command ({command: "broadcast", ...}). */
      command: (command) => run(command),
      /** Socket.IO: ask the caller to acknowledge `event`; resolves with the ack's data. */
      emitWithAck: (event, data, opts = {}) => this.emitWithAck(clientId, event, data, opts),
    };
  }

  // ---------------------------------------------------------------- observability

  /** Prometheus text: the engine's series plus the host's. */
  metricsText() {
    const s = this.stats;
    return (
      this.engine.metricsText() +
      "# HELP switchboard_sockets_open WebSocket sockets the host holds open\n" +
      "# TYPE switchboard_sockets_open gauge\n" +
      `switchboard_sockets_open ${s.socketsOpen}\n` +
      `# HELP switchboard_engine_handle_seconds Time in engine calls, including action decoding (client frames: one in ${FRAME_TIMING_SAMPLE} timed, counted ${FRAME_TIMING_SAMPLE} times)\n` +
      "# TYPE switchboard_engine_handle_seconds summary\n" +
      `switchboard_engine_handle_seconds_sum ${s.handleSeconds}\n` +
      `switchboard_engine_handle_seconds_count ${s.handleCalls}\n` +
      "# HELP switchboard_engine_timeouts Engine deadlines fired\n" +
      "# TYPE switchboard_engine_timeouts counter\n" +
      `switchboard_engine_timeouts_total ${s.timeouts}\n`
    );
  }

  /** Engine counters (the `metrics` command's JSON). */
  metrics() {
    return JSON.parse(this.engine.metrics());
  }

  /** Free the wasm memory of this engine. */
  free() {
    this.scheduler.clear();
    this.engine.free();
  }
}

function safe(f) {
  try {
    f();
  } catch {
    // The socket is already closing or closed; its close event reports it.
  }
}

function b64(s) {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

export { wasm };
