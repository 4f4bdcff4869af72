//! Checking a config: every problem with its field path, before any client connects;
//! the guards, schemas, namespaces and keys are compiled as they are checked.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::CompiledResource;
use crate::app::CompiledApp;
use crate::auth::Authenticator;
use crate::config::Config;
use crate::error::{ConfigError, ConfigIssue};
use crate::namespace::Namespaces;

/// What [`check`] compiled.
pub(super) struct Parts {
    pub auth: Authenticator,
    pub resources: BTreeMap<String, Arc<CompiledResource>>,
    pub namespaces: Namespaces,
    pub app: CompiledApp,
}

/// Check every rule of `config` and compile what the engine runs, in one pass: each
/// guard, schema, namespace and key is compiled here and nowhere else. Problems are
/// reported in field order (routes, limits, resources, namespaces, application
/// handlers, auth), every one with its field path.
pub(super) fn check(config: &Config) -> Result<Parts, ConfigError> {
    let mut issues = Vec::new();
    let mut resources = BTreeMap::new();
    // One CEL environment for every resource guard, built only if there is a guard.
    let mut guard_env = None;
    let mut issue = |path: String, problem: &str| {
        issues.push(ConfigIssue {
            path,
            problem: problem.to_string(),
        })
    };
    if config.routes.is_empty() {
        issue("routes".into(), "at least one route is required");
    }
    for (i, route) in config.routes.iter().enumerate() {
        if !route.path.starts_with('/') {
            issue(format!("routes[{i}].path"), "must start with '/'");
        }
        for (j, other) in config.routes.iter().enumerate().take(i) {
            if other.path == route.path && other.host == route.host {
                issue(
                    format!("routes[{i}].path"),
                    &format!("duplicates routes[{j}] (same path and host)"),
                );
            }
        }
    }
    for (i, ns) in config.socket_io.namespaces.iter().enumerate() {
        if !ns.starts_with('/') || ns.contains(',') {
            issue(
                format!("socketIo.namespaces[{i}]"),
                "must start with '/' and contain no ','",
            );
        }
    }
    if config.heartbeat_interval > 0 && config.heartbeat_timeout == 0 {
        issue(
            "heartbeatTimeout".into(),
            "must be at least 1 when heartbeatInterval is set",
        );
    }
    if config.max_payload_size < 64 {
        issue("maxPayloadSize".into(), "must be at least 64 bytes");
    }
    if config.rate_limit.enabled {
        if config.rate_limit.window_ms == 0 {
            issue("rateLimit.windowMs".into(), "must be at least 1");
        }
        if config.rate_limit.max_requests == 0 {
            issue("rateLimit.maxRequests".into(), "must be at least 1");
        }
        if config.rate_limit.window_ms > 86_400_000 * 366 {
            issue("rateLimit.windowMs".into(), "must be at most one year");
        }
        if config.rate_limit.max_requests > 1_000_000_000 {
            issue("rateLimit.maxRequests".into(), "must be at most 1000000000");
        }
    }
    let l = &config.limits;
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
        ("rooms.maxConnections", config.rooms.max_connections),
        ("rooms.maxRooms", config.rooms.max_rooms),
    ] {
        if value == 0 {
            issue(name.into(), "must be at least 1");
        }
    }
    if l.host_call_timeout_ms == 0 {
        issue("limits.hostCallTimeoutMs".into(), "must be at least 1");
    }
    for (name, o) in &config.rooms.overrides {
        if o.max_connections == 0 {
            issue(
                format!("rooms.overrides.{name}.maxConnections"),
                "must be at least 1",
            );
        }
    }
    for (name, r) in &config.resources {
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
        let mut compile_issues = Vec::new();
        let compiled = CompiledResource::compile(&mut guard_env, name, r, &mut compile_issues);
        for i in compile_issues {
            issue(i.path, &i.problem);
        }
        resources.insert(name.clone(), Arc::new(compiled));
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
    let namespaces = match Namespaces::compile(&config.channels.namespaces) {
        Ok(n) => n,
        Err(ns_issues) => {
            for (path, problem) in ns_issues {
                issue(path, &problem);
            }
            Namespaces::default()
        }
    };
    let app = crate::app::validate(config, &mut issues);
    let auth = Authenticator::new(&config.auth).map_err(|e| issues.extend(e.issues));
    match auth {
        Ok(auth) if issues.is_empty() => Ok(Parts {
            auth,
            resources,
            namespaces,
            app,
        }),
        _ => Err(ConfigError { issues }),
    }
}
