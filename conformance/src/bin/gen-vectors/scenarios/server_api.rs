//! The server API: commands fed by the host (admin API, application code).

use serde_json::json;

use crate::dsl::{std_with, Sc};

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
        Sc::new("server-api/insert", "`insert` writes a record as the server: the id comes from the seed and the timestamps from `now` (values in `data` are ignored), the storage call has no connection, subscribers get the event (filters and protected fields apply) and the result carries the stored record, protected fields included. Roles, write guards and host guards are not consulted. Schema errors are VALIDATION_ERROR naming the field and make no call; an unconfigured resource is RESOURCE_NOT_FOUND; an existing id is VALIDATION_ERROR with the store's `conflict`.")
            .cfg(std_with(json!({
                "heartbeatInterval": 0,
                "resources": {
                    "messages": {},
                    "users": {"protected": ["password"], "auth": ["admin"]},
                    "posts": {"schema": {"type": "object", "properties": {"title": {"type": "string"}}, "required": ["title"]}},
                    "locked": {"guards": {"create": "false"}, "hostGuards": ["create"]}
                }
            })))
            .auto_store()
            .open_q(1, "token=key_admin")
            .open(2)
            .send(1, json!({"type": "subscribe", "resource": "users"}))
            .send(2, json!({"type": "subscribe", "resource": "messages", "filter": {"channel": "a"}}))
            .cmd(json!({"command": "insert", "resource": "users", "data": {"name": "Neo", "password": "pw", "createdAt": "forged"}}))
            .at(10)
            .cmd(json!({"command": "insert", "resource": "messages", "data": {"id": "m1", "channel": "a"}}))
            .cmd(json!({"command": "insert", "resource": "messages", "data": {"id": "m2", "channel": "b"}}))
            .cmd(json!({"command": "insert", "resource": "locked", "data": {"id": "l1"}}))
            .cmd(json!({"command": "insert", "resource": "posts", "data": {"title": 5}}))
            .cmd(json!({"command": "insert", "resource": "posts", "data": {"id": ""}}))
            .cmd(json!({"command": "insert", "resource": "nope", "data": {}}))
            .cmd(json!({"command": "insert", "resource": "messages", "data": {"id": "m1"}}))
            .errors(&["VALIDATION_ERROR", "RESOURCE_NOT_FOUND"])
            .types(&["event"])
            .features(&["hostcall:store", "protected-fields"]),
        Sc::new("server-api/update-delete", "`update` and `delete` write as the server: `updatedAt` is set from `now` (`createdAt` in `data` is ignored), subscribers get `update` (with `$before`/`$after`) and `delete` events, and the result carries the record after the change or the removed record. A missing record is NOT_FOUND naming id and resource (with the store's `notFound`); changing the id is VALIDATION_ERROR; an empty id is INVALID_MESSAGE.")
            .cfg(std_with(json!({"heartbeatInterval": 0})))
            .store("messages", vec![json!({"id": "m1", "channel": "a", "n": 1, "createdAt": "2023-11-14T22:00:00.000Z", "updatedAt": "2023-11-14T22:00:00.000Z"})])
            .open(1)
            .send(1, json!({"type": "subscribe", "resource": "messages"}))
            .at(1000)
            .cmd(json!({"command": "update", "resource": "messages", "id": "m1", "data": {"n": 2, "createdAt": "forged"}}))
            .cmd(json!({"command": "update", "resource": "messages", "id": "m1", "data": {"id": "m9"}}))
            .cmd(json!({"command": "update", "resource": "messages", "id": "ghost", "data": {"n": 3}}))
            .cmd(json!({"command": "delete", "resource": "messages", "id": "m1"}))
            .cmd(json!({"command": "delete", "resource": "messages", "id": "m1"}))
            .cmd(json!({"command": "delete", "resource": "messages", "id": ""}))
            .cmd(json!({"command": "update", "resource": "nope", "id": "m1", "data": {}}))
            .errors(&["NOT_FOUND", "VALIDATION_ERROR", "INVALID_MESSAGE", "RESOURCE_NOT_FOUND"])
            .types(&["event"])
            .features(&["hostcall:store"]),
        Sc::new("server-api/write-timeout", "A server write whose storage call misses its deadline is answered TIMEOUT (outcome unknown); when storage later reports success, subscribers still get the event and no second result comes.")
            .cfg(std_with(json!({"heartbeatInterval": 0, "limits": {"hostCallTimeoutMs": 100}})))
            .open(1)
            .send(1, json!({"type": "subscribe", "resource": "messages"}))
            .cmd(json!({"command": "insert", "resource": "messages", "data": {"id": "m1"}}))
            .timeout_at(100)
            .at(200)
            .complete(1, json!({"kind": "store", "inserted": {"id": "m1", "createdAt": "2023-11-14T22:13:20.000Z", "updatedAt": "2023-11-14T22:13:20.000Z"}}))
            .errors(&["TIMEOUT"])
            .limits(&["limits.hostCallTimeoutMs"])
            .features(&["hostcall:timeout", "hostcall:late-completion"]),
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
