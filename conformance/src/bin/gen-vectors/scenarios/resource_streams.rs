//! Resource streams: offsets and epochs on `event` frames of a resource that keeps
//! history, and recovery with `subscribe {resource, since}` (PROTOCOL.md §9.1).

use serde_json::{json, Value};

use crate::dsl::{std_with, Sc, EPOCH};

/// `tasks` keeps history (10 changes), `logs` a short one (3); `messages` none. The `subscribe` guard forces
/// non-admins to their own tasks, the `read` guard hides `hidden` ones, `secret` is
/// protected.
fn tasks() -> Value {
    let mut c = std_with(json!({"resources": {
        "messages": {},
        "logs": {"history": {"size": 3, "ttlMs": 60000}},
        "tasks": {
            "history": {"size": 10, "ttlMs": 60000},
            "protected": ["secret"],
            "guards": {
                "subscribe": "user != null && user.role == 'admin' ? true : {'owner': user.id}",
                "read": "!has(record.hidden) || record.hidden != true"
            }
        }
    }}));
    c["heartbeatInterval"] = json!(0);
    c
}

fn change(event: &str, record: Value, previous: Option<Value>) -> Value {
    let mut c = json!({"command": "resourceChanged", "resource": "tasks", "event": event, "record": record});
    if let Some(p) = previous {
        c["previous"] = p;
    }
    c
}

fn insert(id: &str) -> Value {
    change(
        "insert",
        json!({"id": id, "owner": "u1", "done": false}),
        None,
    )
}

fn log(id: &str) -> Value {
    json!({"command": "resourceChanged", "resource": "logs", "event": "insert", "record": {"id": id}})
}

/// The scenarios of this area.
pub fn scenarios() -> Vec<Sc> {
    vec![
        Sc::new("streams/resource-offsets", "On a resource that keeps history (`resources.<name>.history`), `subscribed` carries the stream's position (`offset` 0, an `epoch`) and every `event` carries the next offset and the same epoch, for client writes and server-API changes alike; a resource without history has no offsets.")
            .cfg(tasks())
            .auto_store()
            .open_q(1, "token=key_admin")
            .open_q(2, "token=key_admin")
            .send(1, json!({"type": "subscribe", "resource": "tasks", "requestId": 1}))
            .send(2, json!({"type": "insert", "resource": "tasks", "data": {"id": "ro-1", "owner": "u1"}, "requestId": 2}))
            .send(2, json!({"type": "update", "resource": "tasks", "id": "ro-1", "data": {"done": true}, "requestId": 3}))
            .send(2, json!({"type": "delete", "resource": "tasks", "id": "ro-1", "requestId": 5}))
            .send(1, json!({"type": "subscribe", "resource": "messages", "requestId": 4}))
            .cmd(json!({"command": "resourceChanged", "resource": "messages", "event": "insert", "record": {"id": "ro-m1"}}))
            .types(&["subscribed", "event", "inserted", "updated", "deleted"])
            .features(&["streams:resource-offsets"]),
        Sc::new("streams/resource-recovery", "A client that reconnects subscribes to the resource with `since` = the last offset and epoch it saw: `subscribed` has `recovered: true`, the missed changes in order as `publications` (each `{offset, event, data, timestamp}`, `data` as in the `event` frame) and the current position; later changes arrive live.")
            .cfg(tasks())
            .open_q(1, "token=key_admin")
            .send(1, json!({"type": "subscribe", "resource": "tasks"}))
            .cmd(insert("rr-1"))
            .close(1, Some(1001))
            .cmd(insert("rr-2"))
            .cmd(change("update", json!({"id": "rr-1", "owner": "u1", "done": true}), Some(json!({"id": "rr-1", "owner": "u1", "done": false}))))
            .open_q(2, "token=key_admin")
            .send(2, json!({"type": "subscribe", "resource": "tasks", "since": {"offset": 1, "epoch": EPOCH}, "requestId": "r"}))
            .cmd(change("delete", json!({"id": "rr-2", "owner": "u1", "done": false}), None))
            .types(&["subscribed", "event"])
            .features(&["streams:resource-recovery"]),
        Sc::new("streams/resource-recovery-after-eviction", "Resource recovery still works when the server lost its memory between the disconnect and the reconnect (the Cloudflare Durable Object evicted: the resource's stream lives in its storage like a channel's).")
            .cfg(tasks())
            .open_q(1, "token=key_admin")
            .send(1, json!({"type": "subscribe", "resource": "tasks"}))
            .cmd(insert("re-1"))
            .close(1, Some(1001))
            .cmd(insert("re-2"))
            .evict()
            .open_q(2, "token=key_admin")
            .send(2, json!({"type": "subscribe", "resource": "tasks", "since": {"offset": 1, "epoch": EPOCH}, "requestId": "r"}))
            .types(&["subscribed"])
            .features(&["streams:resource-recovery", "streams:eviction"]),
        Sc::new("streams/resource-recovery-failed", "Resource recovery is refused (`recovered: false`, no publications, the client subscribed at the current position) when the history no longer holds every missed change, when the epoch is another, or when `since` is beyond the stream; a resource without history answers `since` with `recovered: false` and no position.")
            .cfg(tasks())
            .open_q(1, "token=key_admin")
            .send(1, json!({"type": "subscribe", "resource": "logs"}))
            .cmd(log("rf-1"))
            .cmd(log("rf-2"))
            .cmd(log("rf-3"))
            .cmd(log("rf-4"))
            .send(1, json!({"type": "subscribe", "resource": "logs", "since": {"offset": 0, "epoch": EPOCH}, "requestId": 1}))
            .send(1, json!({"type": "subscribe", "resource": "logs", "since": {"offset": 4, "epoch": "not-the-epoch"}, "requestId": 2}))
            .send(1, json!({"type": "subscribe", "resource": "logs", "since": {"offset": 9, "epoch": EPOCH}, "requestId": 3}))
            .send(1, json!({"type": "subscribe", "resource": "logs", "since": {"offset": 4, "epoch": EPOCH}, "requestId": 4}))
            .send(1, json!({"type": "subscribe", "resource": "messages", "since": {"offset": 4, "epoch": EPOCH}, "requestId": 5}))
            .types(&["subscribed"])
            .features(&["streams:resource-recovery-failed"]),
        Sc::new("streams/resource-recovery-projection", "Recovered changes are exactly the events the subscription would have received live (connection 1, subscribed throughout with the same filter, shows them): the subscription's `filter` and `events`, the `subscribe` guard's forced filter (another owner's task is absent; a task entering it has `$before: null`), the `read` guard (a hidden task is absent; an update of a task that was hidden has `$before: null`) and protected fields (`secret` stripped) apply; filtered-out changes are simply absent, their offsets skipped.")
            .cfg(tasks())
            .open_q(1, "token=key_user")
            .open_q(2, "token=key_user")
            .send(1, json!({"type": "subscribe", "resource": "tasks", "filter": {"done": false}}))
            .send(2, json!({"type": "subscribe", "resource": "tasks", "filter": {"done": false}}))
            .close(2, Some(1001))
            .cmd(change("insert", json!({"id": "rp-1", "owner": "u1", "done": false, "secret": "s"}), None))
            .cmd(change("insert", json!({"id": "rp-2", "owner": "u9", "done": false}), None))
            .cmd(change("insert", json!({"id": "rp-3", "owner": "u1", "done": true}), None))
            .cmd(change("insert", json!({"id": "rp-4", "owner": "u1", "done": false, "hidden": true}), None))
            .cmd(change("update", json!({"id": "rp-1", "owner": "u1", "done": true, "secret": "t"}), Some(json!({"id": "rp-1", "owner": "u1", "done": false, "secret": "s"}))))
            .cmd(change("update", json!({"id": "rp-2", "owner": "u1", "done": false}), Some(json!({"id": "rp-2", "owner": "u9", "done": false}))))
            .cmd(change("update", json!({"id": "rp-4", "owner": "u1", "done": false}), Some(json!({"id": "rp-4", "owner": "u1", "done": false, "hidden": true}))))
            .open_q(3, "token=key_user")
            .send(3, json!({"type": "subscribe", "resource": "tasks", "filter": {"done": false}, "since": {"offset": 0, "epoch": EPOCH}, "requestId": 1}))
            .send(3, json!({"type": "subscribe", "resource": "tasks", "events": ["insert"], "since": {"offset": 0, "epoch": EPOCH}, "requestId": 2}))
            .types(&["subscribed", "event"])
            .features(&["streams:resource-projection", "guard:read", "guard:forced-filter"]),
        Sc::new("streams/resource-recovery-racing-change", "Changes right before and right after a recovering resource subscribe (same instant): the one ordered before is in `publications`, the one after arrives as an `event`; none twice, none lost.")
            .cfg(tasks())
            .open_q(1, "token=key_admin")
            .send(1, json!({"type": "subscribe", "resource": "tasks"}))
            .cmd(insert("rc-1"))
            .close(1, Some(1000))
            .open_q(2, "token=key_admin")
            .cmd(insert("rc-2"))
            .send(2, json!({"type": "subscribe", "resource": "tasks", "since": {"offset": 1, "epoch": EPOCH}}))
            .cmd(insert("rc-3"))
            .types(&["subscribed", "event"])
            .features(&["streams:resource-recovery-race"]),
    ]
}
