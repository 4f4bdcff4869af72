//! Behaviour tests of token expiry, `refresh` and remote key sources, through the
//! engine's inputs and actions.

use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

use super::*;
use crate::error::close;
use crate::hostcall::{FetchRequest, FetchResponse};

use crate::testing::{request, Harness, T0};
const T0_S: i64 = 1_700_000_000;
const SECRET: &str = "identity-test-secret-0123456789abcdef0123456789abcdef";
const IDP: &str = "http://127.0.0.1:9/realms/a";
const RSA_PRIVATE: &str = include_str!("../auth/testkeys/rsa_private.pem");
const RSA2_PRIVATE: &str = include_str!("../auth/testkeys/rsa2_private.pem");

/// The shared harness ([`crate::testing`]): `open` takes a token, `send` returns the
/// frames of every connection.
struct H(Harness);

crate::deref_harness!(H);

impl H {
    fn new(cfg: Value) -> H {
        H(Harness::new(cfg))
    }

    fn open(&mut self, conn: u64, token: &str) -> Vec<Action> {
        let query = format!("token={token}");
        self.open_req(
            conn,
            request("/", &query, &[], "10.0.0.1", &format!("c{conn}")),
        )
    }

    fn send(&mut self, conn: u64, msg: Value) -> Vec<Value> {
        let acts = self.0.send(conn, msg);
        frames(&acts)
    }

    fn at(&mut self, t: u64) -> Vec<Action> {
        self.advance_to(t)
    }
}

fn frames(acts: &[Action]) -> Vec<Value> {
    acts.iter()
        .filter_map(|a| match a {
            Action::Send { frame, .. } => serde_json::from_str(frame.as_text()?).ok(),
            _ => None,
        })
        .collect()
}

fn closes(acts: &[Action]) -> Vec<u16> {
    acts.iter()
        .filter_map(|a| match a {
            Action::Close { code, .. } => Some(*code),
            _ => None,
        })
        .collect()
}

fn hs(sub: &str, exp: i64) -> String {
    let claims = json!({"sub": sub, "exp": exp, "role": "user", "scope": "read"});
    encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap()
}

fn secret_cfg(extra: Value) -> Value {
    let mut jwt = json!({"secret": SECRET, "leewaySeconds": 2, "refreshNoticeSeconds": 10});
    for (k, v) in extra.as_object().cloned().unwrap_or_default() {
        jwt[k] = v;
    }
    json!({"heartbeatInterval": 0, "auth": {"jwt": jwt}})
}

// ------------------------------------------------------------------ expiry

#[test]
fn notice_before_exp_then_close_4401_after_exp_plus_leeway() {
    let mut h = H::new(secret_cfg(json!({})));
    let exp = T0_S + 60;
    let acts = h.open(1, &hs("u1", exp));
    assert!(matches!(acts[0], Action::Accept { .. }));
    assert_eq!(frames(&acts).len(), 1, "only the welcome");
    // Notice at exp - 10 s.
    assert_eq!(h.e.poll_timeout(), Some(Millis(T0 + 50_000)));
    let f = frames(&h.at(T0 + 50_000));
    assert_eq!(
        f,
        vec![json!({"type": "token:expiring", "expiresAt": "2023-11-14T22:14:20.000Z"})]
    );
    // Still open at exp + leeway (whole seconds, as at the upgrade).
    assert_eq!(h.e.poll_timeout(), Some(Millis(T0 + 63_000)));
    assert!(closes(&h.at(T0 + 62_999)).is_empty());
    assert_eq!(closes(&h.at(T0 + 63_000)), vec![close::TOKEN_EXPIRED]);
    assert_eq!(h.e.metrics().token_expirations, 1);
    assert_eq!(h.e.poll_timeout(), None);
}

#[test]
fn a_token_inside_the_notice_window_gets_the_notice_right_after_the_welcome() {
    let mut h = H::new(secret_cfg(json!({})));
    let f = frames(&h.open(1, &hs("u1", T0_S + 5)));
    assert_eq!(f[0]["type"], "connected");
    assert_eq!(f[1]["type"], "token:expiring");
    assert_eq!(h.e.poll_timeout(), Some(Millis(T0 + 8_000)));
}

/// `secret_cfg` with a `connect` hook answered by the host (timeout 10 s).
fn hooked_cfg() -> Value {
    let mut c = secret_cfg(json!({}));
    c["hooks"] = json!({"connect": true, "timeoutMs": 10_000});
    c
}

/// The op of the `connect` hook call among `acts`.
fn hook_op(acts: &[Action]) -> OpId {
    acts.iter()
        .find_map(|a| match a {
            Action::Call { op, .. } => Some(*op),
            _ => None,
        })
        .expect("a connect hook call")
}

fn admit(h: &mut H, op: OpId) -> Vec<Action> {
    h.input(Input::Completed {
        op,
        result: HostResult::Handler(Box::default()),
    })
}

#[test]
fn a_slow_connect_hook_never_lets_the_expiry_notice_precede_the_welcome() {
    let mut h = H::new(hooked_cfg());
    // Notice due at T0 + 2 s (exp - 10 s), while the hook is still thinking.
    let acts = h.open(1, &hs("u1", T0_S + 12));
    assert!(frames(&acts).is_empty(), "nothing before the hook answers");
    let op = hook_op(&acts);
    assert!(
        frames(&h.at(T0 + 2_000)).is_empty(),
        "no notice before the welcome"
    );
    h.now = T0 + 3_000;
    let f = frames(&admit(&mut h, op));
    assert_eq!(f.len(), 2, "{f:?}");
    assert_eq!(f[0]["type"], "connected");
    assert_eq!(
        f[1],
        json!({"type": "token:expiring", "expiresAt": "2023-11-14T22:13:32.000Z"})
    );
    // The close stays scheduled at exp + leeway.
    assert_eq!(h.e.poll_timeout(), Some(Millis(T0 + 15_000)));
    assert_eq!(closes(&h.at(T0 + 15_000)), vec![close::TOKEN_EXPIRED]);
}

#[test]
fn a_token_inside_the_notice_window_waits_for_the_connect_hook_too() {
    let mut h = H::new(hooked_cfg());
    let acts = h.open(1, &hs("u1", T0_S + 5));
    assert!(frames(&acts).is_empty());
    let f = frames(&admit(&mut h, hook_op(&acts)));
    assert_eq!(f[0]["type"], "connected");
    assert_eq!(f[1]["type"], "token:expiring");
}

#[test]
fn a_token_that_expires_while_the_connect_hook_runs_is_closed_after_the_welcome() {
    let mut h = H::new(hooked_cfg());
    // exp + leeway (2 s) passes at T0 + 4 s; the hook answers at T0 + 6 s.
    let acts = h.open(1, &hs("u1", T0_S + 1));
    let op = hook_op(&acts);
    assert!(closes(&h.at(T0 + 4_000)).is_empty(), "not admitted yet");
    h.now = T0 + 6_000;
    let acts = admit(&mut h, op);
    assert_eq!(frames(&acts)[0]["type"], "connected");
    assert_eq!(closes(&acts), vec![close::TOKEN_EXPIRED]);
}

#[test]
fn expire_connections_off_keeps_connections_open() {
    let mut h = H::new(secret_cfg(json!({"expireConnections": false})));
    h.open(1, &hs("u1", T0_S + 5));
    assert_eq!(h.e.poll_timeout(), None);
    assert!(closes(&h.at(T0 + 3_600_000)).is_empty());
}

#[test]
fn refresh_with_the_same_subject_extends_the_connection() {
    let mut h = H::new(secret_cfg(json!({})));
    h.open(1, &hs("u1", T0_S + 60));
    h.now = T0 + 55_000;
    let f = h.send(
        1,
        json!({"type": "refresh", "token": hs("u1", T0_S + 3600), "requestId": 4}),
    );
    assert_eq!(
        f,
        vec![json!({
            "type": "refreshed",
            "user": {"id": "u1", "role": "user", "scopes": ["read"]},
            "expiresAt": "2023-11-14T23:13:20.000Z",
            "requestId": 4
        })]
    );
    assert_eq!(h.e.metrics().token_refreshes, 1);
    assert!(closes(&h.at(T0 + 63_000)).is_empty());
    assert_eq!(h.e.poll_timeout(), Some(Millis(T0 + 3_590_000)));
}

#[test]
fn refresh_for_another_subject_is_refused_and_the_connection_still_expires() {
    let mut h = H::new(secret_cfg(json!({})));
    h.open(1, &hs("u1", T0_S + 60));
    let f = h.send(
        1,
        json!({"type": "refresh", "token": hs("u2", T0_S + 3600), "requestId": "r"}),
    );
    assert_eq!(f[0]["code"], "FORBIDDEN");
    assert_eq!(f[0]["reason"], "subject_mismatch");
    assert_eq!(f[0]["requestId"], "r");
    assert_eq!(h.e.metrics().token_refresh_failures, 1);
    h.at(T0 + 50_000);
    assert_eq!(closes(&h.at(T0 + 63_000)), vec![4401]);
}

#[test]
fn refresh_with_a_bad_token_says_why() {
    let mut h = H::new(secret_cfg(json!({})));
    h.open(1, &hs("u1", T0_S + 60));
    let f = h.send(1, json!({"type": "refresh", "token": hs("u1", T0_S - 100)}));
    assert_eq!(f[0]["code"], "UNAUTHORIZED");
    assert_eq!(f[0]["reason"], "token_expired");
    assert!(f[0].get("requestId").is_none());
    let f = h.send(1, json!({"type": "refresh"}));
    assert_eq!(f[0]["code"], "INVALID_MESSAGE");
}

#[test]
fn anonymous_connections_cannot_sign_in_with_refresh() {
    let mut h = H::new(secret_cfg(json!({})));
    h.input(Input::Open {
        conn: ConnId(1),
        request: UpgradeRequest {
            path: "/".into(),
            client_id: "c1".into(),
            ..Default::default()
        },
    });
    let f = h.send(1, json!({"type": "refresh", "token": hs("u1", T0_S + 60)}));
    assert_eq!(f[0]["reason"], "subject_mismatch");
}

#[test]
fn refresh_must_keep_the_routes_scopes() {
    let mut cfg = secret_cfg(json!({}));
    cfg["routes"] = json!([{"path": "/", "scopes": ["read"]}]);
    let mut h = H::new(cfg);
    h.open(1, &hs("u1", T0_S + 60));
    let claims = json!({"sub": "u1", "exp": T0_S + 3600, "scope": "write"});
    let token = encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap();
    let f = h.send(1, json!({"type": "refresh", "token": token}));
    assert_eq!(f[0]["code"], "FORBIDDEN");
    assert_eq!(f[0]["reason"], "missing_scope");
}

#[test]
fn a_restored_snapshot_keeps_the_expiry() {
    let mut h = H::new(secret_cfg(json!({})));
    h.open(1, &hs("u1", T0_S + 60));
    let snap = h.e.snapshot(ConnId(1)).unwrap();
    let text = serde_json::to_string(&snap).unwrap();
    assert!(text.contains("\"expiry\":{"), "{text}");
    // A fresh engine (after an eviction) restores it from the JSON.
    let mut h2 = H::new(secret_cfg(json!({})));
    h2.now = T0 + 70_000;
    let restored: ConnectionSnapshot = serde_json::from_str(&text).unwrap();
    h2.input(Input::Restore {
        conn: ConnId(5),
        snapshot: Box::new(restored),
    });
    assert_eq!(h2.e.poll_timeout(), Some(Millis(T0 + 50_000)));
    // Overdue while hibernating: closed at the next timeout.
    assert_eq!(closes(&h2.at(T0 + 70_000)), vec![4401]);
}

// ------------------------------------------------------------------ key sources

fn rsa_jwk(private: &str, kid: &str) -> Value {
    let key = EncodingKey::from_rsa_pem(private.as_bytes()).unwrap();
    let mut jwk =
        serde_json::to_value(Jwk::from_encoding_key(&key, Algorithm::RS256).unwrap()).unwrap();
    jwk["kid"] = json!(kid);
    jwk["use"] = json!("sig");
    jwk
}

fn rs(private: &str, kid: &str, iss: &str, sub: &str) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.into());
    let claims = json!({"sub": sub, "iss": iss, "exp": T0_S + 86_400});
    encode(
        &header,
        &claims,
        &EncodingKey::from_rsa_pem(private.as_bytes()).unwrap(),
    )
    .unwrap()
}

/// The status and body of the rejection among `acts`, if any.
fn rejected(acts: &[Action]) -> Option<(u16, String)> {
    acts.iter().find_map(|a| match a {
        Action::Reject { status, body, .. } => Some((*status, body.clone())),
        _ => None,
    })
}

fn fetch_call(acts: &[Action]) -> Option<(OpId, String)> {
    acts.iter().find_map(|a| match a {
        Action::Call {
            op,
            conn: None,
            request: HostRequest::Fetch(FetchRequest { url }),
            ..
        } => Some((*op, url.clone())),
        _ => None,
    })
}

fn ok(body: &Value, cache: Option<&str>) -> HostResult {
    HostResult::Fetch(FetchResponse {
        status: 200,
        body: body.to_string(),
        cache_control: cache.map(str::to_string),
        error: None,
    })
}

fn oidc_cfg() -> Value {
    json!({"heartbeatInterval": 0, "auth": {
        "oidc": [{"issuer": IDP, "audience": "app"}],
        "jwt": {"keyRefresh": {"unknownKidCooldownSeconds": 10, "retrySeconds": 2}}
    }})
}

#[test]
fn oidc_discovery_then_jwks_then_tokens_verify() {
    let mut h = H::new(oidc_cfg());
    // Due at once: the first Timeout fetches the discovery document.
    assert_eq!(h.e.poll_timeout(), Some(Millis(0)));
    let acts = h.at(T0);
    let (op, url) = fetch_call(&acts).expect("discovery fetch");
    assert_eq!(url, format!("{IDP}/.well-known/openid-configuration"));
    assert_eq!(h.e.poll_timeout(), Some(Millis(T0 + 5_000)));
    // Before the keys arrive, a token from the issuer is told to retry (503).
    let acts = h.open(1, &rs(RSA_PRIVATE, "k1", IDP, "u1"));
    assert!(
        matches!(&acts[0], Action::Reject { status: 503, body, .. } if body.contains("keys_unavailable")),
        "{acts:?}"
    );
    let jwks_uri = "http://127.0.0.1:9/realms/a/certs";
    let acts = h.input(Input::Completed {
        op,
        result: ok(&json!({"issuer": IDP, "jwks_uri": jwks_uri}), None),
    });
    let (op, url) = fetch_call(&acts).expect("jwks fetch");
    assert_eq!(url, jwks_uri);
    let jwks = json!({"keys": [rsa_jwk(RSA_PRIVATE, "k1")]});
    h.input(Input::Completed {
        op,
        result: ok(&jwks, Some("public, max-age=600")),
    });
    assert_eq!(h.e.metrics().key_fetches.get(IDP), Some(&1));
    // The next refresh follows the cache header.
    assert_eq!(h.e.poll_timeout(), Some(Millis(T0 + 600_000)));
    // The token needs the issuer's audience.
    let acts = h.open(2, &rs(RSA_PRIVATE, "k1", IDP, "u1"));
    assert!(
        matches!(&acts[0], Action::Reject { status: 401, body, .. } if body.contains("missing_claim")),
        "{acts:?}"
    );
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("k1".into());
    let token = encode(
        &header,
        &json!({"sub": "u1", "iss": IDP, "aud": "app", "exp": T0_S + 3600}),
        &EncodingKey::from_rsa_pem(RSA_PRIVATE.as_bytes()).unwrap(),
    )
    .unwrap();
    let acts = h.open(3, &token);
    assert!(matches!(acts[0], Action::Accept { .. }), "{acts:?}");
}

fn loaded_jwks_source() -> (H, String) {
    let url = "http://127.0.0.1:9/jwks".to_string();
    let mut h = H::new(json!({"heartbeatInterval": 0, "auth": {"jwt": {
        "jwks": [{"issuer": IDP, "url": url}],
        "keyRefresh": {"unknownKidCooldownSeconds": 10, "retrySeconds": 2, "maxRetrySeconds": 8}
    }}}));
    let (op, got) = fetch_call(&h.at(T0)).unwrap();
    assert_eq!(got, url);
    h.input(Input::Completed {
        op,
        result: ok(&json!({"keys": [rsa_jwk(RSA_PRIVATE, "k1")]}), None),
    });
    (h, url)
}

#[test]
fn an_unknown_kid_refetches_at_most_once_per_cooldown() {
    let (mut h, _) = loaded_jwks_source();
    // Rotation: k2 is new. The first token with it starts a fetch and is told to retry.
    let token = rs(RSA2_PRIVATE, "k2", IDP, "u1");
    h.now = T0 + 1_000;
    let acts = h.open(1, &token);
    assert_eq!(rejected(&acts).map(|r| r.0), Some(503), "{acts:?}");
    let (op, _) = fetch_call(&acts).expect("unknown kid fetch");
    // While it is in flight, more unknown kids start nothing.
    let acts = h.open(2, &rs(RSA2_PRIVATE, "k9", IDP, "u1"));
    assert!(fetch_call(&acts).is_none());
    let rotated = json!({"keys": [rsa_jwk(RSA_PRIVATE, "k1"), rsa_jwk(RSA2_PRIVATE, "k2")]});
    h.input(Input::Completed {
        op,
        result: ok(&rotated, None),
    });
    assert!(matches!(h.open(3, &token)[0], Action::Accept { .. }));
    // A made-up kid within the cooldown: a plain 401 unknown_key and no fetch.
    let acts = h.open(4, &rs(RSA2_PRIVATE, "bogus", IDP, "u1"));
    assert!(
        matches!(&acts[0], Action::Reject { status: 401, body, .. } if body.contains("unknown_key"))
    );
    assert!(fetch_call(&acts).is_none());
    assert_eq!(h.e.metrics().unknown_kid_fetches, 1);
    // After the cooldown, one more fetch.
    h.now = T0 + 11_000;
    assert!(fetch_call(&h.open(5, &rs(RSA2_PRIVATE, "bogus", IDP, "u1"))).is_some());
}

#[test]
fn an_outage_keeps_the_last_good_keys_and_backs_off() {
    let (mut h, _) = loaded_jwks_source();
    let token = rs(RSA_PRIVATE, "k1", IDP, "u1");
    // The scheduled refresh (default lifetime 1 h) fails three times in a row.
    let mut t = T0 + 3_600_000;
    for (i, delay) in [2_000u64, 4_000, 8_000, 8_000].into_iter().enumerate() {
        assert_eq!(h.e.poll_timeout(), Some(Millis(t)), "attempt {i}");
        let (op, _) = fetch_call(&h.at(t)).unwrap();
        let failure = if i % 2 == 0 {
            FetchResponse {
                status: 0,
                error: Some("connection refused".into()),
                ..Default::default()
            }
        } else {
            FetchResponse {
                status: 503,
                body: "down".into(),
                ..Default::default()
            }
        };
        h.input(Input::Completed {
            op,
            result: HostResult::Fetch(failure),
        });
        t += delay;
        assert!(matches!(
            h.open(10 + i as u64, &token)[0],
            Action::Accept { .. }
        ));
    }
    assert_eq!(h.e.metrics().key_fetch_failures.get(IDP), Some(&4));
    // A document that is not a JWKS counts as a failure too; a late answer is dropped.
    let (op, _) = fetch_call(&h.at(t)).unwrap();
    h.input(Input::Completed {
        op,
        result: ok(&json!({"nope": 1}), None),
    });
    assert_eq!(h.e.metrics().key_fetch_failures.get(IDP), Some(&5));
    h.input(Input::Completed {
        op,
        result: ok(&json!({"keys": []}), None),
    });
    assert_eq!(h.e.metrics().late_completions, 1);
    // A fetch the host never answers times out at the call deadline.
    t += 8_000;
    let (_, _) = fetch_call(&h.at(t)).unwrap();
    h.at(t + 5_000);
    assert_eq!(h.e.metrics().key_fetch_failures.get(IDP), Some(&6));
    assert!(matches!(h.open(30, &token)[0], Action::Accept { .. }));
}

#[test]
fn a_kid_that_collides_across_issuers_never_verifies_the_other_issuer() {
    let other = "http://127.0.0.1:9/realms/b";
    let mut h = H::new(json!({"heartbeatInterval": 0, "auth": {"jwt": {"jwks": [
        {"issuer": IDP, "url": "http://127.0.0.1:9/a/jwks"},
        {"issuer": other, "url": "http://127.0.0.1:9/b/jwks"}
    ]}}}));
    let acts = h.at(T0);
    let calls: Vec<(OpId, String)> = acts
        .iter()
        .filter_map(|a| fetch_call(std::slice::from_ref(a)))
        .collect();
    assert_eq!(calls.len(), 2);
    for (op, url) in calls {
        let key = if url.contains("/a/") {
            RSA_PRIVATE
        } else {
            RSA2_PRIVATE
        };
        h.input(Input::Completed {
            op,
            result: ok(&json!({"keys": [rsa_jwk(key, "shared")]}), None),
        });
    }
    // Signed with issuer A's key but claiming issuer B: B's `shared` key is used.
    let acts = h.open(1, &rs(RSA_PRIVATE, "shared", other, "u1"));
    assert!(
        matches!(&acts[0], Action::Reject { status: 401, body, .. } if body.contains("bad_signature")),
        "{acts:?}"
    );
    assert!(matches!(
        h.open(2, &rs(RSA_PRIVATE, "shared", IDP, "u1"))[0],
        Action::Accept { .. }
    ));
    assert!(matches!(
        h.open(3, &rs(RSA2_PRIVATE, "shared", other, "u1"))[0],
        Action::Accept { .. }
    ));
}

#[test]
fn plain_http_urls_other_than_loopback_are_refused_at_config_time() {
    let err = Config::from_value(json!({"auth": {"jwt": {"jwks": [
        {"issuer": "https://idp.example.com", "url": "http://idp.example.com/jwks"}
    ]}}}))
    .unwrap_err();
    assert_eq!(err.issues[0].path, "auth.jwt.jwks[0].url");
    assert!(err.issues[0].problem.contains("127.0.0.1"), "{err}");
    let err =
        Config::from_value(json!({"auth": {"oidc": [{"issuer": "http://10.1.2.3"}]}})).unwrap_err();
    assert_eq!(err.issues[0].path, "auth.oidc[0].issuer");
    let err = Config::from_value(json!({"auth": {"jwt": {"jwks": [
        {"issuer": IDP, "url": "http://127.0.0.1/x", "jwks": {"keys": []}}
    ]}}}))
    .unwrap_err();
    assert_eq!(err.issues[0].path, "auth.jwt.jwks[0]");
}

#[test]
fn a_discovery_document_for_another_issuer_is_refused() {
    let mut h = H::new(oidc_cfg());
    let (op, _) = fetch_call(&h.at(T0)).unwrap();
    h.input(Input::Completed {
        op,
        result: ok(
            &json!({"issuer": "https://evil.example", "jwks_uri": "https://evil.example/k"}),
            None,
        ),
    });
    assert_eq!(h.e.metrics().key_fetch_failures.get(IDP), Some(&1));
    assert_eq!(h.e.poll_timeout(), Some(Millis(T0 + 2_000)));
}
