//! Tests of API keys, JWT verification, JWKS handling, config checks and credential
//! extraction. Key pairs were generated once with `openssl` and live in `testkeys/`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::json;

use super::*;

const RSA_PRIVATE: &str = include_str!("../testkeys/rsa_private.pem");
const RSA_PUBLIC: &str = include_str!("../testkeys/rsa_public.pem");
const RSA2_PRIVATE: &str = include_str!("../testkeys/rsa2_private.pem");
const RSA2_PUBLIC: &str = include_str!("../testkeys/rsa2_public.pem");
const EC_PRIVATE: &str = include_str!("../testkeys/ec_private.pem");
const EC_PUBLIC: &str = include_str!("../testkeys/ec_public.pem");
const EC384_PUBLIC: &str = include_str!("../testkeys/ec384_public.pem");
const ED_PRIVATE: &str = include_str!("../testkeys/ed_private.pem");
const ED_PUBLIC: &str = include_str!("../testkeys/ed_public.pem");
const RSA1024_PUBLIC: &str = include_str!("../testkeys/rsa1024_public.pem");
/// `rsa-1` (RS256), `ec-1` (P-256, no alg), `ed-1` (Ed25519, no alg) and `enc-1`
/// (rsa2, `use: enc`, skipped).
const JWKS: &str = include_str!("../testkeys/jwks.json");

const NOW: Millis = Millis(1_700_000_000_000);
const NOW_S: i64 = 1_700_000_000;
const SECRET: &str = "a-test-secret-that-is-long-enough-for-hs512-0123456789abcdef";
const IDP: &str = "https://idp.example.com";

fn try_auth(auth: Value) -> Result<Authenticator, ConfigError> {
    let cfg: AuthConfig = serde_json::from_value(auth).expect("AuthConfig JSON");
    Authenticator::new(&cfg)
}

fn with_jwt(jwt: Value) -> Authenticator {
    try_auth(json!({ "jwt": jwt })).unwrap_or_else(|e| panic!("config refused: {e}"))
}

fn config_issues(auth: Value) -> Vec<(String, String)> {
    try_auth(auth)
        .expect_err("config should be refused")
        .issues
        .into_iter()
        .map(|i| (i.path, i.problem))
        .collect()
}

fn claims(extra: Value) -> Value {
    let mut c = json!({ "sub": "u1", "exp": NOW_S + 600 });
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
    encode(&header, claims, key).expect("signing")
}

fn hmac(alg: Algorithm, claims: &Value) -> String {
    sign(
        alg,
        &EncodingKey::from_secret(SECRET.as_bytes()),
        None,
        claims,
    )
}

fn rsa() -> EncodingKey {
    EncodingKey::from_rsa_pem(RSA_PRIVATE.as_bytes()).unwrap()
}

fn rsa2() -> EncodingKey {
    EncodingKey::from_rsa_pem(RSA2_PRIVATE.as_bytes()).unwrap()
}

fn ec() -> EncodingKey {
    EncodingKey::from_ec_pem(EC_PRIVATE.as_bytes()).unwrap()
}

fn ed() -> EncodingKey {
    EncodingKey::from_ed_pem(ED_PRIVATE.as_bytes()).unwrap()
}

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
}

fn raw_token(header: &Value, payload: &Value, sig: &str) -> String {
    format!("{}.{}.{sig}", b64(header), b64(payload))
}

fn jwks() -> Value {
    serde_json::from_str(JWKS).unwrap()
}

fn jwk(kid: &str) -> Value {
    jwks()["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid)
        .cloned()
        .unwrap()
}

/// The second RSA key as a signing JWK with the given kid.
fn rsa2_jwk(kid: &str) -> Value {
    let mut k = jwk("enc-1");
    k["use"] = json!("sig");
    k["alg"] = json!("RS256");
    k["kid"] = json!(kid);
    k
}

fn secret_auth() -> Authenticator {
    with_jwt(json!({ "secret": SECRET, "algorithms": ["HS256", "HS384", "HS512"] }))
}

mod claims;
mod config_checks;
mod jwks;

// ---------------------------------------------------------------- HMAC

#[test]
fn hmac_256_384_512_verify() {
    let a = secret_auth();
    for alg in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
        let user = a.authenticate(NOW, &hmac(alg, &claims(json!({})))).unwrap();
        assert_eq!(user.id, "u1");
        assert_eq!(user.claims["sub"], "u1");
    }
}

#[test]
fn hmac_algorithm_not_listed_is_refused() {
    let a = with_jwt(json!({ "secret": SECRET }));
    let err = a
        .authenticate(NOW, &hmac(Algorithm::HS512, &claims(json!({}))))
        .unwrap_err();
    assert_eq!(err, AuthError::UnsupportedAlgorithm("HS512".into()));
    assert_eq!(err.reason(), "algorithm_not_allowed");
}

#[test]
fn wrong_secret_is_a_bad_signature() {
    let a = secret_auth();
    let token = sign(
        Algorithm::HS256,
        &EncodingKey::from_secret(b"another secret"),
        None,
        &claims(json!({})),
    );
    let err = a.authenticate(NOW, &token).unwrap_err();
    assert_eq!(err, AuthError::BadSignature);
    assert_eq!(err.reason(), "bad_signature");
}

// ---------------------------------------------------------------- PEM keys

fn pem_auth() -> Authenticator {
    with_jwt(json!({
        "keys": [
            { "algorithm": "RS256", "publicKeyPem": RSA_PUBLIC },
            { "algorithm": "PS256", "publicKeyPem": RSA_PUBLIC },
            { "algorithm": "ES256", "publicKeyPem": EC_PUBLIC },
            { "algorithm": "EdDSA", "publicKeyPem": ED_PUBLIC }
        ]
    }))
}

#[test]
fn rs256_ps256_es256_eddsa_with_pem_keys() {
    let a = pem_auth();
    let c = claims(json!({}));
    for (alg, key) in [
        (Algorithm::RS256, rsa()),
        (Algorithm::PS256, rsa()),
        (Algorithm::ES256, ec()),
        (Algorithm::EdDSA, ed()),
    ] {
        let token = sign(alg, &key, None, &c);
        assert_eq!(a.authenticate(NOW, &token).unwrap().id, "u1", "{alg:?}");
    }
    // Signed by another RSA key: same algorithm, wrong key.
    let token = sign(Algorithm::RS256, &rsa2(), None, &c);
    assert_eq!(a.authenticate(NOW, &token), Err(AuthError::BadSignature));
}

#[test]
fn pem_with_escaped_newlines_is_accepted() {
    let escaped = RSA_PUBLIC.replace('\n', "\\n");
    let a = with_jwt(json!({ "keys": [{ "algorithm": "RS256", "publicKeyPem": escaped }] }));
    let token = sign(Algorithm::RS256, &rsa(), None, &claims(json!({})));
    assert!(a.authenticate(NOW, &token).is_ok());
}

#[test]
fn tampered_signature_or_payload_is_refused() {
    let a = pem_auth();
    let token = sign(Algorithm::RS256, &rsa(), None, &claims(json!({})));
    let (rest, sig) = token.rsplit_once('.').unwrap();

    let mut sig_bytes = URL_SAFE_NO_PAD.decode(sig).unwrap();
    sig_bytes[10] ^= 1;
    let bad_sig = format!("{rest}.{}", URL_SAFE_NO_PAD.encode(&sig_bytes));
    assert_eq!(a.authenticate(NOW, &bad_sig), Err(AuthError::BadSignature));

    let (header, _) = rest.split_once('.').unwrap();
    let forged = format!(
        "{header}.{}.{sig}",
        b64(&claims(json!({ "sub": "admin", "role": "admin" })))
    );
    assert_eq!(a.authenticate(NOW, &forged), Err(AuthError::BadSignature));

    let no_sig = format!("{rest}.");
    assert_eq!(a.authenticate(NOW, &no_sig), Err(AuthError::BadSignature));
}

// ---------------------------------------------------------------- algorithm attacks

#[test]
fn alg_none_is_never_accepted() {
    let a = secret_auth();
    // {"alg":"none"} hand-crafted, empty signature.
    let token = format!("eyJhbGciOiJub25lIn0.{}.", b64(&claims(json!({}))));
    let err = a.authenticate(NOW, &token).unwrap_err();
    assert_eq!(err, AuthError::UnsupportedAlgorithm("none".into()));
    assert_eq!(err.reason(), "algorithm_not_allowed");
    assert!(err.to_string().contains("never accepted"), "{err}");

    for alg in ["None", "NONE", "nOnE"] {
        let token = raw_token(&json!({ "alg": alg }), &claims(json!({})), "");
        assert_eq!(
            a.authenticate(NOW, &token),
            Err(AuthError::UnsupportedAlgorithm("none".into()))
        );
    }
    let token = raw_token(&json!({ "alg": "HS999" }), &claims(json!({})), "abc");
    assert_eq!(
        a.authenticate(NOW, &token),
        Err(AuthError::UnsupportedAlgorithm("HS999".into()))
    );
}

#[test]
fn algorithm_confusion_hs256_with_rsa_public_key_is_refused() {
    // The attacker signs HS256 with the RSA public key PEM as the HMAC secret.
    let forged_key = EncodingKey::from_secret(RSA_PUBLIC.as_bytes());
    let c = claims(json!({ "sub": "admin" }));

    let a = with_jwt(json!({ "keys": [{ "algorithm": "RS256", "publicKeyPem": RSA_PUBLIC }] }));
    let token = sign(Algorithm::HS256, &forged_key, None, &c);
    assert_eq!(
        a.authenticate(NOW, &token),
        Err(AuthError::UnsupportedAlgorithm("HS256".into()))
    );

    // Same with a kid that names the RSA key.
    let a = with_jwt(json!({
        "keys": [{ "kid": "r1", "algorithm": "RS256", "publicKeyPem": RSA_PUBLIC }]
    }));
    let token = sign(Algorithm::HS256, &forged_key, Some("r1"), &c);
    assert_eq!(
        a.authenticate(NOW, &token),
        Err(AuthError::UnsupportedAlgorithm("HS256".into()))
    );

    // With an HS256 secret also configured, the forged token meets only that secret.
    let a = with_jwt(json!({
        "secret": SECRET,
        "keys": [{ "kid": "r1", "algorithm": "RS256", "publicKeyPem": RSA_PUBLIC }]
    }));
    assert_eq!(a.authenticate(NOW, &token), Err(AuthError::BadSignature));

    // And an RS256 JWKS key never acts as an HMAC secret either.
    let a = with_jwt(json!({ "jwks": [{ "issuer": IDP, "jwks": jwks() }] }));
    let token = sign(
        Algorithm::HS256,
        &forged_key,
        Some("rsa-1"),
        &claims(json!({ "iss": IDP })),
    );
    assert_eq!(
        a.authenticate(NOW, &token),
        Err(AuthError::UnsupportedAlgorithm("HS256".into()))
    );
}

#[test]
fn crit_header_is_refused() {
    let a = secret_auth();
    let mut header = Header::new(Algorithm::HS256);
    header.crit = Some(vec!["b64".into()]);
    let token = encode(
        &header,
        &claims(json!({})),
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap();
    assert!(matches!(
        a.authenticate(NOW, &token),
        Err(AuthError::Malformed(_))
    ));
}
