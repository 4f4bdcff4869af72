//! Resource subscriptions: filters, events, unsubscribe, errors.

use super::*;

#[test]
fn subscribe_filters_and_events_are_enforced() {
    let mut h = H::std();
    h.open(1, "");
    h.open(2, "");
    let s = h.ask(
        1,
        json!({"type":"subscribe","requestId":1,"resource":"messages",
                             "filter":{"channel":"general"},"events":["delete","insert"]}),
    );
    assert_eq!(s[0]["type"], "subscribed");
    assert_eq!(s[0]["subscriptionId"], "sub-1");
    assert_eq!(s[0]["events"], json!(["insert", "delete"]));
    assert_eq!(s[0]["filter"], json!({"channel":"general"}));
    h.ask(
        2,
        json!({"type":"subscribe","resource":"messages","events":["update"]}),
    );
    let (r, acts) = h.cmd(insert_cmd(
        "messages",
        json!({"id":"m1","channel":"general"}),
    ));
    assert_eq!(r.unwrap()["delivered"], 1);
    let ev = &frames(&acts, 1)[0];
    assert_eq!(ev["type"], "event");
    assert_eq!(ev["event"], "insert");
    assert_eq!(ev["resource"], "messages");
    assert_eq!(ev["data"]["id"], "m1");
    assert!(
        frames(&acts, 2).is_empty(),
        "update-only subscriber got an insert"
    );
    let (r, _) = h.cmd(insert_cmd(
        "messages",
        json!({"id":"m2","channel":"random"}),
    ));
    assert_eq!(r.unwrap()["delivered"], 0);
}

#[test]
fn several_filters_on_one_resource_all_work_and_deliver_once() {
    let mut h = H::std();
    h.open(1, "");
    h.ask(
        1,
        json!({"type":"subscribe","resource":"messages","filter":{"channel":"random"}}),
    );
    h.ask(
        1,
        json!({"type":"subscribe","resource":"messages","filter":{"channel":"general"}}),
    );
    h.ask(1, json!({"type":"subscribe","resource":"messages"}));
    for ch in ["random", "general", "other"] {
        let (_, acts) = h.cmd(insert_cmd("messages", json!({"channel":ch})));
        assert_eq!(frames(&acts, 1).len(), 1, "{ch}");
    }
}

#[test]
fn unsubscribe_by_id_by_filter_value_and_all() {
    let mut h = H::std();
    h.open(1, "");
    h.ask(
        1,
        json!({"type":"subscribe","resource":"messages","filter":{"a":1,"b":2}}),
    );
    h.ask(
        1,
        json!({"type":"subscribe","resource":"messages","filter":{"a":2}}),
    );
    h.ask(1, json!({"type":"subscribe","resource":"messages"}));
    // Filters compare as values: key order and 1 vs 1.0 do not matter.
    let f = h.ask(
        1,
        json!({"type":"unsubscribe","resource":"messages","filter":{"b":2.0,"a":1},"requestId":0}),
    );
    assert_eq!(
        f[0],
        json!({"type":"unsubscribed","subscriptionIds":["sub-1"],"resource":"messages","filter":{"b":2.0,"a":1},"requestId":0})
    );
    let f = h.ask(1, json!({"type":"unsubscribe","subscriptionId":"sub-3"}));
    assert_eq!(f[0]["subscriptionIds"], json!(["sub-3"]));
    let f = h.ask(1, json!({"type":"unsubscribe","subscriptionId":"sub-3"}));
    assert_eq!(f[0]["code"], "NOT_FOUND");
    h.ask(
        1,
        json!({"type":"subscribe","resource":"messages","filter":{"c":1}}),
    );
    let f = h.ask(1, json!({"type":"unsubscribe","resource":"messages"}));
    assert_eq!(f[0]["subscriptionIds"], json!(["sub-2", "sub-4"]));
    let (r, _) = h.cmd(insert_cmd("messages", json!({"a":2,"c":1})));
    assert_eq!(r.unwrap()["delivered"], 0);
}

#[test]
fn subscribe_errors() {
    let mut cfg = H::default_cfg();
    cfg["limits"] = json!({"maxSubscriptionsPerConnection": 1});
    let mut h = H::new(cfg);
    h.open(1, "");
    h.open(2, "token=key_user");
    let code = |f: Vec<Value>| f[0]["code"].as_str().unwrap().to_string();
    assert_eq!(
        code(h.ask(1, json!({"type":"subscribe","resource":"nope"}))),
        "RESOURCE_NOT_FOUND"
    );
    assert_eq!(
        code(h.ask(1, json!({"type":"subscribe","resource":"users"}))),
        "UNAUTHORIZED"
    );
    assert_eq!(
        code(h.ask(
            1,
            json!({"type":"subscribe","resource":"messages","filter":{"a":{"$bad":1}}})
        )),
        "INVALID_MESSAGE"
    );
    assert_eq!(
        code(h.ask(
            1,
            json!({"type":"subscribe","resource":"messages","filter":[1]})
        )),
        "INVALID_MESSAGE"
    );
    assert_eq!(
        code(h.ask(
            1,
            json!({"type":"subscribe","resource":"notifications","events":["delete"]})
        )),
        "INVALID_MESSAGE"
    );
    assert_eq!(
        code(h.ask(
            1,
            json!({"type":"subscribe","resource":"messages","channel":"x"})
        )),
        "INVALID_MESSAGE"
    );
    assert_eq!(
        h.ask(1, json!({"type":"subscribe","resource":"messages"}))[0]["type"],
        "subscribed"
    );
    assert_eq!(
        code(h.ask(1, json!({"type":"subscribe","resource":"messages"}))),
        "LIMIT_EXCEEDED"
    );
    assert_eq!(
        h.ask(2, json!({"type":"subscribe","resource":"users"}))[0]["type"],
        "subscribed"
    );
}

#[test]
fn update_leaving_the_filter_is_delivered_and_protected_fields_never_leak() {
    let mut h = H::std();
    h.open(1, "token=key_admin");
    h.ask(
        1,
        json!({"type":"subscribe","resource":"users","filter":{"team":"a"}}),
    );
    let (_, acts) = h.cmd(Command::ResourceChanged {
        resource: "users".into(),
        event: ChangeKind::Update,
        record: json!({"id":"u1","team":"b","password":"new"}),
        previous: Some(json!({"id":"u1","team":"a","password":"old"})),
    });
    let ev = &frames(&acts, 1)[0];
    assert_eq!(ev["event"], "update");
    assert_eq!(ev["data"]["$before"]["team"], "a");
    assert_eq!(ev["data"]["$after"]["team"], "b");
    assert!(!ev.to_string().contains("password"));
}

/// Closing a subscriber touches only its own subscriptions: with many connections
/// subscribed to the same channel and the same index bucket, a close sends nothing to
/// the others and leaves their subscriptions delivering (issues 18 and 22; the per-close
/// cost itself is measured by `benches/close.rs`).
#[test]
fn closing_a_subscriber_sends_nothing_to_the_other_subscribers() {
    let mut h = H::std();
    for conn in 1..=20 {
        h.open(conn, "");
        h.ask(
            conn,
            json!({"type":"subscribe","resource":"messages","filter":{"channel":"a"}}),
        );
        h.ask(conn, json!({"type":"subscribe","channel":"news"}));
    }
    for conn in 1..=10 {
        let acts = h.closed(conn);
        assert!(
            acts.iter().all(|a| !matches!(
                a,
                Action::Send { .. } | Action::SendMany { .. } | Action::Close { .. }
            )),
            "close of {conn} emitted {acts:?}"
        );
    }
    h.e.check_invariants().unwrap();
    let (r, _) = h.cmd(insert_cmd("messages", json!({"id":"m1","channel":"a"})));
    assert_eq!(r.unwrap()["delivered"], 10);
    let (r, _) = h.cmd(Command::Publish {
        channel: "news".into(),
        data: Some(json!(1)),
        tenant: None,
    });
    assert_eq!(r.unwrap()["delivered"], 10);
}

/// A connection keeps room for exactly the subscriptions it holds (a doubling list
/// would hold four ~90-byte entries for one subscription), and its stored filter is
/// the filter it sent, entries in order (kept as compact JSON text).
#[test]
fn a_connection_holds_exactly_its_subscriptions_and_their_filters() {
    let mut h = H::std();
    h.open(1, "");
    let filter = json!({"channel":"a","n":{"$gte":1,"$lt":9},"tags":{"$in":["x","y"]}});
    h.ask(
        1,
        json!({"type":"subscribe","resource":"messages","filter":filter}),
    );
    h.ask(1, json!({"type":"subscribe","channel":"news"}));
    let slot = h.e.by_conn[&ConnId(1)];
    let c = &h.e.conns[slot];
    assert_eq!(c.state.subscriptions.capacity(), 2);
    assert_eq!(c.sub_keys.capacity(), 2);
    let crate::connection::SubTarget::Resource { filter: stored, .. } =
        &c.state.subscriptions[0].target
    else {
        panic!("a resource subscription first");
    };
    let stored = stored.as_ref().expect("a filter");
    assert_eq!(stored.value(), filter);
    assert_eq!(
        stored.as_str(),
        filter.to_string(),
        "same entries, same order"
    );
}
