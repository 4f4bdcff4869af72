//! Inbound frames: limits, decoding and dispatch of client messages; the
//! non-resource ones by noun: [`subscriptions`], [`rooms`], [`direct`] (channels are
//! in `streams`, resources in `resources`).

mod direct;
mod rooms;
mod subscriptions;

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
