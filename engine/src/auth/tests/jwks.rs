//! JWKS: keys from config and at run time, kids, issuer binding.

use super::*;

// ---------------------------------------------------------------- JWKS

#[test]
fn jwks_in_config_verifies_rsa_ec_and_ed_keys() {
    let a = with_jwt(json!({ "jwks": [{ "issuer": IDP, "jwks": jwks() }] }));
    let c = claims(json!({ "iss": IDP }));
    for (alg, key, kid) in [
        (Algorithm::RS256, rsa(), "rsa-1"),
        (Algorithm::ES256, ec(), "ec-1"),
        (Algorithm::EdDSA, ed(), "ed-1"),
    ] {
        let token = sign(alg, &key, Some(kid), &c);
        assert_eq!(a.authenticate(NOW, &token).unwrap().id, "u1", "{kid}");
    }
    // The `use: enc` key (rsa2) was skipped.
    let token = sign(Algorithm::RS256, &rsa2(), Some("enc-1"), &c);
    assert!(matches!(
        a.authenticate(NOW, &token),
        Err(AuthError::UnknownKey { .. })
    ));
}

#[test]
fn jwks_keys_need_the_issuer() {
    let a = with_jwt(json!({ "jwks": [{ "issuer": IDP, "jwks": jwks() }] }));
    // No iss: an issuer-bound key never verifies it.
    let token = sign(Algorithm::RS256, &rsa(), Some("rsa-1"), &claims(json!({})));
    assert_eq!(
        a.authenticate(NOW, &token),
        Err(AuthError::UnknownKey {
            kid: Some("rsa-1".into()),
            issuer: None
        })
    );
    // Another iss.
    let token = sign(
        Algorithm::RS256,
        &rsa(),
        Some("rsa-1"),
        &claims(json!({ "iss": "https://other.example" })),
    );
    let err = a.authenticate(NOW, &token).unwrap_err();
    assert_eq!(
        err,
        AuthError::UnknownKey {
            kid: Some("rsa-1".into()),
            issuer: Some("https://other.example".into())
        }
    );
    assert_eq!(err.reason(), "unknown_key");
    assert!(err.to_string().contains("kid `rsa-1`"), "{err}");
}

#[test]
fn unknown_kid_is_refused() {
    let a = with_jwt(json!({ "jwks": [{ "issuer": IDP, "jwks": jwks() }] }));
    let token = sign(
        Algorithm::RS256,
        &rsa(),
        Some("rsa-9"),
        &claims(json!({ "iss": IDP })),
    );
    assert_eq!(
        a.authenticate(NOW, &token),
        Err(AuthError::UnknownKey {
            kid: Some("rsa-9".into()),
            issuer: Some(IDP.into())
        })
    );

    let a = with_jwt(json!({
        "keys": [{ "kid": "k1", "algorithm": "RS256", "publicKeyPem": RSA_PUBLIC }]
    }));
    let token = sign(Algorithm::RS256, &rsa(), Some("k2"), &claims(json!({})));
    assert_eq!(
        a.authenticate(NOW, &token),
        Err(AuthError::UnknownKey {
            kid: Some("k2".into()),
            issuer: None
        })
    );
    // Without kid, the single RS256 key is used.
    let token = sign(Algorithm::RS256, &rsa(), None, &claims(json!({})));
    assert!(a.authenticate(NOW, &token).is_ok());
}

#[test]
fn kidless_token_with_several_kid_keys_is_unknown() {
    let a = with_jwt(json!({
        "keys": [
            { "kid": "k1", "algorithm": "RS256", "publicKeyPem": RSA_PUBLIC },
            { "kid": "k2", "algorithm": "RS256", "publicKeyPem": RSA2_PUBLIC }
        ]
    }));
    let token = sign(Algorithm::RS256, &rsa(), None, &claims(json!({})));
    assert_eq!(
        a.authenticate(NOW, &token),
        Err(AuthError::UnknownKey {
            kid: None,
            issuer: None
        })
    );
    let token = sign(Algorithm::RS256, &rsa2(), Some("k2"), &claims(json!({})));
    assert!(a.authenticate(NOW, &token).is_ok());
}

/// Centrifugo CVE-2026-49998: keys were looked up by `kid` alone, so an issuer whose key
/// the attacker controls could mint tokens for any other issuer by reusing a `kid`.
#[test]
fn same_kid_under_another_issuer_never_verifies() {
    let good = "https://good.example";
    let evil = "https://evil.example";
    let a = with_jwt(json!({
        "jwks": [
            { "issuer": good, "jwks": { "keys": [jwk("rsa-1")] } },
            { "issuer": evil, "jwks": { "keys": [rsa2_jwk("rsa-1"), rsa2_jwk("evil-1")] } }
        ]
    }));
    let as_good = claims(json!({ "iss": good, "sub": "admin" }));

    // Evil's key under the same kid, claiming the good issuer: checked only against
    // good's `rsa-1`, which it does not match.
    let token = sign(Algorithm::RS256, &rsa2(), Some("rsa-1"), &as_good);
    assert_eq!(a.authenticate(NOW, &token), Err(AuthError::BadSignature));

    // Evil's own kid, claiming the good issuer: no such key for that issuer.
    let token = sign(Algorithm::RS256, &rsa2(), Some("evil-1"), &as_good);
    assert_eq!(
        a.authenticate(NOW, &token),
        Err(AuthError::UnknownKey {
            kid: Some("evil-1".into()),
            issuer: Some(good.into())
        })
    );

    // Evil's keys still work for evil's own users.
    let token = sign(
        Algorithm::RS256,
        &rsa2(),
        Some("rsa-1"),
        &claims(json!({ "iss": evil })),
    );
    assert_eq!(a.authenticate(NOW, &token).unwrap().claims["iss"], evil);
    // And good's key for good's.
    let token = sign(Algorithm::RS256, &rsa(), Some("rsa-1"), &as_good);
    assert_eq!(a.authenticate(NOW, &token).unwrap().id, "admin");

    // Same rules for keys set at run time.
    let mut b = with_jwt(json!({}));
    b.set_jwks(good, &json!({ "keys": [jwk("rsa-1")] }))
        .unwrap();
    b.set_jwks(evil, &json!({ "keys": [rsa2_jwk("rsa-1")] }))
        .unwrap();
    let token = sign(Algorithm::RS256, &rsa2(), Some("rsa-1"), &as_good);
    assert_eq!(b.authenticate(NOW, &token), Err(AuthError::BadSignature));
}

#[test]
fn static_issuer_binding_is_enforced() {
    let a = with_jwt(json!({
        "keys": [{ "issuer": "https://a", "algorithm": "ES256", "publicKeyPem": EC_PUBLIC }]
    }));
    let ok = sign(
        Algorithm::ES256,
        &ec(),
        None,
        &claims(json!({ "iss": "https://a" })),
    );
    assert!(a.authenticate(NOW, &ok).is_ok());
    let other = sign(
        Algorithm::ES256,
        &ec(),
        None,
        &claims(json!({ "iss": "https://b" })),
    );
    assert!(matches!(
        a.authenticate(NOW, &other),
        Err(AuthError::UnknownKey { .. })
    ));
    let none = sign(Algorithm::ES256, &ec(), None, &claims(json!({})));
    assert!(matches!(
        a.authenticate(NOW, &none),
        Err(AuthError::UnknownKey { .. })
    ));
    let bad_type = sign(
        Algorithm::ES256,
        &ec(),
        None,
        &claims(json!({ "iss": ["https://a"] })),
    );
    assert!(matches!(
        a.authenticate(NOW, &bad_type),
        Err(AuthError::Malformed(_))
    ));
}

#[test]
fn set_jwks_at_run_time_replaces_the_issuers_keys() {
    let mut a = with_jwt(json!({ "secret": SECRET }));
    let c = claims(json!({ "iss": IDP }));
    let rs = sign(Algorithm::RS256, &rsa(), Some("rsa-1"), &c);
    assert_eq!(
        a.authenticate(NOW, &rs),
        Err(AuthError::UnsupportedAlgorithm("RS256".into()))
    );

    assert_eq!(a.set_jwks(IDP, &jwks()), Ok(3));
    assert!(a.authenticate(NOW, &rs).is_ok());
    let ed_token = sign(Algorithm::EdDSA, &ed(), Some("ed-1"), &c);
    assert!(a.authenticate(NOW, &ed_token).is_ok());

    // A bad document is refused and the old keys stay.
    let mut broken = jwks();
    broken["keys"][0]["n"] = json!("not base64!");
    let err = a.set_jwks(IDP, &broken).unwrap_err();
    assert!(
        matches!(err, AuthError::InvalidJwks(ref m) if m.contains("keys[0]")),
        "{err}"
    );
    assert_eq!(err.reason(), "invalid_jwks");
    for bad in [
        json!({}),
        json!([]),
        json!({ "keys": [] }),
        json!({ "keys": "x" }),
    ] {
        assert!(
            matches!(a.set_jwks(IDP, &bad), Err(AuthError::InvalidJwks(_))),
            "{bad}"
        );
    }
    assert!(a.authenticate(NOW, &rs).is_ok());

    // A new document replaces them; static keys remain.
    assert_eq!(
        a.set_jwks(IDP, &json!({ "keys": [rsa2_jwk("rsa-2")] })),
        Ok(1)
    );
    assert!(matches!(
        a.authenticate(NOW, &rs),
        Err(AuthError::UnknownKey { .. })
    ));
    let rs2 = sign(Algorithm::RS256, &rsa2(), Some("rsa-2"), &c);
    assert!(a.authenticate(NOW, &rs2).is_ok());
    assert!(a.authenticate(NOW, &hmac(Algorithm::HS256, &c)).is_ok());

    assert_eq!(a.remove_jwks(IDP), 1);
    assert_eq!(
        a.authenticate(NOW, &rs2),
        Err(AuthError::UnsupportedAlgorithm("RS256".into()))
    );
}

#[test]
fn set_jwks_checks_the_issuer() {
    let mut a = with_jwt(json!({ "issuers": [IDP] }));
    assert!(!a.accepts_jwt());
    assert!(matches!(
        a.set_jwks("https://other", &jwks()),
        Err(AuthError::InvalidJwks(_))
    ));
    assert!(matches!(
        a.set_jwks("", &jwks()),
        Err(AuthError::InvalidJwks(_))
    ));
    assert_eq!(a.set_jwks(IDP, &jwks()), Ok(3));
    assert!(a.accepts_jwt());

    let mut no_jwt = try_auth(json!({})).unwrap();
    assert_eq!(
        no_jwt.set_jwks(IDP, &jwks()),
        Err(AuthError::JwtNotConfigured)
    );
}

#[test]
fn kidless_jwk_is_usable_only_as_the_issuers_single_key_for_its_alg() {
    let mut lone = jwk("rsa-1");
    lone.as_object_mut().unwrap().remove("kid");
    let mut a = with_jwt(json!({}));
    assert_eq!(
        a.set_jwks(IDP, &json!({ "keys": [lone.clone(), jwk("ec-1")] })),
        Ok(2)
    );
    let c = claims(json!({ "iss": IDP }));
    assert!(a
        .authenticate(NOW, &sign(Algorithm::RS256, &rsa(), None, &c))
        .is_ok());
    assert!(a
        .authenticate(NOW, &sign(Algorithm::RS256, &rsa(), Some("x"), &c))
        .is_ok());

    let err = a
        .set_jwks(IDP, &json!({ "keys": [lone.clone(), rsa2_jwk("k2")] }))
        .unwrap_err();
    assert!(
        matches!(err, AuthError::InvalidJwks(ref m) if m.contains("kid")),
        "{err}"
    );

    let issues = config_issues(json!({
        "jwt": { "jwks": [{ "issuer": IDP, "jwks": { "keys": [jwk("rsa-1"), lone] } }] }
    }));
    assert_eq!(issues[0].0, "auth.jwt.jwks[0].jwks.keys[1]", "{issues:?}");
}

#[test]
fn jwks_problems_are_reported() {
    let mut private = jwk("rsa-1");
    private["d"] = json!("AQAB");
    let mut wrong_alg = jwk("ec-1");
    wrong_alg["alg"] = json!("ES384");
    let mut bad_point = jwk("ec-1");
    bad_point["y"] = bad_point["x"].clone();
    let mut short_ed = jwk("ed-1");
    short_ed["x"] = json!("AQAB");
    let docs = [
        (
            json!({ "keys": [{ "kty": "oct", "k": "c2VjcmV0" }] }),
            "oct",
        ),
        (json!({ "keys": [private] }), "private"),
        (json!({ "keys": [wrong_alg] }), "does not match curve"),
        (json!({ "keys": [bad_point] }), "not on the curve"),
        (json!({ "keys": [short_ed] }), "32 bytes"),
        (
            json!({ "keys": [{ "kty": "RSA", "alg": "none", "n": "AQAB", "e": "AQAB" }] }),
            "none",
        ),
        (
            json!({ "keys": [{ "kty": "RSA", "n": "AQAB", "e": "AQAB" }] }),
            "2048",
        ),
        (json!({ "keys": [{ "n": "AQAB" }] }), "kty"),
        (json!({ "keys": [5] }), "object"),
    ];
    let mut a = with_jwt(json!({}));
    for (doc, needle) in docs {
        match a.set_jwks(IDP, &doc) {
            Err(AuthError::InvalidJwks(msg)) => assert!(msg.contains(needle), "{needle}: {msg}"),
            other => panic!("{needle}: {other:?}"),
        }
    }
    // Unsupported algorithms and curves are skipped, not fatal.
    let doc = json!({ "keys": [
        { "kty": "EC", "crv": "P-521", "x": "AA", "y": "AA" },
        { "kty": "OKP", "crv": "X25519", "x": "AA" },
        { "kty": "RSA", "alg": "RSA-OAEP", "n": "AA", "e": "AQAB" },
        { "kty": "RSA", "key_ops": ["encrypt"], "n": "AA", "e": "AQAB" },
        jwk("ec-1")
    ]});
    assert_eq!(a.set_jwks(IDP, &doc), Ok(1));
}
