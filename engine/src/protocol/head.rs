//! The request head: a v1 frame's `type` and `requestId`, read straight from its bytes.
//!
//! [`JsonCodec`](super::codec::JsonCodec) used to parse every frame into a
//! `serde_json::Value` (an object of owned keys and values) and then turn that object
//! into the typed [`ClientMessage`]. For the frames that are well formed, which are nearly
//! all of them, that tree is built only to be taken apart again. [`decode`] reads the
//! typed request from the frame itself instead:
//!
//! 1. one pass reads the `type` (only if it is one of [`CLIENT_TYPES`]) and the
//!    `requestId`, and skips every other value without building it;
//! 2. a `ping` needs nothing more; any other type is deserialized from the frame into
//!    [`ClientMessage`] directly (strings borrowed from the frame where they have no
//!    escapes).
//!
//! The first pass checks every value it skips as strictly as parsing it into a `Value`
//! would (numbers in range, strings valid UTF-8 with paired surrogates, the nesting
//! limit), so a frame the `Value` path refuses as `INVALID_JSON` is never accepted here.
//!
//! It gives up (`None`) on anything else: not an object, a `type` or `requestId` given
//! twice, a type the protocol does not define (an application message), a missing or
//! invalid field, trailing bytes, and any object key spelled like serde_json's private
//! raw-value marker (a `Value` parse gives that key a meaning of its own). The codec then takes the `Value` path, which owns every
//! error text the clients and the conformance vectors see. So this is an optimization
//! only: whatever it accepts, it decodes exactly as the `Value` path does (a property test
//! in `codec.rs` compares the two on generated frames).

use std::fmt;

use serde::de::{self, DeserializeOwned, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::Value;

use super::{ClientMessage, InFrame, Request, CLIENT_TYPES};

/// Decode a well-formed v1 frame without building its JSON tree; `None` when the frame
/// needs the `Value` path (an error to report, or an application message type).
pub(crate) fn decode(frame: InFrame<'_>) -> Option<Request> {
    let head: Head = parse(frame)?;
    let message = if head.type_name == "ping" {
        // A unit variant: other fields are ignored, as the `Value` path ignores them.
        ClientMessage::Ping
    } else {
        parse(frame)?
    };
    Some(Request {
        request_id: head.request_id,
        message,
    })
}

fn parse<T: DeserializeOwned>(frame: InFrame<'_>) -> Option<T> {
    match frame {
        InFrame::Text(text) => serde_json::from_str(text).ok(),
        InFrame::Binary(bytes) => serde_json::from_slice(bytes).ok(),
    }
}

/// What every v1 request carries besides its own fields.
struct Head {
    /// One of [`CLIENT_TYPES`].
    type_name: &'static str,
    /// The `requestId` as sent, if it was.
    request_id: Option<Value>,
}

impl<'de> Deserialize<'de> for Head {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(HeadVisitor)
    }
}

struct HeadVisitor;

impl<'de> Visitor<'de> for HeadVisitor {
    type Value = Head;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object with a known `type`")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Head, A::Error> {
        let mut type_name = None;
        let mut request_id = None;
        while let Some(key) = map.next_key::<HeadKey>()? {
            match key {
                HeadKey::Type if type_name.is_none() => {
                    type_name = Some(map.next_value::<KnownType>()?.0);
                }
                HeadKey::RequestId if request_id.is_none() => {
                    request_id = Some(map.next_value::<Value>()?);
                }
                // The `Value` path keeps the last of duplicate keys; leave those to it.
                HeadKey::Type => return Err(de::Error::duplicate_field("type")),
                HeadKey::RequestId => return Err(de::Error::duplicate_field("requestId")),
                HeadKey::Other => {
                    map.next_value::<Skip>()?;
                }
            }
        }
        let type_name = type_name.ok_or_else(|| de::Error::missing_field("type"))?;
        Ok(Head {
            type_name,
            request_id,
        })
    }
}

/// An object key, as far as the head cares; [`RAW_VALUE_KEY`] is refused, at the top
/// level and inside skipped values alike.
enum HeadKey {
    Type,
    RequestId,
    Other,
}

impl<'de> Deserialize<'de> for HeadKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_identifier(HeadKeyVisitor)
    }
}

struct HeadKeyVisitor;

impl Visitor<'_> for HeadKeyVisitor {
    type Value = HeadKey;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<HeadKey, E> {
        Ok(match key {
            "type" => HeadKey::Type,
            "requestId" => HeadKey::RequestId,
            RAW_VALUE_KEY => return Err(E::custom(RAW_VALUE_KEY)),
            _ => HeadKey::Other,
        })
    }
}

/// The key serde_json (with its `raw_value` feature, which the workspace enables) reads
/// as "the value is raw JSON text" when an object starts with it; frames that use it
/// are left to the `Value` path.
const RAW_VALUE_KEY: &str = "$serde_json::private::RawValue";

/// A value read and dropped, checked as a `Value` parse checks it (unlike
/// `IgnoredAny`, which skips numbers, escapes and nesting without checking them).
struct Skip;

impl<'de> Deserialize<'de> for Skip {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(SkipVisitor)
    }
}

struct SkipVisitor;

impl<'de> Visitor<'de> for SkipVisitor {
    type Value = Skip;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Skip, E> {
        Ok(Skip)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Skip, E> {
        Ok(Skip)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Skip, E> {
        Ok(Skip)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Skip, E> {
        Ok(Skip)
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Skip, E> {
        Ok(Skip)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Skip, E> {
        Ok(Skip)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Skip, A::Error> {
        while seq.next_element::<Skip>()?.is_some() {}
        Ok(Skip)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Skip, A::Error> {
        // Keys are read as the head reads its own, which refuses the raw-value marker.
        while map.next_key::<HeadKey>()?.is_some() {
            map.next_value::<Skip>()?;
        }
        Ok(Skip)
    }
}

/// A `type` the protocol defines.
struct KnownType(&'static str);

impl<'de> Deserialize<'de> for KnownType {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(KnownTypeVisitor)
    }
}

struct KnownTypeVisitor;

impl Visitor<'_> for KnownTypeVisitor {
    type Value = KnownType;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a client message type")
    }

    fn visit_str<E: de::Error>(self, name: &str) -> Result<KnownType, E> {
        CLIENT_TYPES
            .iter()
            .find(|known| **known == name)
            .map(|known| KnownType(known))
            .ok_or_else(|| E::invalid_value(de::Unexpected::Str(name), &self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fast(s: &str) -> Option<Request> {
        decode(InFrame::Text(s))
    }

    #[test]
    fn ping_is_read_from_its_head_alone() {
        let r = fast(r#"{"requestId":"r1","type":"ping","extra":[1,{"a":2}]}"#).unwrap();
        assert_eq!(r.message, ClientMessage::Ping);
        assert_eq!(r.request_id, Some(json!("r1")));
    }

    #[test]
    fn other_types_are_deserialized_from_the_frame() {
        let r =
            fast(r#"{"type":"publish","channel":"c\u0031","message":{"x":[1,2.5]},"requestId":3}"#)
                .unwrap();
        assert_eq!(
            r.message,
            ClientMessage::Publish {
                channel: "c1".into(),
                message: Some(json!({"x": [1, 2.5]})),
            }
        );
        assert_eq!(r.request_id, Some(json!(3)));
        let r = decode(InFrame::Binary(br#"{"type":"join","channel":"lobby"}"#)).unwrap();
        assert_eq!(
            r.message,
            ClientMessage::Join {
                room: "lobby".into()
            }
        );
        assert_eq!(r.request_id, None);
        let r = fast(r#"{"type":"channel:message","channel":"lobby","data":1}"#).unwrap();
        assert_eq!(
            r.message,
            ClientMessage::RoomMessage {
                room: "lobby".into(),
                data: Some(json!(1)),
                event: None,
                ack: false,
            }
        );
    }

    #[test]
    fn frames_the_value_path_must_answer_are_left_to_it() {
        for frame in [
            "{nope",
            "[1]",
            "null",
            r#"{"requestId":1}"#,
            r#"{"type":5}"#,
            r#"{"type":"PING"}"#,
            r#"{"type":"my:event","data":1}"#,
            r#"{"type":"ping","type":"ping"}"#,
            r#"{"type":"ping","requestId":1,"requestId":2}"#,
            r#"{"type":"get","resource":"users"}"#,
            r#"{"type":"ping"} trailing"#,
            // Refused by a `Value` parse, so never accepted here either.
            r#"{"type":"ping","x":1e400}"#,
            r#"{"type":"ping","x":"\ud800"}"#,
            &format!(
                r#"{{"type":"ping","x":{}{}}}"#,
                "[".repeat(200),
                "]".repeat(200)
            ),
            // The raw-value marker, first or nested, escaped or not.
            r#"{"$serde_json::private::RawValue":"{}","type":"ping"}"#,
            r#"{"type":"insert","resource":"r","data":{"$serde_json::private::RawValu\u0065":"{}"}}"#,
        ] {
            assert!(fast(frame).is_none(), "{frame}");
        }
    }
}
