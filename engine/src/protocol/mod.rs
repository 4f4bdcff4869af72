//! Wire protocol v1: the typed client requests and server messages.
//!
//! These types are codec-independent. [`codec`] turns frames into [`Request`]s and
//! [`ServerMessage`]s into frames; the engine only ever sees the typed values.

pub mod codec;
pub mod envelope;
mod head;
pub mod socketio;

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use crate::broker::{Publication, Since};
use crate::config::ChangeKind;
use crate::error::ErrorCode;

/// A stream's position in `subscribed`, and the recovery outcome when `since` was sent.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StreamState {
    /// Whether every publication after `since` is in `publications` (only with `since`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recovered: Option<bool>,
    /// The stream's current offset (channels and resources with history).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    /// The stream's epoch (channels and resources with history).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub epoch: Option<Arc<str>>,
    /// The missed publications (channels) or change events (resources), oldest first
    /// (only with `since`; empty when not recovered).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub publications: Option<Vec<Publication>>,
}

/// The protocol version announced in the welcome frame.
pub const PROTOCOL_VERSION: u32 = 1;

/// The subprotocol name clients may offer in `Sec-WebSocket-Protocol`.
pub const SUBPROTOCOL: &str = "switchboard.v1";

/// Every client message type, as spelled on the wire.
pub const CLIENT_TYPES: &[&str] = &[
    "ping",
    "subscribe",
    "unsubscribe",
    "publish",
    "get",
    "list",
    "insert",
    "update",
    "delete",
    "join",
    "leave",
    "room:message",
    "room:members",
    "direct",
    "channel:message",
    "refresh",
    "history",
    "presence",
    "presence:stats",
];

/// An inbound frame as the host received it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InFrame<'a> {
    /// A text frame.
    Text(&'a str),
    /// A binary frame (JSON inside is accepted like text, as s3db.js does).
    Binary(&'a [u8]),
}

impl InFrame<'_> {
    /// Length in bytes.
    pub fn len(&self) -> usize {
        match self {
            InFrame::Text(t) => t.len(),
            InFrame::Binary(b) => b.len(),
        }
    }

    /// Whether the frame is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// An outbound frame. Cloning shares the bytes (a refcount), so fan-out serializes once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "data", rename_all = "lowercase")]
pub enum Frame {
    /// A text frame.
    Text(Arc<str>),
    /// A binary frame.
    Binary(Arc<[u8]>),
}

impl Frame {
    /// The text of a text frame.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Frame::Text(t) => Some(t),
            Frame::Binary(_) => None,
        }
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        match self {
            Frame::Text(t) => t.len(),
            Frame::Binary(b) => b.len(),
        }
    }

    /// Whether the frame is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A decoded client request: the message plus its `requestId` (any JSON value, echoed verbatim).
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The `requestId` exactly as sent (`0`, `""` and `null` included); `None` if absent.
    pub request_id: Option<Value>,
    /// The message.
    pub message: ClientMessage,
}

/// Client → server messages.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type")]
pub enum ClientMessage {
    /// Application-level ping; answered with `pong`.
    #[serde(rename = "ping")]
    Ping,
    /// Subscribe to a resource's changes (with optional filter and event list) or to a channel.
    #[serde(rename = "subscribe")]
    Subscribe {
        /// Resource name (exactly one of `resource` / `channel`).
        #[serde(default)]
        resource: Option<String>,
        /// Channel name.
        #[serde(default)]
        channel: Option<String>,
        /// Filter over record fields.
        #[serde(default)]
        filter: Option<Value>,
        /// Events wanted; default all the resource emits.
        #[serde(default)]
        events: Option<Vec<ChangeKind>>,
        /// Recover what was published after this position (channels and resources with
        /// history).
        #[serde(default)]
        since: Option<Since>,
    },
    /// Remove subscriptions: by `subscriptionId`, by resource + filter, or a channel.
    #[serde(rename = "unsubscribe")]
    Unsubscribe {
        /// Exact subscription to remove.
        #[serde(default, rename = "subscriptionId")]
        subscription_id: Option<String>,
        /// Resource whose subscriptions to remove.
        #[serde(default)]
        resource: Option<String>,
        /// Channel to leave.
        #[serde(default)]
        channel: Option<String>,
        /// With `resource`: remove only subscriptions whose filter equals this (as values).
        #[serde(default)]
        filter: Option<Value>,
    },
    /// Publish to a channel.
    #[serde(rename = "publish")]
    Publish {
        /// Channel name.
        channel: String,
        /// Payload delivered as `data`.
        #[serde(default)]
        message: Option<Value>,
    },
    /// Read one record.
    #[serde(rename = "get")]
    Get {
        /// Resource name.
        resource: String,
        /// Record id.
        id: String,
    },
    /// Read a page of records.
    #[serde(rename = "list")]
    List {
        /// Resource name.
        resource: String,
        /// Filter over record fields.
        #[serde(default)]
        filter: Option<Value>,
        /// Page size (default and maximum: the resource's `maxListLimit`).
        #[serde(default)]
        limit: Option<u64>,
        /// Opaque cursor from a previous page.
        #[serde(default)]
        cursor: Option<String>,
    },
    /// Create a record.
    #[serde(rename = "insert")]
    Insert {
        /// Resource name.
        resource: String,
        /// The record's fields (an `id` may be given).
        data: serde_json::Map<String, Value>,
    },
    /// Change some fields of a record.
    #[serde(rename = "update")]
    Update {
        /// Resource name.
        resource: String,
        /// Record id.
        id: String,
        /// Fields to change.
        data: serde_json::Map<String, Value>,
    },
    /// Remove a record.
    #[serde(rename = "delete")]
    Delete {
        /// Resource name.
        resource: String,
        /// Record id.
        id: String,
    },
    /// Join a room (`channel` is accepted as an alias of `room`).
    #[serde(rename = "join")]
    Join {
        /// Room name.
        #[serde(alias = "channel")]
        room: String,
    },
    /// Leave a room.
    #[serde(rename = "leave")]
    Leave {
        /// Room name.
        #[serde(alias = "channel")]
        room: String,
    },
    /// Send to the other members of a room.
    #[serde(rename = "room:message", alias = "channel:message")]
    RoomMessage {
        /// Room name.
        #[serde(alias = "channel")]
        room: String,
        /// Payload.
        #[serde(default)]
        data: Option<Value>,
        /// Optional application event name.
        #[serde(default)]
        event: Option<String>,
        /// Ask for a `sent` acknowledgement with the delivered count.
        #[serde(default)]
        ack: bool,
    },
    /// List a room's members (members only).
    #[serde(rename = "room:members")]
    RoomMembers {
        /// Room name.
        #[serde(alias = "channel")]
        room: String,
    },
    /// Send directly to one client.
    #[serde(rename = "direct")]
    Direct {
        /// Recipient `clientId`.
        to: String,
        /// Payload.
        #[serde(default)]
        data: Option<Value>,
        /// Ask for a `sent` acknowledgement.
        #[serde(default)]
        ack: bool,
    },
    /// Replace the connection's token before it expires (same subject); answered with
    /// `refreshed`.
    #[serde(rename = "refresh")]
    Refresh {
        /// The new token (a JWT, or an API key of the same user).
        token: String,
    },
    /// Read a channel's history; answered with `history`.
    #[serde(rename = "history")]
    History {
        /// Channel name (its namespace must keep history).
        channel: String,
        /// At most this many publications (default and maximum: the history size).
        #[serde(default)]
        limit: Option<u64>,
        /// Only publications after this position.
        #[serde(default)]
        since: Option<Since>,
        /// Newest first.
        #[serde(default)]
        reverse: bool,
    },
    /// List the clients subscribed to a channel; answered with `presence`.
    #[serde(rename = "presence")]
    Presence {
        /// Channel name (its namespace must enable presence).
        channel: String,
    },
    /// Count the clients and users subscribed to a channel; answered with `presence:stats`.
    #[serde(rename = "presence:stats")]
    PresenceStats {
        /// Channel name.
        channel: String,
    },
}

impl ClientMessage {
    /// The wire type name.
    pub fn type_name(&self) -> &'static str {
        match self {
            ClientMessage::Ping => "ping",
            ClientMessage::Subscribe { .. } => "subscribe",
            ClientMessage::Unsubscribe { .. } => "unsubscribe",
            ClientMessage::Publish { .. } => "publish",
            ClientMessage::Get { .. } => "get",
            ClientMessage::List { .. } => "list",
            ClientMessage::Insert { .. } => "insert",
            ClientMessage::Update { .. } => "update",
            ClientMessage::Delete { .. } => "delete",
            ClientMessage::Join { .. } => "join",
            ClientMessage::Leave { .. } => "leave",
            ClientMessage::RoomMessage { .. } => "room:message",
            ClientMessage::RoomMembers { .. } => "room:members",
            ClientMessage::Direct { .. } => "direct",
            ClientMessage::Refresh { .. } => "refresh",
            ClientMessage::History { .. } => "history",
            ClientMessage::Presence { .. } => "presence",
            ClientMessage::PresenceStats { .. } => "presence:stats",
        }
    }
}

/// A presence entry: a room member (`room:members`, `room:joined`) or a channel
/// subscriber (`presence`, `presence:join`, `presence:leave`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MemberView {
    /// The member's client id.
    pub client_id: String,
    /// The member's public user view, or null.
    pub user: Value,
    /// The connection's public info (its user's `info` claim), when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub info: Option<Value>,
}

/// Server → client messages. Field order is wire order; `type` comes first.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type")]
pub enum ServerMessage {
    /// Welcome frame, sent once right after the upgrade.
    #[serde(rename = "connected", rename_all = "camelCase")]
    Connected {
        /// The connection's id (target of direct messages).
        client_id: String,
        /// Public user view, or null when anonymous.
        user: Value,
        /// ISO-8601 time of connection.
        timestamp: String,
        /// Protocol version (1).
        protocol_version: u32,
    },
    /// Answer to `ping`.
    #[serde(rename = "pong", rename_all = "camelCase")]
    Pong {
        /// Server time, epoch milliseconds.
        timestamp: u64,
        /// Echoed request id.
        #[serde(skip_serializing_if = "Option::is_none")]
        request_id: Option<Value>,
    },
    /// Answer to `subscribe`.
    #[serde(rename = "subscribed", rename_all = "camelCase")]
    Subscribed {
        /// Id to unsubscribe exactly this subscription.
        subscription_id: String,
        /// Resource subscribed to.
        #[serde(skip_serializing_if = "Option::is_none")]
        resource: Option<String>,
        /// Channel subscribed to.
        #[serde(skip_serializing_if = "Option::is_none")]
        channel: Option<String>,
        /// The filter as sent.
        #[serde(skip_serializing_if = "Option::is_none")]
        filter: Option<Value>,
        /// Events that will be delivered (resources only).
        #[serde(skip_serializing_if = "Option::is_none")]
        events: Option<Vec<ChangeKind>>,
        /// Stream position and recovery outcome (channels with history, or `since` sent).
        #[serde(flatten, skip_serializing_if = "Option::is_none")]
        stream: Option<StreamState>,
        /// Echoed request id.
        #[serde(skip_serializing_if = "Option::is_none")]
        request_id: Option<Value>,
    },
    /// Answer to `unsubscribe`.
    #[serde(rename = "unsubscribed", rename_all = "camelCase")]
    Unsubscribed {
        /// The subscriptions removed.
        subscription_ids: Vec<String>,
        /// Resource, if the request named one.
        #[serde(skip_serializing_if = "Option::is_none")]
        resource: Option<String>,
        /// Channel, if the request named one.
        #[serde(skip_serializing_if = "Option::is_none")]
        channel: Option<String>,
        /// Filter, if the request named one.
        #[serde(skip_serializing_if = "Option::is_none")]
        filter: Option<Value>,
        /// Echoed request id.
        #[serde(skip_serializing_if = "Option::is_none")]
        request_id: Option<Value>,
    },
    /// A resource change pushed to subscribers.
    #[serde(rename = "event")]
    Event {
        /// `insert`, `update` or `delete`.
        event: ChangeKind,
        /// Resource name.
        resource: String,
        /// The record (update: with `$before`/`$after`; delete: the old record).
        data: Value,
        /// ISO-8601 time of the change.
        timestamp: String,
        /// Position of the change in the resource's stream (resources with history).
        #[serde(skip_serializing_if = "Option::is_none")]
        offset: Option<u64>,
        /// The stream's epoch (with `offset`).
        #[serde(skip_serializing_if = "Option::is_none")]
        epoch: Option<Arc<str>>,
    },
    /// Answer to `get` (a record) and `list` (an array plus `cursor`).
    #[serde(rename = "data", rename_all = "camelCase")]
    Data {
        /// Resource name.
        resource: String,
        /// Record or records.
        data: Value,
        /// Next-page cursor (list only; null on the last page).
        #[serde(skip_serializing_if = "Option::is_none")]
        cursor: Option<Value>,
        /// Echoed request id.
        #[serde(skip_serializing_if = "Option::is_none")]
        request_id: Option<Value>,
    },
    /// Answer to `insert`.
    #[serde(rename = "inserted", rename_all = "camelCase")]
    Inserted {
        /// Resource name.
        resource: String,
        /// The stored record.
        data: Value,
        /// Echoed request id.
        #[serde(skip_serializing_if = "Option::is_none")]
        request_id: Option<Value>,
    },
    /// Answer to `update`.
    #[serde(rename = "updated", rename_all = "camelCase")]
    Updated {
        /// Resource name.
        resource: String,
        /// The record after the update.
        data: Value,
        /// Echoed request id.
        #[serde(skip_serializing_if = "Option::is_none")]
        request_id: Option<Value>,
    },
    /// Answer to `delete`.
    #[serde(rename = "deleted", rename_all = "camelCase")]
    Deleted {
        /// Resource name.
        resource: String,
        /// Id of the removed record.
        id: String,
        /// Echoed request id.
        #[serde(skip_serializing_if = "Option::is_none")]
        request_id: Option<Value>,
    },
    /// Answer to `publish`.
    #[serde(rename = "published", rename_all = "camelCase")]
    Published {
        /// Channel published to.
        channel: String,
        /// Number of connections the message was sent to.
        delivered: usize,
        /// Echoed request id.
        #[serde(skip_serializing_if = "Option::is_none")]
        request_id: Option<Value>,
    },
    /// A channel message pushed to subscribers.
    #[serde(rename = "message")]
    Message {
        /// Channel.
        channel: String,
        /// Sender `clientId` (`server` for server-side publishes).
        from: String,
        /// Payload; omitted when the publisher sent none.
        #[serde(skip_serializing_if = "Option::is_none")]
        data: Option<Value>,
        /// ISO-8601 time.
        timestamp: String,
        /// Position in the channel's stream (channels with history).
        #[serde(skip_serializing_if = "Option::is_none")]
        offset: Option<u64>,
        /// The stream's epoch (with `offset`).
        #[serde(skip_serializing_if = "Option::is_none")]
        epoch: Option<Arc<str>>,
    },
    /// Answer to `join`.
    #[serde(rename = "joined", rename_all = "camelCase")]
    Joined {
        /// Room name.
        room: String,
        /// Members after joining.
        members: usize,
        /// Echoed request id.
        #[serde(skip_serializing_if = "Option::is_none")]
        request_id: Option<Value>,
    },
    /// Answer to `leave`.
    #[serde(rename = "left", rename_all = "camelCase")]
    Left {
        /// Room name.
        room: String,
        /// Echoed request id.
        #[serde(skip_serializing_if = "Option::is_none")]
        request_id: Option<Value>,
    },
    /// Presence: someone joined a room you are in.
    #[serde(rename = "room:joined", rename_all = "camelCase")]
    RoomJoined {
        /// Room name.
        room: String,
        /// The member who joined.
        member: MemberView,
    },
    /// Presence: someone left a room you are in (or disconnected).
    #[serde(rename = "room:left", rename_all = "camelCase")]
    RoomLeft {
        /// Room name.
        room: String,
        /// The member's client id.
        client_id: String,
    },
    /// A room message pushed to the other members.
    #[serde(rename = "room:message", rename_all = "camelCase")]
    RoomMessage {
        /// Room name.
        room: String,
        /// Sender `clientId`.
        from: String,
        /// Application event name, if the sender gave one.
        #[serde(skip_serializing_if = "Option::is_none")]
        event: Option<String>,
        /// Payload.
        #[serde(skip_serializing_if = "Option::is_none")]
        data: Option<Value>,
        /// ISO-8601 time.
        timestamp: String,
    },
    /// Answer to `room:members`.
    #[serde(rename = "room:members", rename_all = "camelCase")]
    RoomMembers {
        /// Room name.
        room: String,
        /// Members in join order.
        members: Vec<MemberView>,
        /// Echoed request id.
        #[serde(skip_serializing_if = "Option::is_none")]
        request_id: Option<Value>,
    },
    /// Acknowledgement of a `room:message` or `direct` sent with `ack: true`.
    #[serde(rename = "sent", rename_all = "camelCase")]
    Sent {
        /// Number of connections the message was sent to.
        delivered: usize,
        /// Echoed request id.
        #[serde(skip_serializing_if = "Option::is_none")]
        request_id: Option<Value>,
    },
    /// A direct message from another client.
    #[serde(rename = "direct", rename_all = "camelCase")]
    Direct {
        /// Sender `clientId`.
        from: String,
        /// Payload.
        #[serde(skip_serializing_if = "Option::is_none")]
        data: Option<Value>,
        /// ISO-8601 time.
        timestamp: String,
    },
    /// Answer to `refresh`: the connection now runs on the new token.
    #[serde(rename = "refreshed", rename_all = "camelCase")]
    Refreshed {
        /// The public user view built from the new token.
        user: Value,
        /// ISO-8601 time of the new token's `exp`; null when it has none (or
        /// `expireConnections` is off): the connection then no longer expires.
        expires_at: Option<String>,
        /// Echoed request id.
        #[serde(skip_serializing_if = "Option::is_none")]
        request_id: Option<Value>,
    },
    /// Push: the connection's token expires soon; send `refresh` before `expiresAt`
    /// (plus the server's leeway) or the connection is closed with 4401.
    #[serde(rename = "token:expiring", rename_all = "camelCase")]
    TokenExpiring {
        /// ISO-8601 time of the token's `exp`.
        expires_at: String,
    },
    /// Answer to `history`.
    #[serde(rename = "history", rename_all = "camelCase")]
    History {
        /// Channel.
        channel: String,
        /// Publications (`{offset, from, data, timestamp}`), oldest first unless `reverse`.
        publications: Vec<Publication>,
        /// The stream's current offset.
        offset: u64,
        /// The stream's epoch.
        epoch: Arc<str>,
        /// Echoed request id.
        #[serde(skip_serializing_if = "Option::is_none")]
        request_id: Option<Value>,
    },
    /// The answer of an application message's handler.
    #[serde(rename = "reply", rename_all = "camelCase")]
    Reply {
        /// Echoed request id.
        #[serde(skip_serializing_if = "Option::is_none")]
        request_id: Option<Value>,
        /// What the handler replied (any JSON value).
        data: Value,
    },
    /// An error chosen by application code (a handler, hook or interceptor): its code is
    /// a documented one or the application's own (`[A-Z][A-Z0-9_]*`).
    #[serde(rename = "error", rename_all = "camelCase")]
    AppError {
        /// The code.
        code: String,
        /// The application's message.
        message: String,
        /// Echoed request id.
        #[serde(skip_serializing_if = "Option::is_none")]
        request_id: Option<Value>,
    },
    /// Answer to `presence`.
    #[serde(rename = "presence", rename_all = "camelCase")]
    Presence {
        /// Channel.
        channel: String,
        /// Subscribed clients, in subscription order.
        clients: Vec<MemberView>,
        /// Echoed request id.
        #[serde(skip_serializing_if = "Option::is_none")]
        request_id: Option<Value>,
    },
    /// Answer to `presence:stats`.
    #[serde(rename = "presence:stats", rename_all = "camelCase")]
    PresenceStats {
        /// Channel.
        channel: String,
        /// Subscribed connections.
        clients: usize,
        /// Distinct authenticated users among them (anonymous clients are not users).
        users: usize,
        /// Echoed request id.
        #[serde(skip_serializing_if = "Option::is_none")]
        request_id: Option<Value>,
    },
    /// Push: a client subscribed to a channel you are subscribed to.
    #[serde(rename = "presence:join", rename_all = "camelCase")]
    PresenceJoin {
        /// Channel.
        channel: String,
        /// Who.
        member: MemberView,
    },
    /// Push: a client unsubscribed from (or disconnected from) a channel you are in.
    #[serde(rename = "presence:leave", rename_all = "camelCase")]
    PresenceLeave {
        /// Channel.
        channel: String,
        /// Who.
        member: MemberView,
    },
    /// An error answer.
    #[serde(rename = "error", rename_all = "camelCase")]
    Error {
        /// Machine-readable code.
        code: ErrorCode,
        /// Machine-readable refinement (the upgrade rejection reasons); only on
        /// answers to `refresh`.
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<&'static str>,
        /// Human-readable explanation; never contains server internals.
        message: String,
        /// Echoed request id.
        #[serde(skip_serializing_if = "Option::is_none")]
        request_id: Option<Value>,
    },
}

impl ServerMessage {
    /// The wire type name (the `type` field), e.g. for per-type counters.
    pub fn type_name(&self) -> &'static str {
        match self {
            ServerMessage::Connected { .. } => "connected",
            ServerMessage::Pong { .. } => "pong",
            ServerMessage::Subscribed { .. } => "subscribed",
            ServerMessage::Unsubscribed { .. } => "unsubscribed",
            ServerMessage::Event { .. } => "event",
            ServerMessage::Data { .. } => "data",
            ServerMessage::Inserted { .. } => "inserted",
            ServerMessage::Updated { .. } => "updated",
            ServerMessage::Deleted { .. } => "deleted",
            ServerMessage::Published { .. } => "published",
            ServerMessage::Message { .. } => "message",
            ServerMessage::Joined { .. } => "joined",
            ServerMessage::Left { .. } => "left",
            ServerMessage::RoomJoined { .. } => "room:joined",
            ServerMessage::RoomLeft { .. } => "room:left",
            ServerMessage::RoomMessage { .. } => "room:message",
            ServerMessage::RoomMembers { .. } => "room:members",
            ServerMessage::Sent { .. } => "sent",
            ServerMessage::Direct { .. } => "direct",
            ServerMessage::Refreshed { .. } => "refreshed",
            ServerMessage::TokenExpiring { .. } => "token:expiring",
            ServerMessage::History { .. } => "history",
            ServerMessage::Presence { .. } => "presence",
            ServerMessage::PresenceStats { .. } => "presence:stats",
            ServerMessage::PresenceJoin { .. } => "presence:join",
            ServerMessage::PresenceLeave { .. } => "presence:leave",
            ServerMessage::Reply { .. } => "reply",
            ServerMessage::AppError { .. } | ServerMessage::Error { .. } => "error",
        }
    }
}

/// A message pushed verbatim by the server API (`broadcast`, `sendToClient`): any JSON value.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(transparent)]
pub struct RawMessage(pub Value);
