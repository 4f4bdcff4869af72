// Types of the Cloudflare adapter (js/cloudflare.js). Import it from a Worker module.
import type { Host, GuardCall, Handlers, GuardDecision } from "./index.js";
export { Host, loadDeployment } from "./index.js";

export declare const ATTACHMENT_SNAPSHOT_LIMIT: number;

/** Records in Durable Object storage (`rec:<resource>:<id>` → JSON text). */
export declare class DurableObjectStore {
  constructor(storage: any);
  apply(request: any): Promise<object>;
}

/**
 * The Durable Object running the engine with the WebSocket Hibernation API.
 * Subclass it in the Worker module; define `guard(call)` for async host guards.
 */
export declare class SwitchboardDurableObject {
  constructor(ctx: any, env: any);
  guard?(call: GuardCall): GuardDecision | Promise<GuardDecision>;
  /** Application handlers (PROTOCOL.md §20). */
  handlers?: Handlers;
  /**
   * Whether sockets use the Hibernation API: true unless the SWITCHBOARD_HIBERNATION
   * binding is "0". False accepts every socket with `accept()` (host-js/README.md,
   * "Closing silent sockets on workerd").
   */
  readonly hibernation: boolean;
  ensure(): Host | Promise<Host>;
  fetch(request: Request): Promise<Response>;
  webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void>;
  webSocketClose(ws: WebSocket, code: number, reason: string, wasClean: boolean): Promise<void>;
  webSocketError(ws: WebSocket, error: unknown): Promise<void>;
  alarm(): Promise<void>;
}

/**
 * The Worker: /healthz at the edge, everything else to the Durable Object `name`.
 * `relay`: the Worker holds the client's socket and relays its frames to and from the
 * Durable Object's (also when the SWITCHBOARD_RELAY binding is "1"; host-js/README.md,
 * "Closing silent sockets on workerd").
 */
export declare function createWorker(options?: { binding?: string; name?: string; relay?: boolean }): {
  fetch(request: Request, env: any): Promise<Response>;
};
