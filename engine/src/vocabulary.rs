//! The protocol's vocabulary that config, wire types and the engine all name: guard
//! actions, change kinds, route codecs. A leaf module (it imports nothing of the
//! crate), re-exported where each word is used ([`crate::config`], [`crate::guard`]).

use serde::{Deserialize, Serialize};

/// The actions a guard can be attached to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GuardAction {
    /// Subscribing to changes (`user`, `filter`).
    Subscribe,
    /// Listing records (`user`, `filter`).
    List,
    /// Reading one record (`user`, `id`; a forced filter is checked against the record).
    Get,
    /// Creating a record (`user`, `data`; a forced filter must match `data`).
    Create,
    /// Changing a record (`user`, `id`, `data`, `record` = the stored record).
    Update,
    /// Removing a record (`user`, `id`, `record`).
    Delete,
    /// Every outgoing record: replies and events (`user`, `record`).
    Read,
}

impl GuardAction {
    /// The config / wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            GuardAction::Subscribe => "subscribe",
            GuardAction::List => "list",
            GuardAction::Get => "get",
            GuardAction::Create => "create",
            GuardAction::Update => "update",
            GuardAction::Delete => "delete",
            GuardAction::Read => "read",
        }
    }
}

/// The change events a resource can emit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    /// A record was created.
    Insert,
    /// A record was changed.
    Update,
    /// A record was removed.
    Delete,
}

impl ChangeKind {
    /// All kinds, in wire order.
    pub const ALL: [ChangeKind; 3] = [ChangeKind::Insert, ChangeKind::Update, ChangeKind::Delete];

    /// The wire name (`insert`, `update`, `delete`).
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Insert => "insert",
            ChangeKind::Update => "update",
            ChangeKind::Delete => "delete",
        }
    }

    pub(crate) fn bit(self) -> u8 {
        match self {
            ChangeKind::Insert => 1,
            ChangeKind::Update => 2,
            ChangeKind::Delete => 4,
        }
    }
}

/// The codecs a route can speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub enum CodecKind {
    /// Protocol v1: JSON text frames `{type, ...}` (the s3db.js client protocol).
    #[default]
    Json,
    /// The `{event, data}` envelope (YektaYar's native WebSocket protocol), see
    /// [`crate::protocol::envelope`].
    Event,
    /// Socket.IO v5 over Engine.IO v4 (WebSocket transport), see
    /// [`crate::protocol::socketio`].
    #[serde(rename = "socket.io")]
    SocketIo,
    /// A bare Engine.IO v4 session (WebSocket transport): each message packet is the
    /// application message `message` (text, or `{"$binary": base64}`), see
    /// [`crate::protocol::socketio::EngineIoCodec`].
    #[serde(rename = "engine.io")]
    EngineIo,
}

impl CodecKind {
    /// Whether the codec runs an Engine.IO session (Socket.IO or bare Engine.IO).
    pub fn is_engine_io(self) -> bool {
        matches!(self, CodecKind::SocketIo | CodecKind::EngineIo)
    }
}
