//! Deterministic test tokens. Keys are the engine's test keys
//! (`engine/src/auth/testkeys/`); HMAC, RSA PKCS#1 v1.5, ECDSA (RFC 6979) and Ed25519
//! signatures are deterministic, so regenerating the vectors reproduces every token.
//! Expiry times are fixed far in the future (2100) or far in the past (2001), so the
//! same tokens work in virtual time and against live servers.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

/// RSA private key (`rsa-1`).
pub const RSA_PRIVATE: &str = include_str!("../../../../engine/src/auth/testkeys/rsa_private.pem");
/// RSA public key (`rsa-1`).
pub const RSA_PUBLIC: &str = include_str!("../../../../engine/src/auth/testkeys/rsa_public.pem");
/// A second RSA private key (not in any config).
pub const RSA2_PRIVATE: &str =
    include_str!("../../../../engine/src/auth/testkeys/rsa2_private.pem");
/// P-256 private key (`ec-1`).
pub const EC_PRIVATE: &str = include_str!("../../../../engine/src/auth/testkeys/ec_private.pem");
/// Ed25519 private key (`ed-1`).
pub const ED_PRIVATE: &str = include_str!("../../../../engine/src/auth/testkeys/ed_private.pem");
/// The test JWKS document.
pub const JWKS: &str = include_str!("../../../../engine/src/auth/testkeys/jwks.json");

/// 2100-01-01T00:00:00Z.
pub const FAR_FUTURE: i64 = 4_102_444_800;
/// 2001-09-09T01:46:40Z.
pub const FAR_PAST: i64 = 1_000_000_000;
/// The demo deployment's HMAC secret.
pub const DEMO_SECRET: &str = "dev-secret";
/// A 64-byte secret for the custom configs.
pub const SECRET: &str = "conformance-secret-0123456789abcdef0123456789abcdef0123456789ab";
/// Issuer bound to the explicit RSA key.
pub const IDP: &str = "https://idp.example.com";
/// Issuer bound to the test JWKS.
pub const OTHER_IDP: &str = "https://other-idp.example.com";

/// Claims for `sub` expiring in 2100, with `extra` merged in (`null` removes a key).
pub fn claims(sub: &str, extra: Value) -> Value {
    let mut c = json!({"sub": sub, "exp": FAR_FUTURE});
    if let (Some(c), Some(extra)) = (c.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            if v.is_null() {
                c.remove(k);
            } else {
                c.insert(k.clone(), v.clone());
            }
        }
    }
    c
}

fn sign(alg: Algorithm, key: &EncodingKey, kid: Option<&str>, claims: &Value) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_string);
    encode(&header, claims, key).expect("signing a test token")
}

/// An HMAC token with algorithm `alg`.
pub fn hs(secret: &str, alg: Algorithm, claims: &Value) -> String {
    sign(
        alg,
        &EncodingKey::from_secret(secret.as_bytes()),
        None,
        claims,
    )
}

/// An HS256 token.
pub fn hs256(secret: &str, claims: &Value) -> String {
    hs(secret, Algorithm::HS256, claims)
}

/// An RS256 token signed with `rsa-1`.
pub fn rs256(kid: Option<&str>, claims: &Value) -> String {
    let key = EncodingKey::from_rsa_pem(RSA_PRIVATE.as_bytes()).expect("rsa key");
    sign(Algorithm::RS256, &key, kid, claims)
}

/// An RS256 token signed with a key no config knows.
pub fn rs256_other_key(kid: Option<&str>, claims: &Value) -> String {
    let key = EncodingKey::from_rsa_pem(RSA2_PRIVATE.as_bytes()).expect("rsa2 key");
    sign(Algorithm::RS256, &key, kid, claims)
}

/// An ES256 token signed with `ec-1`.
pub fn es256(kid: Option<&str>, claims: &Value) -> String {
    let key = EncodingKey::from_ec_pem(EC_PRIVATE.as_bytes()).expect("ec key");
    sign(Algorithm::ES256, &key, kid, claims)
}

/// An EdDSA token signed with `ed-1`.
pub fn eddsa(kid: Option<&str>, claims: &Value) -> String {
    let key = EncodingKey::from_ed_pem(ED_PRIVATE.as_bytes()).expect("ed key");
    sign(Algorithm::EdDSA, &key, kid, claims)
}

/// The algorithm-confusion attack: an HS256 token whose HMAC key is the server's RSA
/// *public* key PEM.
pub fn hs256_with_rsa_public_key(kid: Option<&str>, claims: &Value) -> String {
    let key = EncodingKey::from_secret(RSA_PUBLIC.as_bytes());
    sign(Algorithm::HS256, &key, kid, claims)
}

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).expect("json"))
}

/// An unsigned token with the given header `alg` (e.g. `none`, `NONE`).
pub fn unsigned(alg: &str, claims: &Value) -> String {
    format!(
        "{}.{}.",
        b64(&json!({"alg": alg, "typ": "JWT"})),
        b64(claims)
    )
}

/// A token with a valid HS256 header and payload but a garbage signature.
pub fn tampered(secret: &str, claims: &Value) -> String {
    let t = hs256(secret, claims);
    let (head, _) = t.rsplit_once('.').expect("three parts");
    format!("{head}.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
}

/// The test JWKS document (`rsa-1` RS256, `ec-1` P-256, `ed-1` Ed25519, `enc-1` skipped).
pub fn jwks() -> Value {
    serde_json::from_str(JWKS).expect("jwks.json")
}
