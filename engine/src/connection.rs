//! Per-connection state. [`ConnectionSnapshot`] is the serializable part a host can
//! store and restore (Cloudflare hibernation); the rest is rebuilt on restore.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::{ChangeKind, CodecKind};
use crate::guard::GuardValue;
use crate::rate::TokenBucket;
use crate::types::{ConnId, Millis, User};

/// Version of the snapshot format; bumped on incompatible changes.
pub const SNAPSHOT_VERSION: u32 = 1;

/// What a subscription is to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum SubTarget {
    /// Changes of a resource.
    Resource {
        /// Resource name.
        name: String,
        /// The filter as the client sent it (`None`: everything).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        filter: Option<JsonText>,
        /// The filter a guard forced on the subscription (ANDed with `filter`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        forced: Option<JsonText>,
        /// Events delivered.
        events: Vec<ChangeKind>,
    },
    /// Messages published to a channel.
    Channel {
        /// Channel name.
        name: String,
    },
}

/// A JSON value held as its compact text: what a subscription keeps of the filter its
/// client sent, for as long as it lives (`{"room":"a"}` is 12 bytes; the parsed
/// [`Value`] took about 230 in five allocations). It serializes and deserializes as the
/// JSON value itself, so snapshots are unchanged; [`JsonText::value`] parses it back
/// (snapshots, `clients`, unsubscribe by filter: never on the fan-out path, which uses
/// the hub's parsed filter).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonText(Box<str>);

impl JsonText {
    /// The compact text of `value` (object entries in their order).
    pub fn new(value: &Value) -> JsonText {
        JsonText(value.to_string().into_boxed_str())
    }

    /// The value, parsed again.
    pub fn value(&self) -> Value {
        // The text was written by `new` from a value: it always parses.
        serde_json::from_str(&self.0).unwrap_or(Value::Null)
    }

    /// The compact JSON text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&Value> for JsonText {
    fn from(value: &Value) -> JsonText {
        JsonText::new(value)
    }
}

impl Serialize for JsonText {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.value().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for JsonText {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<JsonText, D::Error> {
        Value::deserialize(deserializer).map(|v| JsonText::new(&v))
    }
}

/// One subscription of a connection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Subscription {
    /// The id returned in `subscribed` (unique within the connection).
    pub id: String,
    /// What it subscribes to.
    pub target: SubTarget,
}

/// Heartbeat state of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "camelCase")]
pub enum Heartbeat {
    /// Heartbeats are off.
    Off,
    /// The next ping is due at `at`.
    NextPing {
        /// When.
        at: Millis,
    },
    /// A ping was sent at `sent`; a pong (or any frame) is due by `deadline`.
    AwaitPong {
        /// When the ping went out.
        sent: Millis,
        /// When the connection times out.
        deadline: Millis,
    },
}

impl Heartbeat {
    /// The instant this state needs a timer for.
    pub fn deadline(&self) -> Option<Millis> {
        match self {
            Heartbeat::Off => None,
            Heartbeat::NextPing { at } => Some(*at),
            Heartbeat::AwaitPong { deadline, .. } => Some(*deadline),
        }
    }
}

/// The serializable state of one connection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionSnapshot {
    /// Format version ([`SNAPSHOT_VERSION`]).
    pub version: u32,
    /// The client's id.
    pub client_id: String,
    /// Authenticated user (None: anonymous).
    pub user: Option<Box<User>>,
    /// Index of the route it connected on.
    pub route: usize,
    /// Codec of that route.
    pub codec: CodecKind,
    /// Peer IP.
    pub peer: String,
    /// When it connected.
    pub connected_at: Millis,
    /// Subscriptions in creation order.
    pub subscriptions: Vec<Subscription>,
    /// Rooms in join order.
    pub rooms: Vec<String>,
    /// Rate-limiter bucket (None when rate limiting is off).
    pub rate: Option<TokenBucket>,
    /// Consecutive refused frames.
    pub rate_violations: u32,
    /// Heartbeat state.
    pub heartbeat: Heartbeat,
    /// Counter for subscription ids.
    pub next_subscription: u64,
    /// When the connection's token expires (None: it does not). Part of the snapshot so
    /// a hibernated connection still expires on time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiry: Option<TokenExpiry>,
    /// The route's path parameters (`/ws/game/:sessionId` → `sessionId`).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub params: std::collections::BTreeMap<String, String>,
    /// The connection's tenant (its route's `tenant`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// Metadata the `connect` hook attached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Box<Value>>,
}

/// The expiry schedule of a connection authenticated with a token that has `exp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenExpiry {
    /// The token's `exp`, in epoch milliseconds.
    pub expires_at: Millis,
    /// When the `token:expiring` notice is due (None once it was sent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notice_at: Option<Millis>,
    /// When the connection is closed with 4401 unless refreshed: the first instant at
    /// which the token is expired under `leewaySeconds` (whole seconds, as at the upgrade).
    pub close_at: Millis,
}

impl TokenExpiry {
    /// The instant this schedule needs a timer for.
    pub fn deadline(&self) -> Millis {
        self.notice_at.unwrap_or(self.close_at)
    }
}

/// A user as filters and guards see it, built once per distinct user (when its first
/// connection is registered) and shared by all of that user's connections.
#[derive(Debug)]
pub(crate) struct UserView {
    /// The serialized subject: the key the engine shares views by.
    pub key: String,
    /// [`User::as_filter_subject`].
    pub subject: Value,
    /// `subject` converted for CEL guards.
    pub guard: GuardValue,
}

/// Live state of a connection inside the engine.
#[derive(Debug, Clone)]
pub(crate) struct Connection {
    pub id: ConnId,
    pub state: ConnectionSnapshot,
    /// `state.user` as filters and guards see it (`None`: anonymous).
    pub user_view: Option<Arc<UserView>>,
    /// Hub keys of `state.subscriptions`, same order.
    pub sub_keys: Vec<usize>,
    /// The engine sent a close; the connection takes no more input and gets no more output.
    pub closing: bool,
    /// Host calls in flight for this connection.
    pub pending: usize,
    /// Outbound bytes the host reports as queued.
    pub buffered: u64,
    /// The `connect` hook has not answered yet (no welcome was sent).
    pub awaiting_connect: bool,
    /// While `awaiting_connect`: the token's `exp` (seconds), armed after the welcome
    /// so `token:expiring` never precedes `connected`.
    pub connect_exp: Option<i64>,
    /// The close code and reason the engine sent (for the `disconnect` hook).
    pub closed_with: Option<Box<(u16, String)>>,
    /// Socket.IO session state (`codec = "socket.io"` routes only).
    pub sio: Option<Box<crate::sio_session::SioSession>>,
}

impl Connection {
    /// A connection as it registers: no subscriptions, nothing in flight or closing.
    pub fn new(id: ConnId, state: ConnectionSnapshot, user_view: Option<Arc<UserView>>) -> Self {
        Connection {
            id,
            state,
            user_view,
            sub_keys: Vec::new(),
            closing: false,
            pending: 0,
            buffered: 0,
            awaiting_connect: false,
            connect_exp: None,
            closed_with: None,
            sio: None,
        }
    }

    /// Add a subscription and its hub key (`usize::MAX` for a channel). Both lists grow
    /// one entry at a time: most connections hold one or two subscriptions, and a
    /// doubling `Vec` would keep room for four (a `Subscription` is ~200 bytes).
    pub fn push_subscription(&mut self, key: usize, sub: Subscription) {
        self.sub_keys.reserve_exact(1);
        self.sub_keys.push(key);
        self.state.subscriptions.reserve_exact(1);
        self.state.subscriptions.push(sub);
    }

    pub fn public_user(&self) -> Value {
        self.state
            .user
            .as_ref()
            .map_or(Value::Null, |u| u.public_view())
    }

    /// The connection's presence entry: client id, public user and, when its user has a
    /// non-null `info` claim, that claim (public by design, PROTOCOL.md §10.3).
    pub fn member_view(&self) -> crate::protocol::MemberView {
        crate::protocol::MemberView {
            client_id: self.state.client_id.clone(),
            user: self.public_user(),
            info: self
                .state
                .user
                .as_ref()
                .and_then(|u| u.claims.get("info"))
                .filter(|v| !v.is_null())
                .cloned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A subscription's filter serializes as the value the client sent (entries in
    /// order, numbers as written by serde_json), and deserializes from it, whether the
    /// snapshot comes as text or as a parsed value.
    #[test]
    fn json_text_filters_serialize_as_the_value_they_hold() {
        let filter =
            json!({"z": 1, "a": {"$in": [1.5, -0.0, 1e300, "x"]}, "m": null, "n": {"$gte": -7}});
        let sub = Subscription {
            id: "sub-1".into(),
            target: SubTarget::Resource {
                name: "bench".into(),
                filter: Some(JsonText::new(&filter)),
                forced: None,
                events: ChangeKind::ALL.to_vec(),
            },
        };
        let text = serde_json::to_string(&sub).unwrap();
        let expected = json!({"id": "sub-1", "target": {"kind": "resource", "name": "bench",
            "filter": filter, "events": ["insert", "update", "delete"]}});
        assert_eq!(text, expected.to_string());
        let back: Subscription = serde_json::from_str(&text).unwrap();
        assert_eq!(back, sub);
        let from_value: Subscription = serde_json::from_value(expected).unwrap();
        assert_eq!(from_value, sub);
    }
}
