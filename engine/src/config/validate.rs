//! Checking a config: every problem with its field path, before any client connects.

use super::*;
use crate::error::{ConfigError, ConfigIssue};

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
