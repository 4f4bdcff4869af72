//! Host calls: storage round trips, deadlines, bounds and late completions.

use super::*;

#[test]
fn insert_goes_through_a_host_call_and_fans_out() {
    let mut h = H::std();
    h.open(1, "token=key_admin");
    h.open(2, "token=key_admin");
    h.ask(2, json!({"type":"subscribe","resource":"users"}));
    let acts = h.send(1, json!({"type":"insert","resource":"users","requestId":"i","data":{"name":"a","password":"p"}}));
    let (op, r) = call_of(&acts);
    let StoreRequest::Insert { resource, record } = r else {
        panic!()
    };
    assert_eq!(resource, "users");
    assert_eq!(record["id"].as_str().unwrap().len(), 20);
    assert_eq!(record["createdAt"], "2023-11-14T22:13:20.000Z");
    let acts = h.input(Input::Completed {
        op,
        result: HostResult::Store(StoreOutcome::Inserted(record.clone())),
    });
    let reply = &frames(&acts, 1)[0];
    assert_eq!(reply["type"], "inserted");
    assert_eq!(reply["requestId"], "i");
    assert!(reply["data"].get("password").is_none());
    let ev = &frames(&acts, 2)[0];
    assert_eq!(ev["type"], "event");
    assert!(ev["data"].get("password").is_none());
    // A second completion for the same op is late and dropped.
    h.input(Input::Completed {
        op,
        result: HostResult::Store(StoreOutcome::Inserted(record)),
    });
    assert_eq!(h.e.metrics().late_completions, 1);
}

#[test]
fn get_list_update_delete_and_store_errors() {
    let mut h = H::std();
    h.open(1, "");
    let (op, _) = call_of(&h.send(
        1,
        json!({"type":"get","resource":"messages","id":"nope","requestId":1}),
    ));
    let acts = h.input(Input::Completed {
        op,
        result: HostResult::Store(StoreOutcome::Record(None)),
    });
    assert_eq!(frames(&acts, 1)[0]["code"], "NOT_FOUND");
    let (op, r) = call_of(&h.send(1, json!({"type":"list","resource":"messages","limit":1000})));
    assert!(matches!(r, StoreRequest::List { limit: 100, .. }));
    let acts = h.input(Input::Completed {
        op,
        result: HostResult::Store(StoreOutcome::Page {
            items: vec![json!({"id":"a"})],
            cursor: None,
        }),
    });
    assert_eq!(
        frames(&acts, 1)[0],
        json!({"type":"data","resource":"messages","data":[{"id":"a"}],"cursor":null})
    );
    let (op, r) = call_of(&h.send(
        1,
        json!({"type":"update","resource":"messages","id":"a","data":{"x":1}}),
    ));
    let StoreRequest::Update { patch, .. } = r else {
        panic!()
    };
    assert_eq!(patch["x"], 1);
    let acts = h.input(Input::Completed {
        op,
        result: HostResult::Store(StoreOutcome::Failed(StoreError {
            kind: StoreErrorKind::Internal,
            message: "disk I/O error at /var/lib/db".into(),
        })),
    });
    let e = &frames(&acts, 1)[0];
    assert_eq!(e["code"], "INTERNAL_ERROR");
    assert!(!e.to_string().contains("/var/lib"), "internals leaked: {e}");
    let (op, _) = call_of(&h.send(1, json!({"type":"delete","resource":"messages","id":"a"})));
    let acts = h.input(Input::Completed {
        op,
        result: HostResult::Store(StoreOutcome::Deleted {
            previous: json!({"id":"a"}),
        }),
    });
    assert_eq!(
        frames(&acts, 1)[0],
        json!({"type":"deleted","resource":"messages","id":"a"})
    );
    assert_eq!(
        h.ask(1, json!({"type":"get","resource":"internal","id":"x"}))[0]["code"],
        "RESOURCE_NOT_FOUND"
    );
    assert_eq!(
        h.ask(
            1,
            json!({"type":"update","resource":"messages","id":"a","data":{"id":"b"}})
        )[0]["code"],
        "VALIDATION_ERROR"
    );
}

#[test]
fn host_call_deadline_and_bounds() {
    let mut cfg = H::default_cfg();
    cfg["limits"] = json!({"maxPendingCallsPerConnection": 1, "hostCallTimeoutMs": 100});
    cfg["heartbeatInterval"] = json!(0);
    let mut h = H::new(cfg);
    h.open(1, "");
    let acts = h.send(
        1,
        json!({"type":"get","resource":"messages","id":"a","requestId":"g1"}),
    );
    let (op, _) = call_of(&acts);
    assert_eq!(
        h.ask(1, json!({"type":"get","resource":"messages","id":"b"}))[0]["code"],
        "LIMIT_EXCEEDED"
    );
    assert_eq!(h.e.poll_timeout(), Some(Millis(T0 + 100)));
    let acts = h.advance_to(T0 + 100);
    let e = &frames(&acts, 1)[0];
    assert_eq!(
        (e["code"].as_str(), e["requestId"].as_str()),
        (Some("TIMEOUT"), Some("g1"))
    );
    h.input(Input::Completed {
        op,
        result: HostResult::Store(StoreOutcome::Record(None)),
    });
    assert_eq!(h.e.metrics().late_completions, 1);
    assert_eq!(h.e.poll_timeout(), None);
}

#[test]
fn write_completing_after_the_writer_left_still_fans_out() {
    let mut h = H::std();
    h.open(1, "");
    h.open(2, "");
    h.ask(2, json!({"type":"subscribe","resource":"messages"}));
    let (op, r) = call_of(&h.send(
        1,
        json!({"type":"insert","resource":"messages","data":{"a":1}}),
    ));
    h.input(Input::Closed {
        conn: ConnId(1),
        code: Some(1001),
    });
    let StoreRequest::Insert { record, .. } = r else {
        panic!()
    };
    let acts = h.input(Input::Completed {
        op,
        result: HostResult::Store(StoreOutcome::Inserted(record)),
    });
    assert_eq!(frames(&acts, 2)[0]["type"], "event");
    assert!(frames(&acts, 1).is_empty());
}

#[test]
fn a_write_completing_after_its_timeout_still_reaches_subscribers() {
    let mut cfg = H::default_cfg();
    cfg["limits"] = json!({"hostCallTimeoutMs": 100});
    cfg["heartbeatInterval"] = json!(0);
    let mut h = H::new(cfg);
    h.open(1, "");
    h.open(2, "");
    h.ask(2, json!({"type":"subscribe","resource":"messages"}));
    let (op, r) = call_of(&h.send(
        1,
        json!({"type":"insert","resource":"messages","data":{"a":1}}),
    ));
    let acts = h.advance_to(T0 + 100);
    assert_eq!(frames(&acts, 1)[0]["code"], "TIMEOUT");
    let StoreRequest::Insert { record, .. } = r else {
        panic!()
    };
    let acts = h.input(Input::Completed {
        op,
        result: HostResult::Store(StoreOutcome::Inserted(record)),
    });
    assert_eq!(frames(&acts, 2)[0]["type"], "event");
    assert!(
        frames(&acts, 1).is_empty(),
        "no second answer to the writer"
    );
}

#[test]
fn answers_never_reach_a_new_connection_that_reuses_the_id() {
    let mut h = H::std();
    h.open(1, "");
    let (op, _) = call_of(&h.send(1, json!({"type":"get","resource":"messages","id":"a"})));
    h.input(Input::Closed {
        conn: ConnId(1),
        code: None,
    });
    let acts = h.open_req(1, req("/", "", &[], "fresh"));
    assert!(matches!(acts[0], Action::Accept { .. }));
    let acts = h.input(Input::Completed {
        op,
        result: HostResult::Store(StoreOutcome::Record(Some(json!({"id":"a"})))),
    });
    assert!(frames(&acts, 1).is_empty(), "{acts:?}");
}
