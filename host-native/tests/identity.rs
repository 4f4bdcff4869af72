//! Identity providers over real HTTP: a fake OpenID provider on 127.0.0.1 (discovery and
//! JWKS for two issuers, key rotation, going down, a `kid` shared by both issuers)
//! against an in-process server, plus token expiry and `refresh` over a real socket.

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::*;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Error as WsError;

const RSA1: &str = include_str!("../../engine/src/auth/testkeys/rsa_private.pem");
const RSA2: &str = include_str!("../../engine/src/auth/testkeys/rsa2_private.pem");

/// What the fake provider serves.
#[derive(Default)]
struct IdpState {
    /// Issuer path (`a`, `b`) → JWKS keys.
    keys: BTreeMap<String, Vec<Value>>,
    /// Answer 503 to everything.
    down: bool,
    /// Requests per path.
    hits: BTreeMap<String, usize>,
    cache_control: Option<String>,
}

/// A fake OpenID provider: `/<issuer>/.well-known/openid-configuration` and
/// `/<issuer>/jwks` for each issuer path. Stops when dropped (the task is aborted).
struct Idp {
    addr: SocketAddr,
    state: Arc<Mutex<IdpState>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Idp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Idp {
    async fn start() -> Idp {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(IdpState::default()));
        let shared = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else {
                    return;
                };
                let state = shared.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 1024];
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 16_384 {
                        match sock.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let head = String::from_utf8_lossy(&buf);
                    let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
                    let (status, body, cache) = respond(&state, addr, &path);
                    let cache = cache.map_or(String::new(), |c| format!("Cache-Control: {c}\r\n"));
                    let resp = format!(
                        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n{cache}\
                         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = sock.write_all(resp.as_bytes()).await;
                    let _ = sock.shutdown().await;
                });
            }
        });
        Idp { addr, state, task }
    }

    fn issuer(&self, name: &str) -> String {
        format!("http://{}/{name}", self.addr)
    }

    fn set_keys(&self, name: &str, keys: Vec<Value>) {
        self.state.lock().unwrap().keys.insert(name.into(), keys);
    }

    fn hits(&self, path: &str) -> usize {
        self.state
            .lock()
            .unwrap()
            .hits
            .get(path)
            .copied()
            .unwrap_or(0)
    }
}

fn respond(state: &Mutex<IdpState>, addr: SocketAddr, path: &str) -> (u16, String, Option<String>) {
    let mut s = state.lock().unwrap();
    *s.hits.entry(path.to_string()).or_default() += 1;
    if s.down {
        return (503, "{\"error\":\"down\"}".into(), None);
    }
    let mut parts = path.trim_start_matches('/').splitn(2, '/');
    let (name, rest) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let Some(keys) = s.keys.get(name) else {
        return (404, "{}".into(), None);
    };
    match rest {
        ".well-known/openid-configuration" => (
            200,
            json!({"issuer": format!("http://{addr}/{name}"), "jwks_uri": format!("http://{addr}/{name}/jwks")})
                .to_string(),
            None,
        ),
        "jwks" => (200, json!({"keys": keys}).to_string(), s.cache_control.clone()),
        _ => (404, "{}".into(), None),
    }
}

fn jwk(private: &str, kid: &str) -> Value {
    let key = EncodingKey::from_rsa_pem(private.as_bytes()).unwrap();
    let mut v =
        serde_json::to_value(Jwk::from_encoding_key(&key, Algorithm::RS256).unwrap()).unwrap();
    v["kid"] = json!(kid);
    v["use"] = json!("sig");
    v
}

fn now_s() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn token(private: &str, kid: &str, iss: &str, sub: &str) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.into());
    let claims = json!({"sub": sub, "iss": iss, "aud": "app", "exp": now_s() + 600});
    encode(
        &header,
        &claims,
        &EncodingKey::from_rsa_pem(private.as_bytes()).unwrap(),
    )
    .unwrap()
}

/// The status and rejection reason of an upgrade, or 101 for an accepted one.
async fn upgrade(addr: SocketAddr, token: &str) -> (u16, String) {
    match try_connect(addr, &format!("/?token={token}"), &[]).await {
        Ok(_) => (101, String::new()),
        Err(WsError::Http(resp)) => {
            let body: Value =
                serde_json::from_slice(resp.body().as_deref().unwrap_or(b"{}")).unwrap();
            (
                resp.status().as_u16(),
                body["reason"].as_str().unwrap_or("").to_string(),
            )
        }
        Err(e) => panic!("upgrade failed: {e}"),
    }
}

/// Retry an upgrade that is told to wait for keys (503 `keys_unavailable`), bounded.
async fn upgrade_when_ready(addr: SocketAddr, token: &str) -> (u16, String) {
    for _ in 0..50 {
        let r = upgrade(addr, token).await;
        if r != (503, "keys_unavailable".to_string()) {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("keys never became available");
}

async fn metrics(addr: SocketAddr) -> String {
    http(addr, "GET", "/metrics", &[], None).await.body
}

fn server_cfg(auth: Value) -> Value {
    json!({"auth": auth, "heartbeatInterval": 0})
}

#[tokio::test]
async fn oidc_keys_are_discovered_and_rotation_is_picked_up_on_an_unknown_kid() {
    let idp = Idp::start().await;
    idp.set_keys("a", vec![jwk(RSA1, "k1")]);
    let iss = idp.issuer("a");
    let server = start(server_cfg(json!({
        "oidc": [{"issuer": iss, "audience": "app"}],
        "jwt": {"keyRefresh": {"unknownKidCooldownSeconds": 1}}
    })))
    .await;
    let addr = server.local_addr();
    assert_eq!(
        upgrade_when_ready(addr, &token(RSA1, "k1", &iss, "u1"))
            .await
            .0,
        101
    );
    assert_eq!(idp.hits("/a/.well-known/openid-configuration"), 1);
    // Rotation: the provider now signs with k2.
    idp.set_keys("a", vec![jwk(RSA1, "k1"), jwk(RSA2, "k2")]);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        upgrade_when_ready(addr, &token(RSA2, "k2", &iss, "u1"))
            .await
            .0,
        101
    );
    assert_eq!(idp.hits("/a/jwks"), 2);
    let m = metrics(addr).await;
    assert!(
        m.contains(&format!(
            "switchboard_key_fetches_total{{issuer=\"{iss}\"}} 2"
        )),
        "{m}"
    );
    assert!(m.contains("switchboard_unknown_kid_fetches_total 1"), "{m}");
    server.shutdown().await;
}

#[tokio::test]
async fn unknown_kids_refetch_at_most_once_per_cooldown() {
    let idp = Idp::start().await;
    idp.set_keys("a", vec![jwk(RSA1, "k1")]);
    let iss = idp.issuer("a");
    let server = start(server_cfg(json!({"jwt": {
        "jwks": [{"issuer": iss, "url": format!("{iss}/jwks")}],
        "keyRefresh": {"unknownKidCooldownSeconds": 60}
    }})))
    .await;
    let addr = server.local_addr();
    assert_eq!(
        upgrade_when_ready(addr, &token(RSA1, "k1", &iss, "u1"))
            .await
            .0,
        101
    );
    let before = idp.hits("/a/jwks");
    let mut statuses = Vec::new();
    for i in 0..20 {
        statuses.push(upgrade(addr, &token(RSA1, &format!("made-up-{i}"), &iss, "u1")).await);
    }
    // One fetch at most for the whole burst; after it, a plain 401 unknown_key.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        idp.hits("/a/jwks") <= before + 1,
        "{} fetches",
        idp.hits("/a/jwks") - before
    );
    assert_eq!(
        upgrade(addr, &token(RSA1, "made-up-x", &iss, "u1")).await,
        (401, "unknown_key".into())
    );
    assert!(
        statuses
            .iter()
            .all(|s| s.0 == 401 || s == &(503, "keys_unavailable".to_string())),
        "{statuses:?}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_kid_shared_by_two_issuers_never_verifies_the_other_issuers_tokens() {
    let idp = Idp::start().await;
    idp.set_keys("a", vec![jwk(RSA1, "shared")]);
    idp.set_keys("b", vec![jwk(RSA2, "shared")]);
    let (a, b) = (idp.issuer("a"), idp.issuer("b"));
    let server = start(server_cfg(json!({"oidc": [
        {"issuer": a, "audience": "app"},
        {"issuer": b, "audience": "app"}
    ]})))
    .await;
    let addr = server.local_addr();
    assert_eq!(
        upgrade_when_ready(addr, &token(RSA1, "shared", &a, "u1"))
            .await
            .0,
        101
    );
    assert_eq!(
        upgrade_when_ready(addr, &token(RSA2, "shared", &b, "u1"))
            .await
            .0,
        101
    );
    // Signed with A's key, claiming issuer B: B's `shared` key is used, and fails.
    assert_eq!(
        upgrade(addr, &token(RSA1, "shared", &b, "u1")).await,
        (401, "bad_signature".into())
    );
    assert_eq!(
        upgrade(addr, &token(RSA2, "shared", &a, "u1")).await,
        (401, "bad_signature".into())
    );
    server.shutdown().await;
}

#[tokio::test]
async fn an_outage_keeps_the_last_good_keys_and_shows_in_metrics() {
    let idp = Idp::start().await;
    idp.set_keys("a", vec![jwk(RSA1, "k1")]);
    idp.state.lock().unwrap().cache_control = Some("max-age=1".into());
    let iss = idp.issuer("a");
    let server = start(server_cfg(json!({"jwt": {
        "jwks": [{"issuer": iss, "url": format!("{iss}/jwks")}],
        "keyRefresh": {"minSeconds": 1, "retrySeconds": 1, "maxRetrySeconds": 1}
    }})))
    .await;
    let addr = server.local_addr();
    let t = token(RSA1, "k1", &iss, "u1");
    assert_eq!(upgrade_when_ready(addr, &t).await.0, 101);
    idp.state.lock().unwrap().down = true;
    let before = idp.hits("/a/jwks");
    // Refreshes every second fail; the keys stay.
    for _ in 0..40 {
        if idp.hits("/a/jwks") >= before + 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(idp.hits("/a/jwks") >= before + 2, "the refresh kept trying");
    assert_eq!(upgrade(addr, &t).await.0, 101);
    let m = metrics(addr).await;
    assert!(
        m.contains(&format!(
            "switchboard_key_fetch_failures_total{{issuer=\"{iss}\"}}"
        )),
        "{m}"
    );
    // Back up: the next refresh succeeds again.
    idp.state.lock().unwrap().down = false;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let m = metrics(addr).await;
    assert!(
        !m.contains(&format!(
            "switchboard_key_fetches_total{{issuer=\"{iss}\"}} 1\n"
        )),
        "{m}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_plain_http_key_url_off_loopback_is_refused_at_start() {
    let doc = json!({"server": {"listen": "127.0.0.1:0", "store": "memory"},
        "auth": {"jwt": {"jwks": [{"issuer": "https://idp.example", "url": "http://idp.example/jwks"}]}}});
    let err = switchboard::config::from_document(doc)
        .unwrap_err()
        .to_string();
    assert!(err.contains("auth.jwt.jwks[0].url"), "{err}");
    assert!(err.contains("127.0.0.1"), "{err}");
}

#[tokio::test]
async fn an_expiring_token_is_refreshed_over_the_socket_then_expires_with_4401() {
    let secret = "test-secret";
    let hs = |sub: &str, exp: i64| {
        encode(
            &Header::new(Algorithm::HS256),
            &json!({"sub": sub, "exp": exp}),
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap()
    };
    let server = start(server_cfg(json!({"jwt": {
        "secret": secret, "leewaySeconds": 0, "refreshNoticeSeconds": 1
    }})))
    .await;
    let addr = server.local_addr();
    let (mut ws, _) = connect(addr, &format!("/?token={}", hs("u1", now_s() + 1))).await;
    let notice = recv_type(&mut ws, "token:expiring").await;
    assert!(notice["expiresAt"].is_string(), "{notice}");
    send(
        &mut ws,
        json!({"type": "refresh", "token": hs("u2", now_s() + 60), "requestId": 1}),
    )
    .await;
    let refused = recv(&mut ws).await;
    assert_eq!(refused["reason"], "subject_mismatch", "{refused}");
    send(
        &mut ws,
        json!({"type": "refresh", "token": hs("u1", now_s() + 2), "requestId": 2}),
    )
    .await;
    let ok = recv(&mut ws).await;
    assert_eq!(ok["type"], "refreshed", "{ok}");
    assert_eq!(ok["requestId"], 2);
    // No second refresh: closed with 4401 once the new token is expired.
    let (code, reason) = closed(&mut ws).await;
    assert_eq!((code, reason.as_str()), (4401, "token expired"));
    let m = metrics(addr).await;
    assert!(m.contains("switchboard_token_expirations_total 1"), "{m}");
    assert!(m.contains("switchboard_token_refreshes_total 1"), "{m}");
    server.shutdown().await;
}
