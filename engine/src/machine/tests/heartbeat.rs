//! Heartbeat pings and the timeout close.

use super::*;

#[test]
fn heartbeat_ping_pong_and_timeout_close() {
    let mut h = H::new(json!({"heartbeatInterval": 1000, "heartbeatTimeout": 300}));
    h.open(1, "");
    h.open(2, "");
    assert_eq!(h.e.poll_timeout(), Some(Millis(T0 + 1000)));
    assert!(h.advance_to(T0 + 999).is_empty());
    let acts = h.advance_to(T0 + 1000);
    assert_eq!(
        acts.iter()
            .filter(|a| matches!(a, Action::Ping { .. }))
            .count(),
        2
    );
    assert_eq!(h.e.poll_timeout(), Some(Millis(T0 + 1300)));
    // Conn 1 answers; conn 2 only sends a frame (also counts as alive).
    h.now = T0 + 1100;
    h.input(Input::Pong { conn: ConnId(1) });
    h.send(2, json!({"type":"ping"}));
    assert_eq!(h.e.poll_timeout(), Some(Millis(T0 + 2000)));
    h.advance_to(T0 + 2000);
    h.now = T0 + 2100;
    h.input(Input::Pong { conn: ConnId(1) });
    let acts = h.advance_to(T0 + 2300);
    assert_eq!(
        close_of(&acts, 2),
        Some((close::HEARTBEAT_TIMEOUT, "heartbeat timeout".into()))
    );
    assert!(close_of(&acts, 1).is_none());
    assert_eq!(h.e.metrics().heartbeat_timeouts, 1);
}

#[test]
fn heartbeat_off_means_no_deadline() {
    let mut h = H::new(json!({"heartbeatInterval": 0}));
    h.open(1, "");
    assert_eq!(h.e.poll_timeout(), None);
}
