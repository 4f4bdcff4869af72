//! Authentication settings: API keys, JWT (shared secrets, keys, JWKS, OpenID issuers).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Authentication settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Reject connections without a token (401). A token that is present but invalid is
    /// always rejected, whatever this says. Default false.
    pub required: bool,
    /// JWT verification; `None` means JWTs are not accepted.
    pub jwt: Option<JwtConfig>,
    /// API keys: key → the user it authenticates as.
    pub api_keys: BTreeMap<String, ApiKeyUser>,
    /// OpenID Connect providers: their keys come from the issuer's discovery document
    /// (`/.well-known/openid-configuration` → `jwks_uri`), fetched by the host. Setting
    /// one turns JWT verification on even without `auth.jwt` (with its defaults).
    pub oidc: Vec<OidcConfig>,
}

/// One OpenID Connect provider (`[[auth.oidc]]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OidcConfig {
    /// The issuer URL; tokens must carry exactly this `iss`, and the discovery document
    /// is read from `<issuer>/.well-known/openid-configuration`.
    pub issuer: String,
    /// The client id(s) this server accepts as `aud` for this issuer's tokens (a string
    /// or a list). Empty: `auth.jwt.audience` applies as for any token.
    #[serde(default, deserialize_with = "one_or_many")]
    pub audience: Vec<String>,
    /// Read `jwks_uri` from the discovery document (default true). With `false`,
    /// `jwksUrl` names the key set directly.
    #[serde(default = "yes")]
    pub discovery: bool,
    /// The JWKS URL, when `discovery` is false.
    #[serde(default)]
    pub jwks_url: Option<String>,
}

fn yes() -> bool {
    true
}

/// A string or a list of strings.
fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => vec![s],
        OneOrMany::Many(v) => v,
    })
}

/// The user an API key authenticates as.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyUser {
    /// User id.
    pub id: String,
    /// Role, if any.
    #[serde(default)]
    pub role: Option<String>,
    /// Scopes granted to the key.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Any other attributes; they become the user's claims.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// JWT verification settings (verification uses the `jsonwebtoken` crate).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct JwtConfig {
    /// Shorthand for one HMAC key without `kid` or issuer binding.
    pub secret: Option<String>,
    /// Algorithms accepted for `secret` (HS256, HS384, HS512). Default `["HS256"]`.
    pub algorithms: Vec<String>,
    /// Explicit keys, looked up by issuer and `kid`.
    pub keys: Vec<JwtKeyConfig>,
    /// JWKS documents, each bound to the issuer that published it.
    pub jwks: Vec<JwksConfig>,
    /// Accepted `iss` values; empty means `iss` is not checked (keys bound to an issuer
    /// still require it).
    pub issuers: Vec<String>,
    /// Accepted `aud` values; empty means `aud` is not checked.
    pub audience: Vec<String>,
    /// Clock-skew leeway for `exp` and `nbf`, in seconds. Default 30.
    pub leeway_seconds: u64,
    /// Reject tokens without `exp`. Default true.
    pub require_exp: bool,
    /// Claim holding the user id (default `sub`, falling back to `id`).
    pub id_claim: String,
    /// Claim holding the role (default `role`).
    pub role_claim: String,
    /// Claim holding scopes, as an array or a space-separated string (default `scope`,
    /// `scopes` is also read).
    pub scopes_claim: String,
    /// Close connections whose token expires (`exp` + `leewaySeconds`) without a
    /// `refresh` (close code 4401). Default true; tokens without `exp` never expire.
    pub expire_connections: bool,
    /// How long before `exp` the `token:expiring` push is sent, in seconds. Default 60.
    pub refresh_notice_seconds: u64,
    /// When keys fetched from URLs (`jwks[].url`, `auth.oidc`) are fetched again.
    pub key_refresh: KeyRefreshConfig,
}

/// The refresh policy of keys fetched from URLs. Every host applies the same policy:
/// the engine decides when to fetch, the host only performs the request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct KeyRefreshConfig {
    /// Shortest cache lifetime: a `max-age` below it (or `no-cache`) is raised to it. Default 60.
    pub min_seconds: u64,
    /// Longest cache lifetime: a `max-age` above it is lowered to it. Default 86400.
    pub max_seconds: u64,
    /// Lifetime when the response has no `Cache-Control: max-age`. Default 3600.
    pub default_seconds: u64,
    /// A token with an unknown `kid` triggers a fetch at most once per this interval per
    /// issuer, so tokens with made-up key ids cannot make the server fetch in a loop. Default 30.
    pub unknown_kid_cooldown_seconds: u64,
    /// First retry after a failed fetch; doubles with each failure in a row. Default 5.
    pub retry_seconds: u64,
    /// Longest retry delay. Default 300.
    pub max_retry_seconds: u64,
}

impl Default for KeyRefreshConfig {
    fn default() -> Self {
        Self {
            min_seconds: 60,
            max_seconds: 86_400,
            default_seconds: 3_600,
            unknown_kid_cooldown_seconds: 30,
            retry_seconds: 5,
            max_retry_seconds: 300,
        }
    }
}

impl Default for JwtConfig {
    fn default() -> Self {
        Self {
            secret: None,
            algorithms: vec!["HS256".into()],
            keys: Vec::new(),
            jwks: Vec::new(),
            issuers: Vec::new(),
            audience: Vec::new(),
            leeway_seconds: 30,
            require_exp: true,
            id_claim: "sub".into(),
            role_claim: "role".into(),
            scopes_claim: "scope".into(),
            expire_connections: true,
            refresh_notice_seconds: 60,
            key_refresh: KeyRefreshConfig::default(),
        }
    }
}

/// One explicit JWT verification key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JwtKeyConfig {
    /// Key id; when set, a token must carry the same `kid`.
    #[serde(default)]
    pub kid: Option<String>,
    /// Issuer this key belongs to; when set, a token must carry the same `iss`.
    #[serde(default)]
    pub issuer: Option<String>,
    /// The one algorithm this key verifies (HS256/384/512, RS256/384/512, PS256/384/512,
    /// ES256/384, EdDSA).
    pub algorithm: String,
    /// HMAC secret (HS* only).
    #[serde(default)]
    pub secret: Option<String>,
    /// PEM public key (RS*, PS*, ES*, EdDSA).
    #[serde(default)]
    pub public_key_pem: Option<String>,
}

/// A JWKS bound to an issuer: an inline document or a URL the host fetches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JwksConfig {
    /// The issuer whose tokens these keys verify (required: keys are looked up by issuer and kid).
    pub issuer: String,
    /// The JWKS document (`{"keys": [...]}`); exactly one of `jwks` and `url`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks: Option<serde_json::Value>,
    /// Where the host fetches the JWKS (`https://`, or `http://` on 127.0.0.1 only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}
