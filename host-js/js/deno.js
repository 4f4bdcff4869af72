// @ts-self-types="./deno.d.ts"
// Deno host: Deno.serve + Deno.upgradeWebSocket. Maps sockets and HTTP only.
//
// Deno's server-side WebSocket cannot send a ping frame or report pongs, so the engine's
// heartbeat pings are answered at once (ping mode "emulate") and liveness is left to
// Deno's own `idleTimeout` pings (set to the engine's heartbeatInterval): a client
// that stops answering is closed by Deno (code 1001) instead of the engine (4000).
import { Host, warmUpOnce, fetchRoute, handshakeRefusal, spacedSender } from "./core.js";
import { initFromFile } from "./fs-init.js";
import { installTestControl } from "./test-control.js";

export { Host, loadDeployment, randomClientId, CommandError } from "./core.js";
export { readDeployment, initFromFile, WASM_URL, LEAN_WASM_URL } from "./fs-init.js";

/**
 * Serve a deployment on Deno. Needs --allow-net and --allow-read (the .wasm).
 * @returns {Promise<{host: Host, server: Deno.HttpServer, port: number, close(): Promise<void>}>}
 */
export async function serveDeno(o) {
  initFromFile();
  // Compile the hot wasm code before the first client waits for it (core.js warmUp).
  if (o.warmUp !== false) await warmUpOnce();
  const host = new Host({ config: o.config, guard: o.guard, handlers: o.handlers, store: o.store, memoryStore: !o.store, ping: "emulate", log: o.log, publicInfo: o.publicInfo });
  if (o.testControl) installTestControl(host, { name: "deno", memoryStore: !o.store });
  const idleTimeout = Math.max(1, Math.round((host.config.heartbeatInterval ?? 30000) / 1000));
  const heartbeat = (host.config.heartbeatInterval ?? 30000) > 0;
  let listening;
  const ready = new Promise((r) => (listening = r));
  const server = Deno.serve(
    { hostname: o.hostname ?? "127.0.0.1", port: o.port ?? 0, onListen: ({ port }) => listening(port) },
    (req, info) => {
      const { response: answer, accepted: d } = fetchRoute(host, req, info.remoteAddr?.hostname);
      if (answer) return answer;
      const opts = heartbeat ? { idleTimeout } : { idleTimeout: 0 };
      if (d.protocol) opts.protocol = d.protocol;
      let socket, response;
      try {
        ({ socket, response } = Deno.upgradeWebSocket(req, opts));
      } catch (e) {
        host.closed(d.conn, 1006);
        const r = handshakeRefusal("upgrade_failed");
        return new Response(r.body, { status: r.status, headers: r.headers });
      }
      const conn = d.conn;
      socket.binaryType = "arraybuffer";
      // Engine.IO routes: one frame per macrotask (see spacedSender).
      const spaced = host.engine.servesHttp(new URL(req.url).pathname) ? spacedSender((t) => socket.send(t)) : null;
      socket.onopen = () =>
        host.attach(conn, {
          send: spaced ? (text) => spaced.send(text) : (text) => socket.send(text),
          ping: () => {},
          close: (code, reason) => {
            spaced?.flush();
            socket.close(code, reason);
          },
          buffered: () => socket.bufferedAmount,
        });
      socket.onmessage = (ev) =>
        typeof ev.data === "string" ? host.message(conn, ev.data) : host.message(conn, new Uint8Array(ev.data), true);
      socket.onclose = (ev) => host.closed(conn, ev.code);
      socket.onerror = () => {};
      return response;
    },
  );
  const port = await ready;
  return {
    host,
    server,
    port,
    async close(reason) {
      await host.shutdown(reason);
      await server.shutdown();
    },
  };
}
