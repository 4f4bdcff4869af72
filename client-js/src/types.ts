// Options, events and payload types of the Client.
import type { BackoffOptions } from "./backoff.js";
import type { SwitchboardError } from "./errors.js";
import type { ServerUser } from "./protocol.gen.js";
import type { WebSocketConstructor } from "./transport.js";

/** Connection states. `closed` is final until {@link Client.connect} is called again. */
export type ConnectionState = "disconnected" | "connecting" | "connected" | "closed";

/** Why `getToken` is called. */
export type TokenReason = "connect" | "reconnect" | "refresh";

/** Options of {@link Client}. Only `url` is required. */
export interface ClientOptions {
  /** `ws://host:port/path` (or `http(s)://`, converted). Relative URLs resolve against `location` in browsers. */
  url: string;
  /** A static credential: a JWT or an API key. */
  token?: string | null;
  /**
   * Returns a fresh credential. Called before the first connection, before reconnects
   * when the cached token is (nearly) expired or was refused, and ahead of a JWT's `exp`
   * (see `refresh`). Return `null` to connect anonymously; throw {@link UnauthorizedError}
   * to stop for good (the client moves to `closed`).
   */
  getToken?: (ctx: { reason: TokenReason }) => Promise<string | null> | string | null;
  /**
   * Where the credential travels: `subprotocol` (a `bearer.<token>` entry next to
   * `switchboard.v1`, the only way browsers can avoid the URL), `query` (`?token=`), or
   * `auto` (default: the subprotocol when the token's characters allow it).
   */
  tokenTransport?: "auto" | "subprotocol" | "query";
  /** The WebSocket constructor. Default: `globalThis.WebSocket` (on Node 20 pass `ws`'s). */
  WebSocket?: WebSocketConstructor;
  /** Reconnect with backoff after a loss (default on). `false` turns reconnecting off. */
  reconnect?: boolean | BackoffOptions;
  /** Close codes after which the client does not reconnect (default `[1008, 4001]`: rate-limit abuse, disconnected by the server). */
  terminalCloseCodes?: number[];
  /** Default request timeout in ms (default 10000). */
  requestTimeoutMs?: number;
  /** Time allowed from opening the socket to the welcome frame, in ms (default 10000). */
  connectTimeoutMs?: number;
  /**
   * Application ping interval in ms while connected (default 25000; 0 = off). Browsers
   * cannot see WebSocket pings, so this is how a client notices a dead server: no
   * `pong` within `pingTimeoutMs` (default 10000) drops the socket and reconnects.
   */
  pingIntervalMs?: number;
  pingTimeoutMs?: number;
  /**
   * Requests made while not connected are queued (at most `maxSize`, oldest first) and
   * sent once reconnected and resubscribed; default off (`maxSize: 0`): they fail at once
   * with `DISCONNECTED`. A queued request's timeout runs from the call.
   */
  offlineQueue?: { maxSize: number };
  /**
   * Token refresh: `marginMs` before a JWT's `exp` (default 15000) `getToken` is called.
   * `mode: "message"` (default) sends `{"type":"refresh","token"}` on the open
   * connection (the token-lifecycle protocol: the server answers `refreshed` and keeps
   * the connection and its subscriptions), falling back to a reconnect if the server
   * refuses it; `mode: "reconnect"` reconnects with the new token (servers without the
   * token-lifecycle protocol). `pushTypes` are server frames that ask for a refresh now
   * (default `["token:expiring"]`).
   */
  refresh?: { marginMs?: number; mode?: "reconnect" | "message"; pushTypes?: string[] };
  /** Randomness for the backoff jitter (tests). */
  random?: () => number;
}

/** The welcome frame's content. */
export interface ConnectedInfo {
  clientId: string;
  user: ServerUser;
  protocolVersion: number;
  /** True from the second connection of this client on. */
  reconnected: boolean;
}

/** A resource change, as pushed in an `event` frame. */
export interface ResourceEvent {
  event: "insert" | "update" | "delete";
  resource: string;
  /** The record (after the change; the removed record for deletes), without `$before`/`$after`. */
  record: Record<string, unknown>;
  /** The record before the change (updates, deletes); null when not visible or unknown. */
  before: Record<string, unknown> | null;
  /** The record after the change; null for deletes. */
  after: Record<string, unknown> | null;
  timestamp: string;
  /** Position in the resource's stream, when the resource keeps history. */
  offset?: number;
  /** The stream's epoch (with `offset`). */
  epoch?: string;
}

/** A channel publication (`message` frame). */
export interface Publication {
  channel: string;
  /** The publisher's clientId, or `"server"`. */
  from: string;
  data?: unknown;
  timestamp: string;
  /** Stream position, when the channel keeps history. */
  offset?: number;
}

/** A direct message from another client. */
export interface DirectMessage {
  from: string;
  data?: unknown;
  timestamp: string;
}

/** Events of {@link Client}. */
export interface ClientEvents {
  state: { state: ConnectionState; previous: ConnectionState };
  connecting: { attempt: number; reason: string };
  connected: ConnectedInfo;
  disconnected: { code: number; reason: string; reconnectInMs: number };
  closed: { code: number; reason: string };
  /** Errors that belong to no request: error frames without `requestId`, unreadable frames, token failures. */
  error: SwitchboardError;
  /** Every resource change pushed to this connection. */
  event: ResourceEvent;
  /** Every channel publication pushed to this connection. */
  publication: Publication;
  direct: DirectMessage;
  /** Server-API pushes (application JSON sent verbatim) and frames of unknown type. */
  serverMessage: unknown;
  /** Every frame received, parsed (debugging, consoles). */
  frame: unknown;
}

/** Options of one request. */
export interface RequestOptions {
  /** Timeout in ms (default: the client's `requestTimeoutMs`). */
  timeoutMs?: number;
  /** Abort the wait (the request may still have reached the server). */
  signal?: AbortSignal;
  /** Queue while disconnected (default: when `offlineQueue` is configured). */
  queue?: boolean;
}
