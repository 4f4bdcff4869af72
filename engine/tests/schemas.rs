//! Every frame the engine produces matches `protocol-spec/schemas/*.schema.json`.
//!
//! Real `engine::Engine`s (the shared harness, `engine::testing`) run through scenarios
//! that produce every server message type, every error code, every upgrade-rejection
//! reason and every close code the engine uses; each scenario is a test of its own.
//! Every server frame is validated against `server-message.schema.json`, every client
//! frame sent against `client-message.schema.json` (frames the engine refuses at decode
//! time must fail it), and every rejection body against `upgrade-rejection.schema.json`.
//! Finally, with all scenarios run together, the observed sets must equal the sets the
//! schemas list, so a message type, error code or rejection reason the schemas do not
//! know fails here, and so does a schema entry no scenario exercises.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::rc::Rc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use engine::handshake::HandshakeRefusal;
use engine::hostcall::{GuardDecision, HostRequest};
use engine::protocol::CLIENT_TYPES;
use engine::testing::{
    close_of, command_result, frames as frames_for, request as req, Harness, T0,
};
use engine::{
    Action, Command, CommandError, ConnId, ErrorCode, InFrame, Input, Millis, StoreError,
    StoreErrorKind, StoreOutcome, StoreRequest, UpgradeRequest,
};
use jsonschema::Validator;
use serde_json::{json, Map, Value};

const T0_ISO: &str = "2023-11-14T22:13:20.000Z";

// ------------------------------------------------------------------ schemas

fn load_schema(name: &str) -> Value {
    let path = format!(
        "{}/../protocol-spec/schemas/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let schema: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
    assert_eq!(
        schema["$schema"], "https://json-schema.org/draft/2020-12/schema",
        "{name} must declare draft 2020-12"
    );
    if let Err(e) = jsonschema::meta::validate(&schema) {
        panic!(
            "{name} is not a valid JSON Schema: {e} at {}",
            e.instance_path()
        );
    }
    schema
}

fn compile(name: &str, schema: &Value) -> Validator {
    jsonschema::validator_for(schema).unwrap_or_else(|e| panic!("{name} does not compile: {e}"))
}

/// The `type` constants of the schema's top-level `oneOf` branches, in order (the client
/// schema's `application` branch, any type a deployment declares, has none and is skipped).
fn listed_types(schema: &Value) -> Vec<String> {
    schema["oneOf"]
        .as_array()
        .expect("top-level oneOf")
        .iter()
        .filter_map(|branch| {
            let name = branch["$ref"]
                .as_str()
                .and_then(|r| r.strip_prefix("#/$defs/"))
                .expect("oneOf branches are local $refs");
            if name == "application" {
                return None;
            }
            Some(
                schema["$defs"][name]["properties"]["type"]["const"]
                    .as_str()
                    .unwrap_or_else(|| panic!("$defs/{name} has no `type` const"))
                    .to_string(),
            )
        })
        .collect()
}

/// Problems found by a validator, one line each (empty: valid).
fn problems(v: &Validator, instance: &Value) -> Vec<String> {
    v.iter_errors(instance)
        .map(|e| format!("{e} (at `{}`)", e.instance_path()))
        .collect()
}

/// Validators plus everything observed across all scenarios.
struct Checker {
    client: Validator,
    server: Validator,
    rejection: Validator,
    server_types: BTreeSet<String>,
    error_codes: BTreeSet<String>,
    rejection_reasons: BTreeSet<String>,
    rejection_statuses: BTreeSet<(u16, String)>,
    close_codes: BTreeSet<u16>,
    /// Verbatim server-API payloads (application JSON, outside the protocol schema).
    raw_payloads: BTreeSet<String>,
    server_frames: usize,
    client_frames: usize,
}

impl Checker {
    fn new(client: &Value, server: &Value, rejection: &Value) -> Self {
        Checker {
            client: compile("client-message.schema.json", client),
            server: compile("server-message.schema.json", server),
            rejection: compile("upgrade-rejection.schema.json", rejection),
            server_types: BTreeSet::new(),
            error_codes: BTreeSet::new(),
            rejection_reasons: BTreeSet::new(),
            rejection_statuses: BTreeSet::new(),
            close_codes: BTreeSet::new(),
            raw_payloads: BTreeSet::new(),
            server_frames: 0,
            client_frames: 0,
        }
    }

    fn check_client(&mut self, frame: &Value) {
        let p = problems(&self.client, frame);
        assert!(
            p.is_empty(),
            "client frame does not match client-message.schema.json: {frame}\n{}",
            p.join("\n")
        );
        self.client_frames += 1;
    }

    /// A rejection body (the engine's, or a handshake refusal a host sends) against
    /// upgrade-rejection.schema.json, with the status that goes with its code.
    fn rejection(&mut self, status: u16, body: &str) {
        let v: Value = serde_json::from_str(body).expect("rejection bodies are JSON");
        let p = problems(&self.rejection, &v);
        assert!(
            p.is_empty(),
            "rejection body does not match upgrade-rejection.schema.json: {body}\n{}",
            p.join("\n")
        );
        let code = v["code"].as_str().unwrap();
        let expected: &[u16] = match code {
            "INVALID_MESSAGE" => &[400, 405, 426],
            "NOT_FOUND" => &[404],
            "FORBIDDEN" => &[403],
            "UNAUTHORIZED" => &[401],
            "LIMIT_EXCEEDED" => &[429, 503],
            "UNAVAILABLE" => &[503],
            "INTERNAL_ERROR" => &[500],
            other => panic!("unexpected rejection code {other}"),
        };
        assert!(expected.contains(&status), "{code} with status {status}");
        let reason = v["reason"].as_str().unwrap().to_string();
        self.rejection_statuses.insert((status, reason.clone()));
        self.rejection_reasons.insert(reason);
    }

    fn check_action(&mut self, action: &Action) {
        match action {
            Action::Send { frame, .. } | Action::SendMany { frame, .. } => {
                let text = frame.as_text().expect("protocol v1 frames are text");
                if self.raw_payloads.contains(text) {
                    return;
                }
                let v: Value = serde_json::from_str(text).expect("server frames are JSON");
                let p = problems(&self.server, &v);
                assert!(
                    p.is_empty(),
                    "server frame does not match server-message.schema.json: {text}\n{}",
                    p.join("\n")
                );
                let first_key = v.as_object().and_then(|o| o.keys().next().cloned());
                assert_eq!(
                    first_key.as_deref(),
                    Some("type"),
                    "`type` comes first: {text}"
                );
                let ty = v["type"].as_str().unwrap().to_string();
                if ty == "error" {
                    self.error_codes
                        .insert(v["code"].as_str().unwrap().to_string());
                }
                self.server_types.insert(ty);
                self.server_frames += 1;
            }
            Action::Reject { status, body, .. } => self.rejection(*status, body),
            Action::Close { code, reason, .. } => {
                assert!(reason.len() <= 123, "close reasons fit a close frame");
                self.close_codes.insert(*code);
            }
            Action::Accept { .. }
            | Action::Ping { .. }
            | Action::Call { .. }
            | Action::Respond { .. }
            | Action::CommandResult { .. }
            | Action::Cluster { .. } => {}
        }
    }
}

// ------------------------------------------------------------------ the host

/// The shared harness ([`engine::testing`]) whose every action goes through the
/// checker; it answers host calls from a memory store (guards with its scripted
/// decision, key sources as down, application handlers with a reply) unless
/// `answer_calls` is off.
struct H {
    h: Harness,
    ck: Rc<RefCell<Checker>>,
}

impl std::ops::Deref for H {
    type Target = Harness;
    fn deref(&self) -> &Harness {
        &self.h
    }
}

impl std::ops::DerefMut for H {
    fn deref_mut(&mut self) -> &mut Harness {
        &mut self.h
    }
}

impl H {
    fn new(ck: &Rc<RefCell<Checker>>, config: Value) -> H {
        let mut h = Harness::with_seed(config, 0);
        h.answer_calls = true;
        // Key sources: the provider is down (keys_unavailable stays).
        h.fetch = engine::FetchResponse {
            status: 503,
            ..Default::default()
        };
        // Application handlers: a scripted reply.
        h.handler = Box::new(|_| engine::app::HandlerResponse::reply(json!({"ok": true})));
        let checker = Rc::clone(ck);
        h.observe = Some(Box::new(move |a| checker.borrow_mut().check_action(a)));
        h.peer = |conn| format!("10.0.0.{conn}");
        H {
            h,
            ck: Rc::clone(ck),
        }
    }

    /// Open on `/` with this query; asserts acceptance and returns the welcome frame.
    fn open(&mut self, conn: u64, query: &str) -> Value {
        let welcome = self.h.open(conn, query);
        assert_eq!(welcome["type"], "connected");
        welcome
    }

    /// Expect a rejection; returns (status, body).
    fn reject(&mut self, conn: u64, r: UpgradeRequest) -> (u16, Value) {
        let acts = self.open_req(conn, r);
        match &acts[..] {
            [Action::Reject { status, body, .. }] => (*status, serde_json::from_str(body).unwrap()),
            other => panic!("expected one rejection, got {other:?}"),
        }
    }

    /// Send a well-formed client message (validated against the client schema).
    fn send(&mut self, conn: u64, msg: Value) -> Vec<Action> {
        self.ck.borrow_mut().check_client(&msg);
        self.frame(conn, &msg.to_string())
    }

    /// Send a well-formed message; return what the sender got.
    fn ask(&mut self, conn: u64, msg: Value) -> Vec<Value> {
        let acts = self.send(conn, msg);
        frames_for(&acts, conn)
    }

    /// Send a well-formed message that must get exactly one answer; return it.
    fn ask1(&mut self, conn: u64, msg: Value) -> Value {
        let mut got = self.ask(conn, msg.clone());
        assert_eq!(got.len(), 1, "one answer to {msg}: {got:?}");
        got.remove(0)
    }

    /// Send any text; return what the sender got.
    fn raw(&mut self, conn: u64, text: &str) -> Vec<Value> {
        let acts = self.frame(conn, text);
        frames_for(&acts, conn)
    }

    fn cmd(&mut self, command: Command) -> (Result<Value, CommandError>, Vec<Action>) {
        let acts = self.input(Input::Command { tag: 77, command });
        let result = command_result(&acts, 77).expect("a command result");
        (result, acts)
    }

    fn at(&mut self, t: u64) -> Vec<Action> {
        self.advance_to(t)
    }
}

fn error_code(v: &Value) -> &str {
    assert_eq!(v["type"], "error", "expected an error frame: {v}");
    v["code"].as_str().unwrap()
}

fn main_config() -> Value {
    json!({
        "resources": {
            "messages": {},
            "users": {"protected": ["password", "profile.secret"]},
            "notes": {"events": ["insert"], "auth": ["admin"], "maxListLimit": 2}
        },
        "auth": {"apiKeys": {
            "key_admin": {"id": "admin1", "role": "admin"},
            "key_user": {"id": "u1", "role": "user", "scopes": ["read"], "email": "u1@example.com"}
        }},
        "routes": [
            {"path": "/"},
            {"path": "/private", "authRequired": true},
            {"path": "/write", "scopes": ["write"]},
            {"path": "/web", "origins": ["https://app.example"]}
        ],
        "rooms": {"overrides": {"tiny": {"maxConnections": 1}}},
        "limits": {
            "maxSubscriptionsPerConnection": 6,
            "maxPendingCallsPerConnection": 2,
            "hostCallTimeoutMs": 1000
        }
    })
}

// ------------------------------------------------------------------ the tests

/// The three schemas, parsed.
struct Schemas {
    client: Value,
    server: Value,
    rejection: Value,
}

fn schemas() -> Schemas {
    Schemas {
        client: load_schema("client-message.schema.json"),
        server: load_schema("server-message.schema.json"),
        rejection: load_schema("upgrade-rejection.schema.json"),
    }
}

/// A fresh checker over the three schemas.
fn checker(s: &Schemas) -> Rc<RefCell<Checker>> {
    Rc::new(RefCell::new(Checker::new(
        &s.client,
        &s.server,
        &s.rejection,
    )))
}

type Scenario = fn(&Rc<RefCell<Checker>>);

/// One test per scenario (every frame it sends and receives matches the schemas), and
/// `SCENARIOS`: all of them, in order, for the coverage test.
macro_rules! scenario_tests {
    ($($test:ident => $scenario:ident),* $(,)?) => {
        $(
            #[test]
            fn $test() {
                let ck = checker(&schemas());
                $scenario(&ck);
            }
        )*
        const SCENARIOS: &[Scenario] = &[$($scenario),*];
    };
}

scenario_tests! {
    upgrade_and_auth_frames_and_rejections_match_the_schemas => upgrades_and_auth,
    jwt_rejection_bodies_match_the_schemas => jwt_rejections,
    connection_limit_rejections_match_the_schemas => connection_limits,
    request_ids_and_bad_frames_are_answered_with_schema_errors => request_ids_and_bad_frames,
    subscription_and_event_frames_match_the_schemas => subscriptions_and_events,
    crud_frames_match_the_schemas => crud,
    guard_and_validation_errors_match_the_schemas => guards_and_validation,
    host_call_failures_are_answered_with_schema_errors => host_call_failures,
    channel_frames_match_the_schemas => channels,
    stream_frames_match_the_schemas => streams,
    application_message_frames_match_the_schemas => application_messages,
    room_and_direct_message_frames_match_the_schemas => rooms_and_direct,
    rate_limit_errors_and_closes_match_the_schemas => rate_limit,
    payload_limit_errors_and_closes_match_the_schemas => payload_limit,
    heartbeat_closes_match_the_schemas => heartbeat,
    token_expiry_and_refresh_frames_match_the_schemas => token_expiry_and_refresh,
    slow_consumer_frames_and_closes_match_the_schemas => slow_consumers,
    server_api_frames_match_the_schemas => server_api,
}

#[test]
fn client_schema_lists_exactly_the_engine_client_types() {
    let client_schema = schemas().client;
    let client_listed = listed_types(&client_schema);
    assert_eq!(
        client_listed, CLIENT_TYPES,
        "client schema oneOf vs CLIENT_TYPES"
    );
    // An application message type may be anything but a built-in one.
    let enum_listed: Vec<&str> = client_schema["$defs"]["application"]["properties"]["type"]["not"]
        ["enum"]
        .as_array()
        .expect("$defs/application excludes the built-in types")
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(
        enum_listed, CLIENT_TYPES,
        "client schema: built-in types excluded from `application` vs CLIENT_TYPES"
    );
}

/// The server schema's error codes, in its order.
fn schema_error_codes(server_schema: &Value) -> Vec<&str> {
    server_schema["$defs"]["errorCode"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect()
}

#[test]
fn server_schema_error_codes_are_exactly_the_engine_codes() {
    let server_schema = schemas().server;
    let engine_codes: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
    assert_eq!(
        schema_error_codes(&server_schema),
        engine_codes,
        "server schema error codes vs ErrorCode::ALL"
    );
}

#[test]
fn handshake_refusal_bodies_match_the_rejection_schema() {
    // The refusals hosts send before the engine decides; the engine writes their bodies.
    let ck = checker(&schemas());
    for r in HandshakeRefusal::ALL {
        ck.borrow_mut().rejection(r.status(), &r.body());
    }
}

/// All scenarios together produce every server message type, error code, rejection
/// reason and status, and close code the schemas list, and nothing else.
#[test]
fn the_scenarios_produce_every_message_type_error_code_rejection_and_close_code() {
    let s = schemas();
    let ck = checker(&s);
    for scenario in SCENARIOS {
        scenario(&ck);
    }
    for r in HandshakeRefusal::ALL {
        ck.borrow_mut().rejection(r.status(), &r.body());
    }
    let (server_schema, rejection_schema) = (&s.server, &s.rejection);
    let engine_codes: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();

    let ck = ck.borrow();
    // Every server message type the schema lists was produced, and nothing else.
    let listed: BTreeSet<String> = listed_types(server_schema).into_iter().collect();
    assert_eq!(ck.server_types, listed, "observed server types vs schema");
    // Every error code was produced.
    let all_codes: BTreeSet<String> = engine_codes.iter().map(|s| s.to_string()).collect();
    assert_eq!(
        ck.error_codes, all_codes,
        "observed error codes vs ErrorCode::ALL"
    );
    // Every rejection reason the schema lists was produced.
    let mut reasons = BTreeSet::new();
    for branch in rejection_schema["oneOf"].as_array().unwrap() {
        let r = &branch["properties"]["reason"];
        if let Some(c) = r["const"].as_str() {
            reasons.insert(c.to_string());
        }
        for c in r["enum"].as_array().into_iter().flatten() {
            reasons.insert(c.as_str().unwrap().to_string());
        }
    }
    assert_eq!(
        ck.rejection_reasons, reasons,
        "observed rejection reasons vs schema"
    );
    let statuses: BTreeSet<u16> = ck.rejection_statuses.iter().map(|(s, _)| *s).collect();
    assert_eq!(
        statuses,
        BTreeSet::from([400, 401, 403, 404, 405, 426, 429, 500, 503])
    );
    // Every close code the engine itself sends.
    assert_eq!(
        ck.close_codes,
        BTreeSet::from([1001, 1008, 1009, 1013, 4000, 4001, 4401]),
        "observed close codes"
    );
    assert!(ck.server_frames > 150, "{} server frames", ck.server_frames);
    assert!(ck.client_frames > 60, "{} client frames", ck.client_frames);
}

// ------------------------------------------------------------------ scenarios

fn upgrades_and_auth(ck: &Rc<RefCell<Checker>>) {
    let mut h = H::new(ck, main_config());

    // Welcome frame: anonymous and with an API key (claims are never echoed).
    let w = h.open(1, "");
    assert_eq!(
        w,
        json!({"type":"connected","clientId":"c1","user":null,"timestamp":T0_ISO,"protocolVersion":1})
    );
    let w = h.open(2, "token=key_user");
    assert_eq!(
        w["user"],
        json!({"id":"u1","role":"user","scopes":["read"]})
    );

    // Every token source, and the subprotocol echo.
    let sources = [
        req("/", "", &[("Authorization", "Bearer key_admin")], "p", "s1"),
        req("/", "", &[("authorization", "bearer key_admin")], "p", "s2"),
        req("/", "", &[("X-API-Key", "key_admin")], "p", "s3"),
        req(
            "/",
            "",
            &[("Sec-WebSocket-Protocol", "switchboard.v1, bearer.key_admin")],
            "p",
            "s4",
        ),
    ];
    for (i, r) in sources.into_iter().enumerate() {
        let conn = 10 + i as u64;
        let acts = h.open_req(conn, r);
        let w = &frames_for(&acts, conn)[0];
        assert_eq!(w["user"]["id"], "admin1", "source {i}");
        if i == 3 {
            assert_eq!(
                acts[0],
                Action::Accept {
                    conn: ConnId(conn),
                    protocol: Some("switchboard.v1".into())
                }
            );
        }
    }
    // Precedence: ?token= wins over the header, and a bad first source is not skipped.
    let acts = h.open_req(
        20,
        req(
            "/",
            "token=key_user",
            &[("X-API-Key", "key_admin")],
            "p",
            "s5",
        ),
    );
    assert_eq!(frames_for(&acts, 20)[0]["user"]["id"], "u1");
    let (s, b) = h.reject(
        21,
        req("/", "token=bogus", &[("X-API-Key", "key_admin")], "p", "s6"),
    );
    assert_eq!((s, b["reason"].as_str()), (401, Some("unknown_api_key")));
    // An offered subprotocol other than switchboard.v1 is not echoed.
    let acts = h.open_req(
        22,
        req(
            "/",
            "",
            &[("Sec-WebSocket-Protocol", "other.v2")],
            "p",
            "s7",
        ),
    );
    assert_eq!(
        acts[0],
        Action::Accept {
            conn: ConnId(22),
            protocol: None
        }
    );

    // 404, 403 origin, 401 missing/invalid token, 403 missing scope, JWT not configured.
    let (s, b) = h.reject(30, req("/nope", "", &[], "p", "r1"));
    assert_eq!(
        (s, b["code"].as_str(), b["reason"].as_str()),
        (404, Some("NOT_FOUND"), Some("unknown_route"))
    );
    let (s, b) = h.reject(
        31,
        req("/web", "", &[("Origin", "https://evil.example")], "p", "r2"),
    );
    assert_eq!((s, b["reason"].as_str()), (403, Some("origin_not_allowed")));
    let acts = h.open_req(
        32,
        req("/web/", "", &[("Origin", "https://app.example")], "p", "r3"),
    );
    assert!(matches!(acts[0], Action::Accept { .. }));
    let (s, b) = h.reject(33, req("/private", "", &[], "p", "r4"));
    assert_eq!(
        (s, b["code"].as_str(), b["reason"].as_str()),
        (401, Some("UNAUTHORIZED"), Some("missing_token"))
    );
    let (s, b) = h.reject(34, req("/", "token=nope", &[], "p", "r5"));
    assert_eq!(
        (s, b["reason"].as_str()),
        (401, Some("unknown_api_key")),
        "invalid token on an optional route"
    );
    let (s, b) = h.reject(35, req("/write", "", &[], "p", "r6"));
    assert_eq!(
        (s, b["reason"].as_str()),
        (401, Some("missing_token")),
        "scoped route needs a token"
    );
    let (s, b) = h.reject(36, req("/write", "token=key_user", &[], "p", "r7"));
    assert_eq!(
        (s, b["code"].as_str(), b["reason"].as_str()),
        (403, Some("FORBIDDEN"), Some("missing_scope"))
    );
    let (s, b) = h.reject(37, req("/", "token=aaaa.bbbb.cccc", &[], "p", "r8"));
    assert_eq!((s, b["reason"].as_str()), (401, Some("jwt_not_accepted")));
    // The host-supplied client id is already in use.
    let (s, b) = h.reject(38, req("/", "", &[], "p", "c1"));
    assert_eq!(
        (s, b["reason"].as_str()),
        (500, Some("client_id_collision"))
    );
    // Body key order is type, code, reason, message.
    let keys: Vec<&String> = b.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["type", "code", "reason", "message"]);
}

fn jwt(alg: jsonwebtoken::Algorithm, kid: Option<&str>, claims: Value, secret: &str) -> String {
    let mut header = jsonwebtoken::Header::new(alg);
    header.kid = kid.map(str::to_string);
    jsonwebtoken::encode(
        &header,
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("sign a test token")
}

fn jwt_rejections(ck: &Rc<RefCell<Checker>>) {
    use jsonwebtoken::Algorithm::{HS256, HS384, HS512};
    let mut h = H::new(
        ck,
        json!({"auth": {"jwt": {
            "keys": [
                {"kid": "k1", "issuer": "https://a.example", "algorithm": "HS256", "secret": "secret-a"},
                {"algorithm": "HS384", "secret": "secret-plain"}
            ],
            "issuers": ["https://a.example"],
            "audience": ["switchboard"]
        }}}),
    );
    let now_s = T0 / 1000;
    let a = "https://a.example";
    let good = json!({"sub":"jwt-user","iss":a,"aud":"switchboard","exp":now_s + 600,"role":"editor","scope":"read write"});
    let with = |extra: Value| {
        let mut c = good.clone();
        for (k, v) in extra.as_object().unwrap() {
            if v.is_null() {
                c.as_object_mut().unwrap().remove(k);
            } else {
                c[k] = v.clone();
            }
        }
        c
    };
    let mut conn = 100;
    // Accepted: user from claims; exp just inside the 30 s leeway.
    conn += 1;
    let acts = open_with_token(
        &mut h,
        conn,
        &jwt(HS256, Some("k1"), good.clone(), "secret-a"),
    );
    let w = frames_for(&acts, conn)[0].clone();
    assert_eq!(
        w["user"],
        json!({"id":"jwt-user","role":"editor","scopes":["read","write"]})
    );
    conn += 1;
    let acts = open_with_token(
        &mut h,
        conn,
        &jwt(
            HS256,
            Some("k1"),
            with(json!({"exp": now_s - 30})),
            "secret-a",
        ),
    );
    assert!(matches!(acts[0], Action::Accept { .. }), "within leeway");

    let cases: Vec<(String, &str)> = vec![
        (
            jwt(
                HS256,
                Some("k1"),
                with(json!({"exp": now_s - 31})),
                "secret-a",
            ),
            "token_expired",
        ),
        (
            jwt(
                HS256,
                Some("k1"),
                with(json!({"nbf": now_s + 31})),
                "secret-a",
            ),
            "not_yet_valid",
        ),
        (
            jwt(HS256, Some("k1"), with(json!({"exp": null})), "secret-a"),
            "missing_claim",
        ),
        (
            jwt(HS256, Some("k1"), good.clone(), "wrong-secret"),
            "bad_signature",
        ),
        (
            jwt(HS256, Some("k2"), good.clone(), "secret-a"),
            "unknown_key",
        ),
        // Right kid, other issuer: keys are looked up by issuer and kid together.
        (
            jwt(
                HS256,
                Some("k1"),
                with(json!({"iss": "https://b.example"})),
                "secret-a",
            ),
            "unknown_key",
        ),
        (
            jwt(HS256, Some("k1"), with(json!({"aud": "other"})), "secret-a"),
            "wrong_audience",
        ),
        (
            jwt(
                HS384,
                None,
                with(json!({"iss": "https://evil.example"})),
                "secret-plain",
            ),
            "wrong_issuer",
        ),
        (
            jwt(HS512, None, good.clone(), "secret-a"),
            "algorithm_not_allowed",
        ),
        (
            format!(
                "{}.{}.",
                URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#),
                URL_SAFE_NO_PAD.encode(good.to_string())
            ),
            "algorithm_not_allowed",
        ),
        ("aaaa.bbbb.cccc".to_string(), "malformed_token"),
    ];
    for (token, reason) in cases {
        conn += 1;
        match &open_with_token(&mut h, conn, &token)[..] {
            [Action::Reject {
                status: 401, body, ..
            }] => {
                let b: Value = serde_json::from_str(body).unwrap();
                assert_eq!(b["reason"], reason, "{body}");
            }
            other => panic!("expected 401 {reason}, got {other:?}"),
        }
    }
}

fn open_with_token(h: &mut H, conn: u64, token: &str) -> Vec<Action> {
    h.open_req(
        conn,
        req(
            "/",
            &format!("token={token}"),
            &[],
            "p",
            &format!("j{conn}"),
        ),
    )
}

fn connection_limits(ck: &Rc<RefCell<Checker>>) {
    let mut h = H::new(
        ck,
        json!({
            "auth": {"apiKeys": {"k": {"id": "same-user"}}},
            "limits": {"maxConnections": 2, "maxConnectionsPerIp": 1, "maxConnectionsPerUser": 1}
        }),
    );
    assert!(matches!(
        h.open_req(1, req("/", "token=k", &[], "1.1.1.1", "a"))[0],
        Action::Accept { .. }
    ));
    let (s, b) = h.reject(2, req("/", "", &[], "1.1.1.1", "b"));
    assert_eq!(
        (s, b["reason"].as_str()),
        (429, Some("too_many_connections_from_ip"))
    );
    let (s, b) = h.reject(3, req("/", "token=k", &[], "2.2.2.2", "c"));
    assert_eq!(
        (s, b["reason"].as_str()),
        (429, Some("too_many_connections_for_user"))
    );
    assert!(matches!(
        h.open_req(4, req("/", "", &[], "3.3.3.3", "d"))[0],
        Action::Accept { .. }
    ));
    let (s, b) = h.reject(5, req("/", "", &[], "4.4.4.4", "e"));
    assert_eq!(
        (s, b["reason"].as_str()),
        (503, Some("too_many_connections"))
    );
    // Limits are released when the host reports the close.
    h.closed(1);
    assert!(matches!(
        h.open_req(6, req("/", "", &[], "1.1.1.1", "f"))[0],
        Action::Accept { .. }
    ));
}

fn request_ids_and_bad_frames(ck: &Rc<RefCell<Checker>>) {
    let mut h = H::new(ck, main_config());
    h.open(1, "");

    // requestId is echoed as the exact JSON value, whatever it is.
    for rid in [
        json!(0),
        json!(""),
        json!(null),
        json!("r-1"),
        json!(42),
        json!(1.5),
        json!({"x":[1]}),
        json!(false),
    ] {
        let pong = h.ask1(1, json!({"type":"ping","requestId":rid}));
        assert_eq!(pong, json!({"type":"pong","timestamp":T0,"requestId":rid}));
    }
    let pong = h.ask1(1, json!({"type":"ping"}));
    assert_eq!(
        pong,
        json!({"type":"pong","timestamp":T0}),
        "no requestId, none echoed"
    );

    // INVALID_JSON never carries a requestId.
    for text in ["{nope", "", "{\"type\":\"ping\",\"requestId\":1"] {
        let got = h.raw(1, text);
        assert_eq!(got.len(), 1);
        assert_eq!(error_code(&got[0]), "INVALID_JSON");
        assert!(got[0].get("requestId").is_none());
    }
    let acts = h.input(Input::Frame {
        conn: ConnId(1),
        frame: InFrame::Binary(&[0xff, 0xfe]),
    });
    assert_eq!(error_code(&frames_for(&acts, 1)[0]), "INVALID_JSON");
    // Binary frames holding JSON are accepted like text.
    let acts = h.input(Input::Frame {
        conn: ConnId(1),
        frame: InFrame::Binary(br#"{"type":"ping","requestId":"b"}"#),
    });
    assert_eq!(frames_for(&acts, 1)[0]["requestId"], "b");

    // Frames the decoder refuses: the client schema refuses them too, and the error
    // carries the requestId whenever the frame was an object that had one.
    let bad: Vec<(&str, &str, Option<Value>)> = vec![
        ("null", "INVALID_MESSAGE", None),
        ("[1,2]", "INVALID_MESSAGE", None),
        ("42", "INVALID_MESSAGE", None),
        ("\"ping\"", "INVALID_MESSAGE", None),
        ("true", "INVALID_MESSAGE", None),
        (r#"{"requestId":0}"#, "INVALID_MESSAGE", Some(json!(0))),
        (
            r#"{"type":5,"requestId":""}"#,
            "INVALID_MESSAGE",
            Some(json!("")),
        ),
        (
            r#"{"type":"PING","requestId":null}"#,
            "UNKNOWN_MESSAGE_TYPE",
            Some(json!(null)),
        ),
        (
            r#"{"type":"channel:update","requestId":7}"#,
            "UNKNOWN_MESSAGE_TYPE",
            Some(json!(7)),
        ),
        (
            r#"{"type":"get","resource":"messages","requestId":0}"#,
            "INVALID_MESSAGE",
            Some(json!(0)),
        ),
        (
            r#"{"type":"get","resource":"messages","id":5,"requestId":1}"#,
            "INVALID_MESSAGE",
            Some(json!(1)),
        ),
        (
            r#"{"type":"insert","resource":"messages","data":[1],"requestId":2}"#,
            "INVALID_MESSAGE",
            Some(json!(2)),
        ),
        (
            r#"{"type":"list","resource":"messages","limit":-1,"requestId":3}"#,
            "INVALID_MESSAGE",
            Some(json!(3)),
        ),
        (
            r#"{"type":"subscribe","resource":"messages","events":["create"],"requestId":4}"#,
            "INVALID_MESSAGE",
            Some(json!(4)),
        ),
        (
            r#"{"type":"publish","message":1,"requestId":5}"#,
            "INVALID_MESSAGE",
            Some(json!(5)),
        ),
        (
            r#"{"type":"join","requestId":6}"#,
            "INVALID_MESSAGE",
            Some(json!(6)),
        ),
        (
            r#"{"type":"join","room":"a","channel":"b","requestId":8}"#,
            "INVALID_MESSAGE",
            Some(json!(8)),
        ),
        (
            r#"{"type":"direct","to":"c1","ack":"yes","requestId":9}"#,
            "INVALID_MESSAGE",
            Some(json!(9)),
        ),
        (
            r#"{"type":"room:message","room":"r","ack":1}"#,
            "INVALID_MESSAGE",
            None,
        ),
    ];
    for (text, code, rid) in bad {
        let instance: Value = serde_json::from_str(text).unwrap();
        // Any type that is not built in matches the schema's `application` branch: which
        // application types exist is the deployment's (`[messages]`), not the schema's.
        assert!(
            code == "UNKNOWN_MESSAGE_TYPE" || !ck.borrow().client.is_valid(&instance),
            "the client schema accepts a frame the engine refuses: {text}"
        );
        let got = h.raw(1, text);
        assert_eq!(got.len(), 1, "{text}");
        assert_eq!(error_code(&got[0]), code, "{text}: {}", got[0]);
        assert_eq!(got[0].get("requestId").cloned(), rid, "{text}");
    }

    // Semantic refusals of well-typed frames; the schema catches these too.
    for (msg, code) in [
        (json!({"type":"subscribe","requestId":1}), "INVALID_MESSAGE"),
        (
            json!({"type":"subscribe","resource":"messages","channel":"c","requestId":1}),
            "INVALID_MESSAGE",
        ),
        (
            json!({"type":"subscribe","channel":"c","filter":{"a":1},"requestId":1}),
            "INVALID_MESSAGE",
        ),
        (
            json!({"type":"subscribe","resource":"messages","events":[],"requestId":1}),
            "INVALID_MESSAGE",
        ),
        (
            json!({"type":"subscribe","resource":"messages","filter":[1],"requestId":1}),
            "INVALID_MESSAGE",
        ),
        (
            json!({"type":"subscribe","resource":"messages","filter":{"a":{"$regex":"x"}},"requestId":1}),
            "INVALID_MESSAGE",
        ),
        (
            json!({"type":"subscribe","resource":"messages","filter":{"$or":[]},"requestId":1}),
            "INVALID_MESSAGE",
        ),
        (
            json!({"type":"subscribe","resource":"messages","filter":{"a..b":1},"requestId":1}),
            "INVALID_MESSAGE",
        ),
        (
            json!({"type":"subscribe","resource":"messages","filter":{"a":{"$in":1}},"requestId":1}),
            "INVALID_MESSAGE",
        ),
        (
            json!({"type":"subscribe","resource":"messages","filter":{"a":{"$gt":[1]}},"requestId":1}),
            "INVALID_MESSAGE",
        ),
        (
            json!({"type":"subscribe","resource":"messages","filter":{"a":{"$exists":1}},"requestId":1}),
            "INVALID_MESSAGE",
        ),
        (
            json!({"type":"list","resource":"messages","filter":{"$and":{"a":1}},"requestId":1}),
            "INVALID_MESSAGE",
        ),
        (
            json!({"type":"list","resource":"messages","filter":{"$and":[1]},"requestId":1}),
            "INVALID_MESSAGE",
        ),
        (
            json!({"type":"subscribe","channel":"","requestId":1}),
            "INVALID_MESSAGE",
        ),
        (
            json!({"type":"unsubscribe","requestId":1}),
            "INVALID_MESSAGE",
        ),
        (
            json!({"type":"unsubscribe","resource":"messages","channel":"c","requestId":1}),
            "INVALID_MESSAGE",
        ),
        (
            json!({"type":"get","resource":"messages","id":"","requestId":1}),
            "INVALID_MESSAGE",
        ),
        (
            json!({"type":"list","resource":"messages","limit":0,"requestId":1}),
            "INVALID_MESSAGE",
        ),
        (
            json!({"type":"publish","channel":"","requestId":1}),
            "INVALID_MESSAGE",
        ),
        (
            json!({"type":"join","room":"","requestId":1}),
            "INVALID_MESSAGE",
        ),
        (
            json!({"type":"insert","resource":"messages","data":{"id":""},"requestId":1}),
            "VALIDATION_ERROR",
        ),
        (
            json!({"type":"insert","resource":"messages","data":{"id":7},"requestId":1}),
            "VALIDATION_ERROR",
        ),
    ] {
        assert!(
            !ck.borrow().client.is_valid(&msg),
            "the client schema accepts a frame the engine refuses: {msg}"
        );
        let got = h.raw(1, &msg.to_string());
        assert_eq!(got.len(), 1, "{msg}");
        assert_eq!(error_code(&got[0]), code, "{msg}: {}", got[0]);
        assert_eq!(got[0]["requestId"], 1, "{msg}");
    }
    // A filter with more than 64 conditions is refused.
    let big: Map<String, Value> = (0..65).map(|i| (format!("f{i}"), json!(i))).collect();
    let msg = json!({"type":"subscribe","resource":"messages","filter":big,"requestId":"big"});
    assert!(!ck.borrow().client.is_valid(&msg));
    let got = h.raw(1, &msg.to_string());
    assert_eq!(error_code(&got[0]), "INVALID_MESSAGE");

    // Unknown extra fields are ignored.
    let got = h.ask1(1, json!({"type":"ping","requestId":"x","extra":{"a":1}}));
    assert_eq!(got["type"], "pong");
}

fn subscriptions_and_events(ck: &Rc<RefCell<Checker>>) {
    let mut h = H::new(ck, main_config());
    h.open(1, "token=key_admin"); // writer
    h.open(2, ""); // subscriber with two filters on one resource
    h.open(3, ""); // unfiltered subscriber, deletes only
    h.open(4, "token=key_user");

    let a = h.ask1(2, json!({"type":"subscribe","resource":"messages","filter":{"channel":"general"},"requestId":"a"}));
    assert_eq!(
        a,
        json!({"type":"subscribed","subscriptionId":"sub-1","resource":"messages",
               "filter":{"channel":"general"},"events":["insert","update","delete"],"requestId":"a"})
    );
    let b = h.ask1(2, json!({"type":"subscribe","resource":"messages","filter":{"n":{"$gte":2}},"events":["update","insert"]}));
    assert_eq!(b["subscriptionId"], "sub-2");
    assert_eq!(b["events"], json!(["insert", "update"]), "canonical order");
    let c = h.ask1(
        3,
        json!({"type":"subscribe","resource":"messages","events":["delete"]}),
    );
    assert_eq!(c["events"], json!(["delete"]));
    assert!(c.get("filter").is_none());
    // Events are intersected with what the resource broadcasts.
    let n = h.ask1(
        1,
        json!({"type":"subscribe","resource":"notes","events":["insert","delete"]}),
    );
    assert_eq!(n["events"], json!(["insert"]));
    let n = h.ask1(
        1,
        json!({"type":"subscribe","resource":"notes","events":["delete"],"requestId":9}),
    );
    assert_eq!(
        (error_code(&n), &n["requestId"]),
        ("INVALID_MESSAGE", &json!(9))
    );
    // Resource access.
    let e = h.ask1(
        2,
        json!({"type":"subscribe","resource":"internal","requestId":1}),
    );
    assert_eq!(error_code(&e), "RESOURCE_NOT_FOUND");
    let e = h.ask1(2, json!({"type":"subscribe","resource":"notes"}));
    assert_eq!(error_code(&e), "UNAUTHORIZED");
    let e = h.ask1(4, json!({"type":"subscribe","resource":"notes"}));
    assert_eq!(error_code(&e), "FORBIDDEN");

    // Insert matching both of conn 2's filters: one event for conn 2, after the reply.
    let acts = h.send(1, json!({"type":"insert","resource":"messages","data":{"id":"m1","channel":"general","n":2},"requestId":"i1"}));
    let writer = frames_for(&acts, 1);
    assert_eq!(writer[0]["type"], "inserted");
    assert_eq!(
        writer[0]["data"],
        json!({"id":"m1","channel":"general","n":2,"createdAt":T0_ISO,"updatedAt":T0_ISO})
    );
    let sub = frames_for(&acts, 2);
    assert_eq!(sub.len(), 1, "one event per connection per change");
    assert_eq!(
        sub[0],
        json!({"type":"event","event":"insert","resource":"messages",
               "data":{"id":"m1","channel":"general","n":2,"createdAt":T0_ISO,"updatedAt":T0_ISO},"timestamp":T0_ISO})
    );
    assert!(
        frames_for(&acts, 3).is_empty(),
        "events are enforced: conn 3 wants deletes only"
    );
    // Matches only the second filter (numeric comparison): still delivered.
    let acts = h.send(
        1,
        json!({"type":"insert","resource":"messages","data":{"id":"m2","channel":"random","n":5}}),
    );
    assert_eq!(frames_for(&acts, 2).len(), 1);
    // Matches neither.
    let acts = h.send(
        1,
        json!({"type":"insert","resource":"messages","data":{"id":"m3","channel":"random","n":1}}),
    );
    assert!(frames_for(&acts, 2).is_empty());
    // Update that moves m1 out of `general`: delivered because the record before matched.
    h.now += 1000;
    let acts = h.send(1, json!({"type":"update","resource":"messages","id":"m1","data":{"channel":"random","n":0},"requestId":"u"}));
    let ev = &frames_for(&acts, 2)[0];
    assert_eq!(ev["event"], "update");
    assert_eq!(ev["data"]["channel"], "random");
    assert_eq!(ev["data"]["$before"]["channel"], "general");
    assert_eq!(ev["data"]["$after"]["channel"], "random");
    assert_eq!(ev["data"]["updatedAt"], "2023-11-14T22:13:21.000Z");
    assert_eq!(ev["data"]["createdAt"], T0_ISO);
    // Delete: conn 3 (deletes only) gets it; conn 2 does not (neither filter matches m3).
    let acts = h.send(
        1,
        json!({"type":"delete","resource":"messages","id":"m3","requestId":"d"}),
    );
    assert_eq!(
        frames_for(&acts, 1)[0],
        json!({"type":"deleted","resource":"messages","id":"m3","requestId":"d"})
    );
    let ev = &frames_for(&acts, 3)[0];
    assert_eq!(ev["event"], "delete");
    assert_eq!(ev["data"]["$after"], Value::Null);
    assert_eq!(ev["data"]["$before"]["id"], "m3");
    assert!(frames_for(&acts, 2).is_empty());

    // Unsubscribe by resource + filter compares filters as values (key order, 2 == 2.0).
    let u = h.ask1(2, json!({"type":"unsubscribe","resource":"messages","filter":{"n":{"$gte":2.0}},"requestId":0}));
    assert_eq!(
        u,
        json!({"type":"unsubscribed","subscriptionIds":["sub-2"],"resource":"messages","filter":{"n":{"$gte":2.0}},"requestId":0})
    );
    let u = h.ask1(2, json!({"type":"unsubscribe","resource":"messages","filter":{"channel":"nope"},"requestId":""}));
    assert_eq!((error_code(&u), &u["requestId"]), ("NOT_FOUND", &json!("")));
    // By id.
    let s = h.ask1(2, json!({"type":"subscribe","resource":"users"}));
    let id = s["subscriptionId"].as_str().unwrap().to_string();
    let u = h.ask1(2, json!({"type":"unsubscribe","subscriptionId":id}));
    assert_eq!(u["subscriptionIds"], json!([id]));
    let u = h.ask1(2, json!({"type":"unsubscribe","subscriptionId":id}));
    assert_eq!(error_code(&u), "NOT_FOUND");
    // All of a resource.
    h.ask1(2, json!({"type":"subscribe","resource":"messages"}));
    let u = h.ask1(2, json!({"type":"unsubscribe","resource":"messages"}));
    assert_eq!(u["subscriptionIds"], json!(["sub-1", "sub-4"]));
    let u = h.ask1(2, json!({"type":"unsubscribe","resource":"messages"}));
    assert_eq!(error_code(&u), "NOT_FOUND");

    // Subscription limit (6 per connection, channels included).
    for i in 0..6 {
        let s = h.ask1(4, json!({"type":"subscribe","channel":format!("ch{i}")}));
        assert_eq!(s["type"], "subscribed");
    }
    let e = h.ask1(
        4,
        json!({"type":"subscribe","resource":"messages","requestId":"lim"}),
    );
    assert_eq!(error_code(&e), "LIMIT_EXCEEDED");
    // Re-subscribing to a channel already held returns the same id (no new slot).
    let s = h.ask1(4, json!({"type":"subscribe","channel":"ch0"}));
    assert_eq!(
        s,
        json!({"type":"subscribed","subscriptionId":"sub-1","channel":"ch0"})
    );

    // Server-side change (resourceChanged) reaches subscribers; protected fields are
    // stripped everywhere, including $before/$after and nested paths.
    h.ask1(3, json!({"type":"subscribe","resource":"users"}));
    let (r, acts) = h.cmd(Command::ResourceChanged {
        resource: "users".into(),
        event: engine::ChangeKind::Update,
        record: json!({"id":"u9","name":"new","password":"p2","profile":{"secret":1,"bio":"b"}}),
        previous: Some(json!({"id":"u9","name":"old","password":"p1","profile":{"secret":0}})),
    });
    assert_eq!(r.unwrap(), json!({"delivered":1}));
    let ev = &frames_for(&acts, 3)[0];
    assert!(
        !ev.to_string().contains("password") && !ev.to_string().contains("secret"),
        "{ev}"
    );
    assert_eq!(ev["data"]["$before"]["name"], "old");
    assert_eq!(ev["data"]["$after"]["profile"], json!({"bio":"b"}));
    // A resource that does not broadcast the event: delivered 0.
    let (r, _) = h.cmd(Command::ResourceChanged {
        resource: "notes".into(),
        event: engine::ChangeKind::Delete,
        record: json!({"id":"n1"}),
        previous: None,
    });
    assert_eq!(r.unwrap(), json!({"delivered":0}));
}

fn crud(ck: &Rc<RefCell<Checker>>) {
    let mut h = H::new(ck, main_config());
    h.open(1, "token=key_admin");
    h.open(2, "");

    // Insert: generated id, server timestamps, client createdAt ignored.
    let ins = h.ask1(1, json!({"type":"insert","resource":"users","data":{"name":"ann","password":"pw","createdAt":"x","profile":{"secret":"s","bio":"hi"}},"requestId":1}));
    assert_eq!(ins["type"], "inserted");
    let id = ins["data"]["id"].as_str().unwrap().to_string();
    assert_eq!(id.len(), 20);
    assert_eq!(ins["data"]["createdAt"], T0_ISO);
    assert!(
        ins["data"].get("password").is_none(),
        "protected fields are stripped from answers"
    );
    assert_eq!(ins["data"]["profile"], json!({"bio":"hi"}));
    // Duplicate id → VALIDATION_ERROR, never storage internals.
    let dup = h.ask1(
        1,
        json!({"type":"insert","resource":"users","data":{"id":id,"name":"b"},"requestId":2}),
    );
    assert_eq!(error_code(&dup), "VALIDATION_ERROR");
    assert!(!dup["message"].as_str().unwrap().contains("bucket"));
    // Get.
    let g = h.ask1(
        1,
        json!({"type":"get","resource":"users","id":id,"requestId":3}),
    );
    assert_eq!(g["type"], "data");
    assert!(g.get("cursor").is_none());
    assert!(g["data"].get("password").is_none());
    let g = h.ask1(
        1,
        json!({"type":"get","resource":"users","id":"missing","requestId":4}),
    );
    assert_eq!((error_code(&g), &g["requestId"]), ("NOT_FOUND", &json!(4)));
    // Update: id cannot change; missing record → NOT_FOUND (storage message hidden).
    let u = h.ask1(
        1,
        json!({"type":"update","resource":"users","id":id,"data":{"id":"other"},"requestId":5}),
    );
    assert_eq!(error_code(&u), "VALIDATION_ERROR");
    let u = h.ask1(1, json!({"type":"update","resource":"users","id":id,"data":{"id":id,"name":"ann2"},"requestId":6}));
    assert_eq!(u["type"], "updated");
    assert_eq!(u["data"]["name"], "ann2");
    let u = h.ask1(1, json!({"type":"update","resource":"users","id":"missing","data":{"name":"x"},"requestId":7}));
    assert_eq!(error_code(&u), "NOT_FOUND");
    assert!(!u["message"].as_str().unwrap().contains("bucket"));
    let d = h.ask1(
        1,
        json!({"type":"delete","resource":"users","id":"missing","requestId":8}),
    );
    assert_eq!(error_code(&d), "NOT_FOUND");

    // List: limit clamped to maxListLimit (2 for notes), cursor paging, filters.
    for i in 0..3 {
        h.ask1(
            1,
            json!({"type":"insert","resource":"notes","data":{"id":format!("n{i}"),"k":i}}),
        );
    }
    let acts = h.send(
        1,
        json!({"type":"list","resource":"notes","limit":50,"requestId":"l1"}),
    );
    let limit = acts.iter().find_map(|a| match a {
        Action::Call {
            request: HostRequest::Store(StoreRequest::List { limit, .. }),
            ..
        } => Some(*limit),
        _ => None,
    });
    assert_eq!(limit, Some(2), "limit clamped to maxListLimit");
    let page = &frames_for(&acts, 1)[0];
    assert_eq!(page["data"].as_array().unwrap().len(), 2);
    let cursor = page["cursor"]
        .as_str()
        .expect("a cursor while more pages remain")
        .to_string();
    let page = h.ask1(
        1,
        json!({"type":"list","resource":"notes","cursor":cursor,"requestId":"l2"}),
    );
    assert_eq!(
        page["data"],
        json!([{"id":"n2","k":2,"createdAt":T0_ISO,"updatedAt":T0_ISO}])
    );
    assert_eq!(page["cursor"], Value::Null, "null on the last page");
    let page = h.ask1(
        1,
        json!({"type":"list","resource":"notes","filter":{"k":{"$in":[0,2]}}}),
    );
    assert_eq!(page["data"].as_array().unwrap().len(), 2);
    // `$and` combines filters.
    let page = h.ask1(1, json!({"type":"list","resource":"notes","filter":{"$and":[{"k":{"$gte":1}},{"k":{"$lt":2}}]}}));
    assert_eq!(page["data"][0]["id"], "n1");
    assert_eq!(page["data"].as_array().unwrap().len(), 1);
    // A cursor the store does not recognise.
    let e = h.ask1(
        1,
        json!({"type":"list","resource":"notes","cursor":"%%%","requestId":"bad-cursor"}),
    );
    assert_eq!(
        (error_code(&e), &e["requestId"]),
        ("INVALID_MESSAGE", &json!("bad-cursor"))
    );
    let e = h.raw(
        1,
        r#"{"type":"list","resource":"notes","filter":{"k":{"$bad":1}},"requestId":"lf"}"#,
    );
    assert_eq!(
        (error_code(&e[0]), &e[0]["requestId"]),
        ("INVALID_MESSAGE", &json!("lf"))
    );

    // CRUD only on configured resources, role gates on every operation.
    for msg in [
        json!({"type":"get","resource":"internal","id":"x","requestId":"g"}),
        json!({"type":"list","resource":"internal"}),
        json!({"type":"insert","resource":"internal","data":{}}),
        json!({"type":"update","resource":"internal","id":"x","data":{}}),
        json!({"type":"delete","resource":"internal","id":"x"}),
    ] {
        assert_eq!(error_code(&h.ask1(1, msg)), "RESOURCE_NOT_FOUND");
    }
    assert_eq!(
        error_code(&h.ask1(2, json!({"type":"list","resource":"notes"}))),
        "UNAUTHORIZED"
    );
    assert_eq!(
        error_code(&h.ask1(2, json!({"type":"delete","resource":"notes","id":"n0"}))),
        "UNAUTHORIZED"
    );
}

fn guards_and_validation(ck: &Rc<RefCell<Checker>>) {
    let mut h = H::new(
        ck,
        json!({
            "resources": {
                "docs": {
                    "protected": ["secret"],
                    "schema": {
                        "type": "object",
                        "properties": {"title": {"type": "string", "maxLength": 20}, "ownerId": {"type": "string"}},
                        "required": ["title"]
                    },
                    "guards": {
                        "subscribe": "user != null && user.role == 'admin' ? true : {'ownerId': user.id}",
                        "list": "user != null && user.role == 'admin' ? true : {'ownerId': user.id}",
                        "get": "user != null",
                        "create": "user != null",
                        "update": "record.ownerId == user.id",
                        "delete": "user.role == 'admin'",
                        "read": "user.role == 'admin' || record.ownerId == user.id"
                    }
                },
                "tickets": {"hostGuards": ["create", "subscribe"]}
            },
            "auth": {"apiKeys": {
                "key_admin": {"id": "admin1", "role": "admin"},
                "key_u1": {"id": "u1", "role": "user"},
                "key_u2": {"id": "u2", "role": "user"}
            }}
        }),
    );
    h.open(1, "token=key_admin");
    h.open(2, "token=key_u1");
    h.open(3, "token=key_u2");
    h.open(4, "");

    // A guard's forced filter is not echoed: `subscribed` shows the client's filter.
    let s = h.ask1(
        2,
        json!({"type":"subscribe","resource":"docs","requestId":"s"}),
    );
    assert_eq!(
        s,
        json!({"type":"subscribed","subscriptionId":"sub-1","resource":"docs","events":["insert","update","delete"],"requestId":"s"})
    );
    h.ask1(1, json!({"type":"subscribe","resource":"docs"}));
    h.ask1(3, json!({"type":"subscribe","resource":"docs"}));
    // Guards deny with FORBIDDEN.
    let e = h.ask1(
        4,
        json!({"type":"insert","resource":"docs","data":{"title":"x"},"requestId":"anon"}),
    );
    assert_eq!(
        (error_code(&e), e["message"].as_str(), &e["requestId"]),
        ("FORBIDDEN", Some("Access denied"), &json!("anon"))
    );
    // The resource schema: VALIDATION_ERROR naming the field.
    let e = h.ask1(
        2,
        json!({"type":"insert","resource":"docs","data":{"ownerId":"u1"},"requestId":"v"}),
    );
    assert_eq!(error_code(&e), "VALIDATION_ERROR");
    assert!(e["message"].as_str().unwrap().contains("title"), "{e}");
    // Insert: the owner and admin get the event; u2's forced filter excludes it.
    let acts = h.send(2, json!({"type":"insert","resource":"docs","data":{"id":"d1","title":"mine","ownerId":"u1","secret":"s"}}));
    assert_eq!(
        frames_for(&acts, 2)[0]["data"],
        json!({"id":"d1","title":"mine","ownerId":"u1","createdAt":T0_ISO,"updatedAt":T0_ISO})
    );
    assert_eq!(frames_for(&acts, 2)[1]["type"], "event");
    assert_eq!(frames_for(&acts, 1)[0]["type"], "event");
    assert!(frames_for(&acts, 3).is_empty());
    // A record the writer may not read (read guard): the reply carries only its id.
    let acts = h.send(2, json!({"type":"insert","resource":"docs","data":{"id":"d2","title":"theirs","ownerId":"u2"},"requestId":"w"}));
    assert_eq!(
        frames_for(&acts, 2),
        vec![json!({"type":"inserted","resource":"docs","data":{"id":"d2"},"requestId":"w"})]
    );
    assert_eq!(frames_for(&acts, 3)[0]["data"]["id"], "d2");
    // List: the forced filter restricts the page.
    let page = h.ask1(2, json!({"type":"list","resource":"docs"}));
    assert_eq!(page["data"].as_array().unwrap().len(), 1);
    assert_eq!(
        h.ask1(1, json!({"type":"list","resource":"docs"}))["data"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    // Get of an unreadable record looks like a missing one.
    assert_eq!(
        error_code(&h.ask1(2, json!({"type":"get","resource":"docs","id":"d2"}))),
        "NOT_FOUND"
    );
    // Update guard reads the stored record (fetched first).
    let e = h.ask1(
        3,
        json!({"type":"update","resource":"docs","id":"d1","data":{"title":"x"},"requestId":"u"}),
    );
    assert_eq!(
        (error_code(&e), &e["requestId"]),
        ("FORBIDDEN", &json!("u"))
    );
    let e = h.ask1(
        2,
        json!({"type":"update","resource":"docs","id":"d1","data":{"title":5}}),
    );
    assert_eq!(error_code(&e), "VALIDATION_ERROR");
    let e = h.ask1(
        2,
        json!({"type":"update","resource":"docs","id":"nope","data":{"title":"x"}}),
    );
    assert_eq!(error_code(&e), "NOT_FOUND");
    let acts = h.send(
        2,
        json!({"type":"update","resource":"docs","id":"d1","data":{"title":"renamed"}}),
    );
    assert_eq!(frames_for(&acts, 2)[0]["type"], "updated");
    assert_eq!(frames_for(&acts, 1)[0]["data"]["$before"]["title"], "mine");
    // Moving d1 to u2: the writer (whose forced filter no longer admits it) gets only its
    // answer, reduced to the id by the read guard; u2 sees it arrive without `$before`.
    let acts = h.send(
        2,
        json!({"type":"update","resource":"docs","id":"d1","data":{"ownerId":"u2"}}),
    );
    assert_eq!(
        frames_for(&acts, 2),
        vec![json!({"type":"updated","resource":"docs","data":{"id":"d1"}})]
    );
    assert_eq!(frames_for(&acts, 3)[0]["data"]["$before"], Value::Null);
    assert_eq!(frames_for(&acts, 3)[0]["data"]["$after"]["ownerId"], "u2");
    assert_eq!(frames_for(&acts, 1)[0]["data"]["$before"]["ownerId"], "u1");
    assert_eq!(
        error_code(&h.ask1(2, json!({"type":"delete","resource":"docs","id":"d1"}))),
        "FORBIDDEN"
    );
    assert_eq!(
        h.ask(1, json!({"type":"delete","resource":"docs","id":"d2"}))[0]["type"],
        "deleted"
    );
    assert!(h.e.metrics().guard_denials >= 3);

    // Host guards: the host decides with allow / deny (message shown) / filter.
    h.guard_answers(GuardDecision::Deny {
        message: Some("tickets are closed".into()),
    });
    let e = h.ask1(
        2,
        json!({"type":"insert","resource":"tickets","data":{"ownerId":"u1"},"requestId":"t"}),
    );
    assert_eq!(
        (error_code(&e), e["message"].as_str()),
        ("FORBIDDEN", Some("tickets are closed"))
    );
    let call = h.guard_calls.last().unwrap().clone();
    assert_eq!(call["action"], "create");
    assert_eq!(call["context"]["user"]["id"], "u1");
    assert_eq!(call["context"]["data"]["ownerId"], "u1");
    h.guard_answers(GuardDecision::Filter {
        filter: json!({"ownerId": "u1"}),
    });
    let e = h.ask1(
        2,
        json!({"type":"insert","resource":"tickets","data":{"ownerId":"u2"}}),
    );
    assert_eq!(error_code(&e), "FORBIDDEN");
    assert_eq!(
        h.ask1(
            2,
            json!({"type":"insert","resource":"tickets","data":{"ownerId":"u1"}})
        )["type"],
        "inserted"
    );
    h.guard_answers(GuardDecision::Allow);
    assert_eq!(
        h.ask1(2, json!({"type":"subscribe","resource":"tickets"}))["type"],
        "subscribed"
    );
}

fn host_call_failures(ck: &Rc<RefCell<Checker>>) {
    let mut h = H::new(ck, main_config());
    h.open(1, "");
    h.open(2, "");
    h.ask1(2, json!({"type":"subscribe","resource":"messages"}));
    h.answer_calls = false;

    // Two calls in flight per connection; the third is refused.
    assert!(h
        .ask(
            1,
            json!({"type":"get","resource":"messages","id":"a","requestId":"g1"})
        )
        .is_empty());
    assert!(h
        .ask(
            1,
            json!({"type":"insert","resource":"messages","data":{"id":"late"},"requestId":"g2"})
        )
        .is_empty());
    let e = h.ask1(
        1,
        json!({"type":"get","resource":"messages","id":"c","requestId":"g3"}),
    );
    assert_eq!(
        (error_code(&e), &e["requestId"]),
        ("LIMIT_EXCEEDED", &json!("g3"))
    );
    // Storage failures map to codes without internals.
    let (op1, _) = h.held.remove(0);
    let acts = h.complete(
        op1,
        StoreOutcome::Failed(StoreError {
            kind: StoreErrorKind::Unavailable,
            message: "db down at 10.0.0.9".into(),
        }),
    );
    let e = &frames_for(&acts, 1)[0];
    assert_eq!(
        (error_code(e), &e["requestId"]),
        ("UNAVAILABLE", &json!("g1"))
    );
    assert!(!e["message"].as_str().unwrap().contains("10.0.0.9"));
    assert!(h
        .ask(
            1,
            json!({"type":"get","resource":"messages","id":"b","requestId":"g4"})
        )
        .is_empty());
    let (op, _) = h.held.pop().unwrap();
    let acts = h.complete(
        op,
        StoreOutcome::Failed(StoreError {
            kind: StoreErrorKind::Internal,
            message: "stack trace".into(),
        }),
    );
    let e = &frames_for(&acts, 1)[0];
    assert_eq!(
        (error_code(e), &e["requestId"]),
        ("INTERNAL_ERROR", &json!("g4"))
    );
    assert!(!e["message"].as_str().unwrap().contains("stack"));
    // A host answering with the wrong kind of outcome is an internal error too.
    assert!(h
        .ask(
            1,
            json!({"type":"delete","resource":"messages","id":"b","requestId":"g5"})
        )
        .is_empty());
    let (op, _) = h.held.pop().unwrap();
    let acts = h.complete(op, StoreOutcome::Record(None));
    assert_eq!(error_code(&frames_for(&acts, 1)[0]), "INTERNAL_ERROR");
    // The insert misses its deadline (hostCallTimeoutMs = 1000): TIMEOUT; a late
    // successful completion sends nothing more to the writer but still fans out.
    let (op2, _) = h.held.remove(0);
    let acts = h.at(T0 + 1000);
    let e = &frames_for(&acts, 1)[0];
    assert_eq!((error_code(e), &e["requestId"]), ("TIMEOUT", &json!("g2")));
    let acts = h.complete(op2, StoreOutcome::Inserted(json!({"id":"late"})));
    assert!(
        frames_for(&acts, 1).is_empty(),
        "the writer got a second answer: {acts:?}"
    );
    assert!(
        acts.iter()
            .all(|a| !frames_for(std::slice::from_ref(a), 2).is_empty()),
        "a late write reaches only subscribers: {acts:?}"
    );
    assert_eq!(h.e.metrics().late_completions, 1);

    // The server-wide pending-call limit answers UNAVAILABLE.
    let mut h = H::new(
        ck,
        json!({"resources":{"messages":{}},"limits":{"maxPendingCalls":1}}),
    );
    h.answer_calls = false;
    h.open(1, "");
    assert!(h
        .ask(1, json!({"type":"get","resource":"messages","id":"a"}))
        .is_empty());
    let e = h.ask1(
        1,
        json!({"type":"get","resource":"messages","id":"b","requestId":"busy"}),
    );
    assert_eq!(
        (error_code(&e), &e["requestId"]),
        ("UNAVAILABLE", &json!("busy"))
    );
}

/// A declared application message type: its frame matches the client schema's
/// `application` branch and the handler's answer is a `reply` (the harness answers every
/// handler call with `{"ok": true}`).
fn application_messages(ck: &Rc<RefCell<Checker>>) {
    let mut h = H::new(
        ck,
        json!({"messages": {"chat-message": {"schema": {"type": "object", "required": ["text"]}}}}),
    );
    h.open(1, "");
    let r = h.ask1(
        1,
        json!({"type": "chat-message", "data": {"text": "hi"}, "requestId": 1}),
    );
    assert_eq!(r["type"], "reply", "{r}");
    assert_eq!(r["requestId"], 1, "{r}");
    assert_eq!(r["data"], json!({"ok": true}), "{r}");
    let bad = h.ask1(
        1,
        json!({"type": "chat-message", "data": {}, "requestId": 2}),
    );
    assert_eq!(error_code(&bad), "VALIDATION_ERROR", "{bad}");
}

fn channels(ck: &Rc<RefCell<Checker>>) {
    let mut h = H::new(
        ck,
        json!({
            "resources": {"messages": {"publish": true}},
            "auth": {"apiKeys": {"key_admin": {"id": "admin1", "role": "admin"}, "key_user": {"id": "u1", "role": "user"}}},
            "channels": {"publishRoles": ["admin"]}
        }),
    );
    h.open(1, "token=key_admin"); // publisher
    h.open(2, ""); // channel subscriber
    h.open(3, ""); // subscriber of the resource `messages` (filtered)
    h.open(4, "token=key_user");

    let s = h.ask1(
        2,
        json!({"type":"subscribe","channel":"messages","requestId":"c"}),
    );
    assert_eq!(
        s,
        json!({"type":"subscribed","subscriptionId":"sub-1","channel":"messages","requestId":"c"})
    );
    h.ask1(
        3,
        json!({"type":"subscribe","resource":"messages","filter":{"channel":"x"}}),
    );
    h.ask1(1, json!({"type":"subscribe","channel":"messages"}));

    // Publish: channel subscribers and (s3db.js compatibility) subscribers of the
    // resource with the same name, whatever their filter; never the sender.
    let acts = h.send(
        1,
        json!({"type":"publish","channel":"messages","message":{"text":"hi"},"requestId":"p"}),
    );
    assert_eq!(
        frames_for(&acts, 1),
        vec![json!({"type":"published","channel":"messages","delivered":2,"requestId":"p"})]
    );
    let m = json!({"type":"message","channel":"messages","from":"c1","data":{"text":"hi"},"timestamp":T0_ISO});
    assert_eq!(frames_for(&acts, 2), vec![m.clone()]);
    assert_eq!(frames_for(&acts, 3), vec![m]);
    // No message: `data` is omitted. A channel nobody holds: delivered 0.
    let acts = h.send(1, json!({"type":"publish","channel":"messages"}));
    assert!(frames_for(&acts, 2)[0].get("data").is_none());
    assert_eq!(
        h.ask1(1, json!({"type":"publish","channel":"empty","message":1}))["delivered"],
        0
    );
    // Publish roles: anonymous → UNAUTHORIZED, other role → FORBIDDEN.
    assert_eq!(
        error_code(&h.ask1(
            2,
            json!({"type":"publish","channel":"messages","message":1})
        )),
        "UNAUTHORIZED"
    );
    assert_eq!(
        error_code(&h.ask1(
            4,
            json!({"type":"publish","channel":"messages","message":1})
        )),
        "FORBIDDEN"
    );
    // Leave the channel.
    let u = h.ask1(
        2,
        json!({"type":"unsubscribe","channel":"messages","requestId":null}),
    );
    assert_eq!(
        u,
        json!({"type":"unsubscribed","subscriptionIds":["sub-1"],"channel":"messages","requestId":null})
    );
    let u = h.ask1(2, json!({"type":"unsubscribe","channel":"messages"}));
    assert_eq!(error_code(&u), "NOT_FOUND");
}

fn streams(ck: &Rc<RefCell<Checker>>) {
    let mut h = H::new(
        ck,
        json!({
            "auth": {"apiKeys": {"key_user": {"id": "u1", "role": "user"}}},
            "channels": {"namespaces": [
                {"pattern": "chat:*", "history": {"size": 2, "ttlMs": 60000},
                 "presence": true, "joinLeave": true}
            ]}
        }),
    );
    h.open(1, "");
    h.open(2, "token=key_user");
    let s = h.ask1(
        1,
        json!({"type":"subscribe","channel":"chat:a","requestId":1}),
    );
    assert_eq!(s["offset"], 0);
    let epoch = s["epoch"].clone();
    // The joiner is announced to the others.
    let acts = h.send(2, json!({"type":"subscribe","channel":"chat:a"}));
    assert_eq!(frames_for(&acts, 1)[0]["type"], "presence:join");
    for n in 1..=3 {
        let acts = h.send(
            2,
            json!({"type":"publish","channel":"chat:a","message":{"n":n}}),
        );
        assert_eq!(frames_for(&acts, 1)[0]["offset"], n);
    }
    let r = h.ask1(
        1,
        json!({"type":"subscribe","channel":"chat:a","since":{"offset":2,"epoch":epoch},"requestId":2}),
    );
    assert_eq!(r["recovered"], true);
    let r = h.ask1(
        1,
        json!({"type":"subscribe","channel":"chat:a","since":{"offset":0,"epoch":epoch}}),
    );
    assert_eq!(r["recovered"], false);
    let r = h.ask1(
        1,
        json!({"type":"subscribe","channel":"plain","since":{"offset":0,"epoch":"x"}}),
    );
    assert_eq!(r["recovered"], false);
    let r = h.ask1(
        1,
        json!({"type":"history","channel":"chat:a","limit":5,"reverse":true,"requestId":3}),
    );
    assert_eq!(r["publications"].as_array().unwrap().len(), 2);
    let e = h.ask1(
        1,
        json!({"type":"history","channel":"chat:a","since":{"offset":0,"epoch":epoch}}),
    );
    assert_eq!(error_code(&e), "UNRECOVERABLE_POSITION");
    let p = h.ask1(
        1,
        json!({"type":"presence","channel":"chat:a","requestId":4}),
    );
    assert_eq!(p["clients"].as_array().unwrap().len(), 2);
    let p = h.ask1(1, json!({"type":"presence:stats","channel":"chat:a"}));
    assert_eq!(p["users"], 1);
    let acts = h.closed(2);
    assert_eq!(frames_for(&acts, 1)[0]["type"], "presence:leave");
}

fn rooms_and_direct(ck: &Rc<RefCell<Checker>>) {
    let mut h = H::new(ck, main_config());
    h.open(1, "token=key_user");
    h.open(2, "");
    h.open(3, "");

    let j = h.ask1(1, json!({"type":"join","room":"lobby","requestId":1}));
    assert_eq!(
        j,
        json!({"type":"joined","room":"lobby","members":1,"requestId":1})
    );
    // `channel` is an alias of `room`; the other members get room:joined.
    let acts = h.send(2, json!({"type":"join","channel":"lobby"}));
    assert_eq!(
        frames_for(&acts, 2),
        vec![json!({"type":"joined","room":"lobby","members":2})]
    );
    assert_eq!(
        frames_for(&acts, 1),
        vec![json!({"type":"room:joined","room":"lobby","member":{"clientId":"c2","user":null}})]
    );
    // Joining again is idempotent (no presence notice).
    let acts = h.send(2, json!({"type":"join","room":"lobby"}));
    assert_eq!(frames_for(&acts, 2)[0]["members"], 2);
    assert!(frames_for(&acts, 1).is_empty());
    // Members (members only).
    let m = h.ask1(
        2,
        json!({"type":"room:members","room":"lobby","requestId":"m"}),
    );
    assert_eq!(
        m,
        json!({"type":"room:members","room":"lobby","members":[
            {"clientId":"c1","user":{"id":"u1","role":"user","scopes":["read"]}},
            {"clientId":"c2","user":null}],"requestId":"m"})
    );
    assert_eq!(
        error_code(&h.ask1(3, json!({"type":"room:members","room":"lobby"}))),
        "FORBIDDEN"
    );
    // room:message to the other members; ack → sent.
    let acts = h.send(1, json!({"type":"room:message","room":"lobby","event":"typing","data":{"t":1},"ack":true,"requestId":"rm"}));
    assert_eq!(
        frames_for(&acts, 1),
        vec![json!({"type":"sent","delivered":1,"requestId":"rm"})]
    );
    assert_eq!(
        frames_for(&acts, 2),
        vec![
            json!({"type":"room:message","room":"lobby","from":"c1","event":"typing","data":{"t":1},"timestamp":T0_ISO})
        ]
    );
    // Without ack there is no answer.
    let acts = h.send(
        1,
        json!({"type":"room:message","room":"lobby","data":"x","requestId":"quiet"}),
    );
    assert!(frames_for(&acts, 1).is_empty());
    assert_eq!(frames_for(&acts, 2).len(), 1);
    let e = h.ask1(
        3,
        json!({"type":"room:message","room":"lobby","data":1,"requestId":"nm"}),
    );
    assert_eq!(
        (error_code(&e), &e["requestId"]),
        ("FORBIDDEN", &json!("nm"))
    );
    // ROOM_FULL, LIMIT_EXCEEDED (rooms per connection: default 32).
    h.ask1(3, json!({"type":"join","room":"tiny"}));
    let e = h.ask1(2, json!({"type":"join","room":"tiny","requestId":"t"}));
    assert_eq!(error_code(&e), "ROOM_FULL");
    // Leave: the others get room:left; leaving again is NOT_FOUND.
    let acts = h.send(2, json!({"type":"leave","room":"lobby","requestId":"bye"}));
    assert_eq!(
        frames_for(&acts, 2),
        vec![json!({"type":"left","room":"lobby","requestId":"bye"})]
    );
    assert_eq!(
        frames_for(&acts, 1),
        vec![json!({"type":"room:left","room":"lobby","clientId":"c2"})]
    );
    assert_eq!(
        error_code(&h.ask1(2, json!({"type":"leave","room":"lobby"}))),
        "NOT_FOUND"
    );
    // Disconnecting also announces room:left.
    h.ask1(2, json!({"type":"join","room":"lobby"}));
    let acts = h.closed(2);
    assert_eq!(
        frames_for(&acts, 1),
        vec![json!({"type":"room:left","room":"lobby","clientId":"c2"})]
    );

    // Direct messages.
    let acts = h.send(
        1,
        json!({"type":"direct","to":"c3","data":{"hello":true},"ack":true,"requestId":"dm"}),
    );
    assert_eq!(
        frames_for(&acts, 1),
        vec![json!({"type":"sent","delivered":1,"requestId":"dm"})]
    );
    assert_eq!(
        frames_for(&acts, 3),
        vec![json!({"type":"direct","from":"c1","data":{"hello":true},"timestamp":T0_ISO})]
    );
    let e = h.ask1(
        1,
        json!({"type":"direct","to":"c2","data":1,"requestId":"gone"}),
    );
    assert_eq!(
        (error_code(&e), &e["requestId"]),
        ("NOT_FOUND", &json!("gone"))
    );

    // Rooms per connection.
    let mut h = H::new(
        ck,
        json!({"limits": {"maxRoomsPerConnection": 1}, "rooms": {"maxRooms": 2}}),
    );
    h.open(1, "");
    h.open(2, "");
    h.ask1(1, json!({"type":"join","room":"a"}));
    assert_eq!(
        error_code(&h.ask1(1, json!({"type":"join","room":"b"}))),
        "LIMIT_EXCEEDED"
    );
    h.ask1(2, json!({"type":"join","room":"b"}));
    h.open(3, "");
    let e = h.ask1(3, json!({"type":"join","room":"c","requestId":"max"}));
    assert_eq!(
        (error_code(&e), &e["requestId"]),
        ("LIMIT_EXCEEDED", &json!("max"))
    );
    h.ask1(2, json!({"type":"leave","room":"b"}));
    assert_eq!(
        h.ask1(3, json!({"type":"join","room":"c"}))["type"],
        "joined"
    );
}

fn rate_limit(ck: &Rc<RefCell<Checker>>) {
    let mut h = H::new(
        ck,
        json!({"rateLimit": {"enabled": true, "windowMs": 1000, "maxRequests": 2, "closeAfter": 3}}),
    );
    h.open(1, "");
    h.ask1(1, json!({"type":"ping"}));
    h.ask1(1, json!({"type":"ping"}));
    // Refused frames echo the requestId when it can be read, even from invalid messages.
    let e = h.ask1(1, json!({"type":"ping","requestId":0}));
    assert_eq!(
        (error_code(&e), &e["requestId"]),
        ("RATE_LIMIT_EXCEEDED", &json!(0))
    );
    let got = h.raw(1, r#"{"type":"nope","requestId":"x"}"#);
    assert_eq!(
        (error_code(&got[0]), &got[0]["requestId"]),
        ("RATE_LIMIT_EXCEEDED", &json!("x"))
    );
    // The third consecutive refusal closes with 1008.
    let acts = h.frame(1, "{not json");
    let got = frames_for(&acts, 1);
    assert_eq!(error_code(&got[0]), "RATE_LIMIT_EXCEEDED");
    assert!(got[0].get("requestId").is_none());
    assert_eq!(
        close_of(&acts, 1),
        Some((1008, "rate limit exceeded".into()))
    );
    // A closing connection gets nothing more.
    assert!(h.frame(1, r#"{"type":"ping"}"#).is_empty());
    h.closed(1);
    // The bucket refills continuously: one token per 500 ms here.
    h.open(2, "");
    h.ask1(2, json!({"type":"ping"}));
    h.ask1(2, json!({"type":"ping"}));
    assert_eq!(
        error_code(&h.ask1(2, json!({"type":"ping"}))),
        "RATE_LIMIT_EXCEEDED"
    );
    h.now += 500;
    assert_eq!(h.ask1(2, json!({"type":"ping"}))["type"], "pong");
}

fn payload_limit(ck: &Rc<RefCell<Checker>>) {
    let mut h = H::new(ck, json!({"maxPayloadSize": 64}));
    h.open(1, "");
    let exact = format!(r#"{{"type":"ping","requestId":"{}"}}"#, "x".repeat(64 - 30));
    assert_eq!(exact.len(), 64);
    assert_eq!(
        h.raw(1, &exact)[0]["type"],
        "pong",
        "exactly maxPayloadSize is accepted"
    );
    let big = format!(r#"{{"type":"ping","requestId":"{}"}}"#, "x".repeat(64));
    let acts = h.frame(1, &big);
    let got = frames_for(&acts, 1);
    assert_eq!(error_code(&got[0]), "PAYLOAD_TOO_LARGE");
    assert!(got[0].get("requestId").is_none());
    assert_eq!(close_of(&acts, 1), Some((1009, "message too big".into())));
}

fn heartbeat(ck: &Rc<RefCell<Checker>>) {
    let mut h = H::new(
        ck,
        json!({"heartbeatInterval": 1000, "heartbeatTimeout": 500}),
    );
    h.open(1, "");
    assert_eq!(
        h.e.poll_timeout(),
        Some(Millis(T0 + 1000)),
        "first ping counted from connect"
    );
    let acts = h.at(T0 + 1000);
    assert_eq!(acts, vec![Action::Ping { conn: ConnId(1) }]);
    // A pong in time: the next ping is one interval after the previous ping.
    h.now = T0 + 1200;
    h.input(Input::Pong { conn: ConnId(1) });
    assert_eq!(h.e.poll_timeout(), Some(Millis(T0 + 2000)));
    h.at(T0 + 2000);
    // Any frame counts as alive too.
    h.now = T0 + 2100;
    h.ask1(1, json!({"type":"ping"}));
    assert_eq!(h.e.poll_timeout(), Some(Millis(T0 + 3000)));
    h.at(T0 + 3000);
    // No answer within heartbeatTimeout: close 4000 (a close frame, not a TCP drop).
    let acts = h.at(T0 + 3500);
    assert_eq!(close_of(&acts, 1), Some((4000, "heartbeat timeout".into())));
}

fn token_expiry_and_refresh(ck: &Rc<RefCell<Checker>>) {
    let secret = "schema-test-secret";
    let t0_s = (T0 / 1000) as i64;
    let token = |sub: &str, exp: i64| {
        jwt(
            jsonwebtoken::Algorithm::HS256,
            None,
            json!({"sub": sub, "exp": exp}),
            secret,
        )
    };
    let mut h = H::new(
        ck,
        json!({"heartbeatInterval": 0, "auth": {"jwt": {
            "secret": secret, "leewaySeconds": 0, "refreshNoticeSeconds": 5
        }}}),
    );
    let welcome = open_with_token(&mut h, 1, &token("u1", t0_s + 10));
    assert!(matches!(welcome[0], Action::Accept { .. }));
    let notice = frames_for(&h.at(T0 + 5_000), 1);
    assert_eq!(notice[0]["type"], "token:expiring");
    let refused = h.ask1(
        1,
        json!({"type": "refresh", "token": token("u2", t0_s + 60), "requestId": 1}),
    );
    assert_eq!(refused["reason"], "subject_mismatch");
    let expired = h.ask1(
        1,
        json!({"type": "refresh", "token": token("u1", t0_s - 60), "requestId": 2}),
    );
    assert_eq!(expired["reason"], "token_expired");
    let ok = h.ask1(
        1,
        json!({"type": "refresh", "token": token("u1", t0_s + 20), "requestId": 3}),
    );
    assert_eq!(ok["type"], "refreshed");
    let acts = h.at(T0 + 21_000);
    assert_eq!(close_of(&acts, 1), Some((4401, "token expired".into())));

    // Keys from a URL that are not there yet: 503 keys_unavailable.
    let issuer = "https://idp.example.com";
    let mut h = H::new(
        ck,
        json!({"auth": {"jwt": {"jwks": [{"issuer": issuer, "url": "https://idp.example.com/jwks"}]}}}),
    );
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = Some("k1".into());
    let rs = jsonwebtoken::encode(
        &jsonwebtoken::Header {
            alg: jsonwebtoken::Algorithm::RS256,
            ..header
        },
        &json!({"sub": "u1", "iss": issuer, "exp": t0_s + 60}),
        &jsonwebtoken::EncodingKey::from_rsa_pem(include_bytes!(
            "../src/auth/testkeys/rsa_private.pem"
        ))
        .unwrap(),
    )
    .unwrap();
    // The unknown key starts a fetch (a `call`) and the upgrade is told to retry.
    let acts = h.open_req(1, req("/", &format!("token={rs}"), &[], "p", "k1"));
    let rejected = acts.iter().find_map(|a| match a {
        Action::Reject { status, body, .. } => Some((*status, body.clone())),
        _ => None,
    });
    let (status, body) = rejected.expect("a rejection");
    assert_eq!(status, 503);
    assert!(body.contains("\"reason\":\"keys_unavailable\""), "{body}");
}

fn slow_consumers(ck: &Rc<RefCell<Checker>>) {
    let mut h = H::new(ck, json!({"limits": {"maxBufferedBytes": 1000}}));
    h.open(1, "");
    h.input(Input::Backpressure {
        conn: ConnId(1),
        buffered: 1000,
    });
    let acts = h.input(Input::Backpressure {
        conn: ConnId(1),
        buffered: 1001,
    });
    assert_eq!(close_of(&acts, 1), Some((1013, "slow consumer".into())));

    let mut h = H::new(
        ck,
        json!({"limits": {"maxBufferedBytes": 1000, "slowConsumer": "drop"}}),
    );
    h.open(1, "");
    h.open(2, "");
    h.open(3, "");
    h.ask1(2, json!({"type":"subscribe","channel":"news"}));
    h.ask1(3, json!({"type":"subscribe","channel":"news"}));
    h.input(Input::Backpressure {
        conn: ConnId(3),
        buffered: 5000,
    });
    let acts = h.send(1, json!({"type":"publish","channel":"news","message":"m"}));
    assert_eq!(
        frames_for(&acts, 1)[0]["delivered"],
        1,
        "the slow consumer's push is dropped"
    );
    assert!(frames_for(&acts, 3).is_empty());
    // Replies are still sent to it.
    assert_eq!(h.ask1(3, json!({"type":"ping"}))["type"], "pong");
}

fn server_api(ck: &Rc<RefCell<Checker>>) {
    let mut h = H::new(ck, main_config());
    h.open(1, "token=key_admin");
    h.open(2, "token=key_user");
    h.open(3, "");
    h.ask1(2, json!({"type":"subscribe","resource":"messages"}));
    h.ask1(3, json!({"type":"subscribe","channel":"alerts"}));
    h.ask1(1, json!({"type":"join","room":"lobby"}));

    // Verbatim application payloads (not protocol messages; not schema-checked).
    let payload = json!({"type":"announcement","text":"hello"});
    ck.borrow_mut().raw_payloads.insert(payload.to_string());
    let (r, acts) = h.cmd(Command::Broadcast {
        message: payload.clone(),
        filter: None,
        tenant: None,
    });
    assert_eq!(r.unwrap(), json!({"delivered":3}));
    assert_eq!(frames_for(&acts, 3), vec![payload.clone()]);
    let (r, _) = h.cmd(Command::Broadcast {
        message: payload.clone(),
        filter: Some(json!({"role":"admin"})),
        tenant: None,
    });
    assert_eq!(r.unwrap(), json!({"delivered":1}));
    let (r, _) = h.cmd(Command::SendTo {
        client_id: "c2".into(),
        message: payload.clone(),
    });
    assert_eq!(r.unwrap(), json!({"delivered":1}));
    let (r, _) = h.cmd(Command::SendTo {
        client_id: "nobody".into(),
        message: payload.clone(),
    });
    assert_eq!(r.unwrap_err().code, ErrorCode::NotFound);
    let (r, _) = h.cmd(Command::BroadcastToResource {
        resource: "messages".into(),
        message: payload.clone(),
        tenant: None,
    });
    assert_eq!(r.unwrap(), json!({"delivered":1}));
    let (r, _) = h.cmd(Command::BroadcastToResource {
        resource: "internal".into(),
        message: payload,
        tenant: None,
    });
    assert_eq!(r.unwrap_err().code, ErrorCode::ResourceNotFound);
    // Server-side publish: from "server".
    let (r, acts) = h.cmd(Command::Publish {
        channel: "alerts".into(),
        data: Some(json!({"level":"high"})),
        tenant: None,
    });
    assert_eq!(r.unwrap(), json!({"delivered":1}));
    assert_eq!(
        frames_for(&acts, 3),
        vec![
            json!({"type":"message","channel":"alerts","from":"server","data":{"level":"high"},"timestamp":T0_ISO})
        ]
    );
    // Queries.
    let (r, _) = h.cmd(Command::ServerInfo);
    let info = r.unwrap();
    assert_eq!(info["protocolVersion"], 1);
    assert_eq!(info["clients"], 3);
    assert_eq!(info["resources"], json!(["messages", "notes", "users"]));
    let (r, _) = h.cmd(Command::Clients);
    let clients = r.unwrap();
    assert_eq!(
        clients[1]["subscriptions"],
        json!([{"subscriptionId":"sub-1","resource":"messages","filter":null,"events":["insert","update","delete"]}])
    );
    assert_eq!(clients[0]["rooms"], json!(["lobby"]));
    let (r, _) = h.cmd(Command::Rooms);
    assert_eq!(
        r.unwrap(),
        json!([{"room":"lobby","members":1,"maxConnections":1000}])
    );
    let (r, _) = h.cmd(Command::Metrics);
    assert!(r.unwrap()["connections"].as_u64().unwrap() >= 3);
    // setJwks without `auth.jwt`.
    let (r, _) = h.cmd(Command::SetJwks {
        issuer: "https://a.example".into(),
        jwks: json!({"keys":[]}),
    });
    assert_eq!(r.unwrap_err().code, ErrorCode::InvalidMessage);
    // Disconnect: close 4001.
    let (r, acts) = h.cmd(Command::Disconnect {
        client_id: "c2".into(),
        reason: None,
    });
    assert_eq!(r.unwrap(), json!({"disconnected":"c2"}));
    assert_eq!(
        close_of(&acts, 2),
        Some((4001, "disconnected by server".into()))
    );
    let (r, _) = h.cmd(Command::Disconnect {
        client_id: "c2".into(),
        reason: None,
    });
    assert_eq!(
        r.unwrap_err().code,
        ErrorCode::NotFound,
        "a closing connection is gone"
    );
    h.closed(2);
    // Shutdown: every connection closes with 1001 and new upgrades get 503.
    let (r, acts) = h.cmd(Command::Shutdown { reason: None });
    assert_eq!(r.unwrap(), json!({"closing":2}));
    assert_eq!(
        close_of(&acts, 1),
        Some((1001, "server shutting down".into()))
    );
    assert_eq!(
        close_of(&acts, 3),
        Some((1001, "server shutting down".into()))
    );
    let (s, b) = h.reject(9, req("/", "", &[], "p", "late"));
    assert_eq!(
        (s, b["code"].as_str(), b["reason"].as_str()),
        (503, Some("UNAVAILABLE"), Some("draining"))
    );
}
