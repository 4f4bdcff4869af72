//! Engine configuration: one serde type, JSON and TOML friendly, validated up front.
//!
//! Every field has a documented default, unknown fields are rejected, and
//! [`Config::from_json`] / [`Config::validate`] report problems with the field path
//! (`limits.maxConnections: must be at least 1`), so a bad deployment fails at start
//! instead of at the first client.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

mod app;
mod auth;
mod resource;

pub use app::*;
pub use auth::*;
pub use resource::*;

pub use crate::vocabulary::{ChangeKind, CodecKind};

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
    #[serde(deserialize_with = "resource::shorthand::deserialize")]
    pub resources: BTreeMap<String, ResourceConfig>,
    /// Application message types by name (`[messages.chat]`): see [`crate::app`].
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub messages: BTreeMap<String, MessageConfig>,
    /// Lifecycle hooks (`connect`, `disconnect`).
    #[serde(skip_serializing_if = "is_default")]
    pub hooks: HooksConfig,
    /// Interceptors for built-in messages, by type (`publish = true`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub interceptors: BTreeMap<String, HookTarget>,
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
            hooks: HooksConfig::default(),
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
    #[serde(skip_serializing_if = "RoomRule::is_open")]
    pub join: RoomRule,
    /// Who may list room members.
    #[serde(skip_serializing_if = "RoomRule::is_open")]
    pub members: RoomRule,
    /// Who may send room messages.
    #[serde(skip_serializing_if = "RoomRule::is_open")]
    pub message: RoomRule,
}

impl Default for RoomsConfig {
    fn default() -> Self {
        Self {
            max_connections: 1000,
            max_rooms: 10_000,
            overrides: BTreeMap::new(),
            join: RoomRule::default(),
            members: RoomRule::default(),
            message: RoomRule::default(),
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

impl Config {
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
