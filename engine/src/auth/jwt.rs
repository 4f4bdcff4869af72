//! JWT verification: key selection by issuer, `kid` and algorithm, signature and
//! `iss`/`aud` checks through `jsonwebtoken`, and time checks against the host's `now`
//! (the engine never reads a clock, so `jsonwebtoken`'s own `exp`/`nbf` checks are off).

use std::collections::{BTreeMap, BTreeSet, HashSet};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::de::IgnoredAny;
use serde_json::{Map, Value};

use super::claims::ClaimNames;
use super::keys::{self, alg_name, sanitize, VerifyKey};
use super::AuthError;
use crate::config::{JwtConfig, OidcConfig};
use crate::error::ConfigIssue;
use crate::types::{Millis, User};

/// Longest token the engine looks at (bytes). Real tokens are far shorter.
pub(crate) const MAX_TOKEN_LEN: usize = 32 * 1024;

/// The JWT half of the authenticator.
#[derive(Debug, Clone)]
pub(crate) struct JwtVerifier {
    issuers: Vec<String>,
    audience: Vec<String>,
    leeway_seconds: u64,
    require_exp: bool,
    claims: ClaimNames,
    /// `secret` shorthand keys and `keys` entries.
    static_keys: Vec<VerifyKey>,
    /// JWKS keys by issuer (config documents, replaced at run time by `set_jwks`).
    jwks: BTreeMap<String, Vec<VerifyKey>>,
    /// Keys fetched from the issuers' URLs (`jwks[].url`, `auth.oidc`), by issuer.
    remote: BTreeMap<String, Vec<VerifyKey>>,
    /// Issuers with a remote key source (their keys may not be loaded yet).
    remote_issuers: BTreeSet<String>,
    /// Per-issuer accepted audiences (`auth.oidc[].audience`), replacing `audience`.
    issuer_audience: BTreeMap<String, Vec<String>>,
}

/// A verified token: its user and its `exp` (seconds), if any.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Verified {
    pub(crate) user: User,
    pub(crate) exp: Option<i64>,
}

/// The `iss` of a JWT-shaped token, read without verification (to pick a key source).
pub(crate) fn unverified_issuer(token: &str) -> Option<String> {
    let payload = token.split('.').nth(1)?;
    match segment_json(payload)? {
        Value::Object(map) => map.get("iss")?.as_str().map(str::to_string),
        _ => None,
    }
}

/// Whether `token` looks like a compact JWS: three base64url segments, the first two
/// non-empty (the signature may be empty so that `alg: none` tokens get a clear error).
pub(crate) fn has_jwt_shape(token: &str) -> bool {
    let b64url = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    let mut parts = token.split('.');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(h), Some(p), Some(s), None) => {
            !h.is_empty() && !p.is_empty() && b64url(h) && b64url(p) && b64url(s)
        }
        _ => false,
    }
}

/// Decode one base64url segment and parse it as JSON.
fn segment_json(segment: &str) -> Option<Value> {
    let bytes = URL_SAFE_NO_PAD.decode(segment).ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn malformed(msg: &str) -> AuthError {
    AuthError::Malformed(msg.to_string())
}

/// A NumericDate claim as whole seconds (fractions are floored). `Ok(None)` when absent.
fn numeric_date(claims: &Map<String, Value>, name: &str) -> Result<Option<i128>, AuthError> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => {
            if let Some(i) = n.as_i64() {
                Ok(Some(i128::from(i)))
            } else if let Some(u) = n.as_u64() {
                Ok(Some(i128::from(u)))
            } else {
                match n.as_f64() {
                    // `as` saturates: absurd dates clamp to the i64 range.
                    Some(f) if f.is_finite() => Ok(Some(i128::from(f.floor() as i64))),
                    _ => Err(AuthError::Malformed(format!(
                        "`{name}` must be a number of seconds since the Unix epoch"
                    ))),
                }
            }
        }
        Some(_) => Err(AuthError::Malformed(format!(
            "`{name}` must be a number of seconds since the Unix epoch"
        ))),
    }
}

impl JwtVerifier {
    /// Build from config, pushing every problem (with its `auth.jwt...` path) to `issues`.
    pub(crate) fn from_config(
        cfg: &JwtConfig,
        oidc: &[OidcConfig],
        issues: &mut Vec<ConfigIssue>,
    ) -> Self {
        let mut issue = |path: String, problem: String| issues.push(ConfigIssue { path, problem });
        let mut static_keys = Vec::new();

        for (name, value) in [
            ("idClaim", &cfg.id_claim),
            ("roleClaim", &cfg.role_claim),
            ("scopesClaim", &cfg.scopes_claim),
        ] {
            if value.is_empty() {
                issue(format!("auth.jwt.{name}"), "must not be empty".into());
            }
        }
        for (i, iss) in cfg.issuers.iter().enumerate() {
            if iss.is_empty() {
                issue(format!("auth.jwt.issuers[{i}]"), "must not be empty".into());
            }
        }
        for (i, aud) in cfg.audience.iter().enumerate() {
            if aud.is_empty() {
                issue(
                    format!("auth.jwt.audience[{i}]"),
                    "must not be empty".into(),
                );
            }
        }
        let issuer_not_accepted = |iss: &str| {
            (!cfg.issuers.is_empty() && !cfg.issuers.iter().any(|i| i == iss)).then(|| {
                format!(
                    "issuer `{}` is not listed in `auth.jwt.issuers`, so its tokens would \
                     always be refused; add it there",
                    sanitize(iss)
                )
            })
        };

        // `secret` shorthand: one HMAC key (no kid, no issuer) per listed algorithm.
        let mut secret_algs: Vec<Algorithm> = Vec::new();
        for (i, name) in cfg.algorithms.iter().enumerate() {
            let path = format!("auth.jwt.algorithms[{i}]");
            match keys::parse_algorithm(name) {
                Err(problem) => issue(path, problem),
                Ok(alg)
                    if cfg.secret.is_some()
                        && alg.family() != jsonwebtoken::AlgorithmFamily::Hmac =>
                {
                    issue(
                        path,
                        format!(
                            "`secret` is an HMAC key, so `algorithms` may only list HS256, \
                             HS384 or HS512; configure {} keys under `auth.jwt.keys` with \
                             `publicKeyPem`",
                            alg_name(alg)
                        ),
                    );
                }
                Ok(alg) => {
                    if !secret_algs.contains(&alg) {
                        secret_algs.push(alg);
                    }
                }
            }
        }
        if let Some(secret) = &cfg.secret {
            if secret.is_empty() {
                issue("auth.jwt.secret".into(), "must not be empty".into());
            } else if cfg.algorithms.is_empty() {
                issue(
                    "auth.jwt.algorithms".into(),
                    "list at least one of HS256, HS384, HS512 for `secret`".into(),
                );
            } else {
                for &alg in &secret_algs {
                    static_keys.push(VerifyKey {
                        alg,
                        kid: None,
                        issuer: None,
                        key: DecodingKey::from_secret(secret.as_bytes()),
                    });
                }
            }
        }

        // Explicit keys: exactly one algorithm each.
        for (i, k) in cfg.keys.iter().enumerate() {
            let path = |field: &str| format!("auth.jwt.keys[{i}].{field}");
            let mut ok = true;
            if k.kid.as_deref() == Some("") {
                issue(path("kid"), "must not be empty (omit it instead)".into());
                ok = false;
            }
            match k.issuer.as_deref() {
                Some("") => {
                    issue(path("issuer"), "must not be empty (omit it instead)".into());
                    ok = false;
                }
                Some(iss) => {
                    if let Some(problem) = issuer_not_accepted(iss) {
                        issue(path("issuer"), problem);
                        ok = false;
                    }
                }
                None => {}
            }
            let alg = match keys::parse_algorithm(&k.algorithm) {
                Ok(alg) => alg,
                Err(problem) => {
                    issue(path("algorithm"), problem);
                    continue;
                }
            };
            let name = alg_name(alg);
            let key = if alg.family() == jsonwebtoken::AlgorithmFamily::Hmac {
                if k.public_key_pem.is_some() {
                    issue(
                        path("publicKeyPem"),
                        format!("an {name} key needs `secret`, not `publicKeyPem`"),
                    );
                }
                match k.secret.as_deref() {
                    None => {
                        issue(path("secret"), format!("`secret` is required for {name}"));
                        None
                    }
                    Some("") => {
                        issue(path("secret"), "must not be empty".into());
                        None
                    }
                    Some(secret) => Some(DecodingKey::from_secret(secret.as_bytes())),
                }
            } else {
                if k.secret.is_some() {
                    issue(
                        path("secret"),
                        format!("an {name} key needs `publicKeyPem`, not `secret`"),
                    );
                }
                match k.public_key_pem.as_deref() {
                    None => {
                        issue(
                            path("publicKeyPem"),
                            format!("`publicKeyPem` is required for {name}"),
                        );
                        None
                    }
                    Some(pem) => match keys::key_from_pem(alg, pem) {
                        Ok(key) => Some(key),
                        Err(problem) => {
                            issue(path("publicKeyPem"), problem);
                            None
                        }
                    },
                }
            };
            if let (Some(key), true) = (key, ok) {
                static_keys.push(VerifyKey {
                    alg,
                    kid: k.kid.clone(),
                    issuer: k.issuer.clone(),
                    key,
                });
            }
        }

        // JWKS documents, merged per issuer; URLs are remote sources.
        let mut remote_issuers = BTreeSet::new();
        let mut issuer_audience = BTreeMap::new();
        for (i, o) in oidc.iter().enumerate() {
            if let Some(problem) = issuer_not_accepted(&o.issuer) {
                issue(format!("auth.oidc[{i}].issuer"), problem);
            }
            if !o.issuer.is_empty() {
                remote_issuers.insert(o.issuer.clone());
                if !o.audience.is_empty() {
                    issuer_audience.insert(o.issuer.clone(), o.audience.clone());
                }
            }
        }
        let mut jwks: BTreeMap<String, Vec<VerifyKey>> = BTreeMap::new();
        let mut jwks_paths: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (i, set) in cfg.jwks.iter().enumerate() {
            if set.issuer.is_empty() {
                issue(
                    format!("auth.jwt.jwks[{i}].issuer"),
                    "is required: JWKS keys are looked up by issuer and kid".into(),
                );
                continue;
            }
            if let Some(problem) = issuer_not_accepted(&set.issuer) {
                issue(format!("auth.jwt.jwks[{i}].issuer"), problem);
            }
            let doc = match (&set.jwks, &set.url) {
                (Some(doc), None) => doc,
                (None, Some(_)) => {
                    // Fetched by the host; the URL is checked with the key sources.
                    remote_issuers.insert(set.issuer.clone());
                    continue;
                }
                _ => {
                    issue(
                        format!("auth.jwt.jwks[{i}]"),
                        "give exactly one of `jwks` (an inline document) and `url`".into(),
                    );
                    continue;
                }
            };
            match keys::keys_from_jwks(doc, &set.issuer) {
                Ok(found) => {
                    for (j, key) in found {
                        jwks_paths
                            .entry(set.issuer.clone())
                            .or_default()
                            .push(format!("auth.jwt.jwks[{i}].jwks.keys[{j}]"));
                        jwks.entry(set.issuer.clone()).or_default().push(key);
                    }
                }
                Err(problems) => {
                    for (sub, problem) in problems {
                        let path = if sub.is_empty() {
                            format!("auth.jwt.jwks[{i}].jwks")
                        } else {
                            format!("auth.jwt.jwks[{i}].jwks.{sub}")
                        };
                        issue(path, problem);
                    }
                }
            }
        }
        for (issuer, list) in &jwks {
            let refs: Vec<&VerifyKey> = list.iter().collect();
            for pos in keys::ambiguous_kidless(&refs) {
                let path = jwks_paths
                    .get(issuer)
                    .and_then(|p| p.get(pos))
                    .cloned()
                    .unwrap_or_else(|| "auth.jwt.jwks".into());
                issue(path, keys::ambiguous_kidless_problem(&list[pos]));
            }
        }

        Self {
            issuers: cfg.issuers.clone(),
            audience: cfg.audience.clone(),
            leeway_seconds: cfg.leeway_seconds,
            require_exp: cfg.require_exp,
            claims: ClaimNames {
                id: cfg.id_claim.clone(),
                role: cfg.role_claim.clone(),
                scopes: cfg.scopes_claim.clone(),
            },
            static_keys,
            jwks,
            remote: BTreeMap::new(),
            remote_issuers,
            issuer_audience,
        }
    }

    /// Whether any verification key is installed, or will be fetched.
    pub(crate) fn has_keys(&self) -> bool {
        !self.static_keys.is_empty()
            || self.jwks.values().any(|k| !k.is_empty())
            || !self.remote_issuers.is_empty()
    }

    /// Replace the fetched keys of `issuer` with the JWKS `doc`; the old keys stay on
    /// error. Returns the number of keys installed.
    pub(crate) fn set_remote_jwks(&mut self, issuer: &str, doc: &Value) -> Result<usize, String> {
        let list = parse_jwks(doc, issuer).map_err(|e| match e {
            AuthError::InvalidJwks(why) => why,
            other => other.to_string(),
        })?;
        let count = list.len();
        self.remote.insert(issuer.to_string(), list);
        Ok(count)
    }

    /// Number of fetched keys of `issuer`.
    pub(crate) fn remote_key_count(&self, issuer: &str) -> usize {
        self.remote.get(issuer).map_or(0, Vec::len)
    }

    /// Replace the JWKS keys of `issuer`; the old keys stay on error.
    pub(crate) fn set_jwks(&mut self, issuer: &str, doc: &Value) -> Result<usize, AuthError> {
        if issuer.is_empty() {
            return Err(AuthError::InvalidJwks(
                "the issuer must not be empty".into(),
            ));
        }
        if !self.issuers.is_empty() && !self.issuers.iter().any(|i| i == issuer) {
            return Err(AuthError::InvalidJwks(format!(
                "issuer `{}` is not listed in `auth.jwt.issuers`; its tokens would always be refused",
                sanitize(issuer)
            )));
        }
        let list = parse_jwks(doc, issuer)?;
        let count = list.len();
        self.jwks.insert(issuer.to_string(), list);
        Ok(count)
    }

    /// Drop the JWKS keys of `issuer`; returns how many were removed.
    pub(crate) fn remove_jwks(&mut self, issuer: &str) -> usize {
        self.jwks.remove(issuer).map_or(0, |k| k.len())
    }

    fn any_key_with_alg(&self, alg: Algorithm) -> bool {
        self.static_keys.iter().any(|k| k.alg == alg)
            || self.jwks.values().flatten().any(|k| k.alg == alg)
            || self.remote.values().flatten().any(|k| k.alg == alg)
    }

    /// The keys that may verify a token with this `alg`, `kid` and `iss`.
    ///
    /// A key is a candidate when its algorithm equals `alg` exactly, its issuer binding
    /// (if any) equals `iss`, and its `kid` (if any) equals the token's. A token with a
    /// `kid` uses the keys with that `kid`, else the keys without one; a token without
    /// `kid` uses the keys without one, else the single matching key if there is exactly one.
    fn candidates(&self, alg: Algorithm, kid: Option<&str>, iss: Option<&str>) -> Vec<&VerifyKey> {
        let issuer_keys = iss
            .and_then(|i| self.jwks.get(i))
            .map_or(&[][..], Vec::as_slice);
        let fetched = iss
            .and_then(|i| self.remote.get(i))
            .map_or(&[][..], Vec::as_slice);
        let pool: Vec<&VerifyKey> = self
            .static_keys
            .iter()
            .chain(issuer_keys)
            .chain(fetched)
            .filter(|k| k.alg == alg)
            .filter(|k| k.issuer.is_none() || (iss.is_some() && k.issuer.as_deref() == iss))
            .collect();
        match kid {
            Some(kid) => {
                let exact: Vec<&VerifyKey> = pool
                    .iter()
                    .copied()
                    .filter(|k| k.kid.as_deref() == Some(kid))
                    .collect();
                if exact.is_empty() {
                    pool.into_iter().filter(|k| k.kid.is_none()).collect()
                } else {
                    exact
                }
            }
            None => {
                let kidless: Vec<&VerifyKey> =
                    pool.iter().copied().filter(|k| k.kid.is_none()).collect();
                if !kidless.is_empty() {
                    kidless
                } else if pool.len() == 1 {
                    pool
                } else {
                    Vec::new()
                }
            }
        }
    }

    fn validation(&self, alg: Algorithm, iss: Option<&str>) -> Validation {
        let audience = iss
            .and_then(|i| self.issuer_audience.get(i))
            .unwrap_or(&self.audience);
        let mut v = Validation::new(alg);
        // Time is checked against the host's `now`; jsonwebtoken would read the clock.
        v.validate_exp = false;
        v.validate_nbf = false;
        v.leeway = 0;
        v.required_spec_claims = HashSet::new();
        if audience.is_empty() {
            v.validate_aud = false;
        } else {
            v.set_audience(audience);
            v.required_spec_claims.insert("aud".into());
        }
        if !self.issuers.is_empty() {
            v.set_issuer(&self.issuers);
            v.required_spec_claims.insert("iss".into());
        }
        v
    }

    /// Verify `token` (already known to have JWT shape) at `now`.
    pub(crate) fn verify(&self, now: Millis, token: &str) -> Result<Verified, AuthError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(malformed("the token is too long"));
        }
        let mut parts = token.split('.');
        let (Some(header_b64), Some(payload_b64), Some(_), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(malformed("a JWT has three dot-separated parts"));
        };

        // Header: refuse `none` and unknown algorithms before anything else.
        let header_json = segment_json(header_b64)
            .ok_or_else(|| malformed("the header is not base64url-encoded JSON"))?;
        let header_obj = header_json
            .as_object()
            .ok_or_else(|| malformed("the header is not a JSON object"))?;
        let alg_text = header_obj
            .get("alg")
            .and_then(Value::as_str)
            .ok_or_else(|| malformed("the header has no `alg`"))?;
        if alg_text.eq_ignore_ascii_case("none") {
            return Err(AuthError::UnsupportedAlgorithm("none".into()));
        }
        if alg_text.parse::<Algorithm>().is_err() {
            return Err(AuthError::UnsupportedAlgorithm(sanitize(alg_text)));
        }
        if header_obj.contains_key("crit") {
            return Err(malformed(
                "critical header extensions (`crit`) are not supported",
            ));
        }
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| malformed("the header is not a valid JWT header"))?;
        let alg = header.alg;
        let kid = header.kid.as_deref();

        // Payload, read unverified only to pick the issuer's keys.
        let payload = match segment_json(payload_b64) {
            Some(Value::Object(map)) => map,
            Some(_) => return Err(malformed("the payload is not a JSON object")),
            None => return Err(malformed("the payload is not base64url-encoded JSON")),
        };
        let iss = match payload.get("iss") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.as_str()),
            Some(_) => return Err(malformed("`iss` must be a string")),
        };

        let remote = iss.is_some_and(|i| self.remote_issuers.contains(i))
            && alg.family() != jsonwebtoken::AlgorithmFamily::Hmac;
        if !self.any_key_with_alg(alg) && !remote {
            return Err(AuthError::UnsupportedAlgorithm(alg_name(alg).into()));
        }
        let candidates = self.candidates(alg, kid, iss);
        if candidates.is_empty() {
            return Err(AuthError::UnknownKey {
                kid: kid.map(sanitize),
                issuer: iss.map(sanitize),
            });
        }
        let validation = self.validation(alg, iss);
        let mut verified = false;
        for key in candidates {
            match jsonwebtoken::decode::<IgnoredAny>(token, &key.key, &validation) {
                Ok(_) => {
                    verified = true;
                    break;
                }
                Err(e) => match e.kind() {
                    // Not this key: try the next candidate.
                    ErrorKind::InvalidSignature
                    | ErrorKind::InvalidKeyFormat
                    | ErrorKind::InvalidEcdsaKey
                    | ErrorKind::InvalidEddsaKey
                    | ErrorKind::InvalidRsaKey(_) => {}
                    other => return Err(map_jwt_error(other, alg)),
                },
            }
        }
        if !verified {
            return Err(AuthError::BadSignature);
        }

        let exp = self.check_time(now, &payload)?;
        let user = self.claims.user(payload)?;
        Ok(Verified { user, exp })
    }

    /// Check `exp`/`nbf` at `now`; returns `exp` (seconds, clamped to the i64 range).
    fn check_time(
        &self,
        now: Millis,
        claims: &Map<String, Value>,
    ) -> Result<Option<i64>, AuthError> {
        let now_s = i128::from(now.0 / 1000);
        let leeway = i128::from(self.leeway_seconds);
        let exp = numeric_date(claims, "exp")?;
        match exp {
            None if self.require_exp => return Err(AuthError::MissingClaim("exp".into())),
            Some(exp) if now_s > exp.saturating_add(leeway) => return Err(AuthError::Expired),
            _ => {}
        }
        if let Some(nbf) = numeric_date(claims, "nbf")? {
            if now_s.saturating_add(leeway) < nbf {
                return Err(AuthError::NotYetValid);
            }
        }
        Ok(exp.map(|e| e.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64))
    }
}

/// Parse a JWKS document for `issuer`, refusing ambiguous kid-less keys.
fn parse_jwks(doc: &Value, issuer: &str) -> Result<Vec<VerifyKey>, AuthError> {
    let found = keys::keys_from_jwks(doc, issuer).map_err(|problems| {
        let text: Vec<String> = problems
            .into_iter()
            .map(|(path, problem)| {
                if path.is_empty() {
                    problem
                } else {
                    format!("{path}: {problem}")
                }
            })
            .collect();
        AuthError::InvalidJwks(text.join("; "))
    })?;
    let (indices, list): (Vec<usize>, Vec<VerifyKey>) = found.into_iter().unzip();
    let refs: Vec<&VerifyKey> = list.iter().collect();
    if let Some(&pos) = keys::ambiguous_kidless(&refs).first() {
        return Err(AuthError::InvalidJwks(format!(
            "keys[{}]: {}",
            indices.get(pos).copied().unwrap_or_default(),
            keys::ambiguous_kidless_problem(&list[pos])
        )));
    }
    Ok(list)
}

/// Map a `jsonwebtoken` error (after key selection) to an [`AuthError`].
fn map_jwt_error(kind: &ErrorKind, alg: Algorithm) -> AuthError {
    match kind {
        ErrorKind::InvalidIssuer => AuthError::WrongIssuer,
        ErrorKind::InvalidAudience => AuthError::WrongAudience,
        ErrorKind::MissingRequiredClaim(claim) => AuthError::MissingClaim(sanitize(claim)),
        ErrorKind::InvalidAlgorithm
        | ErrorKind::MissingAlgorithm
        | ErrorKind::UnsupportedAlgorithm
        | ErrorKind::InvalidAlgorithmName => AuthError::UnsupportedAlgorithm(alg_name(alg).into()),
        ErrorKind::InvalidToken
        | ErrorKind::Base64(_)
        | ErrorKind::Json(_)
        | ErrorKind::Utf8(_)
        | ErrorKind::InvalidClaimFormat(_) => {
            malformed("the token is not a well-formed JWT (bad base64url or JSON)")
        }
        // Anything else means the token did not verify.
        _ => AuthError::BadSignature,
    }
}
