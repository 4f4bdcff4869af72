//! Direct messages between clients.

use serde_json::json;

use crate::dsl::Sc;

/// The scenarios of this area.
pub fn scenarios() -> Vec<Sc> {
    vec![
        Sc::new("direct/with-ack", "`direct` delivers to the client with that id; with `ack` the sender gets `sent` with delivered 1.")
            .demo()
            .open(1)
            .open(2)
            .send(1, json!({"type": "direct", "to": "c2", "data": {"hello": true}, "ack": true, "requestId": 14}))
            .types(&["direct", "sent"]),
        Sc::new("direct/without-ack", "Without `ack` a successful direct message has no answer; without `data` the push has no `data`.")
            .demo()
            .open(1)
            .open(2)
            .send(1, json!({"type": "direct", "to": "c2", "data": "hi"}))
            .send(1, json!({"type": "direct", "to": "c2"}))
            .types(&["direct"]),
        Sc::new("direct/to-self", "A client may send a direct message to itself.")
            .demo()
            .open(1)
            .send(1, json!({"type": "direct", "to": "c1", "data": 1, "ack": true, "requestId": 1}))
            .types(&["direct", "sent"]),
        Sc::new("direct/unknown-recipient", "A direct message to a client id that is not connected is NOT_FOUND, with or without ack.")
            .demo()
            .open(1)
            .send(1, json!({"type": "direct", "to": "ghost", "data": 1, "requestId": 1}))
            .send(1, json!({"type": "direct", "to": "ghost", "ack": true, "requestId": 2}))
            .errors(&["NOT_FOUND"]),
        Sc::new("direct/recipient-gone", "After the recipient disconnects, direct messages to it are NOT_FOUND.")
            .demo()
            .open(1)
            .open(2)
            .close(2, Some(1000))
            .send(1, json!({"type": "direct", "to": "c2", "data": 1, "requestId": 1}))
            .errors(&["NOT_FOUND"]),
        Sc::new("direct/recipient-closing", "A recipient the server is closing (here after an oversize frame) is NOT_FOUND before the host reports the close.")
            .cfg(crate::dsl::std_with(json!({"maxPayloadSize": 64})))
            .open(1)
            .open(2)
            .padded(2, r#"{"type":"ping","pad":"{pad}"}"#, 100)
            .send(1, json!({"type": "direct", "to": "c2", "data": 1, "requestId": 1}))
            .errors(&["NOT_FOUND", "PAYLOAD_TOO_LARGE"])
            .closes(&[1009]),
    ]
}
