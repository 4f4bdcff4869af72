//! Resource subscriptions, events and unsubscribe.

use serde_json::{json, Value};

use crate::dsl::{std_with, Sc};

/// A `resourceChanged` command for a new record (or a delete).
pub fn changed(resource: &str, event: &str, record: Value) -> Value {
    json!({"command": "resourceChanged", "resource": resource, "event": event, "record": record})
}

/// A `resourceChanged` update with its previous record.
pub fn updated(resource: &str, record: Value, previous: Value) -> Value {
    json!({"command": "resourceChanged", "resource": resource, "event": "update", "record": record, "previous": previous})
}

/// The scenarios of this area.
pub fn scenarios() -> Vec<Sc> {
    vec![
        Sc::new("subscribe/resource", "Subscribing to a resource answers `subscribed` with `sub-1` and the effective events.")
            .demo()
            .open(1)
            .send(1, json!({"type": "subscribe", "resource": "messages", "requestId": 1}))
            .types(&["subscribed"]),
        Sc::new("subscribe/filter-echoed", "The filter is echoed exactly as sent; `{}`/null filters are not echoed.")
            .demo()
            .open(1)
            .send(1, json!({"type": "subscribe", "resource": "messages", "filter": {"channel": "general", "n": {"$gte": 2}}, "requestId": 1}))
            .send(1, json!({"type": "subscribe", "resource": "messages", "filter": null, "requestId": 2}))
            .types(&["subscribed"]),
        Sc::new("subscribe/events-ordered-and-enforced", "`events` comes back in insert/update/delete order and is enforced: an update-only subscriber gets no insert.")
            .open(1)
            .open(2)
            .send(1, json!({"type": "subscribe", "resource": "messages", "events": ["delete", "insert"], "requestId": 1}))
            .send(2, json!({"type": "subscribe", "resource": "messages", "events": ["update"], "requestId": 2}))
            .cmd(changed("messages", "insert", json!({"id": "m1"})))
            .cmd(updated("messages", json!({"id": "m1", "v": 2}), json!({"id": "m1"})))
            .cmd(changed("messages", "delete", json!({"id": "m1", "v": 2})))
            .types(&["subscribed", "event"]),
        Sc::new("subscribe/events-intersect-config", "Requested events are intersected with the resource's configured events; nothing left, or `events: []`, is INVALID_MESSAGE.")
            .open(1)
            .send(1, json!({"type": "subscribe", "resource": "notifications", "requestId": 1}))
            .send(1, json!({"type": "subscribe", "resource": "notifications", "events": ["insert", "delete"], "requestId": 2}))
            .send(1, json!({"type": "subscribe", "resource": "notifications", "events": ["delete"], "requestId": 3}))
            .send(1, json!({"type": "subscribe", "resource": "messages", "events": [], "requestId": 4}))
            .send(1, json!({"type": "subscribe", "resource": "messages", "events": ["upsert"], "requestId": 5}))
            .cmd(updated("notifications", json!({"id": "n1", "v": 2}), json!({"id": "n1"})))
            .errors(&["INVALID_MESSAGE"])
            .types(&["subscribed"]),
        Sc::new("subscribe/invalid-requests", "Subscribe needs exactly one of resource/channel; filter or events with a channel, or a filter that is not an object, are INVALID_MESSAGE.")
            .demo()
            .open(1)
            .send(1, json!({"type": "subscribe", "requestId": 1}))
            .send(1, json!({"type": "subscribe", "resource": "messages", "channel": "x", "requestId": 2}))
            .send(1, json!({"type": "subscribe", "channel": "x", "filter": {"a": 1}, "requestId": 3}))
            .send(1, json!({"type": "subscribe", "channel": "x", "events": ["insert"], "requestId": 4}))
            .send(1, json!({"type": "subscribe", "resource": "messages", "filter": [1], "requestId": 5}))
            .errors(&["INVALID_MESSAGE"]),
        Sc::new("subscribe/unknown-resource", "Subscribing to a resource that is not configured gets RESOURCE_NOT_FOUND.")
            .demo()
            .open(1)
            .send(1, json!({"type": "subscribe", "resource": "secrets", "requestId": 1}))
            .errors(&["RESOURCE_NOT_FOUND"]),
        Sc::new("subscribe/resource-roles", "A role-restricted resource refuses anonymous clients (UNAUTHORIZED) and other roles (FORBIDDEN), and accepts listed roles.")
            .cfg(std_with(json!({"resources": {"users": {"auth": ["admin"]}}})))
            .open(1)
            .open_q(2, "token=key_user")
            .open_q(3, "token=key_admin")
            .send(1, json!({"type": "subscribe", "resource": "users", "requestId": 1}))
            .send(2, json!({"type": "subscribe", "resource": "users", "requestId": 2}))
            .send(3, json!({"type": "subscribe", "resource": "users", "requestId": 3}))
            .errors(&["UNAUTHORIZED", "FORBIDDEN"])
            .types(&["subscribed"])
            .features(&["auth:resource-roles"]),
        Sc::new("subscribe/resource-roles-demo", "In the demo, `users` is limited to admin and user roles: anonymous clients get UNAUTHORIZED, `key_user` may subscribe.")
            .demo()
            .open(1)
            .open_q(2, "token=key_user")
            .send(1, json!({"type": "subscribe", "resource": "users", "requestId": 1}))
            .send(2, json!({"type": "subscribe", "resource": "users", "requestId": 2}))
            .errors(&["UNAUTHORIZED"])
            .types(&["subscribed"])
            .features(&["auth:resource-roles"]),
        Sc::new("subscribe/several-filters-deliver-once", "Several subscriptions to one resource all work, but a change reaches a connection once however many match; identical subscriptions get distinct ids.")
            .open(1)
            .send(1, json!({"type": "subscribe", "resource": "messages", "filter": {"channel": "a"}}))
            .send(1, json!({"type": "subscribe", "resource": "messages", "filter": {"channel": "b"}}))
            .send(1, json!({"type": "subscribe", "resource": "messages", "filter": {"channel": "b"}}))
            .cmd(changed("messages", "insert", json!({"id": "m1", "channel": "a"})))
            .cmd(changed("messages", "insert", json!({"id": "m2", "channel": "b"})))
            .cmd(changed("messages", "insert", json!({"id": "m3", "channel": "c"})))
            .types(&["subscribed", "event"]),
        Sc::new("subscribe/update-leaves-filter", "An update matches when the record before or after matches: a record leaving the filtered view is delivered with `$before` and `$after`.")
            .open(1)
            .send(1, json!({"type": "subscribe", "resource": "messages", "filter": {"channel": "general"}}))
            .cmd(updated("messages", json!({"id": "m1", "channel": "random"}), json!({"id": "m1", "channel": "general"})))
            .cmd(updated("messages", json!({"id": "m1", "channel": "general"}), json!({"id": "m1", "channel": "random"})))
            .cmd(updated("messages", json!({"id": "m2", "channel": "x"}), json!({"id": "m2", "channel": "y"})))
            .types(&["event"]),
        Sc::new("subscribe/update-without-previous", "A `resourceChanged` update without `previous` is delivered with `$before: null`.")
            .open(1)
            .send(1, json!({"type": "subscribe", "resource": "messages"}))
            .cmd(json!({"command": "resourceChanged", "resource": "messages", "event": "update", "record": {"id": "m1", "v": 2}}))
            .types(&["event"]),
        Sc::new("subscribe/delete-event-shape", "A delete event carries the removed record plus `$before` (the record) and `$after: null`.")
            .open(1)
            .send(1, json!({"type": "subscribe", "resource": "messages", "events": ["delete"]}))
            .cmd(changed("messages", "delete", json!({"id": "m1", "channel": "general"})))
            .types(&["event"]),
        Sc::new("subscribe/event-not-configured", "A resource that does not broadcast an event delivers nothing for it (`delivered: 0`).")
            .open(1)
            .send(1, json!({"type": "subscribe", "resource": "notifications"}))
            .cmd(changed("notifications", "delete", json!({"id": "n1"})))
            .cmd(changed("notifications", "insert", json!({"id": "n2"})))
            .types(&["event"]),
        Sc::new("subscribe/protected-fields-in-events", "Protected fields (top level, nested paths, inside arrays) are stripped from events, including `$before` and `$after`.")
            .cfg(std_with(json!({"resources": {"users": {"protected": ["password", "profile.secret", "keys.private"]}}})))
            .open(1)
            .send(1, json!({"type": "subscribe", "resource": "users"}))
            .cmd(changed("users", "insert", json!({"id": "u1", "password": "p", "profile": {"secret": 1, "bio": "hi"}, "keys": [{"private": "k", "public": "K"}]})))
            .cmd(updated("users", json!({"id": "u1", "password": "new", "profile": {"secret": 2}}), json!({"id": "u1", "password": "old", "profile": {"secret": 1}})))
            .cmd(changed("users", "delete", json!({"id": "u1", "password": "new"})))
            .types(&["event"])
            .features(&["protected-fields"]),
        // ------------------------------------------------------------ unsubscribe
        Sc::new("subscribe/unsubscribe-by-id", "Unsubscribe by `subscriptionId` removes exactly that subscription; the same id again is NOT_FOUND.")
            .demo()
            .open(1)
            .send(1, json!({"type": "subscribe", "resource": "messages"}))
            .send(1, json!({"type": "subscribe", "channel": "news"}))
            .send(1, json!({"type": "unsubscribe", "subscriptionId": "sub-2", "requestId": 1}))
            .send(1, json!({"type": "unsubscribe", "subscriptionId": "sub-2", "requestId": 2}))
            .errors(&["NOT_FOUND"])
            .types(&["unsubscribed"]),
        Sc::new("subscribe/unsubscribe-by-filter-value", "Unsubscribe by resource + filter removes the subscriptions whose filter equals it as a value (key order and 1 vs 1.0 ignored; `{}` equals no filter).")
            .open(1)
            .send(1, json!({"type": "subscribe", "resource": "messages", "filter": {"a": 1, "b": 2}}))
            .send(1, json!({"type": "subscribe", "resource": "messages", "filter": {"a": 2}}))
            .send(1, json!({"type": "subscribe", "resource": "messages"}))
            .send(1, json!({"type": "unsubscribe", "resource": "messages", "filter": {"b": 2.0, "a": 1}, "requestId": 0}))
            .send(1, json!({"type": "unsubscribe", "resource": "messages", "filter": {}, "requestId": 1}))
            .send(1, json!({"type": "unsubscribe", "resource": "messages", "filter": {"a": 3}, "requestId": 2}))
            .cmd(changed("messages", "insert", json!({"id": "m1", "a": 2})))
            .errors(&["NOT_FOUND"])
            .types(&["unsubscribed", "event"]),
        Sc::new("subscribe/unsubscribe-resource-all", "Unsubscribe by resource alone removes all of that resource's subscriptions, listed in creation order.")
            .demo()
            .open(1)
            .send(1, json!({"type": "subscribe", "resource": "messages", "filter": {"x": 1}}))
            .send(1, json!({"type": "subscribe", "channel": "messages"}))
            .send(1, json!({"type": "subscribe", "resource": "messages"}))
            .send(1, json!({"type": "unsubscribe", "resource": "messages", "requestId": 1}))
            .send(1, json!({"type": "unsubscribe", "resource": "messages", "requestId": 2}))
            .send(1, json!({"type": "unsubscribe", "resource": "nope", "requestId": 3}))
            .errors(&["NOT_FOUND"])
            .types(&["unsubscribed"]),
        Sc::new("subscribe/unsubscribe-invalid", "Unsubscribe without subscriptionId/resource/channel, or with both resource and channel, is INVALID_MESSAGE.")
            .demo()
            .open(1)
            .send(1, json!({"type": "unsubscribe", "requestId": 1}))
            .send(1, json!({"type": "unsubscribe", "resource": "messages", "channel": "x", "requestId": 2}))
            .errors(&["INVALID_MESSAGE"]),
        Sc::new("subscribe/close-removes-subscriptions", "Closing a connection removes its subscriptions: a later change is delivered to nobody.")
            .open(1)
            .send(1, json!({"type": "subscribe", "resource": "messages"}))
            .close(1, Some(1001))
            .cmd(changed("messages", "insert", json!({"id": "m1"})))
            .cmd(json!({"command": "serverInfo"}))
            .types(&["subscribed"])
            .features(&["close:cleanup"]),
    ]
}
