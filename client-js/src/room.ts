import type { Client, RequestOptions } from "./client.js";
import { Emitter } from "./emitter.js";
import type { SwitchboardError } from "./errors.js";
import type { ServerMember } from "./protocol.gen.js";

/** A message sent to a room. */
export interface RoomMessage {
  room: string;
  from: string;
  event?: string;
  data?: unknown;
  timestamp: string;
}

/** Events of a {@link Room}. */
export interface RoomEvents {
  /** A message from another member. */
  message: RoomMessage;
  /** Another client joined. */
  memberJoined: { room: string; member: ServerMember };
  /** Another client left (or disconnected). */
  memberLeft: { room: string; clientId: string };
  /** This client is in the room (first join, or rejoined after a reconnect). */
  joined: { members: number; rejoined: boolean };
  /** Rejoining after a reconnect failed; the room is left. */
  error: SwitchboardError;
}

/**
 * A room with presence. Once joined, it is rejoined after every reconnect until
 * `leave()`; the other members see the rejoin as `room:joined`.
 */
export class Room extends Emitter<RoomEvents> {
  /** Whether this client wants to be in the room. */
  joinedWanted = false;
  /** Whether the server has this client in the room right now. */
  isMember = false;

  constructor(
    private readonly client: Client,
    readonly name: string,
  ) {
    super();
  }

  /** Join; resolves with the member count (including this client). */
  async join(opts?: RequestOptions): Promise<{ members: number }> {
    const f = await this.client.request("join", { room: this.name }, opts);
    const rejoined = this.joinedWanted;
    this.joinedWanted = true;
    this.isMember = true;
    this.emit("joined", { members: Number(f.members), rejoined });
    return { members: Number(f.members) };
  }

  /** Leave (also stops rejoining). */
  async leave(opts?: RequestOptions): Promise<void> {
    this.joinedWanted = false;
    if (!this.isMember) return;
    this.isMember = false;
    try {
      await this.client.request("leave", { room: this.name }, opts);
    } catch (err) {
      const code = (err as SwitchboardError).code;
      if (code !== "NOT_FOUND" && code !== "DISCONNECTED") throw err;
    }
  }

  /** The members, in join order. */
  async members(opts?: RequestOptions): Promise<ServerMember[]> {
    const f = await this.client.request("room:members", { room: this.name }, opts);
    return f.members as ServerMember[];
  }

  /**
   * Send to the other members. With `ack` (default) it resolves with the delivered
   * count; `ack: false` is fire-and-forget (errors arrive on the client's `error`).
   */
  async send(data?: unknown, opts: RequestOptions & { event?: string; ack?: boolean } = {}): Promise<{ delivered: number } | void> {
    const fields: Record<string, unknown> = { room: this.name };
    if (opts.event !== undefined) fields.event = opts.event;
    if (data !== undefined) fields.data = data;
    if (opts.ack === false) return this.client.notify("room:message", fields);
    const f = await this.client.request("room:message", { ...fields, ack: true }, opts);
    return { delivered: Number(f.delivered) };
  }

  /** @internal a push for this room. */
  _onPush(f: Record<string, unknown>): void {
    if (f.type === "room:message") this.emit("message", f as unknown as RoomMessage);
    else if (f.type === "room:joined") this.emit("memberJoined", { room: this.name, member: f.member as ServerMember });
    else if (f.type === "room:left") this.emit("memberLeft", { room: this.name, clientId: String(f.clientId) });
  }

  /** @internal rejoin after a reconnect. */
  async _onConnected(): Promise<void> {
    if (!this.joinedWanted) return;
    try {
      await this.join({ queue: false });
    } catch (err) {
      const e = err as SwitchboardError;
      if (e.code === "DISCONNECTED" || e.code === "CLIENT_CLOSED") return;
      this.joinedWanted = false;
      this.emit("error", e);
    }
  }

  /** @internal */
  _onDisconnected(): void {
    this.isMember = false;
  }
}
