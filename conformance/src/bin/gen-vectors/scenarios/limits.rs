//! Every configured limit driven to its edge.

use serde_json::json;

use crate::dsl::{request, std_with, Sc};
use crate::scenarios::upgrade::RequestExt;

fn ping(id: u64) -> serde_json::Value {
    json!({"type": "ping", "requestId": id})
}

/// The scenarios of this area.
pub fn scenarios() -> Vec<Sc> {
    let mut v = vec![
        Sc::new("limits/payload-too-large", "A frame over `maxPayloadSize` gets PAYLOAD_TOO_LARGE (no requestId) then close 1009; later frames are ignored until the host reports the close.")
            .cfg(std_with(json!({"maxPayloadSize": 64})))
            .open(1)
            .padded(1, r#"{"type":"ping","requestId":1,"pad":"{pad}"}"#, 64)
            .send(1, json!({"type": "ping"}))
            .close(1, Some(1009))
            .errors(&["PAYLOAD_TOO_LARGE"])
            .closes(&[1009])
            .limits(&["maxPayloadSize"]),
        Sc::new("limits/payload-exact-limit", "A frame of exactly `maxPayloadSize` bytes is accepted; one byte more is refused.")
            .cfg(std_with(json!({"maxPayloadSize": 64})))
            .open(1)
            .padded(1, r#"{"type":"ping","requestId":1,"pad":"{pad}"}"#, 26)
            .padded(1, r#"{"type":"ping","requestId":2,"pad":"{pad}"}"#, 27)
            .errors(&["PAYLOAD_TOO_LARGE"])
            .closes(&[1009])
            .types(&["pong"])
            .limits(&["maxPayloadSize"]),
        Sc::new("limits/payload-too-large-demo", "The demo deployment refuses a frame over 1 MiB with PAYLOAD_TOO_LARGE and close 1009.")
            .demo()
            .open(1)
            .padded(1, r#"{"type":"ping","pad":"{pad}"}"#, 1_048_576)
            .wait_ms(5000)
            .errors(&["PAYLOAD_TOO_LARGE"])
            .closes(&[1009])
            .limits(&["maxPayloadSize"]),
        Sc::new("limits/rate-limit-refusal", "With the bucket empty a frame is refused with RATE_LIMIT_EXCEEDED (requestId echoed); refused frames cost nothing and refill makes room again.")
            .cfg(std_with(json!({"rateLimit": {"enabled": true, "windowMs": 1000, "maxRequests": 2}})))
            .open(1)
            .send(1, ping(1))
            .send(1, ping(2))
            .send(1, ping(3))
            .text(1, "{bad json")
            .at(500)
            .send(1, ping(4))
            .send(1, ping(5))
            .errors(&["RATE_LIMIT_EXCEEDED"])
            .types(&["pong"])
            .limits(&["rateLimit.maxRequests"]),
        Sc::new("limits/rate-limit-invalid-frames-cost", "Invalid JSON and unknown types cost a token like any frame.")
            .cfg(std_with(json!({"rateLimit": {"enabled": true, "windowMs": 60000, "maxRequests": 2}})))
            .open(1)
            .text(1, "{bad")
            .send(1, json!({"type": "nope"}))
            .send(1, ping(3))
            .errors(&["INVALID_JSON", "UNKNOWN_MESSAGE_TYPE", "RATE_LIMIT_EXCEEDED"])
            .limits(&["rateLimit.maxRequests"]),
        Sc::new("limits/rate-limit-close", "After `closeAfter` consecutive refusals the connection is closed with 1008; an accepted frame resets the count.")
            .cfg(std_with(json!({"rateLimit": {"enabled": true, "windowMs": 1000, "maxRequests": 1, "closeAfter": 3}})))
            .open(1)
            .send(1, ping(1))
            .send(1, ping(2))
            .send(1, ping(3))
            .at(1000)
            .send(1, ping(4))
            .send(1, ping(5))
            .send(1, ping(6))
            .send(1, ping(7))
            .close(1, Some(1008))
            .errors(&["RATE_LIMIT_EXCEEDED"])
            .closes(&[1008])
            .limits(&["rateLimit.maxRequests", "rateLimit.closeAfter"]),
        Sc::new("limits/rate-limit-close-after-zero", "`closeAfter: 0` never closes, however many frames are refused.")
            .cfg(std_with(json!({"rateLimit": {"enabled": true, "windowMs": 60000, "maxRequests": 1, "closeAfter": 0}})))
            .open(1)
            .send(1, ping(1))
            .send(1, ping(2))
            .send(1, ping(3))
            .send(1, ping(4))
            .errors(&["RATE_LIMIT_EXCEEDED"])
            .limits(&["rateLimit.maxRequests"]),
        Sc::new("limits/max-connections", "Beyond `maxConnections` upgrades get 503 LIMIT_EXCEEDED `too_many_connections`; a close frees the slot.")
            .cfg(std_with(json!({"limits": {"maxConnections": 2}})))
            .open(1)
            .open(2)
            .open(3)
            .close(1, Some(1000))
            .open(4)
            .errors(&["LIMIT_EXCEEDED"])
            .rejects(&["too_many_connections"])
            .limits(&["limits.maxConnections"]),
        Sc::new("limits/max-connections-per-ip", "Beyond `maxConnectionsPerIp` from one peer: 429 `too_many_connections_from_ip`; other peers are unaffected.")
            .cfg(std_with(json!({"limits": {"maxConnectionsPerIp": 2}})))
            .open(1)
            .open(2)
            .open(3)
            .open_req(4, request(4, "/", "", &[]).with_peer("10.0.0.2"))
            .errors(&["LIMIT_EXCEEDED"])
            .rejects(&["too_many_connections_from_ip"])
            .limits(&["limits.maxConnectionsPerIp"]),
        Sc::new("limits/max-connections-per-user", "Beyond `maxConnectionsPerUser` for one user: 429 `too_many_connections_for_user`; anonymous connections are not counted per user.")
            .cfg(std_with(json!({"limits": {"maxConnectionsPerUser": 1}})))
            .open_q(1, "token=key_user")
            .open_q(2, "token=key_user")
            .open_q(3, "token=key_admin")
            .open(4)
            .open(5)
            .errors(&["LIMIT_EXCEEDED"])
            .rejects(&["too_many_connections_for_user"])
            .limits(&["limits.maxConnectionsPerUser"]),
        Sc::new("limits/max-subscriptions", "Resource and channel subscriptions count together towards `maxSubscriptionsPerConnection`; re-subscribing a held channel is free.")
            .cfg(std_with(json!({"limits": {"maxSubscriptionsPerConnection": 2}})))
            .open(1)
            .send(1, json!({"type": "subscribe", "resource": "messages", "requestId": 1}))
            .send(1, json!({"type": "subscribe", "channel": "news", "requestId": 2}))
            .send(1, json!({"type": "subscribe", "channel": "news", "requestId": 3}))
            .send(1, json!({"type": "subscribe", "channel": "other", "requestId": 4}))
            .send(1, json!({"type": "subscribe", "resource": "messages", "requestId": 5}))
            .send(1, json!({"type": "unsubscribe", "subscriptionId": "sub-1", "requestId": 6}))
            .send(1, json!({"type": "subscribe", "channel": "other", "requestId": 7}))
            .errors(&["LIMIT_EXCEEDED"])
            .types(&["subscribed", "unsubscribed"])
            .limits(&["limits.maxSubscriptionsPerConnection"]),
        Sc::new("limits/max-rooms-per-connection", "Beyond `maxRoomsPerConnection` a new join gets LIMIT_EXCEEDED; re-joining a room already held still works.")
            .cfg(std_with(json!({"limits": {"maxRoomsPerConnection": 1}})))
            .open(1)
            .send(1, json!({"type": "join", "room": "a", "requestId": 1}))
            .send(1, json!({"type": "join", "room": "b", "requestId": 2}))
            .send(1, json!({"type": "join", "room": "a", "requestId": 3}))
            .errors(&["LIMIT_EXCEEDED"])
            .types(&["joined"])
            .limits(&["limits.maxRoomsPerConnection"]),
        Sc::new("limits/room-size", "A room at `rooms.maxConnections` members refuses joins with ROOM_FULL; when a member leaves there is room again.")
            .cfg(std_with(json!({"rooms": {"maxConnections": 2}})))
            .open(1)
            .open(2)
            .open(3)
            .send(1, json!({"type": "join", "room": "lobby"}))
            .send(2, json!({"type": "join", "room": "lobby"}))
            .send(3, json!({"type": "join", "room": "lobby", "requestId": "j3"}))
            .send(2, json!({"type": "leave", "room": "lobby"}))
            .send(3, json!({"type": "join", "room": "lobby", "requestId": "j3b"}))
            .errors(&["ROOM_FULL"])
            .types(&["joined", "left", "room:joined", "room:left"])
            .limits(&["rooms.maxConnections"]),
        Sc::new("limits/room-size-override", "`rooms.overrides.<name>.maxConnections` sets one room's size; other rooms keep the default.")
            .open(1)
            .open(2)
            .open(3)
            .send(1, json!({"type": "join", "room": "duo"}))
            .send(2, json!({"type": "join", "room": "duo"}))
            .send(3, json!({"type": "join", "room": "duo", "requestId": 1}))
            .send(3, json!({"type": "join", "room": "trio", "requestId": 2}))
            .errors(&["ROOM_FULL"])
            .limits(&["rooms.overrides"]),
        Sc::new("limits/max-rooms", "With `rooms.maxRooms` rooms in existence, joining a new room is LIMIT_EXCEEDED while existing rooms still accept members; an emptied room disappears.")
            .cfg(std_with(json!({"rooms": {"maxRooms": 1}})))
            .open(1)
            .open(2)
            .send(1, json!({"type": "join", "room": "a"}))
            .send(2, json!({"type": "join", "room": "b", "requestId": 1}))
            .send(2, json!({"type": "join", "room": "a", "requestId": 2}))
            .send(1, json!({"type": "leave", "room": "a"}))
            .send(2, json!({"type": "leave", "room": "a"}))
            .send(2, json!({"type": "join", "room": "b", "requestId": 3}))
            .errors(&["LIMIT_EXCEEDED"])
            .limits(&["rooms.maxRooms"]),
        Sc::new("limits/max-name-length", "Channel and room names longer than `maxNameLength` bytes, or empty, get INVALID_MESSAGE; a name at the limit is fine.")
            .cfg(std_with(json!({"limits": {"maxNameLength": 13}})))
            .open(1)
            .send(1, json!({"type": "subscribe", "channel": "12345678901234", "requestId": 1}))
            .send(1, json!({"type": "subscribe", "channel": "1234567890123", "requestId": 2}))
            .send(1, json!({"type": "join", "room": "12345678901234", "requestId": 3}))
            .send(1, json!({"type": "join", "room": "", "requestId": 4}))
            .send(1, json!({"type": "publish", "channel": "", "requestId": 5}))
            .errors(&["INVALID_MESSAGE"])
            .types(&["subscribed"])
            .limits(&["limits.maxNameLength"]),
        Sc::new("limits/max-list-limit", "A `list` limit above the resource's `maxListLimit` is clamped in the storage call; no limit means maxListLimit.")
            .cfg(std_with(json!({"resources": {"messages": {"maxListLimit": 3}}})))
            .store("messages", (1..=5).map(|i| json!({"id": format!("m{i}")})).collect())
            .open(1)
            .send(1, json!({"type": "list", "resource": "messages", "limit": 50, "requestId": 1}))
            .send(1, json!({"type": "list", "resource": "messages", "requestId": 2}))
            .send(1, json!({"type": "list", "resource": "messages", "limit": 2, "requestId": 3}))
            .types(&["data"])
            .limits(&["resources.maxListLimit"]),
        Sc::new("limits/filter-max-conditions", "A filter with more than 64 conditions is refused with INVALID_MESSAGE; 64 are fine.")
            .open(1)
            .send(1, json!({"type": "subscribe", "resource": "messages", "filter": many_conditions(65), "requestId": 1}))
            .send(1, json!({"type": "subscribe", "resource": "messages", "filter": many_conditions(64), "requestId": 2}))
            .errors(&["INVALID_MESSAGE"])
            .types(&["subscribed"])
            .limits(&["filter.maxConditions"]),
        Sc::new("limits/slow-consumer-close", "When the host reports more than `maxBufferedBytes` queued, the `close` policy closes with 1013; exactly the limit is fine.")
            .cfg(std_with(json!({"limits": {"maxBufferedBytes": 1000}})))
            .open(1)
            .backpressure(1, 1000)
            .backpressure(1, 1001)
            .close(1, Some(1013))
            .closes(&[1013])
            .limits(&["limits.maxBufferedBytes"])
            .features(&["slow-consumer:close"]),
        Sc::new("limits/slow-consumer-drop", "Under the `drop` policy pushes to a slow consumer are skipped and not counted as delivered, its own answers still arrive, and pushes resume when its queue shrinks.")
            .cfg(std_with(json!({"limits": {"maxBufferedBytes": 1000, "slowConsumer": "drop"}})))
            .open(1)
            .open(2)
            .open(3)
            .send(1, json!({"type": "subscribe", "channel": "x"}))
            .send(2, json!({"type": "subscribe", "channel": "x"}))
            .backpressure(1, 5000)
            .send(3, json!({"type": "publish", "channel": "x", "message": 1, "requestId": 1}))
            .send(3, json!({"type": "direct", "to": "c1", "data": "hi", "ack": true, "requestId": 2}))
            .send(1, json!({"type": "ping", "requestId": 3}))
            .backpressure(1, 10)
            .send(3, json!({"type": "publish", "channel": "x", "message": 2, "requestId": 4}))
            .types(&["published", "message", "sent", "pong"])
            .features(&["slow-consumer:drop"]),
        Sc::new("limits/id-length", "An inserted `data.id` of 256 bytes is accepted; 257 bytes, an empty id or a non-string id get VALIDATION_ERROR.")
            .open(1)
            .auto_store()
            .send(1, json!({"type": "insert", "resource": "messages", "data": {"id": "i".repeat(257)}, "requestId": 1}))
            .send(1, json!({"type": "insert", "resource": "messages", "data": {"id": ""}, "requestId": 2}))
            .send(1, json!({"type": "insert", "resource": "messages", "data": {"id": 5}, "requestId": 3}))
            .send(1, json!({"type": "insert", "resource": "messages", "data": {"id": "i".repeat(256)}, "requestId": 4}))
            .errors(&["VALIDATION_ERROR"])
            .types(&["inserted"])
            .limits(&["insert.maxIdLength"]),
    ];
    v.push(rate_limit_demo());
    v
}

fn many_conditions(n: usize) -> serde_json::Value {
    let mut m = serde_json::Map::new();
    for i in 0..n {
        m.insert(format!("f{i}"), json!(i));
    }
    serde_json::Value::Object(m)
}

/// The demo's 100-per-minute bucket: the 101st ping in a burst is refused.
fn rate_limit_demo() -> Sc {
    let mut sc = Sc::new("limits/rate-limit-demo", "The demo deployment allows a burst of 100 frames per connection; the 101st is refused with RATE_LIMIT_EXCEEDED.")
        .demo()
        .open(1);
    for i in 1..=101 {
        sc = sc.send(1, ping(i));
    }
    sc.errors(&["RATE_LIMIT_EXCEEDED"])
        .types(&["pong"])
        .limits(&["rateLimit.maxRequests"])
}
