//! Behaviour tests of resource streams: offsets on `event` frames, recovery with
//! `since` (success, failure), the subscriber's projection applied to replayed changes,
//! changes racing a recovery, persistence and configuration.

use serde_json::{json, Value};

use super::*;
use crate::config::ChangeKind;
use crate::testing::{frames, request, Harness};

fn config() -> Value {
    json!({
        "auth": {"apiKeys": {
            "key_admin": {"id": "a", "role": "admin"},
            "key_u1": {"id": "u1", "role": "user", "team": "red"}
        }},
        "heartbeatInterval": 0,
        "resources": {
            "todos": {
                "history": {"size": 10, "ttlMs": 60000},
                "protected": ["secret"],
                "guards": {
                    "subscribe": "user != null && user.role == 'admin' ? true : {'team': user.team}",
                    "read": "!has(record.hidden) || record.hidden != true"
                }
            },
            "notes": {"history": {"size": 5, "ttlMs": 60000}, "hostGuards": ["subscribe"]},
            "plain": {}
        },
        "channels": {"namespaces": [
            {"pattern": "resource:*", "history": {"size": 5, "ttlMs": 60000}}
        ]}
    })
}

/// The shared harness ([`crate::testing`]) answering storage calls from its
/// MemoryStore and guards with allow; with `answer_calls` off, host calls wait in
/// `held` until [`S::release`].
struct S(Harness);

crate::deref_harness!(S);

impl S {
    fn new() -> S {
        let mut h = Harness::with_seed(config(), 3);
        h.answer_calls = true;
        h.handler = Box::new(|other| panic!("unexpected host call {other:?}"));
        S(h)
    }

    /// Answer the held call `i` (in the order the calls were made).
    fn release(&mut self, i: usize) -> Vec<Action> {
        let (op, request) = self.held.remove(i);
        let result = self.answer(&request);
        self.input(Input::Completed { op, result })
    }

    fn open(&mut self, conn: u64, key: &str) {
        let query = format!("token={key}");
        let acts = self.open_req(
            conn,
            request("/", &query, &[], "127.0.0.1", &format!("c{conn}")),
        );
        assert!(matches!(acts[0], Action::Accept { .. }), "{acts:?}");
    }

    fn ask(&mut self, conn: u64, msg: Value) -> Value {
        let acts = self.send(conn, msg);
        frames(&acts, conn).pop().expect("an answer")
    }

    /// A change through the server API (`resourceChanged`); the actions.
    fn change(
        &mut self,
        resource: &str,
        event: ChangeKind,
        record: Value,
        previous: Option<Value>,
    ) -> Vec<Action> {
        self.input(Input::Command {
            tag: 1,
            command: Command::ResourceChanged {
                resource: resource.into(),
                event,
                record,
                previous,
            },
        })
    }
}

fn since(offset: u64, epoch: &Value) -> Value {
    json!({"offset": offset, "epoch": epoch})
}

#[test]
fn events_of_a_resource_with_history_carry_increasing_offsets_and_its_epoch() {
    let mut s = S::new();
    s.open(1, "key_admin");
    let sub = s.ask(1, json!({"type":"subscribe","resource":"todos"}));
    assert_eq!(sub["offset"], 0);
    let epoch = sub["epoch"].clone();
    assert!(epoch.is_string(), "{sub}");
    assert!(sub.get("recovered").is_none());
    let acts = s.send(
        1,
        json!({"type":"insert","resource":"todos","data":{"id":"t1","team":"red"}}),
    );
    let f = frames(&acts, 1);
    assert_eq!(
        (f[0]["type"].as_str(), f[1]["type"].as_str()),
        (Some("inserted"), Some("event"))
    );
    assert_eq!(
        (f[1]["offset"].clone(), f[1]["epoch"].clone()),
        (json!(1), epoch.clone())
    );
    let acts = s.send(
        1,
        json!({"type":"update","resource":"todos","id":"t1","data":{"done":true}}),
    );
    assert_eq!(frames(&acts, 1)[1]["offset"], 2);
    // A change nobody is subscribed to still takes an offset.
    s.send(1, json!({"type":"unsubscribe","resource":"todos"}));
    s.send(1, json!({"type":"delete","resource":"todos","id":"t1"}));
    let sub = s.ask(1, json!({"type":"subscribe","resource":"todos"}));
    assert_eq!(
        (sub["offset"].clone(), sub["epoch"].clone()),
        (json!(3), epoch)
    );
}

#[test]
fn a_resource_without_history_has_no_offsets_and_answers_since_with_recovered_false() {
    let mut s = S::new();
    s.open(1, "key_admin");
    let sub = s.ask(1, json!({"type":"subscribe","resource":"plain"}));
    assert!(
        sub.get("offset").is_none() && sub.get("epoch").is_none(),
        "{sub}"
    );
    let acts = s.change("plain", ChangeKind::Insert, json!({"id":"p1"}), None);
    let ev = &frames(&acts, 1)[0];
    assert!(
        ev.get("offset").is_none() && ev.get("epoch").is_none(),
        "{ev}"
    );
    let sub = s.ask(
        1,
        json!({"type":"subscribe","resource":"plain","since":{"offset":1,"epoch":"x"}}),
    );
    assert_eq!(sub["recovered"], false);
    assert_eq!(sub["publications"], json!([]));
    assert!(sub.get("offset").is_none(), "{sub}");
}

#[test]
fn a_resubscribe_with_since_replays_the_missed_changes_in_order_then_goes_live() {
    let mut s = S::new();
    s.open(1, "key_admin");
    let sub = s.ask(1, json!({"type":"subscribe","resource":"todos"}));
    let epoch = sub["epoch"].clone();
    s.change(
        "todos",
        ChangeKind::Insert,
        json!({"id":"t1","team":"red"}),
        None,
    );
    s.input(Input::Closed {
        conn: ConnId(1),
        code: None,
    });
    s.change(
        "todos",
        ChangeKind::Insert,
        json!({"id":"t2","team":"red"}),
        None,
    );
    s.change(
        "todos",
        ChangeKind::Update,
        json!({"id":"t1","team":"red","done":true}),
        Some(json!({"id":"t1","team":"red"})),
    );
    s.open(2, "key_admin");
    let sub = s.ask(
        2,
        json!({"type":"subscribe","resource":"todos","since":since(1, &epoch),"requestId":1}),
    );
    assert_eq!(sub["recovered"], true, "{sub}");
    assert_eq!(
        (sub["offset"].clone(), sub["epoch"].clone()),
        (json!(3), epoch.clone())
    );
    let pubs = sub["publications"].as_array().unwrap();
    let got: Vec<_> = pubs
        .iter()
        .map(|p| {
            (
                p["offset"].clone(),
                p["event"].clone(),
                p["data"]["id"].clone(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (json!(2), json!("insert"), json!("t2")),
            (json!(3), json!("update"), json!("t1"))
        ]
    );
    assert_eq!(pubs[1]["data"]["$before"], json!({"id":"t1","team":"red"}));
    assert!(pubs[0]["timestamp"].is_string());
    let acts = s.change(
        "todos",
        ChangeKind::Delete,
        json!({"id":"t2","team":"red"}),
        None,
    );
    assert_eq!(frames(&acts, 2)[0]["offset"], 4);
}

#[test]
fn recovery_is_refused_past_the_history_in_another_epoch_or_beyond_the_stream() {
    let mut s = S::new();
    s.open(1, "key_admin");
    let epoch = s.ask(1, json!({"type":"subscribe","resource":"todos"}))["epoch"].clone();
    for i in 1..=12 {
        s.change(
            "todos",
            ChangeKind::Insert,
            json!({"id": format!("t{i}"), "team":"red"}),
            None,
        );
    }
    // size 10: offsets 3..=12 are kept.
    let cases = [
        (since(1, &epoch), false, 0),
        (since(2, &epoch), true, 10),
        (since(12, &json!("other")), false, 0),
        (since(13, &epoch), false, 0),
        (since(12, &epoch), true, 0),
    ];
    for (at, recovered, n) in cases {
        let sub = s.ask(1, json!({"type":"subscribe","resource":"todos","since":at}));
        assert_eq!(sub["recovered"], recovered, "{at} {sub}");
        assert_eq!(
            sub["publications"].as_array().unwrap().len(),
            n,
            "{at} {sub}"
        );
        assert_eq!(
            (sub["offset"].clone(), sub["epoch"].clone()),
            (json!(12), epoch.clone())
        );
    }
    let m = &s.e.metrics;
    assert_eq!((m.recoveries, m.recoveries_failed), (5, 3));
}

#[test]
fn replayed_changes_are_exactly_what_a_live_subscription_with_the_same_filter_received() {
    let mut s = S::new();
    s.open(1, "key_u1");
    s.open(2, "key_u1");
    let filter = json!({"status":"open"});
    let live = s.ask(
        1,
        json!({"type":"subscribe","resource":"todos","filter":filter}),
    );
    let epoch = live["epoch"].clone();
    let start = s.ask(
        2,
        json!({"type":"subscribe","resource":"todos","filter":filter}),
    )["offset"]
        .clone();
    assert_eq!(start, 0);
    s.input(Input::Closed {
        conn: ConnId(2),
        code: None,
    });
    let changes = [
        // seen: the forced filter (team red) and the client's filter admit it; `secret` stripped
        (
            ChangeKind::Insert,
            json!({"id":"a","team":"red","status":"open","secret":"s"}),
            None,
        ),
        // another team: the guard's forced filter excludes it
        (
            ChangeKind::Insert,
            json!({"id":"b","team":"blue","status":"open"}),
            None,
        ),
        // the client's filter excludes it
        (
            ChangeKind::Insert,
            json!({"id":"c","team":"red","status":"done"}),
            None,
        ),
        // the read guard excludes it
        (
            ChangeKind::Insert,
            json!({"id":"d","team":"red","status":"open","hidden":true}),
            None,
        ),
        // leaves the client's filter: seen, with `$before`
        (
            ChangeKind::Update,
            json!({"id":"a","team":"red","status":"done","secret":"t"}),
            Some(json!({"id":"a","team":"red","status":"open","secret":"s"})),
        ),
        // enters the forced filter: seen, `$before` withheld
        (
            ChangeKind::Update,
            json!({"id":"b","team":"red","status":"open"}),
            Some(json!({"id":"b","team":"blue","status":"open"})),
        ),
        // the old record may not be read: `$before` withheld
        (
            ChangeKind::Update,
            json!({"id":"d","team":"red","status":"open"}),
            Some(json!({"id":"d","team":"red","status":"open","hidden":true})),
        ),
        (
            ChangeKind::Delete,
            json!({"id":"b","team":"red","status":"open","secret":"x"}),
            None,
        ),
    ];
    let mut live_events = Vec::new();
    for (kind, record, previous) in changes {
        let acts = s.change("todos", kind, record, previous);
        live_events.extend(frames(&acts, 1));
    }
    s.open(3, "key_u1");
    let sub = s.ask(
        3,
        json!({"type":"subscribe","resource":"todos","filter":filter,"since":since(0, &epoch)}),
    );
    assert_eq!(sub["recovered"], true, "{sub}");
    let replayed: Vec<Value> = sub["publications"].as_array().unwrap().clone();
    let as_replayed: Vec<Value> = live_events
        .iter()
        .map(|e| json!({"offset": e["offset"], "event": e["event"], "data": e["data"], "timestamp": e["timestamp"]}))
        .collect();
    assert_eq!(replayed, as_replayed);
    let offsets: Vec<_> = replayed
        .iter()
        .map(|p| p["offset"].as_u64().unwrap())
        .collect();
    assert_eq!(offsets, vec![1, 5, 6, 7, 8]);
    assert!(!sub.to_string().contains("secret"), "{sub}");
    assert_eq!(replayed[2]["data"]["$before"], Value::Null);
    assert_eq!(replayed[3]["data"]["$before"], Value::Null);
    // `events` limits the replay too.
    let sub = s.ask(
        3,
        json!({"type":"subscribe","resource":"todos","events":["delete"],"since":since(0, &epoch)}),
    );
    let kinds: Vec<_> = sub["publications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["event"].clone())
        .collect();
    assert_eq!(kinds, vec![json!("delete")]);
}

#[test]
fn a_change_committed_while_the_subscribe_waits_for_its_host_guard_is_replayed_not_lost() {
    let mut s = S::new();
    s.open(1, "key_admin");
    let sub = s.ask(1, json!({"type":"subscribe","resource":"notes"}));
    let epoch = sub["epoch"].clone();
    s.change("notes", ChangeKind::Insert, json!({"id":"n1"}), None);
    s.answer_calls = false;
    let acts = s.send(
        1,
        json!({"type":"subscribe","resource":"notes","since":since(1, &epoch),"requestId":7}),
    );
    assert_eq!(s.held.len(), 1, "{acts:?}");
    // Committed while the host guard is deciding: conn 1's first subscription gets it
    // live; the pending one has no subscription yet.
    let acts = s.change("notes", ChangeKind::Insert, json!({"id":"n2"}), None);
    assert_eq!(frames(&acts, 1).len(), 1);
    s.answer_calls = true;
    let acts = s.release(0);
    let sub = frames(&acts, 1).pop().unwrap();
    assert_eq!(sub["requestId"], 7);
    assert_eq!(sub["recovered"], true);
    let offsets: Vec<_> = sub["publications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["offset"].clone())
        .collect();
    assert_eq!(offsets, vec![json!(2)]);
    assert_eq!(sub["offset"], 2);
    // After it, changes are live, once per connection.
    let acts = s.change("notes", ChangeKind::Insert, json!({"id":"n3"}), None);
    let f = frames(&acts, 1);
    assert_eq!((f.len(), f[0]["offset"].clone()), (1, json!(3)));
}

#[test]
fn a_write_in_flight_during_a_recovery_arrives_live_and_not_in_the_replay() {
    let mut s = S::new();
    s.open(1, "key_admin");
    s.open(2, "key_admin");
    let epoch = s.ask(1, json!({"type":"subscribe","resource":"todos"}))["epoch"].clone();
    s.answer_calls = false;
    s.send(
        2,
        json!({"type":"insert","resource":"todos","data":{"id":"t1","team":"red"}}),
    );
    assert_eq!(s.held.len(), 1);
    s.answer_calls = true;
    let sub = s.ask(
        1,
        json!({"type":"subscribe","resource":"todos","since":since(0, &epoch)}),
    );
    assert_eq!(
        (sub["recovered"].clone(), sub["publications"].clone()),
        (json!(true), json!([]))
    );
    let acts = s.release(0);
    let f = frames(&acts, 1);
    assert_eq!(
        (f.len(), f[0]["type"].clone(), f[0]["offset"].clone()),
        (1, json!("event"), json!(1))
    );
}

#[test]
fn resource_streams_persist_and_never_share_a_channel_stream_of_the_same_name() {
    let mut s = S::new();
    s.e.set_persistent_streams(true);
    s.open(1, "key_admin");
    let epoch = s.ask(1, json!({"type":"subscribe","resource":"todos"}))["epoch"].clone();
    s.change(
        "todos",
        ChangeKind::Insert,
        json!({"id":"t1","team":"red","secret":"s"}),
        None,
    );
    // A channel named like the stream has its own offsets.
    let ch = s.ask(1, json!({"type":"subscribe","channel":"resource:todos"}));
    assert_eq!(ch["offset"], 0);
    s.change(
        "todos",
        ChangeKind::Insert,
        json!({"id":"t2","team":"red"}),
        None,
    );
    let mut stored = std::collections::BTreeMap::new();
    for op in s.e.take_stream_ops() {
        match op {
            crate::broker::KvOp::Put { key, value } => {
                stored.insert(key, value);
            }
            crate::broker::KvOp::Delete { key } => {
                stored.remove(&key);
            }
        }
    }
    assert!(
        stored.keys().all(|k| k.starts_with("stream:")),
        "{stored:?}"
    );
    let pairs: Vec<_> = stored.into_iter().collect();
    let mut fresh = S::new();
    assert!(fresh.e.restore_streams(&pairs).is_empty());
    fresh.open(1, "key_admin");
    let sub = fresh.ask(
        1,
        json!({"type":"subscribe","resource":"todos","since":since(0, &epoch)}),
    );
    assert_eq!(sub["recovered"], true, "{sub}");
    assert_eq!(sub["publications"].as_array().unwrap().len(), 2);
    assert!(!sub.to_string().contains("secret"));
}

#[test]
fn a_bad_resource_history_is_a_config_error_naming_the_field() {
    let mut c = config();
    c["resources"]["todos"]["history"] = json!({"size": 0, "ttlMs": 0});
    let err = Config::from_value(c).unwrap_err();
    let paths: Vec<_> = err.issues.iter().map(|i| i.path.as_str()).collect();
    assert!(paths.contains(&"resources.todos.history.size"), "{paths:?}");
    assert!(
        paths.contains(&"resources.todos.history.ttlMs"),
        "{paths:?}"
    );
}
