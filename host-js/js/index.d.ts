// Types of the runtime-neutral core (js/core.js).

/** An upgrade request as the host saw it. */
export interface UpgradeRequest {
  path: string;
  /** Raw query string without the leading "?". */
  query?: string;
  /** Header name/value pairs as received. */
  headers?: [string, string][];
  /** Peer IP address. */
  peer: string;
  /** Random client id; generated with crypto.getRandomValues when absent. */
  clientId?: string;
}

export type OpenResult =
  | { conn: number; accept: true; protocol: string | null }
  | { conn: number; accept: false; status: number; body: string };

/** What a runtime adapter gives the Host for each connection. */
export interface HostSocket {
  send(text: string | Uint8Array): void;
  ping(): void;
  close(code: number, reason: string): void;
  /** Bytes queued and not yet written (slow-consumer policy). */
  buffered?(): number;
}

/** The engine's deadline timer. One per Host; set() replaces the previous deadline. */
export interface Scheduler {
  set(at: number, fire: () => void): void;
  clear(): void;
}

export type GuardAction = "subscribe" | "list" | "get" | "create" | "update" | "delete" | "read";

export interface GuardCall {
  resource: string;
  action: GuardAction;
  /** {user, filter, data, record, id}; absent ones are null. */
  context: Record<string, unknown>;
}

export type GuardDecision =
  | boolean
  | { decision: "allow" }
  | { decision: "deny"; message?: string | null }
  | { decision: "filter"; filter: Record<string, unknown> };

/** A storage request issued by the engine (see engine::hostcall::StoreRequest). */
export type StoreRequest =
  | { kind: "store"; op: "get"; resource: string; id: string }
  | { kind: "store"; op: "list"; resource: string; filter: unknown; limit: number; cursor: string | null }
  | { kind: "store"; op: "insert"; resource: string; record: Record<string, unknown> }
  | { kind: "store"; op: "update"; resource: string; id: string; patch: Record<string, unknown> }
  | { kind: "store"; op: "delete"; resource: string; id: string };

/** A record store; the result is a HostResult (`{kind:"store", inserted: {...}}`, ...). */
export interface Store {
  apply(request: StoreRequest): Promise<object | string>;
}

/** The connection a handler call is about. */
export interface ClientContext {
  clientId: string;
  /** `{id, role, scopes, ...claims}` or null when anonymous. */
  user: Record<string, unknown> | null;
  /** The route pattern, e.g. `/ws/game/:sessionId`. */
  route: string;
  params: Record<string, string>;
  tenant?: string;
  /** Metadata the connect hook attached (null when none). */
  meta: unknown;
}

/** An application message for its handler. */
export interface MessageCall {
  type: string;
  data: unknown;
  requestId: unknown;
  client: ClientContext;
}

/** A hook call (`connect`, `disconnect`) or an interceptor call. */
export interface HookCall {
  kind: "hook";
  hook: "connect" | "disconnect";
  client: ClientContext;
  code?: number;
  reason?: string;
  peer?: string;
}
export interface InterceptCall {
  kind: "intercept";
  type: string;
  message: Record<string, unknown>;
  requestId: unknown;
  client: ClientContext;
}

/** The answer of a hook or interceptor (PROTOCOL.md §20.4). */
export interface HandlerAnswer {
  reply?: unknown;
  error?: { code: string; message?: string; closeCode?: number };
  commands?: object[];
  user?: Record<string, unknown> | null;
  meta?: unknown;
  modified?: Record<string, unknown>;
}

/** What handlers get besides their call. */
export interface HandlerContext {
  clientId: string;
  /** Send `message` verbatim to the caller (several times to stream). */
  send(message: unknown): unknown;
  join(room: string): unknown;
  leave(room: string): unknown;
  /** Any server-API command. */
  command(command: object): unknown;
  /**
   * Socket.IO: emit `event` to the caller asking for an acknowledgement; resolves with
   * the ack's arguments (none: null, several: {$args: [...]}), rejects with a
   * CommandError (TIMEOUT, NOT_FOUND, ...). Keep timeoutMs under the handler's deadline.
   */
  emitWithAck(event: string, data?: unknown, opts?: { namespace?: string; timeoutMs?: number }): Promise<unknown>;
}

/** Application handlers (same names on every JS host and in Rust). */
export interface Handlers {
  /** By message type: return the reply (undefined: none); throw HandlerError for an error. */
  messages?: Record<string, (call: MessageCall, ctx: HandlerContext) => unknown | Promise<unknown>>;
  connect?: (call: HookCall, ctx: HandlerContext) => HandlerAnswer | void | Promise<HandlerAnswer | void>;
  disconnect?: (call: HookCall, ctx: HandlerContext) => HandlerAnswer | void | Promise<HandlerAnswer | void>;
  /** By built-in type: return {error} to cancel, {modified} to replace, nothing to let it run. */
  intercept?: Record<string, (call: InterceptCall, ctx: HandlerContext) => HandlerAnswer | void | Promise<HandlerAnswer | void>>;
}

/** Thrown by a handler to answer an error (a documented code or UPPER_SNAKE_CASE). */
export class HandlerError extends Error {
  constructor(code: string, message?: string, closeCode?: number);
  code: string;
  closeCode?: number;
}

export interface HostOptions {
  /** Engine config (engine keys only; see loadDeployment). */
  config: object | string;
  seed?: bigint;
  /** Answer storage calls inside wasm with the engine's MemoryStore (default true). */
  memoryStore?: boolean;
  store?: Store | null;
  guard?: ((call: GuardCall) => GuardDecision | Promise<GuardDecision>) | null;
  /** Application handlers (PROTOCOL.md §20). */
  handlers?: Handlers | null;
  scheduler?: Scheduler;
  /** "emulate" where the runtime cannot send WebSocket pings (Deno, workerd). */
  ping?: "socket" | "emulate";
  /** Encode a fan-out frame once for all recipients (Node: Buffer.from); send() receives the result. */
  encodeShared?: (text: string) => unknown;
  now?: () => number;
  onConnState?: (conn: number) => void;
  log?: (msg: string) => void;
  /** GET / shows live counts, routes and resources (default false). */
  publicInfo?: boolean;
}

export declare class CommandError extends Error {
  code: string;
}

/** One engine plus the connections it serves; executes the engine's actions. */
export declare class Host {
  constructor(options: HostOptions);
  readonly config: any;
  readonly conns: Map<number, unknown>;
  draining: boolean;
  deadline: number | null;
  open(request: UpgradeRequest): OpenResult;
  /**
   * A long-polling request on an Engine.IO route (`engine.servesHttp(path)`); the promise
   * resolves with the engine's answer (at once, or when it releases a held GET). Call
   * abort() if the client goes away first.
   */
  poll(
    method: string,
    request: UpgradeRequest,
    body: Uint8Array,
  ): { promise: Promise<{ status: number; headers: [string, string][]; body: string }>; abort(): void };
  attach(conn: number, socket: HostSocket): void;
  message(conn: number, data: string | Uint8Array | ArrayBuffer, binary?: boolean): void;
  pong(conn: number): void;
  closed(conn: number, code?: number): void;
  drained(conn: number): void;
  restore(conn: number, snapshotJson: string, socket: HostSocket): boolean;
  snapshot(conn: number): string | undefined;
  /** Server-API command with an immediate result (broadcast, sendTo, publish, resourceChanged, disconnect, serverInfo, ...); throws CommandError. */
  command(command: { command: string; [k: string]: unknown }): any;
  /** Any server-API command, including resource writes that wait for the store (insert, update, delete); rejects with CommandError. */
  commandAsync(command: { command: string; [k: string]: unknown }): Promise<any>;
  /**
   * Socket.IO: emit `event` to a client asking for an acknowledgement (the
   * `emitWithAck` command); resolves with the ack's arguments (none: null, several:
   * {$args: [...]}), rejects with a CommandError (TIMEOUT, NOT_FOUND, ...).
   */
  emitWithAck(clientId: string, event: string, data?: unknown, opts?: { namespace?: string; timeoutMs?: number }): Promise<unknown>;
  /** Publish into a channel as the server; on a stream the result carries the publication's offset and epoch. */
  publish(channel: string, data?: unknown, opts?: { tenant?: string }): { delivered: number; offset?: number; epoch?: string };
  /** A channel's history (its namespace must keep history); throws CommandError (NOT_FOUND, UNRECOVERABLE_POSITION). */
  history(
    channel: string,
    opts?: { limit?: number; since?: { offset: number; epoch: string }; reverse?: boolean; tenant?: string },
  ): { channel: string; publications: { offset: number; from: string; data?: unknown; timestamp: string }[]; offset: number; epoch: string };
  /** The clients subscribed to a channel (its namespace must enable presence). */
  presence(channel: string, opts?: { tenant?: string }): { channel: string; clients: { clientId: string; user: unknown }[] };
  /** Client and distinct-user counts of a channel's presence. */
  presenceStats(channel: string, opts?: { tenant?: string }): { channel: string; clients: number; users: number };
  shutdown(reason?: string, ms?: number): Promise<void>;
  timeout(): void;
  metricsText(): string;
  metrics(): Record<string, unknown>;
  free(): void;
}

export interface Deployment {
  config: any;
  server: Record<string, unknown>;
  warnings: string[];
}

export declare function initWasm(module: BufferSource | WebAssembly.Module): void;
export declare function wasmReady(): boolean;
export declare function engineVersion(): string;
/**
 * The engine's error codes by name (engine::ErrorCode): `errorCodes().NotFound` is
 * `"NOT_FOUND"`. Hosts take protocol error codes from here. Needs initWasm().
 */
export declare function errorCodes(): Readonly<Record<string, string>>;
export declare function loadDeployment(doc: string | object, env?: Record<string, string | undefined>): Deployment;
export declare function randomSeed(): bigint;
export declare function randomClientId(): string;
export declare function normalizePeer(addr: string | undefined | null): string;
export declare function decodeBatch(batch: string, recipients?: ArrayLike<number>): { actions: any[]; frames: number[]; timeout: number | null; error?: string; logs?: string[]; frame(i: number): string };
/** Split a batch string (host-js/src/batch.rs): ops[0] is the deadline or -1, then op codes and arguments. */
export declare function decodeOps(batch: string): { ops: number[]; extra: { actions?: any[]; error?: string; logs?: string[] } | null; base: number };
export declare function timerScheduler(now?: () => number): Scheduler;
/**
 * Drive a throwaway Host through `messages` common frames (ping, publish with a fan-out,
 * subscribe, unsubscribe) so the runtime compiles the engine's hot wasm code with its
 * optimizing tier before traffic; resolves with the wall time it took (ms). The serve
 * functions of the Node, Deno and Bun adapters call it before listening.
 */
export declare function warmUp(options?: { messages?: number; round?: number; pauseMs?: number; settleMs?: number }): Promise<number>;
/** warmUp() with its defaults, once per process (the servers call this; later calls resolve with the first run's time). */
export declare function warmUpOnce(): Promise<number>;
export declare function httpRoute(host: Host, method: string, path: string, endpoint?: string): { status: number; headers: Record<string, string>; body: string };
/** Fetch-API runtimes: {response} for plain HTTP or a refused upgrade, else {accepted} (the engine's decision). */
export declare function fetchRoute(host: Host, req: Request, peer: string | undefined | null): { response?: Response; accepted?: { accept: true; conn: number; protocol?: string } };
export declare const STATUS_TEXT: Record<number, string>;
export * as wasm from "../pkg/switchboard_wasm.js";
