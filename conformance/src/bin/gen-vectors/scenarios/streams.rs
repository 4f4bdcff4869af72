//! Channel streams: offsets and epochs, history bounds, recovery, presence, namespace
//! permissions (PROTOCOL.md §10.1–§10.3).

use serde_json::{json, Value};

use crate::dsl::{std_with, Sc, EPOCH};
use crate::jwt::{self, claims, DEMO_SECRET, FAR_FUTURE};

/// A config with short-lived history (no heartbeats, so the clock can jump).
fn short_history() -> Value {
    let mut c = std_with(json!({
        "channels": {"namespaces": [
            {"pattern": "feed:*", "history": {"size": 3, "ttlMs": 1000, "metaTtlMs": 5000},
             "presence": true}
        ]}
    }));
    c["heartbeatInterval"] = json!(0);
    c
}

fn permissions() -> Value {
    std_with(json!({
        "channels": {
            "publishRoles": ["admin"],
            "namespaces": [
                {"pattern": "personal:#{user.id}", "history": {"size": 10, "ttlMs": 60000}},
                {"pattern": "team:{team}", "presence": true,
                 "subscribe": {"guard": "user != null && has(user.team) && user.team == params.team"},
                 "publish": {"roles": ["admin"]}},
                {"pattern": "open:*", "publish": {"roles": []}}
            ]
        }
    }))
}

/// The scenarios of this area.
pub fn scenarios() -> Vec<Sc> {
    vec![
        Sc::new("streams/offsets-and-epoch", "On a channel whose namespace keeps history (the demo's `chat:*`), `subscribed` carries the stream's position (`offset` 0, an `epoch`) and every `message` carries the next offset and the same epoch, also for server-API publishes.")
            .demo()
            .open(1)
            .open(2)
            .send(1, json!({"type": "subscribe", "channel": "chat:lobby", "requestId": 1}))
            .send(2, json!({"type": "publish", "channel": "chat:lobby", "message": "a", "requestId": 2}))
            .send(2, json!({"type": "publish", "channel": "chat:lobby", "message": "b", "requestId": 3}))
            .cmd(json!({"command": "publish", "channel": "chat:lobby", "data": "c"}))
            .send(1, json!({"type": "subscribe", "channel": "news", "requestId": 4}))
            .send(2, json!({"type": "publish", "channel": "news", "message": "no offset"}))
            .types(&["subscribed", "published", "message"])
            .features(&["streams:offsets"]),
        Sc::new("streams/history-size", "History keeps the last `size` publications: `history` returns the latest (oldest first), `limit` caps them, `reverse` gives newest first, `limit: 0` only the position.")
            .cfg(short_history())
            .open(1)
            .send(1, json!({"type": "publish", "channel": "feed:a", "message": 1}))
            .send(1, json!({"type": "publish", "channel": "feed:a", "message": 2}))
            .send(1, json!({"type": "publish", "channel": "feed:a", "message": 3}))
            .send(1, json!({"type": "publish", "channel": "feed:a", "message": 4}))
            .send(1, json!({"type": "publish", "channel": "feed:a", "message": 5}))
            .send(1, json!({"type": "history", "channel": "feed:a", "requestId": 1}))
            .send(1, json!({"type": "history", "channel": "feed:a", "limit": 2, "requestId": 2}))
            .send(1, json!({"type": "history", "channel": "feed:a", "reverse": true, "limit": 2, "requestId": 3}))
            .send(1, json!({"type": "history", "channel": "feed:a", "limit": 0, "requestId": 4}))
            .send(1, json!({"type": "history", "channel": "feed:a", "since": {"offset": 3, "epoch": EPOCH}, "requestId": 5}))
            .send(1, json!({"type": "history", "channel": "plain", "requestId": 6}))
            .errors(&["NOT_FOUND"])
            .types(&["history", "published"])
            .features(&["streams:history-size"]),
        Sc::new("streams/history-ttl", "Publications expire `ttlMs` after they were published (the engine asks to be woken for it); reading `since` a position the history no longer covers is UNRECOVERABLE_POSITION; the position outlives the entries until `metaTtlMs`, then a new epoch starts.")
            .cfg(short_history())
            .open(1)
            .send(1, json!({"type": "publish", "channel": "feed:a", "message": "old"}))
            .at(600)
            .send(1, json!({"type": "publish", "channel": "feed:a", "message": "new"}))
            .at(1100)
            .send(1, json!({"type": "history", "channel": "feed:a", "requestId": 1}))
            .send(1, json!({"type": "history", "channel": "feed:a", "since": {"offset": 0, "epoch": EPOCH}, "requestId": 2}))
            .at(1700)
            .timeout()
            .send(1, json!({"type": "history", "channel": "feed:a", "requestId": 3}))
            .at(7000)
            .timeout()
            .send(1, json!({"type": "history", "channel": "feed:a", "requestId": 4}))
            .errors(&["UNRECOVERABLE_POSITION"])
            .types(&["history"])
            .features(&["streams:history-ttl"]),
        Sc::new("streams/recovery", "A client that reconnects subscribes with `since` = the last offset and epoch it saw: `subscribed` has `recovered: true`, every missed publication in order and the current position; later publications arrive live.")
            .demo()
            .open(1)
            .open(2)
            .send(1, json!({"type": "subscribe", "channel": "chat:lobby"}))
            .send(2, json!({"type": "publish", "channel": "chat:lobby", "message": 1}))
            .close(1, Some(1001))
            .send(2, json!({"type": "publish", "channel": "chat:lobby", "message": 2}))
            .send(2, json!({"type": "publish", "channel": "chat:lobby", "message": {"n": 3}}))
            .open(3)
            .send(3, json!({"type": "subscribe", "channel": "chat:lobby", "since": {"offset": 1, "epoch": EPOCH}, "requestId": "r"}))
            .send(2, json!({"type": "publish", "channel": "chat:lobby", "message": 4}))
            .types(&["subscribed", "message"])
            .features(&["streams:recovery"]),
        Sc::new("streams/recovery-after-eviction", "Recovery still works when the server lost its memory between the disconnect and the reconnect (the Cloudflare Durable Object evicted: history lives in its storage; other hosts keep running).")
            .demo()
            .open(1)
            .open(2)
            .send(1, json!({"type": "subscribe", "channel": "chat:evict"}))
            .send(2, json!({"type": "publish", "channel": "chat:evict", "message": 1}))
            .close(1, Some(1001))
            .send(2, json!({"type": "publish", "channel": "chat:evict", "message": 2}))
            .evict()
            .open(3)
            .send(3, json!({"type": "subscribe", "channel": "chat:evict", "since": {"offset": 1, "epoch": EPOCH}, "requestId": "r"}))
            .types(&["subscribed"])
            .features(&["streams:recovery", "streams:eviction"]),
        Sc::new("streams/recovery-failed", "Recovery is refused (`recovered: false`, no publications, the client subscribed at the current position) when the history no longer holds every missed publication, when the epoch is another, or when `since` is beyond the stream; a channel without history answers `since` with `recovered: false` and no position, and so does a resource without history.")
            .cfg(short_history())
            .open(1)
            .open(2)
            .send(1, json!({"type": "subscribe", "channel": "feed:a"}))
            .send(2, json!({"type": "publish", "channel": "feed:a", "message": 1}))
            .send(2, json!({"type": "publish", "channel": "feed:a", "message": 2}))
            .send(2, json!({"type": "publish", "channel": "feed:a", "message": 3}))
            .send(2, json!({"type": "publish", "channel": "feed:a", "message": 4}))
            .send(1, json!({"type": "subscribe", "channel": "feed:a", "since": {"offset": 0, "epoch": EPOCH}, "requestId": 1}))
            .send(1, json!({"type": "subscribe", "channel": "feed:a", "since": {"offset": 4, "epoch": "not-the-epoch"}, "requestId": 2}))
            .send(1, json!({"type": "subscribe", "channel": "feed:a", "since": {"offset": 9, "epoch": EPOCH}, "requestId": 3}))
            .send(1, json!({"type": "subscribe", "channel": "feed:a", "since": {"offset": 4, "epoch": EPOCH}, "requestId": 4}))
            .send(1, json!({"type": "subscribe", "channel": "plain", "since": {"offset": 4, "epoch": EPOCH}, "requestId": 5}))
            .send(1, json!({"type": "subscribe", "resource": "messages", "since": {"offset": 4, "epoch": EPOCH}, "requestId": 6}))
            .types(&["subscribed"])
            .features(&["streams:recovery-failed"]),
        Sc::new("streams/recovery-racing-publication", "Publications right before and right after a recovering subscribe (same instant): the one ordered before is in `publications`, the one after arrives as a `message`; none twice, none lost.")
            .demo()
            .open(1)
            .open(2)
            .send(1, json!({"type": "subscribe", "channel": "chat:race"}))
            .send(2, json!({"type": "publish", "channel": "chat:race", "message": 1}))
            .close(1, Some(1000))
            .open(3)
            .send(2, json!({"type": "publish", "channel": "chat:race", "message": 2}))
            .send(3, json!({"type": "subscribe", "channel": "chat:race", "since": {"offset": 1, "epoch": EPOCH}}))
            .send(2, json!({"type": "publish", "channel": "chat:race", "message": 3}))
            .types(&["subscribed", "message"])
            .features(&["streams:recovery-race"]),
        Sc::new("streams/presence", "`presence` lists the clients subscribed to a channel (public user views, subscription order); `presence:stats` counts clients and distinct users; `presence:join` / `presence:leave` reach the other subscribers when a client subscribes, unsubscribes or disconnects; a disconnected client is gone from presence.")
            .demo()
            .open(1)
            .open_q(2, "token=key_user")
            .open(3)
            .send(1, json!({"type": "subscribe", "channel": "chat:room"}))
            .send(2, json!({"type": "subscribe", "channel": "chat:room"}))
            .send(3, json!({"type": "subscribe", "channel": "chat:room"}))
            .send(1, json!({"type": "presence", "channel": "chat:room", "requestId": 1}))
            .send(1, json!({"type": "presence:stats", "channel": "chat:room", "requestId": 2}))
            .send(3, json!({"type": "unsubscribe", "channel": "chat:room"}))
            .close(2, Some(1000))
            .send(1, json!({"type": "presence", "channel": "chat:room", "requestId": 3}))
            .send(1, json!({"type": "presence", "channel": "news", "requestId": 4}))
            .cmd(json!({"command": "presence", "channel": "chat:room"}))
            .cmd(json!({"command": "presenceStats", "channel": "chat:room"}))
            .errors(&["NOT_FOUND"])
            .types(&["presence", "presence:stats", "presence:join", "presence:leave"])
            .features(&["streams:presence", "streams:join-leave"]),
        Sc::new("streams/presence-info", "A connection whose user has an `info` claim (here a JWT claim) carries it as `info` in its presence entries: `presence:join` / `presence:leave` to the other subscribers, `presence` lists, and room presence (`room:joined`, `room:members`); its other claims (`email`) are never echoed; an anonymous connection has no `info`.")
            .demo()
            .open_q(1, &format!("token={}", jwt::hs256(DEMO_SECRET, &claims("ann", json!({"exp": FAR_FUTURE, "info": {"name": "Ann", "color": "teal"}, "email": "ann@example.com"})))))
            .open(2)
            .send(2, json!({"type": "subscribe", "channel": "chat:info"}))
            .send(1, json!({"type": "subscribe", "channel": "chat:info"}))
            .send(2, json!({"type": "presence", "channel": "chat:info", "requestId": 1}))
            .send(2, json!({"type": "join", "room": "lobby"}))
            .send(1, json!({"type": "join", "room": "lobby"}))
            .send(2, json!({"type": "room:members", "room": "lobby", "requestId": 2}))
            .send(1, json!({"type": "unsubscribe", "channel": "chat:info"}))
            .types(&["presence", "presence:join", "presence:leave", "room:joined", "room:members"])
            .features(&["streams:presence-info"]),
        Sc::new("streams/namespace-permissions", "Namespaces decide channel permissions: a user-limited channel (`personal:#{user.id}`) admits only its user (anonymous UNAUTHORIZED, another user FORBIDDEN), also for `history`; a CEL guard sees `user` and the pattern's `params`; namespace publish roles replace `channels.publishRoles`.")
            .cfg(permissions())
            .open(1)
            .open_q(2, "token=key_user")
            .open_q(3, "token=key_user2")
            .open_q(4, "token=key_admin")
            .send(1, json!({"type": "subscribe", "channel": "personal:u1", "requestId": 1}))
            .send(3, json!({"type": "subscribe", "channel": "personal:u1", "requestId": 2}))
            .send(2, json!({"type": "subscribe", "channel": "personal:u1", "requestId": 3}))
            .send(3, json!({"type": "history", "channel": "personal:u1", "requestId": 4}))
            .send(2, json!({"type": "subscribe", "channel": "team:ops", "requestId": 5}))
            .send(4, json!({"type": "subscribe", "channel": "team:ops", "requestId": 6}))
            .send(4, json!({"type": "presence", "channel": "team:ops", "requestId": 7}))
            .send(2, json!({"type": "publish", "channel": "team:ops", "message": 1, "requestId": 8}))
            .send(1, json!({"type": "publish", "channel": "open:x", "message": 1, "requestId": 9}))
            .send(1, json!({"type": "publish", "channel": "other", "message": 1, "requestId": 10}))
            .cmd(json!({"command": "publish", "channel": "personal:u1", "data": "for u1"}))
            .cmd(json!({"command": "history", "channel": "personal:u1"}))
            .errors(&["UNAUTHORIZED", "FORBIDDEN"])
            .types(&["subscribed", "presence", "published", "message"])
            .features(&["streams:user-limited", "streams:namespace-guard", "streams:namespace-roles"]),
    ]
}
