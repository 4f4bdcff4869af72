//! Authentication at the upgrade: credential sources, API keys and every JWT outcome.

use jsonwebtoken::Algorithm;
use serde_json::{json, Value};

use crate::dsl::{std_with, Sc, T0};
use crate::jwt::{self, claims, DEMO_SECRET, FAR_FUTURE, FAR_PAST, IDP, OTHER_IDP, SECRET};

fn q(token: &str) -> String {
    format!("token={token}")
}

/// Explicit RSA key bound to IDP with kid `rsa-1`, and the test JWKS bound to OTHER_IDP.
fn keys_config() -> Value {
    std_with(json!({"auth": {"jwt": {
        "keys": [{"kid": "rsa-1", "issuer": IDP, "algorithm": "RS256", "publicKeyPem": jwt::RSA_PUBLIC}],
        "jwks": [{"issuer": OTHER_IDP, "jwks": jwt::jwks()}]
    }}}))
}

fn secret_config(extra: Value) -> Value {
    let mut jwt = json!({"secret": SECRET});
    if let (Some(j), Some(e)) = (jwt.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            j.insert(k.clone(), v.clone());
        }
    }
    std_with(json!({"auth": {"jwt": jwt}}))
}

/// The scenarios of this area.
pub fn scenarios() -> Vec<Sc> {
    let demo_user = jwt::hs256(
        DEMO_SECRET,
        &claims("u7", json!({"role": "user", "scope": "read write"})),
    );
    vec![
        // ------------------------------------------------------------ API keys, sources
        Sc::new("auth/api-key-query", "An API key in `?token=` authenticates as its user; the welcome shows the public view {id, role, scopes}.")
            .demo()
            .open_q(1, "token=key_admin")
            .types(&["connected"])
            .features(&["auth:api-key", "auth:source-query"]),
        Sc::new("auth/api-key-authorization-header", "`Authorization: Bearer <key>` (scheme in any case) is a credential source.")
            .demo()
            .open_h(1, "/", "", &[("Authorization", "bearer key_user")])
            .features(&["auth:api-key", "auth:source-authorization"]),
        Sc::new("auth/authorization-without-scheme", "An Authorization value without a scheme is used as-is.")
            .demo()
            .open_h(1, "/", "", &[("Authorization", "key_admin")])
            .features(&["auth:source-authorization"]),
        Sc::new("auth/authorization-other-scheme-ignored", "An Authorization header with another scheme (e.g. Basic from a proxy) is not a credential: the connection is anonymous on an optional route.")
            .demo()
            .open_h(1, "/", "", &[("Authorization", "Basic dXNlcjpwYXNz")])
            .features(&["auth:source-authorization", "auth:anonymous"]),
        Sc::new("auth/api-key-x-api-key-header", "`X-API-Key` is a credential source.")
            .demo()
            .open_h(1, "/", "", &[("X-API-Key", " key_user ")])
            .features(&["auth:api-key", "auth:source-x-api-key"]),
        Sc::new("auth/api-key-subprotocol", "A `bearer.<token>` entry of Sec-WebSocket-Protocol is a credential; only `switchboard.v1` is echoed.")
            .demo()
            .open_h(1, "/", "", &[("Sec-WebSocket-Protocol", "switchboard.v1, bearer.key_admin")])
            .features(&["auth:api-key", "auth:source-subprotocol", "subprotocol"]),
        Sc::new("auth/jwt-subprotocol", "A JWT in a `bearer.` subprotocol entry authenticates the browser client.")
            .demo()
            .open_h(1, "/", "", &[("Sec-WebSocket-Protocol", &format!("switchboard.v1, bearer.{demo_user}"))])
            .features(&["auth:source-subprotocol", "auth:jwt-valid"]),
        Sc::new("auth/empty-bearer-is-anonymous", "`Authorization: Bearer` with nothing after it counts as no credential: anonymous on an optional route.")
            .demo()
            .open_h(1, "/", "", &[("Authorization", "Bearer")])
            .features(&["auth:anonymous"]),
        Sc::new("auth/unknown-api-key", "An unknown API key is refused with 401 `unknown_api_key` even though the route's auth is optional.")
            .demo()
            .open_q(1, "token=key_nobody")
            .errors(&["UNAUTHORIZED"])
            .rejects(&["unknown_api_key"])
            .features(&["auth:invalid-token-optional-route"]),
        Sc::new("auth/first-credential-wins", "Only the first credential found is read: an invalid `?token=` is refused although `X-API-Key` holds a valid key.")
            .demo()
            .open_h(1, "/", "token=bogus", &[("X-API-Key", "key_admin")])
            .errors(&["UNAUTHORIZED"])
            .rejects(&["unknown_api_key"])
            .features(&["auth:first-credential-wins"]),
        Sc::new("auth/api-key-claims-not-echoed", "Extra API-key attributes become claims but never reach clients: the welcome shows only {id, role, scopes}.")
            .open_q(1, "token=key_admin")
            .types(&["connected"])
            .features(&["auth:api-key"]),
        Sc::new("auth/missing-token-required", "With `auth.required`, an upgrade without a credential gets 401 `missing_token`; with a key it is accepted.")
            .cfg(std_with(json!({"auth": {"required": true, "apiKeys": {"key_user": {"id": "u1", "role": "user"}}}})))
            .open(1)
            .open_q(2, "token=key_user")
            .errors(&["UNAUTHORIZED"])
            .rejects(&["missing_token"])
            .features(&["auth:missing-token"]),
        // ------------------------------------------------------------ JWT (demo: HS256 dev-secret)
        Sc::new("auth/jwt-valid", "A valid HS256 JWT: id from `sub`, role, and a space-separated `scope` claim split into scopes.")
            .demo()
            .open_q(1, &q(&demo_user))
            .types(&["connected"])
            .features(&["auth:jwt-valid"]),
        Sc::new("auth/jwt-expired", "A JWT whose `exp` is in the past is refused with 401 `token_expired`.")
            .demo()
            .open_q(1, &q(&jwt::hs256(DEMO_SECRET, &claims("u7", json!({"exp": FAR_PAST})))))
            .errors(&["UNAUTHORIZED"])
            .rejects(&["token_expired"])
            .features(&["auth:jwt-expired", "auth:invalid-token-optional-route"]),
        Sc::new("auth/jwt-not-yet-valid", "A JWT whose `nbf` is in the future is refused with 401 `not_yet_valid`.")
            .demo()
            .open_q(1, &q(&jwt::hs256(DEMO_SECRET, &claims("u7", json!({"nbf": FAR_FUTURE - 1000})))))
            .errors(&["UNAUTHORIZED"])
            .rejects(&["not_yet_valid"])
            .features(&["auth:jwt-not-yet-valid"]),
        Sc::new("auth/jwt-alg-none", "`alg: none` is refused in any letter case (`algorithm_not_allowed`).")
            .demo()
            .open_q(1, &q(&jwt::unsigned("none", &claims("u7", json!({})))))
            .open_q(2, &q(&jwt::unsigned("NONE", &claims("u7", json!({})))))
            .errors(&["UNAUTHORIZED"])
            .rejects(&["algorithm_not_allowed"])
            .features(&["auth:jwt-alg-none"]),
        Sc::new("auth/jwt-alg-not-allowed", "An HS384 token is refused when the secret only allows HS256.")
            .demo()
            .open_q(1, &q(&jwt::hs(DEMO_SECRET, Algorithm::HS384, &claims("u7", json!({})))))
            .errors(&["UNAUTHORIZED"])
            .rejects(&["algorithm_not_allowed"])
            .features(&["auth:jwt-alg-not-allowed"]),
        Sc::new("auth/jwt-bad-signature", "A token signed with another secret, and one with a tampered signature, get 401 `bad_signature`.")
            .demo()
            .open_q(1, &q(&jwt::hs256("not-the-secret", &claims("u7", json!({})))))
            .open_q(2, &q(&jwt::tampered(DEMO_SECRET, &claims("u7", json!({})))))
            .errors(&["UNAUTHORIZED"])
            .rejects(&["bad_signature"])
            .features(&["auth:jwt-bad-signature"]),
        Sc::new("auth/jwt-malformed", "A JWT-shaped token whose segments are not base64url JSON is refused with 401 `malformed_token`.")
            .demo()
            .open_q(1, "token=aGVsbG8.d29ybGQ.c2ln")
            .errors(&["UNAUTHORIZED"])
            .rejects(&["malformed_token"])
            .features(&["auth:jwt-malformed"]),
        Sc::new("auth/jwt-missing-claims", "A token without `exp` (required by default) and one without `sub`/`id` get 401 `missing_claim`.")
            .demo()
            .open_q(1, &q(&jwt::hs256(DEMO_SECRET, &claims("u7", json!({"exp": null})))))
            .open_q(2, &q(&jwt::hs256(DEMO_SECRET, &claims("u7", json!({"sub": null})))))
            .errors(&["UNAUTHORIZED"])
            .rejects(&["missing_claim"])
            .features(&["auth:jwt-missing-claim"]),
        Sc::new("auth/jwt-id-fallback", "Without `sub`, the user id comes from the `id` claim; `scopes` as an array is read when `scope` is absent.")
            .demo()
            .open_q(1, &q(&jwt::hs256(DEMO_SECRET, &claims("u7", json!({"sub": null, "id": "u8", "scopes": ["a", "b"]})))))
            .types(&["connected"])
            .features(&["auth:jwt-valid"]),
        // ------------------------------------------------------------ JWT (custom configs)
        Sc::new("auth/jwt-leeway", "`exp` up to `leewaySeconds` (default 30) in the past is accepted; one second more is `token_expired`.")
            .cfg(secret_config(json!({})))
            .open_q(1, &q(&jwt::hs256(SECRET, &claims("u1", json!({"exp": (T0 / 1000) as i64 - 30})))))
            .open_q(2, &q(&jwt::hs256(SECRET, &claims("u1", json!({"exp": (T0 / 1000) as i64 - 31})))))
            .errors(&["UNAUTHORIZED"])
            .rejects(&["token_expired"])
            .features(&["auth:jwt-leeway", "auth:jwt-expired"]),
        Sc::new("auth/jwt-wrong-audience", "With `audience` configured, a token for another audience is refused (`wrong_audience`) and one listing ours is accepted.")
            .cfg(secret_config(json!({"audience": ["switchboard"]})))
            .open_q(1, &q(&jwt::hs256(SECRET, &claims("u1", json!({"aud": "other-app"})))))
            .open_q(2, &q(&jwt::hs256(SECRET, &claims("u1", json!({"aud": ["other-app", "switchboard"]})))))
            .errors(&["UNAUTHORIZED"])
            .rejects(&["wrong_audience"])
            .features(&["auth:jwt-wrong-aud"]),
        Sc::new("auth/jwt-wrong-issuer", "With `issuers` configured, a token from another issuer is refused (`wrong_issuer`) and one from ours is accepted.")
            .cfg(secret_config(json!({"issuers": [IDP]})))
            .open_q(1, &q(&jwt::hs256(SECRET, &claims("u1", json!({"iss": "https://evil.example"})))))
            .open_q(2, &q(&jwt::hs256(SECRET, &claims("u1", json!({"iss": IDP})))))
            .errors(&["UNAUTHORIZED"])
            .rejects(&["wrong_issuer"])
            .features(&["auth:jwt-wrong-iss"]),
        Sc::new("auth/jwt-rs256-kid", "An RS256 token with kid `rsa-1` from the key's issuer verifies; signed by another RSA key it is `bad_signature`.")
            .cfg(keys_config())
            .open_q(1, &q(&jwt::rs256(Some("rsa-1"), &claims("u1", json!({"iss": IDP, "role": "user"})))))
            .open_q(2, &q(&jwt::rs256_other_key(Some("rsa-1"), &claims("u1", json!({"iss": IDP})))))
            .errors(&["UNAUTHORIZED"])
            .rejects(&["bad_signature"])
            .features(&["auth:jwt-rs256", "auth:jwt-valid", "auth:jwt-bad-signature"]),
        Sc::new("auth/jwt-unknown-kid", "A token whose `kid` no key has is refused with `unknown_key`.")
            .cfg(keys_config())
            .open_q(1, &q(&jwt::rs256(Some("rsa-9"), &claims("u1", json!({"iss": IDP})))))
            .errors(&["UNAUTHORIZED"])
            .rejects(&["unknown_key"])
            .features(&["auth:jwt-unknown-kid"]),
        Sc::new("auth/jwt-kid-of-other-issuer", "A JWKS key is bound to its issuer: kid `ec-1` (published by the other IdP) does not verify a token claiming our IdP.")
            .cfg(keys_config())
            .open_q(1, &q(&jwt::es256(Some("ec-1"), &claims("u1", json!({"iss": IDP})))))
            .errors(&["UNAUTHORIZED"])
            .rejects(&["unknown_key"])
            .features(&["auth:jwt-kid-other-issuer"]),
        Sc::new("auth/jwt-jwks-es256-eddsa", "ES256 (kid ec-1) and EdDSA (kid ed-1) tokens from the JWKS's issuer verify.")
            .cfg(keys_config())
            .open_q(1, &q(&jwt::es256(Some("ec-1"), &claims("u1", json!({"iss": OTHER_IDP})))))
            .open_q(2, &q(&jwt::eddsa(Some("ed-1"), &claims("u2", json!({"iss": OTHER_IDP})))))
            .types(&["connected"])
            .features(&["auth:jwt-es256", "auth:jwt-eddsa", "auth:jwt-valid"]),
        Sc::new("auth/jwt-hs-rs-confusion", "Algorithm confusion: an HS256 token whose HMAC key is the server's RSA public key PEM is refused (no HS256 key exists).")
            .cfg(keys_config())
            .open_q(1, &q(&jwt::hs256_with_rsa_public_key(Some("rsa-1"), &claims("u1", json!({"iss": IDP})))))
            .open_q(2, &q(&jwt::hs256_with_rsa_public_key(None, &claims("u1", json!({"iss": IDP})))))
            .errors(&["UNAUTHORIZED"])
            .rejects(&["algorithm_not_allowed"])
            .features(&["auth:jwt-hs-rs-confusion"]),
        Sc::new("auth/jwt-not-accepted", "Without `auth.jwt`, a JWT-shaped token is refused with `jwt_not_accepted`.")
            .open_q(1, &q(&jwt::hs256(SECRET, &claims("u1", json!({})))))
            .errors(&["UNAUTHORIZED"])
            .rejects(&["jwt_not_accepted"])
            .features(&["auth:jwt-not-accepted"]),
        Sc::new("auth/set-jwks-at-runtime", "`setJwks` installs an issuer's keys at run time; tokens signed by them verify afterwards. A bad document is an INVALID_MESSAGE command error.")
            .cfg(secret_config(json!({})))
            .open_q(1, &q(&jwt::es256(Some("ec-1"), &claims("u1", json!({"iss": IDP})))))
            .cmd(json!({"command": "setJwks", "issuer": IDP, "jwks": jwt::jwks()}))
            .open_q(2, &q(&jwt::es256(Some("ec-1"), &claims("u1", json!({"iss": IDP})))))
            .cmd(json!({"command": "setJwks", "issuer": IDP, "jwks": {"keys": "nope"}}))
            .errors(&["UNAUTHORIZED", "INVALID_MESSAGE"])
            .rejects(&["algorithm_not_allowed"])
            .features(&["auth:jwks-runtime"]),
    ]
}
