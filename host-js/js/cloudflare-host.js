// Cloudflare Workers host (shared by the entry points js/cloudflare.js, the full module,
// and js/cloudflare-lean.js, the lean module without JSON Schema; each imports its .wasm
// and initialises it before any handler runs): a Worker routes to ONE Durable Object that owns the engine
// (fan-out needs every connection in one engine). The Durable Object uses the WebSocket
// Hibernation API (ctx.acceptWebSocket + webSocketMessage/webSocketClose/webSocketError),
// one alarm for the engine's deadline, Durable Object storage for resources and for the
// channel streams' histories (`stream:*` keys, written before the frames of the same step
// go out, read back after an eviction so recovery keeps working), and restores
// every connection after the object was evicted from the engine snapshots it keeps in
// each socket's attachment (or in storage when a snapshot exceeds the 2 KiB limit).
//
// Workers cannot send WebSocket ping frames, so engine pings are answered at once (ping
// mode "emulate"); dead sockets are detected by the runtime (webSocketClose/-Error).
//
// Bindings: SWITCHBOARD (the Durable Object namespace), SWITCHBOARD_CONFIG (deployment
// JSON text), optional SWITCHBOARD_JWT_SECRET / SWITCHBOARD_ADMIN_KEY secrets, and
// SWITCHBOARD_RELAY="1" to relay the sockets through the Worker (createWorker),
// SWITCHBOARD_HIBERNATION="0" to accept sockets without the Hibernation API (see the
// `hibernation` getter), SWITCHBOARD_TEST_HOOKS="1" to enable /__test/*, SWITCHBOARD_TEST_CONTROL="1" to enable the
// test control channel (js/test-control.js; tests only).
import { DurableObject } from "cloudflare:workers";
import { Host, fetchRoute, handshakeCheck, handshakeRefusal, loadDeployment, wasm } from "./core.js";
import { installTestControl, testControlEnabled } from "./test-control.js";

export { Host, loadDeployment } from "./core.js";

/** Serialized attachments are limited to 2,048 bytes; keep a margin for the wrapper. */
export const ATTACHMENT_SNAPSHOT_LIMIT = 1900;

const JSON_HEADERS = { "content-type": "application/json" };

/**
 * Records in Durable Object storage, one key per record (`rec:<resource>:<id>`, value =
 * the record's JSON text, so numbers survive exactly). The store contract (conflicts,
 * merges, filters, pages, cursors) runs in wasm on the records read for each request.
 */
export class DurableObjectStore {
  constructor(storage) {
    this.storage = storage;
  }

  async apply(req) {
    const prefix = `rec:${req.resource}:`;
    let texts;
    if (req.op === "list") {
      texts = [...(await this.storage.list({ prefix })).values()];
    } else {
      const id = req.op === "insert" ? req.record?.id : req.id;
      const t = typeof id === "string" ? await this.storage.get(prefix + id) : undefined;
      texts = t === undefined ? [] : [t];
    }
    const result = JSON.parse(wasm.applyToRecords(JSON.stringify(req), `[${texts.join(",")}]`));
    if (result.inserted) await this.storage.put(prefix + result.inserted.id, JSON.stringify(result.inserted));
    else if (result.updated) await this.storage.put(prefix + req.id, JSON.stringify(result.updated.record));
    else if (result.deleted) await this.storage.delete(prefix + req.id);
    return result;
  }
}

/** `now` is the engine's clock (Date.now, or the test control channel's). */
function alarmScheduler(storage, log, now = Date.now) {
  return {
    set(at) {
      const wall = now === Date.now ? at : Date.now() + Math.max(0, at - now());
      storage.setAlarm(wall).catch((e) => log(`setAlarm: ${e}`));
    },
    clear() {
      storage.deleteAlarm().catch((e) => log(`deleteAlarm: ${e}`));
    },
  };
}

const socketOf = (ws) => ({
  send: (text) => ws.send(text),
  ping: () => {},
  close: (code, reason) => ws.close(code, reason),
});

/**
 * The Durable Object. Subclass it in your Worker module (`export class Switchboard
 * extends SwitchboardDurableObject {}`); override `guard(call)` for async host guards.
 */
export class SwitchboardDurableObject extends DurableObject {
  constructor(ctx, env) {
    super(ctx, env);
    this.host = null;
    this.starting = null;
    this.sockets = new Map(); // conn -> WebSocket
    this.saved = new Map(); // conn -> last persisted snapshot JSON
    this.stats = { starts: 0, restored: 0, alarms: 0, storedSnapshots: 0, liveSockets: 0 };
  }

  log(msg) {
    console.error(`switchboard: ${msg}`);
  }

  /** The engine, created on first use and after every eviction. */
  ensure() {
    if (this.host) return this.host;
    this.starting ??= this.start().finally(() => (this.starting = null));
    return this.starting;
  }

  async start() {
    const doc = this.env.SWITCHBOARD_CONFIG;
    if (!doc) throw new Error("SWITCHBOARD_CONFIG binding (deployment JSON) is missing");
    const dep = loadDeployment(doc, this.env);
    const host = new Host({
      config: dep.config,
      memoryStore: false,
      store: new DurableObjectStore(this.ctx.storage),
      // A subclass may define `async guard({resource, action, context})`; without one,
      // host-guarded actions are refused (fail closed).
      guard: typeof this.guard === "function" ? (call) => this.guard(call) : null,
      // A subclass may define `handlers` ({messages, connect, disconnect, intercept}).
      handlers: this.handlers ?? null,
      ping: "emulate",
      scheduler: alarmScheduler(this.ctx.storage, (m) => this.log(m), testControlEnabled(this.env) ? () => host.now() : Date.now),
      onConnState: (conn) => this.persist(conn),
      onEngineStep: () => this.persistStreams(host.engine),
      log: (m) => this.log(m),
    });
    await this.loadStreams(host.engine);
    if (testControlEnabled(this.env)) {
      installTestControl(host, {
        name: "workerd",
        memoryStore: false,
        keepScheduler: true,
        resetStore: (records) => this.resetRecords(records),
        resetEngine: (engine) => this.resetStreams(engine),
        evict: (seed) => this.simulateEviction(seed),
      });
      this.log("TEST CONTROL CHANNEL ENABLED (SWITCHBOARD_TEST_CONTROL): tests only");
    }
    this.stats.starts++;
    this.sockets.clear();
    this.saved.clear();
    // Wake-up after eviction: every hibernated socket comes back from its snapshot.
    for (const ws of this.ctx.getWebSockets()) {
      const att = ws.deserializeAttachment();
      const conn = att?.conn;
      if (!conn) continue;
      const snap = att.snap ?? (att.stored ? await this.ctx.storage.get(`snap:${conn}`) : undefined);
      if (!snap || !host.restore(conn, snap, socketOf(ws))) {
        try {
          ws.close(1011, "connection state lost");
        } catch {}
        continue;
      }
      this.sockets.set(conn, ws);
      this.saved.set(conn, snap);
      this.stats.restored++;
    }
    this.host = host;
    return host;
  }

  /** Stream histories: durable, and read back from storage into a new engine. */
  async loadStreams(engine) {
    engine.setPersistentStreams(true);
    const stored = await this.ctx.storage.list({ prefix: "stream:" });
    if (stored.size === 0) return;
    const bad = JSON.parse(engine.restoreStreams(JSON.stringify([...stored])));
    if (bad.length) this.log(`unreadable stream keys skipped: ${bad.join(", ")}`);
  }

  /** Write the engine's stream changes (puts and deletes, in order) to storage. */
  persistStreams(engine) {
    const ops = JSON.parse(engine.takeStreamOps());
    for (const op of ops) {
      const p = op.op === "put" ? this.ctx.storage.put(op.key, op.value) : this.ctx.storage.delete(op.key);
      p.catch((e) => this.log(`stream ${op.op} ${op.key}: ${e}`));
    }
  }

  /** Test control reset: no stream history survives; the fresh engine persists its own. */
  async resetStreams(engine) {
    const keys = [...(await this.ctx.storage.list({ prefix: "stream:" })).keys()];
    for (let i = 0; i < keys.length; i += 128) await this.ctx.storage.delete(keys.slice(i, i + 128));
    engine.setPersistentStreams(true);
  }

  /**
   * Test control `evict`: what a real eviction keeps is storage and the sockets'
   * snapshots, so a new engine (the test's seed) is rebuilt from exactly those, in place,
   * keeping the sockets open (miniflare cannot evict an object and keep its sockets).
   */
  async simulateEviction(seed) {
    const host = this.host;
    this.persistStreams(host.engine);
    const snaps = [];
    for (const [conn] of host.conns) {
      const snap = host.engine.snapshot(conn);
      if (snap) snaps.push([conn, snap]);
    }
    const engine = new wasm.Engine(JSON.stringify(host.config), BigInt(seed), false);
    host.capabilities(engine);
    await this.loadStreams(engine);
    host.engine.free();
    host.engine = engine;
    for (const [conn, snap] of snaps) host.run(() => host.engine.restore(host.now(), conn, snap));
    this.stats.starts++;
    return { evicted: true, restored: snaps.length };
  }

  /** Test control reset: the stored records become exactly `records` ({resource: [record]}). */
  async resetRecords(records) {
    const keys = [...(await this.ctx.storage.list({ prefix: "rec:" })).keys()];
    for (let i = 0; i < keys.length; i += 128) await this.ctx.storage.delete(keys.slice(i, i + 128));
    const puts = {};
    for (const [resource, list] of Object.entries(records)) for (const r of list) puts[`rec:${resource}:${r.id}`] = JSON.stringify(r);
    const entries = Object.entries(puts);
    for (let i = 0; i < entries.length; i += 128) await this.ctx.storage.put(Object.fromEntries(entries.slice(i, i + 128)));
  }

  /** Keep a connection's snapshot next to its socket (attachment, or storage if large). */
  persist(conn) {
    const ws = this.sockets.get(conn);
    const snap = this.host?.snapshot(conn);
    if (!ws || !snap || this.saved.get(conn) === snap) return;
    const wasStored = this.saved.has(conn) && this.saved.get(conn).length > ATTACHMENT_SNAPSHOT_LIMIT;
    this.saved.set(conn, snap);
    try {
      if (snap.length <= ATTACHMENT_SNAPSHOT_LIMIT) {
        ws.serializeAttachment({ conn, snap });
        if (wasStored) this.ctx.storage.delete(`snap:${conn}`).catch(() => {});
      } else {
        this.stats.storedSnapshots++;
        this.ctx.storage.put(`snap:${conn}`, snap).catch((e) => this.log(`snapshot put: ${e}`));
        ws.serializeAttachment({ conn, stored: true });
      }
    } catch (e) {
      this.log(`persist ${conn}: ${e}`);
    }
  }

  connOf(ws) {
    return ws.deserializeAttachment()?.conn;
  }

  async fetch(req) {
    let host;
    try {
      host = await this.ensure();
    } catch (e) {
      // A deployment the engine refuses (bad config, a feature this module lacks): every
      // request gets the same clear answer; the details go to the Worker's log only.
      this.log(`cannot start: ${e?.message ?? e}`);
      const r = handshakeRefusal("bad_deployment");
      return new Response(r.body, { status: r.status, headers: r.headers });
    }
    if (this.env.SWITCHBOARD_TEST_HOOKS === "1" && req.headers.get("upgrade")?.toLowerCase() !== "websocket") {
      const { pathname } = new URL(req.url);
      if (pathname.startsWith("/__test/")) return this.testHook(pathname);
    }
    const { response, accepted: d } = fetchRoute(host, req, req.headers.get("cf-connecting-ip"));
    if (response) return response;
    const [client, server] = Object.values(new WebSocketPair());
    // The engine's first output decides how the socket is accepted, so it is attached
    // through a socket that holds its operations until then (a WebSocket cannot send
    // before it is accepted).
    const held = [];
    let target = null;
    let closedAtOnce = false;
    host.attach(d.conn, {
      send: (text) => (target ? target.send(text) : held.push((ws) => ws.send(text))),
      ping: () => {},
      close: (code, reason) => {
        if (!target) closedAtOnce = true;
        target ? target.close(code, reason) : held.push((ws) => ws.close(code, reason));
      },
    });
    if (closedAtOnce || !this.hibernation) {
      this.acceptLive(host, d.conn, server);
    } else {
      this.ctx.acceptWebSocket(server);
      server.serializeAttachment({ conn: d.conn });
      this.sockets.set(d.conn, server);
    }
    target = server;
    for (const op of held) op(server);
    if (!closedAtOnce && this.hibernation) this.persist(d.conn);
    const headers = d.protocol ? { "Sec-WebSocket-Protocol": d.protocol } : undefined;
    return new Response(null, { status: 101, webSocket: client, headers });
  }

  /**
   * Whether sockets use the Hibernation API: yes unless the SWITCHBOARD_HIBERNATION
   * binding is "0" (a subclass may override this getter). Without it every socket is
   * accepted with `accept()`, which keeps the object in memory while any is open, but a
   * socket the object closes before its client sent anything ends its TCP connection at
   * once: workerd keeps that connection of a hibernatable socket open until the object
   * is idle (host-js/README.md, "Closing silent sockets on workerd").
   */
  get hibernation() {
    return this.env.SWITCHBOARD_HIBERNATION !== "0";
  }

  /**
   * A socket accepted without hibernation: one the engine closed while attaching it
   * (nothing to hibernate), or every socket when `hibernation` is false. Its events
   * come from listeners instead of the webSocket* handlers; it is not restored after an
   * eviction (it keeps the object in memory while open).
   */
  acceptLive(host, conn, ws) {
    ws.accept();
    // Binary frames as ArrayBuffer (from compatibility date 2026-03-17 the default is Blob).
    ws.binaryType = "arraybuffer";
    this.stats.liveSockets++;
    ws.addEventListener("message", (e) => {
      if (this.host !== host) return ws.close(1011, "connection state lost");
      if (typeof e.data === "string") host.message(conn, e.data);
      else host.message(conn, new Uint8Array(e.data), true);
    });
    ws.addEventListener("close", (e) => {
      try {
        ws.close(e.code === 1005 || e.code === 1006 ? 1000 : e.code, e.reason);
      } catch {}
      if (this.host === host) host.closed(conn, e.code);
    });
    ws.addEventListener("error", () => {
      if (this.host === host) host.closed(conn, 1006);
    });
  }

  async webSocketMessage(ws, message) {
    const host = await this.ensure();
    const conn = this.connOf(ws);
    if (!conn) return;
    if (typeof message === "string") host.message(conn, message);
    else host.message(conn, new Uint8Array(message), true);
  }

  async webSocketClose(ws, code, reason) {
    const host = await this.ensure();
    const conn = this.connOf(ws);
    try {
      ws.close(code === 1005 || code === 1006 ? 1000 : code, reason);
    } catch {}
    this.forget(conn);
    if (conn) host.closed(conn, code);
  }

  async webSocketError(ws) {
    const host = await this.ensure();
    const conn = this.connOf(ws);
    this.forget(conn);
    if (conn) host.closed(conn, 1006);
  }

  forget(conn) {
    if (!conn) return;
    this.sockets.delete(conn);
    const snap = this.saved.get(conn);
    this.saved.delete(conn);
    if (snap && snap.length > ATTACHMENT_SNAPSHOT_LIMIT) this.ctx.storage.delete(`snap:${conn}`).catch(() => {});
  }

  async alarm() {
    const host = await this.ensure();
    this.stats.alarms++;
    host.timeout();
  }

  /** Test-only endpoints (SWITCHBOARD_TEST_HOOKS="1"). */
  testHook(path) {
    if (path === "/__test/evict") {
      // Simulated eviction: drop the engine and everything in memory; the next event
      // rebuilds it from the sockets' attachments, exactly as after a real eviction.
      this.host?.free();
      this.host = null;
      this.sockets.clear();
      this.saved.clear();
      return Response.json({ evicted: true });
    }
    if (path === "/__test/abort") {
      // A real reset of the object (miniflare: the isolate's object instance is dropped).
      this.ctx.abort("test eviction");
    }
    if (path === "/__test/stats") {
      return Response.json({
        ...this.stats,
        connections: this.host?.engine.connectionCount() ?? 0,
        sockets: this.ctx.getWebSockets().length,
        deadline: this.host?.deadline ?? null,
      });
    }
    return new Response("not found", { status: 404 });
  }
}

/**
 * The Worker: /healthz is answered at the edge, everything else (upgrades, /readyz,
 * /metrics, server info) goes to the one Durable Object named `name`.
 */
export function createWorker({ binding = "SWITCHBOARD", name = "default", relay = false } = {}) {
  return {
    async fetch(req, env) {
      const url = new URL(req.url);
      if (req.headers.get("upgrade") === null && wasm.plainEndpoint(req.method, url.pathname) === "health") {
        return new Response(req.method === "HEAD" ? null : wasm.healthBody(), { headers: JSON_HEADERS });
      }
      // A malformed handshake is refused here, at the edge (workerd cannot forward an
      // upgrade whose method is not GET to a Durable Object); the engine writes the body.
      if (req.headers.get("upgrade")?.toLowerCase() === "websocket") {
        const refused = handshakeCheck(req.method, (name) => req.headers.get(name));
        if (refused) return new Response(refused.body, { status: refused.status, headers: refused.headers });
      }
      const ns = env[binding];
      const res = await ns.get(ns.idFromName(name)).fetch(req);
      if (res.webSocket && (relay || env.SWITCHBOARD_RELAY === "1")) return relayed(res);
      return res;
    },
  };
}

/**
 * `relay` (or the SWITCHBOARD_RELAY="1" binding): the Worker holds the client's socket
 * itself and relays every frame to and from the Durable Object's (which stays
 * hibernatable). workerd keeps the TCP connection of a hibernatable socket the object
 * closes before its client sent anything open until the object is idle; a socket the
 * Worker accepts with `accept()` ends it at once (host-js/README.md, "Closing silent
 * sockets on workerd"). The cost: every frame passes through the Worker.
 */
function relayed(res) {
  const inner = res.webSocket;
  const [client, outer] = Object.values(new WebSocketPair());
  for (const ws of [inner, outer]) {
    ws.accept();
    ws.binaryType = "arraybuffer";
  }
  const pass = (from, to) => {
    from.addEventListener("message", (e) => {
      try {
        to.send(e.data);
      } catch {}
    });
    from.addEventListener("close", (e) => {
      try {
        to.close(e.code === 1005 || e.code === 1006 ? 1000 : e.code, e.reason);
      } catch {}
    });
    from.addEventListener("error", () => {
      try {
        to.close(1011, "relay error");
      } catch {}
    });
  };
  pass(inner, outer);
  pass(outer, inner);
  return new Response(null, { status: 101, webSocket: client, headers: res.headers });
}
