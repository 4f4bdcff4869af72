//! The plain-HTTP endpoints every host serves beside its WebSocket routes, decided in one
//! place so that every host routes a path the same way.
//!
//! A host that gets an HTTP request which is not a WebSocket upgrade asks
//! [`Endpoint::of`] what it is, then answers it: the bodies that do not depend on the
//! host ([`HEALTH_BODY`], [`readiness`], [`not_found`]) come from here too.
//!
//! | endpoint | paths | methods |
//! | --- | --- | --- |
//! | [`Endpoint::TestControl`] | [`TEST_CONTROL_PREFIX`] and below | any |
//! | [`Endpoint::Polling`] | an Engine.IO route (`codec = "socket.io"` / `"engine.io"`) | any (the engine answers, `Input::Http`) |
//! | [`Endpoint::Health`] | `/healthz` | `GET`, `HEAD` |
//! | [`Endpoint::Ready`] | `/readyz` | `GET`, `HEAD` |
//! | [`Endpoint::Metrics`] | `/metrics` | `GET`, `HEAD` |
//! | [`Endpoint::Admin`] | `/admin` and below | any (hosts without an admin API: not found) |
//! | [`Endpoint::Console`] | `/console` and below | any (likewise) |
//! | [`Endpoint::ServerInfo`] | `/` or the path of a WebSocket route | `GET`, `HEAD` |
//! | [`Endpoint::NotFound`] | anything else | |
//!
//! Trailing slashes are ignored (`/healthz/` is `/healthz`), the root excepted.
//!
//! ```
//! use engine::endpoint::Endpoint;
//! let routes = engine::Config::default().routes;
//! assert_eq!(Endpoint::of(&routes, "GET", "/healthz/"), Endpoint::Health);
//! assert_eq!(Endpoint::of(&routes, "POST", "/healthz"), Endpoint::NotFound);
//! ```

use serde_json::{json, Value};

use crate::config::RouteConfig;

/// Where the test control channel lives (tests only; refused unless the host enables it).
pub const TEST_CONTROL_PREFIX: &str = "/__switchboard/test";

/// The body of `GET /healthz` (status 200 while the process runs).
pub const HEALTH_BODY: &str = r#"{"status":"ok"}"#;

/// What a plain-HTTP request is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// The test control channel.
    TestControl,
    /// Engine.IO long-polling: the engine answers it (`Input::Http`).
    Polling,
    /// `GET /healthz`: [`HEALTH_BODY`].
    Health,
    /// `GET /readyz`: [`readiness`].
    Ready,
    /// `GET /metrics`: the Prometheus text.
    Metrics,
    /// The native host's admin API.
    Admin,
    /// The native host's operator console.
    Console,
    /// `GET /` or a `GET` on a WebSocket route's path: the server info.
    ServerInfo,
    /// Nothing here: 404 with [`not_found`].
    NotFound,
}

impl Endpoint {
    /// The endpoint of a request with `method` on `path` (no query string), given the
    /// deployment's WebSocket `routes`.
    pub fn of(routes: &[RouteConfig], method: &str, path: &str) -> Endpoint {
        if under(path, TEST_CONTROL_PREFIX) {
            return Endpoint::TestControl;
        }
        if crate::routes::serves_engine_io(routes, path) {
            return Endpoint::Polling;
        }
        let p = normalize(path);
        if under(p, "/admin") {
            return Endpoint::Admin;
        }
        if under(p, "/console") {
            return Endpoint::Console;
        }
        if !(method.eq_ignore_ascii_case("GET") || method.eq_ignore_ascii_case("HEAD")) {
            return Endpoint::NotFound;
        }
        match p {
            "/healthz" => Endpoint::Health,
            "/readyz" => Endpoint::Ready,
            "/metrics" => Endpoint::Metrics,
            "/" => Endpoint::ServerInfo,
            p if crate::routes::serves_path(routes, p) => Endpoint::ServerInfo,
            _ => Endpoint::NotFound,
        }
    }

    /// The endpoint's name as the JS hosts see it (`"health"`, `"serverInfo"`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Endpoint::TestControl => "testControl",
            Endpoint::Polling => "polling",
            Endpoint::Health => "health",
            Endpoint::Ready => "ready",
            Endpoint::Metrics => "metrics",
            Endpoint::Admin => "admin",
            Endpoint::Console => "console",
            Endpoint::ServerInfo => "serverInfo",
            Endpoint::NotFound => "notFound",
        }
    }
}

/// `path` without trailing slashes (`/` stays `/`).
pub fn normalize(path: &str) -> &str {
    let p = path.trim_end_matches('/');
    if p.is_empty() {
        "/"
    } else {
        p
    }
}

/// `path` is `prefix` or below it (`/admin`, `/admin/x`; not `/administrator`).
fn under(path: &str, prefix: &str) -> bool {
    path.strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// What keeps a server from being ready, for [`readiness`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NotReady<'a> {
    /// The server is draining (shutting down).
    pub draining: bool,
    /// The cluster broker at this URL is unreachable.
    pub broker_down: Option<&'a str>,
    /// The record store at this URL (password hidden) is unreachable.
    pub store_down: Option<&'a str>,
}

/// The answer to `GET /readyz`: `(status, body)`. 200 `ready`, else 503 with the first
/// reason: `draining`, `broker-unavailable` (with `broker`), `store-unavailable` (with
/// `store`).
pub fn readiness(state: NotReady<'_>) -> (u16, Value) {
    if state.draining {
        return (503, json!({"status": "draining"}));
    }
    if let Some(url) = state.broker_down {
        return (
            503,
            json!({"status": "broker-unavailable", "broker": url,
                "message": "the cluster broker is unreachable; reconnecting"}),
        );
    }
    if let Some(url) = state.store_down {
        return (
            503,
            json!({"status": "store-unavailable", "store": url,
                "message": "the record store is unreachable; reconnecting"}),
        );
    }
    (200, json!({"status": "ready"}))
}

/// The 404 body for a request with `method` on `path` (the path cut at 200 bytes, on a
/// character boundary).
pub fn not_found(method: &str, path: &str) -> Value {
    let mut end = path.len().min(200);
    while !path.is_char_boundary(end) {
        end -= 1;
    }
    json!({"code": "NOT_FOUND", "message": format!("nothing at {method} {}", &path[..end])})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn routes() -> Vec<RouteConfig> {
        crate::Config::from_value(json!({"routes": [
            {"path": "/ws"},
            {"path": "/game/:id"},
            {"path": "/socket.io/", "codec": "socket.io"},
        ]}))
        .unwrap()
        .routes
    }

    #[test]
    fn trailing_slashes_are_ignored_on_every_endpoint() {
        let r = routes();
        for (path, want) in [
            ("/healthz/", Endpoint::Health),
            ("/readyz//", Endpoint::Ready),
            ("/metrics/", Endpoint::Metrics),
            ("/ws/", Endpoint::ServerInfo),
            ("/game/7/", Endpoint::ServerInfo),
            ("/", Endpoint::ServerInfo),
            ("/admin/", Endpoint::Admin),
        ] {
            assert_eq!(Endpoint::of(&r, "GET", path), want, "{path}");
        }
    }

    #[test]
    fn only_get_and_head_reach_the_read_endpoints() {
        let r = routes();
        assert_eq!(Endpoint::of(&r, "HEAD", "/healthz"), Endpoint::Health);
        assert_eq!(Endpoint::of(&r, "head", "/metrics"), Endpoint::Metrics);
        assert_eq!(Endpoint::of(&r, "POST", "/healthz"), Endpoint::NotFound);
        assert_eq!(Endpoint::of(&r, "DELETE", "/"), Endpoint::NotFound);
        assert_eq!(Endpoint::of(&r, "POST", "/admin/x"), Endpoint::Admin);
    }

    #[test]
    fn prefixes_match_whole_segments() {
        let r = routes();
        assert_eq!(
            Endpoint::of(&r, "GET", "/administrator"),
            Endpoint::NotFound
        );
        assert_eq!(Endpoint::of(&r, "GET", "/consoles"), Endpoint::NotFound);
        assert_eq!(
            Endpoint::of(&r, "POST", "/__switchboard/test/reset"),
            Endpoint::TestControl
        );
        assert_eq!(
            Endpoint::of(&r, "POST", "/__switchboard/testing"),
            Endpoint::NotFound
        );
    }

    #[test]
    fn engine_io_routes_are_polling_for_any_method() {
        let r = routes();
        assert_eq!(Endpoint::of(&r, "POST", "/socket.io/"), Endpoint::Polling);
        assert_eq!(Endpoint::of(&r, "GET", "/socket.io"), Endpoint::Polling);
    }

    #[test]
    fn readiness_says_why_it_is_not_ready() {
        let ready = NotReady::default();
        assert_eq!(readiness(ready), (200, json!({"status": "ready"})));
        let all = NotReady {
            draining: true,
            broker_down: Some("redis://x"),
            store_down: Some("postgres://y"),
        };
        assert_eq!(readiness(all).1["status"], "draining");
        let (status, body) = readiness(NotReady {
            draining: false,
            ..all
        });
        assert_eq!((status, body["broker"].as_str()), (503, Some("redis://x")));
        let (status, body) = readiness(NotReady {
            store_down: Some("postgres://y"),
            ..ready
        });
        assert_eq!(
            (status, body["status"].as_str()),
            (503, Some("store-unavailable"))
        );
    }

    #[test]
    fn not_found_cuts_long_paths_on_a_character_boundary() {
        let path = format!("/{}", "é".repeat(150));
        let body = not_found("GET", &path);
        let message = body["message"].as_str().unwrap();
        assert!(message.len() <= "nothing at GET ".len() + 200, "{message}");
        assert!(message.ends_with('é'));
        assert_eq!(body["code"], "NOT_FOUND");
    }
}
