//! The `{event, data}` envelope codec (`routes[].codec = "event"`), as YektaYar's native
//! WebSocket clients speak it.
//!
//! Inbound: `{"event": name, "data"?: ..., "id"?: ...}`. A built-in type's fields come
//! from `data` (an object; absent or null means none), `id` is the request id. Any other
//! event is an application message (its `data` verbatim) or, when the deployment does not
//! declare it, one of YektaYar's compatibility built-ins (`status`, `echo`, `info`,
//! `message`, answered by the engine) or `UNKNOWN_MESSAGE_TYPE`.
//!
//! Outbound: every server message becomes `{"event": type, "data": {its other fields},
//! "id"?: requestId}`; `reply` carries the handler's value itself as `data`; the welcome
//! is `{"event":"connected","data":{"message","socketId","isLoggedIn","user",...}}`.
//! Server-API messages that already are an `{event, ...}` object go out verbatim; any
//! other value is wrapped as `{"event":"message","data":value}`.

use std::sync::Arc;

use serde_json::{Map, Value};

use super::codec::{decode_value, json_kind, parse_frame, Codec, DecodeError, Outbound};
use super::{Frame, InFrame, Request, ServerMessage, CLIENT_TYPES};
use crate::error::ErrorCode;

/// YektaYar's compatibility built-ins: the event a client sends and the event it is
/// answered with. The engine answers them on envelope routes unless the deployment
/// declares an application message of the same name.
pub const COMPAT_EVENTS: &[(&str, &str)] = &[
    ("status", "status_response"),
    ("echo", "echo_response"),
    ("info", "info_response"),
    ("message", "message_received"),
];

/// The answer event of a compatibility built-in, if `event` is one.
pub fn compat_answer(event: &str) -> Option<&'static str> {
    COMPAT_EVENTS
        .iter()
        .find(|(e, _)| *e == event)
        .map(|(_, a)| *a)
}

/// The `{event, data}` envelope codec.
#[derive(Debug, Clone, Copy, Default)]
pub struct EnvelopeCodec;

fn invalid(message: String, request_id: Option<Value>) -> DecodeError {
    DecodeError {
        code: ErrorCode::InvalidMessage,
        message,
        request_id,
        unknown: None,
    }
}

impl Codec for EnvelopeCodec {
    fn decode(&self, frame: InFrame<'_>) -> Result<Request, DecodeError> {
        decode_envelope(parse_frame(frame)?)
    }

    fn encode(&self, out: Outbound<'_>) -> Frame {
        let value = match out {
            Outbound::Message(m) => encode_message(m),
            Outbound::Raw(v) => encode_raw(v),
        };
        let text = serde_json::to_string(&value).unwrap_or_else(|_| {
            r#"{"event":"error","data":{"code":"INTERNAL_ERROR","message":"message could not be encoded"}}"#
                .to_string()
        });
        Frame::Text(Arc::from(text))
    }
}

/// Turn a parsed envelope into a request.
pub fn decode_envelope(value: Value) -> Result<Request, DecodeError> {
    let Value::Object(mut map) = value else {
        return Err(invalid(
            format!(
                "a message must be a JSON object with an `event` field, got {}",
                json_kind(&value)
            ),
            None,
        ));
    };
    let id = map.remove("id");
    let event = match map.remove("event") {
        Some(Value::String(s)) => s,
        Some(other) => {
            return Err(invalid(
                format!("`event` must be a string, got {}", json_kind(&other)),
                id,
            ))
        }
        None => return Err(invalid("missing `event` field".into(), id)),
    };
    let data = map.remove("data").unwrap_or(Value::Null);
    if !CLIENT_TYPES.contains(&event.as_str()) {
        return Err(DecodeError {
            code: ErrorCode::UnknownMessageType,
            message: format!("Unknown event: {}", truncate(&event, 64)),
            request_id: id,
            unknown: Some(Box::new((event, data))),
        });
    }
    let mut fields = match data {
        Value::Object(m) => m,
        Value::Null => Map::new(),
        // `ping` carries no fields; YektaYar clients send `{}` or nothing, tolerate any.
        _ if event == "ping" => Map::new(),
        other => {
            return Err(invalid(
                format!(
                    "`data` of `{event}` must be an object holding its fields, got {}",
                    json_kind(&other)
                ),
                id,
            ))
        }
    };
    // The envelope's `id` is the request id; a `requestId` inside `data` is ignored.
    fields.shift_remove("requestId");
    fields.insert("type".into(), Value::String(event));
    let mut req = decode_value(Value::Object(fields)).map_err(|mut e| {
        e.request_id = id.clone();
        e
    })?;
    req.request_id = id;
    Ok(req)
}

/// A server message as an envelope.
pub fn encode_message(m: &ServerMessage) -> Value {
    let event = m.type_name();
    let Ok(Value::Object(mut fields)) = serde_json::to_value(m) else {
        return envelope(event, Value::Null, None);
    };
    fields.shift_remove("type");
    let id = fields.shift_remove("requestId");
    let data = match m {
        ServerMessage::Reply { data, .. } => data.clone(),
        ServerMessage::Connected {
            client_id, user, ..
        } => {
            let mut d = Map::new();
            d.insert("message".into(), Value::String("Connected".into()));
            d.insert("socketId".into(), Value::String(client_id.clone()));
            d.insert("isLoggedIn".into(), Value::Bool(!user.is_null()));
            for (k, v) in fields {
                d.insert(k, v);
            }
            Value::Object(d)
        }
        _ => Value::Object(fields),
    };
    envelope(event, data, id)
}

/// A server-API value as an envelope: verbatim when it is an object with a string
/// `event`, otherwise wrapped as the data of a `message` event.
pub fn encode_raw(v: &Value) -> Value {
    match v {
        Value::Object(m) if matches!(m.get("event"), Some(Value::String(_))) => v.clone(),
        other => envelope("message", other.clone(), None),
    }
}

/// `{"event": event, "data": data, "id"?: id}`.
pub fn envelope(event: &str, data: Value, id: Option<Value>) -> Value {
    let mut o = Map::new();
    o.insert("event".into(), Value::String(event.into()));
    o.insert("data".into(), data);
    if let Some(id) = id {
        o.insert("id".into(), id);
    }
    Value::Object(o)
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::ClientMessage;
    use serde_json::json;

    fn dec(v: Value) -> Result<Request, DecodeError> {
        EnvelopeCodec.decode(InFrame::Text(&v.to_string()))
    }

    fn enc(m: &ServerMessage) -> Value {
        let f = EnvelopeCodec.encode(Outbound::Message(m));
        serde_json::from_str(f.as_text().unwrap()).unwrap()
    }

    #[test]
    fn built_in_fields_come_from_data_and_id_is_the_request_id() {
        let r = dec(json!({"event": "subscribe", "data": {"channel": "news"}, "id": 3})).unwrap();
        assert_eq!(r.request_id, Some(json!(3)));
        assert!(
            matches!(r.message, ClientMessage::Subscribe { channel: Some(ref c), .. } if c == "news")
        );
        let r = dec(json!({"event": "ping"})).unwrap();
        assert_eq!((r.message, r.request_id), (ClientMessage::Ping, None));
        let r = dec(json!({"event": "ping", "data": "x"})).unwrap();
        assert_eq!(r.message, ClientMessage::Ping);
    }

    #[test]
    fn request_id_inside_data_is_not_the_request_id() {
        let r = dec(json!({"event": "ping", "data": {"requestId": 9}})).unwrap();
        assert_eq!(r.request_id, None);
    }

    #[test]
    fn malformed_envelopes_are_invalid_messages_with_their_id() {
        for (v, id) in [
            (json!([1]), None),
            (json!({"data": {}}), None),
            (json!({"event": 5, "id": "a"}), Some(json!("a"))),
            (
                json!({"event": "join", "data": "lobby", "id": 1}),
                Some(json!(1)),
            ),
            (
                json!({"event": "get", "data": {"resource": "r"}, "id": 2}),
                Some(json!(2)),
            ),
        ] {
            let e = dec(v.clone()).unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidMessage, "{v}");
            assert_eq!(e.request_id, id, "{v}");
        }
        let e = EnvelopeCodec.decode(InFrame::Text("{no")).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidJson);
    }

    #[test]
    fn other_events_are_unknown_with_their_data() {
        let e = dec(json!({"event": "chat", "data": [1, 2], "id": 7})).unwrap_err();
        assert_eq!(e.code, ErrorCode::UnknownMessageType);
        assert_eq!(e.request_id, Some(json!(7)));
        assert_eq!(*e.unknown.unwrap(), ("chat".to_string(), json!([1, 2])));
    }

    #[test]
    fn server_messages_become_envelopes() {
        assert_eq!(
            enc(&ServerMessage::Pong {
                timestamp: 5,
                request_id: Some(json!(1))
            }),
            json!({"event": "pong", "data": {"timestamp": 5}, "id": 1})
        );
        assert_eq!(
            enc(&ServerMessage::Error {
                code: ErrorCode::NotFound,
                reason: None,
                message: "m".into(),
                request_id: None
            }),
            json!({"event": "error", "data": {"code": "NOT_FOUND", "message": "m"}})
        );
        assert_eq!(
            enc(&ServerMessage::Reply {
                request_id: Some(json!("r")),
                data: json!([1])
            }),
            json!({"event": "reply", "data": [1], "id": "r"})
        );
        let w = enc(&ServerMessage::Connected {
            client_id: "c1".into(),
            user: json!({"id": "u1"}),
            timestamp: "t".into(),
            protocol_version: 1,
        });
        assert_eq!(w["event"], "connected");
        assert_eq!(w["data"]["socketId"], "c1");
        assert_eq!(w["data"]["isLoggedIn"], true);
        assert_eq!(w["data"]["user"], json!({"id": "u1"}));
    }

    #[test]
    fn raw_values_are_enveloped_unless_they_already_are() {
        let f = EnvelopeCodec.encode(Outbound::Raw(&json!({"event": "x", "data": 1})));
        assert_eq!(f.as_text().unwrap(), r#"{"event":"x","data":1}"#);
        let f = EnvelopeCodec.encode(Outbound::Raw(&json!({"type": "news"})));
        assert_eq!(
            f.as_text().unwrap(),
            r#"{"event":"message","data":{"type":"news"}}"#
        );
    }

    #[test]
    fn compat_events_have_answers() {
        assert_eq!(compat_answer("status"), Some("status_response"));
        assert_eq!(compat_answer("message"), Some("message_received"));
        assert_eq!(compat_answer("ping"), None);
    }
}
