//! Server-API commands: what a host (admin API, application code, the test control
//! channel) feeds the engine as [`crate::Input::Command`], and why one failed. The engine
//! runs them (`machine/server_api.rs`); this module holds only the wire types, so every
//! module can name them without depending on the engine.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::config::ChangeKind;
use crate::error::ErrorCode;
use crate::hostcall::StoreErrorKind;

/// A server-API command.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "camelCase")]
pub enum Command {
    /// Send `message` verbatim to every connection, or only to those whose user matches
    /// `filter` (a filter over `{id, role, scopes, ...claims}`; anonymous users never
    /// match a non-empty filter).
    #[serde(rename_all = "camelCase")]
    Broadcast {
        /// Any JSON value, sent as is.
        message: Value,
        /// Optional user filter.
        #[serde(default)]
        filter: Option<Value>,
        /// Only connections of this tenant (`routes[].tenant`); absent: every connection.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tenant: Option<String>,
    },
    /// Send `message` verbatim to one client.
    #[serde(rename_all = "camelCase")]
    SendTo {
        /// The client's `clientId`.
        client_id: String,
        /// Any JSON value, sent as is.
        message: Value,
    },
    /// Send `message` verbatim to every subscriber of a resource.
    #[serde(rename_all = "camelCase")]
    BroadcastToResource {
        /// Resource name.
        resource: String,
        /// Any JSON value, sent as is.
        message: Value,
        /// Only connections of this tenant (`routes[].tenant`); absent: every subscriber.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tenant: Option<String>,
    },
    /// Publish on a channel as the server (`from: "server"`).
    #[serde(rename_all = "camelCase")]
    Publish {
        /// Channel.
        channel: String,
        /// Payload.
        #[serde(default)]
        data: Option<Value>,
        /// The tenant whose space the name is in (`routes[].tenant`); absent: the
        /// untenanted space.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tenant: Option<String>,
    },
    /// Read a channel's history (its namespace must keep it). Result: `{"channel",
    /// "publications", "offset", "epoch"}`.
    #[serde(rename_all = "camelCase")]
    History {
        /// Channel.
        channel: String,
        /// At most this many (default and maximum: the history size).
        #[serde(default)]
        limit: Option<u64>,
        /// Only publications after this position.
        #[serde(default)]
        since: Option<crate::broker::Since>,
        /// Newest first.
        #[serde(default)]
        reverse: bool,
        /// The tenant whose space the name is in (`routes[].tenant`); absent: the
        /// untenanted space.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tenant: Option<String>,
    },
    /// Clients subscribed to a channel (its namespace must enable presence). Result:
    /// `{"channel", "clients": [{"clientId", "user"}]}`.
    #[serde(rename_all = "camelCase")]
    Presence {
        /// Channel.
        channel: String,
        /// The tenant whose space the name is in (`routes[].tenant`); absent: the
        /// untenanted space.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tenant: Option<String>,
    },
    /// Client and user counts of a channel's presence. Result: `{"channel", "clients",
    /// "users"}`.
    #[serde(rename_all = "camelCase")]
    PresenceStats {
        /// Channel.
        channel: String,
        /// The tenant whose space the name is in (`routes[].tenant`); absent: the
        /// untenanted space.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tenant: Option<String>,
    },
    /// A resource changed outside the socket (e.g. an admin write): fan the event out.
    #[serde(rename_all = "camelCase")]
    ResourceChanged {
        /// Resource name.
        resource: String,
        /// Kind of change.
        event: ChangeKind,
        /// The record (after the change; for deletes, the removed record).
        record: Value,
        /// For updates: the record before the change.
        #[serde(default)]
        previous: Option<Value>,
    },
    /// Create a record as the server: the same record shaping and validation as a
    /// client's `insert` (`id` given or generated, `createdAt`/`updatedAt` set, the
    /// resource's schema checked), then the storage call, then the change event fanned
    /// out to subscribers (filters, `events`, `read` guards and protected fields apply
    /// as for any write). The server is trusted: the resource's `auth` roles, its write
    /// guards and host guards are not consulted. Result: `{"record", "delivered"}` with
    /// the stored record (protected fields included). Answered asynchronously, after
    /// the storage call completes.
    #[serde(rename_all = "camelCase")]
    Insert {
        /// Resource name.
        resource: String,
        /// The record's fields (an `id` may be given).
        data: Map<String, Value>,
    },
    /// Change some fields of a record as the server (see [`Command::Insert`] for what
    /// applies). `id`, `createdAt` and `updatedAt` in `data` are ignored (an `id` that
    /// differs is a `VALIDATION_ERROR`); `updatedAt` is set. Result: `{"record",
    /// "delivered"}` with the record after the change.
    #[serde(rename_all = "camelCase")]
    Update {
        /// Resource name.
        resource: String,
        /// Record id.
        id: String,
        /// Fields to set.
        data: Map<String, Value>,
    },
    /// Remove a record as the server (see [`Command::Insert`] for what applies).
    /// Result: `{"record", "delivered"}` with the removed record.
    #[serde(rename_all = "camelCase")]
    Delete {
        /// Resource name.
        resource: String,
        /// Record id.
        id: String,
    },
    /// Close a client's connection (code 4001).
    #[serde(rename_all = "camelCase")]
    Disconnect {
        /// The client's `clientId`.
        client_id: String,
        /// Close reason (default "disconnected by server").
        #[serde(default)]
        reason: Option<String>,
    },
    /// Install an issuer's JWKS at run time.
    #[serde(rename_all = "camelCase")]
    SetJwks {
        /// Issuer the keys belong to.
        issuer: String,
        /// The JWKS document.
        jwks: Value,
    },
    /// Start draining: refuse new upgrades (503) and close every connection with 1001.
    #[serde(rename_all = "camelCase")]
    Shutdown {
        /// Close reason (default "server shutting down").
        #[serde(default)]
        reason: Option<String>,
    },
    /// Server info.
    ServerInfo,
    /// Connected clients.
    Clients,
    /// Rooms with their member counts (and `tenant` for a tenant's room).
    Rooms,
    /// Engine counters.
    Metrics,
    /// Send `message` verbatim to every connection of a user.
    #[serde(rename_all = "camelCase")]
    SendToUser {
        /// The user id.
        user_id: String,
        /// Any JSON value, sent as is.
        message: Value,
        /// Only connections of this tenant (`routes[].tenant`); absent: every connection of the user.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tenant: Option<String>,
    },
    /// Create (or update) a room: description, capacity and metadata. A created room
    /// exists until deleted, even without members.
    #[serde(rename_all = "camelCase")]
    CreateRoom {
        /// Room name.
        room: String,
        /// A description shown in room info.
        #[serde(default)]
        description: Option<String>,
        /// Member limit (default `rooms.maxConnections` or its override).
        #[serde(default)]
        capacity: Option<usize>,
        /// Any JSON value kept with the room.
        #[serde(default)]
        metadata: Option<Value>,
        /// The tenant whose space the name is in (`routes[].tenant`); absent: the
        /// untenanted space.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tenant: Option<String>,
    },
    /// Delete a room: every member gets `left` and leaves.
    #[serde(rename_all = "camelCase")]
    DeleteRoom {
        /// Room name.
        room: String,
        /// The tenant whose space the name is in (`routes[].tenant`); absent: the
        /// untenanted space.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tenant: Option<String>,
    },
    /// Put a client in a room (room permissions are not consulted; limits and capacity
    /// are). The client gets `joined`, the other members `room:joined`.
    #[serde(rename_all = "camelCase")]
    JoinRoom {
        /// The client.
        client_id: String,
        /// Room name.
        room: String,
    },
    /// Take a client out of a room: it gets `left`, the others `room:left`.
    #[serde(rename_all = "camelCase")]
    LeaveRoom {
        /// The client.
        client_id: String,
        /// Room name.
        room: String,
    },
    /// Send `message` verbatim to every member of a room (except `exceptClientId`).
    #[serde(rename_all = "camelCase")]
    SendToRoom {
        /// Room name.
        room: String,
        /// Any JSON value, sent as is.
        message: Value,
        /// A member not to send it to (e.g. the sender).
        #[serde(default)]
        except_client_id: Option<String>,
        /// The tenant whose space the name is in (`routes[].tenant`); absent: the
        /// untenanted space.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tenant: Option<String>,
    },
    /// A room: members, capacity, description, metadata.
    #[serde(rename_all = "camelCase")]
    RoomInfo {
        /// Room name.
        room: String,
        /// The tenant whose space the name is in (`routes[].tenant`); absent: the
        /// untenanted space.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tenant: Option<String>,
    },
    /// One client: user, route, params, tenant, metadata, rooms, subscriptions.
    #[serde(rename_all = "camelCase")]
    ClientInfo {
        /// The client.
        client_id: String,
    },
    /// Emit a Socket.IO event that asks the client for an acknowledgement
    /// (`2<id>["event", ...]`, Socket.IO's `socket.timeout(ms).emitWithAck`) and wait
    /// for it. Result, once the client acknowledges (`3<id>[...]`): `{"clientId",
    /// "data"}` with the ack's arguments (none: `null`; several: `{"$args": [...]}`).
    /// Errors: `NOT_FOUND` (no such client on this node, not connected to the
    /// namespace, or disconnected before acknowledging), `INVALID_MESSAGE` (not a
    /// Socket.IO client, invalid event or timeout), `LIMIT_EXCEEDED` (too many acks
    /// pending on the connection), `TIMEOUT` (no ack in time). Answered
    /// asynchronously, like the resource writes.
    #[serde(rename_all = "camelCase")]
    EmitWithAck {
        /// The client (a connection on a `codec = "socket.io"` route).
        client_id: String,
        /// Event name.
        event: String,
        /// The event's argument (`{"$args": [...]}` for several; absent: none).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        data: Option<Value>,
        /// Namespace (default `/`); the client must be connected to it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        namespace: Option<String>,
        /// How long to wait (default `limits.hostCallTimeoutMs`, at most one hour).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timeout_ms: Option<u64>,
    },
}

/// Why a command failed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommandError {
    /// Code, from the same table as error frames.
    pub code: ErrorCode,
    /// What went wrong.
    pub message: String,
    /// For the resource writes: how the store classified its failure, when the error
    /// came from the storage call (e.g. `conflict` for an insert whose id exists, which
    /// an HTTP host may answer with 409). Absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<StoreErrorKind>,
}
