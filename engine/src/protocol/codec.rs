//! Codecs: frames ⇄ typed messages. Protocol logic never sees bytes.
//!
//! A codec decodes an inbound frame into a [`Request`] (or a [`DecodeError`] carrying the
//! error code and any `requestId` it could recover) and encodes outbound messages into
//! frames. The JSON codec is protocol v1; an `{event, data}` envelope codec and a
//! Socket.IO codec plug in by implementing [`Codec`] and adding a [`CodecKind`] variant.

use std::sync::Arc;

use serde_json::{Map, Value};
use smallvec::{smallvec, SmallVec};

use super::{ClientMessage, Frame, InFrame, Request, ServerMessage, CLIENT_TYPES};
use crate::config::CodecKind;
use crate::error::ErrorCode;

/// Why a frame could not be decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodeError {
    /// `INVALID_JSON`, `INVALID_MESSAGE` or `UNKNOWN_MESSAGE_TYPE`.
    pub code: ErrorCode,
    /// What was wrong, for the client.
    pub message: String,
    /// The `requestId`, if the frame was an object that carried one.
    pub request_id: Option<Value>,
    /// For `UNKNOWN_MESSAGE_TYPE`: the type and the `data` field (null when absent),
    /// so the engine can dispatch a type the deployment declares in `[messages]`.
    pub unknown: Option<Box<(String, Value)>>,
}

/// Something to encode.
#[derive(Debug, Clone, Copy)]
pub enum Outbound<'a> {
    /// A protocol message.
    Message(&'a ServerMessage),
    /// A verbatim JSON value from the server API.
    Raw(&'a Value),
}

impl Outbound<'_> {
    /// The type label of what is sent: the protocol message's `type`, or
    /// [`Outbound::RAW_TYPE`] for verbatim server-API messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Outbound::Message(m) => m.type_name(),
            Outbound::Raw(_) => Self::RAW_TYPE,
        }
    }

    /// The type label of verbatim server-API messages (`broadcast`, `sendTo`,
    /// `broadcastToResource`), which have no protocol type.
    pub const RAW_TYPE: &'static str = "raw";
}

/// The frames one outbound message takes: one, kept inline, except for Socket.IO
/// packets with binary attachments.
pub type Frames = SmallVec<[Frame; 1]>;

/// A wire codec.
pub trait Codec {
    /// Decode one inbound frame.
    fn decode(&self, frame: InFrame<'_>) -> Result<Request, DecodeError>;
    /// Encode one outbound message into a frame.
    fn encode(&self, out: Outbound<'_>) -> Frame;
    /// Encode one outbound message into every frame it takes (Socket.IO binary
    /// attachments follow their packet); one frame for the other codecs.
    fn encode_all(&self, out: Outbound<'_>) -> Frames {
        smallvec![self.encode(out)]
    }
}

/// The codec for a route's [`CodecKind`].
pub fn codec_for(kind: CodecKind) -> &'static dyn Codec {
    match kind {
        CodecKind::Json => &JsonCodec,
        CodecKind::Event => &super::envelope::EnvelopeCodec,
        CodecKind::SocketIo => &super::socketio::SocketIoCodec,
        CodecKind::EngineIo => &super::socketio::EngineIoCodec,
    }
}

/// Protocol v1: one JSON object per text (or binary) frame, `type` selects the message.
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonCodec;

impl Codec for JsonCodec {
    fn decode(&self, frame: InFrame<'_>) -> Result<Request, DecodeError> {
        if let Some(request) = super::head::decode(frame) {
            return Ok(request);
        }
        decode_via_value(frame)
    }

    fn encode(&self, out: Outbound<'_>) -> Frame {
        let text = match out {
            Outbound::Message(m) => serde_json::to_string(m),
            Outbound::Raw(v) => serde_json::to_string(v),
        };
        // Serializing these types cannot fail (string keys, no non-finite floats from
        // serde_json values); fall back to a valid error frame rather than panic.
        let text = text.unwrap_or_else(|_| {
            r#"{"type":"error","code":"INTERNAL_ERROR","message":"message could not be encoded"}"#
                .to_string()
        });
        Frame::Text(Arc::from(text))
    }
}

/// Decode a v1 frame by parsing it into a `Value` first: the path that names what is
/// wrong with a frame, and reads application message types ([`super::head`] takes the
/// well-formed protocol messages without building the tree).
fn decode_via_value(frame: InFrame<'_>) -> Result<Request, DecodeError> {
    decode_value(parse_frame(frame)?)
}

/// Parse a text or binary frame as JSON (`INVALID_JSON` when it is not).
pub fn parse_frame(frame: InFrame<'_>) -> Result<Value, DecodeError> {
    let parsed: Result<Value, _> = match frame {
        InFrame::Text(t) => serde_json::from_str(t),
        InFrame::Binary(b) => serde_json::from_slice(b),
    };
    parsed.map_err(|e| DecodeError {
        code: ErrorCode::InvalidJson,
        message: format!("Invalid JSON format: {e}"),
        request_id: None,
        unknown: None,
    })
}

/// Turn a parsed JSON value into a request (shared by codecs that carry JSON objects).
pub fn decode_value(value: Value) -> Result<Request, DecodeError> {
    let Value::Object(mut map) = value else {
        return Err(DecodeError {
            code: ErrorCode::InvalidMessage,
            message: format!(
                "a message must be a JSON object with a `type` field, got {}",
                json_kind(&value)
            ),
            request_id: None,
            unknown: None,
        });
    };
    let request_id = map.remove("requestId");
    let type_name = match map.get("type") {
        Some(Value::String(s)) => s.clone(),
        Some(other) => {
            return Err(DecodeError {
                code: ErrorCode::InvalidMessage,
                message: format!("`type` must be a string, got {}", json_kind(other)),
                request_id,
                unknown: None,
            })
        }
        None => {
            return Err(DecodeError {
                code: ErrorCode::InvalidMessage,
                message: "missing `type` field".into(),
                request_id,
                unknown: None,
            })
        }
    };
    if !CLIENT_TYPES.contains(&type_name.as_str()) {
        let data = map.remove("data").unwrap_or(Value::Null);
        return Err(DecodeError {
            code: ErrorCode::UnknownMessageType,
            message: format!("Unknown message type: {}", truncate(&type_name, 64)),
            request_id,
            unknown: Some(Box::new((type_name, data))),
        });
    }
    match serde_json::from_value::<ClientMessage>(Value::Object(map)) {
        Ok(message) => Ok(Request {
            request_id,
            message,
        }),
        Err(e) => Err(DecodeError {
            code: ErrorCode::InvalidMessage,
            message: format!("invalid `{type_name}` message: {e}"),
            request_id,
            unknown: None,
        }),
    }
}

/// A short name of a JSON value's kind, for error messages.
pub fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
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

/// Build an object from pairs (helper for tests and hosts).
pub fn object(pairs: impl IntoIterator<Item = (&'static str, Value)>) -> Value {
    Value::Object(
        pairs
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect::<Map<_, _>>(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn dec(s: &str) -> Result<Request, DecodeError> {
        JsonCodec.decode(InFrame::Text(s))
    }

    #[test]
    fn type_names_match_the_wire_type() {
        use crate::protocol::MemberView;
        let s = || "x".to_string();
        let member = || MemberView {
            client_id: s(),
            user: Value::Null,
            info: None,
        };
        let msgs = vec![
            ServerMessage::Connected {
                client_id: s(),
                user: Value::Null,
                timestamp: s(),
                protocol_version: 1,
            },
            ServerMessage::Pong {
                timestamp: 1,
                request_id: None,
            },
            ServerMessage::Subscribed {
                subscription_id: s(),
                resource: None,
                channel: None,
                filter: None,
                events: None,
                stream: None,
                request_id: None,
            },
            ServerMessage::Unsubscribed {
                subscription_ids: vec![],
                resource: None,
                channel: None,
                filter: None,
                request_id: None,
            },
            ServerMessage::Event {
                event: crate::config::ChangeKind::Insert,
                resource: s(),
                data: Value::Null,
                timestamp: s(),
                offset: None,
                epoch: None,
            },
            ServerMessage::Data {
                resource: s(),
                data: Value::Null,
                cursor: None,
                request_id: None,
            },
            ServerMessage::Inserted {
                resource: s(),
                data: Value::Null,
                request_id: None,
            },
            ServerMessage::Updated {
                resource: s(),
                data: Value::Null,
                request_id: None,
            },
            ServerMessage::Deleted {
                resource: s(),
                id: s(),
                request_id: None,
            },
            ServerMessage::Published {
                channel: s(),
                delivered: 0,
                request_id: None,
            },
            ServerMessage::Message {
                channel: s(),
                from: s(),
                data: None,
                timestamp: s(),
                offset: None,
                epoch: None,
            },
            ServerMessage::History {
                channel: s(),
                publications: vec![],
                offset: 0,
                epoch: "e".into(),
                request_id: None,
            },
            ServerMessage::Presence {
                channel: s(),
                clients: vec![member()],
                request_id: None,
            },
            ServerMessage::PresenceStats {
                channel: s(),
                clients: 1,
                users: 0,
                request_id: None,
            },
            ServerMessage::PresenceJoin {
                channel: s(),
                member: member(),
            },
            ServerMessage::PresenceLeave {
                channel: s(),
                member: member(),
            },
            ServerMessage::Joined {
                room: s(),
                members: 1,
                request_id: None,
            },
            ServerMessage::Left {
                room: s(),
                request_id: None,
            },
            ServerMessage::RoomJoined {
                room: s(),
                member: member(),
            },
            ServerMessage::RoomLeft {
                room: s(),
                client_id: s(),
            },
            ServerMessage::RoomMessage {
                room: s(),
                from: s(),
                event: None,
                data: None,
                timestamp: s(),
            },
            ServerMessage::RoomMembers {
                room: s(),
                members: vec![member()],
                request_id: None,
            },
            ServerMessage::Sent {
                delivered: 0,
                request_id: None,
            },
            ServerMessage::Direct {
                from: s(),
                data: None,
                timestamp: s(),
            },
            ServerMessage::Refreshed {
                user: Value::Null,
                expires_at: None,
                request_id: None,
            },
            ServerMessage::TokenExpiring { expires_at: s() },
            ServerMessage::Error {
                code: ErrorCode::Timeout,
                reason: None,
                message: s(),
                request_id: None,
            },
        ];
        for m in &msgs {
            let v = serde_json::to_value(m).unwrap();
            assert_eq!(v["type"], m.type_name());
            assert_eq!(Outbound::Message(m).type_name(), m.type_name());
        }
        assert_eq!(
            Outbound::Raw(&json!({"type": "connected"})).type_name(),
            "raw"
        );
    }

    #[test]
    fn ping_with_request_ids_of_every_kind() {
        for rid in [
            json!(0),
            json!(""),
            json!(null),
            json!("a"),
            json!(42),
            json!({"x":1}),
        ] {
            let r = dec(&json!({"type":"ping","requestId":rid}).to_string()).unwrap();
            assert_eq!(r.request_id, Some(rid));
            assert_eq!(r.message, ClientMessage::Ping);
        }
        assert_eq!(dec(r#"{"type":"ping"}"#).unwrap().request_id, None);
    }

    #[test]
    fn invalid_json() {
        let e = dec("{nope").unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidJson);
        let e = JsonCodec
            .decode(InFrame::Binary(&[0xff, 0xfe]))
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidJson);
    }

    #[test]
    fn non_objects_are_invalid_messages() {
        for s in ["null", "[1]", "42", "\"str\"", "true"] {
            let e = dec(s).unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidMessage, "{s}");
        }
    }

    #[test]
    fn type_problems() {
        assert_eq!(dec(r#"{}"#).unwrap_err().code, ErrorCode::InvalidMessage);
        assert_eq!(
            dec(r#"{"type":5,"requestId":1}"#).unwrap_err().request_id,
            Some(json!(1))
        );
        let e = dec(r#"{"type":"PING","requestId":"r"}"#).unwrap_err();
        assert_eq!(e.code, ErrorCode::UnknownMessageType);
        assert_eq!(e.request_id, Some(json!("r")));
    }

    #[test]
    fn missing_fields_name_the_field() {
        let e = dec(r#"{"type":"get","resource":"users","requestId":7}"#).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidMessage);
        assert!(e.message.contains("`id`"), "{}", e.message);
        assert_eq!(e.request_id, Some(json!(7)));
    }

    #[test]
    fn binary_json_is_accepted() {
        let r = JsonCodec
            .decode(InFrame::Binary(br#"{"type":"ping"}"#))
            .unwrap();
        assert_eq!(r.message, ClientMessage::Ping);
    }

    #[test]
    fn join_accepts_channel_alias_and_extra_fields_are_ignored() {
        let r = dec(r#"{"type":"join","channel":"lobby","userInfo":{}}"#).unwrap();
        assert_eq!(
            r.message,
            ClientMessage::Join {
                room: "lobby".into()
            }
        );
    }

    #[test]
    fn encode_puts_type_first_and_skips_absent_request_id() {
        let f = JsonCodec.encode(Outbound::Message(&ServerMessage::Pong {
            timestamp: 5,
            request_id: None,
        }));
        assert_eq!(f.as_text().unwrap(), r#"{"type":"pong","timestamp":5}"#);
        let f = JsonCodec.encode(Outbound::Message(&ServerMessage::Error {
            code: ErrorCode::NotFound,
            reason: None,
            message: "m".into(),
            request_id: Some(json!(0)),
        }));
        assert_eq!(
            f.as_text().unwrap(),
            r#"{"type":"error","code":"NOT_FOUND","message":"m","requestId":0}"#
        );
    }

    #[test]
    fn long_unknown_types_are_truncated_in_messages() {
        let t = "x".repeat(500);
        let e = dec(&json!({"type": t}).to_string()).unwrap_err();
        assert!(e.message.len() < 100);
    }

    /// Generated frames for the property below: objects whose keys are the protocol's
    /// field names (repeated, reordered, escaped, or unknown) with values of every JSON
    /// kind, and some frames that are not objects or not JSON at all.
    mod frames {
        use proptest::prelude::*;
        use proptest::sample::select;

        use crate::protocol::CLIENT_TYPES;

        const KEYS: &[&str] = &[
            "type",
            "requestId",
            "channel",
            "room",
            "resource",
            "message",
            "data",
            "filter",
            "id",
            "to",
            "limit",
            "cursor",
            "since",
            "events",
            "ack",
            "event",
            "token",
            "reverse",
            "subscriptionId",
            "extra",
            r"typ\u0065",
            r"request\u0049d",
            // serde_json's raw-value marker, which a `Value` parse reads specially.
            "$serde_json::private::RawValue",
            r"$serde_json::private::RawValu\u0065",
        ];
        const SCALARS: &[&str] = &[
            "null",
            "true",
            "false",
            "0",
            "-0",
            "1",
            "-1",
            "7",
            "2.5",
            "1e3",
            "1.0",
            "18446744073709551615",
            "18446744073709551616",
            "-9223372036854775809",
            "\"\"",
            "\"a\"",
            "\"lobby\"",
            "\"c\\u0031\"",
            "\"\\ud83d\\ude00\"",
            "\"insert\"",
            "\"update\"",
            "\"delete\"",
            "\"e\"",
            // Out of range, unpaired surrogates; `¤` becomes invalid UTF-8 in binary frames.
            "1e400",
            "-1e400",
            r#""\ud800""#,
            r#""x\udc00""#,
            "\"a¤b\"",
        ];

        fn value() -> impl Strategy<Value = String> {
            let leaf = prop_oneof![
                4 => select(SCALARS).prop_map(str::to_string),
                1 => (120usize..140).prop_map(|depth| format!("{}{}", "[".repeat(depth), "]".repeat(depth))),
                1 => Just("9".repeat(400)),
                1 => select(CLIENT_TYPES).prop_map(|t| format!("\"{t}\"")),
                1 => "[a-z]{0,6}".prop_map(|s| format!("\"{s}\"")),
                1 => any::<i64>().prop_map(|n| n.to_string()),
                1 => any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(|f| f.to_string()),
            ];
            leaf.prop_recursive(3, 16, 4, |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..4)
                        .prop_map(|items| format!("[{}]", items.join(","))),
                    prop::collection::vec((select(KEYS), inner), 0..4).prop_map(|pairs| {
                        let fields: Vec<String> =
                            pairs.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
                        format!("{{{}}}", fields.join(","))
                    }),
                ]
            })
        }

        /// A value of the kind the protocol expects under `key` (which a message of any
        /// type may still get wrong).
        fn plausible(key: &'static str) -> BoxedStrategy<String> {
            match key {
                "message" | "data" | "filter" => prop_oneof![
                    3 => prop::collection::vec((select(KEYS), value()), 0..3).prop_map(|pairs| {
                        let fields: Vec<String> =
                            pairs.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
                        format!("{{{}}}", fields.join(","))
                    }),
                    1 => value(),
                ]
                .boxed(),
                "limit" => (0u64..200).prop_map(|n| n.to_string()).boxed(),
                "since" => (0u64..9, select(&["\"e\"", "\"\"", "1"][..]))
                    .prop_map(|(o, e)| format!(r#"{{"offset":{o},"epoch":{e}}}"#))
                    .boxed(),
                "events" => {
                    select(&[r#"["insert"]"#, r#"["update","delete"]"#, "[]", r#"["x"]"#][..])
                        .prop_map(str::to_string)
                        .boxed()
                }
                "ack" | "reverse" => any::<bool>().prop_map(|b| b.to_string()).boxed(),
                "requestId" => value().boxed(),
                _ => "[a-z0-9]{0,5}".prop_map(|s| format!("\"{s}\"")).boxed(),
            }
        }

        /// The fields a message of type `t` needs.
        fn required(t: &str) -> &'static [&'static str] {
            match t {
                "publish" | "history" | "presence" | "presence:stats" => &["channel"],
                "get" | "delete" => &["resource", "id"],
                "list" => &["resource"],
                "insert" => &["resource", "data"],
                "update" => &["resource", "id", "data"],
                "join" | "leave" | "room:message" | "room:members" => &["room"],
                "direct" => &["to"],
                "refresh" => &["token"],
                _ => &[],
            }
        }

        fn field() -> impl Strategy<Value = String> {
            prop_oneof![
                4 => select(KEYS).prop_flat_map(|k| plausible(k).prop_map(move |v| format!("\"{k}\":{v}"))),
                1 => (select(KEYS), value()).prop_map(|(k, v)| format!("\"{k}\":{v}")),
            ]
        }

        /// An object frame: a `type` (usually one the protocol defines), the fields that
        /// type needs (most of the time), and other fields, in any order.
        fn object() -> impl Strategy<Value = String> {
            let type_name = prop_oneof![
                8 => select(CLIENT_TYPES),
                1 => select(&["PING", "my:event", "pin\\u0067"][..]),
            ];
            type_name.prop_flat_map(|t| {
                let needed: Vec<BoxedStrategy<Option<String>>> = required(t)
                    .iter()
                    .map(|k| {
                        proptest::option::weighted(0.9, plausible(k))
                            .prop_map(move |v| v.map(|v| format!("\"{k}\":{v}")))
                            .boxed()
                    })
                    .collect();
                (
                    needed,
                    prop::collection::vec(field(), 0..4),
                    any::<prop::sample::Index>(),
                )
                    .prop_map(move |(needed, extra, at)| {
                        let mut fields: Vec<String> = needed.into_iter().flatten().collect();
                        fields.extend(extra);
                        let at = at.index(fields.len() + 1);
                        fields.insert(at, format!("\"type\":\"{t}\""));
                        format!("{{{}}}", fields.join(","))
                    })
            })
        }

        /// One frame's text.
        pub fn frame() -> impl Strategy<Value = String> {
            prop_oneof![
                12 => object(),
                1 => value(),
                1 => (value(), select(&["", " ", "\n", " x", "}", ",{}"][..]))
                    .prop_map(|(v, tail)| format!("{v}{tail}")),
            ]
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config {
            cases: 2000,
            rng_seed: proptest::test_runner::RngSeed::Fixed(0x6865_6164),
            ..Default::default()
        })]

        /// The head decoder is only a shortcut: every frame decodes (or fails) exactly as
        /// it does through the `Value` path, as text and as binary.
        #[test]
        fn decoding_from_the_head_equals_decoding_through_a_value(frame in frames::frame()) {
            // The generated frames are ASCII but for `¤` (0xC2 0xA4), whose bytes become
            // 0xFF 0xFF: a binary frame that is not UTF-8.
            let invalid_utf8: Vec<u8> =
                frame.bytes().map(|b| if b == 0xc2 || b == 0xa4 { 0xff } else { b }).collect();
            let binary = [InFrame::Text(&frame), InFrame::Binary(frame.as_bytes())];
            for input in binary.into_iter().chain((!frame.is_ascii()).then_some(InFrame::Binary(&invalid_utf8))) {
                let (fast, slow) = (JsonCodec.decode(input), decode_via_value(input));
                // `Debug` shows key order, which `==` on objects does not compare.
                proptest::prop_assert_eq!(format!("{fast:?}"), format!("{slow:?}"), "{}", frame);
                proptest::prop_assert_eq!(fast, slow, "{}", frame);
            }
        }
    }
}
