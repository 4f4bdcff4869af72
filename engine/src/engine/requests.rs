//! Inbound frames: limits, decoding and the non-resource client messages
//! (ping, subscriptions, channels, rooms, direct messages).

use serde_json::Value;

use super::handlers::RoomAction;
use super::resources::{clip, ResourceOp};
use super::Engine;
use crate::config::ChangeKind;
use crate::connection::{SubTarget, Subscription};
use crate::error::{close, ErrorCode};
use crate::filter::{values_equal, Filter};
use crate::guard::GuardAction;
use crate::protocol::codec::{codec_for, Outbound};
use crate::protocol::{ClientMessage, InFrame, Request, ServerMessage};
use crate::timestamp::iso8601;
use crate::types::{ConnId, Millis};

type Rid = Option<Value>;

impl Engine {
    pub(super) fn frame(&mut self, now: Millis, conn: ConnId, frame: InFrame<'_>) {
        let Some(slot) = self.live_slot(conn) else {
            return;
        };
        self.metrics.messages_received += 1;
        self.alive(slot, now);
        if frame.len() > self.config.max_payload_size {
            self.send_error(
                slot,
                ErrorCode::PayloadTooLarge,
                format!(
                    "frame of {} bytes exceeds maxPayloadSize ({} bytes)",
                    frame.len(),
                    self.config.max_payload_size
                ),
                None,
            );
            self.close(slot, close::MESSAGE_TOO_BIG, "message too big");
            return;
        }
        if self.conns[slot].state.codec.is_engine_io() {
            return self.sio_frame(now, slot, frame);
        }
        let decoded = codec_for(self.conns[slot].state.codec).decode(frame);
        self.request(now, slot, decoded);
    }

    /// One decoded client request (or why it could not be decoded): rate limit, the
    /// `connect` hook's admission, then dispatch to a built-in, an application message
    /// or a compatibility built-in.
    pub(super) fn request(
        &mut self,
        now: Millis,
        slot: usize,
        decoded: Result<Request, crate::protocol::codec::DecodeError>,
    ) {
        if self.config.rate_limit.enabled {
            let cfg = &self.config.rate_limit;
            let c = &mut self.conns[slot].state;
            let allowed = match &mut c.rate {
                Some(bucket) => bucket.try_take(cfg, now),
                None => true,
            };
            if !allowed {
                c.rate_violations = c.rate_violations.saturating_add(1);
                let violations = c.rate_violations;
                let close_after = cfg.close_after;
                let rid = match decoded {
                    Ok(r) => r.request_id,
                    Err(e) => e.request_id,
                };
                self.send_error(
                    slot,
                    ErrorCode::RateLimitExceeded,
                    format!(
                        "Too many requests: at most {} per {} ms",
                        self.config.rate_limit.max_requests, self.config.rate_limit.window_ms
                    ),
                    rid,
                );
                if close_after > 0 && violations >= close_after {
                    self.close(slot, close::POLICY_VIOLATION, "rate limit exceeded");
                }
                return;
            }
            c.rate_violations = 0;
        }
        if self.conns[slot].awaiting_connect {
            let rid = match decoded {
                Ok(r) => r.request_id,
                Err(e) => e.request_id,
            };
            return self.not_admitted(slot, rid);
        }
        match decoded {
            Ok(req) => {
                self.metrics.received(req.message.type_name());
                self.dispatch(now, slot, req);
            }
            Err(e) => {
                if let Some(unknown) = e.unknown {
                    let (message_type, data) = *unknown;
                    let rid = e.request_id.clone();
                    if self.config.messages.contains_key(&message_type) {
                        if self.app_message(now, slot, message_type, data, rid) {
                            return;
                        }
                    } else if self.compat_event(now, slot, &message_type, data, rid) {
                        return;
                    }
                }
                self.send_error(slot, e.code, e.message, e.request_id)
            }
        }
    }

    fn dispatch(&mut self, now: Millis, slot: usize, req: Request) {
        if let Some(req) = self.maybe_intercept(now, slot, req) {
            self.dispatch_checked(now, slot, req);
        }
    }

    /// Execute a request (after its interceptor, if any).
    pub(super) fn dispatch_checked(&mut self, now: Millis, slot: usize, req: Request) {
        let rid = req.request_id;
        match req.message {
            ClientMessage::Ping => self.send(
                slot,
                &ServerMessage::Pong {
                    timestamp: now.0,
                    request_id: rid,
                },
            ),
            ClientMessage::Subscribe {
                resource,
                channel,
                filter,
                events,
                since,
            } => match (resource, channel) {
                (Some(r), None) => {
                    self.subscribe_resource(now, slot, r, filter, events, since, rid)
                }
                (None, Some(c)) if filter.is_none() && events.is_none() => {
                    self.subscribe_channel(now, slot, c, since, rid)
                }
                (None, Some(_)) => self.send_error(
                    slot,
                    ErrorCode::InvalidMessage,
                    "`filter` and `events` apply to resources, not channels",
                    rid,
                ),
                _ => self.send_error(
                    slot,
                    ErrorCode::InvalidMessage,
                    "subscribe needs exactly one of `resource` or `channel`",
                    rid,
                ),
            },
            ClientMessage::Unsubscribe {
                subscription_id,
                resource,
                channel,
                filter,
            } => self.unsubscribe(slot, subscription_id, resource, channel, filter, rid),
            ClientMessage::Publish { channel, message } => {
                self.publish(now, slot, channel, message, rid)
            }
            ClientMessage::Get { resource, id } => self.crud_get(now, slot, resource, id, rid),
            ClientMessage::List {
                resource,
                filter,
                limit,
                cursor,
            } => self.crud_list(now, slot, resource, filter, limit, cursor, rid),
            ClientMessage::Insert { resource, data } => {
                self.crud_insert(now, slot, resource, data, rid)
            }
            ClientMessage::Update { resource, id, data } => {
                self.crud_update(now, slot, resource, id, data, rid)
            }
            ClientMessage::Delete { resource, id } => {
                self.crud_delete(now, slot, resource, id, rid)
            }
            ClientMessage::Refresh { token } => self.refresh(now, slot, &token, rid),
            ClientMessage::Join { room } => self.join(slot, room, rid),
            ClientMessage::Leave { room } => self.leave(slot, room, rid),
            ClientMessage::RoomMessage {
                room,
                data,
                event,
                ack,
            } => self.room_message(now, slot, room, data, event, ack, rid),
            ClientMessage::RoomMembers { room } => self.room_members(slot, room, rid),
            ClientMessage::Direct { to, data, ack } => self.direct(now, slot, to, data, ack, rid),
            ClientMessage::History {
                channel,
                limit,
                since,
                reverse,
            } => self.history(now, slot, channel, limit, since, reverse, rid),
            ClientMessage::Presence { channel } => self.presence(slot, channel, false, rid),
            ClientMessage::PresenceStats { channel } => self.presence(slot, channel, true, rid),
        }
    }

    pub(super) fn subscription_limit_reached(&self, slot: usize) -> bool {
        self.conns[slot].state.subscriptions.len()
            >= self.config.limits.max_subscriptions_per_connection
    }

    pub(super) fn next_subscription_id(&mut self, slot: usize) -> String {
        let s = &mut self.conns[slot].state;
        s.next_subscription += 1;
        format!("sub-{}", s.next_subscription)
    }

    #[allow(clippy::too_many_arguments)]
    fn subscribe_resource(
        &mut self,
        now: Millis,
        slot: usize,
        resource: String,
        filter: Option<Value>,
        events: Option<Vec<ChangeKind>>,
        since: Option<crate::broker::Since>,
        rid: Rid,
    ) {
        let rc = match self.resource_access(slot, &resource) {
            Ok(rc) => rc,
            Err((code, msg)) => return self.send_error(slot, code, msg, rid),
        };
        let client_filter = match filter.as_ref().filter(|f| !f.is_null()) {
            None => None,
            Some(f) => match Self::parse_client_filter(&rc, &resource, f) {
                Ok(parsed) => Some(parsed),
                Err((code, m)) => return self.send_error(slot, code, m, rid),
            },
        };
        let offered = &rc.events;
        let effective: Vec<ChangeKind> = match &events {
            None => offered.clone(),
            Some(list) if list.is_empty() => {
                return self.send_error(
                    slot,
                    ErrorCode::InvalidMessage,
                    "`events` must name at least one of insert, update, delete",
                    rid,
                )
            }
            Some(list) => ChangeKind::ALL
                .into_iter()
                .filter(|k| list.contains(k) && offered.contains(k))
                .collect(),
        };
        if effective.is_empty() {
            return self.send_error(
                slot,
                ErrorCode::InvalidMessage,
                format!(
                    "resource `{}` does not broadcast any of the requested events",
                    clip(&resource)
                ),
                rid,
            );
        }
        if self.subscription_limit_reached(slot) {
            return self.send_error(
                slot,
                ErrorCode::LimitExceeded,
                format!(
                    "at most {} subscriptions per connection",
                    self.config.limits.max_subscriptions_per_connection
                ),
                rid,
            );
        }
        let mut op = ResourceOp::new(GuardAction::Subscribe, resource);
        op.filter = filter.filter(|f| !f.is_null());
        op.client_filter = client_filter;
        op.events = effective;
        op.since = since;
        self.run_op(now, slot, op, rid);
    }

    /// Remove the subscription at `index` of a connection from the hub and its state.
    pub(super) fn remove_subscription(&mut self, slot: usize, index: usize) -> Subscription {
        let c = &mut self.conns[slot];
        let key = c.sub_keys.remove(index);
        let sub = c.state.subscriptions.remove(index);
        match &sub.target {
            SubTarget::Resource { .. } => self.hub.unsubscribe_resource(key),
            SubTarget::Channel { name } => {
                let key = crate::tenant::scoped(c.state.tenant.as_deref(), name);
                self.hub.leave_channel(slot, &key);
                self.channel_left(slot, name);
            }
        }
        sub
    }

    fn unsubscribe(
        &mut self,
        slot: usize,
        subscription_id: Option<String>,
        resource: Option<String>,
        channel: Option<String>,
        filter: Option<Value>,
        rid: Rid,
    ) {
        // A filter naming a protected field is refused here too (never compared), so
        // `unsubscribe` answers the same as `subscribe` would.
        if let (Some(r), Some(f)) = (&resource, &filter) {
            // A filter that does not parse is only compared, never refused.
            let rc = self.config.resources.get(r);
            if let Some((rc, parsed)) = rc.and_then(|rc| Some((rc, Filter::parse(f).ok()?))) {
                if let Err((code, m)) = Self::check_filter_fields(rc, r, &parsed) {
                    return self.send_error(slot, code, m, rid);
                }
            }
        }
        let subs = &self.conns[slot].state.subscriptions;
        let empty = Value::Object(Default::default());
        let norm = |f: &Option<Value>| match f {
            None | Some(Value::Null) => empty.clone(),
            Some(v) => v.clone(),
        };
        let matching: Vec<usize> = match (&subscription_id, &resource, &channel) {
            (Some(id), _, _) => subs.iter().position(|s| &s.id == id).into_iter().collect(),
            (None, Some(r), None) => subs
                .iter()
                .enumerate()
                .filter(|(_, s)| match &s.target {
                    SubTarget::Resource { name, filter: f, .. } => {
                        name == r
                            && filter
                                .as_ref()
                                .is_none_or(|want| values_equal(&norm(f), &norm(&Some(want.clone()))))
                    }
                    SubTarget::Channel { .. } => false,
                })
                .map(|(i, _)| i)
                .collect(),
            (None, None, Some(ch)) if filter.is_none() => subs
                .iter()
                .position(|s| matches!(&s.target, SubTarget::Channel { name } if name == ch))
                .into_iter()
                .collect(),
            _ => {
                return self.send_error(
                    slot,
                    ErrorCode::InvalidMessage,
                    "unsubscribe needs `subscriptionId`, `resource` (optionally with `filter`) or `channel`",
                    rid,
                )
            }
        };
        if matching.is_empty() {
            return self.send_error(
                slot,
                ErrorCode::NotFound,
                "no subscription matches this unsubscribe",
                rid,
            );
        }
        let mut ids = Vec::with_capacity(matching.len());
        for index in matching.into_iter().rev() {
            ids.push(self.remove_subscription(slot, index).id);
        }
        ids.reverse();
        self.send(
            slot,
            &ServerMessage::Unsubscribed {
                subscription_ids: ids,
                resource,
                channel,
                filter,
                request_id: rid,
            },
        );
    }

    fn join(&mut self, slot: usize, room: String, rid: Rid) {
        if let Err(m) = self.check_name("room", &room) {
            return self.send_error(slot, ErrorCode::InvalidMessage, m, rid);
        }
        if let Err((code, m)) = self.room_permitted(slot, RoomAction::Join, &room) {
            return self.send_error(slot, code, m, rid);
        }
        if let Err((code, m)) = self.join_room(slot, room, rid.clone()) {
            self.send_error(slot, code, m, rid);
        }
    }

    /// Put `slot` in `room` (limits and capacity apply; permissions are the caller's):
    /// `joined` to it (with `rid`), `room:joined` to the others.
    pub(super) fn join_room(
        &mut self,
        slot: usize,
        room: String,
        rid: Rid,
    ) -> Result<(), (ErrorCode, String)> {
        let key = self.key_for(slot, &room).into_owned();
        if self.conns[slot].state.rooms.contains(&room) {
            let members = self.hub.room_members(&key).map_or(0, |m| m.len());
            self.send(
                slot,
                &ServerMessage::Joined {
                    room,
                    members,
                    request_id: rid,
                },
            );
            return Ok(());
        }
        if self.conns[slot].state.rooms.len() >= self.config.limits.max_rooms_per_connection {
            return Err((
                ErrorCode::LimitExceeded,
                format!(
                    "at most {} rooms per connection",
                    self.config.limits.max_rooms_per_connection
                ),
            ));
        }
        let current = self.hub.room_members(&key).map(|m| m.len());
        if current.is_none() && self.hub.room_count() >= self.config.rooms.max_rooms {
            return Err((
                ErrorCode::LimitExceeded,
                format!(
                    "the server holds at most {} rooms",
                    self.config.rooms.max_rooms
                ),
            ));
        }
        let capacity = self.room_capacity(&key);
        if current.unwrap_or(0) >= capacity {
            return Err((
                ErrorCode::RoomFull,
                format!("room `{room}` is full ({capacity} members)"),
            ));
        }
        let others: Vec<(usize, ConnId)> = self.room_peers(&key, slot);
        let members = self.hub.join_room(slot, &key);
        self.conns[slot].state.rooms.push(room.clone());
        self.send(
            slot,
            &ServerMessage::Joined {
                room: room.clone(),
                members,
                request_id: rid,
            },
        );
        let member = self.conns[slot].member_view();
        self.fanout(
            &others,
            Outbound::Message(&ServerMessage::RoomJoined { room, member }),
        );
        Ok(())
    }

    /// Members of the room keyed `key` other than `slot`.
    fn room_peers(&self, key: &str, slot: usize) -> Vec<(usize, ConnId)> {
        self.hub
            .room_members(key)
            .into_iter()
            .flatten()
            .filter(|s| **s != slot)
            .map(|s| (*s, self.conns[*s].id))
            .collect()
    }

    /// Take `slot` out of `room` (the name it gave) and tell the remaining members.
    pub(super) fn leave_room_and_notify(&mut self, slot: usize, room: &str) {
        let key = self.key_for(slot, room).into_owned();
        self.hub.leave_room(slot, &key);
        let others = self.room_peers(&key, slot);
        let client_id = self.conns[slot].state.client_id.clone();
        self.fanout(
            &others,
            Outbound::Message(&ServerMessage::RoomLeft {
                room: room.to_string(),
                client_id,
            }),
        );
    }

    fn leave(&mut self, slot: usize, room: String, rid: Rid) {
        let Some(pos) = self.conns[slot].state.rooms.iter().position(|r| *r == room) else {
            return self.send_error(
                slot,
                ErrorCode::NotFound,
                format!("not a member of room `{}`", clip(&room)),
                rid,
            );
        };
        self.conns[slot].state.rooms.remove(pos);
        self.send(
            slot,
            &ServerMessage::Left {
                room: room.clone(),
                request_id: rid,
            },
        );
        self.leave_room_and_notify(slot, &room);
    }

    #[allow(clippy::too_many_arguments)]
    fn room_message(
        &mut self,
        now: Millis,
        slot: usize,
        room: String,
        data: Option<Value>,
        event: Option<String>,
        ack: bool,
        rid: Rid,
    ) {
        if !self.conns[slot].state.rooms.contains(&room) {
            return self.send_error(
                slot,
                ErrorCode::Forbidden,
                format!("join room `{}` before sending to it", clip(&room)),
                rid,
            );
        }
        if let Err((code, m)) = self.room_permitted(slot, RoomAction::Message, &room) {
            return self.send_error(slot, code, m, rid);
        }
        let key = self.key_for(slot, &room).into_owned();
        let others = self.room_peers(&key, slot);
        let msg = ServerMessage::RoomMessage {
            room,
            from: self.conns[slot].state.client_id.clone(),
            event,
            data,
            timestamp: iso8601(now),
        };
        let delivered = self.fanout(&others, Outbound::Message(&msg));
        if ack {
            self.send(
                slot,
                &ServerMessage::Sent {
                    delivered,
                    request_id: rid,
                },
            );
        }
    }

    fn room_members(&mut self, slot: usize, room: String, rid: Rid) {
        if !self.conns[slot].state.rooms.contains(&room) {
            return self.send_error(
                slot,
                ErrorCode::Forbidden,
                format!("only members of room `{}` may list it", clip(&room)),
                rid,
            );
        }
        if let Err((code, m)) = self.room_permitted(slot, RoomAction::Members, &room) {
            return self.send_error(slot, code, m, rid);
        }
        let key = self.key_for(slot, &room).into_owned();
        let members = self
            .hub
            .room_members(&key)
            .into_iter()
            .flatten()
            .map(|s| self.conns[*s].member_view())
            .collect();
        self.send(
            slot,
            &ServerMessage::RoomMembers {
                room,
                members,
                request_id: rid,
            },
        );
    }

    fn direct(
        &mut self,
        now: Millis,
        slot: usize,
        to: String,
        data: Option<Value>,
        ack: bool,
        rid: Rid,
    ) {
        let target = self
            .by_client
            .get(&to)
            .copied()
            .filter(|s| !self.conns[*s].closing)
            // Client lookups stay inside the sender's tenant.
            .filter(|s| self.conns[*s].state.tenant == self.conns[slot].state.tenant);
        let Some(target) = target else {
            if self.cluster_node().is_some() {
                return self.direct_remote(now, slot, to, data, ack, rid);
            }
            return self.send_error(
                slot,
                ErrorCode::NotFound,
                format!("no connected client `{}`", clip(&to)),
                rid,
            );
        };
        let msg = ServerMessage::Direct {
            from: self.conns[slot].state.client_id.clone(),
            data,
            timestamp: iso8601(now),
        };
        let conn = self.conns[target].id;
        let delivered = self.fanout(&[(target, conn)], Outbound::Message(&msg));
        if ack {
            self.send(
                slot,
                &ServerMessage::Sent {
                    delivered,
                    request_id: rid,
                },
            );
        }
    }

    /// `direct` to a client that is not local, in a cluster: forwarded to the node it is
    /// connected to (`sent.delivered` is 1 once handed to the broker).
    fn direct_remote(
        &mut self,
        now: Millis,
        slot: usize,
        to: String,
        data: Option<Value>,
        ack: bool,
        rid: Rid,
    ) {
        let tenant = self.conns[slot].state.tenant.clone();
        let Some(node) = self.remote_client(&to, tenant.as_deref()) else {
            return self.send_error(
                slot,
                ErrorCode::NotFound,
                format!("no connected client `{}`", clip(&to)),
                rid,
            );
        };
        if let Err((code, m)) = self.cluster_gate() {
            return self.send_error(slot, code, m, rid);
        }
        let from = self.conns[slot].state.client_id.clone();
        self.cluster_direct(node, tenant, from, to, data, iso8601(now));
        if ack {
            self.send(
                slot,
                &ServerMessage::Sent {
                    delivered: 1,
                    request_id: rid,
                },
            );
        }
    }

    /// Role gate: an empty list allows everyone; otherwise anonymous → UNAUTHORIZED and
    /// other roles → FORBIDDEN.
    pub(super) fn role_allowed(
        &self,
        slot: usize,
        roles: &[String],
        what: &str,
    ) -> Result<(), (ErrorCode, String)> {
        if roles.is_empty() {
            return Ok(());
        }
        match &self.conns[slot].state.user {
            None => Err((
                ErrorCode::Unauthorized,
                format!("authentication is required to {what}"),
            )),
            Some(u) if roles.iter().any(|r| u.has_role(r)) => Ok(()),
            Some(_) => Err((ErrorCode::Forbidden, format!("your role may not {what}"))),
        }
    }
}
