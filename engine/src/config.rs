//! Engine configuration: one serde type, JSON and TOML friendly, validated up front.
//!
//! Every field has a documented default, unknown fields are rejected, and
//! [`Config::from_json`] / [`Config::validate`] report problems with the field path
//! (`limits.maxConnections: must be at least 1`), so a bad deployment fails at start
//! instead of at the first client.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{ConfigError, ConfigIssue};

/// The whole engine configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Config {
    /// A name reported in server info (`switchboard` by default).
    pub name: String,
    /// WebSocket routes; a request whose path (and host) matches no route is rejected with 404.
    pub routes: Vec<RouteConfig>,
    /// How connections authenticate.
    pub auth: AuthConfig,
    /// Server ping interval in milliseconds (0 disables heartbeats). Default 30000.
    pub heartbeat_interval: u64,
    /// How long to wait for a pong (or any frame) after a ping, in milliseconds. Default 10000.
    pub heartbeat_timeout: u64,
    /// Largest accepted inbound frame in bytes. Default 1 MiB (1048576).
    pub max_payload_size: usize,
    /// Per-connection rate limiting.
    pub rate_limit: RateLimitConfig,
    /// Connection, subscription, room and host-call limits.
    pub limits: LimitsConfig,
    /// Room settings.
    pub rooms: RoomsConfig,
    /// Pub/sub channel settings.
    pub channels: ChannelsConfig,
    /// Resources exposed over the socket, by name. As in s3db.js, `true` enables a
    /// resource with defaults and `false` leaves it out.
    #[serde(deserialize_with = "resources::deserialize")]
    pub resources: BTreeMap<String, ResourceConfig>,
    /// Application message types by name (`[messages.chat]`): see [`crate::app`].
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub messages: BTreeMap<String, crate::app::MessageConfig>,
    /// Lifecycle hooks (`connect`, `disconnect`).
    #[serde(skip_serializing_if = "is_default")]
    pub hooks: crate::app::HooksConfig,
    /// Interceptors for built-in messages, by type (`publish = true`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub interceptors: BTreeMap<String, crate::app::HookTarget>,
    /// Socket.IO settings for routes with `codec = "socket.io"`.
    #[serde(skip_serializing_if = "is_default")]
    pub socket_io: SocketIoConfig,
}

/// Socket.IO settings (`[socketIo]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct SocketIoConfig {
    /// The namespaces clients may connect to (default `["/"]`); any other gets
    /// `CONNECT_ERROR {"message":"Invalid namespace"}`.
    pub namespaces: Vec<String>,
}

impl Default for SocketIoConfig {
    fn default() -> Self {
        Self {
            namespaces: vec!["/".into()],
        }
    }
}

fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

impl Default for Config {
    fn default() -> Self {
        Self {
            name: "switchboard".into(),
            routes: vec![RouteConfig::default()],
            auth: AuthConfig::default(),
            heartbeat_interval: 30_000,
            heartbeat_timeout: 10_000,
            max_payload_size: 1024 * 1024,
            rate_limit: RateLimitConfig::default(),
            limits: LimitsConfig::default(),
            rooms: RoomsConfig::default(),
            channels: ChannelsConfig::default(),
            resources: BTreeMap::new(),
            messages: BTreeMap::new(),
            hooks: crate::app::HooksConfig::default(),
            interceptors: BTreeMap::new(),
            socket_io: SocketIoConfig::default(),
        }
    }
}

/// One WebSocket route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct RouteConfig {
    /// Request path, starting with `/` (a trailing `/` on the request is ignored); a
    /// segment `:name` is a path parameter (`/ws/game/:sessionId`), see [`crate::routes`].
    pub path: String,
    /// When set, the route only matches requests whose `Host` header (port ignored) equals this.
    pub host: Option<String>,
    /// Overrides `auth.required` for this route.
    pub auth_required: Option<bool>,
    /// Scopes the authenticated user must all hold (implies authentication).
    pub scopes: Vec<String>,
    /// Allowed `Origin` values; empty or containing `*` allows any. Requests without an
    /// `Origin` header (non-browser clients) are always allowed.
    pub origins: Vec<String>,
    /// Wire codec used on this route.
    pub codec: CodecKind,
    /// The tenant of this route's connections: a name, or `:param` for a path
    /// parameter. Rooms, channels and client lookups are isolated per tenant.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
}

impl Default for RouteConfig {
    fn default() -> Self {
        Self {
            path: "/".into(),
            host: None,
            auth_required: None,
            scopes: Vec::new(),
            origins: Vec::new(),
            codec: CodecKind::Json,
            tenant: None,
        }
    }
}

/// The codecs a route can speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub enum CodecKind {
    /// Protocol v1: JSON text frames `{type, ...}` (the s3db.js client protocol).
    #[default]
    Json,
    /// The `{event, data}` envelope (YektaYar's native WebSocket protocol), see
    /// [`crate::protocol::envelope`].
    Event,
    /// Socket.IO v5 over Engine.IO v4 (WebSocket transport), see
    /// [`crate::protocol::socketio`].
    #[serde(rename = "socket.io")]
    SocketIo,
    /// A bare Engine.IO v4 session (WebSocket transport): each message packet is the
    /// application message `message` (text, or `{"$binary": base64}`), see
    /// [`crate::protocol::socketio::EngineIoCodec`].
    #[serde(rename = "engine.io")]
    EngineIo,
}

impl CodecKind {
    /// Whether the codec runs an Engine.IO session (Socket.IO or bare Engine.IO).
    pub fn is_engine_io(self) -> bool {
        matches!(self, CodecKind::SocketIo | CodecKind::EngineIo)
    }
}

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

/// Per-connection rate limiting: an integer token bucket refilled at `maxRequests` per `windowMs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct RateLimitConfig {
    /// Enable the limiter. Default false.
    pub enabled: bool,
    /// Window in milliseconds. Default 60000.
    pub window_ms: u64,
    /// Requests allowed per window (also the burst size). Default 100.
    pub max_requests: u64,
    /// Consecutive refused frames after which the connection is closed with 1008. Default 10.
    pub close_after: u32,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            window_ms: 60_000,
            max_requests: 100,
            close_after: 10,
        }
    }
}

/// What to do with a client that cannot keep up with its outbound traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub enum SlowConsumerPolicy {
    /// Close with 1013 (try again later).
    #[default]
    Close,
    /// Skip pushes (events, messages) while over the limit; replies are still sent.
    Drop,
}

/// Limits. Every collection the engine keeps is bounded by one of these.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Concurrent connections in total (503 beyond). Default 100000.
    pub max_connections: usize,
    /// Concurrent connections from one IP (429 beyond); 0 = unlimited. Default 1000: one
    /// address cannot take the whole server (a NAT or proxy in front of many users needs
    /// a higher value, or 0).
    pub max_connections_per_ip: usize,
    /// Concurrent connections of one authenticated user (429 beyond); 0 = unlimited. Default 0.
    pub max_connections_per_user: usize,
    /// Subscriptions (resources and channels) per connection. Default 100.
    pub max_subscriptions_per_connection: usize,
    /// Rooms one connection may be in. Default 32.
    pub max_rooms_per_connection: usize,
    /// Host calls in flight for one connection. Default 16.
    pub max_pending_calls_per_connection: usize,
    /// Host calls in flight in total. Default 10000.
    pub max_pending_calls: usize,
    /// Deadline for a host call, in milliseconds. Default 5000.
    pub host_call_timeout_ms: u64,
    /// Outbound bytes a host may report as queued before the slow-consumer policy applies.
    /// Default 4 MiB.
    pub max_buffered_bytes: u64,
    /// Policy for slow consumers.
    pub slow_consumer: SlowConsumerPolicy,
    /// Longest channel, room or resource name accepted. Default 128.
    pub max_name_length: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_connections: 100_000,
            max_connections_per_ip: 1000,
            max_connections_per_user: 0,
            max_subscriptions_per_connection: 100,
            max_rooms_per_connection: 32,
            max_pending_calls_per_connection: 16,
            max_pending_calls: 10_000,
            host_call_timeout_ms: 5_000,
            max_buffered_bytes: 4 * 1024 * 1024,
            slow_consumer: SlowConsumerPolicy::Close,
            max_name_length: 128,
        }
    }
}

/// Room settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct RoomsConfig {
    /// Members per room unless overridden. Default 1000.
    pub max_connections: usize,
    /// Rooms in total. Default 10000.
    pub max_rooms: usize,
    /// Per-room overrides by exact name.
    pub overrides: BTreeMap<String, RoomOverride>,
    /// Who may join rooms (roles, CEL guard over `room`, `user`, `params`, ...).
    #[serde(skip_serializing_if = "crate::app::RoomRule::is_open")]
    pub join: crate::app::RoomRule,
    /// Who may list room members.
    #[serde(skip_serializing_if = "crate::app::RoomRule::is_open")]
    pub members: crate::app::RoomRule,
    /// Who may send room messages.
    #[serde(skip_serializing_if = "crate::app::RoomRule::is_open")]
    pub message: crate::app::RoomRule,
}

impl Default for RoomsConfig {
    fn default() -> Self {
        Self {
            max_connections: 1000,
            max_rooms: 10_000,
            overrides: BTreeMap::new(),
            join: crate::app::RoomRule::default(),
            members: crate::app::RoomRule::default(),
            message: crate::app::RoomRule::default(),
        }
    }
}

/// Settings for one named room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RoomOverride {
    /// Members allowed in this room.
    pub max_connections: usize,
}

/// Pub/sub channel settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct ChannelsConfig {
    /// Roles allowed to publish; empty allows everyone, including anonymous clients.
    pub publish_roles: Vec<String>,
    /// Roles allowed to subscribe to channels; empty allows everyone.
    pub subscribe_roles: Vec<String>,
    /// Per-pattern channel options (history, presence, permissions); the first match
    /// wins and replaces the two role lists above for its channels. See
    /// [`crate::namespace`].
    pub namespaces: Vec<crate::namespace::NamespaceConfig>,
}

/// The change events a resource can emit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    /// A record was created.
    Insert,
    /// A record was changed.
    Update,
    /// A record was removed.
    Delete,
}

impl ChangeKind {
    /// All kinds, in wire order.
    pub const ALL: [ChangeKind; 3] = [ChangeKind::Insert, ChangeKind::Update, ChangeKind::Delete];

    /// The wire name (`insert`, `update`, `delete`).
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Insert => "insert",
            ChangeKind::Update => "update",
            ChangeKind::Delete => "delete",
        }
    }

    pub(crate) fn bit(self) -> u8 {
        match self {
            ChangeKind::Insert => 1,
            ChangeKind::Update => 2,
            ChangeKind::Delete => 4,
        }
    }
}

/// One resource exposed over the socket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct ResourceConfig {
    /// Events broadcast to subscribers. Default all three.
    pub events: Vec<ChangeKind>,
    /// Roles allowed to use the resource at all; empty allows everyone (including anonymous).
    pub auth: Vec<String>,
    /// Field paths (dotted, e.g. `metadata.internal`) never sent to clients.
    pub protected: Vec<String>,
    /// Largest `limit` a `list` may ask for. Default 100.
    pub max_list_limit: usize,
    /// JSON Schema (draft 2020-12 by default) the client's `data` must satisfy on
    /// insert; updates are checked against the same schema without `required`.
    pub schema: Option<serde_json::Value>,
    /// CEL guard per action (`subscribe`, `list`, `get`, `create`, `update`, `delete`,
    /// `read`); see [`crate::guard`].
    pub guards: BTreeMap<crate::guard::GuardAction, String>,
    /// Actions that also ask the host's guard callback (a host call) after the CEL guard.
    pub host_guards: Vec<crate::guard::GuardAction>,
    /// Whether `publish {channel: <this resource's name>}` also reaches the resource's
    /// subscribers (the s3db.js behaviour). Off by default; when on, the publisher must
    /// pass the resource's `auth` roles.
    pub publish: bool,
    /// Storage indexes the resource declares: each a dotted field path (`"channel"`)
    /// or a list of them (`["channel", "author.id"]`, a composite index). The engine
    /// does not use them; a SQL store creates them and answers filtered `list`s whose
    /// filter has an equality on an index's first field through it.
    pub indexes: Vec<IndexFields>,
    /// Keep the resource's change events as a stream (offsets, epoch, recovery on
    /// `subscribe` with `since`), bounded like a channel namespace's history. Absent
    /// (the default): `event` frames carry no offset.
    pub history: Option<crate::namespace::HistoryConfig>,
}

/// The fields of one declared index (`resources.<name>.indexes[i]`): a dotted field
/// path, or a list of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum IndexFields {
    /// One field: `"channel"`.
    One(String),
    /// A composite index, first field first: `["channel", "createdAt"]`.
    Many(Vec<String>),
}

impl IndexFields {
    /// The index's field paths, each split at `.` (`"author.id"` → `["author", "id"]`).
    pub fn paths(&self) -> Vec<Vec<String>> {
        let one = |p: &String| p.split('.').map(str::to_string).collect();
        match self {
            IndexFields::One(p) => vec![one(p)],
            IndexFields::Many(ps) => ps.iter().map(one).collect(),
        }
    }
}

impl Default for ResourceConfig {
    fn default() -> Self {
        Self {
            events: ChangeKind::ALL.to_vec(),
            auth: Vec::new(),
            protected: Vec::new(),
            max_list_limit: 100,
            schema: None,
            guards: BTreeMap::new(),
            host_guards: Vec::new(),
            publish: false,
            indexes: Vec::new(),
            history: None,
        }
    }
}

mod resources {
    //! `resources: {name: true | false | {...}}` (the s3db.js shorthand).
    use std::collections::BTreeMap;
    use std::fmt;

    use serde::de::{self, MapAccess, Visitor};
    use serde::{Deserialize, Deserializer};

    use super::ResourceConfig;

    struct Entry(Option<ResourceConfig>);

    impl<'de> Deserialize<'de> for Entry {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = Entry;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("true, false or a resource object")
                }
                fn visit_bool<E: de::Error>(self, b: bool) -> Result<Entry, E> {
                    Ok(Entry(b.then(ResourceConfig::default)))
                }
                fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Entry, A::Error> {
                    ResourceConfig::deserialize(de::value::MapAccessDeserializer::new(map))
                        .map(|c| Entry(Some(c)))
                }
            }
            d.deserialize_any(V)
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<String, ResourceConfig>, D::Error> {
        let raw: BTreeMap<String, Entry> = BTreeMap::deserialize(d)?;
        Ok(raw
            .into_iter()
            .filter_map(|(k, v)| v.0.map(|c| (k, c)))
            .collect())
    }
}

impl Config {
    /// Parse a JSON document into a config and validate it.
    pub fn from_json(text: &str) -> Result<Self, ConfigError> {
        let de = &mut serde_json::Deserializer::from_str(text);
        let config: Config = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            ConfigError::single(
                if path == "." { String::new() } else { path },
                e.into_inner().to_string(),
            )
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Build a config from an already parsed JSON value (e.g. converted from TOML) and validate it.
    pub fn from_value(value: serde_json::Value) -> Result<Self, ConfigError> {
        let config: Config = serde_path_to_error::deserialize(value).map_err(|e| {
            let path = e.path().to_string();
            ConfigError::single(
                if path == "." { String::new() } else { path },
                e.into_inner().to_string(),
            )
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Check the semantic rules serde cannot express. Returns every problem found.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut issues = Vec::new();
        let mut issue = |path: String, problem: &str| {
            issues.push(ConfigIssue {
                path,
                problem: problem.to_string(),
            })
        };
        if self.routes.is_empty() {
            issue("routes".into(), "at least one route is required");
        }
        for (i, route) in self.routes.iter().enumerate() {
            if !route.path.starts_with('/') {
                issue(format!("routes[{i}].path"), "must start with '/'");
            }
            for (j, other) in self.routes.iter().enumerate().take(i) {
                if other.path == route.path && other.host == route.host {
                    issue(
                        format!("routes[{i}].path"),
                        &format!("duplicates routes[{j}] (same path and host)"),
                    );
                }
            }
        }
        for (i, ns) in self.socket_io.namespaces.iter().enumerate() {
            if !ns.starts_with('/') || ns.contains(',') {
                issue(
                    format!("socketIo.namespaces[{i}]"),
                    "must start with '/' and contain no ','",
                );
            }
        }
        if self.heartbeat_interval > 0 && self.heartbeat_timeout == 0 {
            issue(
                "heartbeatTimeout".into(),
                "must be at least 1 when heartbeatInterval is set",
            );
        }
        if self.max_payload_size < 64 {
            issue("maxPayloadSize".into(), "must be at least 64 bytes");
        }
        if self.rate_limit.enabled {
            if self.rate_limit.window_ms == 0 {
                issue("rateLimit.windowMs".into(), "must be at least 1");
            }
            if self.rate_limit.max_requests == 0 {
                issue("rateLimit.maxRequests".into(), "must be at least 1");
            }
            if self.rate_limit.window_ms > 86_400_000 * 366 {
                issue("rateLimit.windowMs".into(), "must be at most one year");
            }
            if self.rate_limit.max_requests > 1_000_000_000 {
                issue("rateLimit.maxRequests".into(), "must be at most 1000000000");
            }
        }
        let l = &self.limits;
        for (name, value) in [
            ("limits.maxConnections", l.max_connections),
            (
                "limits.maxSubscriptionsPerConnection",
                l.max_subscriptions_per_connection,
            ),
            ("limits.maxRoomsPerConnection", l.max_rooms_per_connection),
            (
                "limits.maxPendingCallsPerConnection",
                l.max_pending_calls_per_connection,
            ),
            ("limits.maxPendingCalls", l.max_pending_calls),
            ("limits.maxNameLength", l.max_name_length),
            ("rooms.maxConnections", self.rooms.max_connections),
            ("rooms.maxRooms", self.rooms.max_rooms),
        ] {
            if value == 0 {
                issue(name.into(), "must be at least 1");
            }
        }
        if l.host_call_timeout_ms == 0 {
            issue("limits.hostCallTimeoutMs".into(), "must be at least 1");
        }
        for (name, o) in &self.rooms.overrides {
            if o.max_connections == 0 {
                issue(
                    format!("rooms.overrides.{name}.maxConnections"),
                    "must be at least 1",
                );
            }
        }
        for (name, r) in &self.resources {
            if name.is_empty() || name.len() > l.max_name_length {
                issue(
                    format!("resources.{name}"),
                    "resource names must be 1..=limits.maxNameLength characters",
                );
            }
            if r.max_list_limit == 0 {
                issue(
                    format!("resources.{name}.maxListLimit"),
                    "must be at least 1",
                );
            }
            for (action, src) in &r.guards {
                if let Err(e) = crate::guard::Guard::compile(src) {
                    issue(format!("resources.{name}.guards.{}", action.as_str()), &e);
                }
            }
            if let Some(schema) = &r.schema {
                if let Err(e) = crate::validation::RecordSchema::compile(schema) {
                    issue(format!("resources.{name}.schema"), &e);
                }
            }
            if r.host_guards.contains(&crate::guard::GuardAction::Read) {
                issue(
                    format!("resources.{name}.hostGuards"),
                    "`read` cannot be a host guard (it runs for every outgoing record); use a CEL `read` guard",
                );
            }
            for (i, p) in r.protected.iter().enumerate() {
                if p.is_empty() || p.split('.').any(str::is_empty) {
                    issue(
                        format!("resources.{name}.protected[{i}]"),
                        "must be a dotted field path like `a.b`",
                    );
                }
            }
            if let Some(h) = &r.history {
                if h.size == 0 || h.size > 100_000 {
                    issue(
                        format!("resources.{name}.history.size"),
                        "must be 1..=100000",
                    );
                }
                if h.ttl_ms == 0 {
                    issue(
                        format!("resources.{name}.history.ttlMs"),
                        "must be at least 1",
                    );
                }
                if name.contains(crate::tenant::SEPARATOR) {
                    issue(
                        format!("resources.{name}"),
                        "a resource that keeps history must not have a NUL character in its name",
                    );
                }
            }
            for (i, index) in r.indexes.iter().enumerate() {
                let paths = index.paths();
                let bad_segment = |s: &String| {
                    s.is_empty() || s.contains(['"', '\\', '\'']) || s.chars().any(char::is_control)
                };
                if paths.is_empty() || paths.iter().flatten().any(bad_segment) {
                    issue(
                        format!("resources.{name}.indexes[{i}]"),
                        "must be a dotted field path like `a.b`, or a non-empty list of them \
                         (no quotes, backslashes or control characters)",
                    );
                }
            }
        }
        if let Err(ns_issues) = crate::namespace::Namespaces::compile(&self.channels.namespaces) {
            for (path, problem) in ns_issues {
                issue(path, &problem);
            }
        }
        crate::app::validate(self, &mut issues);
        if let Err(auth_issues) = crate::auth::Authenticator::new(&self.auth) {
            issues.extend(auth_issues.issues);
        }
        if issues.is_empty() {
            Ok(())
        } else {
            Err(ConfigError { issues })
        }
    }

    /// The member limit of a room.
    pub fn room_capacity(&self, room: &str) -> usize {
        self.rooms
            .overrides
            .get(room)
            .map_or(self.rooms.max_connections, |o| o.max_connections)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_match_the_s3db_defaults() {
        let c = Config::default();
        c.validate().unwrap();
        assert_eq!(c.heartbeat_interval, 30_000);
        assert_eq!(c.heartbeat_timeout, 10_000);
        assert_eq!(c.max_payload_size, 1_048_576);
        assert_eq!(c.rate_limit.max_requests, 100);
        assert_eq!(c.rate_limit.window_ms, 60_000);
        assert_eq!(c.routes[0].path, "/");
    }

    #[test]
    fn resource_indexes_are_field_paths_or_lists_of_them() {
        let c = Config::from_json(
            r#"{"resources":{"messages":{"indexes":["channel",["author.id","createdAt"]]}}}"#,
        )
        .unwrap();
        let idx = &c.resources["messages"].indexes;
        assert_eq!(idx[0].paths(), vec![vec!["channel".to_string()]]);
        assert_eq!(
            idx[1].paths(),
            vec![
                vec!["author".to_string(), "id".to_string()],
                vec!["createdAt".to_string()]
            ]
        );
        for bad in [r#""a..b""#, r#""it's""#, r#"[]"#, r#"["ok", ""]"#] {
            let err = Config::from_json(&format!(
                r#"{{"resources":{{"messages":{{"indexes":[{bad}]}}}}}}"#
            ))
            .unwrap_err();
            assert_eq!(err.issues[0].path, "resources.messages.indexes[0]", "{bad}");
        }
    }

    #[test]
    fn empty_object_is_the_default_config() {
        assert_eq!(Config::from_json("{}").unwrap(), Config::default());
    }

    #[test]
    fn unknown_field_is_reported_with_its_path() {
        let err = Config::from_json(r#"{"limits":{"maxConections":5}}"#).unwrap_err();
        assert_eq!(err.issues[0].path, "limits.maxConections");
        assert!(err.issues[0].problem.contains("maxConections"), "{err}");
    }

    #[test]
    fn wrong_type_is_reported_with_its_path() {
        let err = Config::from_json(r#"{"routes":[{"path":5}]}"#).unwrap_err();
        assert_eq!(err.issues[0].path, "routes[0].path");
    }

    #[test]
    fn semantic_problems_are_all_reported() {
        let err = Config::from_json(
            r#"{"routes":[{"path":"ws"}],"limits":{"maxConnections":0},
                "rateLimit":{"enabled":true,"windowMs":0},
                "resources":{"users":{"protected":["a..b"]}}}"#,
        )
        .unwrap_err();
        let paths: Vec<_> = err.issues.iter().map(|i| i.path.as_str()).collect();
        assert!(paths.contains(&"routes[0].path"), "{paths:?}");
        assert!(paths.contains(&"limits.maxConnections"), "{paths:?}");
        assert!(paths.contains(&"rateLimit.windowMs"), "{paths:?}");
        assert!(paths.contains(&"resources.users.protected[0]"), "{paths:?}");
    }

    #[test]
    fn s3db_resource_shorthand() {
        let c = Config::from_json(r#"{"resources":{"messages":true,"internal":false,"users":{"protected":["password"]}}}"#).unwrap();
        assert_eq!(
            c.resources.keys().collect::<Vec<_>>(),
            vec!["messages", "users"]
        );
        assert_eq!(c.resources["messages"], ResourceConfig::default());
        let err = Config::from_json(r#"{"resources":{"users":{"protected":[1]}}}"#).unwrap_err();
        assert_eq!(err.issues[0].path, "resources.users.protected[0]");
        assert!(Config::from_json(r#"{"resources":{"users":5}}"#).is_err());
    }

    #[test]
    fn duplicate_routes_are_refused() {
        let err = Config::from_json(r#"{"routes":[{"path":"/"},{"path":"/"}]}"#).unwrap_err();
        assert_eq!(err.issues[0].path, "routes[1].path");
    }

    #[test]
    fn room_capacity_uses_overrides() {
        let c = Config::from_json(
            r#"{"rooms":{"maxConnections":5,"overrides":{"vip":{"maxConnections":2}}}}"#,
        )
        .unwrap();
        assert_eq!(c.room_capacity("vip"), 2);
        assert_eq!(c.room_capacity("lobby"), 5);
    }
}
