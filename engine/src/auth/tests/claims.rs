//! Claims: times, issuer and audience, the user built from claims, API keys.

use super::*;

// ---------------------------------------------------------------- time

#[test]
fn expiry_respects_the_leeway() {
    let a = secret_auth(); // leeway 30 s
    let at =
        |exp: i64| a.authenticate(NOW, &hmac(Algorithm::HS256, &claims(json!({ "exp": exp }))));
    assert!(at(NOW_S + 1).is_ok());
    assert!(at(NOW_S - 10).is_ok(), "within leeway");
    assert!(at(NOW_S - 30).is_ok(), "at the leeway edge");
    let err = at(NOW_S - 31).unwrap_err();
    assert_eq!(err, AuthError::Expired);
    assert_eq!(err.reason(), "token_expired");
    assert_eq!(at(0), Err(AuthError::Expired));
    assert_eq!(at(-5), Err(AuthError::Expired));

    let strict = with_jwt(json!({ "secret": SECRET, "leewaySeconds": 0 }));
    let token = hmac(Algorithm::HS256, &claims(json!({ "exp": NOW_S - 1 })));
    assert_eq!(strict.authenticate(NOW, &token), Err(AuthError::Expired));
    // Fractional and huge NumericDates.
    let token = hmac(
        Algorithm::HS256,
        &claims(json!({ "exp": (NOW_S as f64) + 0.5 })),
    );
    assert!(strict.authenticate(NOW, &token).is_ok());
    let token = hmac(Algorithm::HS256, &claims(json!({ "exp": u64::MAX })));
    assert!(strict.authenticate(NOW, &token).is_ok());
    for a in [&a, &strict] {
        let token = hmac(Algorithm::HS256, &claims(json!({ "exp": 1e300 })));
        assert!(a.authenticate(NOW, &token).is_ok());
        let token = hmac(Algorithm::HS256, &claims(json!({ "exp": -1e300 })));
        assert_eq!(a.authenticate(NOW, &token), Err(AuthError::Expired));
        let token = hmac(Algorithm::HS256, &claims(json!({ "nbf": 1e300 })));
        assert_eq!(a.authenticate(NOW, &token), Err(AuthError::NotYetValid));
    }
}

#[test]
fn not_before_in_the_future_is_refused() {
    let a = secret_auth();
    let nbf =
        |nbf: i64| a.authenticate(NOW, &hmac(Algorithm::HS256, &claims(json!({ "nbf": nbf }))));
    assert!(nbf(NOW_S - 100).is_ok());
    assert!(nbf(NOW_S + 30).is_ok(), "within leeway");
    let err = nbf(NOW_S + 31).unwrap_err();
    assert_eq!(err, AuthError::NotYetValid);
    assert_eq!(err.reason(), "not_yet_valid");
}

#[test]
fn missing_exp_is_refused_when_required() {
    let no_exp = claims(json!({ "exp": null }));
    let a = secret_auth();
    let err = a
        .authenticate(NOW, &hmac(Algorithm::HS256, &no_exp))
        .unwrap_err();
    assert_eq!(err, AuthError::MissingClaim("exp".into()));
    assert_eq!(err.reason(), "missing_claim");

    let lax = with_jwt(json!({ "secret": SECRET, "requireExp": false }));
    assert!(lax
        .authenticate(NOW, &hmac(Algorithm::HS256, &no_exp))
        .is_ok());
}

#[test]
fn non_numeric_times_are_malformed() {
    let a = secret_auth();
    for c in [
        claims(json!({ "exp": "tomorrow" })),
        claims(json!({ "nbf": [1] })),
    ] {
        let err = a
            .authenticate(NOW, &hmac(Algorithm::HS256, &c))
            .unwrap_err();
        assert!(matches!(err, AuthError::Malformed(_)), "{err:?}");
        assert_eq!(err.reason(), "malformed_token");
    }
}

// ---------------------------------------------------------------- iss / aud

#[test]
fn audience_is_checked_when_configured() {
    let a = with_jwt(json!({ "secret": SECRET, "audience": ["api", "ws"] }));
    let t =
        |aud: Value| a.authenticate(NOW, &hmac(Algorithm::HS256, &claims(json!({ "aud": aud }))));
    assert!(t(json!("ws")).is_ok());
    assert!(t(json!(["other", "api"])).is_ok());
    let err = t(json!("other")).unwrap_err();
    assert_eq!(err, AuthError::WrongAudience);
    assert_eq!(err.reason(), "wrong_audience");
    assert_eq!(t(json!(["x", "y"])), Err(AuthError::WrongAudience));
    assert_eq!(t(Value::Null), Err(AuthError::MissingClaim("aud".into())));

    // Not configured: aud is ignored.
    let b = secret_auth();
    let token = hmac(Algorithm::HS256, &claims(json!({ "aud": "whatever" })));
    assert!(b.authenticate(NOW, &token).is_ok());
}

#[test]
fn issuer_is_checked_when_configured() {
    let a = with_jwt(json!({ "secret": SECRET, "issuers": ["https://a", "https://b"] }));
    let t =
        |iss: Value| a.authenticate(NOW, &hmac(Algorithm::HS256, &claims(json!({ "iss": iss }))));
    assert!(t(json!("https://b")).is_ok());
    let err = t(json!("https://evil")).unwrap_err();
    assert_eq!(err, AuthError::WrongIssuer);
    assert_eq!(err.reason(), "wrong_issuer");
    assert_eq!(t(Value::Null), Err(AuthError::MissingClaim("iss".into())));
}

// ---------------------------------------------------------------- user

#[test]
fn user_is_built_from_claims() {
    let a = secret_auth();
    let user = a
        .authenticate(
            NOW,
            &hmac(
                Algorithm::HS256,
                &claims(json!({ "role": "admin", "scope": "read  write", "tenant": "t1" })),
            ),
        )
        .unwrap();
    assert_eq!(user.id, "u1");
    assert_eq!(user.role.as_deref(), Some("admin"));
    assert_eq!(user.scopes, vec!["read", "write"]);
    assert_eq!(user.claims["tenant"], "t1");
    assert_eq!(user.claims["exp"], NOW_S + 600);

    let user = a
        .authenticate(
            NOW,
            &hmac(Algorithm::HS256, &claims(json!({ "scope": ["a", "b"] }))),
        )
        .unwrap();
    assert_eq!(user.scopes, vec!["a", "b"]);
    assert_eq!(user.role, None);

    let user = a
        .authenticate(
            NOW,
            &hmac(Algorithm::HS256, &claims(json!({ "scopes": ["c"] }))),
        )
        .unwrap();
    assert_eq!(user.scopes, vec!["c"]);

    let err = a
        .authenticate(
            NOW,
            &hmac(Algorithm::HS256, &claims(json!({ "scope": [1] }))),
        )
        .unwrap_err();
    assert!(matches!(err, AuthError::Malformed(_)));
}

#[test]
fn id_falls_back_to_the_id_claim() {
    let a = secret_auth();
    let user = a
        .authenticate(
            NOW,
            &hmac(
                Algorithm::HS256,
                &claims(json!({ "sub": null, "id": "u2" })),
            ),
        )
        .unwrap();
    assert_eq!(user.id, "u2");
    for c in [
        claims(json!({ "sub": null })),
        claims(json!({ "sub": 42 })),
        claims(json!({ "sub": "" })),
    ] {
        assert_eq!(
            a.authenticate(NOW, &hmac(Algorithm::HS256, &c)),
            Err(AuthError::MissingClaim("sub".into()))
        );
    }
}

#[test]
fn custom_claim_names_are_used() {
    let a = with_jwt(json!({
        "secret": SECRET, "idClaim": "uid", "roleClaim": "r", "scopesClaim": "scp"
    }));
    let user = a
        .authenticate(
            NOW,
            &hmac(
                Algorithm::HS256,
                &claims(json!({ "uid": "x", "r": "ops", "scp": "a b" })),
            ),
        )
        .unwrap();
    assert_eq!((user.id.as_str(), user.role.as_deref()), ("x", Some("ops")));
    assert_eq!(user.scopes, vec!["a", "b"]);
}

// ---------------------------------------------------------------- API keys

#[test]
fn api_keys_authenticate_exactly() {
    let a = try_auth(json!({
        "apiKeys": { "sk-123": { "id": "svc", "role": "service", "scopes": ["x"], "team": "core" } }
    }))
    .unwrap();
    let user = a.authenticate(NOW, "sk-123").unwrap();
    assert_eq!(user.id, "svc");
    assert_eq!(user.role.as_deref(), Some("service"));
    assert_eq!(user.scopes, vec!["x"]);
    assert_eq!(user.claims["team"], "core");

    for wrong in ["sk-12", "sk-1234", "SK-123"] {
        let err = a.authenticate(NOW, wrong).unwrap_err();
        assert_eq!(err, AuthError::InvalidToken);
        assert_eq!(err.reason(), "unknown_api_key");
    }
    assert_eq!(a.authenticate(NOW, ""), Err(AuthError::MissingToken));
    // A JWT without `auth.jwt`.
    let err = a
        .authenticate(NOW, &hmac(Algorithm::HS256, &claims(json!({}))))
        .unwrap_err();
    assert_eq!(err, AuthError::JwtNotConfigured);
}

#[test]
fn debug_output_hides_secrets() {
    let a = try_auth(json!({
        "apiKeys": { "sk-very-secret": { "id": "svc" } },
        "jwt": { "secret": SECRET }
    }))
    .unwrap();
    let text = format!("{a:?}");
    assert!(
        !text.contains("sk-very-secret") && !text.contains(SECRET),
        "{text}"
    );
}
