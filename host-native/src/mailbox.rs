//! The actor's mailbox: the messages connection tasks, HTTP handlers and the cluster
//! link send the engine actor ([`ToActor`], answered on oneshot channels with
//! [`OpenOutcome`], [`HttpAnswer`], ...), and the cloneable [`ActorHandle`] they send
//! them with.
//!
//! A leaf of plain types: everything that talks to the actor depends on this module,
//! not on [`crate::actor`] (which depends on the handlers, the store and the test
//! control session), so the actor can use them without an import cycle.

use std::sync::Arc;

use engine::{Command, CommandError, ConnId, UpgradeRequest};
use futures_util::future::{BoxFuture, Either};
use serde_json::Value;
use std::future::{ready, Ready};
use tokio::sync::{mpsc, oneshot};

use crate::inbound::Inbound;
use crate::outbound::Outbound;
use crate::test_session::TestMsg;

/// How the engine answered an upgrade.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenOutcome {
    /// Complete the handshake (with this subprotocol).
    Accept {
        /// `Sec-WebSocket-Protocol` to answer with.
        protocol: Option<String>,
    },
    /// Refuse with this status and JSON body.
    Reject {
        /// HTTP status.
        status: u16,
        /// JSON body.
        body: String,
    },
}

/// What connection tasks and HTTP handlers send to the actor.
#[derive(Debug)]
pub enum ToActor {
    /// An upgrade request.
    Open {
        /// Connection id.
        conn: ConnId,
        /// The request.
        request: UpgradeRequest,
        /// Where its frames go.
        out: Arc<Outbound>,
        /// The engine's decision.
        reply: oneshot::Sender<OpenOutcome>,
    },
    /// A data frame.
    Frame {
        /// Connection.
        conn: ConnId,
        /// A text or binary message.
        message: Inbound,
    },
    /// The transport refused an oversize frame; the engine's error frame comes back.
    Oversize {
        /// Connection.
        conn: ConnId,
        /// The refused frame's size, if known.
        size: Option<usize>,
        /// Where the error frame goes.
        reply: oneshot::Sender<Option<engine::Frame>>,
    },
    /// A pong.
    Pong {
        /// Connection.
        conn: ConnId,
    },
    /// The writer drained its queue back under the limit.
    Drained {
        /// Connection.
        conn: ConnId,
        /// Bytes still queued.
        buffered: u64,
    },
    /// The socket ended.
    Closed {
        /// Connection.
        conn: ConnId,
        /// Close code received, if any.
        code: Option<u16>,
    },
    /// A server-API command.
    Command {
        /// The command.
        command: Command,
        /// Its result.
        reply: oneshot::Sender<Result<Value, CommandError>>,
    },
    /// Mirror the engine counters into the Prometheus series (for a scrape).
    SyncMetrics {
        /// Answered once synced.
        reply: oneshot::Sender<()>,
    },
    /// A test control request (only with `SWITCHBOARD_TEST_CONTROL=1`; see
    /// [`crate::testctl`]).
    Test {
        /// What to do.
        msg: TestMsg,
        /// The answer, or an HTTP status and message.
        reply: oneshot::Sender<Result<Value, (u16, String)>>,
    },
    /// News from the cluster link ([`crate::cluster`]).
    Cluster {
        /// What happened.
        event: engine::cluster::ClusterEvent,
    },
    /// A long-polling request on an Engine.IO route (see [`crate::polling`]).
    Http {
        /// The host's id for the request.
        req: u64,
        /// HTTP method.
        method: String,
        /// Path, query, headers, peer, client id.
        request: UpgradeRequest,
        /// Body (at most `maxPayloadSize + 1` bytes).
        body: bytes::Bytes,
        /// The engine's answer, now or when it releases a held request.
        reply: oneshot::Sender<HttpAnswer>,
    },
    /// A long-polling request went away before its answer.
    HttpAborted {
        /// The host's id for the request.
        req: u64,
    },
    /// Stop the actor.
    Stop,
}

/// The engine's answer to a long-polling request ([`engine::Action::Respond`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpAnswer {
    /// HTTP status.
    pub status: u16,
    /// Header name/value pairs.
    pub headers: Vec<(String, String)>,
    /// Body text.
    pub body: String,
}

/// Cloneable sender to the actor.
#[derive(Debug, Clone)]
pub struct ActorHandle {
    tx: mpsc::Sender<ToActor>,
}

/// What [`ActorHandle::send`] returns.
pub type SendFuture<'a> = Either<Ready<Result<(), ()>>, BoxFuture<'a, Result<(), ()>>>;

/// A handle held by what the actor owns (its write threads, [`crate::writers`]): it
/// does not count among the handles whose drop stops the actor.
#[derive(Debug, Clone)]
pub struct WeakActorHandle {
    tx: mpsc::WeakSender<ToActor>,
}

impl WeakActorHandle {
    /// Send from a thread outside the runtime, blocking while the queue is full; false
    /// when the actor has stopped.
    pub fn blocking_send(&self, msg: ToActor) -> bool {
        self.tx
            .upgrade()
            .is_some_and(|tx| tx.blocking_send(msg).is_ok())
    }
}

impl ActorHandle {
    /// Send a message: queued at once when the actor's queue has room (almost always);
    /// otherwise the returned future waits for room. Resolves to `Err` when the actor
    /// has stopped.
    ///
    /// Every connection task keeps a pending send in its state, so the future is kept
    /// small: 24 bytes, against ~750 for tokio's send future with the message inside,
    /// which would be part of every connection's task (BENCHMARKS.md, "Idle memory:
    /// the connection task"). Only a full queue allocates the waiting send.
    pub fn send(&self, msg: ToActor) -> SendFuture<'_> {
        match self.tx.try_send(msg) {
            Ok(()) => Either::Left(ready(Ok(()))),
            Err(mpsc::error::TrySendError::Closed(_)) => Either::Left(ready(Err(()))),
            Err(mpsc::error::TrySendError::Full(msg)) => {
                Either::Right(Box::pin(
                    async move { self.tx.send(msg).await.map_err(|_| ()) },
                ))
            }
        }
    }

    /// A handle that does not keep the actor running (for the actor's own helpers).
    pub fn downgrade(&self) -> WeakActorHandle {
        WeakActorHandle {
            tx: self.tx.downgrade(),
        }
    }

    /// Send without waiting (from `Drop`); false when the queue is full or closed.
    pub fn try_send(&self, msg: ToActor) -> bool {
        self.tx.try_send(msg).is_ok()
    }

    /// Run a command and wait for its result.
    pub async fn command(&self, command: Command) -> Option<Result<Value, CommandError>> {
        let (reply, rx) = oneshot::channel();
        self.send(ToActor::Command { command, reply }).await.ok()?;
        rx.await.ok()
    }

    /// Bring the Prometheus series up to date.
    pub async fn sync_metrics(&self) {
        let (reply, rx) = oneshot::channel();
        if self.send(ToActor::SyncMetrics { reply }).await.is_ok() {
            let _ = rx.await;
        }
    }
}

/// Inbound channel capacity of the actor.
pub const ACTOR_QUEUE: usize = 4096;

/// Create the actor's channel ([`ACTOR_QUEUE`] messages): the handle senders clone and
/// the receiver [`crate::actor::Actor::run`] reads.
pub fn channel() -> (ActorHandle, mpsc::Receiver<ToActor>) {
    let (tx, rx) = mpsc::channel(ACTOR_QUEUE);
    (ActorHandle { tx }, rx)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pong(n: u64) -> ToActor {
        ToActor::Pong { conn: ConnId(n) }
    }

    #[test]
    fn a_pending_send_is_small_enough_to_sit_in_every_connection_task() {
        let (handle, _rx) = channel();
        let sending = handle.send(pong(1));
        // tokio's own send future with the message inside is ~750 bytes.
        assert!(std::mem::size_of_val(&sending) <= 32);
    }

    #[tokio::test]
    async fn a_send_to_a_full_queue_waits_for_room_and_keeps_the_order() {
        let (handle, mut rx) = channel();
        for n in 0..ACTOR_QUEUE as u64 {
            assert!(handle.try_send(pong(n)));
        }
        assert!(!handle.try_send(pong(u64::MAX)));
        let late = handle.clone();
        let waiting = tokio::spawn(async move { late.send(pong(ACTOR_QUEUE as u64)).await });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        let mut seen = Vec::new();
        while seen.len() <= ACTOR_QUEUE {
            match rx.recv().await {
                Some(ToActor::Pong { conn }) => seen.push(conn.0),
                _ => panic!("unexpected message"),
            }
        }
        assert_eq!(waiting.await.unwrap(), Ok(()));
        assert!(seen.iter().copied().eq(0..=ACTOR_QUEUE as u64));
    }

    #[tokio::test]
    async fn a_send_to_a_stopped_actor_fails_at_once_or_while_waiting() {
        let (handle, rx) = channel();
        drop(rx);
        assert_eq!(handle.send(pong(1)).await, Err(()));

        let (handle, rx) = channel();
        for n in 0..ACTOR_QUEUE as u64 {
            assert!(handle.try_send(pong(n)));
        }
        let late = handle.clone();
        let waiting = tokio::spawn(async move { late.send(pong(0)).await });
        tokio::task::yield_now().await;
        drop(rx);
        assert_eq!(waiting.await.unwrap(), Err(()));
    }
}
