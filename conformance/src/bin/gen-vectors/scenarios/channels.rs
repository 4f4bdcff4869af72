//! Pub/sub channels and `publish`.

use serde_json::json;

use crate::dsl::{std_with, Sc};

/// The scenarios of this area.
pub fn scenarios() -> Vec<Sc> {
    vec![
        Sc::new("channels/subscribe-channel", "Subscribing to a channel answers `subscribed` with the channel only; subscribing again returns the same id.")
            .demo()
            .open(1)
            .send(1, json!({"type": "subscribe", "channel": "news", "requestId": 1}))
            .send(1, json!({"type": "subscribe", "channel": "news", "requestId": 2}))
            .types(&["subscribed"]),
        Sc::new("channels/publish-fanout", "`publish` reaches every other subscriber once (the sender is excluded even when subscribed) and answers `published` with the count.")
            .demo()
            .open(1)
            .open(2)
            .open(3)
            .send(1, json!({"type": "subscribe", "channel": "news"}))
            .send(2, json!({"type": "subscribe", "channel": "news"}))
            .send(3, json!({"type": "subscribe", "channel": "news"}))
            .send(1, json!({"type": "publish", "channel": "news", "message": {"text": "hi"}, "requestId": 9}))
            .types(&["published", "message"]),
        Sc::new("channels/publish-no-subscribers", "Publishing to a channel nobody holds succeeds with `delivered: 0`; the publisher need not subscribe.")
            .demo()
            .open(1)
            .send(1, json!({"type": "publish", "channel": "empty", "message": 1, "requestId": 1}))
            .types(&["published"]),
        Sc::new("channels/publish-without-message", "A publish without `message` (or with null) delivers a `message` push without `data`.")
            .demo()
            .open(1)
            .open(2)
            .send(2, json!({"type": "subscribe", "channel": "ticks"}))
            .send(1, json!({"type": "publish", "channel": "ticks"}))
            .send(1, json!({"type": "publish", "channel": "ticks", "message": null}))
            .types(&["published", "message"]),
        Sc::new("channels/publish-reaches-resource-subscribers", "Publishing on a channel named like a configured resource also reaches that resource's subscribers, whatever their filter (s3db.js compatibility).")
            .demo()
            .open(1)
            .open(2)
            .open(3)
            .send(2, json!({"type": "subscribe", "resource": "messages", "filter": {"channel": "x"}}))
            .send(3, json!({"type": "subscribe", "channel": "messages"}))
            .send(1, json!({"type": "publish", "channel": "messages", "message": "m", "requestId": 1}))
            .types(&["published", "message"]),
        Sc::new("channels/publish-skips-resources-without-opt-in", "In the demo only `messages` opts in to `publish`: an anonymous client the `users` resource refuses publishes on channel `users`, and the subscriber of `users` gets nothing (`delivered` counts only channel subscribers).")
            .demo()
            .open(1)
            .open_q(2, "token=key_admin")
            .open(3)
            .send(1, json!({"type": "subscribe", "resource": "users", "requestId": 1}))
            .send(2, json!({"type": "subscribe", "resource": "users", "filter": {"id": "channels-opt-in"}}))
            .send(1, json!({"type": "publish", "channel": "users", "message": {"type": "event", "event": "update"}, "requestId": 2}))
            .send(3, json!({"type": "subscribe", "channel": "users"}))
            .send(1, json!({"type": "publish", "channel": "users", "message": "hi", "requestId": 3}))
            .errors(&["UNAUTHORIZED"])
            .types(&["subscribed", "published", "message"])
            .features(&["publish:resource-opt-in"]),
        Sc::new("channels/publish-to-resource-needs-its-roles", "With `publish: true` a resource's subscribers get channel messages of its name, and the publisher must pass the resource's `auth` roles: an anonymous publisher is UNAUTHORIZED and nothing is delivered, a user is admitted. Server `publish` follows the opt-in, without roles.")
            .cfg(std_with(json!({"resources": {
                "users": {"protected": ["password"], "auth": ["admin", "user"], "publish": true},
                "messages": {}
            }})))
            .open(1)
            .open_q(2, "token=key_admin")
            .open_q(3, "token=key_user")
            .send(2, json!({"type": "subscribe", "resource": "users"}))
            .send(2, json!({"type": "subscribe", "resource": "messages"}))
            .send(1, json!({"type": "publish", "channel": "users", "message": "anon", "requestId": 1}))
            .send(3, json!({"type": "publish", "channel": "users", "message": "u1", "requestId": 2}))
            .send(3, json!({"type": "publish", "channel": "messages", "message": "m", "requestId": 3}))
            .cmd(json!({"command": "publish", "channel": "users", "data": "srv"}))
            .cmd(json!({"command": "publish", "channel": "messages", "data": "srv"}))
            .errors(&["UNAUTHORIZED"])
            .types(&["subscribed", "published", "message"])
            .features(&["publish:resource-opt-in"]),
        Sc::new("channels/unsubscribe-channel", "Unsubscribing a channel stops its messages; unsubscribing it again is NOT_FOUND.")
            .demo()
            .open(1)
            .open(2)
            .send(2, json!({"type": "subscribe", "channel": "news"}))
            .send(2, json!({"type": "unsubscribe", "channel": "news", "requestId": 1}))
            .send(1, json!({"type": "publish", "channel": "news", "requestId": 2}))
            .send(2, json!({"type": "unsubscribe", "channel": "news", "requestId": 3}))
            .errors(&["NOT_FOUND"])
            .types(&["unsubscribed", "published"]),
        Sc::new("channels/publish-roles", "`channels.publishRoles` refuses anonymous publishers (UNAUTHORIZED) and other roles (FORBIDDEN).")
            .cfg(std_with(json!({"channels": {"publishRoles": ["admin"]}})))
            .open(1)
            .open_q(2, "token=key_user")
            .open_q(3, "token=key_admin")
            .send(1, json!({"type": "publish", "channel": "c", "requestId": 1}))
            .send(2, json!({"type": "publish", "channel": "c", "requestId": 2}))
            .send(3, json!({"type": "publish", "channel": "c", "requestId": 3}))
            .errors(&["UNAUTHORIZED", "FORBIDDEN"])
            .types(&["published"])
            .features(&["auth:channel-roles"]),
        Sc::new("channels/subscribe-roles", "`channels.subscribeRoles` applies the same rule to channel subscriptions.")
            .cfg(std_with(json!({"channels": {"subscribeRoles": ["user"]}})))
            .open(1)
            .open_q(2, "token=key_admin")
            .open_q(3, "token=key_user")
            .send(1, json!({"type": "subscribe", "channel": "c", "requestId": 1}))
            .send(2, json!({"type": "subscribe", "channel": "c", "requestId": 2}))
            .send(3, json!({"type": "subscribe", "channel": "c", "requestId": 3}))
            .errors(&["UNAUTHORIZED", "FORBIDDEN"])
            .types(&["subscribed"])
            .features(&["auth:channel-roles"]),
        Sc::new("channels/server-publish", "The `publish` command delivers a `message` from \"server\" to every subscriber and returns the count.")
            .open(1)
            .open(2)
            .send(1, json!({"type": "subscribe", "channel": "alerts"}))
            .send(2, json!({"type": "subscribe", "channel": "alerts"}))
            .cmd(json!({"command": "publish", "channel": "alerts", "data": {"level": "high"}}))
            .cmd(json!({"command": "publish", "channel": ""}))
            .errors(&["INVALID_MESSAGE"])
            .types(&["message"]),
    ]
}
