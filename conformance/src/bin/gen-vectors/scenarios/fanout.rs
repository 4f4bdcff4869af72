//! Fan-out to many connections: one encoded frame shared by every recipient
//! (`sendMany`), in connection order.

use serde_json::json;

use crate::dsl::Sc;
use crate::scenarios::subscribe::changed;

fn opened(mut sc: Sc, n: u64) -> Sc {
    for c in 1..=n {
        sc = sc.open(c);
    }
    sc
}

/// The scenarios of this area.
pub fn scenarios() -> Vec<Sc> {
    let mut event = opened(
        Sc::new("fanout/event-to-50", "One insert event reaches 50 subscribers as a single `sendMany` with one shared frame; `delivered` counts them."),
        50,
    );
    for c in 1..=50 {
        event = event.send(c, json!({"type": "subscribe", "resource": "messages"}));
    }
    let event = event
        .cmd(changed(
            "messages",
            "insert",
            json!({"id": "m1", "text": "to everyone"}),
        ))
        .types(&["event"])
        .features(&["fanout:many"]);

    let mut publish = opened(
        Sc::new("fanout/publish-to-100", "A client publish reaches 99 other channel subscribers as one shared frame; the publisher is excluded."),
        100,
    );
    for c in 1..=100 {
        publish = publish.send(c, json!({"type": "subscribe", "channel": "firehose"}));
    }
    let publish = publish
        .send(1, json!({"type": "publish", "channel": "firehose", "message": {"seq": 1}, "requestId": 1}))
        .types(&["published", "message"])
        .features(&["fanout:many"]);

    let mut filtered = opened(
        Sc::new("fanout/filtered-subscribers", "Among 30 subscribers with three different filters, each change is one shared frame to exactly the matching connections."),
        30,
    );
    for c in 1..=30 {
        let channel = ["a", "b", "c"][(c % 3) as usize];
        filtered = filtered.send(
            c,
            json!({"type": "subscribe", "resource": "messages", "filter": {"channel": channel}}),
        );
    }
    let filtered = filtered
        .cmd(changed("messages", "insert", json!({"id": "m1", "channel": "a"})))
        .cmd(json!({"command": "resourceChanged", "resource": "messages", "event": "update", "record": {"id": "m1", "channel": "b"}, "previous": {"id": "m1", "channel": "a"}}))
        .types(&["event"])
        .features(&["fanout:many"]);

    let mut room = opened(
        Sc::new("fanout/room-of-25", "A room message reaches the 24 other members of a 25-member room as one shared frame; presence notices grow with the room."),
        25,
    );
    for c in 1..=25 {
        room = room.send(c, json!({"type": "join", "room": "hall"}));
    }
    let room = room
        .send(25, json!({"type": "room:message", "room": "hall", "data": "hello all", "ack": true, "requestId": 1}))
        .close(3, Some(1000))
        .types(&["room:message", "room:joined", "room:left", "sent"])
        .features(&["fanout:many"]);

    let mut demo = Sc::new(
        "fanout/demo-publish-10",
        "In the demo deployment, one publish reaches 9 other channel subscribers.",
    )
    .demo();
    for c in 1..=10 {
        demo = demo.open(c);
    }
    for c in 1..=10 {
        demo = demo.send(c, json!({"type": "subscribe", "channel": "fan"}));
    }
    let demo = demo
        .send(
            10,
            json!({"type": "publish", "channel": "fan", "message": {"n": 10}, "requestId": "p"}),
        )
        .types(&["published", "message"])
        .features(&["fanout:many"]);

    let mut bcast = opened(
        Sc::new("fanout/server-broadcast-40", "A server broadcast reaches 40 connections, minus one closing and one slow consumer under the drop policy."),
        40,
    )
    .cfg(crate::dsl::std_with(json!({"limits": {"maxBufferedBytes": 100, "slowConsumer": "drop"}})));
    bcast = bcast
        .backpressure(7, 1000)
        .cmd(json!({"command": "disconnect", "clientId": "c9"}))
        .cmd(json!({"command": "broadcast", "message": {"all": true}}))
        .closes(&[4001])
        .features(&["fanout:many", "slow-consumer:drop"]);

    vec![event, publish, filtered, room, demo, bcast]
}
