//! Behaviour tests of the engine through its public inputs and actions.

use serde_json::{json, Value};

use super::*;
use crate::config::ChangeKind;
use crate::error::close;
use crate::hostcall::{StoreError, StoreErrorKind, StoreOutcome, StoreRequest};

const T0: u64 = 1_700_000_000_000;

struct H {
    e: Engine,
    now: u64,
}

fn req(path: &str, query: &str, headers: &[(&str, &str)], client: &str) -> UpgradeRequest {
    UpgradeRequest {
        path: path.into(),
        query: query.into(),
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        peer: "10.0.0.1".into(),
        client_id: client.into(),
    }
}

impl H {
    fn new(cfg: Value) -> H {
        let config = Config::from_value(cfg).expect("valid test config");
        H {
            e: Engine::with_seed(config, 7).unwrap(),
            now: T0,
        }
    }

    fn default_cfg() -> Value {
        json!({
            "auth": {"apiKeys": {
                "key_admin": {"id": "admin1", "role": "admin"},
                "key_user": {"id": "u1", "role": "user", "scopes": ["read"]}
            }},
            "resources": {
                "messages": {},
                "users": {"protected": ["password"], "auth": ["admin", "user"]},
                "notifications": {"events": ["insert"]}
            },
            "rooms": {"overrides": {"duo": {"maxConnections": 2}}}
        })
    }

    fn std() -> H {
        H::new(Self::default_cfg())
    }

    fn input(&mut self, input: Input<'_>) -> Vec<Action> {
        self.e.handle(Millis(self.now), input).unwrap();
        let out: Vec<Action> = self.e.drain_actions().collect();
        self.e.check_invariants().unwrap();
        out
    }

    fn open_req(&mut self, conn: u64, r: UpgradeRequest) -> Vec<Action> {
        self.input(Input::Open {
            conn: ConnId(conn),
            request: r,
        })
    }

    /// Open and assert accepted; returns the welcome frame.
    fn open(&mut self, conn: u64, query: &str) -> Value {
        let acts = self.open_req(conn, req("/", query, &[], &format!("c{conn}")));
        assert!(
            matches!(acts[0], Action::Accept { .. }),
            "expected accept, got {acts:?}"
        );
        frames_for(&acts, conn).remove(0)
    }

    fn send(&mut self, conn: u64, msg: Value) -> Vec<Action> {
        let text = msg.to_string();
        self.input(Input::Frame {
            conn: ConnId(conn),
            frame: InFrame::Text(&text),
        })
    }

    /// Send and return the frames the sender got.
    fn ask(&mut self, conn: u64, msg: Value) -> Vec<Value> {
        let acts = self.send(conn, msg);
        frames_for(&acts, conn)
    }

    fn cmd(&mut self, command: Command) -> (Result<Value, CommandError>, Vec<Action>) {
        let acts = self.input(Input::Command { tag: 9, command });
        let result = acts
            .iter()
            .find_map(|a| match a {
                Action::CommandResult { tag: 9, result } => Some(result.clone()),
                _ => None,
            })
            .expect("command result");
        (result, acts)
    }

    fn advance_to(&mut self, t: u64) -> Vec<Action> {
        self.now = t;
        self.input(Input::Timeout)
    }
}

/// Frames sent to `conn` (directly or via SendMany), parsed.
fn frames_for(actions: &[Action], conn: u64) -> Vec<Value> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send { conn: c, frame } if c.0 == conn => Some(frame),
            Action::SendMany { conns, frame } if conns.contains(&ConnId(conn)) => Some(frame),
            _ => None,
        })
        .map(|f| serde_json::from_str(f.as_text().unwrap()).unwrap())
        .collect()
}

fn rejection(actions: &[Action]) -> (u16, Value) {
    match &actions[0] {
        Action::Reject { status, body, .. } => (*status, serde_json::from_str(body).unwrap()),
        other => panic!("expected rejection, got {other:?}"),
    }
}

fn call_of(actions: &[Action]) -> (OpId, StoreRequest) {
    actions
        .iter()
        .find_map(|a| match a {
            Action::Call {
                op,
                request: HostRequest::Store(r),
                ..
            } => Some((*op, r.clone())),
            _ => None,
        })
        .expect("a host call")
}

fn close_of(actions: &[Action], conn: u64) -> Option<(u16, String)> {
    actions.iter().find_map(|a| match a {
        Action::Close {
            conn: c,
            code,
            reason,
        } if c.0 == conn => Some((*code, reason.clone())),
        _ => None,
    })
}

// ---------------------------------------------------------------- upgrade and auth

#[test]
fn welcome_frame_shape() {
    let mut h = H::std();
    let w = h.open(1, "token=key_user");
    assert_eq!(
        w,
        json!({"type":"connected","clientId":"c1",
               "user":{"id":"u1","role":"user","scopes":["read"]},
               "timestamp":"2023-11-14T22:13:20.000Z","protocolVersion":1})
    );
    let w = h.open(2, "");
    assert_eq!(w["user"], Value::Null);
}

#[test]
fn unknown_path_is_404_and_disallowed_origin_is_403() {
    let mut h = H::new(json!({"routes":[{"path":"/ws","origins":["https://app.example"]}]}));
    let (s, b) = rejection(&h.open_req(1, req("/nope", "", &[], "a")));
    assert_eq!((s, b["code"].as_str()), (404, Some("NOT_FOUND")));
    let (s, b) = rejection(&h.open_req(
        2,
        req("/ws", "", &[("Origin", "https://evil.example")], "b"),
    ));
    assert_eq!((s, b["reason"].as_str()), (403, Some("origin_not_allowed")));
    let acts = h.open_req(
        3,
        req("/ws/", "", &[("Origin", "https://app.example")], "c"),
    );
    assert!(matches!(acts[0], Action::Accept { .. }));
}

#[test]
fn auth_required_route_refuses_missing_token_with_reason() {
    let mut cfg = H::default_cfg();
    cfg["auth"]["required"] = json!(true);
    let mut h = H::new(cfg);
    let (s, b) = rejection(&h.open_req(1, req("/", "", &[], "a")));
    assert_eq!(s, 401);
    assert_eq!(b["code"], "UNAUTHORIZED");
    assert_eq!(b["reason"], "missing_token");
}

#[test]
fn invalid_token_is_refused_even_where_auth_is_optional() {
    let mut h = H::std();
    let (s, b) = rejection(&h.open_req(1, req("/", "token=nope", &[], "a")));
    assert_eq!(s, 401);
    assert_eq!(b["code"], "UNAUTHORIZED");
    assert_ne!(b["reason"], "missing_token");
}

#[test]
fn tokens_are_read_from_every_source() {
    let mut h = H::std();
    for (i, r) in [
        req("/", "token=key_admin", &[], "a"),
        req("/", "", &[("Authorization", "Bearer key_admin")], "b"),
        req("/", "", &[("X-API-Key", "key_admin")], "c"),
        req(
            "/",
            "",
            &[("Sec-WebSocket-Protocol", "switchboard.v1, bearer.key_admin")],
            "d",
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let acts = h.open_req(i as u64, r);
        let w = &frames_for(&acts, i as u64)[0];
        assert_eq!(w["user"]["id"], "admin1", "source {i}");
    }
}

#[test]
fn subprotocol_is_echoed_only_when_offered() {
    let mut h = H::std();
    let acts = h.open_req(
        1,
        req(
            "/",
            "",
            &[("Sec-WebSocket-Protocol", "switchboard.v1")],
            "a",
        ),
    );
    assert_eq!(
        acts[0],
        Action::Accept {
            conn: ConnId(1),
            protocol: Some("switchboard.v1".into())
        }
    );
    let acts = h.open_req(2, req("/", "", &[("Sec-WebSocket-Protocol", "other")], "b"));
    assert_eq!(
        acts[0],
        Action::Accept {
            conn: ConnId(2),
            protocol: None
        }
    );
}

#[test]
fn route_scopes_and_hosts() {
    let mut cfg = H::default_cfg();
    cfg["routes"] = json!([
        {"path":"/","host":"tenant-a.example"},
        {"path":"/"},
        {"path":"/read","scopes":["read"]},
        {"path":"/write","scopes":["write"]}
    ]);
    let mut h = H::new(cfg);
    // Scoped route without token → 401; with token lacking scope → 403.
    assert_eq!(
        rejection(&h.open_req(1, req("/write", "", &[], "a"))).0,
        401
    );
    let (s, b) = rejection(&h.open_req(2, req("/write", "token=key_user", &[], "b")));
    assert_eq!((s, b["reason"].as_str()), (403, Some("missing_scope")));
    assert!(matches!(
        h.open_req(3, req("/read", "token=key_user", &[], "c"))[0],
        Action::Accept { .. }
    ));
    // Host-specific route is matched by Host header.
    assert!(matches!(
        h.open_req(4, req("/", "", &[("Host", "TENANT-A.example:443")], "d"))[0],
        Action::Accept { .. }
    ));
    let info = h.cmd(Command::Clients).0.unwrap();
    assert_eq!(info.as_array().unwrap().len(), 2);
}

#[test]
fn connection_limits_total_per_ip_per_user() {
    let mut cfg = H::default_cfg();
    cfg["limits"] =
        json!({"maxConnections": 3, "maxConnectionsPerIp": 2, "maxConnectionsPerUser": 1});
    let mut h = H::new(cfg);
    h.open(1, "token=key_user");
    let (s, b) = rejection(&h.open_req(2, req("/", "token=key_user", &[], "x")));
    assert_eq!(
        (s, b["reason"].as_str()),
        (429, Some("too_many_connections_for_user"))
    );
    h.open(3, "");
    let (s, b) = rejection(&h.open_req(4, req("/", "", &[], "y")));
    assert_eq!(
        (s, b["reason"].as_str()),
        (429, Some("too_many_connections_from_ip"))
    );
    let mut other_ip = req("/", "", &[], "z");
    other_ip.peer = "10.0.0.2".into();
    h.open_req(5, other_ip.clone());
    other_ip.peer = "10.0.0.3".into();
    other_ip.client_id = "zz".into();
    let (s, b) = rejection(&h.open_req(6, other_ip));
    assert_eq!((s, b["code"].as_str()), (503, Some("LIMIT_EXCEEDED")));
    // Closing frees the slot.
    h.input(Input::Closed {
        conn: ConnId(1),
        code: Some(1000),
    });
    h.open(7, "token=key_user");
}

#[test]
fn duplicate_conn_id_is_api_misuse_and_empty_client_id_is_generated() {
    let mut h = H::std();
    let acts = h.open_req(1, req("/", "", &[], ""));
    let w = &frames_for(&acts, 1)[0];
    assert_eq!(w["clientId"].as_str().unwrap().len(), 22);
    let err =
        h.e.handle(
            Millis(T0),
            Input::Open {
                conn: ConnId(1),
                request: req("/", "", &[], "q"),
            },
        )
        .unwrap_err();
    assert_eq!(err, ApiMisuse::DuplicateConnection(1));
    let (s, _) = rejection(&h.open_req(2, req("/", "", &[], w["clientId"].as_str().unwrap())));
    assert_eq!(s, 500);
}

// ---------------------------------------------------------------- frames and codec errors

#[test]
fn request_id_is_echoed_as_the_same_json_value() {
    let mut h = H::std();
    h.open(1, "");
    for rid in [
        json!(0),
        json!(""),
        json!(null),
        json!(42),
        json!("r1"),
        json!({"a":[1]}),
    ] {
        let f = h.ask(1, json!({"type":"ping","requestId":rid}));
        assert_eq!(f[0]["type"], "pong");
        assert_eq!(f[0]["requestId"], rid);
        assert_eq!(f[0]["timestamp"], T0);
        let f = h.ask(1, json!({"type":"nope","requestId":rid}));
        assert_eq!(f[0]["code"], "UNKNOWN_MESSAGE_TYPE");
        assert_eq!(f[0]["requestId"], rid);
    }
    let f = h.ask(1, json!({"type":"ping"}));
    assert!(f[0].get("requestId").is_none());
}

#[test]
fn malformed_frames_get_errors_and_the_connection_survives() {
    let mut h = H::std();
    h.open(1, "");
    for (text, code) in [
        ("{not json", "INVALID_JSON"),
        ("null", "INVALID_MESSAGE"),
        ("[1,2]", "INVALID_MESSAGE"),
        ("42", "INVALID_MESSAGE"),
        (r#"{"type":"subscribe"}"#, "INVALID_MESSAGE"),
        (r#"{"type":"get","resource":"messages"}"#, "INVALID_MESSAGE"),
    ] {
        let acts = h.input(Input::Frame {
            conn: ConnId(1),
            frame: InFrame::Text(text),
        });
        let f = frames_for(&acts, 1);
        assert_eq!(f[0]["code"], code, "{text}");
        assert!(close_of(&acts, 1).is_none());
    }
    assert_eq!(h.ask(1, json!({"type":"ping"}))[0]["type"], "pong");
}

#[test]
fn oversize_frame_gets_error_then_close_1009() {
    let mut h = H::new(json!({"maxPayloadSize": 100}));
    h.open(1, "");
    let big = format!(r#"{{"type":"ping","pad":"{}"}}"#, "x".repeat(200));
    let acts = h.input(Input::Frame {
        conn: ConnId(1),
        frame: InFrame::Text(&big),
    });
    assert_eq!(frames_for(&acts, 1)[0]["code"], "PAYLOAD_TOO_LARGE");
    assert_eq!(close_of(&acts, 1).unwrap().0, close::MESSAGE_TOO_BIG);
    // After the close, further input is ignored.
    assert!(h.send(1, json!({"type":"ping"})).is_empty());
    h.input(Input::Closed {
        conn: ConnId(1),
        code: None,
    });
    assert_eq!(h.e.connection_count(), 0);
}

#[test]
fn rate_limit_refuses_then_closes_after_repeated_abuse() {
    let mut h = H::new(
        json!({"rateLimit":{"enabled":true,"windowMs":1000,"maxRequests":2,"closeAfter":3}}),
    );
    h.open(1, "");
    assert_eq!(h.ask(1, json!({"type":"ping"}))[0]["type"], "pong");
    assert_eq!(h.ask(1, json!({"type":"ping"}))[0]["type"], "pong");
    let f = h.ask(1, json!({"type":"ping","requestId":"r3"}));
    assert_eq!(f[0]["code"], "RATE_LIMIT_EXCEEDED");
    assert_eq!(f[0]["requestId"], "r3");
    // Refill after half a window gives one token and resets the abuse count.
    h.now += 500;
    assert_eq!(h.ask(1, json!({"type":"ping"}))[0]["type"], "pong");
    for _ in 0..2 {
        let acts = h.send(1, json!({"type":"ping"}));
        assert!(close_of(&acts, 1).is_none());
    }
    let acts = h.send(1, json!({"type":"ping"}));
    assert_eq!(close_of(&acts, 1).unwrap().0, close::POLICY_VIOLATION);
}

// ---------------------------------------------------------------- subscriptions

fn insert_cmd(resource: &str, record: Value) -> Command {
    Command::ResourceChanged {
        resource: resource.into(),
        event: ChangeKind::Insert,
        record,
        previous: None,
    }
}

#[test]
fn subscribe_filters_and_events_are_enforced() {
    let mut h = H::std();
    h.open(1, "");
    h.open(2, "");
    let s = h.ask(
        1,
        json!({"type":"subscribe","requestId":1,"resource":"messages",
                             "filter":{"channel":"general"},"events":["delete","insert"]}),
    );
    assert_eq!(s[0]["type"], "subscribed");
    assert_eq!(s[0]["subscriptionId"], "sub-1");
    assert_eq!(s[0]["events"], json!(["insert", "delete"]));
    assert_eq!(s[0]["filter"], json!({"channel":"general"}));
    h.ask(
        2,
        json!({"type":"subscribe","resource":"messages","events":["update"]}),
    );
    let (r, acts) = h.cmd(insert_cmd(
        "messages",
        json!({"id":"m1","channel":"general"}),
    ));
    assert_eq!(r.unwrap()["delivered"], 1);
    let ev = &frames_for(&acts, 1)[0];
    assert_eq!(ev["type"], "event");
    assert_eq!(ev["event"], "insert");
    assert_eq!(ev["resource"], "messages");
    assert_eq!(ev["data"]["id"], "m1");
    assert!(
        frames_for(&acts, 2).is_empty(),
        "update-only subscriber got an insert"
    );
    let (r, _) = h.cmd(insert_cmd(
        "messages",
        json!({"id":"m2","channel":"random"}),
    ));
    assert_eq!(r.unwrap()["delivered"], 0);
}

#[test]
fn several_filters_on_one_resource_all_work_and_deliver_once() {
    let mut h = H::std();
    h.open(1, "");
    h.ask(
        1,
        json!({"type":"subscribe","resource":"messages","filter":{"channel":"random"}}),
    );
    h.ask(
        1,
        json!({"type":"subscribe","resource":"messages","filter":{"channel":"general"}}),
    );
    h.ask(1, json!({"type":"subscribe","resource":"messages"}));
    for ch in ["random", "general", "other"] {
        let (_, acts) = h.cmd(insert_cmd("messages", json!({"channel":ch})));
        assert_eq!(frames_for(&acts, 1).len(), 1, "{ch}");
    }
}

#[test]
fn unsubscribe_by_id_by_filter_value_and_all() {
    let mut h = H::std();
    h.open(1, "");
    h.ask(
        1,
        json!({"type":"subscribe","resource":"messages","filter":{"a":1,"b":2}}),
    );
    h.ask(
        1,
        json!({"type":"subscribe","resource":"messages","filter":{"a":2}}),
    );
    h.ask(1, json!({"type":"subscribe","resource":"messages"}));
    // Filters compare as values: key order and 1 vs 1.0 do not matter.
    let f = h.ask(
        1,
        json!({"type":"unsubscribe","resource":"messages","filter":{"b":2.0,"a":1},"requestId":0}),
    );
    assert_eq!(
        f[0],
        json!({"type":"unsubscribed","subscriptionIds":["sub-1"],"resource":"messages","filter":{"b":2.0,"a":1},"requestId":0})
    );
    let f = h.ask(1, json!({"type":"unsubscribe","subscriptionId":"sub-3"}));
    assert_eq!(f[0]["subscriptionIds"], json!(["sub-3"]));
    let f = h.ask(1, json!({"type":"unsubscribe","subscriptionId":"sub-3"}));
    assert_eq!(f[0]["code"], "NOT_FOUND");
    h.ask(
        1,
        json!({"type":"subscribe","resource":"messages","filter":{"c":1}}),
    );
    let f = h.ask(1, json!({"type":"unsubscribe","resource":"messages"}));
    assert_eq!(f[0]["subscriptionIds"], json!(["sub-2", "sub-4"]));
    let (r, _) = h.cmd(insert_cmd("messages", json!({"a":2,"c":1})));
    assert_eq!(r.unwrap()["delivered"], 0);
}

#[test]
fn subscribe_errors() {
    let mut cfg = H::default_cfg();
    cfg["limits"] = json!({"maxSubscriptionsPerConnection": 1});
    let mut h = H::new(cfg);
    h.open(1, "");
    h.open(2, "token=key_user");
    let code = |f: Vec<Value>| f[0]["code"].as_str().unwrap().to_string();
    assert_eq!(
        code(h.ask(1, json!({"type":"subscribe","resource":"nope"}))),
        "RESOURCE_NOT_FOUND"
    );
    assert_eq!(
        code(h.ask(1, json!({"type":"subscribe","resource":"users"}))),
        "UNAUTHORIZED"
    );
    assert_eq!(
        code(h.ask(
            1,
            json!({"type":"subscribe","resource":"messages","filter":{"a":{"$bad":1}}})
        )),
        "INVALID_MESSAGE"
    );
    assert_eq!(
        code(h.ask(
            1,
            json!({"type":"subscribe","resource":"messages","filter":[1]})
        )),
        "INVALID_MESSAGE"
    );
    assert_eq!(
        code(h.ask(
            1,
            json!({"type":"subscribe","resource":"notifications","events":["delete"]})
        )),
        "INVALID_MESSAGE"
    );
    assert_eq!(
        code(h.ask(
            1,
            json!({"type":"subscribe","resource":"messages","channel":"x"})
        )),
        "INVALID_MESSAGE"
    );
    assert_eq!(
        h.ask(1, json!({"type":"subscribe","resource":"messages"}))[0]["type"],
        "subscribed"
    );
    assert_eq!(
        code(h.ask(1, json!({"type":"subscribe","resource":"messages"}))),
        "LIMIT_EXCEEDED"
    );
    assert_eq!(
        h.ask(2, json!({"type":"subscribe","resource":"users"}))[0]["type"],
        "subscribed"
    );
}

#[test]
fn update_leaving_the_filter_is_delivered_and_protected_fields_never_leak() {
    let mut h = H::std();
    h.open(1, "token=key_admin");
    h.ask(
        1,
        json!({"type":"subscribe","resource":"users","filter":{"team":"a"}}),
    );
    let (_, acts) = h.cmd(Command::ResourceChanged {
        resource: "users".into(),
        event: ChangeKind::Update,
        record: json!({"id":"u1","team":"b","password":"new"}),
        previous: Some(json!({"id":"u1","team":"a","password":"old"})),
    });
    let ev = &frames_for(&acts, 1)[0];
    assert_eq!(ev["event"], "update");
    assert_eq!(ev["data"]["$before"]["team"], "a");
    assert_eq!(ev["data"]["$after"]["team"], "b");
    assert!(!ev.to_string().contains("password"));
}

// ---------------------------------------------------------------- channels, rooms, direct

#[test]
fn publish_reaches_channel_subscribers_once_with_shared_bytes() {
    let mut h = H::std();
    for c in 1..=3 {
        h.open(c, "");
    }
    assert_eq!(
        h.ask(2, json!({"type":"subscribe","channel":"news"}))[0]["channel"],
        "news"
    );
    h.ask(3, json!({"type":"subscribe","channel":"news"}));
    h.ask(1, json!({"type":"subscribe","channel":"news"}));
    let acts = h.send(
        1,
        json!({"type":"publish","channel":"news","message":{"t":1},"requestId":5}),
    );
    let many = acts
        .iter()
        .find_map(|a| match a {
            Action::SendMany { conns, frame } => Some((conns.clone(), frame.clone())),
            _ => None,
        })
        .unwrap();
    assert_eq!(
        many.0,
        vec![ConnId(2), ConnId(3)],
        "sender excluded, order kept"
    );
    let m: Value = serde_json::from_str(many.1.as_text().unwrap()).unwrap();
    assert_eq!(
        m,
        json!({"type":"message","channel":"news","from":"c1","data":{"t":1},"timestamp":"2023-11-14T22:13:20.000Z"})
    );
    let f = frames_for(&acts, 1);
    assert_eq!(
        f[0],
        json!({"type":"published","channel":"news","delivered":2,"requestId":5})
    );
}

#[test]
fn publish_to_a_resource_name_reaches_its_subscribers_only_with_the_opt_in() {
    let mut cfg = H::default_cfg();
    cfg["resources"]["messages"] = json!({"publish": true});
    let mut h = H::new(cfg);
    h.open(1, "");
    h.open(2, "");
    h.ask(
        2,
        json!({"type":"subscribe","resource":"messages","filter":{"x":1}}),
    );
    let f = h.ask(1, json!({"type":"publish","channel":"messages"}));
    assert_eq!(f.last().unwrap()["delivered"], 1);
    let f = h.ask(1, json!({"type":"publish","channel":"lobby"}));
    assert_eq!(f[0]["delivered"], 0);
    // Without the opt-in (the default), the resource's subscribers get nothing.
    let mut h = H::std();
    h.open(1, "");
    h.open(2, "");
    h.ask(2, json!({"type":"subscribe","resource":"messages"}));
    let f = h.ask(1, json!({"type":"publish","channel":"messages"}));
    assert_eq!(
        f,
        vec![json!({"type":"published","channel":"messages","delivered":0})]
    );
}

/// With the opt-in, publishing to a resource's subscribers needs the resource's roles:
/// an anonymous client must not reach the subscribers of a resource it cannot use.
#[test]
fn publish_to_an_opted_in_resource_needs_its_roles() {
    let mut cfg = H::default_cfg();
    cfg["resources"]["users"]["publish"] = json!(true);
    let mut h = H::new(cfg);
    h.open(1, "");
    h.open(2, "token=key_admin");
    h.open(3, "token=key_user");
    h.ask(2, json!({"type":"subscribe","resource":"users"}));
    let f = h.ask(
        1,
        json!({"type":"publish","channel":"users","message":{"type":"event"}}),
    );
    assert_eq!(
        (f.len(), &f[0]["code"]),
        (1, &json!("UNAUTHORIZED")),
        "{f:?}"
    );
    let f = h.ask(3, json!({"type":"publish","channel":"users","message":1}));
    assert_eq!(f.last().unwrap()["delivered"], 1, "{f:?}");
}

#[test]
fn publish_roles() {
    let mut cfg = H::default_cfg();
    cfg["channels"] = json!({"publishRoles":["admin"]});
    let mut h = H::new(cfg);
    h.open(1, "");
    h.open(2, "token=key_user");
    h.open(3, "token=key_admin");
    assert_eq!(
        h.ask(1, json!({"type":"publish","channel":"c"}))[0]["code"],
        "UNAUTHORIZED"
    );
    assert_eq!(
        h.ask(2, json!({"type":"publish","channel":"c"}))[0]["code"],
        "FORBIDDEN"
    );
    assert_eq!(
        h.ask(3, json!({"type":"publish","channel":"c"}))[0]["type"],
        "published"
    );
}

#[test]
fn rooms_join_presence_message_members_leave() {
    let mut h = H::std();
    h.open(1, "token=key_user");
    h.open(2, "");
    h.open(3, "");
    let f = h.ask(1, json!({"type":"join","room":"duo","requestId":"j"}));
    assert_eq!(
        f[0],
        json!({"type":"joined","room":"duo","members":1,"requestId":"j"})
    );
    let acts = h.send(2, json!({"type":"join","channel":"duo"}));
    assert_eq!(frames_for(&acts, 2)[0]["members"], 2);
    assert_eq!(
        frames_for(&acts, 1)[0],
        json!({"type":"room:joined","room":"duo","member":{"clientId":"c2","user":null}})
    );
    assert_eq!(
        h.ask(3, json!({"type":"join","room":"duo"}))[0]["code"],
        "ROOM_FULL"
    );
    assert_eq!(
        h.ask(3, json!({"type":"room:message","room":"duo","data":1}))[0]["code"],
        "FORBIDDEN"
    );
    assert_eq!(
        h.ask(3, json!({"type":"room:members","room":"duo"}))[0]["code"],
        "FORBIDDEN"
    );
    let acts = h.send(1, json!({"type":"room:message","room":"duo","event":"typing","data":{"x":1},"ack":true,"requestId":2}));
    assert_eq!(frames_for(&acts, 2)[0]["type"], "room:message");
    assert_eq!(frames_for(&acts, 2)[0]["event"], "typing");
    assert_eq!(
        frames_for(&acts, 1)[0],
        json!({"type":"sent","delivered":1,"requestId":2})
    );
    let f = h.ask(2, json!({"type":"room:members","room":"duo"}));
    assert_eq!(f[0]["members"][0]["clientId"], "c1");
    assert_eq!(f[0]["members"][0]["user"]["id"], "u1");
    let acts = h.send(1, json!({"type":"leave","room":"duo"}));
    assert_eq!(frames_for(&acts, 1)[0]["type"], "left");
    assert_eq!(
        frames_for(&acts, 2)[0],
        json!({"type":"room:left","room":"duo","clientId":"c1"})
    );
    assert_eq!(
        h.ask(1, json!({"type":"leave","room":"duo"}))[0]["code"],
        "NOT_FOUND"
    );
    // Disconnecting announces the leave too.
    h.ask(3, json!({"type":"join","room":"duo"}));
    let acts = h.input(Input::Closed {
        conn: ConnId(2),
        code: Some(1000),
    });
    assert_eq!(frames_for(&acts, 3)[0]["type"], "room:left");
    let (rooms, _) = h.cmd(Command::Rooms);
    assert_eq!(
        rooms.unwrap(),
        json!([{"room":"duo","members":1,"maxConnections":2}])
    );
}

#[test]
fn room_limits() {
    let mut cfg = H::default_cfg();
    cfg["limits"] = json!({"maxRoomsPerConnection": 1});
    cfg["rooms"] = json!({"maxRooms": 2});
    let mut h = H::new(cfg);
    h.open(1, "");
    h.open(2, "");
    h.open(3, "");
    h.ask(1, json!({"type":"join","room":"a"}));
    assert_eq!(
        h.ask(1, json!({"type":"join","room":"b"}))[0]["code"],
        "LIMIT_EXCEEDED"
    );
    assert_eq!(
        h.ask(1, json!({"type":"join","room":"a"}))[0]["type"],
        "joined"
    );
    h.ask(2, json!({"type":"join","room":"b"}));
    assert_eq!(
        h.ask(3, json!({"type":"join","room":"c"}))[0]["code"],
        "LIMIT_EXCEEDED"
    );
    assert_eq!(
        h.ask(3, json!({"type":"join","room":""}))[0]["code"],
        "INVALID_MESSAGE"
    );
}

#[test]
fn direct_messages() {
    let mut h = H::std();
    h.open(1, "");
    h.open(2, "");
    let acts = h.send(
        1,
        json!({"type":"direct","to":"c2","data":"hi","ack":true,"requestId":1}),
    );
    assert_eq!(
        frames_for(&acts, 2)[0],
        json!({"type":"direct","from":"c1","data":"hi","timestamp":"2023-11-14T22:13:20.000Z"})
    );
    assert_eq!(frames_for(&acts, 1)[0]["delivered"], 1);
    assert_eq!(
        h.ask(1, json!({"type":"direct","to":"ghost"}))[0]["code"],
        "NOT_FOUND"
    );
}

// ---------------------------------------------------------------- heartbeat

#[test]
fn heartbeat_ping_pong_and_timeout_close() {
    let mut h = H::new(json!({"heartbeatInterval": 1000, "heartbeatTimeout": 300}));
    h.open(1, "");
    h.open(2, "");
    assert_eq!(h.e.poll_timeout(), Some(Millis(T0 + 1000)));
    assert!(h.advance_to(T0 + 999).is_empty());
    let acts = h.advance_to(T0 + 1000);
    assert_eq!(
        acts.iter()
            .filter(|a| matches!(a, Action::Ping { .. }))
            .count(),
        2
    );
    assert_eq!(h.e.poll_timeout(), Some(Millis(T0 + 1300)));
    // Conn 1 answers; conn 2 only sends a frame (also counts as alive).
    h.now = T0 + 1100;
    h.input(Input::Pong { conn: ConnId(1) });
    h.send(2, json!({"type":"ping"}));
    assert_eq!(h.e.poll_timeout(), Some(Millis(T0 + 2000)));
    h.advance_to(T0 + 2000);
    h.now = T0 + 2100;
    h.input(Input::Pong { conn: ConnId(1) });
    let acts = h.advance_to(T0 + 2300);
    assert_eq!(
        close_of(&acts, 2),
        Some((close::HEARTBEAT_TIMEOUT, "heartbeat timeout".into()))
    );
    assert!(close_of(&acts, 1).is_none());
    assert_eq!(h.e.metrics().heartbeat_timeouts, 1);
}

#[test]
fn heartbeat_off_means_no_deadline() {
    let mut h = H::new(json!({"heartbeatInterval": 0}));
    h.open(1, "");
    assert_eq!(h.e.poll_timeout(), None);
}

// ---------------------------------------------------------------- host calls

#[test]
fn insert_goes_through_a_host_call_and_fans_out() {
    let mut h = H::std();
    h.open(1, "token=key_admin");
    h.open(2, "token=key_admin");
    h.ask(2, json!({"type":"subscribe","resource":"users"}));
    let acts = h.send(1, json!({"type":"insert","resource":"users","requestId":"i","data":{"name":"a","password":"p"}}));
    let (op, r) = call_of(&acts);
    let StoreRequest::Insert { resource, record } = r else {
        panic!()
    };
    assert_eq!(resource, "users");
    assert_eq!(record["id"].as_str().unwrap().len(), 20);
    assert_eq!(record["createdAt"], "2023-11-14T22:13:20.000Z");
    let acts = h.input(Input::Completed {
        op,
        result: HostResult::Store(StoreOutcome::Inserted(record.clone())),
    });
    let reply = &frames_for(&acts, 1)[0];
    assert_eq!(reply["type"], "inserted");
    assert_eq!(reply["requestId"], "i");
    assert!(reply["data"].get("password").is_none());
    let ev = &frames_for(&acts, 2)[0];
    assert_eq!(ev["type"], "event");
    assert!(ev["data"].get("password").is_none());
    // A second completion for the same op is late and dropped.
    h.input(Input::Completed {
        op,
        result: HostResult::Store(StoreOutcome::Inserted(record)),
    });
    assert_eq!(h.e.metrics().late_completions, 1);
}

#[test]
fn get_list_update_delete_and_store_errors() {
    let mut h = H::std();
    h.open(1, "");
    let (op, _) = call_of(&h.send(
        1,
        json!({"type":"get","resource":"messages","id":"nope","requestId":1}),
    ));
    let acts = h.input(Input::Completed {
        op,
        result: HostResult::Store(StoreOutcome::Record(None)),
    });
    assert_eq!(frames_for(&acts, 1)[0]["code"], "NOT_FOUND");
    let (op, r) = call_of(&h.send(1, json!({"type":"list","resource":"messages","limit":1000})));
    assert!(matches!(r, StoreRequest::List { limit: 100, .. }));
    let acts = h.input(Input::Completed {
        op,
        result: HostResult::Store(StoreOutcome::Page {
            items: vec![json!({"id":"a"})],
            cursor: None,
        }),
    });
    assert_eq!(
        frames_for(&acts, 1)[0],
        json!({"type":"data","resource":"messages","data":[{"id":"a"}],"cursor":null})
    );
    let (op, r) = call_of(&h.send(
        1,
        json!({"type":"update","resource":"messages","id":"a","data":{"x":1}}),
    ));
    let StoreRequest::Update { patch, .. } = r else {
        panic!()
    };
    assert_eq!(patch["x"], 1);
    let acts = h.input(Input::Completed {
        op,
        result: HostResult::Store(StoreOutcome::Failed(StoreError {
            kind: StoreErrorKind::Internal,
            message: "disk I/O error at /var/lib/db".into(),
        })),
    });
    let e = &frames_for(&acts, 1)[0];
    assert_eq!(e["code"], "INTERNAL_ERROR");
    assert!(!e.to_string().contains("/var/lib"), "internals leaked: {e}");
    let (op, _) = call_of(&h.send(1, json!({"type":"delete","resource":"messages","id":"a"})));
    let acts = h.input(Input::Completed {
        op,
        result: HostResult::Store(StoreOutcome::Deleted {
            previous: json!({"id":"a"}),
        }),
    });
    assert_eq!(
        frames_for(&acts, 1)[0],
        json!({"type":"deleted","resource":"messages","id":"a"})
    );
    assert_eq!(
        h.ask(1, json!({"type":"get","resource":"internal","id":"x"}))[0]["code"],
        "RESOURCE_NOT_FOUND"
    );
    assert_eq!(
        h.ask(
            1,
            json!({"type":"update","resource":"messages","id":"a","data":{"id":"b"}})
        )[0]["code"],
        "VALIDATION_ERROR"
    );
}

#[test]
fn host_call_deadline_and_bounds() {
    let mut cfg = H::default_cfg();
    cfg["limits"] = json!({"maxPendingCallsPerConnection": 1, "hostCallTimeoutMs": 100});
    cfg["heartbeatInterval"] = json!(0);
    let mut h = H::new(cfg);
    h.open(1, "");
    let acts = h.send(
        1,
        json!({"type":"get","resource":"messages","id":"a","requestId":"g1"}),
    );
    let (op, _) = call_of(&acts);
    assert_eq!(
        h.ask(1, json!({"type":"get","resource":"messages","id":"b"}))[0]["code"],
        "LIMIT_EXCEEDED"
    );
    assert_eq!(h.e.poll_timeout(), Some(Millis(T0 + 100)));
    let acts = h.advance_to(T0 + 100);
    let e = &frames_for(&acts, 1)[0];
    assert_eq!(
        (e["code"].as_str(), e["requestId"].as_str()),
        (Some("TIMEOUT"), Some("g1"))
    );
    h.input(Input::Completed {
        op,
        result: HostResult::Store(StoreOutcome::Record(None)),
    });
    assert_eq!(h.e.metrics().late_completions, 1);
    assert_eq!(h.e.poll_timeout(), None);
}

#[test]
fn write_completing_after_the_writer_left_still_fans_out() {
    let mut h = H::std();
    h.open(1, "");
    h.open(2, "");
    h.ask(2, json!({"type":"subscribe","resource":"messages"}));
    let (op, r) = call_of(&h.send(
        1,
        json!({"type":"insert","resource":"messages","data":{"a":1}}),
    ));
    h.input(Input::Closed {
        conn: ConnId(1),
        code: Some(1001),
    });
    let StoreRequest::Insert { record, .. } = r else {
        panic!()
    };
    let acts = h.input(Input::Completed {
        op,
        result: HostResult::Store(StoreOutcome::Inserted(record)),
    });
    assert_eq!(frames_for(&acts, 2)[0]["type"], "event");
    assert!(frames_for(&acts, 1).is_empty());
}

// ---------------------------------------------------------------- server API

#[test]
fn broadcast_send_to_disconnect_and_queries() {
    let mut h = H::std();
    h.open(1, "token=key_admin");
    h.open(2, "token=key_user");
    h.open(3, "");
    let (r, acts) = h.cmd(Command::Broadcast {
        message: json!({"type":"announcement"}),
        filter: Some(json!({"role":"admin"})),
        tenant: None,
    });
    assert_eq!(r.unwrap()["delivered"], 1);
    assert_eq!(frames_for(&acts, 1)[0], json!({"type":"announcement"}));
    let (r, _) = h.cmd(Command::Broadcast {
        message: json!("all"),
        filter: None,
        tenant: None,
    });
    assert_eq!(r.unwrap()["delivered"], 3);
    let (r, acts) = h.cmd(Command::SendTo {
        client_id: "c3".into(),
        message: json!({"x":1}),
    });
    assert_eq!(r.unwrap()["delivered"], 1);
    assert_eq!(frames_for(&acts, 3)[0], json!({"x":1}));
    assert_eq!(
        h.cmd(Command::SendTo {
            client_id: "zz".into(),
            message: json!(1)
        })
        .0
        .unwrap_err()
        .code,
        ErrorCode::NotFound
    );
    let (r, acts) = h.cmd(Command::Disconnect {
        client_id: "c2".into(),
        reason: None,
    });
    assert!(r.is_ok());
    assert_eq!(close_of(&acts, 2).unwrap().0, close::DISCONNECTED_BY_SERVER);
    let clients = h.cmd(Command::Clients).0.unwrap();
    assert_eq!(clients.as_array().unwrap().len(), 2);
    assert_eq!(clients[0]["connectedAt"], "2023-11-14T22:13:20.000Z");
    let info = h.cmd(Command::ServerInfo).0.unwrap();
    assert_eq!(info["protocolVersion"], 1);
    let m = h.cmd(Command::Metrics).0.unwrap();
    assert_eq!(m["connections"], 3);
    assert_eq!(
        h.cmd(Command::Publish {
            channel: "n".into(),
            data: None,
            tenant: None,
        })
        .0
        .unwrap()["delivered"],
        0
    );
    assert_eq!(
        h.cmd(insert_cmd("nope", json!({}))).0.unwrap_err().code,
        ErrorCode::ResourceNotFound
    );
}

#[test]
fn shutdown_closes_everyone_with_1001_and_refuses_new_upgrades() {
    let mut h = H::std();
    h.open(1, "");
    h.open(2, "");
    let (r, acts) = h.cmd(Command::Shutdown { reason: None });
    assert_eq!(r.unwrap()["closing"], 2);
    assert_eq!(
        close_of(&acts, 1).unwrap(),
        (1001, "server shutting down".into())
    );
    assert_eq!(close_of(&acts, 2).unwrap().0, 1001);
    let (s, b) = rejection(&h.open_req(3, req("/", "", &[], "n")));
    assert_eq!((s, b["code"].as_str()), (503, Some("UNAVAILABLE")));
    assert!(h.e.is_draining());
}

#[test]
fn slow_consumer_close_and_drop_policies() {
    let mut h = H::new(json!({"limits":{"maxBufferedBytes": 1000}}));
    h.open(1, "");
    assert!(h
        .input(Input::Backpressure {
            conn: ConnId(1),
            buffered: 1000
        })
        .is_empty());
    let acts = h.input(Input::Backpressure {
        conn: ConnId(1),
        buffered: 1001,
    });
    assert_eq!(close_of(&acts, 1).unwrap().0, close::TRY_AGAIN_LATER);

    let mut h = H::new(json!({"limits":{"maxBufferedBytes": 1000, "slowConsumer": "drop"}}));
    h.open(1, "");
    h.open(2, "");
    for c in [1, 2] {
        h.ask(c, json!({"type":"subscribe","channel":"x"}));
    }
    h.input(Input::Backpressure {
        conn: ConnId(1),
        buffered: 5000,
    });
    let (r, acts) = h.cmd(Command::Publish {
        channel: "x".into(),
        data: None,
        tenant: None,
    });
    assert_eq!(r.unwrap()["delivered"], 1);
    assert!(frames_for(&acts, 1).is_empty());
    assert_eq!(h.e.metrics().dropped_slow_consumer, 1);
    // Replies still go out to the slow client.
    assert_eq!(h.ask(1, json!({"type":"ping"}))[0]["type"], "pong");
}

// ---------------------------------------------------------------- snapshot / restore

#[test]
fn snapshot_restore_round_trip_keeps_subscriptions_and_rooms() {
    let mut h = H::std();
    h.open(1, "token=key_user");
    h.ask(
        1,
        json!({"type":"subscribe","resource":"messages","filter":{"c":"a"}}),
    );
    h.ask(1, json!({"type":"subscribe","channel":"news"}));
    h.ask(1, json!({"type":"join","room":"r"}));
    let snap = h.e.snapshot(ConnId(1)).unwrap();
    let text = serde_json::to_string(&snap).unwrap();
    assert!(text.len() < 2048, "snapshot is {} bytes", text.len());
    // Hibernation: the engine is rebuilt from scratch and the connection restored.
    let mut h2 = H::std();
    let restored: ConnectionSnapshot = serde_json::from_str(&text).unwrap();
    h2.input(Input::Restore {
        conn: ConnId(1),
        snapshot: Box::new(restored),
    });
    let (r, _) = h2.cmd(insert_cmd("messages", json!({"c":"a"})));
    assert_eq!(r.unwrap()["delivered"], 1);
    assert_eq!(
        h2.cmd(Command::Publish {
            channel: "news".into(),
            data: None,
            tenant: None,
        })
        .0
        .unwrap()["delivered"],
        1
    );
    assert_eq!(
        h2.ask(1, json!({"type":"room:members","room":"r"}))[0]["members"][0]["clientId"],
        "c1"
    );
    assert_eq!(
        h2.ask(1, json!({"type":"subscribe","resource":"messages"}))[0]["subscriptionId"],
        "sub-3"
    );
    let mut bad = snap.clone();
    bad.version = 99;
    let err = h2.e.handle(
        Millis(T0),
        Input::Restore {
            conn: ConnId(5),
            snapshot: Box::new(bad),
        },
    );
    assert_eq!(err, Err(ApiMisuse::SnapshotVersion(99)));
}

// ---------------------------------------------------------------- determinism

#[test]
fn same_inputs_give_byte_identical_outputs() {
    fn run() -> Vec<String> {
        let mut h = H::std();
        let mut out = vec![];
        let mut record = |acts: Vec<Action>| {
            for a in acts {
                out.push(serde_json::to_string(&a).unwrap());
            }
        };
        record(h.open_req(1, req("/", "", &[], "")));
        record(h.open_req(2, req("/", "token=key_admin", &[], "")));
        record(h.send(1, json!({"type":"subscribe","resource":"messages"})));
        record(h.send(
            2,
            json!({"type":"insert","resource":"messages","data":{"a":1}}),
        ));
        record(h.send(1, json!({"type":"join","room":"x"})));
        record(h.advance_to(T0 + 30_000));
        record(h.advance_to(T0 + 40_000));
        out
    }
    assert_eq!(run(), run());
}

#[test]
fn a_write_completing_after_its_timeout_still_reaches_subscribers() {
    let mut cfg = H::default_cfg();
    cfg["limits"] = json!({"hostCallTimeoutMs": 100});
    cfg["heartbeatInterval"] = json!(0);
    let mut h = H::new(cfg);
    h.open(1, "");
    h.open(2, "");
    h.ask(2, json!({"type":"subscribe","resource":"messages"}));
    let (op, r) = call_of(&h.send(
        1,
        json!({"type":"insert","resource":"messages","data":{"a":1}}),
    ));
    let acts = h.advance_to(T0 + 100);
    assert_eq!(frames_for(&acts, 1)[0]["code"], "TIMEOUT");
    let StoreRequest::Insert { record, .. } = r else {
        panic!()
    };
    let acts = h.input(Input::Completed {
        op,
        result: HostResult::Store(StoreOutcome::Inserted(record)),
    });
    assert_eq!(frames_for(&acts, 2)[0]["type"], "event");
    assert!(
        frames_for(&acts, 1).is_empty(),
        "no second answer to the writer"
    );
}

#[test]
fn answers_never_reach_a_new_connection_that_reuses_the_id() {
    let mut h = H::std();
    h.open(1, "");
    let (op, _) = call_of(&h.send(1, json!({"type":"get","resource":"messages","id":"a"})));
    h.input(Input::Closed {
        conn: ConnId(1),
        code: None,
    });
    let acts = h.open_req(1, req("/", "", &[], "fresh"));
    assert!(matches!(acts[0], Action::Accept { .. }));
    let acts = h.input(Input::Completed {
        op,
        result: HostResult::Store(StoreOutcome::Record(Some(json!({"id":"a"})))),
    });
    assert!(frames_for(&acts, 1).is_empty(), "{acts:?}");
}

#[test]
fn close_reasons_fit_a_close_frame() {
    let mut h = H::std();
    h.open(1, "");
    let (_, acts) = h.cmd(Command::Disconnect {
        client_id: "c1".into(),
        reason: Some("é".repeat(200)),
    });
    let (_, reason) = close_of(&acts, 1).unwrap();
    assert!(reason.len() <= 123 && reason.starts_with('é'));
}
