//! Acknowledgements requested by the server (`emitWithAck`), through the engine.

use super::*;

fn ask(e: &mut Engine, now: u64, tag: u64, cmd: Value) -> Vec<Action> {
    let mut c = json!({"command": "emitWithAck", "clientId": "c1", "event": "ask"});
    if let (Value::Object(c), Value::Object(extra)) = (&mut c, cmd) {
        c.extend(extra);
    }
    run(
        e,
        now,
        Input::Command {
            tag,
            command: serde_json::from_value(c).unwrap(),
        },
    )
}

/// A command's outcome: its value, or its error code and message.
type Outcome = Result<Value, (ErrorCode, String)>;

/// The command results among the actions, with their tags.
fn results(actions: &[Action]) -> Vec<(u64, Outcome)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::CommandResult { tag, result } => {
                Some((*tag, result.clone().map_err(|e| (e.code, e.message))))
            }
            _ => None,
        })
        .collect()
}

#[test]
fn emit_with_ack_sends_an_event_with_an_ack_id_and_answers_with_the_clients_ack() {
    let mut e = engine(json!({}));
    connected(&mut e, 1);
    let acts = ask(&mut e, T0, 7, json!({"data": {"q": 1}}));
    assert_eq!(out(&acts, 1), vec![r#"420["ask",{"q":1}]"#]);
    assert!(
        results(&acts).is_empty(),
        "answered only once the client acks"
    );
    let acts = ask(&mut e, T0, 8, json!({"data": {"$args": [1, "two"]}}));
    assert_eq!(out(&acts, 1), vec![r#"421["ask",1,"two"]"#]);
    // Acks may come in any order.
    let acts = text(&mut e, 1, r#"431[]"#);
    assert_eq!(
        results(&acts),
        vec![(8, Ok(json!({"clientId": "c1", "data": null})))]
    );
    let acts = text(&mut e, 1, r#"430["yes",2]"#);
    assert_eq!(
        results(&acts),
        vec![(
            7,
            Ok(json!({"clientId": "c1", "data": {"$args": ["yes", 2]}}))
        )]
    );
    assert_eq!(e.metrics().sio_acks_requested, 2);
    assert_eq!(e.metrics().sio_acks_received, 2);
    assert_eq!(
        e.poll_timeout(),
        Some(Millis(T0 + 300)),
        "only the heartbeat is left"
    );
}

#[test]
fn acks_are_matched_per_namespace() {
    let mut e = engine(json!({}));
    connected(&mut e, 1);
    text(&mut e, 1, "40/custom,");
    let acts = ask(&mut e, T0, 1, json!({"namespace": "/custom"}));
    assert_eq!(out(&acts, 1), vec![r#"42/custom,0["ask"]"#]);
    // The same id on another namespace is not this ack.
    let acts = text(&mut e, 1, r#"430["wrong"]"#);
    assert!(results(&acts).is_empty());
    assert_eq!(e.metrics().sio_unknown_acks, 1);
    let acts = text(&mut e, 1, r#"43/custom,0["right"]"#);
    assert_eq!(
        results(&acts),
        vec![(1, Ok(json!({"clientId": "c1", "data": "right"})))]
    );
}

#[test]
fn a_binary_ack_delivers_its_attachments_as_binary_values() {
    let mut e = engine(json!({}));
    connected(&mut e, 1);
    ask(&mut e, T0, 3, json!({"data": {"$binary": "AQI="}}));
    let acts = text(&mut e, 1, r#"461-0[{"_placeholder":true,"num":0}]"#);
    assert!(results(&acts).is_empty(), "waits for the attachment");
    let acts = binary(&mut e, 1, &[9, 8]);
    assert_eq!(
        results(&acts),
        vec![(
            3,
            Ok(json!({"clientId": "c1", "data": {"$binary": "CQg="}}))
        )]
    );
}

#[test]
fn an_ask_with_binary_data_is_a_binary_event() {
    let mut e = engine(json!({}));
    connected(&mut e, 1);
    let acts = ask(&mut e, T0, 3, json!({"data": {"$binary": "AQI="}}));
    assert_eq!(
        out(&acts, 1),
        vec![
            r#"451-0["ask",{"_placeholder":true,"num":0}]"#.to_string(),
            "<[1, 2]>".to_string()
        ]
    );
}

#[test]
fn an_ack_that_does_not_come_in_time_is_a_timeout_and_a_late_ack_is_ignored() {
    let mut e = engine(json!({"heartbeatInterval": 0}));
    connected(&mut e, 1);
    ask(&mut e, T0, 5, json!({"timeoutMs": 1000}));
    assert_eq!(e.poll_timeout(), Some(Millis(T0 + 1000)));
    assert!(results(&run(&mut e, T0 + 999, Input::Timeout)).is_empty());
    let acts = run(&mut e, T0 + 1000, Input::Timeout);
    let r = results(&acts);
    assert_eq!(r.len(), 1);
    let (tag, Err((code, message))) = &r[0] else {
        panic!("{r:?}")
    };
    assert_eq!((*tag, *code), (5, ErrorCode::Timeout));
    assert_eq!(
        message,
        "client `c1` did not acknowledge `ask` within 1000 ms"
    );
    assert_eq!(e.metrics().sio_ack_timeouts, 1);
    let acts = text(&mut e, 1, r#"430["late"]"#);
    assert!(results(&acts).is_empty() && !closed(&acts));
    assert_eq!(e.metrics().sio_unknown_acks, 1);
    assert_eq!(e.poll_timeout(), None);
}

#[test]
fn the_default_wait_is_the_host_call_timeout() {
    let mut e = engine(json!({"heartbeatInterval": 0, "limits": {"hostCallTimeoutMs": 2500}}));
    connected(&mut e, 1);
    ask(&mut e, T0, 5, json!({}));
    assert_eq!(e.poll_timeout(), Some(Millis(T0 + 2500)));
}

#[test]
fn pending_acks_fail_when_the_client_disconnects_or_leaves_the_namespace() {
    let mut e = engine(json!({"heartbeatInterval": 0}));
    connected(&mut e, 1);
    text(&mut e, 1, "40/custom,");
    ask(&mut e, T0, 1, json!({}));
    ask(&mut e, T0, 2, json!({"namespace": "/custom"}));
    let acts = text(&mut e, 1, "41/custom,");
    assert_eq!(
        results(&acts),
        vec![(
            2,
            Err((
                ErrorCode::NotFound,
                "client `c1` left namespace `/custom` before acknowledging `ask`".into()
            ))
        )]
    );
    let acts = run(
        &mut e,
        T0,
        Input::Closed {
            conn: ConnId(1),
            code: Some(1000),
        },
    );
    assert_eq!(
        results(&acts),
        vec![(
            1,
            Err((
                ErrorCode::NotFound,
                "client `c1` disconnected before acknowledging `ask`".into()
            ))
        )]
    );
    assert_eq!(e.poll_timeout(), None, "no deadline is left behind");
}

#[test]
fn an_ack_with_an_unknown_id_is_ignored_and_counted() {
    let mut e = engine(json!({}));
    connected(&mut e, 1);
    let acts = text(&mut e, 1, r#"4399[1]"#);
    assert!(results(&acts).is_empty() && !closed(&acts));
    assert!(out(&acts, 1).is_empty());
    assert_eq!(e.metrics().sio_unknown_acks, 1);
}

#[test]
fn emit_with_ack_refuses_what_it_cannot_ask() {
    let mut e = engine(json!({}));
    connected(&mut e, 1);
    // A client of the plain protocol.
    run(
        &mut e,
        T0,
        Input::Open {
            conn: ConnId(2),
            request: UpgradeRequest {
                path: "/".into(),
                query: String::new(),
                headers: vec![],
                peer: "10.0.0.2".into(),
                client_id: "c2".into(),
            },
        },
    );
    let code = |acts: Vec<Action>| match &results(&acts)[..] {
        [(_, Err((code, _)))] => *code,
        other => panic!("{other:?}"),
    };
    let nobody = ask(&mut e, T0, 1, json!({"clientId": "nobody"}));
    assert_eq!(code(nobody), ErrorCode::NotFound);
    let plain = ask(&mut e, T0, 2, json!({"clientId": "c2"}));
    assert_eq!(code(plain), ErrorCode::InvalidMessage);
    let not_joined = ask(&mut e, T0, 3, json!({"namespace": "/custom"}));
    assert_eq!(code(not_joined), ErrorCode::NotFound);
    let no_wait = ask(&mut e, T0, 4, json!({"timeoutMs": 0}));
    assert_eq!(code(no_wait), ErrorCode::InvalidMessage);
    let no_name = ask(&mut e, T0, 5, json!({"event": ""}));
    assert_eq!(code(no_name), ErrorCode::InvalidMessage);
    for tag in 0..super::super::sio_acks::MAX_PENDING_ACKS as u64 {
        assert!(results(&ask(&mut e, T0, 100 + tag, json!({}))).is_empty());
    }
    let full = ask(&mut e, T0, 6, json!({}));
    assert_eq!(code(full), ErrorCode::LimitExceeded);
}

#[test]
fn emit_with_ack_is_not_a_handler_answer_command() {
    let mut e = engine(json!({"messages": {"go": {}}}));
    connected(&mut e, 1);
    let acts = text(&mut e, 1, r#"42["go"]"#);
    let op = acts
        .iter()
        .find_map(|a| match a {
            Action::Call { op, .. } => Some(*op),
            _ => None,
        })
        .unwrap();
    let answer = HandlerResponse {
        commands: vec![json!({"command": "emitWithAck", "clientId": "c1", "event": "ask"})],
        ..HandlerResponse::default()
    };
    let acts = run(
        &mut e,
        T0,
        Input::Completed {
            op,
            result: HostResult::Handler(Box::new(answer)),
        },
    );
    assert!(out(&acts, 1).iter().all(|f| !f.contains("ask")));
    assert_eq!(e.metrics().handler_command_errors, 1);
}
