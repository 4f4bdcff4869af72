//! The server API: commands a host (admin API, application code) feeds as inputs, and
//! the queries it can answer.
//!
//! Most commands are answered within the same [`Engine::handle`] call. The resource
//! writes ([`Command::Insert`], [`Command::Update`], [`Command::Delete`]) go through the
//! storage host call like a client's write, so their [`Action::CommandResult`] comes
//! when the host completes that call (or when it misses its deadline), and
//! [`Command::EmitWithAck`]'s when the client acknowledges (or the wait times out);
//! hosts match results to commands by `tag`.

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::{Action, Engine};
use crate::config::ChangeKind;
use crate::connection::SubTarget;
use crate::error::{close, ErrorCode};
use crate::filter::Filter;
use crate::hostcall::StoreErrorKind;
use crate::protocol::codec::Outbound;
use crate::timestamp::iso8601;
use crate::types::{ConnId, Millis};

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

pub(super) fn err(code: ErrorCode, message: impl Into<String>) -> CommandError {
    CommandError {
        code,
        message: message.into(),
        store: None,
    }
}

impl Engine {
    /// Run a command. Its [`Action::CommandResult`] is queued now, or, for the resource
    /// writes, when their storage call completes.
    pub(super) fn command(&mut self, now: Millis, tag: u64, cmd: Command) {
        let result = match cmd {
            Command::Insert { resource, data } => {
                return self.server_insert(now, tag, resource, data)
            }
            Command::Update { resource, id, data } => {
                return self.server_update(now, tag, resource, id, data)
            }
            Command::Delete { resource, id } => return self.server_delete(now, tag, resource, id),
            Command::EmitWithAck {
                client_id,
                event,
                data,
                namespace,
                timeout_ms,
            } => {
                let nsp = namespace.unwrap_or_else(|| "/".into());
                let ask = super::sio_acks::Ask {
                    tag,
                    client_id,
                    event,
                    data,
                    nsp,
                    timeout_ms,
                };
                match self.sio_emit_with_ack(now, ask) {
                    Ok(()) => return,
                    Err(e) => Err(e),
                }
            }
            other => match self.cluster_stream_command(now, tag, other) {
                Some(other) => self.cluster_command(now, other),
                None => return,
            },
        };
        self.actions
            .push_back(Action::CommandResult { tag, result });
    }

    /// The commands answered right away.
    pub(super) fn immediate_command(
        &mut self,
        now: Millis,
        cmd: Command,
    ) -> Result<Value, CommandError> {
        match cmd {
            Command::Insert { .. } | Command::Update { .. } | Command::Delete { .. } => Err(err(
                ErrorCode::InternalError,
                "resource writes are answered asynchronously",
            )),
            Command::EmitWithAck { .. } => Err(err(
                ErrorCode::InternalError,
                "emitWithAck is answered asynchronously (when the client acknowledges)",
            )),
            Command::Broadcast {
                message,
                filter,
                tenant,
            } => {
                let filter = filter
                    .as_ref()
                    .map(Filter::parse)
                    .transpose()
                    .map_err(|e| err(ErrorCode::InvalidMessage, e.0))?
                    .filter(|f| !f.is_empty());
                let recipients: Vec<(usize, ConnId)> = self
                    .conns
                    .iter()
                    .filter(|(_, c)| !c.closing)
                    .filter(|(_, c)| tenant.is_none() || c.state.tenant == tenant)
                    .filter(|(_, c)| match (&filter, &c.state.user) {
                        (None, _) => true,
                        (Some(_), None) => false,
                        (Some(f), Some(u)) => f.matches(&u.as_filter_subject()),
                    })
                    .map(|(s, c)| (s, c.id))
                    .collect();
                self.metrics.broadcasts += 1;
                let delivered = self.fanout(&recipients, Outbound::Raw(&message));
                Ok(json!({ "delivered": delivered }))
            }
            Command::SendTo { client_id, message } => {
                let slot = self
                    .by_client
                    .get(&client_id)
                    .copied()
                    .filter(|s| !self.conns[*s].closing)
                    .ok_or_else(|| {
                        err(
                            ErrorCode::NotFound,
                            format!("no connected client `{client_id}`"),
                        )
                    })?;
                let conn = self.conns[slot].id;
                let delivered = self.fanout(&[(slot, conn)], Outbound::Raw(&message));
                Ok(json!({ "delivered": delivered }))
            }
            Command::BroadcastToResource {
                resource,
                message,
                tenant,
            } => {
                if !self.config.resources.contains_key(&resource) {
                    return Err(err(
                        ErrorCode::ResourceNotFound,
                        format!("resource `{resource}` is not configured"),
                    ));
                }
                let mut recipients = Vec::new();
                let max_slot = self.conns.capacity();
                self.hub
                    .resource_subscribers(&resource, max_slot, &mut recipients);
                if tenant.is_some() {
                    let conns = &self.conns;
                    recipients.retain(|(s, _)| conns[*s].state.tenant == tenant);
                }
                self.metrics.broadcasts += 1;
                let delivered = self.fanout(&recipients, Outbound::Raw(&message));
                Ok(json!({ "delivered": delivered }))
            }
            Command::Publish {
                channel,
                data,
                tenant,
            } => {
                self.check_name("channel", &channel)
                    .map_err(|m| err(ErrorCode::InvalidMessage, m))?;
                self.cluster_gate().map_err(|(c, m)| err(c, m))?;
                // The server is trusted (no roles), but only an opted-in resource's
                // subscribers get channel messages.
                let resource_too = self
                    .config
                    .resources
                    .get(&channel)
                    .is_some_and(|r| r.publish);
                let (delivered, position) = self.publish_to_channel(
                    now,
                    None,
                    tenant.as_deref(),
                    &channel,
                    "server".into(),
                    data,
                    resource_too,
                );
                Ok(match position {
                    Some(p) => {
                        json!({ "delivered": delivered, "offset": p.offset, "epoch": &*p.epoch })
                    }
                    None => json!({ "delivered": delivered }),
                })
            }
            Command::History {
                channel,
                limit,
                since,
                reverse,
                tenant,
            } => self.command_history(now, tenant.as_deref(), channel, limit, since, reverse),
            Command::Presence { channel, tenant } => {
                self.command_presence(tenant.as_deref(), channel, false)
            }
            Command::PresenceStats { channel, tenant } => {
                self.command_presence(tenant.as_deref(), channel, true)
            }
            Command::ResourceChanged {
                resource,
                event,
                record,
                previous,
            } => {
                if !self.config.resources.contains_key(&resource) {
                    return Err(err(
                        ErrorCode::ResourceNotFound,
                        format!("resource `{resource}` is not configured"),
                    ));
                }
                if !record.is_object() || previous.as_ref().is_some_and(|p| !p.is_object()) {
                    return Err(err(
                        ErrorCode::InvalidMessage,
                        "`record` and `previous` must be JSON objects",
                    ));
                }
                let delivered = self
                    .fanout_change(now, &resource, event, &record, previous.as_ref())
                    .unwrap_or(0);
                Ok(json!({ "delivered": delivered }))
            }
            Command::Disconnect { client_id, reason } => {
                let slot = self
                    .by_client
                    .get(&client_id)
                    .copied()
                    .filter(|s| !self.conns[*s].closing)
                    .ok_or_else(|| {
                        err(
                            ErrorCode::NotFound,
                            format!("no connected client `{client_id}`"),
                        )
                    })?;
                let reason = reason.unwrap_or_else(|| "disconnected by server".into());
                self.sio_disconnect_frames(slot);
                self.close(slot, close::DISCONNECTED_BY_SERVER, &reason);
                Ok(json!({ "disconnected": client_id }))
            }
            Command::SetJwks { issuer, jwks } => {
                let keys = self
                    .auth
                    .set_jwks(&issuer, &jwks)
                    .map_err(|e| err(ErrorCode::InvalidMessage, e.to_string()))?;
                Ok(json!({ "issuer": issuer, "keys": keys }))
            }
            Command::Shutdown { reason } => {
                self.draining = true;
                let reason = reason.unwrap_or_else(|| "server shutting down".into());
                let slots: Vec<usize> = self
                    .conns
                    .iter()
                    .filter(|(_, c)| !c.closing)
                    .map(|(s, _)| s)
                    .collect();
                for slot in &slots {
                    self.close(*slot, close::GOING_AWAY, &reason);
                }
                Ok(json!({ "closing": slots.len() }))
            }
            Command::ServerInfo => Ok(self.server_info(now)),
            Command::Clients => Ok(self.clients()),
            Command::Rooms => Ok(Value::Array(
                self.hub
                    .rooms()
                    .map(|(key, members)| (key.clone(), members + self.remote_room_count(key)))
                    .collect::<Vec<_>>()
                    .into_iter()
                    .chain(self.remote_only_rooms())
                    .map(|(key, members)| {
                        let key = key.as_str();
                        let (tenant, name) = crate::tenant::split(key);
                        let mut room = json!({
                            "room": name,
                            "members": members,
                            "maxConnections": self.room_capacity(key),
                        });
                        if let Some(t) = tenant {
                            room["tenant"] = json!(t);
                        }
                        room
                    })
                    .collect(),
            )),
            Command::Metrics => serde_json::to_value(&self.metrics)
                .map_err(|e| err(ErrorCode::InternalError, e.to_string())),
            cmd => self.room_command(now, cmd),
        }
    }

    /// Server info: name, protocol version, uptime, counts, routes and resources.
    pub fn server_info(&self, now: Millis) -> Value {
        json!({
            "name": self.config.name,
            "protocolVersion": crate::protocol::PROTOCOL_VERSION,
            "draining": self.draining,
            "uptimeMs": now.since(self.started_at.unwrap_or(now)),
            "clients": self.conns.len(),
            "subscriptions": self.hub.subscription_count() + self.hub.channel_membership_count(),
            "rooms": self.hub.room_count(),
            "routes": self.config.routes.iter().map(|r| json!({
                "path": r.path,
                "host": r.host,
                "authRequired": r.auth_required.unwrap_or(self.config.auth.required) || !r.scopes.is_empty(),
            })).collect::<Vec<_>>(),
            "resources": self.config.resources.keys().collect::<Vec<_>>(),
        })
    }

    /// Connected clients in connection-slot order: id, user, subscriptions, rooms,
    /// connectedAt, and `tenant` for a client that has one.
    pub fn clients(&self) -> Value {
        Value::Array(
            self.conns
                .iter()
                .filter(|(_, c)| !c.closing)
                .map(|(_, c)| {
                    let mut v = json!({
                        "clientId": c.state.client_id,
                        "user": c.public_user(),
                        "peer": c.state.peer,
                        "subscriptions": c.state.subscriptions.iter().map(|s| match &s.target {
                            SubTarget::Resource { name, filter, events, .. } => json!({
                                "subscriptionId": s.id, "resource": name, "filter": filter, "events": events,
                            }),
                            SubTarget::Channel { name } => json!({ "subscriptionId": s.id, "channel": name }),
                        }).collect::<Vec<_>>(),
                        "rooms": c.state.rooms,
                        "connectedAt": iso8601(c.state.connected_at),
                    });
                    if let Some(t) = &c.state.tenant {
                        v["tenant"] = json!(t);
                    }
                    v
                })
                .collect(),
        )
    }

    /// Whether the engine is draining (after `Shutdown`).
    pub fn is_draining(&self) -> bool {
        self.draining
    }
}
