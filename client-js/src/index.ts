/**
 * `@switchboard/client`: the client SDK of Switchboard (protocol v1).
 *
 * @packageDocumentation
 */
export { Client, CLIENT_CLOSE } from "./client.js";
export type {
  ClientOptions,
  ClientEvents,
  ConnectionState,
  ConnectedInfo,
  DirectMessage,
  Publication,
  RequestOptions,
  ResourceEvent,
  TokenReason,
} from "./client.js";
export { BaseSubscription, ChannelSubscription, ResourceSubscription } from "./subscription.js";
export type {
  ChannelEvents,
  HistoryOptions,
  ResourceSubscribeOptions,
  ResourceSubscriptionEvents,
  SubscribedContext,
  SubscriptionEvents,
  SubscriptionState,
} from "./subscription.js";
export { Resource } from "./resource.js";
export type { ListOptions, Page, RecordData } from "./resource.js";
export { Room } from "./room.js";
export type { RoomEvents, RoomMessage } from "./room.js";
export {
  SwitchboardError,
  ServerError,
  RequestTimeoutError,
  DisconnectedError,
  UnauthorizedError,
} from "./errors.js";
export type { ClientErrorCode } from "./errors.js";
export { Emitter } from "./emitter.js";
export type { Listener } from "./emitter.js";
export { backoffDelay } from "./backoff.js";
export type { BackoffOptions } from "./backoff.js";
export { matchesFilter, valuesEqual } from "./filter.js";
export type { Filter } from "./filter.js";
export { tokenExpiry } from "./token.js";
export type { WebSocketConstructor, WebSocketLike } from "./transport.js";
export * from "./protocol.gen.js";

/** Aliases of the generated protocol types under their everyday names. */
export type { ServerErrorCode as ErrorCode, ServerUser as User, ServerMember as Member } from "./protocol.gen.js";
