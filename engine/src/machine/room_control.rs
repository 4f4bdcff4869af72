//! Room control through the server API: create and delete rooms, join and remove
//! clients, send to a room, room and client info, send to a user's connections.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::server_api::{err, Command, CommandError};
use super::Engine;
use crate::connection::SubTarget;
use crate::error::ErrorCode;
use crate::protocol::codec::Outbound;
use crate::protocol::ServerMessage;
use crate::timestamp::iso8601;
use crate::types::{ConnId, Millis};

/// A room created through the server API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RoomMeta {
    pub description: Option<String>,
    pub capacity: Option<usize>,
    pub metadata: Option<Value>,
    pub created_at: Millis,
}

impl Engine {
    /// The member limit of the room keyed `key`: its created capacity, else the
    /// config's for its name.
    pub(super) fn room_capacity(&self, key: &str) -> usize {
        self.room_meta
            .get(key)
            .and_then(|m| m.capacity)
            .unwrap_or_else(|| self.config.room_capacity(crate::tenant::split(key).1))
    }

    fn client_slot(&self, client_id: &str) -> Result<usize, CommandError> {
        self.by_client
            .get(&self.conns, client_id)
            .filter(|s| !self.conns[*s].closing && !self.conns[*s].awaiting_connect)
            .ok_or_else(|| {
                err(
                    ErrorCode::NotFound,
                    format!("no connected client `{client_id}`"),
                )
            })
    }

    /// The room-control commands (and `sendToUser`).
    pub(super) fn room_command(
        &mut self,
        now: Millis,
        cmd: Command,
    ) -> Result<Value, CommandError> {
        match cmd {
            Command::SendToUser {
                user_id,
                message,
                tenant,
            } => {
                let recipients: Vec<(usize, ConnId)> = self
                    .conns
                    .iter()
                    .filter(|(_, c)| !c.closing && !c.awaiting_connect)
                    .filter(|(_, c)| tenant.is_none() || c.state.tenant == tenant)
                    .filter(|(_, c)| c.state.user.as_ref().is_some_and(|u| u.id == user_id))
                    .map(|(s, c)| (s, c.id))
                    .collect();
                let delivered = self.fanout(&recipients, Outbound::Raw(&message));
                Ok(json!({ "delivered": delivered }))
            }
            Command::CreateRoom {
                room,
                description,
                capacity,
                metadata,
                tenant,
            } => {
                self.check_name("room", &room)
                    .map_err(|m| err(ErrorCode::InvalidMessage, m))?;
                let key = crate::tenant::scoped(tenant.as_deref(), &room).into_owned();
                if capacity == Some(0) {
                    return Err(err(
                        ErrorCode::InvalidMessage,
                        "capacity must be at least 1",
                    ));
                }
                let exists = self.room_meta.contains_key(&key);
                if !exists
                    && self.hub.room_members(&key).is_none()
                    && self.hub.room_count() + self.empty_created_rooms()
                        >= self.config.rooms.max_rooms
                {
                    return Err(err(
                        ErrorCode::LimitExceeded,
                        format!(
                            "the server holds at most {} rooms",
                            self.config.rooms.max_rooms
                        ),
                    ));
                }
                let created_at = self.room_meta.get(&key).map_or(now, |m| m.created_at);
                self.room_meta.insert(
                    key.clone(),
                    RoomMeta {
                        description,
                        capacity,
                        metadata,
                        created_at,
                    },
                );
                Ok(self.room_info(&key))
            }
            Command::DeleteRoom { room, tenant } => {
                let key = crate::tenant::scoped(tenant.as_deref(), &room).into_owned();
                let known = self.room_meta.remove(&key).is_some();
                let members: Vec<usize> = self
                    .hub
                    .room_members(&key)
                    .into_iter()
                    .flatten()
                    .copied()
                    .collect();
                if !known && members.is_empty() && self.remote_room_count(&key) == 0 {
                    return Err(err(ErrorCode::NotFound, format!("no room `{room}`")));
                }
                for slot in &members {
                    if let Some(pos) = self.conns[*slot]
                        .state
                        .rooms
                        .iter()
                        .position(|r| *r == room)
                    {
                        self.conns[*slot].state.rooms.remove(pos);
                    }
                    self.hub.leave_room(*slot, &key);
                    self.cluster_room(*slot, &room, false);
                    self.send(
                        *slot,
                        &ServerMessage::Left {
                            room: room.clone(),
                            request_id: None,
                        },
                    );
                }
                Ok(json!({ "room": room, "removed": members.len() }))
            }
            Command::JoinRoom { client_id, room } => {
                self.check_name("room", &room)
                    .map_err(|m| err(ErrorCode::InvalidMessage, m))?;
                let slot = self.client_slot(&client_id)?;
                self.join_room(slot, room.clone(), None)
                    .map_err(|(code, m)| err(code, m))?;
                Ok(json!({ "clientId": client_id, "room": room }))
            }
            Command::LeaveRoom { client_id, room } => {
                let slot = self.client_slot(&client_id)?;
                let Some(pos) = self.conns[slot].state.rooms.iter().position(|r| *r == room) else {
                    return Err(err(
                        ErrorCode::NotFound,
                        format!("client `{client_id}` is not in room `{room}`"),
                    ));
                };
                self.conns[slot].state.rooms.remove(pos);
                self.send(
                    slot,
                    &ServerMessage::Left {
                        room: room.clone(),
                        request_id: None,
                    },
                );
                self.leave_room_and_notify(slot, &room);
                Ok(json!({ "clientId": client_id, "room": room }))
            }
            Command::SendToRoom {
                room,
                message,
                except_client_id,
                tenant,
            } => {
                let key = crate::tenant::scoped(tenant.as_deref(), &room);
                let except = except_client_id.and_then(|c| self.by_client.get(&self.conns, &c));
                let recipients: Vec<(usize, ConnId)> = self
                    .hub
                    .room_members(&key)
                    .into_iter()
                    .flatten()
                    .filter(|s| Some(**s) != except)
                    .map(|s| (*s, self.conns[*s].id))
                    .collect();
                if recipients.is_empty() && !self.room_known(&key) && except.is_none() {
                    return Err(err(ErrorCode::NotFound, format!("no room `{room}`")));
                }
                let delivered = self.fanout(&recipients, Outbound::Raw(&message));
                Ok(json!({ "delivered": delivered }))
            }
            Command::RoomInfo { room, tenant } => {
                let key = crate::tenant::scoped(tenant.as_deref(), &room);
                if !self.room_known(&key) {
                    return Err(err(ErrorCode::NotFound, format!("no room `{room}`")));
                }
                Ok(self.room_info(&key))
            }
            Command::ClientInfo { client_id } => {
                let slot = self.client_slot(&client_id)?;
                Ok(self.client_info(slot))
            }
            other => Err(err(
                ErrorCode::InternalError,
                format!("command {other:?} is not a room command"),
            )),
        }
    }

    fn empty_created_rooms(&self) -> usize {
        self.room_meta
            .keys()
            .filter(|r| self.hub.room_members(r).is_none())
            .count()
    }

    /// The info of the room keyed `key` (with `tenant` when it is a tenant's).
    fn room_info(&self, key: &str) -> Value {
        let (tenant, room) = crate::tenant::split(key);
        let meta = self.room_meta.get(key);
        let mut members: Vec<Value> = self
            .hub
            .room_members(key)
            .into_iter()
            .flatten()
            .map(|s| {
                json!({
                    "clientId": self.conns[*s].state.client_id,
                    "user": self.conns[*s].public_user(),
                })
            })
            .collect();
        members.extend(self.remote_room_info(key));
        let mut info = json!({
            "room": room,
            "members": members,
            "count": members.len(),
            "capacity": self.room_capacity(key),
            "description": meta.and_then(|m| m.description.clone()),
            "metadata": meta.and_then(|m| m.metadata.clone()),
            "createdAt": meta.map(|m| iso8601(m.created_at)),
        });
        if let Some(t) = tenant {
            info["tenant"] = json!(t);
        }
        info
    }

    /// One client's info.
    fn client_info(&self, slot: usize) -> Value {
        let c = &self.conns[slot];
        json!({
            "clientId": c.state.client_id,
            "user": c.public_user(),
            "peer": c.state.peer,
            "route": self.config.routes.get(c.state.route).map(|r| r.path.clone()),
            "params": c.state.params,
            "tenant": c.state.tenant,
            "meta": c.state.meta,
            "rooms": c.state.rooms,
            "subscriptions": c.state.subscriptions.iter().map(|s| match &s.target {
                SubTarget::Resource { name, filter, events, .. } => json!({
                    "subscriptionId": s.id, "resource": name, "filter": filter, "events": events,
                }),
                SubTarget::Channel { name } => json!({ "subscriptionId": s.id, "channel": name }),
            }).collect::<Vec<_>>(),
            "connectedAt": iso8601(c.state.connected_at),
        })
    }
}
