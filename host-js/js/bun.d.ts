// Types of the bun adapter (js/bun.js).
import type { Host, GuardCall, Handlers, GuardDecision, Store, Deployment } from "./index.js";
export { Host, CommandError, loadDeployment, randomClientId } from "./index.js";

export interface ServeOptions {
  /** Engine config (Deployment.config from readDeployment). */
  config: any;
  /** 0 = any free port (default). */
  port?: number;
  /** Default 127.0.0.1. */
  hostname?: string;
  guard?: (call: GuardCall) => GuardDecision | Promise<GuardDecision>;
  /** Application handlers (PROTOCOL.md §20). */
  handlers?: Handlers;
  /** Own store; default: the engine's memory store inside wasm. */
  store?: Store;
  log?: (msg: string) => void;
  /** GET / shows live counts, routes and resources (default false). */
  publicInfo?: boolean;
  /**
   * Run warmUp() and then warmUpSockets() before listening (default true; both once per
   * process): the runtime's optimizing compiler finishes the hot wasm code and the
   * socket path before the first client, instead of taking the core for milliseconds at
   * a time during the first seconds of traffic. false: listen at once.
   */
  warmUp?: boolean;
}

export interface Served {
  host: Host;
  server: unknown;
  port: number;
  /** Graceful: refuse upgrades, close every socket with 1001, stop listening. */
  close(reason?: string): Promise<void>;
}

export declare function serveBun(options: ServeOptions): Promise<Served>;
/** Read a deployment JSON file and split it (engine config / server settings). */
export declare function readDeployment(path: string | URL, env?: Record<string, string | undefined>): Deployment;
/** Instantiate the engine's .wasm once (default: WASM_URL; the first call picks). */
export declare function initFromFile(url?: URL): void;
/** The full module (every feature). */
export declare const WASM_URL: URL;
/** The lean module: no JSON Schema validation (a config that sets `schema` is refused). */
export declare const LEAN_WASM_URL: URL;
/** Frames queued in one event-loop turn before they are written out without waiting for its end. */
export declare const FLUSH_AT: number;
/**
 * A WebSocket route's socket (`ws.data`): frames queued per turn and written in one
 * `ws.cork`. Exported for tests; servers get it from serveBun.
 */
export declare class BunSocket {
  constructor(conn: number, eio: boolean);
  conn: number;
  eio: boolean;
  /** Bun's ServerWebSocket, set when it opens. */
  ws: unknown;
  send(text: string | Uint8Array): void;
  /** Write this socket's queue now. */
  flush(): void;
  ping(): void;
  close(code?: number, reason?: string): void;
  /** The socket is gone: drop what is queued. */
  drop(): void;
  /** Bytes in the runtime's send buffer (read once per queued turn). */
  buffered(): number;
  /** The runtime's buffer drained: read its amount again. */
  drained(): void;
}
/**
 * Warm the socket path up: a throwaway server on a loopback port (its own Host, the same
 * handlers as serveBun's) and `subscribers` WebSocket clients of this process receiving
 * `publishes` publishes. Never rejects: a failure or a run past `timeoutMs` is reported in
 * `error` after what it opened is closed (up to 2 s more). Clients that cannot connect are
 * left out. Defaults: 1000 subscribers, 60 publishes, 10 000 ms.
 */
export declare function warmUpSockets(options?: { subscribers?: number; publishes?: number; timeoutMs?: number }): Promise<{ ms: number; deliveries: number; error?: string }>;
