/**
 * The WebSocket surface the client needs: the standard `WebSocket` of browsers, Deno,
 * Bun, Workers and Node >= 22, or the `ws` package's `WebSocket` on Node 20.
 */
export interface WebSocketLike {
  readonly readyState: number;
  /** The subprotocol the server selected. */
  readonly protocol?: string;
  /** Bytes queued for sending (used by the console's gauges). */
  readonly bufferedAmount?: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
}

/** A `WebSocket` constructor. */
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;

/** `WebSocket.OPEN`. */
export const OPEN = 1;

/** The subprotocol of protocol v1, always offered. */
export const SUBPROTOCOL = "switchboard.v1";

/** The standard `WebSocket` of this runtime, if it has one. */
export function defaultWebSocket(): WebSocketConstructor | undefined {
  const g = globalThis as { WebSocket?: WebSocketConstructor };
  return typeof g.WebSocket === "function" ? g.WebSocket : undefined;
}

/** `ws:`/`wss:` URL from a `ws(s):` or `http(s):` one, with `token` in the query when given. */
export function socketUrl(url: string, queryToken: string | null): string {
  const base = (globalThis as { location?: { href: string } }).location?.href;
  const u = base ? new URL(url, base) : new URL(url);
  if (u.protocol === "http:") u.protocol = "ws:";
  else if (u.protocol === "https:") u.protocol = "wss:";
  if (u.protocol !== "ws:" && u.protocol !== "wss:") {
    throw new TypeError(`url must be ws:, wss:, http: or https:, got ${u.protocol}`);
  }
  if (queryToken !== null) u.searchParams.set("token", queryToken);
  return u.toString();
}

/** Text of a message event's data (the server only sends text frames; be lenient). */
export function frameText(data: unknown): string | null {
  if (typeof data === "string") return data;
  if (data instanceof ArrayBuffer) return new TextDecoder().decode(data);
  if (ArrayBuffer.isView(data)) return new TextDecoder().decode(data);
  if (Array.isArray(data) && data.every((d) => ArrayBuffer.isView(d))) {
    return data.map((d: ArrayBufferView) => new TextDecoder().decode(d)).join("");
  }
  return null;
}

/**
 * The HTTP status of a refused upgrade, when the WebSocket implementation reports it
 * (the `ws` package's error says "Unexpected server response: 401"). Browsers never
 * expose it: a refused upgrade there is indistinguishable from a network failure.
 */
export function handshakeStatus(err: unknown): number | null {
  const msg = (err as { message?: unknown; error?: { message?: unknown } } | null)?.message ??
    (err as { error?: { message?: unknown } } | null)?.error?.message;
  if (typeof msg !== "string") return null;
  const m = /Unexpected server response: (\d{3})/.exec(msg);
  return m ? Number(m[1]) : null;
}
