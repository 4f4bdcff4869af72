//! Tenants (PROTOCOL.md §20.8): a route's tenant isolates rooms, channels (publish,
//! presence, history), client lookups and broadcasts; the server API addresses a tenant
//! with `tenant`, and a handler's commands default to its caller's tenant.

use serde_json::{json, Value};

use crate::dsl::{request, std_with, Sc};
use crate::scenarios::handlers::handler;

/// Three ways in: `/t/:org` (tenant = the parameter), host `acme.example` (tenant
/// `acme` by name), and the untenanted `/`.
fn tenants() -> Value {
    let mut c = std_with(json!({
        "routes": [
            {"path": "/t/:org", "tenant": ":org"},
            {"path": "/", "host": "acme.example", "tenant": "acme"},
            {"path": "/"}
        ],
        "channels": {"namespaces": [
            {"pattern": "chat:*", "history": {"size": 10, "ttlMs": 60000},
             "presence": true, "joinLeave": true}
        ]},
        "messages": {"shout": {}},
        "resources": {"messages": {"publish": true}}
    }));
    c["heartbeatInterval"] = json!(0);
    c
}

/// The scenarios of this area.
pub fn scenarios() -> Vec<Sc> {
    vec![
        Sc::new("tenants/rooms", "Two tenants' `lobby` are two rooms: joins, presence, `room:message` and `room:members` stay in the tenant (a host route and a `:param` route naming the same tenant share it; the untenanted space is apart). The server API lists rooms with their `tenant` and addresses one with `tenant`. A NUL in a room name is INVALID_MESSAGE.")
            .cfg(tenants())
            .open_req(1, request(1, "/t/acme", "", &[]))
            .open_req(2, request(2, "/t/globex", "", &[]))
            .open_req(3, request(3, "/", "", &[("Host", "acme.example")]))
            .open_req(4, request(4, "/", "", &[]))
            .send(1, json!({"type": "join", "room": "lobby", "requestId": 1}))
            .send(2, json!({"type": "join", "room": "lobby", "requestId": 2}))
            .send(3, json!({"type": "join", "room": "lobby", "requestId": 3}))
            .send(4, json!({"type": "join", "room": "lobby", "requestId": 4}))
            .send(1, json!({"type": "room:message", "room": "lobby", "data": "hi", "ack": true, "requestId": 5}))
            .send(2, json!({"type": "room:members", "room": "lobby", "requestId": 6}))
            .send(4, json!({"type": "join", "room": "\u{0}acme\u{0}lobby", "requestId": 7}))
            .cmd(json!({"command": "rooms"}))
            .cmd(json!({"command": "roomInfo", "room": "lobby", "tenant": "acme"}))
            .cmd(json!({"command": "sendToRoom", "room": "lobby", "tenant": "globex", "message": {"to": "globex"}}))
            .cmd(json!({"command": "createRoom", "room": "stage", "tenant": "globex"}))
            .cmd(json!({"command": "roomInfo", "room": "stage"}))
            .cmd(json!({"command": "clientInfo", "clientId": "c3"}))
            .close(1, Some(1000))
            .errors(&["INVALID_MESSAGE", "NOT_FOUND"])
            .types(&["joined", "room:joined", "room:message", "sent", "room:members", "room:left"])
            .features(&["tenant:isolation", "room-control"]),
        Sc::new("tenants/channels", "A channel is per tenant: subscribers, `publish` (also to an opted-in resource's subscribers), presence with join/leave pushes, and each tenant's stream with its own offsets, epoch and history. Server-API `publish`, `presence` and `history` take `tenant`; without it they are the untenanted space's.")
            .cfg(tenants())
            .open_req(1, request(1, "/t/acme", "", &[]))
            .open_req(2, request(2, "/t/globex", "", &[]))
            .open_req(3, request(3, "/t/acme", "", &[]))
            .send(1, json!({"type": "subscribe", "channel": "chat:general", "requestId": 1}))
            .send(2, json!({"type": "subscribe", "channel": "chat:general", "requestId": 2}))
            .send(3, json!({"type": "subscribe", "channel": "chat:general", "requestId": 3}))
            .send(2, json!({"type": "publish", "channel": "chat:general", "message": "g1", "requestId": 4}))
            .send(1, json!({"type": "publish", "channel": "chat:general", "message": "a1", "requestId": 5}))
            .send(2, json!({"type": "presence", "channel": "chat:general", "requestId": 6}))
            .send(1, json!({"type": "presence:stats", "channel": "chat:general", "requestId": 7}))
            .send(2, json!({"type": "history", "channel": "chat:general", "requestId": 8}))
            .cmd(json!({"command": "publish", "channel": "chat:general", "tenant": "acme", "data": "server"}))
            .cmd(json!({"command": "presence", "channel": "chat:general"}))
            .cmd(json!({"command": "history", "channel": "chat:general", "tenant": "globex"}))
            .send(2, json!({"type": "subscribe", "resource": "messages", "requestId": 9}))
            .send(3, json!({"type": "subscribe", "resource": "messages", "requestId": 10}))
            .send(1, json!({"type": "publish", "channel": "messages", "message": "m", "requestId": 11}))
            .close(3, Some(1000))
            .types(&["subscribed", "published", "message", "presence", "presence:stats", "history", "presence:join", "presence:leave"])
            .features(&["tenant:isolation"]),
        Sc::new("tenants/clients-and-broadcasts", "`direct` finds only clients of the sender's tenant (NOT_FOUND otherwise, also from the untenanted space). Server-API `broadcast` and `sendToUser` with `tenant` reach only that tenant's connections (without it, everyone); a handler's commands default to its caller's tenant.")
            .cfg(tenants())
            .open_req(1, request(1, "/t/acme", "token=key_user", &[]))
            .open_req(2, request(2, "/t/globex", "token=key_user", &[]))
            .open_req(3, request(3, "/t/acme", "", &[]))
            .open_req(4, request(4, "/", "", &[]))
            .send(1, json!({"type": "direct", "to": "c2", "data": 1, "ack": true, "requestId": 1}))
            .send(1, json!({"type": "direct", "to": "c3", "data": 2, "ack": true, "requestId": 2}))
            .send(4, json!({"type": "direct", "to": "c1", "data": 3, "requestId": 3}))
            .cmd(json!({"command": "broadcast", "tenant": "acme", "message": {"news": "acme"}}))
            .cmd(json!({"command": "sendToUser", "userId": "u1", "tenant": "globex", "message": {"for": "u1@globex"}}))
            .cmd(json!({"command": "broadcast", "message": {"news": "all"}}))
            .send(3, json!({"type": "shout", "data": "hey", "requestId": 4}))
            .complete(1, handler(json!({"reply": null, "commands": [
                {"command": "broadcast", "message": {"shout": "hey"}},
                {"command": "sendToUser", "userId": "u1", "message": {"shout": "to u1"}}
            ]})))
            .errors(&["NOT_FOUND"])
            .types(&["direct", "sent", "reply"])
            .features(&["tenant:isolation"]),
    ]
}
