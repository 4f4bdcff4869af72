//! Socket.IO v5 over Engine.IO v4 (`routes[].codec = "socket.io"`): packet parsing and
//! encoding. The per-connection protocol (handshake, namespaces, binary assembly,
//! heartbeat) lives in the engine (`machine/socketio.rs`); this module is pure.
//!
//! Engine.IO v4 over WebSocket: one packet per frame, the first character its type
//! (`0` open, `1` close, `2` ping, `3` pong, `4` message, `5` upgrade, `6` noop); a
//! binary frame is a message carrying bytes. Socket.IO v5 packets travel in Engine.IO
//! messages: `<type>[<attachments>-][<namespace>,][<ack id>][<JSON payload>]`.
//!
//! Mapping to the engine: an `EVENT ["name", ...args]` is the message `name` with
//! `data` = its single argument (no argument: null; several: `{"$args": [...]}`, which
//! outbound `data` may use too, to emit or acknowledge with several arguments).
//! Binary attachments become `{"$binary": "<base64>"}` values inside `data`, and any
//! such value in an outbound message is sent as an attachment. The request id of a
//! Socket.IO request is `{"sio": namespace, "ack"?: id}`, so its answer goes back to
//! that namespace, as an `ACK` when the event asked for one.

use std::sync::Arc;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::{json, Map, Value};

use super::codec::{Codec, DecodeError, Frames, Outbound};
use super::envelope::{encode_message, encode_raw};
use super::{Frame, InFrame, Request};
use crate::error::ErrorCode;

/// Socket.IO packet types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SioType {
    /// `0`
    Connect,
    /// `1`
    Disconnect,
    /// `2`
    Event,
    /// `3`
    Ack,
    /// `4` (server → client only)
    ConnectError,
    /// `5`
    BinaryEvent,
    /// `6`
    BinaryAck,
}

impl SioType {
    fn from_char(c: u8) -> Option<Self> {
        Some(match c {
            b'0' => Self::Connect,
            b'1' => Self::Disconnect,
            b'2' => Self::Event,
            b'3' => Self::Ack,
            b'4' => Self::ConnectError,
            b'5' => Self::BinaryEvent,
            b'6' => Self::BinaryAck,
            _ => return None,
        })
    }

    fn digit(self) -> char {
        match self {
            Self::Connect => '0',
            Self::Disconnect => '1',
            Self::Event => '2',
            Self::Ack => '3',
            Self::ConnectError => '4',
            Self::BinaryEvent => '5',
            Self::BinaryAck => '6',
        }
    }
}

/// A parsed Socket.IO packet.
#[derive(Debug, Clone, PartialEq)]
pub struct SioPacket {
    /// Type.
    pub kind: SioType,
    /// Namespace (`/` when absent).
    pub nsp: String,
    /// Number of binary attachments that follow (binary types).
    pub attachments: usize,
    /// Acknowledgement id.
    pub ack: Option<u64>,
    /// JSON payload.
    pub payload: Option<Value>,
}

/// Parse a Socket.IO packet (the data of an Engine.IO message). `None`: not a valid
/// packet (the session is closed, as the reference server does).
pub fn parse_packet(s: &str) -> Option<SioPacket> {
    let b = s.as_bytes();
    let kind = SioType::from_char(*b.first()?)?;
    let mut i = 1;
    let mut attachments = 0usize;
    if matches!(kind, SioType::BinaryEvent | SioType::BinaryAck) {
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start || b.get(i) != Some(&b'-') {
            return None;
        }
        attachments = s[start..i].parse().ok()?;
        if attachments > 1000 {
            return None;
        }
        i += 1;
    }
    let mut nsp = "/".to_string();
    if b.get(i) == Some(&b'/') {
        let end = s[i..].find(',').map_or(b.len(), |e| i + e);
        nsp = s[i..end].to_string();
        i = if end < b.len() { end + 1 } else { end };
    }
    let start = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    let ack = if i > start {
        Some(s[start..i].parse::<u64>().ok()?)
    } else {
        None
    };
    let payload = if i < b.len() {
        Some(serde_json::from_str::<Value>(&s[i..]).ok()?)
    } else {
        None
    };
    let valid = match kind {
        SioType::Connect => ack.is_none() && matches!(payload, None | Some(Value::Object(_))),
        SioType::Disconnect => ack.is_none() && payload.is_none(),
        SioType::Event | SioType::BinaryEvent => matches!(
            &payload,
            Some(Value::Array(a)) if matches!(a.first(), Some(Value::String(_)))
        ),
        SioType::Ack | SioType::BinaryAck => {
            ack.is_some() && matches!(payload, Some(Value::Array(_)))
        }
        SioType::ConnectError => false,
    };
    valid.then_some(SioPacket {
        kind,
        nsp,
        attachments,
        ack,
        payload,
    })
}

/// Encode a Socket.IO packet as the text of an Engine.IO message frame (`4...`).
pub fn encode_packet(p: &SioPacket) -> String {
    let mut s = String::from("4");
    s.push(p.kind.digit());
    if p.attachments > 0 {
        s.push_str(&format!("{}-", p.attachments));
    }
    if p.nsp != "/" {
        s.push_str(&p.nsp);
        s.push(',');
    }
    if let Some(a) = p.ack {
        s.push_str(&a.to_string());
    }
    if let Some(v) = &p.payload {
        s.push_str(&serde_json::to_string(v).unwrap_or_else(|_| "null".into()));
    }
    s
}

/// Replace placeholders `{"_placeholder":true,"num":n}` with `{"$binary": base64}`.
/// `None` when a placeholder points at no attachment.
pub fn fill_placeholders(v: Value, buffers: &[Vec<u8>]) -> Option<Value> {
    Some(match v {
        Value::Object(m) if m.get("_placeholder") == Some(&Value::Bool(true)) && m.len() == 2 => {
            let n = m.get("num")?.as_u64()? as usize;
            json!({"$binary": STANDARD.encode(buffers.get(n)?)})
        }
        Value::Object(m) => {
            let mut out = Map::new();
            for (k, v) in m {
                out.insert(k, fill_placeholders(v, buffers)?);
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(
            a.into_iter()
                .map(|v| fill_placeholders(v, buffers))
                .collect::<Option<Vec<_>>>()?,
        ),
        other => other,
    })
}

/// Replace `{"$binary": base64}` values with placeholders, collecting the bytes.
fn extract_binaries(v: &mut Value, out: &mut Vec<Vec<u8>>) {
    match v {
        Value::Object(m) if m.len() == 1 && m.contains_key("$binary") => {
            if let Some(bytes) = m["$binary"].as_str().and_then(|s| STANDARD.decode(s).ok()) {
                let num = out.len();
                out.push(bytes);
                *v = json!({"_placeholder": true, "num": num});
            }
        }
        Value::Object(m) => m.values_mut().for_each(|v| extract_binaries(v, out)),
        Value::Array(a) => a.iter_mut().for_each(|v| extract_binaries(v, out)),
        _ => {}
    }
}

/// The Engine.IO open packet (`0{...}`): `upgrades` is `["websocket"]` for a polling
/// session, empty for a WebSocket one.
pub fn open_packet(
    sid: &str,
    upgrades: &[&str],
    ping_interval: u64,
    ping_timeout: u64,
    max_payload: usize,
) -> Frame {
    let body = json!({
        "sid": sid,
        "upgrades": upgrades,
        "pingInterval": ping_interval,
        "pingTimeout": ping_timeout,
        "maxPayload": max_payload,
    });
    Frame::Text(Arc::from(format!("0{body}")))
}

/// Where an answer goes: the namespace and ack id recorded in a Socket.IO request id.
fn route_of(id: Option<&Value>) -> (String, Option<u64>) {
    match id {
        Some(Value::Object(m)) => (
            m.get("sio")
                .and_then(Value::as_str)
                .unwrap_or("/")
                .to_string(),
            m.get("ack").and_then(Value::as_u64),
        ),
        _ => ("/".into(), None),
    }
}

/// The arguments a value stands for: the array of `{"$args": [...]}`, else the value.
pub fn spread(data: Value) -> Vec<Value> {
    match data {
        Value::Object(mut m) if m.len() == 1 && matches!(m.get("$args"), Some(Value::Array(_))) => {
            match m.remove("$args") {
                Some(Value::Array(a)) => a,
                _ => Vec::new(),
            }
        }
        other => vec![other],
    }
}

/// The `data` of an event's arguments: none null, one itself, several `{"$args": [...]}`.
pub fn gather(mut args: Vec<Value>) -> Value {
    match args.len() {
        0 => Value::Null,
        1 => args.remove(0),
        _ => json!({"$args": args}),
    }
}

/// The request id the engine gives a Socket.IO request.
pub fn request_id(nsp: &str, ack: Option<u64>) -> Value {
    match ack {
        Some(a) => json!({"sio": nsp, "ack": a}),
        None => json!({"sio": nsp}),
    }
}

/// Build the frames of an event (`event` given; with `ack`, an event that asks the client
/// for an acknowledgement: `2<ack>["event", ...]`) or of an ack (`event` None, `ack`
/// given: `3<ack>[...]`): the text packet, then its attachments.
pub fn packet_frames(
    nsp: &str,
    ack: Option<u64>,
    event: Option<&str>,
    args: Vec<Value>,
) -> Vec<Frame> {
    let mut payload = Vec::with_capacity(args.len() + 1);
    if let Some(e) = event {
        payload.push(Value::String(e.to_string()));
    }
    payload.extend(args);
    let mut payload = Value::Array(payload);
    let mut binaries = Vec::new();
    extract_binaries(&mut payload, &mut binaries);
    let kind = match (event.is_none(), binaries.is_empty()) {
        (true, true) => SioType::Ack,
        (true, false) => SioType::BinaryAck,
        (false, true) => SioType::Event,
        (false, false) => SioType::BinaryEvent,
    };
    let packet = SioPacket {
        kind,
        nsp: nsp.to_string(),
        attachments: binaries.len(),
        ack,
        payload: Some(payload),
    };
    let mut frames = vec![Frame::Text(Arc::from(encode_packet(&packet)))];
    frames.extend(binaries.into_iter().map(|b| Frame::Binary(Arc::from(b))));
    frames
}

/// The bare Engine.IO codec's outbound side: a server message `{"event":"message",
/// "data": text}` is the message packet `4<text>`, `{"$binary": base64}` data a binary
/// frame; anything else is sent as `4` + its `{event, data}` envelope.
#[derive(Debug, Clone, Copy, Default)]
pub struct EngineIoCodec;

impl Codec for EngineIoCodec {
    fn decode(&self, _frame: InFrame<'_>) -> Result<Request, DecodeError> {
        Err(DecodeError {
            code: ErrorCode::InvalidMessage,
            message: "Engine.IO frames are decoded by the engine's session".into(),
            request_id: None,
            unknown: None,
        })
    }

    fn encode(&self, out: Outbound<'_>) -> Frame {
        let env = match out {
            Outbound::Message(m) => encode_message(m),
            Outbound::Raw(v) => encode_raw(v),
        };
        if env.get("event").and_then(Value::as_str) == Some("message") {
            match env.get("data") {
                Some(Value::String(s)) => return Frame::Text(Arc::from(format!("4{s}"))),
                Some(Value::Object(m)) if m.len() == 1 => {
                    if let Some(bytes) = m
                        .get("$binary")
                        .and_then(Value::as_str)
                        .and_then(|s| STANDARD.decode(s).ok())
                    {
                        return Frame::Binary(Arc::from(bytes));
                    }
                }
                _ => {}
            }
        }
        Frame::Text(Arc::from(format!("4{env}")))
    }
}

/// The Socket.IO codec's outbound side (inbound frames are handled by the engine).
#[derive(Debug, Clone, Copy, Default)]
pub struct SocketIoCodec;

impl SocketIoCodec {
    /// Every frame of one outbound message.
    pub fn frames(out: Outbound<'_>) -> Vec<Frame> {
        let env = match out {
            Outbound::Message(m) => encode_message(m),
            Outbound::Raw(v) => encode_raw(v),
        };
        let Value::Object(mut env) = env else {
            return Vec::new();
        };
        let event = env
            .get("event")
            .and_then(Value::as_str)
            .unwrap_or("message")
            .to_string();
        let (mut nsp, ack) = route_of(env.get("id"));
        // Server-API messages may name the namespace they go to.
        if let Some(Value::String(n)) = env.get("namespace") {
            nsp = n.clone();
        }
        let args = spread(env.shift_remove("data").unwrap_or(Value::Null));
        match ack {
            Some(_) => {
                // The answer to a request with an ack: the ack's single argument is the
                // answer's data; errors are `{"error": {code, message}}`.
                let args = if event == "error" {
                    vec![json!({"error": args.into_iter().next().unwrap_or(Value::Null)})]
                } else {
                    args
                };
                packet_frames(&nsp, ack, None, args)
            }
            None => packet_frames(&nsp, None, Some(&event), args),
        }
    }
}

impl Codec for SocketIoCodec {
    fn decode(&self, _frame: InFrame<'_>) -> Result<Request, DecodeError> {
        // Socket.IO frames are stateful (namespaces, attachments): the engine parses them.
        Err(DecodeError {
            code: ErrorCode::InvalidMessage,
            message: "Socket.IO frames are decoded by the engine's session".into(),
            request_id: None,
            unknown: None,
        })
    }

    fn encode(&self, out: Outbound<'_>) -> Frame {
        Self::frames(out)
            .into_iter()
            .next()
            .unwrap_or_else(|| Frame::Text(Arc::from("6")))
    }

    fn encode_all(&self, out: Outbound<'_>) -> Frames {
        Self::frames(out).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::ServerMessage;

    fn texts(frames: &[Frame]) -> Vec<String> {
        frames
            .iter()
            .map(|f| match f {
                Frame::Text(t) => t.to_string(),
                Frame::Binary(b) => format!("<{b:?}>"),
            })
            .collect()
    }

    #[test]
    fn parses_connect_event_ack_and_binary_packets() {
        let p = parse_packet("0").unwrap();
        assert_eq!(
            (p.kind, p.nsp.as_str(), p.payload),
            (SioType::Connect, "/", None)
        );
        let p = parse_packet(r#"0/custom,{"token":"abc"}"#).unwrap();
        assert_eq!(p.nsp, "/custom");
        assert_eq!(p.payload, Some(json!({"token": "abc"})));
        let p = parse_packet("0/custom").unwrap();
        assert_eq!(p.nsp, "/custom");
        let p = parse_packet(r#"2456["message-with-ack",1]"#).unwrap();
        assert_eq!((p.kind, p.ack), (SioType::Event, Some(456)));
        let p = parse_packet(r#"52-["m",{"_placeholder":true,"num":0}]"#).unwrap();
        assert_eq!((p.kind, p.attachments), (SioType::BinaryEvent, 2));
        let p = parse_packet(r#"3/admin,12["x"]"#).unwrap();
        assert_eq!(
            (p.kind, p.nsp.as_str(), p.ack),
            (SioType::Ack, "/admin", Some(12))
        );
    }

    #[test]
    fn rejects_malformed_packets() {
        for s in [
            "", "abc", "9", "2", "2[]", "2[1]", "2{}", "0[1]", "0\"x\"", "1{}", "3[1]", "5[\"a\"]",
            "2[\"a\"", "4{}",
        ] {
            assert!(parse_packet(s).is_none(), "{s:?}");
        }
    }

    #[test]
    fn placeholders_round_trip_through_binary_values() {
        let v =
            json!(["m", {"_placeholder": true, "num": 1}, {"a": {"_placeholder": true, "num": 0}}]);
        let filled = fill_placeholders(v, &[vec![1, 2], vec![3]]).unwrap();
        assert_eq!(filled[1], json!({"$binary": "Aw=="}));
        assert_eq!(filled[2]["a"], json!({"$binary": "AQI="}));
        assert!(fill_placeholders(json!({"_placeholder": true, "num": 5}), &[]).is_none());
        let frames = packet_frames("/", None, Some("back"), vec![filled[1].clone()]);
        assert_eq!(
            texts(&frames),
            vec![
                r#"451-["back",{"_placeholder":true,"num":0}]"#.to_string(),
                "<[3]>".to_string()
            ]
        );
    }

    #[test]
    fn answers_go_to_their_namespace_as_acks_or_events() {
        let pong = ServerMessage::Pong {
            timestamp: 5,
            request_id: Some(request_id("/custom", Some(7))),
        };
        assert_eq!(
            texts(&SocketIoCodec::frames(Outbound::Message(&pong))),
            vec![r#"43/custom,7[{"timestamp":5}]"#]
        );
        let pong = ServerMessage::Pong {
            timestamp: 5,
            request_id: Some(request_id("/", None)),
        };
        assert_eq!(
            texts(&SocketIoCodec::frames(Outbound::Message(&pong))),
            vec![r#"42["pong",{"timestamp":5}]"#]
        );
        let err = ServerMessage::Error {
            code: ErrorCode::NotFound,
            reason: None,
            message: "m".into(),
            request_id: Some(request_id("/", Some(1))),
        };
        assert_eq!(
            texts(&SocketIoCodec::frames(Outbound::Message(&err))),
            vec![r#"431[{"error":{"code":"NOT_FOUND","message":"m"}}]"#]
        );
        let raw = json!({"event": "message-back", "data": {"$args": [1, "2", {"3": [true]}]}});
        assert_eq!(
            texts(&SocketIoCodec::frames(Outbound::Raw(&raw))),
            vec![r#"42["message-back",1,"2",{"3":[true]}]"#]
        );
        let raw = json!({"event": "auth", "data": {}, "namespace": "/custom"});
        assert_eq!(
            texts(&SocketIoCodec::frames(Outbound::Raw(&raw))),
            vec![r#"42/custom,["auth",{}]"#]
        );
        let reply = ServerMessage::Reply {
            request_id: Some(request_id("/", Some(456))),
            data: json!({"$args": [1, "2"]}),
        };
        assert_eq!(
            texts(&SocketIoCodec::frames(Outbound::Message(&reply))),
            vec![r#"43456[1,"2"]"#]
        );
        assert_eq!(
            texts(&SocketIoCodec::frames(Outbound::Raw(&json!("plain")))),
            vec![r#"42["message","plain"]"#]
        );
    }
}
