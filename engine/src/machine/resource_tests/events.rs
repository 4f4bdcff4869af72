//! Change events: subscribe and read guards, protected fields, forced filters, index buckets, frame counts.

use super::*;

#[test]
fn events_respect_subscribe_guards_read_guards_and_protected_fields_including_deletes() {
    let mut r = seeded();
    // u1's users subscription is narrowed to its own row by the subscribe guard.
    assert_eq!(
        r.ask(2, json!({"type":"subscribe","resource":"users"}))["type"],
        "subscribed"
    );
    assert_eq!(
        r.ask(1, json!({"type":"subscribe","resource":"users"}))["type"],
        "subscribed"
    );
    let acts = r.send(
        1,
        json!({"type":"update","resource":"users","id":"u2","data":{"name":"new","password":"np"}}),
    );
    assert!(frames(&acts, 2).is_empty(), "u1 saw u2's row");
    let ev = frames(&acts, 1)
        .into_iter()
        .find(|f| f["type"] == "event")
        .unwrap();
    assert!(!ev.to_string().contains("password"), "B3 leak: {ev}");
    let acts = r.send(1, json!({"type":"delete","resource":"users","id":"u2"}));
    assert!(
        frames(&acts, 2).is_empty(),
        "delete leaked to a subscriber outside the guard"
    );
    let ev = frames(&acts, 1)
        .into_iter()
        .find(|f| f["type"] == "event")
        .unwrap();
    assert_eq!(ev["event"], "delete");
    assert!(!ev.to_string().contains("password"));
    let acts = r.send(
        1,
        json!({"type":"update","resource":"users","id":"u1","data":{"name":"mine"}}),
    );
    assert_eq!(frames(&acts, 2)[0]["data"]["name"], "mine");
    // documents: read guard filters events per recipient (tenant t1 vs t2).
    r.ask(2, json!({"type":"subscribe","resource":"documents"}));
    r.ask(3, json!({"type":"subscribe","resource":"documents"}));
    let acts = r.send(
        1,
        json!({"type":"insert","resource":"documents","data":{"id":"d9","tenantId":"t1"}}),
    );
    assert_eq!(frames(&acts, 2)[0]["type"], "event");
    assert!(frames(&acts, 3).is_empty());
    let acts = r.send(1, json!({"type":"delete","resource":"documents","id":"d9"}));
    assert_eq!(frames(&acts, 2)[0]["event"], "delete");
    assert!(
        frames(&acts, 3).is_empty(),
        "deleted row leaked across tenants"
    );
}

#[test]
fn a_row_moving_into_a_forced_filter_does_not_reveal_its_old_state() {
    let mut r = R::new(json!({"docs": {"guards": {"subscribe": "{'tenantId': user.tenantId}"}}}));
    r.seed(
        "docs",
        vec![json!({"id":"d1","tenantId":"t2","title":"t2 secret"})],
    );
    r.open(1, "key_admin");
    r.open(2, "key_u1");
    r.open(3, "key_u2");
    r.ask(2, json!({"type":"subscribe","resource":"docs"}));
    r.ask(3, json!({"type":"subscribe","resource":"docs"}));
    let acts = r.send(1, json!({"type":"update","resource":"docs","id":"d1","data":{"tenantId":"t1","title":"moved"}}));
    let ev = &frames(&acts, 2)[0];
    assert_eq!(ev["event"], "update");
    assert_eq!(ev["data"]["$after"]["title"], "moved");
    assert_eq!(ev["data"]["$before"], Value::Null, "old state leaked: {ev}");
    assert!(!ev.to_string().contains("t2 secret"));
    // The t2 subscriber may not see the row after the move: nothing is sent.
    assert!(frames(&acts, 3).is_empty());
}

#[test]
fn read_guards_decide_per_user_and_record_and_count_every_failed_recipient() {
    let mut r = R::new(json!({
        "docs": {"guards": {"read": "record.tenantId == user.tenantId"}},
        "notes": {"guards": {"read": "user.role == 'admin' ? true : {'tenantId': user.tenantId}"}}
    }));
    r.open(1, "key_admin"); // t1
    r.open(2, "key_u1"); // t1
    r.open(3, "key_u2"); // t2
    r.open(4, ""); // anonymous: `user.tenantId` is an error, which denies
    r.open(5, "key_u1"); // the same user as 2
    r.open(6, "");
    // Connections of the same user share one view of it.
    assert_eq!(r.e.user_views.len(), 3);
    assert!(Arc::ptr_eq(
        r.e.conns[1].user_view.as_ref().unwrap(),
        r.e.conns[4].user_view.as_ref().unwrap()
    ));
    for conn in 1..=6 {
        for res in ["docs", "notes"] {
            r.ask(conn, json!({"type":"subscribe","resource":res}));
        }
    }
    let got = |acts: &[Action]| -> Vec<(u64, Value)> {
        (1..=6)
            .flat_map(|c| {
                frames(acts, c)
                    .into_iter()
                    .filter(|f| f["type"] == "event")
                    .map(move |f| (c, f))
            })
            .collect()
    };
    let errors = r.e.metrics().guard_errors;
    let acts = r.send(
        1,
        json!({"type":"insert","resource":"docs","data":{"id":"d1","tenantId":"t1"}}),
    );
    let to: Vec<u64> = got(&acts).iter().map(|(c, _)| *c).collect();
    assert_eq!(to, vec![1, 2, 5]);
    assert_eq!(
        r.e.metrics().guard_errors,
        errors + 2,
        "one per anonymous recipient"
    );
    // Moving the row to t2: only t2 sees it, without its t1 state.
    let acts = r.send(
        1,
        json!({"type":"update","resource":"docs","id":"d1","data":{"tenantId":"t2"}}),
    );
    let ev = got(&acts);
    assert_eq!(ev.len(), 1, "{ev:?}");
    assert_eq!(ev[0].0, 3);
    assert_eq!(ev[0].1["data"]["$before"], Value::Null);
    assert_eq!(r.e.metrics().guard_errors, errors + 4);
    // A filter outcome is matched against each record: admins see everything, users
    // their tenant's rows, anonymous connections nothing (an error each).
    let acts = r.send(
        1,
        json!({"type":"insert","resource":"notes","data":{"id":"n1","tenantId":"t2"}}),
    );
    let to: Vec<u64> = got(&acts).iter().map(|(c, _)| *c).collect();
    assert_eq!(to, vec![1, 3]);
    assert_eq!(r.e.metrics().guard_errors, errors + 6);
    let acts = r.send(1, json!({"type":"delete","resource":"notes","id":"n1"}));
    let to: Vec<u64> = got(&acts).iter().map(|(c, _)| *c).collect();
    assert_eq!(
        to,
        vec![1, 3],
        "deletes are checked against the removed row"
    );
    // Views go with the last connection of their user.
    r.run(Input::Closed {
        conn: ConnId(5),
        code: None,
    });
    assert_eq!(r.e.user_views.len(), 3);
    r.run(Input::Closed {
        conn: ConnId(2),
        code: None,
    });
    assert_eq!(r.e.user_views.len(), 2);
}

#[test]
fn equal_numbers_written_differently_share_the_index_bucket() {
    // The subscription index keys numbers canonically; a filter value and a record value
    // that are equal as numbers must meet in the same bucket whatever their spelling.
    let mut r = R::new(json!({"m": {}}));
    r.open(1, "key_u1");
    r.open(2, "key_u1");
    r.open(3, "key_u1");
    let sub = |r: &mut R, conn, n: &str| {
        let text = format!(r#"{{"type":"subscribe","resource":"m","filter":{{"n":{n}}}}}"#);
        let acts = r.run(Input::Frame {
            conn: ConnId(conn),
            frame: InFrame::Text(&text),
        });
        assert_eq!(frames(&acts, conn)[0]["type"], "subscribed", "{acts:?}");
    };
    sub(&mut r, 1, "1e16");
    sub(&mut r, 2, "10000000000000000.0");
    sub(&mut r, 3, "9007199254740993");
    let text = r#"{"type":"insert","resource":"m","data":{"n":10000000000000000}}"#;
    let acts = r.run(Input::Frame {
        conn: ConnId(1),
        frame: InFrame::Text(text),
    });
    let events = |c| {
        frames(&acts, c)
            .into_iter()
            .filter(|f| f["type"] == "event")
            .count()
    };
    assert_eq!((events(1), events(2), events(3)), (1, 1, 0), "{acts:?}");
    // 2^53 + 1 is not 2^53 (no lossy f64 comparison).
    let text = r#"{"type":"insert","resource":"m","data":{"n":9007199254740992.0}}"#;
    let acts = r.run(Input::Frame {
        conn: ConnId(1),
        frame: InFrame::Text(text),
    });
    assert!(frames(&acts, 3).is_empty(), "{acts:?}");
}

#[test]
fn sent_frames_are_counted_by_type() {
    let mut r = seeded();
    r.send(1, json!({"type":"subscribe","resource":"users"}));
    r.send(1, json!({"type":"ping"}));
    r.send(1, json!({"type":"nope"}));
    r.cmd(1, json!({"command":"broadcast","message":{"hi":1}}))
        .1
        .unwrap();
    r.cmd(
        2,
        json!({"command":"insert","resource":"users","data":{"name":"x"}}),
    )
    .1
    .unwrap();
    let m = r.e.metrics();
    let by_type = &m.messages_sent_by_type;
    assert_eq!(by_type.get("connected"), Some(&3));
    assert_eq!(by_type.get("subscribed"), Some(&1));
    assert_eq!(by_type.get("pong"), Some(&1));
    assert_eq!(by_type.get("error"), Some(&1));
    assert_eq!(by_type.get("raw"), Some(&3));
    assert_eq!(by_type.get("event"), Some(&1));
    assert_eq!(by_type.values().sum::<u64>(), m.messages_sent);
}
