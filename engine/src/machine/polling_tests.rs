//! Engine.IO v4 long-polling sessions and the polling → WebSocket upgrade.

use serde_json::{json, Value};

use super::*;

use crate::testing::{request, run, T0};

fn engine() -> Engine {
    let cfg = json!({
        "routes": [{"path": "/"}, {"path": "/socket.io", "codec": "socket.io"}],
        "heartbeatInterval": 300,
        "heartbeatTimeout": 200,
        "maxPayloadSize": 1000,
        "socketIo": {"namespaces": ["/", "/custom"]},
    });
    Engine::with_seed(Config::from_value(cfg).unwrap(), 7).unwrap()
}

fn http(e: &mut Engine, now: u64, req: u64, method: &str, query: &str, body: &str) -> Vec<Action> {
    let request = UpgradeRequest {
        path: "/socket.io/".into(),
        query: query.into(),
        headers: vec![],
        peer: "10.0.0.1".into(),
        client_id: "s1".into(),
    };
    let input = Input::Http {
        req,
        method: method.into(),
        request,
        body: body.as_bytes(),
    };
    run(e, now, input)
}

/// The answer to request `req` among `actions`: (status, body).
fn answer(actions: &[Action], req: u64) -> Option<(u16, String)> {
    actions.iter().find_map(|a| match a {
        Action::Respond {
            req: r,
            status,
            body,
            ..
        } if *r == req => Some((*status, body.clone())),
        _ => None,
    })
}

fn poll(e: &mut Engine, now: u64, req: u64) -> Vec<Action> {
    http(e, now, req, "GET", "EIO=4&transport=polling&sid=s1", "")
}

fn post(e: &mut Engine, now: u64, req: u64, body: &str) -> Option<(u16, String)> {
    let acts = http(e, now, req, "POST", "EIO=4&transport=polling&sid=s1", body);
    answer(&acts, req)
}

/// A session `s1` whose handshake was answered.
fn session(e: &mut Engine) {
    let acts = http(e, T0, 1, "GET", "EIO=4&transport=polling", "");
    let (status, body) = answer(&acts, 1).expect("handshake answered");
    assert_eq!(status, 200);
    let open: Value = serde_json::from_str(&body[1..]).unwrap();
    assert_eq!(open["sid"], "s1");
    assert_eq!(open["upgrades"], json!(["websocket"]));
    assert_eq!(e.connection_count(), 1);
}

#[test]
fn a_polling_handshake_answers_the_open_packet_with_the_websocket_upgrade() {
    let mut e = engine();
    session(&mut e);
    // No action reaches the host for the session itself.
    let acts = http(&mut e, T0, 2, "GET", "EIO=4&transport=polling", "");
    assert!(acts.iter().all(|a| matches!(a, Action::Respond { .. })));
}

#[test]
fn bad_polling_requests_get_engine_io_400s() {
    let mut e = engine();
    let cases = [
        ("GET", "transport=polling", 5),
        ("GET", "EIO=abc&transport=polling", 5),
        ("GET", "EIO=4", 0),
        ("GET", "EIO=4&transport=abc", 0),
        ("POST", "EIO=4&transport=polling", 2),
        ("PUT", "EIO=4&transport=polling", 2),
        ("GET", "EIO=4&transport=polling&sid=nope", 1),
    ];
    for (i, (method, query, code)) in cases.into_iter().enumerate() {
        let acts = http(&mut e, T0, i as u64, method, query, "");
        let (status, body) = answer(&acts, i as u64).unwrap();
        assert_eq!(status, 400, "{method} {query}");
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["code"], code, "{method} {query}");
    }
    assert_eq!(e.connection_count(), 0);
}

#[test]
fn posted_packets_are_split_and_answers_batched_into_the_next_poll() {
    let mut e = engine();
    session(&mut e);
    assert_eq!(
        post(&mut e, T0, 2, "40\x1e40/custom,"),
        Some((200, "ok".into()))
    );
    let (status, body) = answer(&poll(&mut e, T0, 3), 3).unwrap();
    assert_eq!(status, 200);
    assert_eq!(body, "40{\"sid\":\"s1\"}\x1e40/custom,{\"sid\":\"s1\"}");
}

#[test]
fn a_held_poll_is_released_by_the_heartbeat_ping_and_the_pong_keeps_the_session() {
    let mut e = engine();
    session(&mut e);
    assert_eq!(answer(&poll(&mut e, T0 + 10, 2), 2), None, "held");
    let acts = run(&mut e, T0 + 300, Input::Timeout);
    assert_eq!(answer(&acts, 2), Some((200, "2".into())));
    assert_eq!(post(&mut e, T0 + 310, 3, "3"), Some((200, "ok".into())));
    run(&mut e, T0 + 500, Input::Timeout);
    assert_eq!(e.connection_count(), 1);
}

#[test]
fn a_missed_pong_closes_the_session_even_before_the_host_timer_fires() {
    let mut e = engine();
    session(&mut e);
    run(&mut e, T0 + 300, Input::Timeout);
    // The GET arrives when the pong is overdue: the engine fires the deadline first.
    let (status, _) = answer(&poll(&mut e, T0 + 501, 2), 2).unwrap();
    assert_eq!(status, 400);
    assert_eq!(e.connection_count(), 0);
}

#[test]
fn overlapping_polls_close_the_session_and_release_the_first_with_a_close_packet() {
    let mut e = engine();
    session(&mut e);
    assert_eq!(answer(&poll(&mut e, T0, 2), 2), None);
    let acts = poll(&mut e, T0, 3);
    assert_eq!(answer(&acts, 2), Some((200, "1".into())));
    assert_eq!(answer(&acts, 3).map(|a| a.0), Some(400));
    assert_eq!(answer(&poll(&mut e, T0, 4), 4).map(|a| a.0), Some(400));
    assert_eq!(e.connection_count(), 0);
}

#[test]
fn an_aborted_poll_closes_the_session() {
    let mut e = engine();
    session(&mut e);
    poll(&mut e, T0, 2);
    run(&mut e, T0, Input::HttpAborted { req: 2 });
    assert_eq!(e.connection_count(), 0);
    assert_eq!(answer(&poll(&mut e, T0, 3), 3).map(|a| a.0), Some(400));
}

#[test]
fn the_client_close_packet_ends_a_held_poll_with_a_noop() {
    let mut e = engine();
    session(&mut e);
    poll(&mut e, T0, 2);
    let acts = http(&mut e, T0, 3, "POST", "EIO=4&transport=polling&sid=s1", "1");
    assert_eq!(answer(&acts, 2), Some((200, "6".into())));
    assert_eq!(answer(&acts, 3), Some((200, "ok".into())));
    assert_eq!(e.connection_count(), 0);
}

#[test]
fn a_poll_racing_the_client_close_still_gets_its_noop_once() {
    let mut e = engine();
    session(&mut e);
    assert_eq!(post(&mut e, T0, 2, "1"), Some((200, "ok".into())));
    assert_eq!(answer(&poll(&mut e, T0 + 5, 3), 3), Some((200, "6".into())));
    assert_eq!(answer(&poll(&mut e, T0 + 6, 4), 4).map(|a| a.0), Some(400));
}

#[test]
fn an_invalid_packet_closes_the_session_with_a_400() {
    let mut e = engine();
    session(&mut e);
    assert_eq!(post(&mut e, T0, 2, "abc").map(|a| a.0), Some(400));
    assert_eq!(e.connection_count(), 0);
}

#[test]
fn a_post_over_max_payload_is_413_and_closes_the_session() {
    let mut e = engine();
    session(&mut e);
    let big = format!("4{}", "x".repeat(1000));
    assert_eq!(post(&mut e, T0, 2, &big).map(|a| a.0), Some(413));
    assert_eq!(e.connection_count(), 0);
}

fn ws_open(e: &mut Engine, conn: u64, query: &str) -> Vec<Action> {
    let request = request("/socket.io/", query, &[], "10.0.0.1", &format!("c{conn}"));
    run(
        e,
        T0,
        Input::Open {
            conn: ConnId(conn),
            request,
        },
    )
}

fn ws_text(e: &mut Engine, conn: u64, t: &str) -> Vec<Action> {
    let frame = InFrame::Text(t);
    run(
        e,
        T0,
        Input::Frame {
            conn: ConnId(conn),
            frame,
        },
    )
}

fn sent_to(actions: &[Action], conn: u64) -> Vec<String> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send { conn: c, frame } if c.0 == conn => frame.as_text().map(str::to_string),
            _ => None,
        })
        .collect()
}

#[test]
fn the_upgrade_probe_releases_the_poll_with_a_noop_and_moves_the_session() {
    let mut e = engine();
    session(&mut e);
    post(&mut e, T0, 2, "40");
    poll(&mut e, T0, 3); // takes the CONNECT answer
    assert_eq!(answer(&poll(&mut e, T0, 4), 4), None, "held");
    let acts = ws_open(&mut e, 9, "EIO=4&transport=websocket&sid=s1");
    assert!(matches!(
        acts[..],
        [Action::Accept {
            conn: ConnId(9),
            ..
        }]
    ));
    let acts = ws_text(&mut e, 9, "2probe");
    assert_eq!(sent_to(&acts, 9), vec!["3probe"]);
    // The held poll gets a noop after Engine.IO's 100 ms check; so does a new one.
    assert_eq!(answer(&acts, 4), None);
    let acts = run(&mut e, T0 + 100, Input::Timeout);
    assert_eq!(answer(&acts, 4), Some((200, "6".into())));
    assert_eq!(answer(&poll(&mut e, T0 + 100, 5), 5), None);
    let acts = run(&mut e, T0 + 200, Input::Timeout);
    assert_eq!(answer(&acts, 5), Some((200, "6".into())));
    // A poll still held when `5` arrives is refused: the session is upgraded.
    assert_eq!(answer(&poll(&mut e, T0 + 200, 7), 7), None);
    let acts = ws_text(&mut e, 9, "5");
    assert_eq!(answer(&acts, 7).map(|a| a.0), Some(400));
    // The session now lives on the socket: answers go there, polls are refused.
    let acts = ws_text(&mut e, 9, "40/custom,");
    assert_eq!(sent_to(&acts, 9), vec!["40/custom,{\"sid\":\"s1\"}"]);
    assert_eq!(answer(&poll(&mut e, T0, 6), 6).map(|a| a.0), Some(400));
    let acts = run(&mut e, T0 + 300, Input::Timeout);
    assert_eq!(sent_to(&acts, 9), vec!["2"]);
    // A second socket for the same session is accepted and closed at once.
    let acts = ws_open(&mut e, 10, "EIO=4&transport=websocket&sid=s1");
    assert!(acts.iter().any(|a| matches!(
        a,
        Action::Close {
            conn: ConnId(10),
            ..
        }
    )));
    run(
        &mut e,
        T0,
        Input::Closed {
            conn: ConnId(10),
            code: None,
        },
    );
    assert_eq!(e.connection_count(), 1);
    run(
        &mut e,
        T0,
        Input::Closed {
            conn: ConnId(9),
            code: Some(1000),
        },
    );
    assert_eq!(e.connection_count(), 0);
}

#[test]
fn a_websocket_naming_an_unknown_session_is_refused() {
    let mut e = engine();
    let acts = ws_open(&mut e, 9, "EIO=4&transport=websocket&sid=nope");
    assert!(matches!(
        acts[..],
        [Action::Reject {
            conn: ConnId(9),
            status: 400,
            ..
        }]
    ));
}

#[test]
fn binary_packets_travel_base64_in_payloads() {
    let frames = [
        Frame::Text("4hello".into()),
        Frame::Binary(vec![1, 2, 3, 4].into()),
    ];
    assert_eq!(polling::payload(&frames), "4hello\x1ebAQIDBA==");
}

#[test]
fn a_held_poll_waits_for_the_answers_to_a_posts_packets_then_takes_them_all() {
    let cfg = json!({
        "routes": [{"path": "/socket.io", "codec": "engine.io"}],
        "heartbeatInterval": 300,
        "heartbeatTimeout": 200,
        "messages": {"message": {}},
    });
    let mut e = Engine::with_seed(Config::from_value(cfg).unwrap(), 7).unwrap();
    session(&mut e);
    let acts = http(
        &mut e,
        T0,
        2,
        "POST",
        "EIO=4&transport=polling&sid=s1",
        "4a\x1e4b",
    );
    assert_eq!(answer(&acts, 2), Some((200, "ok".into())));
    let ops: Vec<OpId> = acts
        .iter()
        .filter_map(|a| match a {
            Action::Call { op, .. } => Some(*op),
            _ => None,
        })
        .collect();
    assert_eq!(ops.len(), 2);
    assert_eq!(answer(&poll(&mut e, T0, 3), 3), None);
    let done = |op| Input::Completed {
        op,
        result: HostResult::Handler(Box::new(crate::app::HandlerResponse::reply(json!("r")))),
    };
    let acts = run(&mut e, T0 + 1, done(ops[0]));
    assert_eq!(answer(&acts, 3), None, "one answer still to come");
    let acts = run(&mut e, T0 + 2, done(ops[1]));
    let (status, body) = answer(&acts, 3).unwrap();
    assert_eq!(status, 200);
    assert_eq!(body.split('\x1e').count(), 2, "{body}");
}
