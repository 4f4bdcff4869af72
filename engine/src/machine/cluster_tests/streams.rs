//! Streams in cluster mode: the shared broker orders every publication of a channel with
//! history, so offsets and epochs are the same on every node and a client recovers on
//! any node. The test broker below behaves as the native host's Redis scripts do.

use std::collections::BTreeMap;

use super::*;
use crate::cluster::{FetchedStream, StreamPublication, StreamSpec};

/// The shared broker: per stream its epoch, latest offset and retained publications.
#[derive(Default)]
struct Shared {
    streams: BTreeMap<String, (String, u64, Vec<StreamPublication>)>,
}

impl Shared {
    fn stream(&mut self, spec: &StreamSpec) -> &mut (String, u64, Vec<StreamPublication>) {
        self.streams
            .entry(spec.key.clone())
            .or_insert_with(|| (spec.epoch.clone(), 0, Vec::new()))
    }

    fn append(&mut self, spec: &StreamSpec, mut p: StreamPublication) -> ClusterMessage {
        let s = self.stream(spec);
        s.1 += 1;
        p.offset = s.1;
        p.epoch = s.0.clone();
        s.2.push(p.clone());
        if s.2.len() > spec.size {
            s.2.remove(0);
        }
        ClusterMessage::Sequenced(p)
    }

    fn fetch(&mut self, spec: &StreamSpec) -> FetchedStream {
        let s = self.stream(spec);
        FetchedStream {
            epoch: s.0.clone(),
            offset: s.1,
            publications: s.2.clone(),
        }
    }
}

/// Nodes on one bus with the shared broker.
struct Cluster {
    nodes: Vec<Node>,
    shared: Shared,
}

impl Cluster {
    fn new(n: usize) -> Cluster {
        let mut c = Cluster {
            nodes: Vec::new(),
            shared: Shared::default(),
        };
        for i in 0..n {
            c.start(i, i as u64 + 1);
        }
        c.pump();
        c
    }

    /// Start (or restart, with an empty engine) node `i`.
    fn start(&mut self, i: usize, seed: u64) {
        let mut node = Node::new(Some(&format!("node-{i}")), seed);
        node.event(ClusterEvent::Connected);
        if i < self.nodes.len() {
            self.nodes[i] = node;
        } else {
            self.nodes.push(node);
        }
    }

    /// What the shared broker makes of `m` from node `i`: for each node, the events.
    fn route(&mut self, i: usize, m: ClusterMessage) -> Vec<(usize, ClusterEvent)> {
        let n = self.nodes.len();
        match m {
            ClusterMessage::Append {
                stream,
                publication,
                ..
            } => {
                let seq = self.shared.append(&stream, publication);
                (0..n)
                    .map(|j| (j, ClusterEvent::Message(Box::new(seq.clone()))))
                    .collect()
            }
            ClusterMessage::Fetch {
                request, stream, ..
            } => {
                let result = Ok(self.shared.fetch(&stream));
                vec![(i, ClusterEvent::Fetched { request, result })]
            }
            other => (0..n)
                .filter(|j| *j != i)
                .map(|j| (j, ClusterEvent::Message(Box::new(other.clone()))))
                .collect(),
        }
    }

    /// Carry everything until no node has anything to send; each node's other actions.
    fn pump(&mut self) -> Vec<Vec<Action>> {
        let mut acts: Vec<Vec<Action>> = self.nodes.iter().map(|_| Vec::new()).collect();
        loop {
            let mut any = false;
            for i in 0..self.nodes.len() {
                for m in std::mem::take(&mut self.nodes[i].outbox) {
                    any = true;
                    for (j, event) in self.route(i, m) {
                        let got = self.nodes[j].event(event);
                        acts[j].extend(got);
                    }
                }
            }
            if !any {
                return acts;
            }
        }
    }

    /// Send `msg` from `conn` on node `i`, carry everything, return `conn`'s frames.
    fn ask(&mut self, i: usize, conn: u64, msg: Value) -> Vec<Value> {
        let mut acts = self.nodes[i].send(conn, msg);
        acts.extend(self.pump().swap_remove(i));
        frames(&acts, conn)
    }
}

fn subscribe(channel: &str, since: Option<(u64, &str)>) -> Value {
    match since {
        Some((offset, epoch)) => json!({"type":"subscribe","channel":channel,
            "since":{"offset":offset,"epoch":epoch}}),
        None => json!({"type":"subscribe","channel":channel}),
    }
}

fn publish(channel: &str, message: Value) -> Value {
    json!({"type":"publish","channel":channel,"message":message,"requestId":1})
}

fn offsets(publications: &Value) -> Vec<u64> {
    publications
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["offset"].as_u64().unwrap())
        .collect()
}

#[test]
fn every_node_delivers_a_stream_publication_with_the_offset_and_epoch_the_broker_assigned() {
    let mut c = Cluster::new(2);
    c.nodes[0].open(1, "c1", "key_u1");
    c.nodes[0].open(3, "c3", "key_u1");
    c.nodes[1].open(2, "c2", "key_u2");
    // The first use of a stream on a node reads it from the broker before answering.
    let acts = c.nodes[1].send(2, subscribe("feed:a", None));
    assert!(frames(&acts, 2).is_empty(), "{acts:?}");
    let s2 = c.ask(1, 2, json!({"type":"ping"}));
    let s2 = s2.iter().find(|f| f["type"] == "subscribed").unwrap();
    let epoch = s2["epoch"].as_str().unwrap().to_string();
    assert_eq!(s2["offset"], 0);
    let s3 = c.ask(0, 3, subscribe("feed:a", None)).remove(0);
    assert_eq!(s3["epoch"], epoch.as_str(), "one epoch for every node");
    let acts = c.nodes[0].send(1, publish("feed:a", json!("x")));
    assert!(frames(&acts, 1).is_empty(), "published waits for the order");
    let acts = c.pump();
    let published = frames(&acts[0], 1);
    assert_eq!(
        published.len(),
        1,
        "the publisher gets no copy: {published:?}"
    );
    assert_eq!(published[0]["type"], "published");
    assert_eq!(published[0]["delivered"], 1, "c3 on the publisher's node");
    assert_eq!(published[0]["requestId"], 1);
    for (node, conn) in [(0, 3), (1, 2)] {
        let m = &frames(&acts[node], conn)[0];
        assert_eq!(
            (m["offset"].as_u64(), m["epoch"].as_str()),
            (Some(1), Some(epoch.as_str()))
        );
        assert_eq!(m["data"], "x");
    }
    let acts = c.nodes[1].send(2, publish("feed:a", json!("y")));
    assert!(acts.is_empty());
    let acts = c.pump();
    assert_eq!(frames(&acts[1], 2)[0]["type"], "published");
    assert_eq!(frames(&acts[0], 3)[0]["offset"], 2);
    // Both copies are synced: history is answered locally, the same on both nodes.
    for (node, conn) in [(0, 3), (1, 2)] {
        let h = c.ask(node, conn, json!({"type":"history","channel":"feed:a"}));
        assert_eq!(offsets(&h[0]["publications"]), [1, 2]);
        assert_eq!(h[0]["epoch"], epoch.as_str());
    }
    assert_eq!(c.nodes[0].e.cluster.as_ref().unwrap().streams.len(), 0);
}

#[test]
fn a_client_of_a_dead_node_recovers_on_another_node_what_it_missed() {
    let mut c = Cluster::new(2);
    c.nodes[0].open(1, "c1", "key_u1");
    c.nodes[1].open(2, "c2", "key_u2");
    let s = c.ask(0, 1, subscribe("feed:a", None)).remove(0);
    let epoch = s["epoch"].as_str().unwrap().to_string();
    c.ask(1, 2, publish("feed:a", json!(1)));
    // Node 0 dies: the others stop hearing it.
    let _dead = c.nodes.remove(0);
    c.nodes[0].event(ClusterEvent::NodeGone {
        node: "node-0".into(),
    });
    c.ask(0, 2, publish("feed:a", json!(2)));
    c.ask(0, 2, publish("feed:a", json!(3)));
    // c1 reconnects to the surviving node with the last offset it saw.
    c.nodes[0].open(5, "c1", "key_u1");
    let r = c
        .ask(0, 5, subscribe("feed:a", Some((1, &epoch))))
        .remove(0);
    assert_eq!(r["type"], "subscribed", "{r}");
    assert_eq!(r["recovered"], true, "{r}");
    assert_eq!(offsets(&r["publications"]), [2, 3]);
    assert_eq!(
        (r["offset"].as_u64(), r["epoch"].as_str()),
        (Some(3), Some(epoch.as_str()))
    );
    // Later publications arrive live, once.
    c.nodes[0].open(6, "c6", "key_u2");
    let acts = c.nodes[0].send(6, publish("feed:a", json!(4)));
    assert!(acts.is_empty());
    let acts = c.pump();
    let live = frames(&acts[0], 5);
    assert_eq!(live.len(), 1, "{live:?}");
    assert_eq!(live[0]["offset"], 4);
}

#[test]
fn a_restarted_node_recovers_from_the_broker_and_refuses_another_epoch() {
    let mut c = Cluster::new(2);
    c.nodes[0].open(1, "c1", "key_u1");
    c.nodes[1].open(2, "c2", "key_u2");
    let s = c.ask(0, 1, subscribe("feed:a", None)).remove(0);
    let epoch = s["epoch"].as_str().unwrap().to_string();
    for n in 0..2 {
        c.ask(1, 2, publish("feed:a", json!(n)));
    }
    c.start(0, 42);
    c.pump();
    c.nodes[0].open(1, "c1", "key_u1");
    let r = c
        .ask(0, 1, subscribe("feed:a", Some((1, &epoch))))
        .remove(0);
    assert_eq!(r["recovered"], true, "{r}");
    assert_eq!(offsets(&r["publications"]), [2]);
    c.nodes[0].open(3, "c3", "key_u1");
    let r = c
        .ask(0, 3, subscribe("feed:a", Some((1, "OTHER"))))
        .remove(0);
    assert_eq!(r["recovered"], false);
    assert_eq!(
        (r["offset"].as_u64(), r["epoch"].as_str()),
        (Some(2), Some(epoch.as_str()))
    );
    // The broker keeps 3 publications (`size`): an older position is not recoverable.
    for n in 0..3 {
        c.ask(1, 2, publish("feed:a", json!(n)));
    }
    let r = c
        .ask(0, 3, subscribe("feed:a", Some((1, &epoch))))
        .remove(0);
    assert_eq!(r["recovered"], false, "{r}");
    assert_eq!(r["offset"], 5);
}

#[test]
fn history_on_any_node_reads_the_shared_stream_for_clients_and_the_server_api() {
    let mut c = Cluster::new(2);
    c.nodes[0].open(1, "c1", "key_u1");
    c.nodes[1].open(2, "c2", "key_u2");
    c.ask(0, 1, publish("feed:h", json!("a")));
    c.ask(0, 1, publish("feed:h", json!("b")));
    let h = c
        .ask(1, 2, json!({"type":"history","channel":"feed:h"}))
        .remove(0);
    assert_eq!(offsets(&h["publications"]), [1, 2]);
    let acts = c.nodes[0].input(Input::Command {
        tag: 4,
        command: Command::Publish {
            channel: "feed:h".into(),
            data: Some(json!("c")),
            tenant: None,
        },
    });
    assert!(acts.is_empty(), "answered once ordered: {acts:?}");
    let acts = c.pump();
    let r = command_result(&acts[0]).unwrap();
    assert_eq!(
        (r["offset"].as_u64(), r["delivered"].as_u64()),
        (Some(3), Some(0))
    );
    assert_eq!(r["epoch"], h["epoch"]);
    c.start(1, 9);
    c.pump();
    let acts = c.nodes[1].input(Input::Command {
        tag: 5,
        command: Command::History {
            channel: "feed:h".into(),
            limit: None,
            since: None,
            reverse: false,
            tenant: None,
        },
    });
    assert!(acts.is_empty());
    let acts = c.pump();
    let r = command_result(&acts[1]).unwrap();
    assert_eq!(offsets(&r["publications"]), [1, 2, 3]);
}

#[test]
fn a_publication_ordered_before_the_read_is_recovered_and_not_delivered_again() {
    let mut c = Cluster::new(2);
    c.nodes[0].open(1, "c1", "key_u1");
    c.nodes[1].open(2, "c2", "key_u2");
    c.pump();
    c.nodes[0].send(1, subscribe("feed:r", None));
    let fetch = std::mem::take(&mut c.nodes[0].outbox);
    c.nodes[1].send(2, publish("feed:r", json!(1)));
    let append = c.nodes[1].outbox.remove(0);
    // The broker orders the publication, then reads the stream for node 0; node 0 gets
    // the read's answer before the publication from the bus.
    let seq = c.route(1, append);
    let answer = c.route(0, fetch.into_iter().next().unwrap());
    let acts = c.nodes[0].event(answer.into_iter().next().unwrap().1);
    let s = &frames(&acts, 1)[0];
    assert_eq!(s["offset"], 1);
    let (_, late) = seq.into_iter().find(|(j, _)| *j == 0).unwrap();
    let acts = c.nodes[0].event(late);
    assert!(frames(&acts, 1).is_empty(), "no duplicate: {acts:?}");
}

#[test]
fn a_publication_ordered_after_the_read_arrives_live() {
    let mut c = Cluster::new(2);
    c.nodes[0].open(1, "c1", "key_u1");
    c.nodes[1].open(2, "c2", "key_u2");
    c.pump();
    c.nodes[0].send(1, subscribe("feed:r", Some((0, "nope"))));
    let fetch = std::mem::take(&mut c.nodes[0].outbox);
    let answer = c.route(0, fetch.into_iter().next().unwrap());
    c.nodes[1].send(2, publish("feed:r", json!(1)));
    let append = c.nodes[1].outbox.remove(0);
    let seq = c.route(1, append);
    // The publication reaches node 0 before the read's answer: it is delivered to
    // nobody yet (c1 is not subscribed), then c1 gets it in its recovery.
    let (_, early) = seq.into_iter().find(|(j, _)| *j == 0).unwrap();
    assert!(c.nodes[0].event(early).is_empty());
    let acts = c.nodes[0].event(answer.into_iter().next().unwrap().1);
    let s = &frames(&acts, 1)[0];
    assert_eq!(s["offset"], 1, "{s}");
    assert_eq!(s["recovered"], false, "another epoch");
    let acts = c.nodes[1].send(2, publish("feed:r", json!(2)));
    assert!(acts.is_empty());
    let acts = c.pump();
    assert_eq!(frames(&acts[0], 1)[0]["offset"], 2);
}

#[test]
fn while_the_broker_is_down_stream_publishes_fail_and_waiting_requests_are_answered() {
    let mut c = Cluster::new(1);
    c.nodes[0].open(1, "c1", "key_u1");
    c.ask(0, 1, subscribe("feed:a", None));
    c.nodes[0].send(1, publish("feed:a", json!(1)));
    c.nodes[0].send(1, subscribe("feed:new", None));
    c.nodes[0].outbox.clear();
    let acts = c.nodes[0].event(ClusterEvent::Disconnected);
    let frames = frames(&acts, 1);
    assert_eq!(frames.len(), 2, "{frames:?}");
    assert!(
        frames.iter().all(|f| f["code"] == "UNAVAILABLE"),
        "{frames:?}"
    );
    assert!(frames[0]["message"]
        .as_str()
        .unwrap()
        .contains("may or may not"));
    let e = c.nodes[0].ask(1, publish("feed:a", json!(2)));
    assert_eq!(e["code"], "UNAVAILABLE");
    let e = c.nodes[0].ask(1, subscribe("feed:other", None));
    assert_eq!(e["code"], "UNAVAILABLE", "no copy of that stream");
    let s = c.nodes[0].ask(1, subscribe("feed:a", None));
    assert_eq!(s["type"], "subscribed", "answered from the copy: {s}");
    assert!(c.nodes[0].outbox.is_empty());
    // Back: the copy is read again before it answers.
    c.nodes[0].event(ClusterEvent::Connected);
    c.pump();
    let h = c
        .ask(0, 1, json!({"type":"history","channel":"feed:a"}))
        .remove(0);
    assert_eq!(h["type"], "history", "{h}");
}

#[test]
fn concurrent_first_uses_of_a_stream_share_one_read_and_later_ones_need_none() {
    let mut c = Cluster::new(1);
    c.nodes[0].open(1, "c1", "key_u1");
    c.nodes[0].open(2, "c2", "key_u2");
    c.pump();
    c.nodes[0].send(1, subscribe("feed:c", None));
    c.nodes[0].send(2, json!({"type":"history","channel":"feed:c"}));
    let fetches = |n: &Node| {
        n.outbox
            .iter()
            .filter(|m| matches!(m, ClusterMessage::Fetch { .. }))
            .count()
    };
    assert_eq!(fetches(&c.nodes[0]), 1);
    let acts = c.pump();
    assert_eq!(frames(&acts[0], 1)[0]["type"], "subscribed");
    assert_eq!(frames(&acts[0], 2)[0]["type"], "history");
    c.nodes[0].send(2, subscribe("feed:c", None));
    assert_eq!(fetches(&c.nodes[0]), 0, "the copy is synced");
}
