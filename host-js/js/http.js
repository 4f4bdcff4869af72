// The HTTP side shared by the JavaScript hosts: plain routes (health, readiness, metrics,
// server info), the handshake checks and refusals, the Fetch-API request step (Deno, Bun,
// Workers), Engine.IO long-polling on those runtimes, the test control channel's paths,
// and the key-source fetches the engine asks for. The engine decides; this only maps.

import * as wasm from "../pkg/switchboard_wasm.js";

let codes = null;

/**
 * The engine's error codes by name (engine::ErrorCode): `errorCodes().NotFound` is the
 * wire code of a missing thing. Host code takes protocol error codes from here, never
 * spells them. Needs initWasm().
 */
export function errorCodes() {
  codes ??= Object.freeze(JSON.parse(wasm.errorCodes()));
  return codes;
}

/** Normalize a peer address (`::ffff:127.0.0.1` → `127.0.0.1`). */
export function normalizePeer(addr) {
  if (!addr) return "unknown";
  return addr.startsWith("::ffff:") ? addr.slice(7) : addr;
}

/** Largest key-source response body read (the engine's MAX_FETCH_BODY). */
const MAX_FETCH_BODY = 1024 * 1024;

/** The engine's URL rule: https://, or http:// on a loopback address (for redirects). */
function fetchable(url) {
  try {
    const u = new URL(url);
    if (u.username || u.password) return false;
    if (u.protocol === "https:") return true;
    const h = u.hostname.replace(/^\[|\]$/g, "");
    return u.protocol === "http:" && (h === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h));
  } catch {
    return false;
  }
}

/**
 * A key-source fetch (JWKS or OpenID discovery) for the engine: GET with `fetch`
 * (Node, Deno, Bun, Workers), at most 5 redirects to URLs the engine would accept,
 * at most MAX_FETCH_BODY bytes. Never throws: failures are {status: 0, error}.
 */
export async function fetchDocument(url, budgetMs) {
  const signal = AbortSignal.timeout(budgetMs);
  try {
    let target = url;
    for (let hop = 0; ; hop++) {
      const r = await fetch(target, { headers: { accept: "application/json" }, redirect: "manual", signal });
      const location = r.headers.get("location");
      if (r.status >= 300 && r.status < 400 && location) {
        await r.body?.cancel();
        target = new URL(location, target).href;
        if (hop >= 4) return { kind: "fetch", status: 0, error: "too many redirects" };
        if (!fetchable(target)) return { kind: "fetch", status: 0, error: `refused redirect to ${target}` };
        continue;
      }
      const length = Number(r.headers.get("content-length") ?? 0);
      if (length > MAX_FETCH_BODY) {
        await r.body?.cancel();
        return { kind: "fetch", status: 0, error: `the body is larger than ${MAX_FETCH_BODY} bytes` };
      }
      const body = await r.text();
      if (body.length > MAX_FETCH_BODY) return { kind: "fetch", status: 0, error: `the body is larger than ${MAX_FETCH_BODY} bytes` };
      const result = { kind: "fetch", status: r.status, body };
      const cc = r.headers.get("cache-control");
      if (cc !== null) result.cacheControl = cc;
      return result;
    }
  } catch (e) {
    const cause = e?.cause?.message ?? e?.cause?.code;
    return { kind: "fetch", status: 0, error: `${e?.message ?? e}${cause ? `: ${cause}` : ""}` };
  }
}

// ---------------------------------------------------------------- HTTP (health, metrics, info)

const JSON_TYPE = { "content-type": "application/json" };

/**
 * The RFC 6455 checks of an upgrade request before the engine decides (GET, a
 * Sec-WebSocket-Key, version 13); the engine owns the answer. `header(name)` reads a
 * request header. Returns null, or {status, headers, body} to send.
 */
export function handshakeCheck(method, header) {
  const r = wasm.handshakeCheck(method, header("sec-websocket-key") ?? undefined, header("sec-websocket-version") ?? undefined);
  return r ? refusalAnswer(r) : null;
}

/**
 * The answer to a handshake the runtime refuses before or after the engine decided
 * (`upgrade_failed`, `bad_deployment`, `no_decision`, ...): {status, headers, body}, the
 * body from the engine (upgrade-rejection.schema.json).
 */
export function handshakeRefusal(reason) {
  return refusalAnswer(wasm.handshakeRefusal(reason));
}

function refusalAnswer(text) {
  const r = JSON.parse(text);
  return { status: r.status, headers: { ...JSON_TYPE, ...r.headers }, body: r.body };
}

/**
 * The first step of a request on the Fetch-API runtimes (Deno, Bun, Workers): plain HTTP
 * gets its Response (httpRoute); a WebSocket upgrade is decided by the engine. Returns
 * {response} (HTTP, or a refused upgrade with its JSON body) or {accepted} (the engine's
 * decision: conn, protocol; the adapter upgrades the socket).
 */
export function fetchRoute(host, req, peer) {
  const url = new URL(req.url);
  // The engine decides what a path is, as on the native host.
  const endpoint = host.engine.endpoint(req.method, url.pathname);
  if (endpoint === "testControl") {
    if (host.testControl) return { response: host.testControl.fetch(req) };
    const r = testControlRefusal();
    return { response: new Response(r.body, { status: r.status, headers: r.headers }) };
  }
  const upgrade = req.headers.get("upgrade")?.toLowerCase() === "websocket";
  if (!upgrade && endpoint === "polling") return { response: pollFetch(host, req, url, peer) };
  if (!upgrade) {
    const r = httpRoute(host, req.method, url.pathname, endpoint);
    return { response: new Response(req.method === "HEAD" ? null : r.body, { status: r.status, headers: r.headers }) };
  }
  const refused = handshakeCheck(req.method, (name) => req.headers.get(name));
  if (refused) return { response: new Response(refused.body, { status: refused.status, headers: refused.headers }) };
  const d = host.open({ path: url.pathname, query: url.search.slice(1), headers: [...req.headers], peer: normalizePeer(peer) });
  if (!d.accept) return { response: new Response(d.body, { status: d.status, headers: JSON_TYPE }) };
  return { accepted: d };
}

/** At most `limit` bytes of a Fetch-API body (the engine refuses a longer one). */
async function readLimited(req, limit) {
  if (!req.body) return new Uint8Array(0);
  const reader = req.body.getReader();
  const parts = [];
  let size = 0;
  while (size < limit) {
    const { done, value } = await reader.read();
    if (done) break;
    parts.push(value);
    size += value.length;
  }
  if (size >= limit) reader.cancel().catch(() => {});
  const out = new Uint8Array(Math.min(size, limit));
  let at = 0;
  for (const p of parts) {
    const n = Math.min(p.length, out.length - at);
    out.set(p.subarray(0, n), at);
    at += n;
  }
  return out;
}

/**
 * Engine.IO long-polling on the Fetch-API runtimes: the engine answers (maybe later, a
 * held GET); a client that goes away (req.signal) is reported.
 */
async function pollFetch(host, req, url, peer) {
  const body = await readLimited(req, (host.config.maxPayloadSize ?? 1024 * 1024) + 1);
  const request = { path: url.pathname, query: url.search.slice(1), headers: [...req.headers], peer: normalizePeer(peer) };
  const { promise, abort } = host.poll(req.method, request, body);
  req.signal?.addEventListener?.("abort", abort, { once: true });
  const a = await promise;
  return new Response(a.status === 204 ? null : a.body, { status: a.status, headers: a.headers });
}

/**
 * One frame per macrotask, for the sockets of Engine.IO routes (Deno, Bun): Socket.IO's
 * compliance suite reads one message per event-loop turn and misses a second frame that
 * arrives in the same TCP read (Engine.IO servers write the next packet once the
 * previous one is written). `send` queues; `flush` writes what is left (before a close).
 */
export function spacedSender(write) {
  const queue = [];
  let scheduled = false;
  const pump = () => {
    scheduled = false;
    if (queue.length === 0) return;
    write(queue.shift());
    if (queue.length) {
      scheduled = true;
      setTimeout(pump, 0);
    }
  };
  return {
    send(item) {
      queue.push(item);
      if (!scheduled) {
        scheduled = true;
        setTimeout(pump, 0);
      }
    },
    flush() {
      while (queue.length) write(queue.shift());
    },
  };
}

/** Path prefix of the test control channel (js/test-control.js). */
export const TEST_PREFIX = "/__switchboard/test";

/** Whether a request path belongs to the test control channel. */
export const isTestPath = (path) => path === TEST_PREFIX || path.startsWith(TEST_PREFIX + "/");

/** The answer to a test control request on a server that does not enable the channel. */
export function testControlRefusal() {
  return {
    status: 403,
    headers: JSON_TYPE,
    body: JSON.stringify({
      code: errorCodes().Forbidden,
      message: "the test control channel is off; it exists only on servers started with SWITCHBOARD_TEST_CONTROL=1 (tests only, never in production)",
    }),
  };
}

/**
 * The plain-HTTP side shared by the Node, Deno, Bun and Cloudflare hosts (same as the
 * native host; the engine decides what a path is: engine.endpoint): /healthz, /readyz,
 * /metrics, GET / or a GET on a WebSocket route → server info. Returns {status, headers,
 * body}, a 404 JSON error for anything else.
 */
export function httpRoute(host, method, path, endpoint = host.engine.endpoint(method, path)) {
  switch (endpoint) {
    case "health":
      return { status: 200, headers: JSON_TYPE, body: wasm.healthBody() };
    case "ready": {
      const r = JSON.parse(wasm.readiness(host.draining));
      return { status: r.status, headers: JSON_TYPE, body: r.body };
    }
    case "metrics":
      return { status: 200, headers: { "content-type": "text/plain; version=0.0.4; charset=utf-8" }, body: host.metricsText() };
    case "serverInfo": {
      const info = host.command({ command: "serverInfo" });
      // Live counts, routes and resource names only where the deployment opts in (the JS
      // hosts have no admin key to show them to the operator alone).
      const body = host.publicInfo ? info : { name: info.name, protocolVersion: info.protocolVersion, draining: info.draining };
      return { status: 200, headers: JSON_TYPE, body: JSON.stringify(body) };
    }
    default: // notFound, and the native host's admin API and console
      return { status: 404, headers: JSON_TYPE, body: wasm.notFound(method, path) };
  }
}

/** Status text for the few statuses the engine rejects with. */
export const STATUS_TEXT = {
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  426: "Upgrade Required",
  429: "Too Many Requests",
  500: "Internal Server Error",
  503: "Service Unavailable",
};
