//! Inbound frames: request ids, malformed and oversize frames, rate limiting.

use super::*;

#[test]
fn request_id_is_echoed_as_the_same_json_value() {
    let mut h = H::std();
    h.open(1, "");
    for rid in [
        json!(0),
        json!(""),
        json!(null),
        json!(42),
        json!("r1"),
        json!({"a":[1]}),
    ] {
        let f = h.ask(1, json!({"type":"ping","requestId":rid}));
        assert_eq!(f[0]["type"], "pong");
        assert_eq!(f[0]["requestId"], rid);
        assert_eq!(f[0]["timestamp"], T0);
        let f = h.ask(1, json!({"type":"nope","requestId":rid}));
        assert_eq!(f[0]["code"], "UNKNOWN_MESSAGE_TYPE");
        assert_eq!(f[0]["requestId"], rid);
    }
    let f = h.ask(1, json!({"type":"ping"}));
    assert!(f[0].get("requestId").is_none());
}

#[test]
fn malformed_frames_get_errors_and_the_connection_survives() {
    let mut h = H::std();
    h.open(1, "");
    for (text, code) in [
        ("{not json", "INVALID_JSON"),
        ("null", "INVALID_MESSAGE"),
        ("[1,2]", "INVALID_MESSAGE"),
        ("42", "INVALID_MESSAGE"),
        (r#"{"type":"subscribe"}"#, "INVALID_MESSAGE"),
        (r#"{"type":"get","resource":"messages"}"#, "INVALID_MESSAGE"),
    ] {
        let acts = h.input(Input::Frame {
            conn: ConnId(1),
            frame: InFrame::Text(text),
        });
        let f = frames(&acts, 1);
        assert_eq!(f[0]["code"], code, "{text}");
        assert!(close_of(&acts, 1).is_none());
    }
    assert_eq!(h.ask(1, json!({"type":"ping"}))[0]["type"], "pong");
}

#[test]
fn oversize_frame_gets_error_then_close_1009() {
    let mut h = H::new(json!({"maxPayloadSize": 100}));
    h.open(1, "");
    let big = format!(r#"{{"type":"ping","pad":"{}"}}"#, "x".repeat(200));
    let acts = h.input(Input::Frame {
        conn: ConnId(1),
        frame: InFrame::Text(&big),
    });
    assert_eq!(frames(&acts, 1)[0]["code"], "PAYLOAD_TOO_LARGE");
    assert_eq!(close_of(&acts, 1).unwrap().0, close::MESSAGE_TOO_BIG);
    // After the close, further input is ignored.
    assert!(h.send(1, json!({"type":"ping"})).is_empty());
    h.input(Input::Closed {
        conn: ConnId(1),
        code: None,
    });
    assert_eq!(h.e.connection_count(), 0);
}

#[test]
fn rate_limit_refuses_then_closes_after_repeated_abuse() {
    let mut h = H::new(
        json!({"rateLimit":{"enabled":true,"windowMs":1000,"maxRequests":2,"closeAfter":3}}),
    );
    h.open(1, "");
    assert_eq!(h.ask(1, json!({"type":"ping"}))[0]["type"], "pong");
    assert_eq!(h.ask(1, json!({"type":"ping"}))[0]["type"], "pong");
    let f = h.ask(1, json!({"type":"ping","requestId":"r3"}));
    assert_eq!(f[0]["code"], "RATE_LIMIT_EXCEEDED");
    assert_eq!(f[0]["requestId"], "r3");
    // Refill after half a window gives one token and resets the abuse count.
    h.now += 500;
    assert_eq!(h.ask(1, json!({"type":"ping"}))[0]["type"], "pong");
    for _ in 0..2 {
        let acts = h.send(1, json!({"type":"ping"}));
        assert!(close_of(&acts, 1).is_none());
    }
    let acts = h.send(1, json!({"type":"ping"}));
    assert_eq!(close_of(&acts, 1).unwrap().0, close::POLICY_VIOLATION);
}
