//! The upgrade decision: routes, origins, subprotocols, client ids, draining.

use serde_json::json;

use crate::dsl::{request, std_with, Sc};

/// The scenarios of this area.
pub fn scenarios() -> Vec<Sc> {
    vec![
        Sc::new("upgrade/welcome-anonymous", "An anonymous upgrade on the demo's `/` route is accepted and the first frame is the welcome: clientId, user null, ISO timestamp, protocolVersion 1.")
            .demo()
            .open(1)
            .types(&["connected"])
            .features(&["auth:anonymous"]),
        Sc::new("upgrade/welcome-second-route", "The demo's second route `/ws` accepts upgrades too, with a trailing slash ignored.")
            .demo()
            .open_h(1, "/ws", "", &[])
            .open_h(2, "/ws/", "", &[])
            .types(&["connected"]),
        Sc::new("upgrade/unknown-route", "A path no route matches is refused with 404 NOT_FOUND `unknown_route`.")
            .demo()
            .open_h(1, "/nope", "", &[])
            .errors(&["NOT_FOUND"])
            .rejects(&["unknown_route"]),
        Sc::new("upgrade/subprotocol-echoed", "A client offering `switchboard.v1` gets it back in the accept.")
            .demo()
            .open_h(1, "/", "", &[("Sec-WebSocket-Protocol", "switchboard.v1")])
            .features(&["subprotocol"]),
        Sc::new("upgrade/subprotocol-other-not-echoed", "A client offering only another subprotocol is accepted without one (only `switchboard.v1` is ever echoed).")
            .demo()
            .open_h(1, "/", "", &[("Sec-WebSocket-Protocol", "chat, other")])
            .features(&["subprotocol"]),
        Sc::new("upgrade/origin-checks", "On a route with `origins`, a listed origin (any case) and a request without Origin are accepted; another origin gets 403 `origin_not_allowed`.")
            .cfg(std_with(json!({"routes": [{"path": "/app", "origins": ["https://app.example"]}]})))
            .open_h(1, "/app", "", &[("Origin", "https://APP.example")])
            .open_h(2, "/app", "", &[])
            .open_h(3, "/app", "", &[("Origin", "https://evil.example")])
            .errors(&["FORBIDDEN"])
            .rejects(&["origin_not_allowed"])
            .features(&["routes:origin"]),
        Sc::new("upgrade/origin-wildcard", "A route whose origins contain `*` accepts any Origin.")
            .cfg(std_with(json!({"routes": [{"path": "/", "origins": ["*"]}]})))
            .open_h(1, "/", "", &[("Origin", "https://anything.example")])
            .types(&["connected"])
            .features(&["routes:origin"]),
        Sc::new("upgrade/host-routes", "A host-specific route matches its Host header (port and case ignored) before the generic route; other hosts fall back to the generic route, and a host-only path is 404 elsewhere.")
            .cfg(std_with(json!({"routes": [
                {"path": "/", "host": "tenant-a.example", "authRequired": true},
                {"path": "/"},
                {"path": "/admin", "host": "admin.example"}
            ]})))
            .open_h(1, "/", "", &[("Host", "TENANT-A.example:443")])
            .open_h(2, "/", "", &[("Host", "other.example")])
            .open_h(3, "/admin", "", &[("Host", "tenant-a.example")])
            .open_h(4, "/admin", "", &[("Host", "admin.example")])
            .errors(&["UNAUTHORIZED", "NOT_FOUND"])
            .rejects(&["missing_token", "unknown_route"])
            .features(&["routes:host"]),
        Sc::new("upgrade/route-scopes", "A route with scopes requires a credential (401 `missing_token`) holding every scope (403 `missing_scope`).")
            .cfg(std_with(json!({"routes": [{"path": "/read", "scopes": ["read"]}, {"path": "/write", "scopes": ["write"]}]})))
            .open_h(1, "/write", "", &[])
            .open_h(2, "/write", "token=key_user", &[])
            .open_h(3, "/read", "token=key_user", &[])
            .errors(&["UNAUTHORIZED", "FORBIDDEN"])
            .rejects(&["missing_token", "missing_scope"])
            .features(&["auth:route-scopes", "auth:missing-token"]),
        Sc::new("upgrade/client-id-collision", "A host-supplied client id already in use is refused with 500 INTERNAL_ERROR `client_id_collision`; after the first client leaves, the id is free again.")
            .open_req(1, request(1, "/", "", &[]))
            .open_req(2, request(1, "/", "", &[]))
            .close(1, Some(1000))
            .open_req(3, request(1, "/", "", &[]))
            .errors(&["INTERNAL_ERROR"])
            .rejects(&["client_id_collision"]),
        Sc::new("upgrade/generated-client-id", "When the host supplies no client id, the engine generates 22 characters from its seed.")
            .seed(42)
            .open_req(1, request(1, "/", "", &[]).with_client_id(""))
            .types(&["connected"]),
        Sc::new("upgrade/draining-refuses", "After the shutdown command, new upgrades get 503 UNAVAILABLE `draining`.")
            .open(1)
            .cmd(json!({"command": "shutdown"}))
            .close(1, Some(1001))
            .open(2)
            .errors(&["UNAVAILABLE"])
            .rejects(&["draining"])
            .closes(&[1001]),
        Sc::new("upgrade/checks-order", "The first failing check decides: an unknown route beats a bad origin and a bad token; a bad origin beats a bad token; a bad token beats the connection limit.")
            .cfg(std_with(json!({"routes": [{"path": "/", "origins": ["https://app.example"]}], "limits": {"maxConnections": 1}})))
            .open(1)
            .open_h(2, "/x", "token=nope", &[("Origin", "https://evil.example")])
            .open_h(3, "/", "token=nope", &[("Origin", "https://evil.example")])
            .open_h(4, "/", "token=nope", &[])
            .open_h(5, "/", "", &[])
            .errors(&["NOT_FOUND", "FORBIDDEN", "UNAUTHORIZED", "LIMIT_EXCEEDED"])
            .rejects(&["unknown_route", "origin_not_allowed", "unknown_api_key", "too_many_connections"]),
    ]
}

/// Small builder helpers on requests.
pub trait RequestExt {
    /// The same request with another host-supplied client id.
    fn with_client_id(self, id: &str) -> Self;
    /// The same request from another peer IP.
    fn with_peer(self, peer: &str) -> Self;
}

impl RequestExt for engine::UpgradeRequest {
    fn with_client_id(mut self, id: &str) -> Self {
        self.client_id = id.into();
        self
    }
    fn with_peer(mut self, peer: &str) -> Self {
        self.peer = peer.into();
        self
    }
}
