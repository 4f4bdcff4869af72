//! Server writes (Command::Insert / Update / Delete): shaping, guards skipped, errors, timeouts, bounds.

use super::*;

#[test]
fn server_insert_shapes_stores_and_fans_out_with_protected_fields_stripped() {
    let mut r = seeded();
    r.send(1, json!({"type":"subscribe","resource":"users"}));
    r.send(2, json!({"type":"subscribe","resource":"users"}));
    let (acts, res) = r.cmd(
        7,
        json!({"command":"insert","resource":"users","data":{"name":"Neo","password":"pw","createdAt":"forged"}}),
    );
    let res = res.unwrap();
    let rec = &res["record"];
    let id = rec["id"].as_str().unwrap();
    assert_eq!(id.len(), 20, "id from the engine's generator");
    assert_eq!(rec["createdAt"], "2023-11-14T22:13:20.000Z");
    assert_eq!(rec["updatedAt"], rec["createdAt"]);
    assert_eq!(rec["password"], "pw", "the server sees protected fields");
    let keys: Vec<&String> = rec.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["id", "name", "password", "createdAt", "updatedAt"]);
    // The admin subscriber sees it (stripped); u1's forced filter {id: u1} does not match.
    assert_eq!(res["delivered"], 1);
    let ev = frames(&acts, 1).pop().unwrap();
    assert_eq!(
        (ev["type"].as_str(), ev["event"].as_str()),
        (Some("event"), Some("insert"))
    );
    assert_eq!(ev["data"]["name"], "Neo");
    assert!(ev["data"].get("password").is_none(), "{ev}");
    assert!(frames(&acts, 2).is_empty());
    // The store has it; the call was server-initiated (no connection).
    assert!(acts
        .iter()
        .any(|a| matches!(a, Action::Call { conn: None, .. })));
    let f = r.ask(1, json!({"type":"get","resource":"users","id":id}));
    assert_eq!(f["data"]["name"], "Neo");
    // Same seed, same id: the generator is the engine's, not the host's.
    let mut r2 = seeded();
    let (_, res2) = r2.cmd(
        1,
        json!({"command":"insert","resource":"users","data":{"name":"Neo"}}),
    );
    assert_eq!(res2.unwrap()["record"]["id"], id);
}

#[test]
fn server_writes_skip_write_guards_and_host_guards_but_events_keep_read_guards() {
    let mut r = R::new(json!({
        "docs": {
            "guards": {"create": "false", "update": "false", "delete": "false",
                       "read": "user != null && record.tenantId == user.tenantId"},
            "hostGuards": ["create", "update", "delete"]
        }
    }));
    r.guard = Box::new(|_| GuardDecision::Deny { message: None });
    r.open(1, "key_u1"); // tenant t1
    r.open(2, "key_u2"); // tenant t2
    r.send(1, json!({"type":"subscribe","resource":"docs"}));
    r.send(2, json!({"type":"subscribe","resource":"docs"}));
    let (acts, res) = r.cmd(
        1,
        json!({"command":"insert","resource":"docs","data":{"id":"d1","tenantId":"t1"}}),
    );
    assert_eq!(res.unwrap()["delivered"], 1);
    assert_eq!(frames(&acts, 1).len(), 1);
    assert!(frames(&acts, 2).is_empty(), "read guard applies to events");
    let (acts, res) = r.cmd(
        2,
        json!({"command":"update","resource":"docs","id":"d1","data":{"title":"x"}}),
    );
    let res = res.unwrap();
    assert_eq!(res["record"]["title"], "x");
    assert_eq!(frames(&acts, 1)[0]["data"]["$before"]["id"], "d1");
    let (_, res) = r.cmd(3, json!({"command":"delete","resource":"docs","id":"d1"}));
    assert_eq!(res.unwrap()["record"]["id"], "d1");
    assert_eq!(r.guard_calls.len(), 0, "host guards are for clients");
    // A client is still refused by the same guards.
    let f = r.ask(
        1,
        json!({"type":"insert","resource":"docs","data":{"tenantId":"t1"}}),
    );
    assert_eq!(f["code"], "FORBIDDEN");
}

#[test]
fn server_write_errors_have_codes_and_no_storage_call_when_refused_early() {
    let mut r = seeded();
    let (acts, e) = r.cmd(1, json!({"command":"insert","resource":"nope","data":{}}));
    let e = e.unwrap_err();
    assert_eq!((e.code, e.store), (ErrorCode::ResourceNotFound, None));
    assert_eq!(calls(&acts), 0);
    #[cfg(feature = "json-schema")]
    {
        let (acts, e) = r.cmd(
            2,
            json!({"command":"insert","resource":"messages","data":{"content":5,"author":"a"}}),
        );
        let e = e.unwrap_err();
        assert_eq!(e.code, ErrorCode::ValidationError);
        assert!(
            e.message.contains("content:") && e.message.contains("channel"),
            "{}",
            e.message
        );
        assert_eq!(calls(&acts), 0);
        let (_, e) = r.cmd(
            3,
            json!({"command":"insert","resource":"messages","data":{"id":5}}),
        );
        assert_eq!(e.unwrap_err().code, ErrorCode::ValidationError);
        let (_, e) = r.cmd(
            4,
            json!({"command":"update","resource":"messages","id":"m","data":{"content":1}}),
        );
        assert_eq!(e.unwrap_err().code, ErrorCode::ValidationError);
    }
    let (_, e) = r.cmd(
        5,
        json!({"command":"update","resource":"users","id":"u1","data":{"id":"u9"}}),
    );
    let e = e.unwrap_err();
    assert_eq!(e.code, ErrorCode::ValidationError);
    assert!(e.message.starts_with("id:"), "{}", e.message);
    let (_, e) = r.cmd(6, json!({"command":"delete","resource":"users","id":""}));
    assert_eq!(e.unwrap_err().code, ErrorCode::InvalidMessage);
    // Errors from the store carry its classification.
    for (tag, c) in [
        (
            7,
            json!({"command":"update","resource":"users","id":"ghost","data":{"a":1}}),
        ),
        (
            8,
            json!({"command":"delete","resource":"users","id":"ghost"}),
        ),
    ] {
        let (acts, e) = r.cmd(tag, c);
        let e = e.unwrap_err();
        assert_eq!(
            (e.code, e.store),
            (ErrorCode::NotFound, Some(StoreErrorKind::NotFound))
        );
        assert_eq!(e.message, "Record `ghost` not found in `users`");
        assert_eq!(calls(&acts), 1);
    }
    let (_, e) = r.cmd(
        9,
        json!({"command":"insert","resource":"users","data":{"id":"u1"}}),
    );
    let e = e.unwrap_err();
    assert_eq!(
        (e.code, e.store),
        (ErrorCode::ValidationError, Some(StoreErrorKind::Conflict))
    );
    // Command errors are not error frames.
    assert_eq!(r.e.metrics().errors, 0);
}

#[test]
fn server_write_timeout_then_late_success_still_fans_out() {
    let mut r = R::new(json!({"m": {}}));
    r.open(1, "");
    r.send(1, json!({"type":"subscribe","resource":"m"}));
    let command: Command =
        serde_json::from_value(json!({"command":"insert","resource":"m","data":{"id":"x"}}))
            .unwrap();
    r.e.handle(Millis(T0), Input::Command { tag: 42, command })
        .unwrap();
    let acts: Vec<Action> = r.e.drain_actions().collect();
    let (op, deadline, request) = match &acts[..] {
        [Action::Call {
            op,
            conn: None,
            deadline,
            request: HostRequest::Store(req),
        }] => (*op, *deadline, req.clone()),
        other => panic!("{other:?}"),
    };
    assert_eq!(r.e.poll_timeout(), Some(deadline));
    assert_eq!(r.e.metrics().pending_calls, 1);
    r.e.handle(deadline, Input::Timeout).unwrap();
    let acts: Vec<Action> = r.e.drain_actions().collect();
    match &acts[..] {
        [Action::CommandResult {
            tag: 42,
            result: Err(e),
        }] => {
            assert_eq!((e.code, e.store), (ErrorCode::Timeout, None))
        }
        other => panic!("{other:?}"),
    }
    r.e.check_invariants().unwrap();
    // The write happened after all: subscribers still see it; no second result.
    let result = HostResult::Store(r.store.apply(&request));
    r.e.handle(deadline, Input::Completed { op, result })
        .unwrap();
    let acts: Vec<Action> = r.e.drain_actions().collect();
    assert_eq!(frames(&acts, 1)[0]["event"], "insert");
    assert!(!acts
        .iter()
        .any(|a| matches!(a, Action::CommandResult { .. })));
    assert_eq!(r.e.metrics().late_completions, 1);
}

#[test]
fn server_writes_are_bounded_by_max_pending_calls() {
    let cfg =
        json!({"heartbeatInterval": 0, "limits": {"maxPendingCalls": 1}, "resources": {"m": {}}});
    let mut e = Engine::with_seed(Config::from_value(cfg).unwrap(), 1).unwrap();
    for tag in [1, 2] {
        let command: Command =
            serde_json::from_value(json!({"command":"delete","resource":"m","id":"a"})).unwrap();
        e.handle(Millis(T0), Input::Command { tag, command })
            .unwrap();
    }
    let acts: Vec<Action> = e.drain_actions().collect();
    assert!(matches!(acts[0], Action::Call { .. }), "{acts:?}");
    match &acts[1] {
        Action::CommandResult {
            tag: 2,
            result: Err(err),
        } => {
            assert_eq!(err.code, ErrorCode::Unavailable)
        }
        other => panic!("{other:?}"),
    }
}
