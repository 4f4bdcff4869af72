import type { ServerErrorCode } from "./protocol.gen.js";

/**
 * Codes of errors the client raises itself (no server frame behind them). They never
 * collide with the protocol's codes ({@link ServerErrorCode}).
 */
export type ClientErrorCode =
  /** No answer within the request's timeout. The outcome on the server is unknown. */
  | "REQUEST_TIMEOUT"
  /** The connection was lost (or was not there) before the answer came; the outcome is unknown. */
  | "DISCONNECTED"
  /** `client.close()` was called; pending and queued requests end with this. */
  | "CLIENT_CLOSED"
  /** The offline queue is full (`offlineQueue.maxSize`). */
  | "QUEUE_FULL"
  /** `getToken` refused to give a token (threw {@link UnauthorizedError}) or the server refused the credential. */
  | "UNAUTHORIZED_CLIENT"
  /** The request was aborted through its `AbortSignal`. */
  | "ABORTED"
  /** `ready()` on a subscription that is not wanted (never subscribed, unsubscribed, or refused). */
  | "NOT_SUBSCRIBED";

/** Every error the SDK rejects a promise with or emits. `code` is machine-readable. */
export class SwitchboardError extends Error {
  /** The protocol's error code (from an `error` frame) or a {@link ClientErrorCode}. */
  readonly code: ServerErrorCode | ClientErrorCode | (string & {});
  /** The `error` frame, when the server sent one. */
  readonly frame?: Record<string, unknown>;

  constructor(code: SwitchboardError["code"], message: string, frame?: Record<string, unknown>) {
    super(message);
    this.name = "SwitchboardError";
    this.code = code;
    this.frame = frame;
  }
}

/**
 * The server answered a request with an `error` frame. `code` is the protocol's code
 * (an unknown code from a newer server is kept as sent; treat it like `INTERNAL_ERROR`).
 */
export class ServerError extends SwitchboardError {
  constructor(code: string, message: string, frame: Record<string, unknown>) {
    super(code, message, frame);
    this.name = "ServerError";
  }
}

/** No answer within the timeout: `code` is `REQUEST_TIMEOUT`. */
export class RequestTimeoutError extends SwitchboardError {
  constructor(type: string, ms: number) {
    super("REQUEST_TIMEOUT", `no answer to \`${type}\` within ${ms} ms; its outcome is unknown`);
    this.name = "RequestTimeoutError";
  }
}

/** Not connected, or the connection was lost before the answer: `code` is `DISCONNECTED`. */
export class DisconnectedError extends SwitchboardError {
  constructor(message: string) {
    super("DISCONNECTED", message);
    this.name = "DisconnectedError";
  }
}

/**
 * Throw this from `getToken` to say "this user may not connect": the client stops
 * reconnecting and moves to `closed` (centrifuge-js's convention).
 */
export class UnauthorizedError extends SwitchboardError {
  constructor(message = "not authorized to connect") {
    super("UNAUTHORIZED_CLIENT", message);
    this.name = "UnauthorizedError";
  }
}
