//! YektaYar's compatibility built-ins on `{event, data}` envelope routes: `status` →
//! `status_response`, `echo` → `echo_response`, `info` → `info_response`, `message` →
//! `message_received` (`ping` → `pong` and the `connected` welcome are the protocol's
//! own messages in the envelope). A deployment that declares an application message of
//! the same name handles it instead.

use serde_json::{json, Value};

use super::{Action, Engine};
use crate::config::CodecKind;
use crate::protocol::codec::{codec_for, Outbound};
use crate::protocol::envelope::{compat_answer, envelope};
use crate::protocol::PROTOCOL_VERSION;
use crate::timestamp::iso8601;
use crate::types::Millis;

impl Engine {
    /// Answer a compatibility built-in; false when `event` is none (or the connection
    /// does not speak the envelope).
    pub(super) fn compat_event(
        &mut self,
        now: Millis,
        slot: usize,
        event: &str,
        data: Value,
        rid: Option<Value>,
    ) -> bool {
        if !matches!(
            self.conns[slot].state.codec,
            CodecKind::Event | CodecKind::SocketIo
        ) {
            return false;
        }
        let Some(answer) = compat_answer(event) else {
            return false;
        };
        let c = &self.conns[slot];
        let socket_id = c.state.client_id.clone();
        let user = c.public_user();
        let logged_in = !user.is_null();
        let session = json!({
            "socketId": socket_id,
            "isLoggedIn": logged_in,
            "user": user,
            "connectedAt": iso8601(c.state.connected_at),
        });
        let body = match answer {
            "status_response" => json!({
                "server": {
                    "name": self.config.name,
                    "status": "ok",
                    "uptimeMs": now.0.saturating_sub(self.started_at.unwrap_or(now).0),
                    "connections": self.conns.len(),
                },
                "connection": {
                    "socketId": socket_id,
                    "isLoggedIn": logged_in,
                    "user": session["user"],
                    "connectedAt": session["connectedAt"],
                    "rooms": c.state.rooms,
                    "subscriptions": c.state.subscriptions.len(),
                },
            }),
            "echo_response" => json!({
                "received": data,
                "timestamp": iso8601(now),
                "socketId": socket_id,
            }),
            "info_response" => json!({
                "server": {
                    "name": self.config.name,
                    "protocolVersion": PROTOCOL_VERSION,
                    "time": iso8601(now),
                },
                "websocket": {
                    "protocol": if c.state.codec == CodecKind::Event { "event" } else { "socket.io" },
                    "path": self.config.routes.get(c.state.route).map(|r| r.path.clone()),
                    "heartbeatInterval": self.config.heartbeat_interval,
                    "heartbeatTimeout": self.config.heartbeat_timeout,
                    "maxPayloadSize": self.config.max_payload_size,
                },
                "session": session,
            }),
            _ => json!({
                "success": true,
                "message": "Message received",
                "data": data,
            }),
        };
        let frames =
            codec_for(c.state.codec).encode_all(Outbound::Raw(&envelope(answer, body, rid)));
        let conn = c.id;
        self.metrics.received(match answer {
            "status_response" => "status",
            "echo_response" => "echo",
            "info_response" => "info",
            _ => "message",
        });
        self.metrics.sent(answer, 1);
        for frame in frames {
            self.actions.push_back(Action::Send { conn, frame });
        }
        true
    }
}
