//! Property tests of the engine through its public API only.
//!
//! * `frames_on_an_open_connection_*` — arbitrary bytes, strings, JSON values and
//!   near-valid protocol messages as text and binary frames: never a panic, invariants
//!   hold, and every frame is answered (see [`answers_sender`]).
//! * `random_sessions_keep_invariants` — random host sessions (opens with tokens and
//!   headers, valid and junk frames, pongs, closes, timeouts, backpressure, completions
//!   with random op ids, server-API commands) with clock jumps forward and backward under a
//!   config with small limits. After every step `check_invariants()` holds and the actions
//!   obey the host contract (checked by [`Model`]); after closing every connection nothing
//!   is left (no client, room, subscription, timer or call).
//! * `same_inputs_same_actions` — two fresh engines fed the same session produce the same
//!   actions, byte for byte (`serde_json` of every `Action`).
//! * `hibernation_sessions_keep_invariants` — the same sessions with hibernation
//!   (snapshot, `Closed`, `Restore` under a new id) mixed in.
//! * `fuzz_harness_on_random_bytes` — the `engine/fuzz` `frames` harness, compiled here
//!   so it stays correct where cargo-fuzz is not installed.
//!
//! Case counts are moderate (override with `PROPTEST_CASES`); the file runs in a few
//! seconds in a debug build.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use engine::hostcall::{GuardDecision, HostResult, StoreError, StoreErrorKind, StoreOutcome};
use engine::{
    Action, ApiMisuse, ChangeKind, Command, Config, ConnId, ConnectionSnapshot, Engine, ErrorCode,
    InFrame, Input, Millis, OpId, UpgradeRequest,
};
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::RngSeed;
use serde_json::{json, Map, Value};

#[path = "../fuzz/harness/frames.rs"]
mod fuzz_frames;

const T0: u64 = 1_700_000_000_000;
const JWT_SECRET: &str = "proptest-secret-0123456789abcdef";
/// Connection ids used by the sessions (0..CONNS); more than `maxConnections`.
const CONNS: u64 = 7;
/// Generated connection ids from `PICK` on are resolved when the step runs: for `Open`,
/// the lowest id not open; otherwise the `(id - PICK) % n`-th open connection.
const PICK: u64 = 1_000;

// ------------------------------------------------------------------------ configs

/// Small limits so every limit and policy is reachable in a short session.
/// `variant` 0: slow consumers are closed, anyone may publish;
/// `variant` 1: slow consumers are skipped, only admins/users publish, only admins
/// subscribe to channels.
fn small_config(variant: u8) -> Config {
    // Channel `chat` is a stream with history and presence; `lobby` has presence only
    // (variant 1: subscribing to it needs a CEL guard to pass).
    let namespaces = json!([
        {"pattern": "chat", "history": {"size": 3, "ttlMs": 2000, "metaTtlMs": 4000},
         "presence": true, "joinLeave": true},
        {"pattern": "lobby", "presence": true, "joinLeave": true,
         "subscribe": {"guard": if variant == 0 { "true" } else { "user != null && user.role == 'admin'" }}}
    ]);
    let (slow, channels) = if variant == 0 {
        ("close", json!({"namespaces": namespaces}))
    } else {
        (
            "drop",
            json!({"publishRoles": ["admin", "user"], "subscribeRoles": ["admin"], "namespaces": namespaces}),
        )
    };
    Config::from_value(json!({
        "routes": [
            {"path": "/", "origins": ["https://app.example"]},
            {"path": "/secure", "authRequired": true},
            {"path": "/admin", "scopes": ["admin"]}
        ],
        "auth": {
            "apiKeys": {
                "key-alice": {"id": "alice", "role": "admin", "scopes": ["admin"], "team": "red"},
                "key-bob": {"id": "bob", "role": "user"}
            },
            "jwt": {"secret": JWT_SECRET}
        },
        "heartbeatInterval": 1000,
        "heartbeatTimeout": 500,
        "maxPayloadSize": 256,
        "rateLimit": {"enabled": true, "windowMs": 1000, "maxRequests": 6, "closeAfter": 3},
        "limits": {
            "maxConnections": 5,
            "maxConnectionsPerIp": 4,
            "maxConnectionsPerUser": 2,
            "maxSubscriptionsPerConnection": 3,
            "maxRoomsPerConnection": 2,
            "maxPendingCallsPerConnection": 2,
            "maxPendingCalls": 3,
            "hostCallTimeoutMs": 700,
            "maxBufferedBytes": 1000,
            "slowConsumer": slow,
            "maxNameLength": 16
        },
        "rooms": {"maxConnections": 2, "maxRooms": 2, "overrides": {"vip": {"maxConnections": 1}}},
        "channels": channels,
        "resources": {
            "messages": {"protected": ["secret", "meta.internal"]},
            "users": {"auth": ["admin"], "events": ["update", "delete"], "maxListLimit": 5},
            "news": {},
            "notes": {
                "schema": {
                    "type": "object",
                    "properties": {"n": {"type": "integer"}, "ownerId": {"type": "string"}},
                    "required": ["n"]
                },
                "guards": {
                    "subscribe": "user != null ? true : {'channel': 'general'}",
                    "list": "user != null && user.role == 'admin' ? true : {'ownerId': user.id}",
                    "get": "user != null",
                    "create": "user == null ? false : {'ownerId': user.id}",
                    "update": "record.ownerId == user.id",
                    "delete": "user != null && user.role == 'admin'",
                    "read": "user == null || user.role != 'banned'"
                },
                "hostGuards": ["get", "create", "update", "delete"]
            }
        }
    }))
    .expect("test config is valid")
}

/// For single-connection frame properties: no rate limit (every frame is decoded).
fn frame_config() -> Config {
    let mut c = small_config(0);
    c.rate_limit.enabled = false;
    c
}

/// HS256 tokens: valid for an hour after T0, expired, and with a bad signature.
fn tokens() -> &'static [String] {
    static TOKENS: OnceLock<Vec<String>> = OnceLock::new();
    TOKENS.get_or_init(|| {
        use jsonwebtoken::{encode, EncodingKey, Header};
        let sign = |claims: Value, secret: &str| {
            encode(
                &Header::default(),
                &claims,
                &EncodingKey::from_secret(secret.as_bytes()),
            )
            .expect("signing a test token")
        };
        let exp = T0 / 1000 + 3600;
        vec![
            sign(
                json!({"sub": "carol", "role": "user", "exp": exp}),
                JWT_SECRET,
            ),
            sign(
                json!({"sub": "dave", "role": "admin", "scope": "admin", "exp": exp}),
                JWT_SECRET,
            ),
            sign(json!({"sub": "erin", "exp": T0 / 1000 - 3600}), JWT_SECRET),
            sign(json!({"sub": "mallory", "exp": exp}), "wrong-secret"),
            sign(json!({"role": "user", "exp": exp}), JWT_SECRET),
        ]
    })
}

// ------------------------------------------------------------------------ JSON and names

const RESOURCES: &[&str] = &["messages", "users", "news", "notes", "nope", ""];
const CHANNELS: &[&str] = &["news", "chat", "messages", "", "a-name-longer-than-16"];
const ROOMS: &[&str] = &["lobby", "vip", "r1", "r2", "", "a-room-longer-than-16"];
const CLIENT_IDS: &[&str] = &["c0", "c1", "c2", "c3", "c4", "nobody", ""];
const RECORD_IDS: &[&str] = &["r1", "r2", "r3", ""];

fn name(pool: &'static [&'static str]) -> BoxedStrategy<String> {
    select(pool).prop_map(str::to_string).boxed()
}

/// Any JSON value, biased towards the protocol's keys and names.
fn arb_json() -> BoxedStrategy<Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        (-3i64..3).prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        "[a-z0-9:$. -]{0,8}".prop_map(Value::String),
        name(CHANNELS).prop_map(Value::String),
    ];
    let key = prop_oneof![
        select(
            &[
                "type",
                "resource",
                "channel",
                "filter",
                "events",
                "id",
                "data",
                "room",
                "to",
                "ack",
                "requestId",
                "subscriptionId",
                "message",
                "limit",
                "cursor",
                "event",
                "$gt",
                "$in",
                "$exists",
                "n",
                "secret",
                "meta",
                "a.b",
                "",
            ][..]
        )
        .prop_map(str::to_string),
        "[a-z$.]{0,4}",
    ];
    leaf.prop_recursive(3, 24, 4, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((key.clone(), inner), 0..4)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
    .boxed()
}

fn arb_request_id() -> BoxedStrategy<Option<Value>> {
    prop_oneof![
        3 => Just(None),
        2 => select(vec![json!(0), json!(""), Value::Null, json!(1), json!("r-1"), json!({"x": 1}), json!([1])])
            .prop_map(Some),
    ]
    .boxed()
}

fn arb_filter() -> BoxedStrategy<Value> {
    prop_oneof![
        4 => select(vec![
            json!({"channel": "general"}),
            json!({"channel": "random"}),
            json!({"n": {"$gt": 1}}),
            json!({"channel": "general", "n": {"$lte": 2}}),
            json!({"meta.owner": {"$in": ["a", "b"]}}),
            json!({"secret": {"$exists": false}}),
            json!({}),
            Value::Null,
            json!("bad"),
            json!({"$or": []}),
            json!({"n": {"$regex": "x"}}),
        ]),
        1 => arb_json(),
    ]
    .boxed()
}

/// Records as stores return them (objects), occasionally any JSON value.
fn arb_record() -> BoxedStrategy<Value> {
    prop_oneof![
        8 => (
            name(RECORD_IDS),
            select(&["general", "random"][..]),
            -2i64..4,
            any::<bool>(),
            prop::option::of("[a-z]{0,3}"),
            prop::option::of(select(&["alice", "bob", "carol"][..])),
        )
            .prop_map(|(id, channel, n, secret, owner, owner_id)| {
                let mut m = Map::new();
                m.insert("id".into(), json!(id));
                m.insert("channel".into(), json!(channel));
                m.insert("n".into(), json!(n));
                if secret {
                    m.insert("secret".into(), json!("s3cr3t"));
                }
                m.insert("meta".into(), json!({"owner": owner, "internal": 1}));
                if let Some(o) = owner_id {
                    m.insert("ownerId".into(), json!(o));
                }
                Value::Object(m)
            }),
        1 => arb_json(),
    ]
    .boxed()
}

fn opt<T: std::fmt::Debug + Clone + 'static>(s: BoxedStrategy<T>) -> BoxedStrategy<Option<T>> {
    prop::option::weighted(0.8, s).boxed()
}

/// `{"type": ty, ...fields (absent when None), "requestId"?}`.
fn msg(ty: &str, fields: Vec<(&str, Option<Value>)>, rid: Option<Value>) -> Value {
    let mut m = Map::new();
    m.insert("type".into(), json!(ty));
    for (k, v) in fields {
        if let Some(v) = v {
            m.insert(k.into(), v);
        }
    }
    if let Some(r) = rid {
        m.insert("requestId".into(), r);
    }
    Value::Object(m)
}

fn s(v: String) -> Option<Value> {
    Some(Value::String(v))
}

/// Protocol messages with random (mostly plausible) fields.
fn arb_message() -> BoxedStrategy<Value> {
    let events = select(vec![
        json!(["insert"]),
        json!(["update", "delete"]),
        json!([]),
        json!(["bogus"]),
        json!("insert"),
    ])
    .boxed();
    prop_oneof![
        2 => arb_request_id().prop_map(|r| msg("ping", vec![], r)),
        3 => (name(RESOURCES), opt(arb_filter()), prop::option::weighted(0.3, events), arb_request_id())
            .prop_map(|(res, f, ev, r)| msg("subscribe", vec![("resource", s(res)), ("filter", f), ("events", ev)], r)),
        2 => (name(CHANNELS), arb_request_id())
            .prop_map(|(ch, r)| msg("subscribe", vec![("channel", s(ch))], r)),
        1 => (name(CHANNELS), name(RESOURCES), arb_request_id())
            .prop_map(|(ch, res, r)| msg("subscribe", vec![("channel", s(ch)), ("resource", s(res))], r)),
        2 => (0u32..6, arb_request_id())
            .prop_map(|(n, r)| msg("unsubscribe", vec![("subscriptionId", s(format!("sub-{n}")))], r)),
        1 => (name(RESOURCES), prop::option::weighted(0.5, arb_filter()), arb_request_id())
            .prop_map(|(res, f, r)| msg("unsubscribe", vec![("resource", s(res)), ("filter", f)], r)),
        1 => (name(CHANNELS), arb_request_id())
            .prop_map(|(ch, r)| msg("unsubscribe", vec![("channel", s(ch))], r)),
        3 => (name(CHANNELS), opt(arb_json()), arb_request_id())
            .prop_map(|(ch, m, r)| msg("publish", vec![("channel", s(ch)), ("message", m)], r)),
        4 => (name(RESOURCES), name(RECORD_IDS), arb_request_id())
            .prop_map(|(res, id, r)| msg("get", vec![("resource", s(res)), ("id", s(id))], r)),
        1 => (name(RESOURCES), opt(arb_filter()), opt((0u64..9).prop_map(|n| json!(n)).boxed()),
              opt("[a-z]{0,3}".prop_map(Value::String).boxed()), arb_request_id())
            .prop_map(|(res, f, l, c, r)| msg("list", vec![("resource", s(res)), ("filter", f), ("limit", l), ("cursor", c)], r)),
        4 => (name(RESOURCES), arb_record(), arb_request_id())
            .prop_map(|(res, d, r)| msg("insert", vec![("resource", s(res)), ("data", Some(d))], r)),
        3 => (name(RESOURCES), name(RECORD_IDS), arb_record(), arb_request_id())
            .prop_map(|(res, id, d, r)| msg("update", vec![("resource", s(res)), ("id", s(id)), ("data", Some(d))], r)),
        2 => (name(RESOURCES), name(RECORD_IDS), arb_request_id())
            .prop_map(|(res, id, r)| msg("delete", vec![("resource", s(res)), ("id", s(id))], r)),
        3 => (name(ROOMS), any::<bool>(), arb_request_id())
            .prop_map(|(room, alias, r)| msg("join", vec![(if alias { "channel" } else { "room" }, s(room))], r)),
        2 => (name(ROOMS), arb_request_id())
            .prop_map(|(room, r)| msg("leave", vec![("room", s(room))], r)),
        3 => (name(ROOMS), opt(arb_json()), opt("[a-z]{0,4}".prop_map(Value::String).boxed()),
              prop::option::of(any::<bool>().prop_map(Value::Bool)), arb_request_id())
            .prop_map(|(room, d, ev, ack, r)| msg("room:message", vec![("room", s(room)), ("data", d), ("event", ev), ("ack", ack)], r)),
        1 => (name(ROOMS), arb_request_id())
            .prop_map(|(room, r)| msg("room:members", vec![("room", s(room))], r)),
        2 => (name(CLIENT_IDS), opt(arb_json()), prop::option::of(any::<bool>().prop_map(Value::Bool)), arb_request_id())
            .prop_map(|(to, d, ack, r)| msg("direct", vec![("to", s(to)), ("data", d), ("ack", ack)], r)),
        1 => ("[a-zA-Z:]{0,12}", arb_request_id()).prop_map(|(t, r)| msg(&t, vec![], r)),
        1 => (0..tokens().len(), arb_request_id())
            .prop_map(|(i, r)| msg("refresh", vec![("token", s(tokens()[i].clone()))], r)),
    ]
    .boxed()
}

/// A frame: mostly protocol messages, sometimes junk or oversized, text or binary.
#[derive(Clone)]
struct FrameData {
    bytes: Vec<u8>,
    binary: bool,
}

/// Shown as text when it is UTF-8, so shrunk failures are readable.
impl std::fmt::Debug for FrameData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = if self.binary { "Binary" } else { "Text" };
        match std::str::from_utf8(&self.bytes) {
            Ok(t) => write!(f, "{kind}({t:?})"),
            Err(_) => write!(f, "{kind}({:?})", self.bytes),
        }
    }
}

impl FrameData {
    fn input(&self, conn: ConnId) -> Input<'_> {
        let frame = if self.binary {
            InFrame::Binary(&self.bytes)
        } else {
            InFrame::Text(std::str::from_utf8(&self.bytes).expect("text frames hold UTF-8"))
        };
        Input::Frame { conn, frame }
    }

    /// The frame parsed as JSON, if it is JSON.
    fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.bytes).ok()
    }
}

fn arb_frame() -> BoxedStrategy<FrameData> {
    let text = prop_oneof![
        12 => arb_message().prop_map(|v| v.to_string()),
        1 => arb_json().prop_map(|v| v.to_string()),
        1 => ".{0,40}",
        1 => "[{}\\[\\]\":,a-z0-9 ]{0,40}",
        1 => (0usize..400).prop_map(|n| format!(r#"{{"type":"ping","pad":"{}"}}"#, "x".repeat(n))),
    ];
    prop_oneof![
        9 => (text.clone(), prop::bool::weighted(0.15))
            .prop_map(|(t, binary)| FrameData { bytes: t.into_bytes(), binary }),
        1 => prop::collection::vec(any::<u8>(), 0..64).prop_map(|bytes| FrameData { bytes, binary: true }),
    ]
    .boxed()
}

// ------------------------------------------------------------------------ session steps

#[derive(Debug, Clone)]
enum Step {
    Open {
        conn: u64,
        request: UpgradeRequest,
    },
    Frame {
        conn: u64,
        frame: FrameData,
    },
    Pong {
        conn: u64,
    },
    Closed {
        conn: u64,
        code: Option<u16>,
    },
    Timeout,
    /// Jump the clock to `poll_timeout()` and feed `Timeout` (what a host loop does).
    TimeoutAtDeadline,
    Backpressure {
        conn: u64,
        buffered: u64,
    },
    Completed {
        op: u64,
        result: HostResult,
    },
    /// `Completed` for the `pick`-th call in flight (op 0, unknown, if none is).
    CompleteInFlight {
        pick: usize,
        result: HostResult,
    },
    Command {
        tag: u64,
        command: Command,
    },
    /// Host-side hibernation of `conn`: snapshot, `Closed`, `Restore` as `to`.
    /// Only generated by the hibernation property.
    Hibernate {
        conn: u64,
        to: u64,
    },
}

/// A step with the clock change before it (ms; may be negative).
#[derive(Debug, Clone)]
struct Timed {
    dt: i64,
    step: Step,
}

fn arb_dt() -> BoxedStrategy<i64> {
    prop_oneof![
        24 => Just(0i64),
        40 => 1i64..400,
        12 => 400i64..3_000,
        8 => -3_000i64..0,
        3 => -400_000i64..-3_000,
        3 => 3_000i64..200_000,
        1 => Just(400 * 86_400_000i64), // beyond any token's exp
    ]
    .boxed()
}

fn arb_open_request() -> BoxedStrategy<UpgradeRequest> {
    let query = prop_oneof![
        10 => Just(String::new()),
        2 => Just("token=key-alice".to_string()),
        2 => Just("token=key-bob".to_string()),
        2 => (0..tokens().len()).prop_map(|i| format!("token={}", tokens()[i])),
        1 => select(&["token=garbage", "token=a.b.c", "x=1&token=", "token=key%2Dbob"][..]).prop_map(str::to_string),
    ];
    let header = prop_oneof![
        select(
            &[
                ("Origin", "https://evil.example"),
                ("origin", "https://app.example"),
                ("Authorization", "Bearer key-bob"),
                ("authorization", "bearer"),
                ("X-API-Key", "key-alice"),
                ("X-API-Key", " "),
                ("Sec-WebSocket-Protocol", "switchboard.v1, bearer.key-bob"),
                ("Sec-WebSocket-Protocol", "other"),
                ("Host", "example.com:8080"),
            ][..]
        )
        .prop_map(|(k, v)| (k.to_string(), v.to_string())),
        (0..tokens().len()).prop_map(|i| (
            "Authorization".to_string(),
            format!("Bearer {}", tokens()[i])
        )),
    ];
    (
        select(
            &[
                "/", "/", "/", "/", "/", "/secure", "/admin", "/nope", "/secure/",
            ][..],
        ),
        query,
        prop_oneof![3 => Just(Vec::new()), 1 => prop::collection::vec(header, 1..3)],
        select(&["10.0.0.1", "10.0.0.1", "10.0.0.2", "::1"][..]),
        // `*` stands for `c<conn>` (see `run_session`), so ids mostly do not collide.
        prop_oneof![4 => Just("*".to_string()), 1 => name(CLIENT_IDS)],
    )
        .prop_map(|(path, query, headers, peer, client_id)| UpgradeRequest {
            path: path.into(),
            query,
            headers,
            peer: peer.into(),
            client_id,
        })
        .boxed()
}

fn arb_host_result() -> BoxedStrategy<HostResult> {
    let guard = prop_oneof![
        3 => Just(GuardDecision::Allow),
        1 => prop::option::of(Just("not yours".to_string())).prop_map(|message| GuardDecision::Deny { message }),
        1 => select(vec![json!({"ownerId": "alice"}), json!({"n": {"$gt": 0}}), json!({}), json!("bad")])
            .prop_map(|filter| GuardDecision::Filter { filter }),
    ]
    .prop_map(HostResult::Guard);
    let store = prop_oneof![
        prop::option::of(arb_record()).prop_map(StoreOutcome::Record),
        (
            prop::collection::vec(arb_record(), 0..3),
            prop::option::of("[a-z]{1,4}")
        )
            .prop_map(|(items, cursor)| StoreOutcome::Page { items, cursor }),
        arb_record().prop_map(StoreOutcome::Inserted),
        (arb_record(), arb_record())
            .prop_map(|(record, previous)| StoreOutcome::Updated { record, previous }),
        arb_record().prop_map(|previous| StoreOutcome::Deleted { previous }),
        select(
            &[
                StoreErrorKind::NotFound,
                StoreErrorKind::Conflict,
                StoreErrorKind::Unavailable,
                StoreErrorKind::Internal
            ][..]
        )
        .prop_map(|kind| StoreOutcome::Failed(StoreError {
            kind,
            message: "boom".into()
        })),
    ]
    .prop_map(HostResult::Store);
    prop_oneof![3 => store, 1 => guard].boxed()
}

fn arb_command() -> BoxedStrategy<Command> {
    let user_filter = select(vec![
        json!({"role": "admin"}),
        json!({"team": "red"}),
        json!({}),
        json!("bad"),
    ]);
    let kind = select(ChangeKind::ALL.to_vec());
    prop_oneof![
        2 => (arb_json(), prop::option::weighted(0.5, user_filter))
            .prop_map(|(message, filter)| Command::Broadcast { message, filter, tenant: None }),
        1 => (name(CLIENT_IDS), arb_json()).prop_map(|(client_id, message)| Command::SendTo { client_id, message }),
        1 => (name(RESOURCES), arb_json())
            .prop_map(|(resource, message)| Command::BroadcastToResource { resource, message, tenant: None }),
        3 => (name(CHANNELS), prop::option::of(arb_json()))
            .prop_map(|(channel, data)| Command::Publish { channel, data, tenant: None }),
        4 => (name(RESOURCES), kind, arb_record(), prop::option::of(arb_record()))
            .prop_map(|(resource, event, record, previous)| Command::ResourceChanged { resource, event, record, previous }),
        2 => (name(RESOURCES), arb_record())
            .prop_map(|(resource, r)| Command::Insert { resource, data: r.as_object().cloned().unwrap_or_default() }),
        1 => (name(RESOURCES), name(RECORD_IDS), arb_record())
            .prop_map(|(resource, id, r)| Command::Update { resource, id, data: r.as_object().cloned().unwrap_or_default() }),
        1 => (name(RESOURCES), name(RECORD_IDS))
            .prop_map(|(resource, id)| Command::Delete { resource, id }),
        2 => (name(CLIENT_IDS), prop::option::of(select(&["bye", "é"][..]).prop_map(|r| r.repeat(60))))
            .prop_map(|(client_id, reason)| Command::Disconnect { client_id, reason }),
        1 => select(vec![
            Command::ServerInfo,
            Command::Clients,
            Command::Rooms,
            Command::Metrics,
            Command::SetJwks { issuer: "https://issuer.example".into(), jwks: json!({"keys": []}) },
            Command::SetJwks { issuer: "https://issuer.example".into(), jwks: json!("nope") },
        ]),
    ]
    .boxed()
}

fn arb_step(with_shutdown: bool, with_hibernate: bool) -> BoxedStrategy<Step> {
    // A connection id: literal (0..CONNS), or a pick among the open ones (see `PICK`).
    let conn = prop_oneof![1 => 0..CONNS, 3 => PICK..PICK + 1000].boxed();
    let mut options: Vec<(u32, BoxedStrategy<Step>)> = vec![
        (
            5,
            (
                prop_oneof![1 => 0..CONNS, 2 => Just(PICK)],
                arb_open_request(),
            )
                .prop_map(|(conn, request)| Step::Open { conn, request })
                .boxed(),
        ),
        (
            14,
            (conn.clone(), arb_frame())
                .prop_map(|(conn, frame)| Step::Frame { conn, frame })
                .boxed(),
        ),
        (1, conn.clone().prop_map(|conn| Step::Pong { conn }).boxed()),
        (
            2,
            (
                conn.clone(),
                prop::option::of(select(&[1000u16, 1001, 1006, 4000][..])),
            )
                .prop_map(|(conn, code)| Step::Closed { conn, code })
                .boxed(),
        ),
        (1, Just(Step::Timeout).boxed()),
        (2, Just(Step::TimeoutAtDeadline).boxed()),
        (
            1,
            (
                conn.clone(),
                select(&[0u64, 10, 999, 1000, 1001, 50_000][..]),
            )
                .prop_map(|(conn, buffered)| Step::Backpressure { conn, buffered })
                .boxed(),
        ),
        (
            2,
            (1u64..10, arb_host_result())
                .prop_map(|(op, result)| Step::Completed { op, result })
                .boxed(),
        ),
        (
            4,
            (any::<usize>(), arb_host_result())
                .prop_map(|(pick, result)| Step::CompleteInFlight { pick, result })
                .boxed(),
        ),
        (
            4,
            (any::<u64>(), arb_command())
                .prop_map(|(tag, command)| Step::Command { tag, command })
                .boxed(),
        ),
    ];
    if with_shutdown {
        options.push((
            1,
            prop::option::of(Just("maintenance".to_string()))
                .prop_map(|reason| Step::Command {
                    tag: 7,
                    command: Command::Shutdown { reason },
                })
                .boxed(),
        ));
    }
    if with_hibernate {
        options.push((
            3,
            (conn.clone(), conn)
                .prop_map(|(conn, to)| Step::Hibernate { conn, to })
                .boxed(),
        ));
    }
    proptest::strategy::Union::new_weighted(options).boxed()
}

fn arb_session(max_len: usize, with_hibernate: bool) -> BoxedStrategy<(u8, Vec<Timed>)> {
    (
        0u8..2,
        prop::bool::weighted(0.25).prop_flat_map(move |shutdown| {
            prop::collection::vec(
                (arb_dt(), arb_step(shutdown, with_hibernate))
                    .prop_map(|(dt, step)| Timed { dt, step }),
                1..max_len,
            )
        }),
    )
        .boxed()
}

// ------------------------------------------------------------------------ host model

fn frame_text(frame: &engine::Frame) -> Result<Value, TestCaseError> {
    let text = frame
        .as_text()
        .ok_or_else(|| TestCaseError::fail("the JSON codec sends text frames"))?;
    serde_json::from_str(text)
        .map_err(|e| TestCaseError::fail(format!("frame is not JSON ({e}): {text}")))
}

/// A host's view of the engine, checking the contract of every action:
/// * `Accept`/`Reject` only answer the `Open` of this step, exactly once;
/// * `Send`/`SendMany`/`Ping`/`Close` only address accepted connections the engine has
///   not closed (nothing is sent after a `Close`); `SendMany` lists no connection twice;
/// * every frame is JSON text;
/// * `Call` op ids increase and name a live connection; the answer to a call (`data`,
///   `inserted`, `updated`, `deleted` or `error` — or the request's next `Call` — after
///   `Completed`, `TIMEOUT` after `Timeout`) goes to the connection that made it, exactly
///   once, and never to a later connection that reuses its id;
/// * one `CommandResult`, with the step's tag, per `Command`: in the same step, or (for
///   the resource writes) after the step's connection-less `Call`, exactly once, when
///   that call completes or times out;
/// * the engine's counters agree with what the host saw.
#[derive(Debug, Default)]
struct Model {
    /// Accepted (or restored) and not yet reported `Closed`, with the client id (the
    /// identity of a connection: connection ids may be reused, client ids are random).
    open: BTreeMap<u64, String>,
    /// Subset of `open` the engine sent `Close` for.
    closing: BTreeSet<u64>,
    accepts: u64,
    disconnects: u64,
    /// Whether a connection was restored (restores are not upgrades, so the engine's
    /// `connections` counter need not count them).
    restored: bool,
    /// The engine's clock: the latest `now` fed.
    clock: u64,
    last_op: u64,
    /// Calls in flight: op → (conn, client id, deadline).
    calls: BTreeMap<u64, (u64, String, u64)>,
    /// Calls in flight for commands: op → (tag, deadline).
    command_calls: BTreeMap<u64, (u64, u64)>,
}

const REPLY_TYPES: [&str; 5] = ["data", "inserted", "updated", "deleted", "error"];

impl Model {
    /// The step with picked connection ids (`>= PICK`) and client ids (`*`) made concrete.
    fn resolve(&self, step: &Step) -> Step {
        let open: Vec<u64> = self.open.keys().copied().collect();
        let pick = |c: u64| match c {
            c if c < PICK => c,
            _ if open.is_empty() => 0,
            c => open[((c - PICK) as usize) % open.len()],
        };
        let mut step = step.clone();
        match &mut step {
            Step::Open { conn, request } => {
                if *conn >= PICK {
                    *conn = (0..CONNS).find(|c| !self.open.contains_key(c)).unwrap_or(0);
                }
                if request.client_id == "*" {
                    request.client_id = format!("c{conn}");
                }
            }
            Step::Frame { conn, .. }
            | Step::Pong { conn }
            | Step::Closed { conn, .. }
            | Step::Backpressure { conn, .. } => *conn = pick(*conn),
            Step::Hibernate { conn, to } => {
                *conn = pick(*conn);
                if *to >= PICK {
                    *to = (0..CONNS).find(|c| !self.open.contains_key(c)).unwrap_or(0);
                }
            }
            _ => {}
        }
        step
    }

    fn live(&self, conn: ConnId) -> bool {
        self.open.contains_key(&conn.0) && !self.closing.contains(&conn.0)
    }

    /// Whether the caller of a call is still the live connection that made it.
    fn caller_live(&self, conn: u64, client_id: &str) -> bool {
        self.open.get(&conn).is_some_and(|c| c == client_id) && !self.closing.contains(&conn)
    }

    /// Check one step's outcome (fed at `now`) and update the model.
    fn step(
        &mut self,
        engine: &Engine,
        now: u64,
        step: &Step,
        result: &Result<(), ApiMisuse>,
        actions: &[Action],
    ) -> Result<(), TestCaseError> {
        self.clock = self.clock.max(now);
        let open_conn = match step {
            Step::Open { conn, .. } => Some(*conn),
            _ => None,
        };
        match (step, result) {
            (Step::Open { conn, .. }, Err(ApiMisuse::DuplicateConnection(c))) => {
                prop_assert_eq!(c, conn);
                prop_assert!(
                    self.open.contains_key(conn),
                    "duplicate reported for a closed id"
                );
                prop_assert!(actions.is_empty(), "misuse must not act: {:?}", actions);
                return self.check_engine(engine);
            }
            (Step::Open { conn, .. }, Ok(())) => {
                prop_assert!(
                    !self.open.contains_key(conn),
                    "Open of an open id was accepted"
                );
                let answers = actions
                    .iter()
                    .filter(|a| matches!(a, Action::Accept { .. } | Action::Reject { .. }))
                    .count();
                prop_assert_eq!(answers, 1, "one Accept/Reject per Open: {:?}", actions);
            }
            (_, Err(e)) => {
                return Err(TestCaseError::fail(format!(
                    "unexpected misuse error {e:?}"
                )))
            }
            (_, Ok(())) => {}
        }
        // Answers this step may carry, per connection: (types allowed, how many).
        let mut expected_answers: BTreeMap<u64, usize> = BTreeMap::new();
        let mut due_calls = Vec::new();
        // Command results this step must carry (tags), besides a `Command` step's own.
        let mut expected_results: Vec<u64> = Vec::new();
        match step {
            Step::Completed { op, .. } => {
                if let Some((tag, _)) = self.command_calls.get(op) {
                    expected_results.push(*tag);
                }
            }
            Step::Timeout | Step::TimeoutAtDeadline => {
                for (&op, &(tag, deadline)) in &self.command_calls {
                    if deadline <= self.clock {
                        due_calls.push(op);
                        expected_results.push(tag);
                    }
                }
            }
            _ => {}
        }
        let answering = match step {
            Step::Completed { op, .. } => {
                if let Some((conn, client_id, _)) = self.calls.get(op) {
                    if self.caller_live(*conn, client_id) {
                        expected_answers.insert(*conn, 1);
                    }
                }
                true
            }
            Step::Timeout | Step::TimeoutAtDeadline => {
                for (&op, (conn, client_id, deadline)) in &self.calls {
                    let (conn, deadline) = (*conn, *deadline);
                    if deadline <= self.clock {
                        due_calls.push(op);
                        if self.caller_live(conn, client_id) {
                            *expected_answers.entry(conn).or_default() += 1;
                        }
                    }
                }
                true
            }
            _ => false,
        };
        let mut answers: BTreeMap<u64, usize> = BTreeMap::new();
        let mut command_results = 0;
        let mut command_calls = 0;
        let mut results: Vec<u64> = Vec::new();
        for action in actions {
            match action {
                Action::Accept { conn, .. } => {
                    prop_assert_eq!(Some(conn.0), open_conn, "Accept outside Open");
                    // The client id arrives with the welcome frame that follows.
                    self.open.insert(conn.0, String::new());
                    self.accepts += 1;
                }
                Action::Reject { conn, status, body } => {
                    prop_assert_eq!(Some(conn.0), open_conn, "Reject outside Open");
                    prop_assert!(
                        [401, 403, 404, 429, 500, 503].contains(status),
                        "status {}",
                        status
                    );
                    let body: Value = serde_json::from_str(body)
                        .map_err(|e| TestCaseError::fail(format!("reject body not JSON: {e}")))?;
                    prop_assert_eq!(&body["type"], "error");
                }
                Action::Send { conn, frame } => {
                    prop_assert!(
                        self.live(*conn),
                        "Send to {:?} (not live): {:?}",
                        conn,
                        frame
                    );
                    let v = frame_text(frame)?;
                    if v["type"] == "connected" {
                        let id = v["clientId"].as_str().unwrap_or_default().to_string();
                        let slot = self.open.get_mut(&conn.0).expect("live");
                        prop_assert!(slot.is_empty(), "second welcome to {:?}", conn);
                        prop_assert!(!id.is_empty(), "welcome without clientId");
                        *slot = id;
                    }
                    if answering && REPLY_TYPES.contains(&v["type"].as_str().unwrap_or("")) {
                        *answers.entry(conn.0).or_default() += 1;
                    }
                }
                Action::SendMany { conns, frame } => {
                    prop_assert!(conns.len() >= 2, "SendMany with {} conns", conns.len());
                    let unique: BTreeSet<_> = conns.iter().collect();
                    prop_assert_eq!(unique.len(), conns.len(), "duplicate recipient");
                    for c in conns {
                        prop_assert!(self.live(*c), "SendMany to {:?} (not live)", c);
                    }
                    frame_text(frame)?;
                }
                Action::Ping { conn } => prop_assert!(self.live(*conn), "Ping to {:?}", conn),
                Action::Cluster { .. } => {
                    return Err(TestCaseError::fail("a cluster message outside a cluster"))
                }
                Action::Close { conn, code, .. } => {
                    prop_assert!(self.live(*conn), "Close of {:?} (not live)", conn);
                    prop_assert!(
                        [1001, 1008, 1009, 1013, 4000, 4001, 4401].contains(code),
                        "close code {}",
                        code
                    );
                    self.closing.insert(conn.0);
                }
                Action::Call {
                    op, conn, deadline, ..
                } => {
                    prop_assert!(op.0 > self.last_op, "op ids must increase");
                    self.last_op = op.0;
                    let Some(conn) = *conn else {
                        // A resource-write command's storage call.
                        let Step::Command { tag, .. } = step else {
                            return Err(TestCaseError::fail(
                                "connection-less call outside Command",
                            ));
                        };
                        prop_assert!(deadline.0 > self.clock, "deadline in the past");
                        command_calls += 1;
                        self.command_calls.insert(op.0, (*tag, deadline.0));
                        continue;
                    };
                    prop_assert!(self.live(conn), "Call for {:?} (not live)", conn);
                    prop_assert!(deadline.0 > self.clock, "deadline in the past");
                    if matches!(step, Step::Completed { .. }) {
                        // A completion may continue with the next call of the same request
                        // (prefetch → host guard → store) instead of answering.
                        *answers.entry(conn.0).or_default() += 1;
                    }
                    self.calls
                        .insert(op.0, (conn.0, self.open[&conn.0].clone(), deadline.0));
                }
                Action::CommandResult { tag, .. } => match step {
                    Step::Command { tag: t, .. } => {
                        command_results += 1;
                        prop_assert_eq!(tag, t);
                    }
                    Step::Completed { .. } | Step::Timeout | Step::TimeoutAtDeadline => {
                        results.push(*tag)
                    }
                    _ => return Err(TestCaseError::fail("CommandResult outside Command")),
                },
                // No step sends HTTP requests.
                Action::Respond { .. } => {
                    return Err(TestCaseError::fail("Respond without an HTTP request"))
                }
            }
        }
        if answering {
            // A heartbeat timeout in the same `Timeout` may close a caller before its
            // call's deadline is reached: calls of callers still live after the step
            // must have been answered, calls of callers live before it may have been.
            for (&conn, &n) in &answers {
                let most = expected_answers.get(&conn).copied().unwrap_or(0);
                prop_assert!(
                    n <= most,
                    "{} answer(s) to connection {} where at most {} call(s) of it were due \
                     (calls in flight: {:?}, open: {:?})",
                    n,
                    conn,
                    most,
                    &self.calls,
                    &self.open
                );
            }
            for (&conn, &most) in &expected_answers {
                let least = if self.live(ConnId(conn)) { most } else { 0 };
                let n = answers.get(&conn).copied().unwrap_or(0);
                prop_assert!(
                    n >= least,
                    "{} of {} due call(s) of connection {} answered",
                    n,
                    least,
                    conn
                );
            }
        }
        if matches!(step, Step::Command { .. }) {
            prop_assert_eq!(
                command_results + command_calls,
                1,
                "one CommandResult (now or after its call) per Command"
            );
        }
        results.sort_unstable();
        expected_results.sort_unstable();
        prop_assert_eq!(results, expected_results, "results of commands' calls");
        if let Step::Completed { op, .. } = step {
            self.calls.remove(op);
            self.command_calls.remove(op);
        }
        for op in due_calls {
            self.calls.remove(&op);
            self.command_calls.remove(&op);
        }
        if let Step::Closed { conn, .. } = step {
            if self.open.remove(conn).is_some() {
                self.disconnects += 1;
            }
            self.closing.remove(conn);
        }
        self.check_engine(engine)
    }

    fn check_engine(&self, engine: &Engine) -> Result<(), TestCaseError> {
        if let Err(e) = engine.check_invariants() {
            return Err(TestCaseError::fail(format!("check_invariants: {e}")));
        }
        prop_assert_eq!(engine.connection_count(), self.open.len());
        let m = engine.metrics();
        prop_assert_eq!(m.current_connections, self.open.len() as u64);
        prop_assert_eq!(
            m.connections.checked_sub(m.disconnections),
            Some(m.current_connections),
            "connections - disconnections = currentConnections"
        );
        if !self.restored {
            prop_assert_eq!(m.connections, self.accepts, "connections counter");
            prop_assert_eq!(m.disconnections, self.disconnects, "disconnections counter");
        }
        prop_assert_eq!(
            m.pending_calls as usize,
            self.calls.len() + self.command_calls.len(),
            "pendingCalls"
        );
        for c in 0..CONNS {
            prop_assert_eq!(
                engine.snapshot(ConnId(c)).is_some(),
                self.open.contains_key(&c)
            );
        }
        Ok(())
    }
}

/// Drive `engine` through a session, checking every step. Returns the transcript
/// (`serde_json` of every action, per step) for the determinism property.
fn run_session(
    engine: &mut Engine,
    steps: &[Timed],
    use_poll: bool,
) -> Result<Vec<String>, TestCaseError> {
    let mut model = Model::default();
    let mut now = T0;
    let mut transcript = Vec::new();
    let drain = |engine: &mut Engine| -> Vec<Action> {
        if use_poll {
            std::iter::from_fn(|| engine.poll_action()).collect()
        } else {
            engine.drain_actions().collect()
        }
    };
    for (i, Timed { dt, step }) in steps.iter().enumerate() {
        now = now.saturating_add_signed(*dt);
        let step = &model.resolve(step);
        if let Step::Hibernate { conn, to } = step {
            // Only a live connection can hibernate, and only into a free id.
            let (conn, to) = (*conn, *to);
            if to == conn || !model.live(ConnId(conn)) || model.open.contains_key(&to) {
                continue;
            }
            let snapshot = engine
                .snapshot(ConnId(conn))
                .expect("live connection has a snapshot");
            let text = serde_json::to_string(&snapshot).expect("snapshot serializes");
            let closed = Step::Closed { conn, code: None };
            let r = engine.handle(
                Millis(now),
                Input::Closed {
                    conn: ConnId(conn),
                    code: None,
                },
            );
            let actions = drain(engine);
            model.step(engine, now, &closed, &r, &actions)?;
            let snapshot: ConnectionSnapshot =
                serde_json::from_str(&text).expect("snapshot parses");
            let snapshot_client_id = snapshot.client_id.clone();
            let r = engine.handle(
                Millis(now),
                Input::Restore {
                    conn: ConnId(to),
                    snapshot: Box::new(snapshot),
                },
            );
            prop_assert!(r.is_ok(), "restore: {:?}", r);
            let actions = drain(engine);
            prop_assert!(actions.is_empty(), "restore sends nothing: {:?}", actions);
            // The restored connection counts as a new connection for the model.
            model.open.insert(to, snapshot_client_id);
            model.restored = true;
            transcript.push(format!("{i}: hibernate {conn} -> {to}"));
            model.check_engine(engine)?;
            continue;
        }
        // Resolve picks (a call in flight, an open connection) to plain steps.
        let resolved;
        let step = match step {
            Step::CompleteInFlight { pick, result } => {
                let ops: Vec<u64> = model
                    .calls
                    .keys()
                    .chain(model.command_calls.keys())
                    .copied()
                    .collect();
                let op = if ops.is_empty() {
                    0
                } else {
                    ops[pick % ops.len()]
                };
                resolved = Step::Completed {
                    op,
                    result: result.clone(),
                };
                &resolved
            }
            other => other,
        };
        if let Step::TimeoutAtDeadline = step {
            if let Some(t) = engine.poll_timeout() {
                now = now.max(t.0);
            }
        }
        let input = match step {
            Step::Open { conn, request } => Input::Open {
                conn: ConnId(*conn),
                request: request.clone(),
            },
            Step::Frame { conn, frame } => frame.input(ConnId(*conn)),
            Step::Pong { conn } => Input::Pong {
                conn: ConnId(*conn),
            },
            Step::Closed { conn, code } => Input::Closed {
                conn: ConnId(*conn),
                code: *code,
            },
            Step::Timeout | Step::TimeoutAtDeadline => Input::Timeout,
            Step::Backpressure { conn, buffered } => Input::Backpressure {
                conn: ConnId(*conn),
                buffered: *buffered,
            },
            Step::Completed { op, result } => Input::Completed {
                op: OpId(*op),
                result: result.clone(),
            },
            Step::Command { tag, command } => Input::Command {
                tag: *tag,
                command: command.clone(),
            },
            Step::Hibernate { .. } | Step::CompleteInFlight { .. } => unreachable!(),
        };
        let result = engine.handle(Millis(now), input);
        let actions = drain(engine);
        transcript.push(format!("{i}: {result:?}"));
        for a in &actions {
            transcript.push(serde_json::to_string(a).expect("actions serialize"));
        }
        model.step(engine, now, step, &result, &actions)?;
    }
    // The host closes everything that is left.
    for conn in model.open.keys().copied().collect::<Vec<_>>() {
        let step = Step::Closed { conn, code: None };
        let r = engine.handle(
            Millis(now),
            Input::Closed {
                conn: ConnId(conn),
                code: None,
            },
        );
        let actions = drain(engine);
        model.step(engine, now, &step, &r, &actions)?;
    }
    prop_assert_eq!(engine.connection_count(), 0);
    let m = engine.metrics().clone();
    prop_assert_eq!(
        m.connections,
        m.disconnections,
        "connections vs disconnections"
    );
    prop_assert_eq!(m.current_connections, 0);
    for (command, empty) in [(Command::Clients, json!([])), (Command::Rooms, json!([]))] {
        engine
            .handle(Millis(now), Input::Command { tag: 1, command })
            .unwrap();
        let actions = drain(engine);
        match actions.as_slice() {
            [Action::CommandResult { result: Ok(v), .. }] => prop_assert_eq!(v, &empty),
            other => return Err(TestCaseError::fail(format!("query failed: {other:?}"))),
        }
    }
    engine
        .handle(
            Millis(now),
            Input::Command {
                tag: 2,
                command: Command::ServerInfo,
            },
        )
        .unwrap();
    if let [Action::CommandResult {
        result: Ok(info), ..
    }] = drain(engine).as_slice()
    {
        prop_assert_eq!(&info["clients"], &json!(0));
        prop_assert_eq!(&info["subscriptions"], &json!(0));
        prop_assert_eq!(&info["rooms"], &json!(0));
    } else {
        return Err(TestCaseError::fail("serverInfo failed"));
    }
    // Every call in flight times out; only commands' calls are still answered (TIMEOUT);
    // then no deadline is left. "Later" is measured from the engine's clock, the latest
    // `now` it was fed (it never goes back): after the clock jumped back, `now` itself
    // may be far behind the deadlines of calls made before the jump.
    let later = Millis(model.clock.max(now) + 1_000_000);
    engine.handle(later, Input::Timeout).unwrap();
    let actions = drain(engine);
    let timed_out = actions
        .iter()
        .filter(|a| {
            matches!(a, Action::CommandResult { result: Err(e), .. } if e.code == ErrorCode::Timeout)
        })
        .count();
    prop_assert!(
        timed_out == actions.len() && timed_out == model.command_calls.len(),
        "nobody but commands left to answer: {:?}",
        actions
    );
    prop_assert_eq!(
        engine.poll_timeout(),
        None,
        "a timer outlived every connection"
    );
    prop_assert_eq!(engine.metrics().pending_calls, 0);
    if let Err(e) = engine.check_invariants() {
        return Err(TestCaseError::fail(format!(
            "check_invariants at the end: {e}"
        )));
    }
    Ok(transcript)
}

// ------------------------------------------------------------------------ properties

/// The seed of every property's random cases (see [`config`]).
const SEED: u64 = 0x5b0a_2d11;

/// Runner settings: `cases` cases generated from a fixed seed, after the committed
/// failures in `proptest_engine.proptest-regressions`, so CI runs the same cases on
/// every run. Environment variables override both: the long run before a submission
/// that touches the engine is
/// `PROPTEST_CASES=3000 cargo test --release -p switchboard-engine --test proptest_engine`
/// and `PROPTEST_RNG_SEED=<u64>` explores other cases (see `engine/README.md`).
fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        rng_seed: RngSeed::Fixed(SEED),
        ..ProptestConfig::default()
    }
}

/// Open connection 1 as client `c1` on `/`.
fn engine_with_one_connection(config: Config) -> Engine {
    let mut engine = Engine::with_seed(config, 3).unwrap();
    let request = UpgradeRequest {
        path: "/".into(),
        peer: "10.0.0.1".into(),
        client_id: "c1".into(),
        ..Default::default()
    };
    engine
        .handle(
            Millis(T0),
            Input::Open {
                conn: ConnId(1),
                request,
            },
        )
        .unwrap();
    let actions: Vec<Action> = engine.drain_actions().collect();
    assert!(matches!(actions[0], Action::Accept { .. }), "{actions:?}");
    engine
}

/// Whether `actions` answer a frame of connection 1: a frame to it, a host call for it,
/// or its close.
fn answers_sender(actions: &[Action]) -> bool {
    actions.iter().any(|a| match a {
        Action::Send { conn, .. } | Action::Close { conn, .. } => *conn == ConnId(1),
        Action::SendMany { conns, .. } => conns.contains(&ConnId(1)),
        Action::Call { conn, .. } => *conn == Some(ConnId(1)),
        _ => false,
    })
}

/// Feed frames to connection 1. Every frame is answered, except a `room:message`
/// without `ack` (answered by delivery to the other members, if any, not to the
/// sender); after the engine closes the connection nothing more is sent.
fn feed_frames(frames: &[FrameData]) -> Result<(), TestCaseError> {
    let mut engine = engine_with_one_connection(frame_config());
    let mut closed = false;
    for (i, f) in frames.iter().enumerate() {
        let now = Millis(T0 + i as u64);
        engine.handle(now, f.input(ConnId(1))).unwrap();
        let actions: Vec<Action> = engine.drain_actions().collect();
        if let Err(e) = engine.check_invariants() {
            return Err(TestCaseError::fail(format!(
                "check_invariants after frame {i}: {e}"
            )));
        }
        if closed {
            prop_assert!(actions.is_empty(), "output after Close: {:?}", actions);
            continue;
        }
        let unacknowledged_room_message = f.json().is_some_and(|v| {
            v["type"] == "room:message" && v.get("ack").is_none_or(|a| a == false)
        });
        if !unacknowledged_room_message {
            prop_assert!(answers_sender(&actions), "frame {} unanswered: {:?}", i, f);
        }
        for a in &actions {
            match a {
                Action::Send { frame, .. } | Action::SendMany { frame, .. } => {
                    frame_text(frame)?;
                }
                Action::Close { .. } => closed = true,
                _ => {}
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(192))]

    #[test]
    fn frames_on_an_open_connection_arbitrary_bytes(
        frames in prop::collection::vec(
            (prop::collection::vec(any::<u8>(), 0..300), any::<bool>()).prop_map(|(bytes, text)| {
                if text {
                    FrameData { bytes: String::from_utf8_lossy(&bytes).into_owned().into_bytes(), binary: false }
                } else {
                    FrameData { bytes, binary: true }
                }
            }),
            1..12,
        )
    ) {
        feed_frames(&frames)?;
    }

    #[test]
    fn frames_on_an_open_connection_strings_and_messages(
        frames in prop::collection::vec(arb_frame(), 1..24)
    ) {
        feed_frames(&frames)?;
    }

}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn random_sessions_keep_invariants((variant, steps) in arb_session(60, false)) {
        let mut engine = Engine::with_seed(small_config(variant), 11).unwrap();
        run_session(&mut engine, &steps, false)?;
    }

    #[test]
    fn fuzz_harness_on_random_bytes(data in prop::collection::vec(any::<u8>(), 0..600)) {
        fuzz_frames::run(&data);
    }
}

proptest! {
    #![proptest_config(config(128))]

    #[test]
    fn same_inputs_same_actions((variant, steps) in arb_session(60, false)) {
        let mut a = Engine::with_seed(small_config(variant), 42).unwrap();
        let mut b = Engine::with_seed(small_config(variant), 42).unwrap();
        let first = run_session(&mut a, &steps, false)?;
        let second = run_session(&mut b, &steps, true)?;
        prop_assert_eq!(first.len(), second.len());
        for (x, y) in first.iter().zip(&second) {
            prop_assert_eq!(x, y);
        }
    }

    #[test]
    fn hibernation_sessions_keep_invariants((variant, steps) in arb_session(60, true)) {
        let mut engine = Engine::with_seed(small_config(variant), 5).unwrap();
        run_session(&mut engine, &steps, false)?;
    }
}

/// A fixed fuzz input that walks the harness through most of its ops (a smoke test that
/// does not depend on the random generator).
#[test]
fn fuzz_harness_smoke() {
    let mut data = Vec::new();
    let mut rec = |op: u8, dt: i16, bytes: &[u8]| {
        data.push(op);
        data.extend_from_slice(&dt.to_le_bytes());
        data.push(bytes.len() as u8);
        data.extend_from_slice(bytes);
    };
    rec(0x10, 0, &[0]); // open conn 1
    rec(0x20, 0, &[1 + 4]); // open conn 2 on /secure with key-alice
    rec(0x14, 1, &[1, 4, 0, 1, 1]); // conn 1 subscribes messages {channel: messages}
    rec(0x14, 1, &[3, 0, 0, 0, 0]); // conn 1 subscribes channel news
    rec(0x24, 1, &[13, 4, 4, 0, 1]); // conn 2 inserts into messages
    rec(0x0b, 1, &[1, 3, 0, 4]); // completes op 1 with Inserted
    rec(0x11, 1, br#"{"type":"ping"}"#);
    rec(0x13, 1, b"\xff\xfe");
    rec(0x0c, 1, &[1, 0]); // publish to news
    rec(0x08, 0, &[]); // timeout at the next deadline (heartbeat ping)
    rec(0x16, 10, &[]); // pong
    rec(0x08, 0, &[]);
    rec(0x08, 0, &[]); // heartbeat timeouts close
    rec(0x07, -20000, &[]); // clock jumps back
    rec(0x19, 0, &[]); // closed
    fuzz_frames::run(&data);
}

/// The fuzz smoke test on stable: every input of the committed corpus
/// (`engine/fuzz/corpus/frames/`, where `cargo fuzz` also starts and saves findings)
/// through the harness. CI runs it (`scripts/test.sh`, step `fuzz`); the longer run is
/// `cargo +nightly fuzz run frames -- -max_total_time=600` in `engine/fuzz`.
#[test]
fn fuzz_corpus_replays() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/frames");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("the fuzz corpus is committed") {
        let path = entry.unwrap().path();
        fuzz_frames::run(&std::fs::read(&path).unwrap());
        n += 1;
    }
    assert!(n >= 4, "corpus has {n} inputs");
}

// ------------------------------------------------------------------------ fixed sessions

fn open_step(conn: u64, client_id: &str) -> Timed {
    Timed {
        dt: 0,
        step: Step::Open {
            conn,
            request: UpgradeRequest {
                path: "/".into(),
                peer: "10.0.0.1".into(),
                client_id: client_id.into(),
                ..Default::default()
            },
        },
    }
}

fn frame_step(conn: u64, message: Value) -> Timed {
    Timed {
        dt: 1,
        step: Step::Frame {
            conn,
            frame: FrameData {
                bytes: message.to_string().into_bytes(),
                binary: false,
            },
        },
    }
}

/// A host may reuse a connection id once the connection is closed. The answer to a call
/// made by the old connection must not reach the new one (it carries the old
/// connection's data and `requestId`).
#[test]
fn answer_to_a_closed_connections_call_is_not_delivered_to_a_reused_id() {
    let steps = vec![
        open_step(1, "c1"),
        frame_step(
            1,
            json!({"type": "get", "resource": "messages", "id": "r1", "requestId": 1}),
        ),
        Timed {
            dt: 1,
            step: Step::Closed {
                conn: 1,
                code: Some(1000),
            },
        },
        open_step(1, "c2"),
        Timed {
            dt: 1,
            step: Step::Completed {
                op: 1,
                result: HostResult::Store(StoreOutcome::Record(Some(
                    json!({"id": "r1", "secret": 0}),
                ))),
            },
        },
    ];
    let mut engine = Engine::with_seed(small_config(0), 1).unwrap();
    if let Err(e) = run_session(&mut engine, &steps, false) {
        panic!("{e}");
    }
}

/// The same through the call's timeout.
#[test]
fn timeout_of_a_closed_connections_call_is_not_delivered_to_a_reused_id() {
    let steps = vec![
        open_step(1, "c1"),
        frame_step(
            1,
            json!({"type": "get", "resource": "messages", "id": "r1", "requestId": 1}),
        ),
        Timed {
            dt: 1,
            step: Step::Closed {
                conn: 1,
                code: Some(1000),
            },
        },
        open_step(1, "c2"),
        Timed {
            dt: 800,
            step: Step::Timeout,
        },
    ];
    let mut engine = Engine::with_seed(small_config(0), 1).unwrap();
    if let Err(e) = run_session(&mut engine, &steps, false) {
        panic!("{e}");
    }
}

/// Hibernation: snapshot a connection, report it closed, restore it under a new id,
/// close it. Counters and invariants must stay consistent.
#[test]
fn restore_then_close_keeps_counters_consistent() {
    let steps = vec![
        open_step(1, "c1"),
        Timed {
            dt: 0,
            step: Step::Hibernate { conn: 1, to: 2 },
        },
    ];
    let mut engine = Engine::with_seed(small_config(0), 1).unwrap();
    if let Err(e) = run_session(&mut engine, &steps, false) {
        panic!("{e}");
    }
}

/// The engine's clock never goes back: a call made after the host's clock jumped back
/// gets its deadline from the engine's clock, and still times out (answered `TIMEOUT`)
/// once the host's clock passes it. (Found by `same_inputs_same_actions`: the model's
/// final `Timeout` was fed at the host's clock, not the engine's.)
#[test]
fn a_command_call_made_after_the_clock_went_back_times_out_later() {
    let mut data = Map::new();
    data.insert("n".into(), json!(1));
    let steps = vec![
        open_step(0, "c0"),
        Timed {
            dt: -1_200_000,
            step: Step::Command {
                tag: 9,
                command: Command::Update {
                    resource: "notes".into(),
                    id: "r2".into(),
                    data,
                },
            },
        },
    ];
    let mut engine = Engine::with_seed(small_config(0), 1).unwrap();
    if let Err(e) = run_session(&mut engine, &steps, false) {
        panic!("{e}");
    }
}
