import { backoffDelay } from "./backoff.js";
import { Emitter } from "./emitter.js";
import {
  ServerError,
  SwitchboardError,
  DisconnectedError,
  RequestTimeoutError,
  UnauthorizedError,
} from "./errors.js";
import type { ServerUser, ServerFrameByType, ClientFrameByType } from "./protocol.gen.js";
import type {
  ClientEvents,
  ClientOptions,
  ConnectedInfo,
  ConnectionState,
  DirectMessage,
  Publication,
  RequestOptions,
  ResourceEvent,
  TokenReason,
} from "./types.js";
import { ChannelSubscription, ResourceSubscription, type ResourceSubscribeOptions } from "./subscription.js";

/** Any subscription object. */
export type AnySubscription = ResourceSubscription | ChannelSubscription;
import { Resource } from "./resource.js";
import { Room } from "./room.js";
import { tokenExpiry, fitsSubprotocol } from "./token.js";
import {
  OPEN,
  SUBPROTOCOL,
  defaultWebSocket,
  frameText,
  handshakeStatus,
  socketUrl,
  type WebSocketConstructor,
  type WebSocketLike,
} from "./transport.js";

interface Pending {
  id: number;
  type: string;
  msg: Record<string, unknown>;
  resolve: (frame: Record<string, unknown>) => void;
  reject: (err: SwitchboardError) => void;
  timer: ReturnType<typeof setTimeout> | null;
  cleanup: () => void;
}

/** Close codes the client uses for sockets it drops itself. */
export const CLIENT_CLOSE = {
  /** No welcome frame within `connectTimeoutMs`. */
  connectTimeout: 3000,
  /** No pong within `pingTimeoutMs`. */
  pingTimeout: 3001,
  /** Reconnecting with a refreshed token. */
  tokenRefresh: 3002,
  /** The socket failed to open (the runtime gave no close code). */
  abnormal: 1006,
} as const;

const MAX_TIMER = 2 ** 31 - 1;

/**
 * A Switchboard connection that stays up: it reconnects with backoff, resubscribes its
 * subscriptions, rejoins its rooms, matches answers to requests and refreshes tokens.
 *
 * ```js
 * const client = new Client({ url: "ws://127.0.0.1:3001/", token });
 * const chat = client.channel("chat:1").subscribe();
 * chat.on("message", (m) => console.log(m.from, m.data));
 * await client.connect();
 * await chat.publish({ text: "hi" });
 * ```
 */
export class Client extends Emitter<ClientEvents> {
  /** Current connection state. */
  state: ConnectionState = "disconnected";
  /** This connection's id (the target of direct messages), once connected. */
  clientId: string | null = null;
  /** The authenticated user (`null` when anonymous), once connected. */
  user: ServerUser = null;

  private readonly opts: ClientOptions;
  private readonly WS: WebSocketConstructor;
  private ws: WebSocketLike | null = null;
  /** Generation of the current transport; stale socket callbacks compare against it. */
  private gen = 0;
  private welcomed = false;
  private everConnected = false;
  private attempts = 0;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly queue: Pending[] = [];
  private readonly subs = new Set<AnySubscription>();
  private readonly channels = new Map<string, ChannelSubscription>();
  private readonly rooms = new Map<string, Room>();
  private readonly resources = new Map<string, Resource>();
  private timers: { reconnect?: ReturnType<typeof setTimeout>; connect?: ReturnType<typeof setTimeout>; ping?: ReturnType<typeof setInterval>; refresh?: ReturnType<typeof setTimeout> } = {};
  private waiters: { resolve: (i: ConnectedInfo) => void; reject: (e: SwitchboardError) => void }[] = [];
  private token: string | null;
  private freshTokenNeeded = false;
  private authRetried = false;
  private lastSocketError: unknown = null;
  private pinging = false;
  private info: ConnectedInfo | null = null;

  constructor(opts: ClientOptions) {
    super();
    if (!opts || typeof opts.url !== "string") throw new TypeError("new Client({ url }) needs a url");
    socketUrl(opts.url, null); // validate early
    const WS = opts.WebSocket ?? defaultWebSocket();
    if (!WS) {
      throw new TypeError(
        "no WebSocket in this runtime: pass one, e.g. new Client({ url, WebSocket: (await import('ws')).WebSocket }) on Node 20",
      );
    }
    this.opts = opts;
    this.WS = WS;
    this.token = opts.token ?? null;
  }

  // ------------------------------------------------------------------ connection

  /**
   * Start connecting (if not already) and resolve with the welcome once connected. It
   * keeps trying through transient failures; it rejects if the client ends `closed`.
   */
  connect(): Promise<ConnectedInfo> {
    if (this.state === "connected" && this.info) return Promise.resolve(this.info);
    const p = new Promise<ConnectedInfo>((resolve, reject) => this.waiters.push({ resolve, reject }));
    if (this.state === "disconnected" && this.timers.reconnect === undefined) {
      this.attempts = 0;
      void this.open("connect");
    } else if (this.state === "closed") {
      this.attempts = 0;
      void this.open("connect");
    }
    return p;
  }

  /** Close for good: no reconnect; pending and queued requests fail with `CLIENT_CLOSED`. */
  close(code = 1000, reason = "client closed"): void {
    this.terminate(code, reason, new SwitchboardError("CLIENT_CLOSED", "the client was closed"));
  }

  /** The welcome of the current connection, or null. */
  get connection(): ConnectedInfo | null {
    return this.state === "connected" ? this.info : null;
  }

  private setState(next: ConnectionState): void {
    const previous = this.state;
    if (previous === next) return;
    this.state = next;
    this.emit("state", { state: next, previous });
  }

  private clearTimers(): void {
    clearTimeout(this.timers.reconnect);
    clearTimeout(this.timers.connect);
    clearInterval(this.timers.ping);
    clearTimeout(this.timers.refresh);
    this.timers = {};
  }

  private async resolveToken(reason: TokenReason): Promise<string | null> {
    const get = this.opts.getToken;
    if (!get) return this.token;
    const exp = this.token ? tokenExpiry(this.token) : null;
    const margin = this.opts.refresh?.marginMs ?? 15000;
    const stale = this.token === null || this.freshTokenNeeded || (exp !== null && exp - Date.now() < margin);
    if (stale) {
      this.token = await get({ reason });
      this.freshTokenNeeded = false;
    }
    return this.token;
  }

  private async open(reason: string): Promise<void> {
    const gen = ++this.gen;
    this.timers.reconnect = undefined;
    this.welcomed = false;
    this.lastSocketError = null;
    this.setState("connecting");
    this.emit("connecting", { attempt: this.attempts, reason });
    let token: string | null;
    try {
      token = await this.resolveToken(this.everConnected ? "reconnect" : "connect");
    } catch (err) {
      if (gen !== this.gen) return;
      if (err instanceof UnauthorizedError) {
        this.terminate(CLIENT_CLOSE.abnormal, err.message, err);
        return;
      }
      this.emit("error", asError(err, "getToken failed"));
      this.lost(CLIENT_CLOSE.abnormal, "getToken failed");
      return;
    }
    if (gen !== this.gen || this.state !== "connecting") return;
    const transport = this.opts.tokenTransport ?? "auto";
    const useSubprotocol = token !== null && (transport === "subprotocol" || (transport === "auto" && fitsSubprotocol(token)));
    const protocols = [SUBPROTOCOL];
    if (useSubprotocol) protocols.push(`bearer.${token}`);
    let ws: WebSocketLike;
    try {
      ws = new this.WS(socketUrl(this.opts.url, token !== null && !useSubprotocol ? token : null), protocols);
    } catch (err) {
      this.emit("error", asError(err, "could not open the WebSocket"));
      this.lost(CLIENT_CLOSE.abnormal, "could not open the WebSocket");
      return;
    }
    this.ws = ws;
    this.timers.connect = setTimeout(
      () => this.drop(gen, CLIENT_CLOSE.connectTimeout, "no welcome frame in time"),
      this.opts.connectTimeoutMs ?? 10000,
    );
    ws.onmessage = (ev) => {
      if (gen === this.gen) this.onFrame(ev.data);
    };
    ws.onerror = (ev) => {
      if (gen === this.gen) this.lastSocketError = ev;
    };
    ws.onclose = (ev) => {
      if (gen === this.gen) this.onSocketClosed(ev.code, ev.reason);
    };
  }

  /** Drop the current socket (ours to end) and handle it as a loss with `code`. */
  private drop(gen: number, code: number, reason: string): void {
    if (gen !== this.gen || !this.ws) return;
    const ws = this.ws;
    detach(ws);
    try {
      ws.close(code, reason);
    } catch {
      /* already closing */
    }
    this.onSocketClosed(code, reason);
  }

  private onSocketClosed(code: number, reason: string): void {
    const wasWelcomed = this.welcomed;
    if (this.ws) detach(this.ws);
    this.ws = null;
    this.gen++;
    const status = wasWelcomed ? null : handshakeStatus(this.lastSocketError);
    if (this.state === "closed") return;
    if ((this.opts.terminalCloseCodes ?? [1008, 4001]).includes(code)) {
      this.terminate(code, reason || "closed by the server", new DisconnectedError(`closed by the server (${code}${reason ? ` ${reason}` : ""})`));
      return;
    }
    if (!wasWelcomed) {
      // Refused or failed upgrade. A token may be stale: ask for a fresh one next time.
      if (this.opts.getToken) this.freshTokenNeeded = true;
      if (status === 401 && (!this.opts.getToken || this.authRetried)) {
        const err = new SwitchboardError("UNAUTHORIZED_CLIENT", "the server refused the credential (HTTP 401)");
        this.terminate(CLIENT_CLOSE.abnormal, err.message, err);
        return;
      }
      if (status === 401) this.authRetried = true;
      if (status === 403 || status === 404) {
        const err = new SwitchboardError("UNAUTHORIZED_CLIENT", `the server refused the upgrade (HTTP ${status})`);
        this.terminate(CLIENT_CLOSE.abnormal, err.message, err);
        return;
      }
      const why = status !== null ? `upgrade refused (HTTP ${status})` : reason || "could not connect";
      this.lost(code || CLIENT_CLOSE.abnormal, why);
      return;
    }
    this.lost(code, reason);
  }

  /** A transient loss: fail in-flight requests, then reconnect after a backoff delay. */
  private lost(code: number, reason: string): void {
    this.clearTimers();
    this.failPending(new DisconnectedError(`connection lost (${code}${reason ? ` ${reason}` : ""}) before the answer; the outcome is unknown`));
    for (const s of this.subs) s._onDisconnected();
    for (const r of this.rooms.values()) r._onDisconnected();
    if (this.opts.reconnect === false) {
      this.terminate(code, reason, new DisconnectedError(`connection lost (${code}) and reconnect is off`));
      return;
    }
    const backoff = typeof this.opts.reconnect === "object" ? this.opts.reconnect : {};
    const delay = backoffDelay(this.attempts++, backoff, this.opts.random);
    this.setState("disconnected");
    this.emit("disconnected", { code, reason, reconnectInMs: delay });
    this.timers.reconnect = setTimeout(() => void this.open("reconnect"), delay);
  }

  /** Reconnect now (token refresh); subscriptions come back through the normal path. */
  private reconnectNow(reason: string): void {
    if (!this.ws) return;
    const ws = this.ws;
    detach(ws);
    try {
      ws.close(1000, reason);
    } catch {
      /* closing */
    }
    this.ws = null;
    this.gen++;
    this.clearTimers();
    this.failPending(new DisconnectedError("the connection was replaced (token refresh) before the answer; the outcome is unknown"));
    for (const s of this.subs) s._onDisconnected();
    for (const r of this.rooms.values()) r._onDisconnected();
    this.setState("disconnected");
    this.emit("disconnected", { code: CLIENT_CLOSE.tokenRefresh, reason, reconnectInMs: 0 });
    void this.open("token refresh");
  }

  private terminate(code: number, reason: string, err: SwitchboardError): void {
    this.clearTimers();
    if (this.ws) {
      const ws = this.ws;
      detach(ws);
      try {
        ws.close(code >= 3000 || code === 1000 ? code : 1000, reason.slice(0, 120));
      } catch {
        /* closing */
      }
    }
    this.ws = null;
    this.gen++;
    this.failPending(err);
    for (const q of this.queue.splice(0)) {
      q.cleanup();
      q.reject(err);
    }
    for (const s of this.subs) s._onClosed(err);
    for (const r of this.rooms.values()) r._onDisconnected();
    const wasClosed = this.state === "closed";
    this.setState("closed");
    for (const w of this.waiters.splice(0)) w.reject(err);
    if (!wasClosed) this.emit("closed", { code, reason });
  }

  private failPending(err: SwitchboardError): void {
    for (const p of [...this.pending.values()]) {
      this.pending.delete(p.id);
      p.cleanup();
      p.reject(err);
    }
  }

  // ------------------------------------------------------------------ frames

  private onFrame(data: unknown): void {
    const text = frameText(data);
    let frame: unknown;
    try {
      if (text === null) throw new Error("not text");
      frame = JSON.parse(text);
    } catch {
      this.emit("error", new SwitchboardError("INVALID_JSON", "the server sent a frame that is not JSON"));
      return;
    }
    this.emit("frame", frame);
    if (frame === null || typeof frame !== "object" || Array.isArray(frame)) {
      this.emit("serverMessage", frame);
      return;
    }
    const f = frame as Record<string, unknown>;
    if (!this.welcomed) {
      if (f.type === "connected") this.onWelcome(f as unknown as ServerFrameByType["connected"]);
      else this.emit("serverMessage", f);
      return;
    }
    if ("requestId" in f && typeof f.requestId === "number" && this.pending.has(f.requestId)) {
      const p = this.pending.get(f.requestId)!;
      this.pending.delete(p.id);
      p.cleanup();
      if (f.type === "error") p.reject(new ServerError(String(f.code), String(f.message ?? f.code), f));
      else p.resolve(f);
      return;
    }
    switch (f.type) {
      case "event":
        this.onEvent(f as unknown as ServerFrameByType["event"]);
        return;
      case "message": {
        const pub = f as unknown as Publication;
        this.channels.get(pub.channel)?._onPublication(pub);
        this.emit("publication", pub);
        return;
      }
      case "presence:join":
      case "presence:leave":
        this.channels.get(String(f.channel))?._onPresence(f as unknown as ServerFrameByType["presence:join"] | ServerFrameByType["presence:leave"]);
        return;
      case "room:joined":
      case "room:left":
      case "room:message":
        this.rooms.get(String(f.room))?._onPush(f);
        return;
      case "direct":
        this.emit("direct", f as unknown as DirectMessage);
        return;
      case "error":
        this.emit("error", new ServerError(String(f.code), String(f.message ?? f.code), f));
        return;
      default:
        if (typeof f.type === "string" && (this.opts.refresh?.pushTypes ?? ["token:expiring"]).includes(f.type)) {
          void this.refresh();
          return;
        }
        if ("requestId" in f) return; // a late answer to a request that already timed out
        this.emit("serverMessage", f);
    }
  }

  private onWelcome(f: ServerFrameByType["connected"]): void {
    clearTimeout(this.timers.connect);
    this.welcomed = true;
    this.attempts = 0;
    this.authRetried = false;
    this.clientId = f.clientId;
    this.user = f.user;
    const info: ConnectedInfo = {
      clientId: f.clientId,
      user: f.user,
      protocolVersion: f.protocolVersion,
      reconnected: this.everConnected,
    };
    this.info = info;
    this.everConnected = true;
    this.setState("connected");
    const gen = this.gen;
    // Subscriptions and rooms first: their frames precede anything the application sends
    // from its `connected` listener, and queued requests wait for their answers.
    const restoring = [...[...this.subs].map((s) => s._onConnected()), ...[...this.rooms.values()].map((r) => r._onConnected())];
    this.startPing(gen);
    this.scheduleRefresh(gen);
    this.emit("connected", info);
    for (const w of this.waiters.splice(0)) w.resolve(info);
    void Promise.allSettled(restoring).then(() => {
      if (gen === this.gen) this.flushQueue();
    });
  }

  private onEvent(f: ServerFrameByType["event"]): void {
    const { $before, $after, ...record } = f.data as Record<string, unknown>;
    const ev: ResourceEvent = {
      event: f.event,
      resource: f.resource,
      record,
      before: f.event === "insert" ? null : (($before as Record<string, unknown> | null) ?? null),
      after: f.event === "insert" ? record : f.event === "delete" ? null : (($after as Record<string, unknown> | null) ?? record),
      timestamp: f.timestamp,
    };
    if (typeof f.offset === "number") ev.offset = f.offset;
    if (typeof f.epoch === "string") ev.epoch = f.epoch;
    const candidates = [...this.subs].filter(
      (s): s is ResourceSubscription => s instanceof ResourceSubscription && s.resource === f.resource && s.state === "subscribed",
    );
    const matching = candidates.filter((s) => s._matches(ev));
    // The client's matcher mirrors the server's; if it finds none (a guard-forced view,
    // integers beyond 2^53), deliver to all of the resource's subscriptions rather than drop.
    for (const s of matching.length > 0 ? matching : candidates) s._onEvent(ev);
    this.emit("event", ev);
  }

  // ------------------------------------------------------------------ requests

  /**
   * Send `{type, ...fields}` with a fresh `requestId` and resolve with the answer frame
   * (rejecting with {@link ServerError} on an `error` answer). Works for every message
   * type, including application messages the server defines.
   */
  request(
    type: string,
    fields: Record<string, unknown> = {},
    opts: RequestOptions = {},
  ): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      const id = this.nextId++;
      // `type` stays the first key; a `type` or `requestId` in `fields` cannot override ours.
      const msg: Record<string, unknown> = Object.assign({ type }, fields, { type, requestId: id });
      const p: Pending = { id, type, msg, resolve, reject, timer: null, cleanup: () => {} };
      const ms = opts.timeoutMs ?? this.opts.requestTimeoutMs ?? 10000;
      const remove = () => {
        this.pending.delete(id);
        const qi = this.queue.indexOf(p);
        if (qi >= 0) this.queue.splice(qi, 1);
      };
      p.timer = setTimeout(() => {
        remove();
        p.cleanup();
        reject(new RequestTimeoutError(type, ms));
      }, ms);
      const onAbort = () => {
        remove();
        p.cleanup();
        reject(new SwitchboardError("ABORTED", `\`${type}\` was aborted`));
      };
      opts.signal?.addEventListener("abort", onAbort, { once: true });
      p.cleanup = () => {
        clearTimeout(p.timer!);
        opts.signal?.removeEventListener("abort", onAbort);
      };
      if (opts.signal?.aborted) return onAbort();
      this.dispatch(p, opts.queue);
    });
  }

  /** Send a message that has no answer on success (no `requestId`). */
  notify(type: string, fields: Record<string, unknown> = {}): void {
    if (this.state !== "connected" || !this.ws) {
      throw new DisconnectedError(`cannot send \`${type}\`: not connected (state: ${this.state})`);
    }
    const msg: Record<string, unknown> = Object.assign({ type }, fields, { type });
    delete msg.requestId; // no answer on success: never ask for one
    this.ws.send(JSON.stringify(msg));
  }

  private dispatch(p: Pending, queue?: boolean): void {
    if (this.state === "connected" && this.ws && this.ws.readyState === OPEN) {
      this.pending.set(p.id, p);
      try {
        this.ws.send(JSON.stringify(p.msg));
      } catch (err) {
        this.pending.delete(p.id);
        p.cleanup();
        p.reject(new DisconnectedError(`could not send \`${p.type}\`: ${(err as Error)?.message ?? err}`));
      }
      return;
    }
    const max = this.opts.offlineQueue?.maxSize ?? 0;
    const useQueue = queue ?? max > 0;
    if (this.state === "closed") {
      p.cleanup();
      p.reject(new SwitchboardError("CLIENT_CLOSED", `cannot send \`${p.type}\`: the client is closed; call connect()`));
    } else if (!useQueue || max <= 0) {
      p.cleanup();
      p.reject(new DisconnectedError(`cannot send \`${p.type}\`: not connected (state: ${this.state}); set offlineQueue to queue requests while reconnecting`));
    } else if (this.queue.length >= max) {
      p.cleanup();
      p.reject(new SwitchboardError("QUEUE_FULL", `cannot queue \`${p.type}\`: the offline queue holds ${max} requests`));
    } else {
      this.queue.push(p);
    }
  }

  private flushQueue(): void {
    for (const p of this.queue.splice(0)) this.dispatch(p, false);
  }

  /** Requests made while not connected and not yet sent. */
  get queuedRequests(): number {
    return this.queue.length;
  }

  /** Requests sent and not yet answered. */
  get pendingRequests(): number {
    return this.pending.size;
  }

  /**
   * Call an application message handler (`{type, data, requestId}` → `{"type":"reply",
   * "data"}`) and resolve with the reply's `data`.
   */
  async call(type: string, data?: unknown, opts?: RequestOptions): Promise<unknown> {
    const frame = await this.request(type, data === undefined ? {} : { data }, opts);
    return frame.data;
  }

  /** Round trip of an application `ping`, in ms. */
  async ping(opts?: RequestOptions): Promise<number> {
    const t0 = now();
    await this.request("ping", {}, opts);
    return now() - t0;
  }

  private startPing(gen: number): void {
    const every = this.opts.pingIntervalMs ?? 25000;
    if (every <= 0) return;
    this.timers.ping = setInterval(() => {
      if (gen !== this.gen || this.pinging) return;
      this.pinging = true;
      this.ping({ timeoutMs: this.opts.pingTimeoutMs ?? 10000, queue: false })
        .catch((err: SwitchboardError) => {
          if (err.code === "REQUEST_TIMEOUT") this.drop(gen, CLIENT_CLOSE.pingTimeout, "no pong in time");
        })
        .finally(() => {
          this.pinging = false;
        });
    }, every);
  }

  // ------------------------------------------------------------------ tokens

  private scheduleRefresh(gen: number): void {
    clearTimeout(this.timers.refresh);
    if (!this.opts.getToken || !this.token) return;
    const exp = tokenExpiry(this.token);
    if (exp === null) return;
    const margin = this.opts.refresh?.marginMs ?? 15000;
    const wait = Math.min(MAX_TIMER, Math.max(1000, exp - margin - Date.now()));
    this.timers.refresh = setTimeout(() => {
      if (gen === this.gen) void this.refresh();
    }, wait);
  }

  /**
   * Get a fresh token from `getToken` now and put it to use: on the open connection
   * (`refresh.mode: "message"`, the default: the token-lifecycle protocol's `refresh`
   * request, falling back to a reconnect if the server refuses it) or by reconnecting
   * with it (`"reconnect"`).
   */
  async refresh(): Promise<void> {
    const get = this.opts.getToken;
    if (!get) return;
    const gen = this.gen;
    let token: string | null;
    try {
      token = await get({ reason: "refresh" });
    } catch (err) {
      if (err instanceof UnauthorizedError) {
        this.terminate(CLIENT_CLOSE.abnormal, err.message, err);
        return;
      }
      this.emit("error", asError(err, "getToken failed during refresh"));
      if (gen === this.gen && this.state === "connected") {
        clearTimeout(this.timers.refresh);
        this.timers.refresh = setTimeout(() => gen === this.gen && void this.refresh(), 5000);
      }
      return;
    }
    this.token = token;
    if (gen !== this.gen || this.state !== "connected") return; // the next connect uses it
    if ((this.opts.refresh?.mode ?? "message") === "message" && token !== null) {
      try {
        await this.request("refresh", { token }, { queue: false });
        if (gen === this.gen) this.scheduleRefresh(gen);
        return;
      } catch (err) {
        if (gen !== this.gen) return;
        this.emit("error", asError(err, "token refresh refused; reconnecting with the new token"));
      }
    }
    this.reconnectNow("token refresh");
  }

  // ------------------------------------------------------------------ API objects

  /** A resource's CRUD and subscriptions. */
  resource(name: string): Resource {
    let r = this.resources.get(name);
    if (!r) this.resources.set(name, (r = new Resource(this, name)));
    return r;
  }

  /** Subscribe to a resource's changes (started at once; `await sub.ready()` for the answer). */
  subscribe(resource: string, opts: ResourceSubscribeOptions = {}): ResourceSubscription {
    return this.resource(resource).subscribe(opts);
  }

  /** The channel `name` (one object per name; call `.subscribe()` to receive). */
  channel(name: string): ChannelSubscription {
    let c = this.channels.get(name);
    if (!c) this.channels.set(name, (c = new ChannelSubscription(this, name)));
    return c;
  }

  /** The room `name` (one object per name; call `.join()`). */
  room(name: string): Room {
    let r = this.rooms.get(name);
    if (!r) this.rooms.set(name, (r = new Room(this, name)));
    return r;
  }

  /** Publish on a channel without holding its object; resolves with the delivered count. */
  async publish(channel: string, data?: unknown, opts?: RequestOptions): Promise<{ delivered: number }> {
    const f = await this.request("publish", data === undefined ? { channel } : { channel, message: data }, opts);
    return { delivered: Number(f.delivered) };
  }

  /**
   * Send a direct message to a connected client. With `ack` (default) it resolves with
   * the delivered count and rejects with `NOT_FOUND` if `to` is not connected; without,
   * it is fire-and-forget (errors arrive as `error` events).
   */
  async sendDirect(to: string, data?: unknown, opts: RequestOptions & { ack?: boolean } = {}): Promise<{ delivered: number } | void> {
    const fields: Record<string, unknown> = data === undefined ? { to } : { to, data };
    if (opts.ack === false) return this.notify("direct", fields);
    const f = await this.request("direct", { ...fields, ack: true }, opts);
    return { delivered: Number(f.delivered) };
  }

  /** @internal subscriptions register here to be restored on reconnect. */
  _track(s: AnySubscription): void {
    this.subs.add(s);
  }

  /** @internal */
  _untrack(s: AnySubscription): void {
    this.subs.delete(s);
  }

  /** @internal generation of the current connection. */
  get _gen(): number {
    return this.gen;
  }

  /** @internal the backoff for retries of transient subscription failures. */
  _retryDelay(attempt: number): number {
    const backoff = typeof this.opts.reconnect === "object" ? this.opts.reconnect : {};
    return backoffDelay(attempt, backoff, this.opts.random);
  }
}

/**
 * Stop listening to a socket we are done with. Its error handler becomes a no-op rather
 * than null: the `ws` package emits an `error` event when a socket still in its handshake
 * is closed ("WebSocket was closed before the connection was established"), and an
 * `error` event without a listener is an uncaught exception that ends a Node process.
 * The same holds for any late error of a socket we dropped (a reset while it closes).
 */
function detach(ws: WebSocketLike): void {
  ws.onopen = null;
  ws.onmessage = null;
  ws.onerror = ignoreSocketError;
  ws.onclose = null;
}

function ignoreSocketError(): void {
  /* the socket was detached: its late errors are not ours to report */
}

function asError(err: unknown, context: string): SwitchboardError {
  if (err instanceof SwitchboardError) return err;
  return new SwitchboardError("INTERNAL_ERROR", `${context}: ${(err as Error)?.message ?? String(err)}`);
}

function now(): number {
  return typeof performance !== "undefined" ? performance.now() : Date.now();
}

export type { ClientFrameByType };
export type {
  ClientEvents,
  ClientOptions,
  ConnectedInfo,
  ConnectionState,
  DirectMessage,
  Publication,
  RequestOptions,
  ResourceEvent,
  TokenReason,
} from "./types.js";
