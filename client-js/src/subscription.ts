import type { AnySubscription, Client, Publication, RequestOptions, ResourceEvent } from "./client.js";
import { Emitter } from "./emitter.js";
import { SwitchboardError } from "./errors.js";
import { matchesFilter, type Filter } from "./filter.js";
import type { ServerPresenceJoin, ServerPresenceLeave } from "./protocol.gen.js";

/** A subscription's state. */
export type SubscriptionState = "unsubscribed" | "subscribing" | "subscribed";

/** What a `subscribed` event tells. */
export interface SubscribedContext {
  /** The server's id for this subscription on the current connection. */
  subscriptionId: string;
  /** True when this follows a reconnect: the server holds a new subscription. */
  resubscribed: boolean;
  /** Whether the client asked the server to replay what it missed (`since`). */
  wasRecovering: boolean;
  /**
   * True when the server replayed everything missed since the last received offset.
   * False after a resubscribe means changes made while away may be missing: refetch.
   */
  recovered: boolean;
  /** The stream position after subscribing (channels with history). */
  offset?: number;
  /** The stream epoch (channels with history); a new epoch means the history was reset. */
  epoch?: string;
  /** The `subscribed` frame as received. */
  frame: Record<string, unknown>;
}

/** Events every subscription has. */
export interface SubscriptionEvents {
  state: { state: SubscriptionState; previous: SubscriptionState };
  subscribing: { reason: string };
  subscribed: SubscribedContext;
  unsubscribed: { reason: string; error?: SwitchboardError };
  /** A failed subscribe attempt (transient ones are retried; permanent ones end in `unsubscribed`). */
  error: SwitchboardError;
}

/** Error codes after which a subscribe is retried (with backoff) instead of given up. */
const TRANSIENT = new Set(["REQUEST_TIMEOUT", "UNAVAILABLE", "TIMEOUT", "INTERNAL_ERROR", "RATE_LIMIT_EXCEEDED"]);

/**
 * The state machine shared by resource and channel subscriptions: `subscribe()` makes
 * it wanted; while wanted it is (re)subscribed on every connection; a permanent refusal
 * (`FORBIDDEN`, `RESOURCE_NOT_FOUND`, ...) ends it.
 */
export abstract class BaseSubscription<E extends SubscriptionEvents = SubscriptionEvents> extends Emitter<E> {
  /** Current state. */
  state: SubscriptionState = "unsubscribed";
  /** The server's id on the current connection, while subscribed. */
  subscriptionId: string | null = null;

  protected wanted = false;
  private everSubscribed = false;
  private inflight: Promise<void> | null = null;
  private retryAttempt = 0;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private waiters: { resolve: () => void; reject: (e: SwitchboardError) => void }[] = [];

  constructor(protected readonly client: Client) {
    super();
  }

  protected abstract subscribeFields(): Record<string, unknown>;
  protected abstract unsubscribeFields(id: string): Record<string, unknown>;
  /** Take the `subscribed` answer in; returns the context and a function to run after the event. */
  protected abstract accept(frame: Record<string, unknown>, resubscribed: boolean): [SubscribedContext, () => void];

  private fire<K extends keyof SubscriptionEvents>(k: K, p: SubscriptionEvents[K]): void {
    (this as unknown as BaseSubscription<SubscriptionEvents>).emit(k, p);
  }

  private setState(next: SubscriptionState): void {
    const previous = this.state;
    if (previous === next) return;
    this.state = next;
    this.fire("state", { state: next, previous });
  }

  /** Start (idempotent). Sent now when connected, otherwise on the next connection. */
  subscribe(): this {
    if (this.wanted) return this;
    this.wanted = true;
    this.client._track(this as unknown as AnySubscription);
    this.setState("subscribing");
    this.fire("subscribing", { reason: "subscribe called" });
    if (this.client.state === "connected") void this.send();
    return this;
  }

  /** Resolves once subscribed; rejects if the subscription is refused or ended. */
  ready(): Promise<void> {
    if (this.state === "subscribed") return Promise.resolve();
    if (!this.wanted) return Promise.reject(new SwitchboardError("NOT_SUBSCRIBED", "call subscribe() first"));
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  /** Stop: removes the subscription on the server (when connected) and here. */
  async unsubscribe(): Promise<void> {
    if (!this.wanted) return;
    this.wanted = false;
    clearTimeout(this.retryTimer);
    const id = this.subscriptionId;
    const held = this.state === "subscribed" && id !== null;
    this.subscriptionId = null;
    this.client._untrack(this as unknown as AnySubscription);
    this.setState("unsubscribed");
    this.fire("unsubscribed", { reason: "unsubscribe called" });
    this.settle(new SwitchboardError("NOT_SUBSCRIBED", "unsubscribed"));
    if (held && this.client.state === "connected") {
      try {
        await this.client.request("unsubscribe", this.unsubscribeFields(id), { queue: false });
      } catch (err) {
        // Gone already (reconnect, server-side removal): the goal is reached.
        const code = (err as SwitchboardError).code;
        if (code !== "NOT_FOUND" && code !== "DISCONNECTED" && code !== "CLIENT_CLOSED") throw err;
      }
    }
  }

  private settle(err?: SwitchboardError): void {
    for (const w of this.waiters.splice(0)) (err ? w.reject(err) : w.resolve());
  }

  private send(): Promise<void> {
    if (!this.inflight) {
      this.inflight = this.attempt().finally(() => {
        this.inflight = null;
      });
    }
    return this.inflight;
  }

  private async attempt(): Promise<void> {
    const gen = this.client._gen;
    const resubscribed = this.everSubscribed;
    let frame: Record<string, unknown>;
    try {
      frame = await this.client.request("subscribe", this.subscribeFields(), { queue: false });
    } catch (e) {
      const err = e as SwitchboardError;
      if (!this.wanted || err.code === "DISCONNECTED" || err.code === "CLIENT_CLOSED") return; // restored on reconnect
      this.fire("error", err);
      if (TRANSIENT.has(err.code)) {
        const delay = this.client._retryDelay(this.retryAttempt++);
        this.retryTimer = setTimeout(() => {
          if (this.wanted && this.client.state === "connected" && gen === this.client._gen) void this.send();
        }, delay);
        return;
      }
      this.wanted = false;
      this.client._untrack(this as unknown as AnySubscription);
      this.setState("unsubscribed");
      this.fire("unsubscribed", { reason: err.message, error: err });
      this.settle(err);
      return;
    }
    const id = String(frame.subscriptionId);
    if (!this.wanted) {
      // unsubscribe() ran while the subscribe was in flight: undo it on the server.
      this.client.request("unsubscribe", this.unsubscribeFields(id), { queue: false }).catch(() => {});
      return;
    }
    this.subscriptionId = id;
    this.retryAttempt = 0;
    this.everSubscribed = true;
    const [ctx, after] = this.accept(frame, resubscribed);
    this.setState("subscribed");
    this.fire("subscribed", ctx);
    this.settle();
    after();
  }

  /** @internal a connection is up: (re)subscribe if wanted. */
  _onConnected(): Promise<void> {
    return this.wanted ? this.send() : Promise.resolve();
  }

  /** @internal the connection was lost. */
  _onDisconnected(): void {
    clearTimeout(this.retryTimer);
    if (!this.wanted) return;
    this.subscriptionId = null;
    if (this.state !== "subscribing") {
      this.setState("subscribing");
      this.fire("subscribing", { reason: "connection lost" });
    }
  }

  /** @internal the client closed: waiters fail; the subscription resumes on `connect()`. */
  _onClosed(err: SwitchboardError): void {
    this._onDisconnected();
    this.settle(err);
  }
}

/** Options of a resource subscription. */
export interface ResourceSubscribeOptions {
  /** A record filter (PROTOCOL.md §8); absent = every record. */
  filter?: Filter;
  /** The events wanted (default: all the resource broadcasts). */
  events?: ("insert" | "update" | "delete")[];
}

/** Events of a {@link ResourceSubscription}. */
export interface ResourceSubscriptionEvents extends SubscriptionEvents {
  /** Every change this subscription matches. */
  event: ResourceEvent;
  insert: ResourceEvent;
  update: ResourceEvent;
  delete: ResourceEvent;
}

/**
 * Changes of a resource's records matching a filter. Where the server keeps the
 * resource's history, it tracks `offset`/`epoch` and asks for the missed changes
 * (`since`) when it resubscribes; they arrive as ordinary events, each once.
 */
export class ResourceSubscription extends BaseSubscription<ResourceSubscriptionEvents> {
  /** The events the server delivers (from `subscribed.events`), once subscribed. */
  events: ("insert" | "update" | "delete")[] | null = null;
  /** The last stream offset accounted for (resources with history), else null. */
  offset: number | null = null;
  /** The stream epoch (resources with history), else null. */
  epoch: string | null = null;

  constructor(
    client: Client,
    readonly resource: string,
    readonly options: ResourceSubscribeOptions = {},
  ) {
    super(client);
  }

  protected subscribeFields(): Record<string, unknown> {
    const f: Record<string, unknown> = { resource: this.resource };
    if (this.options.filter) f.filter = this.options.filter;
    if (this.options.events) f.events = this.options.events;
    if (this.offset !== null && this.epoch !== null) f.since = { offset: this.offset, epoch: this.epoch };
    return f;
  }

  protected unsubscribeFields(id: string): Record<string, unknown> {
    return { subscriptionId: id };
  }

  protected accept(frame: Record<string, unknown>, resubscribed: boolean): [SubscribedContext, () => void] {
    this.events = Array.isArray(frame.events) ? (frame.events as ResourceSubscription["events"]) : null;
    const wasRecovering = this.offset !== null && this.epoch !== null;
    const epoch = typeof frame.epoch === "string" ? frame.epoch : undefined;
    const offset = typeof frame.offset === "number" ? frame.offset : undefined;
    if (epoch !== undefined && epoch !== this.epoch) {
      // A new stream (first subscribe, or history reset): offsets start over.
      this.epoch = epoch;
      this.offset = null;
    }
    const missed = Array.isArray(frame.publications) ? (frame.publications as Record<string, unknown>[]) : [];
    const ctx: SubscribedContext = {
      subscriptionId: String(frame.subscriptionId),
      resubscribed,
      wasRecovering,
      recovered: frame.recovered === true,
      offset,
      epoch,
      frame,
    };
    return [
      ctx,
      () => {
        for (const p of missed) this._onEvent(replayed(this.resource, p, epoch));
        if (offset !== undefined && (this.offset === null || offset > this.offset)) this.offset = offset;
      },
    ];
  }

  /** @internal whether this subscription asked for `ev`. */
  _matches(ev: ResourceEvent): boolean {
    if (this.events && !this.events.includes(ev.event)) return false;
    const f = this.options.filter;
    if (ev.event === "insert") return matchesFilter(f, ev.record);
    if (ev.event === "delete") return matchesFilter(f, ev.before ?? ev.record);
    return (ev.before !== null && matchesFilter(f, ev.before)) || matchesFilter(f, ev.after ?? ev.record);
  }

  /** @internal an `event` for this subscription (live or replayed). */
  _onEvent(ev: ResourceEvent): void {
    if (typeof ev.offset === "number" && ev.epoch === this.epoch) {
      if (this.offset !== null && ev.offset <= this.offset) return; // already delivered (replay overlap)
      this.offset = ev.offset;
    }
    this.emit("event", ev);
    this.emit(ev.event, ev);
  }
}

/** A change from `subscribed.publications` as the event it would have been. */
function replayed(resource: string, p: Record<string, unknown>, epoch: string | undefined): ResourceEvent {
  const kind = p.event as ResourceEvent["event"];
  const { $before, $after, ...record } = (p.data ?? {}) as Record<string, unknown>;
  const ev: ResourceEvent = {
    event: kind,
    resource,
    record,
    before: kind === "insert" ? null : (($before as Record<string, unknown> | null) ?? null),
    after: kind === "insert" ? record : kind === "delete" ? null : (($after as Record<string, unknown> | null) ?? record),
    timestamp: String(p.timestamp),
  };
  if (typeof p.offset === "number") ev.offset = p.offset;
  if (epoch !== undefined) ev.epoch = epoch;
  return ev;
}

/** Events of a {@link ChannelSubscription}. */
export interface ChannelEvents extends SubscriptionEvents {
  /** A publication on the channel (including ones replayed on recovery). */
  message: Publication;
  /** Another client subscribed (`presence:join`, namespaces with `joinLeave`). */
  join: ServerPresenceJoin;
  /** Another client left (`presence:leave`: unsubscribed or disconnected). */
  leave: ServerPresenceLeave;
}

/** Options of a history read (channels with history). */
export interface HistoryOptions {
  limit?: number;
  since?: { offset: number; epoch: string };
  reverse?: boolean;
}

/**
 * A pub/sub channel: `subscribe()` to receive its publications, `publish()` to send.
 * Where the server keeps the channel's history, it tracks `offset`/`epoch` and asks
 * for the missed publications (`since`) when it resubscribes.
 */
export class ChannelSubscription extends BaseSubscription<ChannelEvents> {
  /** The last stream offset received (channels with history), else null. */
  offset: number | null = null;
  /** The stream epoch (channels with history), else null. */
  epoch: string | null = null;

  constructor(
    client: Client,
    readonly name: string,
  ) {
    super(client);
  }

  protected subscribeFields(): Record<string, unknown> {
    const f: Record<string, unknown> = { channel: this.name };
    if (this.offset !== null && this.epoch !== null) f.since = { offset: this.offset, epoch: this.epoch };
    return f;
  }

  protected unsubscribeFields(): Record<string, unknown> {
    return { channel: this.name };
  }

  protected accept(frame: Record<string, unknown>, resubscribed: boolean): [SubscribedContext, () => void] {
    const wasRecovering = this.offset !== null && this.epoch !== null;
    const epoch = typeof frame.epoch === "string" ? frame.epoch : undefined;
    const offset = typeof frame.offset === "number" ? frame.offset : undefined;
    if (epoch !== undefined && epoch !== this.epoch) {
      // A new stream (first subscribe, or history reset): offsets start over.
      this.epoch = epoch;
      this.offset = null;
    }
    const pubs = Array.isArray(frame.publications) ? (frame.publications as Record<string, unknown>[]) : [];
    const ctx: SubscribedContext = {
      subscriptionId: String(frame.subscriptionId),
      resubscribed,
      wasRecovering,
      recovered: frame.recovered === true,
      offset,
      epoch,
      frame,
    };
    return [
      ctx,
      () => {
        for (const p of pubs) this._onPublication({ channel: this.name, ...p } as Publication);
        if (offset !== undefined && (this.offset === null || offset > this.offset)) this.offset = offset;
      },
    ];
  }

  /** @internal a `message` frame for this channel. */
  _onPublication(pub: Publication): void {
    if (!this.wanted) return;
    if (typeof pub.offset === "number") {
      if (this.offset !== null && pub.offset <= this.offset) return; // already delivered (replay overlap)
      this.offset = pub.offset;
    }
    this.emit("message", pub);
  }

  /** @internal a `presence:join` / `presence:leave` push for this channel. */
  _onPresence(f: ServerPresenceJoin | ServerPresenceLeave): void {
    if (!this.wanted) return;
    if (f.type === "presence:join") this.emit("join", f);
    else this.emit("leave", f);
  }

  /** Publish on this channel (no subscription needed); resolves with the delivered count. */
  publish(data?: unknown, opts?: RequestOptions): Promise<{ delivered: number }> {
    return this.client.publish(this.name, data, opts);
  }

  /** Read the channel's history (`history` request of the streams protocol). */
  history(opts: HistoryOptions = {}, req?: RequestOptions): Promise<Record<string, unknown>> {
    return this.client.request("history", { channel: this.name, ...opts }, req);
  }

  /** Who is subscribed to the channel (`presence` request of the streams protocol). */
  presence(req?: RequestOptions): Promise<Record<string, unknown>> {
    return this.client.request("presence", { channel: this.name }, req);
  }

  /** Subscriber counts of the channel (`presence:stats` request of the streams protocol). */
  presenceStats(req?: RequestOptions): Promise<Record<string, unknown>> {
    return this.client.request("presence:stats", { channel: this.name }, req);
  }
}
