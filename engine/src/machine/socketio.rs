//! The Socket.IO v5 / Engine.IO v4 session of a connection on a `codec = "socket.io"`
//! route (WebSocket transport): the open packet, heartbeat packets, namespaces
//! (`CONNECT` with an auth payload whose `token` goes through the authenticator,
//! `CONNECT_ERROR`, `DISCONNECT`), `EVENT`s as requests (built-ins, application messages,
//! YektaYar's built-ins) with acks, and binary attachments. See `protocol::socketio`.

use std::sync::Arc;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::{json, Value};

use super::{Action, Engine};
use crate::auth::AuthError;
use crate::error::{close, ErrorCode};
use crate::protocol::codec::{decode_value, DecodeError};
use crate::protocol::socketio::{
    encode_packet, fill_placeholders, gather, open_packet, parse_packet, request_id, SioPacket,
    SioType,
};
use crate::protocol::{Frame, InFrame, Request, CLIENT_TYPES};
use crate::types::Millis;

/// Close code for a protocol violation (an invalid Engine.IO or Socket.IO packet).
const CLOSE_PROTOCOL: u16 = close::PROTOCOL_ERROR;

/// The Engine.IO rejection of a Socket.IO upgrade whose query is not
/// `EIO=4&transport=websocket` (400, Engine.IO's error body). None when it is.
pub(crate) fn eio_query_error(query: &str) -> Option<String> {
    let mut eio = None;
    let mut transport = None;
    let mut sid = None;
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        match k.as_ref() {
            "EIO" => eio = Some(v.into_owned()),
            "transport" => transport = Some(v.into_owned()),
            "sid" => sid = Some(v.into_owned()),
            _ => {}
        }
    }
    let (code, message) = if eio.as_deref() != Some("4") {
        (5, "Unsupported protocol version")
    } else if transport.as_deref() != Some("websocket") {
        (0, "Transport unknown")
    } else if sid.is_some() {
        (1, "Session ID unknown")
    } else {
        return None;
    };
    Some(json!({"code": code, "message": message}).to_string())
}

impl Engine {
    /// Send the Engine.IO open packet (the Socket.IO connection's welcome).
    pub(super) fn sio_open(&mut self, slot: usize) {
        // A polling session may upgrade to a WebSocket; a WebSocket has nowhere to go.
        let upgrades: &[&str] = if self.polls.is_polling(self.conns[slot].id) {
            &["websocket"]
        } else {
            &[]
        };
        let c = &mut self.conns[slot];
        c.sio = Some(Box::default());
        let frame = open_packet(
            &c.state.client_id,
            upgrades,
            self.config.heartbeat_interval,
            self.config.heartbeat_timeout,
            self.config.max_payload_size,
        );
        let conn = c.id;
        self.metrics.sent("eio:open", 1);
        self.actions.push_back(Action::Send { conn, frame });
    }

    pub(super) fn sio_send(&mut self, slot: usize, frames: Vec<Frame>) {
        let conn = self.conns[slot].id;
        for frame in frames {
            self.actions.push_back(Action::Send { conn, frame });
        }
    }

    fn sio_text(&mut self, slot: usize, text: String) {
        self.sio_send(slot, vec![Frame::Text(Arc::from(text))]);
    }

    fn sio_violation(&mut self, slot: usize, why: &str) {
        self.metrics.error(ErrorCode::InvalidMessage);
        self.close(slot, CLOSE_PROTOCOL, why);
    }

    /// One inbound frame of a Socket.IO connection.
    pub(super) fn sio_frame(&mut self, now: Millis, slot: usize, frame: InFrame<'_>) {
        if self.conns[slot].sio.is_none() {
            // Restored from a snapshot: the session starts over (no namespaces).
            self.conns[slot].sio = Some(Box::default());
        }
        let bare = self.conns[slot].state.codec == crate::config::CodecKind::EngineIo;
        let text = match frame {
            InFrame::Binary(bytes) if bare => {
                let data = json!({"$binary": STANDARD.encode(bytes)});
                return self.eio_message(now, slot, data);
            }
            InFrame::Binary(bytes) => return self.sio_attachment(now, slot, bytes),
            InFrame::Text(t) => t,
        };
        if self.conns[slot]
            .sio
            .as_ref()
            .is_some_and(|s| s.pending.is_some())
        {
            return self.sio_violation(slot, "expected a binary attachment");
        }
        let Some(kind) = text.as_bytes().first() else {
            return self.sio_violation(slot, "empty Engine.IO packet");
        };
        match kind {
            // pong: `alive` already ran for this frame.
            b'3' if text.len() == 1 => {}
            // ping (the upgrade probe `2probe` among them).
            b'2' => self.sio_text(slot, format!("3{}", &text[1..])),
            b'1' if text.len() == 1 => self.close(slot, close::NORMAL, "client closed"),
            b'6' if text.len() == 1 => {}
            b'4' if bare => self.eio_message(now, slot, Value::String(text[1..].to_string())),
            b'4' => match parse_packet(&text[1..]) {
                Some(p) => self.sio_packet(now, slot, p),
                None => self.sio_violation(slot, "invalid Socket.IO packet"),
            },
            _ => self.sio_violation(slot, "invalid Engine.IO packet"),
        }
    }

    /// A message packet of a bare Engine.IO session: the application message `message`.
    fn eio_message(&mut self, now: Millis, slot: usize, data: Value) {
        let decoded = Err(DecodeError {
            code: ErrorCode::UnknownMessageType,
            message: "Unknown message type: message (declare it in [messages])".into(),
            request_id: None,
            unknown: Some(Box::new(("message".to_string(), data))),
        });
        self.request(now, slot, decoded);
    }

    fn sio_attachment(&mut self, now: Millis, slot: usize, bytes: &[u8]) {
        let Some(session) = self.conns[slot].sio.as_mut() else {
            return;
        };
        let Some((packet, buffers)) = session.pending.as_mut() else {
            return self.sio_violation(slot, "unexpected binary frame");
        };
        buffers.push(bytes.to_vec());
        if buffers.len() < packet.attachments {
            return;
        }
        let Some((mut packet, buffers)) = session.pending.take() else {
            return;
        };
        match packet
            .payload
            .take()
            .and_then(|p| fill_placeholders(p, &buffers))
        {
            Some(p) => {
                packet.payload = Some(p);
                self.sio_packet_complete(now, slot, packet);
            }
            None => self.sio_violation(slot, "invalid binary placeholder"),
        }
    }

    fn sio_packet(&mut self, now: Millis, slot: usize, p: SioPacket) {
        if p.attachments > 0 {
            if let Some(s) = self.conns[slot].sio.as_mut() {
                s.pending = Some((p, Vec::new()));
            }
            return;
        }
        self.sio_packet_complete(now, slot, p);
    }

    pub(super) fn sio_connected(&self, slot: usize, nsp: &str) -> bool {
        self.conns[slot]
            .sio
            .as_ref()
            .is_some_and(|s| s.namespaces.iter().any(|n| n == nsp))
    }

    fn sio_packet_complete(&mut self, now: Millis, slot: usize, p: SioPacket) {
        match p.kind {
            SioType::Connect => self.sio_connect(now, slot, p),
            SioType::Disconnect => {
                if let Some(s) = self.conns[slot].sio.as_mut() {
                    s.namespaces.retain(|n| *n != p.nsp);
                }
                self.sio_fail_acks(slot, Some(&p.nsp));
            }
            SioType::Event | SioType::BinaryEvent => {
                if !self.sio_connected(slot, &p.nsp) {
                    // The reference server ignores packets for a namespace not joined.
                    return;
                }
                let Some(Value::Array(mut args)) = p.payload else {
                    return;
                };
                let Value::String(name) = args.remove(0) else {
                    return;
                };
                let data = gather(args);
                let rid = Some(request_id(&p.nsp, p.ack));
                let decoded = sio_request(name, data, rid);
                self.request(now, slot, decoded);
            }
            // Acks of the server's `emitWithAck`s.
            SioType::Ack | SioType::BinaryAck => self.sio_ack(slot, p),
            SioType::ConnectError => self.sio_violation(slot, "CONNECT_ERROR from a client"),
        }
    }

    fn sio_connect(&mut self, now: Millis, slot: usize, p: SioPacket) {
        let nsp = p.nsp;
        let error = |message: &str, data: Option<Value>| {
            let mut payload = json!({"message": message});
            if let Some(d) = data {
                payload["data"] = d;
            }
            encode_packet(&SioPacket {
                kind: SioType::ConnectError,
                nsp: nsp.clone(),
                attachments: 0,
                ack: None,
                payload: Some(payload),
            })
        };
        if !self.config.socket_io.namespaces.contains(&nsp) {
            self.metrics.error(ErrorCode::NotFound);
            return self.sio_text(slot, error("Invalid namespace", None));
        }
        // The auth payload's `token` goes through the same authenticator as `?token=`
        // when the deployment authenticates at all (JWTs or API keys); otherwise the
        // payload is application data only.
        let a = &self.config.auth;
        let authenticates = a.jwt.is_some() || !a.api_keys.is_empty() || !a.oidc.is_empty();
        let token = p
            .payload
            .as_ref()
            .and_then(|a| a.get("token"))
            .and_then(Value::as_str)
            .filter(|_| authenticates)
            .map(str::to_string);
        if let Some(token) = token {
            match self.auth.authenticate_with_expiry(now, &token) {
                Ok((user, _)) => {
                    let same = self.conns[slot]
                        .state
                        .user
                        .as_ref()
                        .is_none_or(|u| u.id == user.id);
                    if !same {
                        self.metrics.error(ErrorCode::Forbidden);
                        let data = json!({"code": "FORBIDDEN"});
                        return self.sio_text(
                            slot,
                            error(
                                "the token is for another user than the connection's",
                                Some(data),
                            ),
                        );
                    }
                    self.replace_user(slot, Some(user));
                }
                Err(e) => {
                    self.metrics.error(ErrorCode::Unauthorized);
                    let data = json!({"code": "UNAUTHORIZED", "reason": e.reason()});
                    return self.sio_text(slot, error(&e.to_string(), Some(data)));
                }
            }
        } else {
            let route = self.conns[slot].state.route;
            let required = self
                .config
                .routes
                .get(route)
                .and_then(|r| r.auth_required)
                .unwrap_or(self.config.auth.required);
            if required && self.conns[slot].state.user.is_none() {
                self.metrics.error(ErrorCode::Unauthorized);
                let e = AuthError::MissingToken;
                let data = json!({"code": "UNAUTHORIZED", "reason": e.reason()});
                return self.sio_text(slot, error(&e.to_string(), Some(data)));
            }
        }
        let sid = self.conns[slot].state.client_id.clone();
        if let Some(s) = self.conns[slot].sio.as_mut() {
            if !s.namespaces.contains(&nsp) {
                s.namespaces.push(nsp.clone());
            }
        }
        self.metrics.sent("sio:connect", 1);
        self.sio_text(
            slot,
            encode_packet(&SioPacket {
                kind: SioType::Connect,
                nsp: nsp.clone(),
                attachments: 0,
                ack: None,
                payload: Some(json!({"sid": sid})),
            }),
        );
        // A deployment that declares the application message `connection` hears of each
        // namespace connection (Socket.IO's `io.on("connection")`), with the auth payload.
        if self.config.messages.contains_key("connection") {
            let data = json!({"namespace": nsp, "auth": p.payload.unwrap_or(json!({}))});
            self.app_message(
                now,
                slot,
                "connection".into(),
                data,
                Some(request_id(&nsp, None)),
            );
        }
    }

    /// Frames for a server-initiated Socket.IO disconnect: `DISCONNECT` on every
    /// connected namespace (the client then does not reconnect by itself).
    pub(super) fn sio_disconnect_frames(&mut self, slot: usize) {
        let Some(s) = self.conns[slot].sio.as_ref() else {
            return;
        };
        let frames: Vec<Frame> = s
            .namespaces
            .iter()
            .map(|nsp| {
                Frame::Text(Arc::from(encode_packet(&SioPacket {
                    kind: SioType::Disconnect,
                    nsp: nsp.clone(),
                    attachments: 0,
                    ack: None,
                    payload: None,
                })))
            })
            .collect();
        self.sio_send(slot, frames);
    }
}

/// A Socket.IO event as a request: a built-in takes its fields from the (object) data,
/// any other event is an application message or a compatibility built-in.
fn sio_request(name: String, data: Value, rid: Option<Value>) -> Result<Request, DecodeError> {
    if !CLIENT_TYPES.contains(&name.as_str()) {
        return Err(DecodeError {
            code: ErrorCode::UnknownMessageType,
            message: format!("Unknown event: {}", super::resources::clip(&name)),
            request_id: rid,
            unknown: Some(Box::new((name, data))),
        });
    }
    let mut fields = match data {
        Value::Object(m) => m,
        Value::Null => serde_json::Map::new(),
        _ if name == "ping" => serde_json::Map::new(),
        other => {
            return Err(DecodeError {
                code: ErrorCode::InvalidMessage,
                message: format!(
                    "the argument of `{name}` must be an object holding its fields, got {}",
                    crate::protocol::codec::json_kind(&other)
                ),
                request_id: rid,
                unknown: None,
            })
        }
    };
    fields.remove("requestId");
    fields.insert("type".into(), Value::String(name));
    let mut req = decode_value(Value::Object(fields)).map_err(|mut e| {
        e.request_id = rid.clone();
        e
    })?;
    req.request_id = rid;
    Ok(req)
}

#[cfg(test)]
mod tests {
    use super::eio_query_error;

    #[test]
    fn upgrades_need_eio_4_and_the_websocket_transport() {
        assert_eq!(eio_query_error("EIO=4&transport=websocket"), None);
        for q in [
            "transport=websocket",
            "EIO=abc&transport=websocket",
            "EIO=4",
            "EIO=4&transport=abc",
            "EIO=4&transport=websocket&sid=x",
        ] {
            assert!(eio_query_error(q).is_some(), "{q}");
        }
    }
}
