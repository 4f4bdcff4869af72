//! The actor's release rules for a batch ([`super::batch`]), on real [`Outbound`] queues:
//! the engine's actions are executed as they come, the turn ends with the actor's own
//! flush (no socket is attached then, so nothing is written), and what each connection's
//! queue holds (its entries, and the frames written once a socket is attached) is
//! compared with what frame-by-frame queueing would have made. The engine here does not
//! know these connections: what the actor feeds back to it (a close's `Closed`, a full
//! queue's `Backpressure`) changes nothing in the queues.

use std::sync::Arc;

use engine::{Action, Config, ConnId, Engine, Frame, Millis};

use super::{Actor, Peer};
use crate::metrics::Metrics;
use crate::outbound::{write_out_and_read, Outbound};
use crate::store::{StoreHandle, StoreWorker};
use crate::transport::Stream;

const NOW: Millis = Millis(0);

/// An actor with a memory store and no connections; the store's worker is stopped by
/// [`Fixture::drop`].
struct Fixture {
    actor: Actor,
    store: StoreHandle,
    worker: Option<StoreWorker>,
}

impl Fixture {
    fn new() -> Self {
        let metrics = Arc::new(Metrics::new());
        let (completions, _) = tokio::sync::mpsc::channel(16);
        let (store, worker) = StoreWorker::spawn(
            Box::new(engine::store::MemoryStore::new()),
            completions,
            metrics.clone(),
        )
        .unwrap();
        let engine = Engine::new(Config::from_json("{}").unwrap()).unwrap();
        Self {
            actor: Actor::new(engine, store.clone(), metrics),
            store,
            worker: Some(worker),
        }
    }

    /// A connection the actor writes to through `out`.
    fn peer(&mut self, conn: u64, out: Outbound) -> Arc<Outbound> {
        let out = Arc::new(out);
        self.actor.peers.insert(
            ConnId(conn),
            Peer {
                out: out.clone(),
                opening: None,
                accepted: true,
            },
        );
        out
    }

    fn run(&mut self, actions: Vec<Action>) {
        for a in actions {
            self.actor.execute(NOW, a);
        }
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        self.store.stop();
        if let Some(w) = self.worker.take() {
            w.join();
        }
    }
}

fn queue() -> Outbound {
    Outbound::new(1000, 1 << 20, 1 << 16)
}

fn many(conns: &[u64], text: &str) -> Action {
    Action::SendMany {
        conns: conns.iter().map(|&c| ConnId(c)).collect(),
        frame: Frame::Text(text.into()),
    }
}

fn one(conn: u64, text: &str) -> Action {
    Action::Send {
        conn: ConnId(conn),
        frame: Frame::Text(text.into()),
    }
}

/// The frames a queue writes once a socket is attached: text payloads, `close CODE`, and
/// `opcode N` for any other frame.
async fn written(out: &Outbound) -> Vec<String> {
    let (mut client, server) = tokio::io::duplex(1 << 16);
    out.attach(Stream::boxed(server));
    frames(&write_out_and_read(out, &mut client).await)
}

/// The short server frames in `bytes`, which hold whole frames only.
fn frames(bytes: &[u8]) -> Vec<String> {
    let mut got = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let len = usize::from(rest[1]);
        assert!(len < 126, "short frames only");
        let payload = &rest[2..2 + len];
        got.push(match rest[0] & 0x0f {
            0x1 => String::from_utf8(payload.to_vec()).unwrap(),
            0x8 => format!("close {}", u16::from_be_bytes([payload[0], payload[1]])),
            other => format!("opcode {other}"),
        });
        rest = &rest[2 + len..];
    }
    got
}

#[tokio::test]
async fn consecutive_fan_outs_to_the_same_recipients_are_queued_as_q1entry_at_the_turns_end() {
    let mut f = Fixture::new();
    let (q1, q2) = (f.peer(1, queue()), f.peer(2, queue()));
    f.run(vec![
        many(&[1, 2], "a"),
        many(&[1, 2], "b"),
        many(&[1, 2], "c"),
    ]);
    assert_eq!(q1.waiting(), (0, 0), "collected, not queued yet");
    f.actor.flush(NOW);
    assert_eq!(q1.waiting(), (1, 3), "one buffer of three frames");
    assert_eq!(q2.waiting(), (1, 3));
    assert_eq!(written(&q1).await, ["a", "b", "c"]);
    assert_eq!(written(&q2).await, ["a", "b", "c"]);
}

#[tokio::test]
async fn a_send_to_a_recipient_goes_after_the_batch_and_q1to_another_connection_keeps_it() {
    let mut f = Fixture::new();
    let (q1, q2, q3) = (f.peer(1, queue()), f.peer(2, queue()), f.peer(3, queue()));
    f.run(vec![
        many(&[1, 2], "a"),
        one(3, "x"),
        many(&[1, 2], "b"),
        one(1, "y"),
        many(&[1, 2], "c"),
    ]);
    f.actor.flush(NOW);
    assert_eq!(q1.waiting(), (3, 4), "a+b released by the send to 1, y, c");
    assert_eq!(q2.waiting(), (2, 3), "a+b, then c");
    assert_eq!(q3.waiting(), (1, 1));
    assert_eq!(written(&q1).await, ["a", "b", "y", "c"]);
    assert_eq!(written(&q2).await, ["a", "b", "c"]);
    assert_eq!(written(&q3).await, ["x"]);
}

#[tokio::test]
async fn a_fan_out_to_other_recipients_releases_the_batch_first() {
    let mut f = Fixture::new();
    let (q1, q2, q3) = (f.peer(1, queue()), f.peer(2, queue()), f.peer(3, queue()));
    f.run(vec![
        many(&[1, 2], "a"),
        many(&[2, 3], "b"),
        many(&[1, 2], "c"),
    ]);
    f.actor.flush(NOW);
    assert_eq!(q2.waiting(), (3, 3));
    assert_eq!(written(&q2).await, ["a", "b", "c"]);
    assert_eq!(written(&q1).await, ["a", "c"]);
    assert_eq!(written(&q3).await, ["b"]);
}

#[tokio::test]
async fn a_fan_out_to_part_of_the_recipients_releases_the_batch_first() {
    let mut f = Fixture::new();
    let (q1, q2) = (f.peer(1, queue()), f.peer(2, queue()));
    f.run(vec![
        many(&[1, 2], "a"),
        many(&[1, 2], "b"),
        many(&[1], "c"),
    ]);
    f.actor.flush(NOW);
    assert_eq!(q1.waiting(), (2, 3), "a+b, then c");
    assert_eq!(q2.waiting(), (1, 2));
    assert_eq!(written(&q1).await, ["a", "b", "c"]);
}

#[tokio::test]
async fn a_ping_to_a_recipient_releases_the_batch_so_that_the_queue_bound_counts_it_after() {
    let mut f = Fixture::new();
    // Room for two frames: the batch's two fit before the ping; after it, one would not.
    let small = f.peer(1, Outbound::new(2, 1 << 20, 1 << 16));
    f.run(vec![
        many(&[1], "a"),
        many(&[1], "b"),
        Action::Ping { conn: ConnId(1) },
    ]);
    f.actor.flush(NOW);
    assert_eq!(small.waiting(), (2, 3), "the batch's buffer, then the ping");
    assert_eq!(f.actor.metrics.outbound_overflow.get(), 0);
    assert_eq!(
        written(&small).await,
        ["opcode 9", "a", "b"],
        "a ping is written first"
    );
}

#[tokio::test]
async fn a_ping_or_send_to_another_connection_and_an_accept_keep_the_batch() {
    let mut f = Fixture::new();
    let (q1, q3) = (f.peer(1, queue()), f.peer(3, queue()));
    f.peer(2, queue());
    f.run(vec![
        many(&[1, 2], "a"),
        Action::Ping { conn: ConnId(3) },
        Action::Accept {
            conn: ConnId(3),
            protocol: None,
        },
        one(3, "x"),
        many(&[1, 2], "b"),
    ]);
    f.actor.flush(NOW);
    assert_eq!(q1.waiting(), (1, 2), "a and b in one buffer");
    assert_eq!(written(&q1).await, ["a", "b"]);
    assert_eq!(written(&q3).await, ["opcode 9", "x"]);
}

#[tokio::test]
async fn any_other_action_releases_the_batch() {
    let mut f = Fixture::new();
    let q1 = f.peer(1, queue());
    f.run(vec![
        many(&[1], "a"),
        Action::CommandResult {
            tag: 99,
            result: Ok(serde_json::Value::Null),
        },
        many(&[1], "b"),
    ]);
    f.actor.flush(NOW);
    assert_eq!(q1.waiting(), (2, 2));
    assert_eq!(written(&q1).await, ["a", "b"]);
}

#[tokio::test]
async fn a_close_queues_the_batch_before_the_close_frame() {
    let mut f = Fixture::new();
    let (q1, q2) = (f.peer(1, queue()), f.peer(2, queue()));
    f.run(vec![
        many(&[1, 2], "a"),
        many(&[1, 2], "b"),
        Action::Close {
            conn: ConnId(1),
            code: 4000,
            reason: "bye".into(),
        },
        many(&[2], "c"),
    ]);
    f.actor.flush(NOW);
    assert_eq!(written(&q1).await, ["a", "b", "close 4000"]);
    assert_eq!(written(&q2).await, ["a", "b", "c"]);
}

#[tokio::test]
async fn a_queue_with_room_for_part_of_the_batch_gets_its_first_frames_and_the_rest_count_as_overflow(
) {
    let mut f = Fixture::new();
    let q1 = f.peer(1, queue());
    let small = f.peer(2, Outbound::new(3, 1 << 20, 1 << 16));
    f.run((0..5).map(|i| many(&[1, 2], &format!("m{i}"))).collect());
    f.actor.flush(NOW);
    assert_eq!(q1.waiting(), (1, 5));
    assert_eq!(small.waiting(), (3, 3), "given one by one, up to its bound");
    assert_eq!(f.actor.metrics.outbound_overflow.get(), 2);
    assert_eq!(written(&small).await, ["m0", "m1", "m2"]);
    assert_eq!(written(&q1).await, ["m0", "m1", "m2", "m3", "m4"]);
}

#[tokio::test]
async fn a_spaced_queue_gets_the_batch_frame_by_frame() {
    let mut f = Fixture::new();
    let q1 = f.peer(1, queue());
    let spaced = f.peer(2, queue().spaced());
    f.run(vec![many(&[1, 2], "a"), many(&[1, 2], "b")]);
    f.actor.flush(NOW);
    assert_eq!(q1.waiting(), (1, 2));
    assert_eq!(spaced.waiting(), (2, 2));
    assert_eq!(written(&spaced).await, ["a", "b"]);
}
