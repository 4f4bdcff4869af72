//! The frame pipeline: decoding errors, `requestId`, binary frames, ping.

use serde_json::json;

use crate::dsl::Sc;

/// The scenarios of this area.
pub fn scenarios() -> Vec<Sc> {
    vec![
        Sc::new("frames/ping-pong", "`ping` is answered with `pong` carrying the server time in epoch ms; without requestId the answer has none.")
            .demo()
            .open(1)
            .send(1, json!({"type": "ping", "requestId": "p1"}))
            .send(1, json!({"type": "ping"}))
            .types(&["pong"]),
        Sc::new("frames/invalid-json", "A frame that is not JSON gets INVALID_JSON without requestId, and the connection stays usable.")
            .demo()
            .open(1)
            .text(1, "{nope")
            .text(1, r#"{"type":"ping","requestId":1"#)
            .send(1, json!({"type": "ping", "requestId": 2}))
            .errors(&["INVALID_JSON"])
            .types(&["error", "pong"]),
        Sc::new("frames/not-an-object", "JSON that is not an object (null, array, number, string, boolean) gets INVALID_MESSAGE without requestId; the server keeps running.")
            .demo()
            .open(1)
            .text(1, "null")
            .text(1, "[1,2]")
            .text(1, "42")
            .text(1, "\"ping\"")
            .text(1, "true")
            .send(1, json!({"type": "ping"}))
            .errors(&["INVALID_MESSAGE"])
            .types(&["pong"]),
        Sc::new("frames/missing-or-bad-type", "An object without `type`, or with a non-string `type`, gets INVALID_MESSAGE with its requestId echoed.")
            .demo()
            .open(1)
            .send(1, json!({"requestId": 5}))
            .send(1, json!({"type": 7, "requestId": "x"}))
            .send(1, json!({"type": null}))
            .errors(&["INVALID_MESSAGE"]),
        Sc::new("frames/unknown-type", "Unknown types are case-sensitive (`PING`) and include s3db.js's `channel:update`: UNKNOWN_MESSAGE_TYPE with requestId echoed (even \"\").")
            .demo()
            .open(1)
            .send(1, json!({"type": "PING", "requestId": ""}))
            .send(1, json!({"type": "channel:update", "channel": "x", "requestId": 3}))
            .send(1, json!({"type": "hello"}))
            .errors(&["UNKNOWN_MESSAGE_TYPE"]),
        Sc::new("frames/missing-or-wrong-field", "A required field missing or of the wrong type gets INVALID_MESSAGE naming the field, with requestId.")
            .demo()
            .open(1)
            .send(1, json!({"type": "get", "resource": "messages", "requestId": 7}))
            .send(1, json!({"type": "direct", "to": "c1", "ack": "yes", "requestId": 8}))
            .send(1, json!({"type": "publish", "requestId": 9}))
            .send(1, json!({"type": "insert", "resource": "messages", "data": [1], "requestId": 10}))
            .send(1, json!({"type": "list", "resource": "messages", "limit": -1, "requestId": 11}))
            .errors(&["INVALID_MESSAGE"]),
        Sc::new("frames/request-id-echo", "`requestId` is echoed as the exact JSON value: 0, \"\", false, null, numbers, strings and objects.")
            .demo()
            .open(1)
            .send(1, json!({"type": "ping", "requestId": 0}))
            .send(1, json!({"type": "ping", "requestId": ""}))
            .send(1, json!({"type": "ping", "requestId": false}))
            .send(1, json!({"type": "ping", "requestId": null}))
            .send(1, json!({"type": "ping", "requestId": 1.5}))
            .send(1, json!({"type": "ping", "requestId": {"a": [1, "b"]}}))
            .send(1, json!({"type": "nope", "requestId": [0]}))
            .types(&["pong"])
            .errors(&["UNKNOWN_MESSAGE_TYPE"])
            .features(&["request-id:echo"]),
        Sc::new("frames/lenient-decoding", "Unknown extra fields are ignored and `null` in an optional field means absent.")
            .demo()
            .open(1)
            .send(1, json!({"type": "ping", "extra": {"x": 1}, "requestId": 1}))
            .send(1, json!({"type": "subscribe", "resource": "messages", "channel": null, "filter": null, "events": null, "requestId": 2}))
            .types(&["pong", "subscribed"]),
        Sc::new("frames/binary-json", "A binary frame holding UTF-8 JSON is treated exactly like text; a binary frame that is not UTF-8 JSON gets INVALID_JSON.")
            .demo()
            .open(1)
            .binary(1, br#"{"type":"ping","requestId":"bin"}"#)
            .binary(1, &[0xff, 0xfe, 0x00])
            .types(&["pong"])
            .errors(&["INVALID_JSON"])
            .features(&["frames:binary"]),
        Sc::new("frames/client-close", "A client close (1000) releases the connection: later frames on it are ignored and a new client may connect.")
            .open(1)
            .send(1, json!({"type": "subscribe", "channel": "news"}))
            .close(1, Some(1000))
            .send(1, json!({"type": "ping"}))
            .open(2)
            .send(2, json!({"type": "publish", "channel": "news", "requestId": 1}))
            .closes(&[1000])
            .types(&["published"])
            .features(&["close:cleanup"]),
        Sc::new("frames/unknown-connection-inputs", "Frames, pongs, closes and backpressure for a connection the engine does not know are ignored.")
            .send(9, json!({"type": "ping"}))
            .pong(9)
            .backpressure(9, 10)
            .close(9, None)
            .open(1)
            .send(1, json!({"type": "ping"}))
            .types(&["pong"]),
    ]
}
