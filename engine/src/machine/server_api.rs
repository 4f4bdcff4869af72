//! The server API: commands a host (admin API, application code) feeds as inputs, and
//! the queries it can answer.
//!
//! Most commands are answered within the same [`Engine::handle`] call. The resource
//! writes ([`Command::Insert`], [`Command::Update`], [`Command::Delete`]) go through the
//! storage host call like a client's write, so their [`Action::CommandResult`] comes
//! when the host completes that call (or when it misses its deadline), and
//! [`Command::EmitWithAck`]'s when the client acknowledges (or the wait times out);
//! hosts match results to commands by `tag`.

use serde_json::{json, Value};

use super::{Action, Engine};
pub use crate::command::{Command, CommandError};
use crate::connection::SubTarget;
use crate::error::{close, ErrorCode};
use crate::filter::Filter;
use crate::protocol::codec::Outbound;
use crate::timestamp::iso8601;
use crate::types::{ConnId, Millis};

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
                    .get(&self.conns, &client_id)
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
                    .get(&self.conns, &client_id)
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
