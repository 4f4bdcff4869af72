//! The `{event, data}` envelope codec through the engine: every answer in the envelope,
//! YektaYar's built-ins, application messages, and mixed-codec fan-out.

use serde_json::{json, Value};

use super::*;
use crate::app::HandlerResponse;

use crate::testing::{frames, request, T0};

fn engine(extra: Value) -> Engine {
    let mut cfg = json!({
        "routes": [{"path": "/"}, {"path": "/events", "codec": "event"}],
        "auth": {"apiKeys": {"key_user": {"id": "u1", "role": "user"}}},
        "resources": {"messages": {}},
    });
    if let (Value::Object(c), Value::Object(e)) = (&mut cfg, extra) {
        c.extend(e);
    }
    Engine::with_seed(Config::from_value(cfg).unwrap(), 7).unwrap()
}

fn run(e: &mut Engine, input: Input<'_>) -> Vec<Action> {
    crate::testing::run(e, T0, input)
}

fn open(e: &mut Engine, conn: u64, path: &str, query: &str) -> Vec<Value> {
    let request = request(path, query, &[], "10.0.0.1", &format!("c{conn}"));
    let acts = run(
        e,
        Input::Open {
            conn: ConnId(conn),
            request,
        },
    );
    assert!(matches!(acts[0], Action::Accept { .. }), "{acts:?}");
    frames(&acts, conn)
}

fn ask(e: &mut Engine, conn: u64, msg: Value) -> Vec<Value> {
    let text = msg.to_string();
    let acts = run(
        e,
        Input::Frame {
            conn: ConnId(conn),
            frame: InFrame::Text(&text),
        },
    );
    frames(&acts, conn)
}

#[test]
fn welcome_is_a_connected_event_with_socket_id_and_login_state() {
    let mut e = engine(json!({}));
    let w = open(&mut e, 1, "/events", "");
    assert_eq!(w.len(), 1);
    assert_eq!(w[0]["event"], "connected");
    assert_eq!(w[0]["data"]["socketId"], "c1");
    assert_eq!(w[0]["data"]["isLoggedIn"], false);
    assert_eq!(w[0]["data"]["user"], Value::Null);
    let w = open(&mut e, 2, "/events", "token=key_user");
    assert_eq!(w[0]["data"]["isLoggedIn"], true);
    assert_eq!(w[0]["data"]["user"]["id"], "u1");
    // The JSON route keeps protocol v1.
    let w = open(&mut e, 3, "/", "");
    assert_eq!(w[0]["type"], "connected");
}

#[test]
fn ping_is_answered_with_pong_and_the_id() {
    let mut e = engine(json!({}));
    open(&mut e, 1, "/events", "");
    let out = ask(&mut e, 1, json!({"event": "ping", "id": 4}));
    assert_eq!(
        out,
        vec![json!({"event": "pong", "data": {"timestamp": T0}, "id": 4})]
    );
    let out = ask(&mut e, 1, json!({"event": "ping", "data": {}}));
    assert_eq!(
        out,
        vec![json!({"event": "pong", "data": {"timestamp": T0}})]
    );
}

#[test]
fn yektayar_built_ins_answer_in_their_documented_events() {
    let mut e = engine(json!({}));
    open(&mut e, 1, "/events", "token=key_user");
    let s = ask(&mut e, 1, json!({"event": "status", "id": 1}));
    assert_eq!(s[0]["event"], "status_response");
    assert_eq!(s[0]["id"], 1);
    assert_eq!(s[0]["data"]["connection"]["socketId"], "c1");
    assert_eq!(s[0]["data"]["connection"]["isLoggedIn"], true);
    assert_eq!(s[0]["data"]["server"]["connections"], 1);
    let s = ask(&mut e, 1, json!({"event": "echo", "data": "Hello World"}));
    assert_eq!(s[0]["event"], "echo_response");
    assert_eq!(s[0]["data"]["received"], "Hello World");
    assert_eq!(s[0]["data"]["socketId"], "c1");
    let s = ask(&mut e, 1, json!({"event": "info"}));
    assert_eq!(s[0]["event"], "info_response");
    assert_eq!(s[0]["data"]["websocket"]["path"], "/events");
    assert_eq!(s[0]["data"]["session"]["user"]["id"], "u1");
    let s = ask(
        &mut e,
        1,
        json!({"event": "message", "data": {"content": "hi"}}),
    );
    assert_eq!(
        s[0],
        json!({"event": "message_received", "data": {"success": true, "message": "Message received", "data": {"content": "hi"}}})
    );
    assert_eq!(
        e.metrics().messages_sent_by_type.get("echo_response"),
        Some(&1)
    );
}

#[test]
fn yektayar_built_ins_are_unknown_on_json_routes() {
    let mut e = engine(json!({}));
    open(&mut e, 1, "/", "");
    let out = ask(&mut e, 1, json!({"type": "status", "requestId": 1}));
    assert_eq!(out[0]["code"], "UNKNOWN_MESSAGE_TYPE");
}

#[test]
fn errors_are_error_events_with_code_and_message() {
    let mut e = engine(json!({}));
    open(&mut e, 1, "/events", "");
    let out = ask(&mut e, 1, json!({"event": "nope", "id": "x"}));
    assert_eq!(out[0]["event"], "error");
    assert_eq!(out[0]["data"]["code"], "UNKNOWN_MESSAGE_TYPE");
    assert_eq!(out[0]["id"], "x");
    let out = ask(&mut e, 1, json!({"type": "ping"}));
    assert_eq!(out[0]["data"]["code"], "INVALID_MESSAGE");
    let text = "{oops";
    let acts = run(
        &mut e,
        Input::Frame {
            conn: ConnId(1),
            frame: InFrame::Text(text),
        },
    );
    assert_eq!(frames(&acts, 1)[0]["data"]["code"], "INVALID_JSON");
}

#[test]
fn built_ins_take_their_fields_from_data_and_pushes_are_envelopes_per_codec() {
    let mut e = engine(json!({}));
    open(&mut e, 1, "/events", "");
    open(&mut e, 2, "/", "");
    let out = ask(
        &mut e,
        1,
        json!({"event": "subscribe", "data": {"channel": "news"}, "id": 1}),
    );
    assert_eq!(out[0]["event"], "subscribed");
    assert_eq!(out[0]["data"]["channel"], "news");
    assert_eq!(out[0]["id"], 1);
    ask(&mut e, 2, json!({"type": "subscribe", "channel": "news"}));
    let text = json!({"type": "publish", "channel": "news", "message": {"t": 1}}).to_string();
    let acts = run(
        &mut e,
        Input::Frame {
            conn: ConnId(2),
            frame: InFrame::Text(&text),
        },
    );
    let to1 = frames(&acts, 1);
    assert_eq!(to1[0]["event"], "message");
    assert_eq!(to1[0]["data"]["channel"], "news");
    assert_eq!(to1[0]["data"]["data"], json!({"t": 1}));
    let to2 = frames(&acts, 2);
    assert_eq!(to2[0]["type"], "published");
}

#[test]
fn application_messages_reply_in_the_envelope_and_override_built_ins() {
    let mut e = engine(json!({"messages": {"chat": {}, "message": {}}}));
    open(&mut e, 1, "/events", "");
    for (event, data) in [("chat", json!({"text": "hi"})), ("message", json!(1))] {
        let text = json!({"event": event, "data": data, "id": 9}).to_string();
        let acts = run(
            &mut e,
            Input::Frame {
                conn: ConnId(1),
                frame: InFrame::Text(&text),
            },
        );
        let (op, msg) = acts
            .iter()
            .find_map(|a| match a {
                Action::Call {
                    op,
                    request: HostRequest::Message(m),
                    ..
                } => Some((*op, m.clone())),
                _ => None,
            })
            .expect("a handler call");
        assert_eq!(msg.message_type, event);
        assert_eq!(msg.data, data);
        let acts = run(
            &mut e,
            Input::Completed {
                op,
                result: HostResult::Handler(Box::new(HandlerResponse::reply(json!({"ok": true})))),
            },
        );
        assert_eq!(
            frames(&acts, 1),
            vec![json!({"event": "reply", "data": {"ok": true}, "id": 9})]
        );
    }
}

#[test]
fn server_api_messages_are_enveloped() {
    let mut e = engine(json!({}));
    open(&mut e, 1, "/events", "");
    let acts = run(
        &mut e,
        Input::Command {
            tag: 1,
            command: serde_json::from_value(
                json!({"command": "broadcast", "message": {"kind": "news"}}),
            )
            .unwrap(),
        },
    );
    assert_eq!(
        frames(&acts, 1),
        vec![json!({"event": "message", "data": {"kind": "news"}})]
    );
}

#[test]
fn handler_calls_fail_in_the_engine_when_the_host_runs_no_handlers() {
    let mut e = engine(json!({"messages": {"chat": {}}}));
    e.set_host_capabilities(crate::HostCapabilities {
        guard: true,
        handlers: false,
    });
    open(&mut e, 1, "/events", "");
    let text = json!({"event": "chat", "data": {"text": "hi"}, "id": 3}).to_string();
    let acts = run(
        &mut e,
        Input::Frame {
            conn: ConnId(1),
            frame: InFrame::Text(&text),
        },
    );
    assert!(
        !acts.iter().any(|a| matches!(a, Action::Call { .. })),
        "no call reaches a host without handlers: {acts:?}"
    );
    let out = frames(&acts, 1);
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0]["event"], "error");
    assert_eq!(out[0]["data"]["code"], "INTERNAL_ERROR");
    assert_eq!(out[0]["id"], 3);
    assert_eq!(e.metrics().handler_failures, 1);
}
