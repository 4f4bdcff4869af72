// @ts-self-types="./node.d.ts"
// Node host: node:http + the `ws` package (Node 20 has no WebSocket server of its own).
// It maps sockets and HTTP only; everything else is js/core.js and the engine.
import { createServer } from "node:http";
import { WebSocketServer } from "ws";
import { Host, warmUpOnce, handshakeCheck, httpRoute, normalizePeer, spacedSender, STATUS_TEXT, testControlRefusal } from "./core.js";
import { installTestControl } from "./test-control.js";
import { initFromFile } from "./fs-init.js";

export { Host, loadDeployment, randomClientId, CommandError } from "./core.js";
export { readDeployment, initFromFile, WASM_URL, LEAN_WASM_URL } from "./fs-init.js";

function splitUrl(url) {
  const q = url.indexOf("?");
  return q < 0 ? [url, ""] : [url.slice(0, q), url.slice(q + 1)];
}

function rawHeaders(req) {
  const h = [];
  for (let i = 0; i < req.rawHeaders.length; i += 2) h.push([req.rawHeaders[i], req.rawHeaders[i + 1]]);
  return h;
}

// Frames sent to one socket during one event-loop turn go out in one write: the TCP
// socket stays corked until setImmediate (ws corks per frame; corks nest). Under load,
// when several inputs are handled per turn, this is the native host's write coalescing.
const corked = new Set();
let flushScheduled = false;
function flushCorked() {
  flushScheduled = false;
  for (const s of corked) s.uncork();
  corked.clear();
}
function cork(sock) {
  if (!sock || corked.has(sock)) return;
  sock.cork();
  corked.add(sock);
  if (!flushScheduled) {
    flushScheduled = true;
    setImmediate(flushCorked);
  }
}

/** Adapt a `ws` WebSocket to the Host's socket interface. */
function wsSocket(ws) {
  return {
    // Fan-out frames arrive as one shared Buffer (encodeShared): sent as a text frame.
    // Binary frames (Socket.IO attachments) arrive as plain Uint8Arrays.
    send: (data) => {
      cork(ws._socket);
      if (typeof data === "string") ws.send(data);
      else ws.send(data, { binary: !Buffer.isBuffer(data) });
    },
    ping: () => ws.ping(),
    close: (code, reason) => ws.close(code, reason),
    buffered: () => ws.bufferedAmount,
  };
}

/**
 * The socket of an Engine.IO route: one frame per macrotask (see spacedSender in
 * http.js), not corked with the others.
 */
function serialSocket(ws) {
  const spaced = spacedSender((data) => {
    if (typeof data === "string") ws.send(data);
    else ws.send(data, { binary: !Buffer.isBuffer(data) });
  });
  return {
    send: (data) => spaced.send(data),
    ping: () => ws.ping(),
    close: (code, reason) => {
      spaced.flush();
      ws.close(code, reason);
    },
    buffered: () => ws.bufferedAmount,
  };
}

/** A test control request: read the body, answer with a Content-Length. */
function testRequest(host, req, res, path) {
  const chunks = [];
  req.on("data", (d) => chunks.push(d));
  req.on("end", async () => {
    const r = host.testControl
      ? await host.testControl.handle(req.method ?? "GET", path, Buffer.concat(chunks).toString("utf8"))
      : testControlRefusal();
    const body = Buffer.from(r.body);
    res.writeHead(r.status, { ...r.headers, "content-length": body.length });
    res.end(body);
  });
}

/**
 * Serve a deployment on Node.
 * @param {object} o
 * @param {object} o.config        engine config (see readDeployment)
 * @param {number} [o.port]        0 = any free port
 * @param {string} [o.hostname]    default 127.0.0.1
 * @param {Function} [o.guard]     async host guard callback
 * @param {object} [o.handlers]    application handlers: {messages: {type: fn}, connect, disconnect, intercept: {type: fn}}
 * @param {object} [o.store]       own store ({apply}); default: the engine's memory store
 * @param {boolean} [o.testControl] serve the test control channel (tests only; js/test-control.js)
 * @returns {Promise<{host: Host, server: import("node:http").Server, port: number, close(): Promise<void>}>}
 */
export async function serveNode(o) {
  initFromFile();
  // Compile the hot wasm code before the first client waits for it (core.js warmUp).
  if (o.warmUp !== false) await warmUpOnce();
  const host = new Host({
    config: o.config,
    guard: o.guard,
    handlers: o.handlers,
    store: o.store,
    memoryStore: !o.store,
    log: o.log,
    publicInfo: o.publicInfo,
    encodeShared: (text) => Buffer.from(text),
  });
  if (o.testControl) installTestControl(host, { name: "node", memoryStore: !o.store });
  // The engine answers frames over maxPayloadSize with PAYLOAD_TOO_LARGE + close 1009
  // (PROTOCOL.md §17); `ws` refuses frames over twice that from their header (close
  // 1009 without the error frame), so memory per message stays bounded.
  const maxPayload = 2 * (host.config.maxPayloadSize ?? 1024 * 1024);
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload,
    perMessageDeflate: false,
    handleProtocols: (_offered, req) => req.switchboardProtocol ?? false,
  });

  const server = createServer((req, res) => {
    const [path] = splitUrl(req.url ?? "/");
    const method = req.method ?? "GET";
    // The engine decides what a path is, as on every host.
    const endpoint = host.engine.endpoint(method, path);
    if (endpoint === "testControl") {
      testRequest(host, req, res, path);
      return;
    }
    if (endpoint === "polling") {
      nodePoll(host, req, res, path);
      return;
    }
    const r = httpRoute(host, method, path, endpoint);
    res.writeHead(r.status, r.headers);
    res.end(req.method === "HEAD" ? undefined : r.body);
  });

  server.on("upgrade", (req, socket, head) => {
    const [path, query] = splitUrl(req.url ?? "/");
    const refused = handshakeCheck(req.method ?? "GET", (name) => req.headers[name]);
    const d = refused ?? host.open({ path, query, headers: rawHeaders(req), peer: normalizePeer(req.socket.remoteAddress) });
    if (refused || !d.accept) {
      const extra = Object.entries(refused?.headers ?? {})
        .filter(([k]) => k !== "content-type")
        .map(([k, v]) => `${k}: ${v}\r\n`)
        .join("");
      const body = Buffer.from(d.body);
      socket.end(
        `HTTP/1.1 ${d.status} ${STATUS_TEXT[d.status] ?? "Error"}\r\nContent-Type: application/json\r\n${extra}` +
          `Content-Length: ${body.length}\r\nConnection: close\r\n\r\n${d.body}`,
      );
      return;
    }
    req.switchboardProtocol = d.protocol ?? undefined;
    socket.on("error", () => {}); // reported through ws's close, or below
    let upgraded = false;
    socket.once("close", () => {
      if (!upgraded) host.closed(d.conn, 1006);
    });
    wss.handleUpgrade(req, socket, head, (ws) => {
      upgraded = true;
      host.attach(d.conn, host.engine.servesHttp(path) ? serialSocket(ws) : wsSocket(ws));
      ws.on("message", (data, isBinary) => host.message(d.conn, data, isBinary));
      ws.on("pong", () => host.pong(d.conn));
      ws.on("close", (code) => host.closed(d.conn, code));
      // `ws` emits "close" only once the TCP connection is gone; the engine must release
      // the connection as soon as the client's close frame arrives (others see room:left,
      // direct messages to it are NOT_FOUND). The receiver's "conclude" event is that
      // moment (ws 8; pinned in package.json). closed() is idempotent.
      ws._receiver?.on?.("conclude", (code) => host.closed(d.conn, code));
      ws.on("error", () => {}); // close follows
    });
  });

  await new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(o.port ?? 0, o.hostname ?? "127.0.0.1", resolve);
  });
  const port = server.address().port;
  return {
    host,
    server,
    port,
    async close(reason) {
      await host.shutdown(reason);
      for (const ws of wss.clients) ws.terminate();
      await new Promise((r) => server.close(() => r()));
      server.closeAllConnections?.();
    },
  };
}

/**
 * Engine.IO long-polling: the body (at most maxPayloadSize + 1 bytes) goes to the engine,
 * whose answer may come much later (a held GET); a client that goes away is reported.
 */
function nodePoll(host, req, res, path) {
  const [, query] = splitUrl(req.url ?? "/");
  const limit = (host.config.maxPayloadSize ?? 1024 * 1024) + 1;
  const chunks = [];
  let size = 0;
  req.on("data", (c) => {
    if (size < limit) chunks.push(c);
    size += c.length;
  });
  req.on("error", () => {});
  req.on("end", () => {
    const body = Buffer.concat(chunks).subarray(0, limit);
    const request = { path, query, headers: rawHeaders(req), peer: normalizePeer(req.socket.remoteAddress) };
    const { promise, abort } = host.poll(req.method ?? "GET", request, body);
    let answered = false;
    res.on("close", () => {
      if (!answered) abort();
    });
    promise.then((a) => {
      answered = true;
      if (res.destroyed) return;
      res.writeHead(a.status, Object.fromEntries(a.headers));
      res.end(a.status === 204 ? undefined : a.body);
    });
  });
}
