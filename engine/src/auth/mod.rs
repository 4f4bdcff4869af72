//! Connection authentication: credential extraction, API keys and JWT verification.
//!
//! # API keys
//!
//! A token that equals a configured API key (compared in constant time per key)
//! authenticates as that key's user.
//!
//! # JWTs
//!
//! Anything else shaped like a JWT (three base64url segments) is verified with the keys
//! built from `auth.jwt`:
//!
//! * `secret` — one HMAC key per algorithm in `algorithms` (HS256/HS384/HS512), with no
//!   `kid` and no issuer binding. The secret's UTF-8 bytes are the key.
//! * `keys` — explicit keys, each with exactly one algorithm, an optional `kid` and an
//!   optional `issuer` binding.
//! * `jwks` — JWKS documents, each bound to the issuer that published it; replaced at run
//!   time with [`Authenticator::set_jwks`]. A JWK's algorithm is its `alg`, or if absent
//!   follows from its key type (RSA → RS256, EC P-256 → ES256, EC P-384 → ES384, OKP
//!   Ed25519 → EdDSA). Keys with `use` other than `sig`, or for algorithms the engine does
//!   not implement, are skipped. A JWK without `kid` is only allowed when it is the
//!   issuer's one key for its algorithm.
//!
//! Key selection uses the token's issuer **and** `kid` **and** algorithm together:
//!
//! 1. The header `alg` must be a supported algorithm (never `none`), and some key must use
//!    exactly that algorithm. An HS256 token is therefore never checked against an RSA
//!    public key used as an HMAC secret (algorithm confusion).
//! 2. The token's `iss` is read from the payload *before* verification, only to pick
//!    keys: a key bound to an issuer (every JWKS key is) only verifies tokens whose `iss`
//!    equals that issuer; keys without an issuer binding verify tokens from any issuer.
//!    So a `kid` published by one issuer never verifies a token claiming another issuer.
//! 3. A token with a `kid` uses the keys with that `kid`, or failing that the keys without
//!    a `kid`; a key with a different `kid` is never used. A token without `kid` uses the
//!    keys without `kid`, or failing that the one matching key if there is exactly one.
//!
//! The signature and the `iss`/`aud` claims are checked by `jsonwebtoken`; `exp` and `nbf`
//! are checked here against the host's `now` with `leewaySeconds` (the engine never reads
//! a clock).
//!
//! # Keys from URLs
//!
//! `jwks[].url` and `auth.oidc[]` are remote key sources ([`sources`]): the engine asks
//! the host to fetch them and installs what comes back, always bound to the source's
//! issuer. The claims-to-user mapping is in [`claims`].

use std::fmt;

use serde_json::Value;

use crate::config::{ApiKeyUser, AuthConfig};
use crate::error::{ConfigError, ConfigIssue};
use crate::types::{Millis, UpgradeRequest, User};

mod claims;
mod jwt;
mod keys;
pub(crate) mod sources;
#[cfg(test)]
mod tests;

pub(crate) use jwt::unverified_issuer;
use jwt::JwtVerifier;
use keys::sanitize;
pub use sources::{check_fetch_url, DISCOVERY_PATH, MAX_FETCH_BODY};

/// Where a credential was found in the upgrade request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenSource {
    /// `?token=` query parameter.
    Query,
    /// `Authorization: Bearer` header.
    AuthorizationHeader,
    /// `X-API-Key` header.
    ApiKeyHeader,
    /// A `bearer.<token>` entry of `Sec-WebSocket-Protocol`.
    Subprotocol,
}

/// A credential taken from an upgrade request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    /// The raw token (JWT or API key).
    pub token: String,
    /// Where it was found.
    pub source: TokenSource,
}

/// Why authentication failed. [`AuthError::reason`] is a stable machine-readable code;
/// the `Display` text says what to do and never contains secrets or key material.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthError {
    /// No credential in the request.
    MissingToken,
    /// The token is not a configured API key and not shaped like a JWT.
    InvalidToken,
    /// The token looks like a JWT but cannot be parsed (bad base64url/JSON, bad claim types).
    Malformed(String),
    /// The token's `alg` is `none`, unknown, or not used by any configured key.
    UnsupportedAlgorithm(String),
    /// No configured key matches the token's issuer, `kid` and algorithm.
    UnknownKey {
        /// The token's `kid` (shortened), if any.
        kid: Option<String>,
        /// The token's `iss` (shortened), if any.
        issuer: Option<String>,
    },
    /// The signature does not verify with any matching key.
    BadSignature,
    /// `exp` is in the past (beyond the leeway).
    Expired,
    /// `nbf` is in the future (beyond the leeway).
    NotYetValid,
    /// `iss` is not one of `auth.jwt.issuers`.
    WrongIssuer,
    /// `aud` does not contain any of `auth.jwt.audience`.
    WrongAudience,
    /// A required claim is missing (`exp`, `iss`, `aud`, or the user id claim).
    MissingClaim(String),
    /// The token is a JWT but JWTs are not accepted (no `auth.jwt`, or no keys at all).
    JwtNotConfigured,
    /// A JWKS document given to [`Authenticator::set_jwks`] was refused.
    InvalidJwks(String),
}

impl AuthError {
    /// A stable machine-readable reason, e.g. `token_expired`.
    pub fn reason(&self) -> &'static str {
        match self {
            AuthError::MissingToken => "missing_token",
            AuthError::InvalidToken => "unknown_api_key",
            AuthError::Malformed(_) => "malformed_token",
            AuthError::UnsupportedAlgorithm(_) => "algorithm_not_allowed",
            AuthError::UnknownKey { .. } => "unknown_key",
            AuthError::BadSignature => "bad_signature",
            AuthError::Expired => "token_expired",
            AuthError::NotYetValid => "not_yet_valid",
            AuthError::WrongIssuer => "wrong_issuer",
            AuthError::WrongAudience => "wrong_audience",
            AuthError::MissingClaim(_) => "missing_claim",
            AuthError::JwtNotConfigured => "jwt_not_accepted",
            AuthError::InvalidJwks(_) => "invalid_jwks",
        }
    }
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthError::MissingToken => {
                f.write_str("authentication required: no token was provided")
            }
            AuthError::InvalidToken => {
                f.write_str("invalid token: it is neither a known API key nor a JWT")
            }
            AuthError::Malformed(why) => write!(f, "malformed token: {why}"),
            AuthError::UnsupportedAlgorithm(alg) if alg == "none" => {
                f.write_str("unsigned tokens (`alg: none`) are never accepted")
            }
            AuthError::UnsupportedAlgorithm(alg) => {
                write!(f, "tokens signed with `{alg}` are not accepted here")
            }
            AuthError::UnknownKey { kid, issuer } => {
                f.write_str("no configured key matches this token (")?;
                match kid {
                    Some(kid) => write!(f, "kid `{kid}`")?,
                    None => f.write_str("no kid")?,
                }
                match issuer {
                    Some(iss) => write!(f, ", issuer `{iss}`")?,
                    None => f.write_str(", no issuer")?,
                }
                f.write_str("); check the token's `kid` and `iss`")
            }
            AuthError::BadSignature => {
                f.write_str("the token signature is invalid for the configured key")
            }
            AuthError::Expired => f.write_str("the token has expired; obtain a new one"),
            AuthError::NotYetValid => f.write_str(
                "the token is not valid yet (`nbf` is in the future); check the issuer's clock",
            ),
            AuthError::WrongIssuer => {
                f.write_str("the token issuer (`iss`) is not accepted by this server")
            }
            AuthError::WrongAudience => {
                f.write_str("the token audience (`aud`) does not include this server")
            }
            AuthError::MissingClaim(claim) => {
                write!(f, "the token has no `{claim}` claim, which is required")
            }
            AuthError::JwtNotConfigured => f.write_str("this server does not accept JWTs"),
            AuthError::InvalidJwks(why) => {
                write!(f, "invalid JWKS (the previous keys stay in use): {why}")
            }
        }
    }
}

impl std::error::Error for AuthError {}

/// Verifies credentials against the configured API keys and JWT keys.
///
/// `Debug` output shows counts and key ids only, never secrets or API keys.
#[derive(Clone)]
pub struct Authenticator {
    api_keys: Vec<(String, ApiKeyUser)>,
    jwt: Option<JwtVerifier>,
    /// Remote key sources and their refresh state.
    pub(crate) sources: sources::KeySources,
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authenticator")
            .field("api_keys", &self.api_keys.len())
            .field("jwt", &self.jwt)
            .finish()
    }
}

/// Byte-wise equality whose time depends only on the lengths.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

impl Authenticator {
    /// Build from config; every bad key is reported with its field path (`auth.jwt.keys[0]...`).
    pub fn new(config: &AuthConfig) -> Result<Self, ConfigError> {
        #[cfg(test)]
        crate::compile_count::auth();
        let mut issues = Vec::new();
        for (key, user) in &config.api_keys {
            // Paths and messages name the user, never the key itself.
            let who = sanitize(&user.id);
            if key.is_empty() {
                issues.push(ConfigIssue {
                    path: "auth.apiKeys".into(),
                    problem: format!("the API key of user `{who}` is empty"),
                });
            } else if key.trim() != key {
                issues.push(ConfigIssue {
                    path: "auth.apiKeys".into(),
                    problem: format!(
                        "the API key of user `{who}` starts or ends with whitespace, \
                         so no request can present it"
                    ),
                });
            }
            if user.id.is_empty() {
                issues.push(ConfigIssue {
                    path: "auth.apiKeys".into(),
                    problem: "every API key needs a non-empty `id`".into(),
                });
            }
        }
        // `auth.oidc` alone turns JWTs on with the `auth.jwt` defaults.
        let jwt_config = config
            .jwt
            .clone()
            .or_else(|| (!config.oidc.is_empty()).then(crate::config::JwtConfig::default));
        let jwt = jwt_config
            .as_ref()
            .map(|cfg| JwtVerifier::from_config(cfg, &config.oidc, &mut issues));
        let sources = sources::KeySources::from_config(config, &mut issues);
        if !issues.is_empty() {
            return Err(ConfigError { issues });
        }
        Ok(Self {
            api_keys: config
                .api_keys
                .iter()
                .map(|(k, u)| (k.clone(), u.clone()))
                .collect(),
            jwt,
            sources,
        })
    }

    /// Whether JWTs can be accepted at all (`auth.jwt` is set and some key is installed).
    pub fn accepts_jwt(&self) -> bool {
        self.jwt.as_ref().is_some_and(JwtVerifier::has_keys)
    }

    /// Install (or replace) the JWKS of `issuer` at run time. Returns the number of keys loaded.
    ///
    /// The document is `{"keys": [...]}`. Static keys from `auth.jwt.secret` and
    /// `auth.jwt.keys` are unaffected. A document with a bad key, or without any usable
    /// signing key, is refused with [`AuthError::InvalidJwks`] and the issuer's previous
    /// keys stay in place. Fails with [`AuthError::JwtNotConfigured`] when `auth.jwt` is absent.
    pub fn set_jwks(&mut self, issuer: &str, jwks: &Value) -> Result<usize, AuthError> {
        match &mut self.jwt {
            Some(jwt) => jwt.set_jwks(issuer, jwks),
            None => Err(AuthError::JwtNotConfigured),
        }
    }

    /// Remove the JWKS keys of `issuer` (static keys stay). Returns how many were removed.
    pub fn remove_jwks(&mut self, issuer: &str) -> usize {
        self.jwt.as_mut().map_or(0, |jwt| jwt.remove_jwks(issuer))
    }

    /// Install the JWKS fetched for `issuer` (a remote source), replacing its previous
    /// fetched keys; on error the previous keys stay. Returns how many keys were installed.
    pub(crate) fn set_remote_jwks(&mut self, issuer: &str, doc: &Value) -> Result<usize, String> {
        match &mut self.jwt {
            Some(jwt) => jwt.set_remote_jwks(issuer, doc),
            None => Err("JWTs are not configured".into()),
        }
    }

    /// Number of keys fetched for `issuer`.
    pub(crate) fn remote_key_count(&self, issuer: &str) -> usize {
        self.jwt.as_ref().map_or(0, |j| j.remote_key_count(issuer))
    }

    /// Authenticate a token at time `now`.
    pub fn authenticate(&self, now: Millis, token: &str) -> Result<User, AuthError> {
        self.authenticate_with_expiry(now, token)
            .map(|(user, _)| user)
    }

    /// Authenticate a token at time `now`; also returns the token's `exp` (seconds since
    /// the epoch) for JWTs that carry one (API keys never expire).
    pub fn authenticate_with_expiry(
        &self,
        now: Millis,
        token: &str,
    ) -> Result<(User, Option<i64>), AuthError> {
        if token.is_empty() {
            return Err(AuthError::MissingToken);
        }
        // Compare against every key so timing does not reveal which prefix matched.
        let mut found = None;
        for (key, user) in &self.api_keys {
            if constant_time_eq(key.as_bytes(), token.as_bytes()) && found.is_none() {
                found = Some(user);
            }
        }
        if let Some(u) = found {
            let user = User {
                id: u.id.clone(),
                role: u.role.clone(),
                roles: Vec::new(),
                scopes: u.scopes.clone(),
                claims: u.extra.clone(),
            };
            return Ok((user, None));
        }
        if !jwt::has_jwt_shape(token) {
            return Err(AuthError::InvalidToken);
        }
        match &self.jwt {
            Some(jwt) if jwt.has_keys() => jwt.verify(now, token).map(|v| (v.user, v.exp)),
            _ => Err(AuthError::JwtNotConfigured),
        }
    }
}

/// Find the credential in an upgrade request: `?token=`, then `Authorization: Bearer`,
/// then `X-API-Key`, then a `bearer.<token>` subprotocol entry. The first one found wins.
///
/// The `Bearer` scheme is matched case-insensitively; an `Authorization` value without it
/// is used as-is, and one with the scheme but no token is ignored.
pub fn extract_credential(req: &UpgradeRequest) -> Option<Credential> {
    if let Some(t) = req.query_param("token").filter(|t| !t.is_empty()) {
        return Some(Credential {
            token: t,
            source: TokenSource::Query,
        });
    }
    if let Some(h) = req.header("authorization") {
        let h = h.trim();
        let t = match h.split_once(|c: char| c.is_ascii_whitespace()) {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest.trim(),
            // Another scheme (Basic, Digest, ... e.g. from a proxy) is not our credential.
            Some(_) => "",
            _ if h.eq_ignore_ascii_case("bearer") => "",
            _ => h,
        };
        if !t.is_empty() {
            return Some(Credential {
                token: t.to_string(),
                source: TokenSource::AuthorizationHeader,
            });
        }
    }
    if let Some(h) = req
        .header("x-api-key")
        .map(str::trim)
        .filter(|t| !t.is_empty())
    {
        return Some(Credential {
            token: h.to_string(),
            source: TokenSource::ApiKeyHeader,
        });
    }
    req.subprotocols()
        .into_iter()
        .find_map(|p| p.strip_prefix("bearer.").filter(|t| !t.is_empty()))
        .map(|t| Credential {
            token: t.to_string(),
            source: TokenSource::Subprotocol,
        })
}
