//! Heartbeat: pings at the interval, liveness, the 4000 close, no overlapping pings.

use serde_json::json;

use crate::dsl::{std_with, Sc};

fn hb() -> serde_json::Value {
    std_with(json!({"heartbeatInterval": 1000, "heartbeatTimeout": 300}))
}

/// The scenarios of this area.
pub fn scenarios() -> Vec<Sc> {
    vec![
        Sc::new("heartbeat/ping-at-interval", "The first ping goes out `heartbeatInterval` after the upgrade (nextTimeout says when); an early timeout input does nothing.")
            .cfg(hb())
            .open(1)
            .open(2)
            .timeout_at(999)
            .timeout_at(1000)
            .features(&["heartbeat:ping"]),
        Sc::new("heartbeat/pong-keeps-alive", "A pong within `heartbeatTimeout` keeps the connection; the next ping follows an interval after the previous one.")
            .cfg(hb())
            .open(1)
            .timeout_at(1000)
            .at(1100)
            .pong(1)
            .timeout_at(1300)
            .timeout_at(2000)
            .features(&["heartbeat:ping", "heartbeat:pong"]),
        Sc::new("heartbeat/timeout-close", "Without any frame within `heartbeatTimeout` after a ping, the connection is closed with 4000 \"heartbeat timeout\"; the others stay.")
            .cfg(hb())
            .open(1)
            .open(2)
            .timeout_at(1000)
            .at(1200)
            .pong(2)
            .timeout_at(1300)
            .close(1, Some(4000))
            .closes(&[4000])
            .limits(&["heartbeatTimeout"])
            .features(&["heartbeat:timeout"]),
        Sc::new("heartbeat/any-frame-counts", "Any frame counts as alive, even an invalid one: an application `ping` and a non-JSON frame both keep connections open.")
            .cfg(hb())
            .open(1)
            .open(2)
            .timeout_at(1000)
            .at(1100)
            .send(1, json!({"type": "ping"}))
            .text(2, "garbage")
            .timeout_at(1300)
            .timeout_at(2000)
            .errors(&["INVALID_JSON"])
            .features(&["heartbeat:any-frame"]),
        Sc::new("heartbeat/single-outstanding-ping", "While a ping is unanswered no second ping is sent; a late pong after the close changes nothing.")
            .cfg(std_with(json!({"heartbeatInterval": 1000, "heartbeatTimeout": 5000})))
            .open(1)
            .timeout_at(1000)
            .timeout_at(2000)
            .timeout_at(6000)
            .pong(1)
            .close(1, Some(4000))
            .closes(&[4000])
            .limits(&["heartbeatTimeout"])
            .features(&["heartbeat:single-outstanding", "heartbeat:timeout"]),
        Sc::new("heartbeat/off", "`heartbeatInterval: 0` schedules no pings: nextTimeout stays null.")
            .cfg(std_with(json!({"heartbeatInterval": 0})))
            .open(1)
            .timeout_at(60_000)
            .send(1, json!({"type": "ping"}))
            .types(&["pong"])
            .features(&["heartbeat:off"]),
        Sc::new("heartbeat/demo-deadline", "The demo deployment schedules the first ping 30 s after the upgrade and closes with 4000 ten seconds after an unanswered ping.")
            .demo()
            .open(1)
            .timeout_at(30_000)
            .timeout_at(40_000)
            .closes(&[4000])
            .limits(&["heartbeatTimeout"])
            .features(&["heartbeat:ping", "heartbeat:timeout"]),
    ]
}
