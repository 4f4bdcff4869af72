//! Identity on open connections: token expiry (notice, 4401 close), `refresh`, and keys
//! fetched from a URL (the `fetch` host call, answered by the vector).
//!
//! The tokens are HS256 with the config's `auth.jwt.secret` and expire a few seconds
//! after the first step (T0), so the timers run in seconds of virtual time; live, the
//! runner sets the host clock to each step's time (the test control channel), so the
//! same tokens work.

use serde_json::{json, Value};

use crate::dsl::{Sc, T0};
use crate::jwt::{self, SECRET};

const T0_S: i64 = (T0 / 1000) as i64;

/// Leeway 1 s, notice 1 s before `exp`, no heartbeat (so nextTimeout shows the expiry).
fn cfg() -> Value {
    json!({
        "heartbeatInterval": 0,
        "auth": {
            "apiKeys": {"key_user": {"id": "u1", "role": "user"}},
            "jwt": {"secret": SECRET, "leewaySeconds": 1, "refreshNoticeSeconds": 1}
        }
    })
}

/// An HS256 token for `sub` expiring `secs` after T0.
fn token(sub: &str, secs: i64) -> String {
    jwt::hs256(
        SECRET,
        &json!({"sub": sub, "role": "user", "scope": "read", "exp": T0_S + secs}),
    )
}

fn q(token: &str) -> String {
    format!("token={token}")
}

/// The scenarios of this area.
pub fn scenarios() -> Vec<Sc> {
    let idp = "http://127.0.0.1:9/idp";
    vec![
        Sc::new("auth/expiry-scheduling", "Each connection's token expiry is scheduled with the engine's timers: `token:expiring` `refreshNoticeSeconds` before `exp` (nextTimeout shows it), the close at exp + leeway; an API-key connection never expires.")
            .cfg(cfg())
            .open_q(1, &q(&token("u1", 3)))
            .open_q(2, &q(&token("u2", 10)))
            .open_q(3, "token=key_user")
            .timeout_at(2_000)
            .timeout_at(5_000)
            .close(1, Some(4401))
            .timeout_at(9_000)
            .timeout_at(12_000)
            .close(2, Some(4401))
            .types(&["token:expiring"])
            .closes(&[4401])
            .features(&["auth:expiry-notice", "auth:expiry-close"]),
        Sc::new("auth/expiry-close", "A token that is about to expire gets `token:expiring` right after `connected`; without a refresh the connection is closed with 4401 \"token expired\" once now > exp + leeway (whole seconds), and the others see it leave its rooms.")
            .cfg(cfg())
            .open_q(1, &q(&token("u1", 1)))
            .open_q(2, "token=key_user")
            .send(1, json!({"type": "join", "room": "lobby"}))
            .send(2, json!({"type": "join", "room": "lobby"}))
            .timeout_at(2_999)
            .timeout_at(3_000)
            .close(1, Some(4401))
            .types(&["token:expiring", "room:left"])
            .closes(&[4401])
            .features(&["auth:expiry-notice", "auth:expiry-close"]),
        Sc::new("auth/refresh", "`refresh` with a valid token for the same user answers `refreshed` (public user view, the new `expiresAt`, the requestId) and moves the expiry: the old deadline passes without a close.")
            .cfg(cfg())
            .open_q(1, &q(&token("u1", 3)))
            .timeout_at(2_000)
            .at(2_500)
            .send(1, json!({"type": "refresh", "token": token("u1", 60), "requestId": 7}))
            .timeout_at(5_000)
            .send(1, json!({"type": "ping", "requestId": 8}))
            .types(&["token:expiring", "refreshed", "pong"])
            .features(&["auth:refresh"]),
        Sc::new("auth/refresh-other-subject", "A `refresh` whose token belongs to another user is refused with FORBIDDEN `subject_mismatch` (the connection keeps its user and its expiry, so it is still closed with 4401); an expired token is refused with UNAUTHORIZED `token_expired`.")
            .cfg(cfg())
            .open_q(1, &q(&token("u1", 3)))
            .at(1_000)
            .send(1, json!({"type": "refresh", "token": token("u2", 60), "requestId": 1}))
            .send(1, json!({"type": "refresh", "token": token("u1", -100), "requestId": 2}))
            .timeout_at(2_000)
            .timeout_at(5_000)
            .errors(&["FORBIDDEN", "UNAUTHORIZED"])
            .closes(&[4401])
            .features(&["auth:refresh-other-subject", "auth:expiry-close"]),
        Sc::new("auth/jwks-url-fetched", "Keys from `jwks[].url` are fetched through a `fetch` host call at start; until they arrive a token of that issuer is refused with 503 `keys_unavailable` (retry), and once installed it verifies. The next fetch follows the response's Cache-Control max-age.")
            .cfg(json!({"heartbeatInterval": 0, "auth": {"jwt": {"jwks": [{"issuer": idp, "url": format!("{idp}/jwks")}]}}}))
            .timeout_at(0)
            .open_q(1, &q(&jwt::rs256(Some("rsa-1"), &json!({"sub": "u1", "iss": idp, "exp": jwt::FAR_FUTURE}))))
            .complete(1, json!({"kind": "fetch", "status": 200, "body": jwt::jwks().to_string(), "cacheControl": "public, max-age=600"}))
            .open_q(2, &q(&jwt::rs256(Some("rsa-1"), &json!({"sub": "u1", "iss": idp, "exp": jwt::FAR_FUTURE}))))
            .errors(&["UNAVAILABLE"])
            .rejects(&["keys_unavailable"])
            .types(&["connected"])
            .in_process("answers the key server's fetch host call itself")
            .features(&["auth:key-source-fetch"]),
    ]
}
