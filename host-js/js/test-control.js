// The test control channel of the JS hosts: the same protocol as the native host's
// (host-native/src/testctl.rs; described in conformance/README.md, "Test control
// channel"). The conformance suite's live runner uses it to drive a real server through
// what a WebSocket client cannot do: seeded storage, scripted host calls, server-API
// commands, the host clock, injected host reports.
//
// OFF BY DEFAULT. An adapter installs it only when asked (serveNode/serveDeno/serveBun
// option `testControl: true`, which the example servers set from
// SWITCHBOARD_TEST_CONTROL=1; the Worker reads the SWITCHBOARD_TEST_CONTROL binding).
// Without it every request under /__switchboard/test is refused with 403 and a JSON
// body naming the variable (http.js: fetchRoute, testControlRefusal). Never enable it on
// a reachable server: anyone could reset the engine and answer guard calls.
import { wasm, timerScheduler, errorCodes, TEST_PREFIX } from "./core.js";

export { TEST_PREFIX } from "./core.js";

/** The environment variable (or Worker binding) that enables the channel: "1". */
export const TEST_CONTROL_ENV = "SWITCHBOARD_TEST_CONTROL";

/** Upgrade request header naming the client id to use (empty: the engine generates one). */
export const CLIENT_ID_HEADER = "x-switchboard-test-client-id";

/** Whether `env` (process.env, Deno.env.toObject(), Worker env) enables the channel. */
export const testControlEnabled = (env) => env?.[TEST_CONTROL_ENV] === "1";

const JSON_TYPE = { "content-type": "application/json" };
const MAX_WAIT_MS = 30000;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A refused request: its HTTP status and the engine's error code (errorCodes()). */
class HttpError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** A malformed request (`status`: 400, or 405 for a method other than POST). */
const invalid = (message, status = 400) => new HttpError(status, errorCodes().InvalidMessage, message);

/** 404: no such operation or connection. */
const notFound = (message) => new HttpError(404, errorCodes().NotFound, message);

/** The host clock under test control: `at` at wall time `wall`, frozen or moving. */
class Clock {
  constructor() {
    this.at = null;
  }
  set(at, frozen) {
    this.at = at;
    this.wall = Date.now();
    this.frozen = !!frozen;
  }
  now() {
    if (this.at === null) return Date.now();
    return this.frozen ? this.at : this.at + (Date.now() - this.wall);
  }
}

/**
 * The channel for one Host. `install(host, options)` wires it in:
 * @param {import("./core.js").Host} host
 * @param {object} o
 * @param {string} o.name                 host name reported by GET /__switchboard/test
 * @param {boolean} o.memoryStore         the host normally answers storage inside wasm
 * @param {(store: Record<string, object[]>) => Promise<void>} [o.resetStore]  replace the
 *        records of a host with its own store (Durable Object storage)
 * @param {boolean} [o.keepScheduler]     the host's scheduler already reads host.now() (Workers' alarms)
 * @param {(engine: object) => Promise<void>} [o.resetEngine]  prepare a fresh engine (clear
 *        and re-enable durable stream histories)
 * @param {(seed: number) => Promise<object>} [o.evict]  simulate an eviction (Workers)
 */
export function installTestControl(host, o) {
  const tc = new TestControl(host, o);
  host.testControl = tc;
  host.capabilities(host.engine);
  host.intercept = (a) => tc.hold(a);
  host.now = () => tc.clock.now();
  if (!o.keepScheduler) {
    host.scheduler.clear();
    host.scheduler = timerScheduler(() => host.now());
  }
  // Count store calls in flight, so a reset waits for the old engine's to finish.
  if (host.store) {
    const inner = host.store;
    host.store = {
      apply: async (req) => {
        tc.inflight++;
        try {
          return await inner.apply(req);
        } finally {
          tc.inflight--;
        }
      },
    };
  }
  return tc;
}

export class TestControl {
  constructor(host, o) {
    this.host = host;
    this.name = o.name;
    this.memoryStore = o.memoryStore;
    this.resetStore = o.resetStore ?? null;
    this.resetEngine = o.resetEngine ?? null;
    this.evictHook = o.evict ?? null;
    this.seed = 0;
    this.clock = new Clock();
    this.holdGuard = true;
    this.holdStore = false;
    this.events = [];
    this.epoch = 0;
    this.inflight = 0;
  }

  /** Held host calls are reported as events instead of executed (Host.intercept). */
  hold(action) {
    const kind = action.request?.kind;
    // Handler calls (application messages, hooks, interceptors) are always held: the
    // vector's scripted handler answers them with `complete`.
    const handler = kind === "message" || kind === "hook" || kind === "intercept";
    if (handler || (kind === "guard" && this.holdGuard) || (kind === "store" && this.holdStore)) {
      this.events.push({ event: "call", action });
      return true;
    }
    return false;
  }

  /** Apply the client id header to an upgrade request (Host.open). */
  upgradeRequest(req) {
    const i = req.headers.findIndex(([k]) => k.toLowerCase() === CLIENT_ID_HEADER);
    if (i >= 0) {
      req.clientId = req.headers[i][1];
      req.headers = req.headers.filter((_, j) => j !== i);
    }
  }

  /** Answer a Fetch-API request (Deno, Bun, Workers). */
  async fetch(req) {
    const url = new URL(req.url);
    const r = await this.handle(req.method, url.pathname, req.method === "POST" ? await req.text() : "");
    return new Response(r.body, { status: r.status, headers: r.headers });
  }

  /** Answer one request: {status, headers, body}. */
  async handle(method, path, text) {
    const op = path.slice(TEST_PREFIX.length).replace(/^\/+|\/+$/g, "");
    try {
      if (method === "GET" && op === "") return ok({ enabled: true, host: this.name, store: "memory" });
      if (method !== "POST") throw invalid("test control requests are POST with a JSON body", 405);
      let body;
      try {
        body = JSON.parse(text || "{}");
      } catch (e) {
        throw invalid(`bad body: ${e.message}`);
      }
      switch (op) {
        case "reset":
          return ok(await this.reset(body));
        case "clock":
          this.setClock(body);
          return ok({ now: body.at });
        case "command":
          return ok(this.command(body));
        case "complete":
          this.host.run(() => this.host.engine.completed(this.host.now(), body.op, jsonText(body.result)));
          return ok({ completed: body.op });
        case "input":
          return ok(this.input(body));
        case "events":
          return ok({ events: await this.takeEvents(body) });
        case "evict":
          // A process keeps its memory; the Worker simulates a Durable Object eviction.
          return ok(this.evictHook ? await this.evictHook(this.seed) : { evicted: false });
        default:
          throw notFound(`no test control operation \`${op.slice(0, 100)}\` (reset, clock, command, complete, input, events, evict)`);
      }
    } catch (e) {
      const status = e instanceof HttpError ? e.status : 500;
      const code = e instanceof HttpError ? e.code : errorCodes().InternalError;
      return { status, headers: JSON_TYPE, body: JSON.stringify({ code, message: String(e?.message ?? e) }) };
    }
  }

  /** A fresh engine (seeded), store, clock and held calls; leftover connections closed. */
  async reset(b) {
    if (!Number.isSafeInteger(b.seed) || b.seed < 0) throw invalid("reset needs a non-negative integer `seed`");
    const host = this.host;
    this.epoch++;
    this.events = [];
    // The old engine's store calls must not complete into the new one (op ids restart).
    for (let i = 0; this.inflight > 0 && i < 5000; i++) await sleep(1);
    await sleep(0);
    for (const [, c] of host.conns) {
      try {
        c.socket?.close(1001, "test reset");
      } catch {}
    }
    host.conns.clear();
    host.pendingCommands.clear();
    host.deferred = [];
    host.draining = false;
    this.holdGuard = b.hold?.guard ?? true;
    this.holdStore = b.hold?.store ?? false;
    const inWasm = this.memoryStore && !this.holdStore;
    const engine = new wasm.Engine(JSON.stringify(host.config), BigInt(b.seed), inWasm);
    host.capabilities(engine);
    const store = b.store ?? {};
    if (inWasm) {
      for (const [resource, records] of Object.entries(store)) engine.seedStore(resource, JSON.stringify(records));
    } else if (this.resetStore) {
      await this.resetStore(store);
    } else if (Object.keys(store).length > 0) {
      throw invalid("this host cannot seed records while storage calls are held");
    }
    if (this.resetEngine) await this.resetEngine(engine);
    this.seed = b.seed;
    host.engine.free();
    host.engine = engine;
    if (b.clock) this.clock.set(b.clock.at, b.clock.frozen);
    else this.clock.at = null;
    this.rearm();
    return { reset: true };
  }

  setClock(b) {
    if (!Number.isSafeInteger(b.at)) throw invalid("clock needs an integer `at` (epoch ms)");
    this.clock.set(b.at, b.frozen);
    this.rearm();
  }

  /** The timer follows the clock: arm it again for the engine's deadline. */
  rearm() {
    const host = this.host;
    host.deadline = undefined;
    host.scheduler.clear(); // the armed timer was computed on the old clock
    host.schedule(host.engine.nextTimeout() ?? null);
  }

  command(b) {
    const host = this.host;
    const tag = ++host.tag;
    const epoch = this.epoch;
    host.pendingCommands.set(tag, {
      raw: true,
      resolve: (result) => {
        if (this.epoch === epoch) this.events.push({ event: "commandResult", tag: b.tag, result });
      },
      reject: () => {},
    });
    host.run(() => host.engine.command(host.now(), tag, jsonText(b.command)));
    return { accepted: b.tag };
  }

  input(b) {
    const host = this.host;
    let conn = 2 ** 52; // never assigned
    if (b.clientId !== undefined && b.clientId !== null) {
      conn = undefined;
      for (const [id] of host.conns) {
        const snap = host.engine.snapshot(id);
        if (snap && JSON.parse(snap).clientId === b.clientId) conn = id;
      }
      if (conn === undefined) throw notFound(`no open connection with client id \`${b.clientId}\``);
    }
    const i = b.input ?? {};
    const now = host.now();
    switch (i.kind) {
      case "backpressure":
        host.run(() => host.engine.backpressure(now, conn, i.buffered));
        break;
      case "pong":
        host.run(() => host.engine.pong(now, conn));
        break;
      case "closed":
        host.run(() => host.engine.closed(now, conn, i.code ?? undefined));
        break;
      case "text":
        host.run(() => host.engine.frame(now, conn, i.text));
        break;
      default:
        throw invalid("input.kind must be backpressure, pong, closed or text");
    }
    return { conn: b.clientId == null ? null : conn };
  }

  async takeEvents(b) {
    const min = b.min ?? 0;
    const until = Date.now() + Math.min(b.waitMs ?? 0, MAX_WAIT_MS);
    while (this.events.length < min && Date.now() < until) await sleep(2);
    const out = this.events;
    this.events = [];
    return out;
  }
}

/** A value given as JSON text passes verbatim (JS numbers would turn `1.0` into `1`). */
const jsonText = (v) => (typeof v === "string" ? v : JSON.stringify(v));

function ok(value) {
  return { status: 200, headers: JSON_TYPE, body: JSON.stringify(value) };
}
