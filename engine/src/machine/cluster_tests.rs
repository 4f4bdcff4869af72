//! Behaviour tests of cluster mode: two engines joined by a test bus that carries each
//! one's `Action::Cluster` messages to the other as `Input::Cluster`.

use serde_json::{json, Value};

use super::*;
use crate::cluster::{ClusterEvent, ClusterMessage};
use crate::testing::frames;
use crate::types::UpgradeRequest;

const T0: u64 = 1_700_000_000_000;

fn cfg() -> Value {
    json!({
        "auth": {"apiKeys": {
            "key_u1": {"id": "u1", "role": "user"},
            "key_u2": {"id": "u2", "role": "user"}
        }},
        "heartbeatInterval": 0,
        "channels": {"namespaces": [
            {"pattern": "chat:*", "presence": true, "joinLeave": true},
            {"pattern": "feed:*", "history": {"size": 3, "ttlMs": 60000}}
        ]},
        "resources": {"notes": {"protected": ["secret"]}}
    })
}

/// One node: an engine and the cluster messages it emitted.
struct Node {
    e: Engine,
    outbox: Vec<ClusterMessage>,
}

impl Node {
    fn new(name: Option<&str>, seed: u64) -> Node {
        let mut e = Engine::with_seed(Config::from_value(cfg()).unwrap(), seed).unwrap();
        if let Some(name) = name {
            e.enable_cluster(name);
        }
        Node {
            e,
            outbox: Vec::new(),
        }
    }

    /// Feed an input; keep cluster messages aside, return the other actions.
    fn input(&mut self, input: Input<'_>) -> Vec<Action> {
        self.e.handle(Millis(T0), input).unwrap();
        self.e.check_invariants().unwrap();
        let mut rest = Vec::new();
        for a in self.e.drain_actions() {
            match a {
                Action::Cluster { message } => self.outbox.push(*message),
                other => rest.push(other),
            }
        }
        rest
    }

    fn open(&mut self, conn: u64, client_id: &str, key: &str) {
        let request = UpgradeRequest {
            path: "/".into(),
            query: format!("token={key}"),
            peer: "10.0.0.1".into(),
            client_id: client_id.into(),
            ..Default::default()
        };
        let acts = self.input(Input::Open {
            conn: ConnId(conn),
            request,
        });
        assert!(matches!(acts[0], Action::Accept { .. }), "{acts:?}");
    }

    fn send(&mut self, conn: u64, msg: Value) -> Vec<Action> {
        let text = msg.to_string();
        self.input(Input::Frame {
            conn: ConnId(conn),
            frame: InFrame::Text(&text),
        })
    }

    fn ask(&mut self, conn: u64, msg: Value) -> Value {
        let acts = self.send(conn, msg);
        frames(&acts, conn).remove(0)
    }

    fn event(&mut self, event: ClusterEvent) -> Vec<Action> {
        self.input(Input::Cluster { event })
    }
}

/// Deliver everything `from` emitted to `to`; returns `to`'s actions.
fn carry(from: &mut Node, to: &mut Node) -> Vec<Action> {
    let mut acts = Vec::new();
    for m in std::mem::take(&mut from.outbox) {
        acts.extend(to.event(ClusterEvent::Message(Box::new(m))));
    }
    acts
}

/// Two connected nodes, `a` and `b`, each knowing the other's (empty) state.
fn pair() -> (Node, Node) {
    let mut a = Node::new(Some("node-a"), 1);
    let mut b = Node::new(Some("node-b"), 2);
    a.event(ClusterEvent::Connected);
    b.event(ClusterEvent::Connected);
    carry(&mut a, &mut b);
    carry(&mut b, &mut a);
    carry(&mut a, &mut b);
    (a, b)
}

#[test]
fn without_a_cluster_nothing_is_emitted_and_cluster_inputs_are_ignored() {
    let mut n = Node::new(None, 1);
    n.open(1, "c1", "key_u1");
    n.ask(1, json!({"type":"subscribe","channel":"chat:a"}));
    n.send(1, json!({"type":"publish","channel":"chat:a","message":1}));
    assert!(n.outbox.is_empty());
    assert!(n.event(ClusterEvent::Connected).is_empty());
    assert!(n.outbox.is_empty());
    assert_eq!(n.e.cluster_node(), None);
    assert!(n.e.cluster_available());
}

#[test]
fn connecting_announces_the_node_with_hello_and_its_snapshot() {
    let mut a = Node::new(Some("node-a"), 1);
    a.open(1, "c1", "key_u1");
    a.ask(1, json!({"type":"subscribe","channel":"chat:a"}));
    assert!(
        a.outbox.is_empty(),
        "nothing is sent before the broker is up"
    );
    a.event(ClusterEvent::Connected);
    assert_eq!(
        a.outbox[0],
        ClusterMessage::Hello {
            node: "node-a".into()
        }
    );
    let ClusterMessage::Snapshot {
        clients, members, ..
    } = &a.outbox[1]
    else {
        panic!("{:?}", a.outbox)
    };
    assert_eq!(clients.len(), 1);
    assert_eq!(members[0].channel, "chat:a");
    assert_eq!(members[0].member.client_id, "c1");
}

#[test]
fn a_publication_reaches_subscribers_of_the_other_node() {
    let (mut a, mut b) = pair();
    a.open(1, "c1", "key_u1");
    b.open(2, "c2", "key_u2");
    b.ask(2, json!({"type":"subscribe","channel":"chat:a"}));
    carry(&mut b, &mut a);
    a.send(
        1,
        json!({"type":"publish","channel":"chat:a","message":{"n":1}}),
    );
    let got = carry(&mut a, &mut b);
    let m = &frames(&got, 2)[0];
    assert_eq!(m["type"], "message");
    assert_eq!(m["from"], "c1");
    assert_eq!(m["data"], json!({"n":1}));
    assert!(m.get("offset").is_none(), "a channel without history: {m}");
}

#[test]
fn a_node_ignores_its_own_messages() {
    let (mut a, _b) = pair();
    a.open(1, "c1", "key_u1");
    a.ask(1, json!({"type":"subscribe","channel":"chat:a"}));
    a.outbox.clear();
    a.send(1, json!({"type":"publish","channel":"chat:a","message":1}));
    let echo = std::mem::take(&mut a.outbox);
    assert_eq!(echo.len(), 1);
    for m in echo {
        assert!(a.event(ClusterEvent::Message(Box::new(m))).is_empty());
    }
    assert!(a.outbox.is_empty());
}

#[test]
fn direct_messages_reach_a_client_of_another_node_by_client_id() {
    let (mut a, mut b) = pair();
    a.open(1, "c1", "key_u1");
    b.open(2, "c2", "key_u2");
    carry(&mut b, &mut a);
    let sent = a.ask(
        1,
        json!({"type":"direct","to":"c2","data":"hi","ack":true,"requestId":1}),
    );
    assert_eq!(sent["type"], "sent");
    assert_eq!(sent["delivered"], 1);
    let got = carry(&mut a, &mut b);
    let d = &frames(&got, 2)[0];
    assert_eq!(
        (d["type"].as_str(), d["from"].as_str()),
        (Some("direct"), Some("c1"))
    );
    assert_eq!(d["data"], "hi");
    let missing = a.ask(
        1,
        json!({"type":"direct","to":"nobody","data":1,"ack":true}),
    );
    assert_eq!(missing["code"], "NOT_FOUND");
}

#[test]
fn presence_lists_include_members_of_other_nodes_and_their_joins_and_leaves_are_pushed() {
    let (mut a, mut b) = pair();
    a.open(1, "c1", "key_u1");
    b.open(2, "c2", "key_u2");
    b.ask(2, json!({"type":"subscribe","channel":"chat:a"}));
    a.ask(1, json!({"type":"subscribe","channel":"chat:a"}));
    carry(&mut b, &mut a);
    let joined = carry(&mut a, &mut b);
    let j = &frames(&joined, 2)[0];
    assert_eq!(
        (j["type"].as_str(), j["member"]["clientId"].as_str()),
        (Some("presence:join"), Some("c1"))
    );
    let p = b.ask(2, json!({"type":"presence","channel":"chat:a"}));
    let ids: Vec<&str> = p["clients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["clientId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["c2", "c1"]);
    let stats = b.ask(2, json!({"type":"presence:stats","channel":"chat:a"}));
    assert_eq!(
        (stats["clients"].as_u64(), stats["users"].as_u64()),
        (Some(2), Some(2))
    );
    a.input(Input::Closed {
        conn: ConnId(1),
        code: None,
    });
    let left = carry(&mut a, &mut b);
    let l = &frames(&left, 2)[0];
    assert_eq!(
        (l["type"].as_str(), l["member"]["clientId"].as_str()),
        (Some("presence:leave"), Some("c1"))
    );
    let p = b.ask(2, json!({"type":"presence","channel":"chat:a"}));
    assert_eq!(p["clients"].as_array().unwrap().len(), 1);
}

#[test]
fn a_node_gone_silent_loses_its_members_and_clients_with_leave_pushes() {
    let (mut a, mut b) = pair();
    a.open(1, "c1", "key_u1");
    b.open(2, "c2", "key_u2");
    a.ask(1, json!({"type":"subscribe","channel":"chat:a"}));
    b.ask(2, json!({"type":"subscribe","channel":"chat:a"}));
    carry(&mut a, &mut b);
    let acts = b.event(ClusterEvent::NodeGone {
        node: "node-a".into(),
    });
    assert_eq!(frames(&acts, 2)[0]["type"], "presence:leave");
    let p = b.ask(2, json!({"type":"presence","channel":"chat:a"}));
    assert_eq!(p["clients"].as_array().unwrap().len(), 1);
    let dm = b.ask(2, json!({"type":"direct","to":"c1","data":1,"ack":true}));
    assert_eq!(dm["code"], "NOT_FOUND");
}

#[test]
fn a_snapshot_replaces_what_was_known_of_its_node() {
    let (mut a, mut b) = pair();
    a.open(1, "c1", "key_u1");
    a.ask(1, json!({"type":"subscribe","channel":"chat:a"}));
    b.event(ClusterEvent::NodeGone {
        node: "node-a".into(),
    });
    a.outbox.clear();
    // b reconnects: its hello makes a answer with everything it holds.
    b.event(ClusterEvent::Disconnected);
    b.event(ClusterEvent::Connected);
    carry(&mut b, &mut a);
    b.open(2, "c2", "key_u2");
    b.ask(2, json!({"type":"subscribe","channel":"chat:a"}));
    let acts = carry(&mut a, &mut b);
    assert!(
        acts.is_empty()
            || frames(&acts, 2)
                .iter()
                .all(|f| f["type"] == "presence:join")
    );
    let p = b.ask(2, json!({"type":"presence","channel":"chat:a"}));
    assert_eq!(p["clients"].as_array().unwrap().len(), 2);
    let dm = b.ask(2, json!({"type":"direct","to":"c1","data":1,"ack":true}));
    assert_eq!(dm["delivered"], 1);
}

#[test]
fn while_the_broker_is_down_publications_and_remote_direct_messages_fail_with_unavailable() {
    let (mut a, mut b) = pair();
    a.open(1, "c1", "key_u1");
    b.open(2, "c2", "key_u2");
    carry(&mut b, &mut a);
    a.outbox.clear();
    a.event(ClusterEvent::Disconnected);
    assert!(!a.e.cluster_available());
    let e = a.ask(
        1,
        json!({"type":"publish","channel":"chat:a","message":1,"requestId":5}),
    );
    assert_eq!(
        (e["code"].as_str(), e["requestId"].as_i64()),
        (Some("UNAVAILABLE"), Some(5))
    );
    let e = a.ask(1, json!({"type":"direct","to":"c2","data":1,"ack":true}));
    assert_eq!(e["code"], "UNAVAILABLE");
    a.input(Input::Command {
        tag: 9,
        command: Command::Publish {
            channel: "chat:a".into(),
            data: None,
            tenant: None,
        },
    });
    assert!(
        a.outbox.is_empty(),
        "nothing is queued for a broker that is down"
    );
    a.event(ClusterEvent::Connected);
    let ok = a.ask(
        1,
        json!({"type":"publish","channel":"chat:a","message":1,"requestId":6}),
    );
    assert_eq!(ok["type"], "published");
}

#[test]
fn resource_change_events_reach_the_other_node_with_its_protected_fields_removed() {
    let (mut a, mut b) = pair();
    b.open(2, "c2", "key_u2");
    assert_eq!(
        b.ask(2, json!({"type":"subscribe","resource":"notes"}))["type"],
        "subscribed"
    );
    let acts = a.input(Input::Command {
        tag: 1,
        command: Command::ResourceChanged {
            resource: "notes".into(),
            event: crate::config::ChangeKind::Insert,
            record: json!({"id":"n1","text":"hello","secret":"s"}),
            previous: None,
        },
    });
    assert!(matches!(acts[0], Action::CommandResult { .. }));
    let got = carry(&mut a, &mut b);
    let ev = &frames(&got, 2)[0];
    assert_eq!(ev["type"], "event");
    assert_eq!(ev["data"]["text"], "hello");
    assert!(ev["data"].get("secret").is_none(), "{ev}");
}

#[test]
fn cluster_messages_round_trip_through_json() {
    let (mut a, _b) = pair();
    a.open(1, "c1", "key_u1");
    a.ask(1, json!({"type":"subscribe","channel":"chat:a"}));
    a.send(
        1,
        json!({"type":"publish","channel":"chat:a","message":{"x":[1,2]}}),
    );
    for m in &a.outbox {
        let text = serde_json::to_string(m).unwrap();
        let back: ClusterMessage = serde_json::from_str(&text).unwrap();
        assert_eq!(&back, m, "{text}");
    }
}

fn command_result(acts: &[Action]) -> Result<Value, CommandError> {
    acts.iter()
        .find_map(|a| match a {
            Action::CommandResult { result, .. } => Some(result.clone()),
            _ => None,
        })
        .expect("a command result")
}

#[test]
fn server_broadcasts_and_sends_to_users_run_on_every_node() {
    let (mut a, mut b) = pair();
    b.open(2, "c2", "key_u2");
    let r = a.input(Input::Command {
        tag: 1,
        command: Command::Broadcast {
            message: json!({"type":"notice","n":1}),
            filter: None,
            tenant: None,
        },
    });
    assert_eq!(
        command_result(&r).unwrap()["delivered"],
        0,
        "no local client"
    );
    let got = carry(&mut a, &mut b);
    assert_eq!(frames(&got, 2)[0], json!({"type":"notice","n":1}));
    a.input(Input::Command {
        tag: 2,
        command: Command::SendToUser {
            user_id: "u2".into(),
            message: json!({"to":"u2"}),
            tenant: None,
        },
    });
    let got = carry(&mut a, &mut b);
    assert_eq!(frames(&got, 2)[0], json!({"to":"u2"}));
    a.event(ClusterEvent::Disconnected);
    let r = a.input(Input::Command {
        tag: 3,
        command: Command::Broadcast {
            message: json!(1),
            filter: None,
            tenant: None,
        },
    });
    assert_eq!(command_result(&r).unwrap_err().code, ErrorCode::Unavailable);
}

#[test]
fn send_to_and_disconnect_reach_a_client_of_another_node() {
    let (mut a, mut b) = pair();
    b.open(2, "c2", "key_u2");
    carry(&mut b, &mut a);
    let r = a.input(Input::Command {
        tag: 1,
        command: Command::SendTo {
            client_id: "c2".into(),
            message: json!({"hello":"c2"}),
        },
    });
    assert_eq!(command_result(&r).unwrap()["delivered"], 1);
    let got = carry(&mut a, &mut b);
    assert_eq!(frames(&got, 2)[0], json!({"hello":"c2"}));
    let r = a.input(Input::Command {
        tag: 2,
        command: Command::Disconnect {
            client_id: "c2".into(),
            reason: None,
        },
    });
    assert_eq!(command_result(&r).unwrap()["disconnected"], "c2");
    let got = carry(&mut a, &mut b);
    assert!(
        got.iter()
            .any(|x| matches!(x, Action::Close { conn, .. } if conn.0 == 2)),
        "{got:?}"
    );
    let r = a.input(Input::Command {
        tag: 3,
        command: Command::SendTo {
            client_id: "nobody".into(),
            message: json!(1),
        },
    });
    assert_eq!(command_result(&r).unwrap_err().code, ErrorCode::NotFound);
}

#[test]
fn the_per_user_connection_limit_counts_the_connections_of_every_node() {
    let mut config = cfg();
    config["limits"] = json!({"maxConnectionsPerUser": 1});
    let node = |name: &str, seed| {
        let mut e = Engine::with_seed(Config::from_value(config.clone()).unwrap(), seed).unwrap();
        e.enable_cluster(name);
        Node {
            e,
            outbox: Vec::new(),
        }
    };
    let (mut a, mut b) = (node("node-a", 1), node("node-b", 2));
    for n in [&mut a, &mut b] {
        n.event(ClusterEvent::Connected);
        n.outbox.clear();
    }
    a.open(1, "c1", "key_u1");
    carry(&mut a, &mut b);
    let request = UpgradeRequest {
        path: "/".into(),
        query: "token=key_u1".into(),
        peer: "10.0.0.2".into(),
        client_id: "c2".into(),
        ..Default::default()
    };
    let acts = b.input(Input::Open {
        conn: ConnId(2),
        request: request.clone(),
    });
    let Action::Reject { status, body, .. } = &acts[0] else {
        panic!("{acts:?}")
    };
    assert_eq!(*status, 429);
    assert!(body.contains("too_many_connections_for_user"), "{body}");
    // Once u1 leaves node a, node b admits it.
    a.input(Input::Closed {
        conn: ConnId(1),
        code: None,
    });
    carry(&mut a, &mut b);
    let acts = b.input(Input::Open {
        conn: ConnId(3),
        request,
    });
    assert!(matches!(acts[0], Action::Accept { .. }), "{acts:?}");
}

/// Streams (channels with history) shared through the broker.
mod streams;

/// Rooms shared across nodes.
mod rooms;

/// Connection limits counted across nodes.
mod limits;
