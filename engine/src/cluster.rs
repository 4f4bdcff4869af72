//! Cluster messages: what one node's engine tells the others, and what the host feeds
//! back (PROTOCOL.md §22, "Cluster").
//!
//! Off by default. A host that joins a cluster calls
//! [`Engine::enable_cluster`](crate::Engine::enable_cluster) with its node id (the host
//! draws it; the engine stays deterministic), carries every
//! [`Action::Cluster`](crate::Action::Cluster) message to the other nodes (Redis pub/sub
//! for the native host), and feeds what arrives as
//! [`Input::Cluster`](crate::Input::Cluster). The receiving engine delivers each message
//! to its own connections exactly as if it had happened locally: namespaces, `read`
//! guards, filters and protected fields are applied on the receiving node.
//!
//! Every message names its origin `node`; an engine ignores its own messages, so a
//! broker that echoes a publication back to its publisher causes no loop.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::ChangeKind;
use crate::protocol::MemberView;

/// A message between the engines of a cluster. Serialized as JSON with a `kind` tag.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum ClusterMessage {
    /// A node (re)joined the bus: every other node answers with its [`ClusterMessage::Snapshot`].
    #[serde(rename_all = "camelCase")]
    Hello {
        /// Origin node.
        node: String,
    },
    /// The complete cluster-visible state of a node: its clients, channel members and
    /// room members. Replaces whatever the receiver knew about that node (join/leave
    /// pushes for the difference).
    #[serde(rename_all = "camelCase")]
    Snapshot {
        /// Origin node.
        node: String,
        /// Its connected clients.
        clients: Vec<RemoteClient>,
        /// Its members of channels with presence or join/leave notices.
        members: Vec<RemoteMember>,
        /// Its room memberships.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        rooms: Vec<RemoteRoomMember>,
    },
    /// A channel publication (client `publish` or server-API `publish`).
    #[serde(rename_all = "camelCase")]
    Publish {
        /// Origin node.
        node: String,
        /// The publisher's tenant.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tenant: Option<String>,
        /// Channel name (unscoped).
        channel: String,
        /// Publisher's client id (`server` for the server API).
        from: String,
        /// Payload.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        data: Option<Value>,
        /// ISO-8601 time of the publication on its origin node.
        timestamp: String,
        /// Whether subscribers of the resource of the same name get it too.
        #[serde(default)]
        resource_too: bool,
    },
    /// A direct message to a client connected to another node.
    #[serde(rename_all = "camelCase")]
    Direct {
        /// Origin node.
        node: String,
        /// Node the recipient is connected to.
        to_node: String,
        /// The sender's tenant.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tenant: Option<String>,
        /// Sender's client id.
        from: String,
        /// Recipient's client id.
        to: String,
        /// Payload.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        data: Option<Value>,
        /// ISO-8601 time of sending on the origin node.
        timestamp: String,
    },
    /// A resource change event (the record before protected fields are removed: the
    /// receiving node applies guards, filters and `protected` for its subscribers).
    #[serde(rename_all = "camelCase")]
    Change {
        /// Origin node.
        node: String,
        /// Resource name.
        resource: String,
        /// Kind of change.
        event: ChangeKind,
        /// The record (the removed record for a delete).
        record: Value,
        /// The record before an update.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        previous: Option<Value>,
    },
    /// A client connected to the origin node, or its user changed (connect hook,
    /// `refresh`).
    #[serde(rename_all = "camelCase")]
    ClientUp {
        /// Origin node.
        node: String,
        /// The client.
        client: RemoteClient,
    },
    /// A client of the origin node disconnected.
    #[serde(rename_all = "camelCase")]
    ClientDown {
        /// Origin node.
        node: String,
        /// Its client id.
        client_id: String,
    },
    /// A server-API command for every node (`broadcast`, `broadcastToResource`,
    /// `sendToUser`) or for the node holding a client (`sendTo`, `disconnect`).
    #[serde(rename_all = "camelCase")]
    Command {
        /// Origin node.
        node: String,
        /// The node that must run it (None: every other node).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        to_node: Option<String>,
        /// The command.
        command: crate::Command,
    },
    /// A client of the origin node subscribed to a channel with presence or join/leave.
    #[serde(rename_all = "camelCase")]
    Join {
        /// Origin node.
        node: String,
        /// The membership.
        member: RemoteMember,
    },
    /// A client of the origin node left such a channel (unsubscribe or disconnect).
    #[serde(rename_all = "camelCase")]
    Leave {
        /// Origin node.
        node: String,
        /// The membership that ended.
        member: RemoteMember,
    },
    /// A client of the origin node joined a room.
    #[serde(rename_all = "camelCase")]
    RoomJoin {
        /// Origin node.
        node: String,
        /// The membership.
        member: RemoteRoomMember,
    },
    /// A client of the origin node left a room (`leave`, removed, disconnected, room
    /// deleted).
    #[serde(rename_all = "camelCase")]
    RoomLeave {
        /// Origin node.
        node: String,
        /// The membership that ended.
        member: RemoteRoomMember,
    },
    /// A `room:message` of a member of the origin node, for the members of the other
    /// nodes (sent only while the origin knows members of the room elsewhere).
    #[serde(rename_all = "camelCase")]
    RoomMessage {
        /// Origin node.
        node: String,
        /// The room's tenant.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tenant: Option<String>,
        /// Room name (unscoped).
        room: String,
        /// Sender's client id.
        from: String,
        /// Application event name.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        event: Option<String>,
        /// Payload.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        data: Option<Value>,
        /// ISO-8601 time of sending on the origin node.
        timestamp: String,
    },
    /// For the host, not the other nodes: order a publication of a stream (a channel
    /// with history) in the shared broker. The host appends it atomically (next offset
    /// of the stream, its epoch, retention per `stream`) and carries the result to every
    /// node, this one included, as [`ClusterMessage::Sequenced`].
    #[serde(rename_all = "camelCase")]
    Append {
        /// Origin node.
        node: String,
        /// The stream.
        stream: StreamSpec,
        /// The publication (`offset` 0 and `epoch` empty: the broker assigns them).
        publication: StreamPublication,
    },
    /// A stream publication ordered by the shared broker. Every node takes it, the
    /// publishing node too.
    Sequenced(StreamPublication),
    /// For the host, not the other nodes: read a stream from the shared broker (its
    /// position and every retained publication, creating its epoch if absent); answered
    /// with [`ClusterEvent::Fetched`].
    #[serde(rename_all = "camelCase")]
    Fetch {
        /// Origin node.
        node: String,
        /// The engine's id for the read, echoed in [`ClusterEvent::Fetched`].
        request: u64,
        /// The stream.
        stream: StreamSpec,
    },
}

/// A stream in the shared broker: its key and retention (from the channel's namespace).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StreamSpec {
    /// The stream's name: the channel, or `"\0<tenant>\0<channel>"` in a tenant's space
    /// (as the engine keys it).
    pub key: String,
    /// Publications kept.
    pub size: usize,
    /// How long a publication is kept, in milliseconds.
    pub ttl_ms: u64,
    /// How long the position is remembered after the last publication, in milliseconds.
    pub meta_ttl_ms: u64,
    /// The epoch to use if the stream does not exist (drawn by the engine).
    pub epoch: String,
}

/// A publication of a stream, as the shared broker stores and carries it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StreamPublication {
    /// The publishing node.
    pub node: String,
    /// The publishing engine's id for it, when it awaits the ordering (to answer the
    /// publisher).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<u64>,
    /// The publisher's tenant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// Channel name (unscoped).
    pub channel: String,
    /// Publisher's client id (`server` for the server API).
    pub from: String,
    /// Payload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
    /// ISO-8601 time of the publication on its origin node.
    pub timestamp: String,
    /// Whether subscribers of the resource of the same name get it too.
    #[serde(default)]
    pub resource_too: bool,
    /// The offset the broker assigned (0: not yet ordered; then absent from the JSON,
    /// which ends with the fields a broker appends: `,"offset":N,"epoch":"E"}`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub offset: u64,
    /// The stream's epoch (empty: not yet ordered).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub epoch: String,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// A stream as the shared broker holds it (the answer to [`ClusterMessage::Fetch`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FetchedStream {
    /// The stream's epoch.
    pub epoch: String,
    /// Offset of its latest publication (0: none).
    pub offset: u64,
    /// Every retained publication, oldest first.
    pub publications: Vec<StreamPublication>,
}

impl ClusterMessage {
    /// The node the message comes from.
    pub fn node(&self) -> &str {
        match self {
            ClusterMessage::Hello { node }
            | ClusterMessage::Snapshot { node, .. }
            | ClusterMessage::Publish { node, .. }
            | ClusterMessage::Direct { node, .. }
            | ClusterMessage::Change { node, .. }
            | ClusterMessage::ClientUp { node, .. }
            | ClusterMessage::ClientDown { node, .. }
            | ClusterMessage::Command { node, .. }
            | ClusterMessage::Join { node, .. }
            | ClusterMessage::Leave { node, .. }
            | ClusterMessage::RoomJoin { node, .. }
            | ClusterMessage::RoomLeave { node, .. }
            | ClusterMessage::RoomMessage { node, .. }
            | ClusterMessage::Append { node, .. }
            | ClusterMessage::Fetch { node, .. } => node,
            ClusterMessage::Sequenced(p) => &p.node,
        }
    }

    /// Whether the host must hand the message to the shared broker's stream operations
    /// ([`ClusterMessage::Append`], [`ClusterMessage::Fetch`]) rather than to the other
    /// nodes.
    pub fn is_broker_request(&self) -> bool {
        matches!(
            self,
            ClusterMessage::Append { .. } | ClusterMessage::Fetch { .. }
        )
    }
}

/// A client connected to another node (the target of direct messages).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RemoteClient {
    /// Client id.
    pub client_id: String,
    /// Its tenant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// Its user's id, when authenticated (`limits.maxConnectionsPerUser` counts the
    /// connections of every node).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Its IP address (`limits.maxConnectionsPerIp` counts the connections of every
    /// node).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
}

/// A channel membership on another node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RemoteMember {
    /// The member's tenant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// Channel name (unscoped).
    pub channel: String,
    /// The presence entry, as its own node shows it.
    pub member: MemberView,
}

/// A room membership on another node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RemoteRoomMember {
    /// The room's tenant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// Room name (unscoped).
    pub room: String,
    /// The member, as `room:joined` and `room:members` show it.
    pub member: MemberView,
}

/// What the host reports about the cluster.
#[derive(Debug, Clone, PartialEq)]
pub enum ClusterEvent {
    /// The broker is reachable (first connection or after an outage): the engine sends
    /// [`ClusterMessage::Hello`] and its [`ClusterMessage::Snapshot`], and accepts
    /// publications again.
    Connected,
    /// The broker is unreachable: publications and direct messages to other nodes are
    /// refused with `UNAVAILABLE` until [`ClusterEvent::Connected`].
    Disconnected,
    /// A message from another node (the engine ignores its own).
    Message(Box<ClusterMessage>),
    /// The answer to [`ClusterMessage::Fetch`] (an error text when the broker failed it).
    Fetched {
        /// The request's id.
        request: u64,
        /// The stream, or why it could not be read.
        result: Result<FetchedStream, String>,
    },
    /// A node stopped sending heartbeats: its clients, channel members and room members
    /// are forgotten (with `presence:leave` pushes where the namespace sends them, and
    /// `room:left` to the members of its rooms).
    NodeGone {
        /// The node.
        node: String,
    },
}
