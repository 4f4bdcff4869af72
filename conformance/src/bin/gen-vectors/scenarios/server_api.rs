//! The server API: commands fed by the host (admin API, application code).

use serde_json::json;

use crate::dsl::Sc;

/// The scenarios of this area.
pub fn scenarios() -> Vec<Sc> {
    vec![
        Sc::new("server-api/broadcast", "`broadcast` sends the message verbatim to every connection (one shared frame) and returns the count.")
            .open_q(1, "token=key_admin")
            .open_q(2, "token=key_user")
            .open(3)
            .cmd(json!({"command": "broadcast", "message": {"type": "announcement", "text": "maintenance at 10"}}))
            .cmd(json!({"command": "broadcast", "message": "plain string"}))
            .features(&["fanout:many"]),
        Sc::new("server-api/broadcast-filter", "`broadcast` with a filter reaches only users whose {claims, id, role, scopes} match; anonymous connections never match; a bad filter is INVALID_MESSAGE.")
            .open_q(1, "token=key_admin")
            .open_q(2, "token=key_user")
            .open(3)
            .cmd(json!({"command": "broadcast", "message": {"n": 1}, "filter": {"role": "admin"}}))
            .cmd(json!({"command": "broadcast", "message": {"n": 2}, "filter": {"team": "ops"}}))
            .cmd(json!({"command": "broadcast", "message": {"n": 3}, "filter": {"scopes": {"$in": [["read"]]}}}))
            .cmd(json!({"command": "broadcast", "message": {"n": 4}, "filter": {}}))
            .cmd(json!({"command": "broadcast", "message": {"n": 5}, "filter": {"role": {"$regex": "a"}}}))
            .errors(&["INVALID_MESSAGE"]),
        Sc::new("server-api/send-to", "`sendTo` sends verbatim to one client; an unknown client id is NOT_FOUND.")
            .open(1)
            .open(2)
            .cmd(json!({"command": "sendTo", "clientId": "c2", "message": {"x": 1}}))
            .cmd(json!({"command": "sendTo", "clientId": "zz", "message": 1}))
            .errors(&["NOT_FOUND"]),
        Sc::new("server-api/broadcast-to-resource", "`broadcastToResource` reaches every connection with any subscription to the resource, once; an unconfigured resource is RESOURCE_NOT_FOUND.")
            .open(1)
            .open(2)
            .open(3)
            .send(1, json!({"type": "subscribe", "resource": "messages", "filter": {"a": 1}}))
            .send(1, json!({"type": "subscribe", "resource": "messages", "filter": {"a": 2}}))
            .send(2, json!({"type": "subscribe", "resource": "messages", "events": ["delete"]}))
            .send(3, json!({"type": "subscribe", "channel": "messages"}))
            .cmd(json!({"command": "broadcastToResource", "resource": "messages", "message": {"reload": true}}))
            .cmd(json!({"command": "broadcastToResource", "resource": "nope", "message": 1}))
            .errors(&["RESOURCE_NOT_FOUND"]),
        Sc::new("server-api/resource-changed-unknown", "`resourceChanged` for an unconfigured resource is RESOURCE_NOT_FOUND.")
            .open(1)
            .cmd(json!({"command": "resourceChanged", "resource": "nope", "event": "insert", "record": {"id": "x"}}))
            .errors(&["RESOURCE_NOT_FOUND"]),
        Sc::new("server-api/disconnect", "`disconnect` closes a client with 4001 and the default or given reason (cut to the 123 bytes a close frame can carry); its rooms announce `room:left`; an unknown client is NOT_FOUND.")
            .open(1)
            .open(2)
            .open(3)
            .send(1, json!({"type": "join", "room": "lobby"}))
            .send(2, json!({"type": "join", "room": "lobby"}))
            .cmd(json!({"command": "disconnect", "clientId": "c1"}))
            .cmd(json!({"command": "disconnect", "clientId": "c3", "reason": "banned: ".to_string() + &"x".repeat(120)}))
            .cmd(json!({"command": "disconnect", "clientId": "c1"}))
            .close(1, Some(4001))
            .cmd(json!({"command": "disconnect", "clientId": "c1"}))
            .closes(&[4001])
            .errors(&["NOT_FOUND"])
            .types(&["room:left"]),
        Sc::new("server-api/shutdown", "`shutdown` closes every connection with 1001 and its reason, reports how many, and refuses new upgrades with 503 `draining`; `serverInfo` shows draining.")
            .open(1)
            .open(2)
            .cmd(json!({"command": "shutdown", "reason": "deploying v2"}))
            .close(1, Some(1001))
            .close(2, Some(1001))
            .open(3)
            .cmd(json!({"command": "serverInfo"}))
            .closes(&[1001])
            .errors(&["UNAVAILABLE"])
            .rejects(&["draining"]),
        Sc::new("server-api/server-info", "`serverInfo` reports name, protocol version, uptime since the first input, counts, routes (with authRequired) and resources.")
            .cfg(crate::dsl::std_with(serde_json::json!({"name": "conf", "routes": [{"path": "/"}, {"path": "/secure", "scopes": ["read"]}]})))
            .open(1)
            .send(1, json!({"type": "subscribe", "resource": "messages"}))
            .send(1, json!({"type": "subscribe", "channel": "news"}))
            .send(1, json!({"type": "join", "room": "r"}))
            .at(1234)
            .cmd(json!({"command": "serverInfo"})),
        Sc::new("server-api/clients", "`clients` lists connected clients in connection order with user, peer, subscriptions (resource and channel forms), rooms and connectedAt.")
            .open_q(1, "token=key_user")
            .at(1000)
            .open(2)
            .send(1, json!({"type": "subscribe", "resource": "messages", "filter": {"a": 1}, "events": ["insert"]}))
            .send(1, json!({"type": "subscribe", "channel": "news"}))
            .send(2, json!({"type": "join", "room": "lobby"}))
            .cmd(json!({"command": "clients"})),
        Sc::new("server-api/metrics", "`metrics` returns the engine counters: connections, rejected upgrades by status, messages by type, errors by code, fan-out, calls.")
            .open(1)
            .open(2)
            .open_h(3, "/nope", "", &[])
            .send(1, json!({"type": "ping"}))
            .text(1, "{bad")
            .send(1, json!({"type": "subscribe", "channel": "x"}))
            .send(2, json!({"type": "publish", "channel": "x", "message": 1}))
            .close(2, Some(1000))
            .cmd(json!({"command": "metrics"}))
            .errors(&["INVALID_JSON", "NOT_FOUND"]),
    ]
}
