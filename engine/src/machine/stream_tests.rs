//! Behaviour tests of channel streams: offsets, history, recovery, presence,
//! namespace permissions.

use serde_json::{json, Value};

use super::*;
use crate::testing::{frames, request, Harness, T0};

/// The shared harness ([`crate::testing`]) on [`cfg`]; `open` returns nothing and
/// `ask` the first answer.
struct H(Harness);

crate::deref_harness!(H);

fn cfg() -> Value {
    json!({
        "auth": {"apiKeys": {
            "key_u1": {"id": "u1", "role": "user"},
            "key_u2": {"id": "u2", "role": "user"},
            "key_admin": {"id": "a", "role": "admin"}
        }},
        "channels": {"namespaces": [
            {"pattern": "chat:*", "history": {"size": 3, "ttlMs": 1000},
             "presence": true, "joinLeave": true},
            {"pattern": "personal:#{user.id}", "history": {"size": 10, "ttlMs": 60000}},
            {"pattern": "ops:{team}", "presence": true,
             "subscribe": {"guard": "user != null && user.role == params.team"},
             "publish": {"roles": ["admin"]}}
        ]}
    })
}

impl H {
    fn new() -> H {
        H(Harness::new(cfg()))
    }

    fn open(&mut self, conn: u64, query: &str) {
        let acts = self.open_req(
            conn,
            request("/", query, &[], "10.0.0.1", &format!("c{conn}")),
        );
        assert!(matches!(acts[0], Action::Accept { .. }), "{acts:?}");
    }

    fn ask(&mut self, conn: u64, msg: Value) -> Value {
        let acts = self.send(conn, msg);
        frames(&acts, conn).remove(0)
    }
}

fn publish(h: &mut H, conn: u64, channel: &str, n: i64) -> Vec<Action> {
    h.send(
        conn,
        json!({"type":"publish","channel":channel,"message":{"n":n}}),
    )
}

#[test]
fn messages_carry_increasing_offsets_and_one_epoch() {
    let mut h = H::new();
    h.open(1, "");
    h.open(2, "");
    let sub = h.ask(1, json!({"type":"subscribe","channel":"chat:a"}));
    assert_eq!(sub["offset"], 0);
    let epoch = sub["epoch"].as_str().unwrap().to_string();
    for n in 1..=2 {
        let acts = publish(&mut h, 2, "chat:a", n);
        let m = &frames(&acts, 1)[0];
        assert_eq!(m["offset"], n);
        assert_eq!(m["epoch"], epoch.as_str());
    }
}

#[test]
fn channels_without_history_have_no_offsets() {
    let mut h = H::new();
    h.open(1, "");
    h.open(2, "");
    let sub = h.ask(1, json!({"type":"subscribe","channel":"plain"}));
    assert!(sub.get("offset").is_none());
    let m = &frames(&publish(&mut h, 2, "plain", 1), 1)[0];
    assert!(m.get("offset").is_none() && m.get("epoch").is_none());
}

#[test]
fn recovery_returns_missed_publications_then_live_ones_once() {
    let mut h = H::new();
    h.open(1, "");
    h.open(2, "");
    let sub = h.ask(1, json!({"type":"subscribe","channel":"chat:a"}));
    let epoch = sub["epoch"].clone();
    publish(&mut h, 2, "chat:a", 1);
    h.input(Input::Closed {
        conn: ConnId(1),
        code: None,
    });
    publish(&mut h, 2, "chat:a", 2);
    publish(&mut h, 2, "chat:a", 3);
    h.open(3, "");
    let r = h.ask(
        3,
        json!({"type":"subscribe","channel":"chat:a","since":{"offset":1,"epoch":epoch}}),
    );
    assert_eq!(r["recovered"], true);
    assert_eq!(r["offset"], 3);
    let offs: Vec<_> = r["publications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["offset"].clone(), p["data"]["n"].clone()))
        .collect();
    assert_eq!(offs, vec![(json!(2), json!(2)), (json!(3), json!(3))]);
    let live = frames(&publish(&mut h, 2, "chat:a", 4), 3);
    assert_eq!(live.len(), 1);
    assert_eq!(live[0]["offset"], 4);
}

#[test]
fn recovery_fails_past_the_history_size_or_in_another_epoch() {
    let mut h = H::new();
    h.open(1, "");
    let epoch = h.ask(1, json!({"type":"subscribe","channel":"chat:a"}))["epoch"].clone();
    for n in 1..=5 {
        publish(&mut h, 1, "chat:a", n);
    }
    h.open(2, "");
    let r = h.ask(
        2,
        json!({"type":"subscribe","channel":"chat:a","since":{"offset":1,"epoch":epoch}}),
    );
    assert_eq!(r["recovered"], false);
    assert_eq!(r["publications"], json!([]));
    assert_eq!(r["offset"], 5);
    let r = h.ask(
        2,
        json!({"type":"subscribe","channel":"chat:a","since":{"offset":5,"epoch":"other"}}),
    );
    assert_eq!(r["recovered"], false);
}

#[test]
fn history_is_bounded_by_ttl() {
    let mut h = H::new();
    h.open(1, "");
    publish(&mut h, 1, "chat:a", 1);
    h.now += 600;
    publish(&mut h, 1, "chat:a", 2);
    h.now += 500;
    let r = h.ask(1, json!({"type":"history","channel":"chat:a"}));
    assert_eq!(r["type"], "history");
    assert_eq!(r["publications"].as_array().unwrap().len(), 1);
    assert_eq!(r["publications"][0]["offset"], 2);
    assert_eq!(r["offset"], 2);
    let rev = h.ask(
        1,
        json!({"type":"history","channel":"chat:a","limit":0,"reverse":true}),
    );
    assert_eq!(rev["publications"], json!([]));
    let e = h.ask(1, json!({"type":"history","channel":"plain"}));
    assert_eq!(e["code"], "NOT_FOUND");
    let e = h.ask(
        1,
        json!({"type":"history","channel":"chat:a","since":{"offset":0,"epoch":r["epoch"]}}),
    );
    assert_eq!(e["code"], "UNRECOVERABLE_POSITION");
}

#[test]
fn presence_lists_subscribers_and_pushes_join_and_leave() {
    let mut h = H::new();
    h.open(1, "");
    h.open(2, "token=key_u1");
    h.ask(1, json!({"type":"subscribe","channel":"chat:a"}));
    let acts = h.send(2, json!({"type":"subscribe","channel":"chat:a"}));
    let join = &frames(&acts, 1)[0];
    assert_eq!(join["type"], "presence:join");
    assert_eq!(join["member"]["clientId"], "c2");
    assert_eq!(frames(&acts, 2).len(), 1, "no join push to the joiner");
    let p = h.ask(1, json!({"type":"presence","channel":"chat:a"}));
    let ids: Vec<_> = p["clients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["clientId"].clone())
        .collect();
    assert_eq!(ids, vec![json!("c1"), json!("c2")]);
    let s = h.ask(1, json!({"type":"presence:stats","channel":"chat:a"}));
    assert_eq!(
        (s["clients"].clone(), s["users"].clone()),
        (json!(2), json!(1))
    );
    let acts = h.input(Input::Closed {
        conn: ConnId(2),
        code: None,
    });
    let leave = &frames(&acts, 1)[0];
    assert_eq!(leave["type"], "presence:leave");
    assert_eq!(leave["member"]["clientId"], "c2");
    let p = h.ask(1, json!({"type":"presence","channel":"chat:a"}));
    assert_eq!(p["clients"].as_array().unwrap().len(), 1);
}

#[test]
fn user_limited_channels_admit_only_their_user() {
    let mut h = H::new();
    h.open(1, "");
    h.open(2, "token=key_u1");
    h.open(3, "token=key_u2");
    let e = h.ask(1, json!({"type":"subscribe","channel":"personal:u1"}));
    assert_eq!(e["code"], "UNAUTHORIZED");
    let e = h.ask(3, json!({"type":"subscribe","channel":"personal:u1"}));
    assert_eq!(e["code"], "FORBIDDEN");
    let ok = h.ask(2, json!({"type":"subscribe","channel":"personal:u1"}));
    assert_eq!(ok["type"], "subscribed");
    let e = h.ask(3, json!({"type":"history","channel":"personal:u1"}));
    assert_eq!(e["code"], "FORBIDDEN");
}

#[test]
fn namespace_guards_and_roles_decide() {
    let mut h = H::new();
    h.open(1, "token=key_u1");
    h.open(2, "token=key_admin");
    let e = h.ask(1, json!({"type":"subscribe","channel":"ops:admin"}));
    assert_eq!(e["code"], "FORBIDDEN");
    let ok = h.ask(1, json!({"type":"subscribe","channel":"ops:user"}));
    assert_eq!(ok["type"], "subscribed");
    let e = h.ask(
        1,
        json!({"type":"publish","channel":"ops:user","message":1}),
    );
    assert_eq!(e["code"], "FORBIDDEN");
    let ok = h.ask(
        2,
        json!({"type":"publish","channel":"ops:user","message":1}),
    );
    assert_eq!(ok["type"], "published");
    let e = h.ask(1, json!({"type":"presence","channel":"personal:u1"}));
    assert_eq!(e["code"], "NOT_FOUND");
}

#[test]
fn server_api_publishes_into_the_stream_and_reads_history_and_presence() {
    let mut h = H::new();
    h.open(1, "");
    h.ask(1, json!({"type":"subscribe","channel":"chat:a"}));
    let acts = h.input(Input::Command {
        tag: 1,
        command: Command::Publish {
            channel: "chat:a".into(),
            data: Some(json!("hi")),
            tenant: None,
        },
    });
    let result = acts.iter().find_map(|a| match a {
        Action::CommandResult { result, .. } => Some(result.clone().unwrap()),
        _ => None,
    });
    let result = result.unwrap();
    assert_eq!(
        (result["delivered"].clone(), result["offset"].clone()),
        (json!(1), json!(1))
    );
    let acts = h.input(Input::Command {
        tag: 2,
        command: Command::History {
            channel: "chat:a".into(),
            limit: None,
            since: None,
            reverse: false,
            tenant: None,
        },
    });
    let Some(Action::CommandResult { result: Ok(v), .. }) = acts.last() else {
        panic!("{acts:?}")
    };
    assert_eq!(v["publications"][0]["data"], "hi");
    assert_eq!(v["publications"][0]["from"], "server");
    let acts = h.input(Input::Command {
        tag: 3,
        command: Command::Presence {
            channel: "chat:a".into(),
            tenant: None,
        },
    });
    let Some(Action::CommandResult { result: Ok(v), .. }) = acts.last() else {
        panic!("{acts:?}")
    };
    assert_eq!(v["clients"][0]["clientId"], "c1");
}

#[test]
fn expired_history_wakes_the_host_and_is_dropped() {
    let mut h = H::new();
    h.open(1, "");
    publish(&mut h, 1, "chat:a", 1);
    assert_eq!(h.e.broker.entry_count(), 1);
    let due = h.e.poll_timeout().unwrap();
    assert!(due.0 <= T0 + 1000);
    h.now = T0 + 1000;
    h.input(Input::Timeout);
    assert_eq!(h.e.broker.entry_count(), 0);
}
