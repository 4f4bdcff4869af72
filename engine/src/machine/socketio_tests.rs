//! Socket.IO v5 / Engine.IO v4 sessions through the engine (WebSocket transport).

use serde_json::{json, Value};

use super::*;
use crate::app::HandlerResponse;

use crate::testing::{request, run, sent, T0};

fn engine(extra: Value) -> Engine {
    let mut cfg = json!({
        "routes": [{"path": "/"}, {"path": "/socket.io", "codec": "socket.io"}],
        "heartbeatInterval": 300,
        "heartbeatTimeout": 200,
        "maxPayloadSize": 1000000,
        "socketIo": {"namespaces": ["/", "/custom"]},
        "auth": {"apiKeys": {"key_user": {"id": "u1", "role": "user"}}},
    });
    if let (Value::Object(c), Value::Object(e)) = (&mut cfg, extra) {
        c.extend(e);
    }
    Engine::with_seed(Config::from_value(cfg).unwrap(), 7).unwrap()
}

fn upgrade(e: &mut Engine, conn: u64, query: &str) -> Vec<Action> {
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

/// Frames to `conn` as text (binary frames as `<bytes>`).
fn out(actions: &[Action], conn: u64) -> Vec<String> {
    sent(actions, conn)
        .map(|f| match f {
            Frame::Text(t) => t.to_string(),
            Frame::Binary(b) => format!("<{b:?}>"),
        })
        .collect()
}

fn text(e: &mut Engine, conn: u64, t: &str) -> Vec<Action> {
    run(
        e,
        T0,
        Input::Frame {
            conn: ConnId(conn),
            frame: InFrame::Text(t),
        },
    )
}

fn binary(e: &mut Engine, conn: u64, b: &[u8]) -> Vec<Action> {
    run(
        e,
        T0,
        Input::Frame {
            conn: ConnId(conn),
            frame: InFrame::Binary(b),
        },
    )
}

fn connected(e: &mut Engine, conn: u64) {
    upgrade(e, conn, "EIO=4&transport=websocket");
    let acts = text(e, conn, "40");
    assert_eq!(
        out(&acts, conn),
        vec![r#"40{"sid":"c1"}"#.replace("c1", &format!("c{conn}"))]
    );
}

fn closed(actions: &[Action]) -> bool {
    actions.iter().any(|a| matches!(a, Action::Close { .. }))
}

#[test]
fn the_open_packet_announces_sid_heartbeat_and_max_payload() {
    let mut e = engine(json!({}));
    let acts = upgrade(&mut e, 1, "EIO=4&transport=websocket");
    assert!(matches!(acts[0], Action::Accept { .. }));
    let frames = out(&acts, 1);
    assert_eq!(frames.len(), 1);
    assert!(frames[0].starts_with('0'));
    let open: Value = serde_json::from_str(&frames[0][1..]).unwrap();
    assert_eq!(
        open,
        json!({"sid": "c1", "upgrades": [], "pingInterval": 300, "pingTimeout": 200, "maxPayload": 1000000})
    );
}

#[test]
fn upgrades_without_eio_4_websocket_are_refused_with_400() {
    let mut e = engine(json!({}));
    for (i, q) in [
        "transport=websocket",
        "EIO=abc&transport=websocket",
        "EIO=4",
        "EIO=4&transport=abc",
    ]
    .iter()
    .enumerate()
    {
        let acts = upgrade(&mut e, 10 + i as u64, q);
        match &acts[0] {
            Action::Reject { status, body, .. } => {
                assert_eq!(*status, 400, "{q}");
                let b: Value = serde_json::from_str(body).unwrap();
                assert!(b["code"].is_u64() && b["message"].is_string(), "{body}");
            }
            other => panic!("{q}: {other:?}"),
        }
    }
}

#[test]
fn heartbeat_pings_are_packets_and_a_missing_pong_closes() {
    let mut e = engine(json!({}));
    upgrade(&mut e, 1, "EIO=4&transport=websocket");
    for i in 0..3u64 {
        let t = T0 + 300 * (i + 1);
        let acts = run(&mut e, t, Input::Timeout);
        assert_eq!(out(&acts, 1), vec!["2"], "round {i}");
        run(
            &mut e,
            t,
            Input::Frame {
                conn: ConnId(1),
                frame: InFrame::Text("3"),
            },
        );
    }
    let acts = run(&mut e, T0 + 1200, Input::Timeout);
    assert_eq!(out(&acts, 1), vec!["2"]);
    let acts = run(&mut e, T0 + 1400, Input::Timeout);
    assert!(closed(&acts), "{acts:?}");
}

#[test]
fn close_probe_and_invalid_packets() {
    let mut e = engine(json!({}));
    upgrade(&mut e, 1, "EIO=4&transport=websocket");
    assert_eq!(out(&text(&mut e, 1, "2probe"), 1), vec!["3probe"]);
    assert!(closed(&text(&mut e, 1, "1")));
    upgrade(&mut e, 2, "EIO=4&transport=websocket");
    assert!(closed(&text(&mut e, 2, "abc")));
    upgrade(&mut e, 3, "EIO=4&transport=websocket");
    assert!(closed(&text(&mut e, 3, "4abc")));
}

#[test]
fn namespaces_connect_with_auth_and_unknown_ones_are_refused() {
    let mut e = engine(json!({}));
    upgrade(&mut e, 1, "EIO=4&transport=websocket");
    assert_eq!(
        out(&text(&mut e, 1, "40/custom,"), 1),
        vec![r#"40/custom,{"sid":"c1"}"#]
    );
    assert_eq!(
        out(&text(&mut e, 1, "40/random"), 1),
        vec![r#"44/random,{"message":"Invalid namespace"}"#]
    );
    let acts = text(&mut e, 1, r#"40{"token":"key_user"}"#);
    assert_eq!(out(&acts, 1), vec![r#"40{"sid":"c1"}"#]);
    let s = text(&mut e, 1, r#"42["status"]"#);
    assert!(out(&s, 1)[0].contains(r#""isLoggedIn":true"#), "{s:?}");
    let acts = text(&mut e, 1, r#"40{"token":"bad"}"#);
    let f = out(&acts, 1);
    assert!(f[0].starts_with("44{"), "{f:?}");
    assert!(f[0].contains("UNAUTHORIZED"), "{f:?}");
}

#[test]
fn events_are_requests_answered_by_ack_or_event_in_their_namespace() {
    let mut e = engine(json!({}));
    connected(&mut e, 1);
    assert_eq!(
        out(&text(&mut e, 1, r#"425["ping"]"#), 1),
        vec![format!(r#"435[{{"timestamp":{T0}}}]"#)]
    );
    assert_eq!(
        out(&text(&mut e, 1, r#"42["ping"]"#), 1),
        vec![format!(r#"42["pong",{{"timestamp":{T0}}}]"#)]
    );
    let f = out(
        &text(&mut e, 1, r#"427["subscribe",{"channel":"news"}]"#),
        1,
    );
    assert!(
        f[0].starts_with(r#"437[{"#) && f[0].contains(r#""channel":"news""#),
        "{f:?}"
    );
    assert_eq!(
        out(&text(&mut e, 1, r#"428["nope",1]"#), 1),
        vec![r#"438[{"error":{"code":"UNKNOWN_MESSAGE_TYPE","message":"Unknown event: nope"}}]"#]
    );
    // Not connected to /custom: ignored.
    assert!(out(&text(&mut e, 1, r#"42/custom,["ping"]"#), 1).is_empty());
    text(&mut e, 1, "40/custom,");
    assert_eq!(
        out(&text(&mut e, 1, r#"42/custom,3["ping"]"#), 1),
        vec![format!(r#"43/custom,3[{{"timestamp":{T0}}}]"#)]
    );
    // Disconnecting a namespace keeps the session.
    text(&mut e, 1, "41/custom,");
    assert!(out(&text(&mut e, 1, r#"42/custom,["ping"]"#), 1).is_empty());
    assert_eq!(out(&text(&mut e, 1, r#"42["ping"]"#), 1).len(), 1);
}

#[test]
fn pushes_reach_socket_io_clients_as_events_next_to_other_codecs() {
    let mut e = engine(json!({}));
    connected(&mut e, 1);
    let request = UpgradeRequest {
        path: "/".into(),
        query: String::new(),
        headers: vec![],
        peer: "10.0.0.1".into(),
        client_id: "c2".into(),
    };
    run(
        &mut e,
        T0,
        Input::Open {
            conn: ConnId(2),
            request,
        },
    );
    text(&mut e, 1, r#"42["join",{"room":"lobby"}]"#);
    let t = json!({"type": "join", "room": "lobby"}).to_string();
    let acts = text(&mut e, 2, &t);
    assert!(out(&acts, 1)[0].starts_with(r#"42["room:joined","#));
    let t = json!({"type": "room:message", "room": "lobby", "data": {"x": 1}}).to_string();
    let acts = text(&mut e, 2, &t);
    let f = out(&acts, 1);
    assert!(
        f[0].starts_with(r#"42["room:message",{"#) && f[0].contains(r#""data":{"x":1}"#),
        "{f:?}"
    );
}

#[test]
fn application_events_carry_args_and_binary_attachments_round_trip() {
    let mut e = engine(json!({"messages": {"message": {}}}));
    connected(&mut e, 1);
    let acts = text(&mut e, 1, r#"42["message",1,"2",{"3":[true]}]"#);
    let (op, data) = acts
        .iter()
        .find_map(|a| match a {
            Action::Call {
                op,
                request: HostRequest::Message(m),
                ..
            } => Some((*op, m.data.clone())),
            _ => None,
        })
        .unwrap();
    assert_eq!(data, json!({"$args": [1, "2", {"3": [true]}]}));
    let echo = HandlerResponse {
        commands: vec![
            json!({"command": "send", "message": {"event": "message-back", "data": data}}),
        ],
        ..HandlerResponse::default()
    };
    let acts = run(
        &mut e,
        T0,
        Input::Completed {
            op,
            result: HostResult::Handler(Box::new(echo)),
        },
    );
    assert_eq!(
        out(&acts, 1),
        vec![r#"42["message-back",1,"2",{"3":[true]}]"#]
    );

    let acts = text(
        &mut e,
        1,
        r#"452-["message",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#,
    );
    assert!(acts.is_empty(), "{acts:?}");
    assert!(binary(&mut e, 1, &[1, 2, 3]).is_empty());
    let acts = binary(&mut e, 1, &[4, 5, 6]);
    let (op, data) = acts
        .iter()
        .find_map(|a| match a {
            Action::Call {
                op,
                request: HostRequest::Message(m),
                ..
            } => Some((*op, m.data.clone())),
            _ => None,
        })
        .unwrap();
    assert_eq!(
        data,
        json!({"$args": [{"$binary": "AQID"}, {"$binary": "BAUG"}]})
    );
    let echo = HandlerResponse {
        commands: vec![
            json!({"command": "send", "message": {"event": "message-back", "data": data}}),
        ],
        reply: Some(json!({"$binary": "Bw=="})),
        ..HandlerResponse::default()
    };
    let acts = run(
        &mut e,
        T0,
        Input::Completed {
            op,
            result: HostResult::Handler(Box::new(echo)),
        },
    );
    assert_eq!(
        out(&acts, 1),
        vec![
            r#"452-["message-back",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#
                .to_string(),
            "<[1, 2, 3]>".to_string(),
            "<[4, 5, 6]>".to_string(),
            r#"42["reply",{"_placeholder":true,"num":0}]"#.replace("42", "451-"),
            "<[7]>".to_string(),
        ]
    );
    // A binary frame nobody announced closes the session.
    assert!(closed(&binary(&mut e, 1, &[9])));
}

#[test]
fn server_disconnect_sends_disconnect_packets_first() {
    let mut e = engine(json!({}));
    connected(&mut e, 1);
    text(&mut e, 1, "40/custom,");
    let acts = run(
        &mut e,
        T0,
        Input::Command {
            tag: 1,
            command: serde_json::from_value(json!({"command": "disconnect", "clientId": "c1"}))
                .unwrap(),
        },
    );
    assert_eq!(out(&acts, 1), vec!["41", "41/custom,"]);
    assert!(closed(&acts));
}

#[test]
fn without_configured_authentication_the_auth_payload_is_application_data() {
    let cfg = json!({
        "routes": [{"path": "/socket.io", "codec": "socket.io"}],
        "messages": {"connection": {}},
    });
    let mut e = Engine::with_seed(Config::from_value(cfg).unwrap(), 7).unwrap();
    upgrade(&mut e, 1, "EIO=4&transport=websocket");
    let acts = text(&mut e, 1, r#"40{"token":"123"}"#);
    assert_eq!(out(&acts, 1), vec![r#"40{"sid":"c1"}"#]);
    let call = acts
        .iter()
        .find_map(|a| match a {
            Action::Call {
                request: HostRequest::Message(m),
                ..
            } => Some(m.clone()),
            _ => None,
        })
        .expect("the connection handler is called");
    assert_eq!(call.message_type, "connection");
    assert_eq!(
        call.data,
        json!({"namespace": "/", "auth": {"token": "123"}})
    );
}

#[test]
fn a_bare_engine_io_session_passes_message_packets_to_the_message_handler() {
    let cfg = json!({
        "routes": [{"path": "/engine.io", "codec": "engine.io"}],
        "heartbeatInterval": 300,
        "heartbeatTimeout": 200,
        "messages": {"message": {}},
    });
    let mut e = Engine::with_seed(Config::from_value(cfg).unwrap(), 7).unwrap();
    let request = UpgradeRequest {
        path: "/engine.io/".into(),
        query: "EIO=4&transport=websocket".into(),
        headers: vec![],
        peer: "10.0.0.1".into(),
        client_id: "c1".into(),
    };
    let acts = run(
        &mut e,
        T0,
        Input::Open {
            conn: ConnId(1),
            request,
        },
    );
    assert!(out(&acts, 1)[0].starts_with(r#"0{"sid":"c1""#));
    for (input, expected) in [
        (InFrame::Text("4hello"), json!("hello")),
        (
            InFrame::Binary(&[1, 2, 3, 4]),
            json!({"$binary": "AQIDBA=="}),
        ),
    ] {
        let acts = run(
            &mut e,
            T0,
            Input::Frame {
                conn: ConnId(1),
                frame: input,
            },
        );
        let (op, data) = acts
            .iter()
            .find_map(|a| match a {
                Action::Call {
                    op,
                    request: HostRequest::Message(m),
                    ..
                } => Some((*op, m.data.clone())),
                _ => None,
            })
            .unwrap();
        assert_eq!(data, expected);
        let echo = HandlerResponse {
            commands: vec![
                json!({"command": "send", "message": {"event": "message", "data": data}}),
            ],
            ..HandlerResponse::default()
        };
        let acts = run(
            &mut e,
            T0,
            Input::Completed {
                op,
                result: HostResult::Handler(Box::new(echo)),
            },
        );
        let frames = out(&acts, 1);
        assert_eq!(frames.len(), 1);
        match input {
            InFrame::Text(t) => assert_eq!(frames[0], t),
            InFrame::Binary(_) => assert_eq!(frames[0], "<[1, 2, 3, 4]>"),
        }
    }
    assert!(closed(&text(&mut e, 1, "abc")));
}

#[path = "sio_acks_tests.rs"]
mod acks;
