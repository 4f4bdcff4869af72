//! The engine actor: one task owns the [`Engine`], feeds it inputs and executes its
//! actions.
//!
//! Connection tasks and HTTP handlers talk to it over one bounded channel
//! ([`ActorHandle`]); store completions arrive on a second one. Actions are executed
//! right away (with durable channel streams, once the stream changes made before them
//! are written: see [`crate::streams`]): frames go to each connection's bounded [`Outbound`] queue (a full queue,
//! or more than `limits.maxBufferedBytes` queued, is reported as `Input::Backpressure`
//! so the engine's slow-consumer policy decides), pings and closes to the same
//! [`Outbound`] as controls, store calls to the store thread, guard calls to the
//! application's [`GuardCallback`] on a task of their own, command results to the
//! waiting HTTP request (matched by tag: the resource-write commands are answered only
//! once their store call completes).
//!
//! A turn's fan-out frames to the same recipients back to back are queued together, at
//! most 16 KiB, once another action needs their order kept or the turn ends (`batch`).
//!
//! Timers follow quinn's `drive_timer`: one reusable `Sleep`, reset only when
//! `poll_timeout()` changes, and the clock is checked before the sleep is polled.
//!
//! This module is the loop (messages in, inputs to the engine, the timer); executing
//! the engine's actions is `actions.rs`, host calls `calls.rs`, the test control
//! channel's requests `test_control.rs`. What others send the actor is in
//! [`crate::mailbox`].

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustc_hash::FxHashMap;

use engine::hostcall::GuardDecision;
use engine::{
    CommandError, ConnId, Engine, FetchResponse, HostResult, InFrame, Input, Millis, OpId,
};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

use crate::fetch::Fetcher;
use crate::guard::GuardCallback;
use crate::inbound::Inbound;
use crate::metrics::Metrics;
use crate::outbound::Outbound;
use crate::store::{Completion, StoreHandle};
use crate::test_session::ActorTest;

mod actions;
mod batch;
mod calls;
mod test_control;
#[cfg(test)]
mod tests;

use actions::log_close;

// The mailbox (what others send the actor) lives in [`crate::mailbox`] and the clock in
// [`crate::clock`]: leaves everything else can use without depending on the actor.
// Re-exported so their old paths keep working.
pub use crate::clock::wall_now;
pub use crate::mailbox::{ActorHandle, HttpAnswer, OpenOutcome, ToActor, ACTOR_QUEUE};

/// What the actor remembers about a connection: one entry of `peers` per connection,
/// so it stays small (the client id, user and route are the engine's; the debug logs
/// read them from it).
struct Peer {
    out: Arc<Outbound>,
    /// Until the engine accepts or rejects the upgrade.
    opening: Option<Box<Opening>>,
    accepted: bool,
}

/// An upgrade the engine has not decided yet.
struct Opening {
    /// Where the decision goes.
    reply: oneshot::Sender<OpenOutcome>,
    /// The request path (for the log of a rejection).
    path: String,
}

/// The actor.
pub struct Actor {
    engine: Engine,
    /// Keyed by the host's own sequential ids: a fast hash (looked up once per delivery).
    peers: FxHashMap<ConnId, Peer>,
    commands: HashMap<u64, oneshot::Sender<Result<Value, CommandError>>>,
    /// Long-polling requests the engine has not answered yet.
    http: HashMap<u64, oneshot::Sender<HttpAnswer>>,
    next_tag: u64,
    store: StoreHandle,
    metrics: Arc<Metrics>,
    guard: Option<GuardCallback>,
    /// Guard decisions come back here from their tasks.
    guard_tx: mpsc::UnboundedSender<(OpId, GuardDecision)>,
    guard_rx: Option<mpsc::UnboundedReceiver<(OpId, GuardDecision)>>,
    /// The test control channel, when enabled.
    test: Option<ActorTest>,
    /// Re-arm the timer on the next turn (the clock or the engine changed).
    rearm: bool,
    /// Key-source fetches (JWKS, OpenID discovery); answers come back on `fetch_rx`.
    fetcher: Option<Fetcher>,
    fetch_tx: mpsc::UnboundedSender<(OpId, FetchResponse)>,
    fetch_rx: Option<mpsc::UnboundedReceiver<(OpId, FetchResponse)>>,
    /// Application handlers and webhooks; answers come back on `handler_rx`.
    runner: Option<crate::handlers::Runner>,
    handler_rx: Option<mpsc::UnboundedReceiver<(OpId, engine::app::HandlerResponse)>>,
    /// Durable channel streams (SQLite store): actions wait for their stream writes.
    streams: Option<crate::streams::StreamGate>,
    streams_rx: Option<mpsc::UnboundedReceiver<crate::streams::WriteDone>>,
    /// Messages for the other nodes ([`crate::cluster`]), when in a cluster.
    cluster: Option<mpsc::UnboundedSender<engine::cluster::ClusterMessage>>,
    /// Connections with frames queued this turn, written at its end ([`Actor::flush`]).
    dirty: Vec<(ConnId, Arc<Outbound>)>,
    /// Frames sent this turn (one per recipient, counted as the engine's sends are
    /// executed); a turn ends early at [`TURN_FRAMES`].
    turn_frames: usize,
    /// Frames to the same recipients back to back, not yet queued ([`batch`]).
    batch: batch::SendBatch,
    /// Whether `SendMany` frames are collected in `batch` (not while the turn's end
    /// writes: what is sent then is queued at once).
    batching: bool,
    /// Threads that share the writes of a large turn ([`crate::writers`]).
    writers: Option<crate::writers::Writers>,
}

/// Frames a turn may queue before it stops taking more messages and writes them out.
///
/// Without it, a burst of publishes to many subscribers (the messages already queued
/// from a publisher's socket) would have every frame of the burst made before the first
/// byte is written: all of them held in memory, and the clients idle meanwhile. 32 768
/// frames is ~33 per socket to 1 000 subscribers, enough for each write to stay batched
/// (BENCHMARKS.md, "Issues 18 and 22: a burst written out every 32 768 frames").
pub const TURN_FRAMES: usize = 32_768;

/// Messages a turn takes after its first before it looks at timers and writes again.
pub const TURN_MESSAGES: usize = 256;

/// How long a guard callback may run past the engine's deadline before its task is
/// aborted (the engine has answered `TIMEOUT` by then; the decision would be dropped).
pub const GUARD_GRACE: Duration = Duration::from_secs(1);

impl Actor {
    /// Create the actor's channel. Returns the handle and the receiver [`Actor::run`] needs.
    pub fn channel() -> (ActorHandle, mpsc::Receiver<ToActor>) {
        crate::mailbox::channel()
    }

    /// An actor around `engine`.
    pub fn new(engine: Engine, store: StoreHandle, metrics: Arc<Metrics>) -> Self {
        let (guard_tx, guard_rx) = mpsc::unbounded_channel();
        let (fetch_tx, fetch_rx) = mpsc::unbounded_channel();
        let fetcher = Fetcher::new()
            .map_err(|e| tracing::error!(error = %e, "key sources cannot be fetched"))
            .ok();
        Self {
            fetcher,
            fetch_tx,
            fetch_rx: Some(fetch_rx),
            engine,
            peers: FxHashMap::default(),
            commands: HashMap::new(),
            http: HashMap::new(),
            next_tag: 0,
            store,
            metrics,
            guard: None,
            guard_tx,
            guard_rx: Some(guard_rx),
            test: None,
            rearm: false,
            runner: None,
            handler_rx: None,
            streams: None,
            streams_rx: None,
            cluster: None,
            dirty: Vec::new(),
            turn_frames: 0,
            batch: batch::SendBatch::default(),
            batching: true,
            writers: None,
        }
    }

    /// Keep channel streams durable through `writer` (see [`crate::streams`]): the
    /// engine records its stream changes and the actor holds every action behind the
    /// write of the changes made before it. Batch outcomes arrive on `done`.
    pub fn with_stream_writer(
        mut self,
        writer: crate::streams::StreamWriter,
        done: mpsc::UnboundedReceiver<crate::streams::WriteDone>,
    ) -> Self {
        self.engine.set_persistent_streams(true);
        self.streams = Some(crate::streams::StreamGate::new(writer));
        self.streams_rx = Some(done);
        self
    }

    /// Run application handler calls with `handlers` (closures registered in code)
    /// or the config's webhooks; `server` is the command handle handlers get.
    pub fn with_handlers(
        mut self,
        handlers: crate::handlers::Handlers,
        server: crate::handlers::ServerHandle,
    ) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let webhooks = crate::handlers::Webhooks::new()
            .map_err(|e| tracing::error!(error = %e, "webhooks cannot be called"))
            .ok();
        self.runner = Some(crate::handlers::Runner {
            handlers,
            webhooks,
            server,
            tx,
        });
        self.handler_rx = Some(rx);
        self
    }

    /// Join a cluster as `node`: the engine's cluster messages go to `outbox`
    /// ([`crate::cluster`]); `max_connections` is the configured `limits.maxConnections`,
    /// counted across the nodes (this node's own limit may be lower: its file
    /// descriptors).
    pub fn with_cluster(
        mut self,
        node: &str,
        outbox: mpsc::UnboundedSender<engine::cluster::ClusterMessage>,
        max_connections: usize,
    ) -> Self {
        self.engine.enable_cluster(node);
        self.engine.set_cluster_max_connections(max_connections);
        self.cluster = Some(outbox);
        self
    }

    /// Share the writes of large turns with `writers` (see [`crate::writers`]).
    pub fn with_writers(mut self, writers: crate::writers::Writers) -> Self {
        self.writers = (!writers.is_empty()).then_some(writers);
        self
    }

    /// Serve the test control channel (see [`crate::testctl`]).
    pub fn with_test_control(mut self, test: Option<ActorTest>) -> Self {
        self.test = test;
        self
    }

    /// The host clock: the wall clock, or the test control channel's.
    fn now(&self) -> Millis {
        self.test.as_ref().map_or_else(wall_now, |t| t.clock.now())
    }

    /// Answer host guard calls with `guard` (without one, the engine denies them).
    pub fn with_guard(mut self, guard: Option<GuardCallback>) -> Self {
        self.guard = guard;
        self
    }

    /// What this host answers: guard calls with a callback (or held for the test
    /// control channel), handler calls with handlers (or held likewise); the engine
    /// answers the rest itself.
    fn host_capabilities(&self) -> engine::HostCapabilities {
        let test = self.test.as_ref();
        engine::HostCapabilities {
            guard: self.guard.is_some() || test.is_some_and(|t| t.hold.guard),
            handlers: self.runner.is_some() || test.is_some(),
        }
    }

    /// Run until [`ToActor::Stop`] or until every handle is dropped.
    pub async fn run(
        mut self,
        mut rx: mpsc::Receiver<ToActor>,
        mut completions: mpsc::Receiver<Completion>,
    ) {
        self.engine.set_host_capabilities(self.host_capabilities());
        let sleep = tokio::time::sleep(Duration::from_secs(86_400));
        tokio::pin!(sleep);
        let mut armed: Option<Millis> = None;
        let mut store_open = true;
        let mut guard_rx = self.guard_rx.take();
        let mut fetch_rx = self.fetch_rx.take();
        let mut handler_rx = self.handler_rx.take();
        let mut streams_rx = self.streams_rx.take();
        loop {
            // drive_timer: check the clock first, then (re)arm only on a new deadline.
            let mut next = self.engine.poll_timeout();
            if let Some(deadline) = next {
                let now = self.now();
                if deadline <= now {
                    self.input(now, Input::Timeout);
                    next = self.engine.poll_timeout();
                }
            }
            // End of the turn: write what it queued (one write per touched connection).
            // A drained report is an engine input: read the deadline again after it.
            //
            // Outside tokio's cooperative budget: every socket write counts against it (128
            // per task poll), and a turn that touched more connections than that would
            // find the rest "not ready", mark them blocked and wake each of their tasks to
            // write instead (a fan-out to 1000 connections: ~870 task wake-ups per turn,
            // BENCHMARKS.md "Fan-out writes and tokio's budget"). The writes never wait:
            // a full socket is still left to its connection task.
            let now = self.now();
            let fed = tokio::task::coop::unconstrained(async { self.flush(now) }).await;
            if fed {
                next = self.engine.poll_timeout();
            }
            if next != armed || std::mem::take(&mut self.rearm) {
                armed = next;
                if let Some(deadline) = next {
                    let wait = deadline.since(self.now());
                    sleep
                        .as_mut()
                        .reset(tokio::time::Instant::now() + Duration::from_millis(wait));
                }
            }
            tokio::select! {
                biased;
                // First: a finished stream write releases the frames held behind it, and
                // a flood of inbound messages must not keep them waiting.
                Some(done) = recv_any(&mut streams_rx) => {
                    self.stream_written(self.now(), done);
                }
                msg = rx.recv() => {
                    let Some(msg) = msg else { break };
                    if !self.message(msg, &mut completions) {
                        break;
                    }
                    // Drain what is already queued before looking at timers again, up to
                    // TURN_FRAMES frames queued for writing.
                    for _ in 0..TURN_MESSAGES {
                        if self.turn_frames >= TURN_FRAMES {
                            // Counted only when it leaves messages for the next turn
                            // (not for one message that alone queued that many frames).
                            if !rx.is_empty() {
                                self.metrics.turns_split.inc();
                            }
                            break;
                        }
                        match rx.try_recv() {
                            Ok(msg) => {
                                if !self.message(msg, &mut completions) {
                                    return;
                                }
                            }
                            Err(_) => break,
                        }
                    }
                }
                Some((op, response)) = recv_any(&mut fetch_rx) => {
                    self.input(self.now(), Input::Completed { op, result: HostResult::Fetch(response) });
                }
                Some((op, response)) = recv_any(&mut handler_rx) => {
                    self.input(self.now(), Input::Completed { op, result: HostResult::Handler(Box::new(response)) });
                }
                Some((op, decision)) = recv_any(&mut guard_rx) => {
                    self.input(self.now(), Input::Completed { op, result: HostResult::Guard(decision) });
                }
                done = completions.recv(), if store_open => match done {
                    Some(c) => self.input(self.now(), Input::Completed {
                        op: c.op,
                        result: HostResult::Store(c.outcome),
                    }),
                    // The store thread ended; calls now fail fast in `execute`.
                    None => store_open = false,
                },
                () = &mut sleep, if armed.is_some() => {
                    // Force a re-arm on the next turn even if the deadline is unchanged.
                    armed = None;
                    self.input(self.now(), Input::Timeout);
                }
            }
        }
    }

    /// Handle one message; false to stop.
    fn message(&mut self, msg: ToActor, completions: &mut mpsc::Receiver<Completion>) -> bool {
        let now = self.now();
        match msg {
            ToActor::Open {
                conn,
                mut request,
                out,
                reply,
            } => {
                if self.test.is_some() {
                    ActorTest::client_id(&mut request);
                }
                self.peers.insert(
                    conn,
                    Peer {
                        out,
                        opening: Some(Box::new(Opening {
                            reply,
                            path: request.path.clone(),
                        })),
                        accepted: false,
                    },
                );
                self.input(now, Input::Open { conn, request });
            }
            ToActor::Frame { conn, message } => {
                if !self.peers.contains_key(&conn) {
                    return true;
                }
                let frame = match &message {
                    Inbound::Text(t) => InFrame::Text(t.as_str()),
                    Inbound::Binary(b) => InFrame::Binary(b),
                };
                self.input(now, Input::Frame { conn, frame });
            }
            ToActor::Oversize { conn, size, reply } => {
                let frame = if self.peers.contains_key(&conn) {
                    self.engine.oversize_frame(conn, size)
                } else {
                    None
                };
                let _ = reply.send(frame);
            }
            ToActor::Pong { conn } => {
                if self.peers.contains_key(&conn) {
                    self.input(now, Input::Pong { conn });
                }
            }
            ToActor::Drained { conn, buffered } => {
                let current = self
                    .peers
                    .get(&conn)
                    .is_some_and(|p| p.out.drained_still_current());
                if current {
                    self.input(now, Input::Backpressure { conn, buffered });
                }
            }
            ToActor::Closed { conn, code } => {
                if let Some(peer) = self.peers.remove(&conn) {
                    if peer.accepted {
                        log_close(&self.engine, conn, code, "client");
                    }
                    self.input(now, Input::Closed { conn, code });
                }
            }
            ToActor::Command { command, reply } => {
                let tag = self.next_tag;
                self.next_tag += 1;
                self.commands.insert(tag, reply);
                self.input(now, Input::Command { tag, command });
            }
            ToActor::SyncMetrics { reply } => {
                self.metrics.sync(self.engine.metrics());
                let _ = reply.send(());
            }
            ToActor::Test { msg, reply } => {
                let answer = self.test_message(now, msg, completions);
                let _ = reply.send(answer);
            }
            ToActor::Cluster { event } => self.input(now, Input::Cluster { event }),
            ToActor::Http {
                req,
                method,
                request,
                body,
                reply,
            } => {
                self.http.insert(req, reply);
                let input = Input::Http {
                    req,
                    method,
                    request,
                    body: &body,
                };
                self.input(now, input);
            }
            ToActor::HttpAborted { req } => {
                if self.http.remove(&req).is_some() {
                    self.input(now, Input::HttpAborted { req });
                }
            }
            // Nothing more is written: what this turn queued (its batch too) is left,
            // as the shutdown closed every connection before stopping the actor.
            ToActor::Stop => return false,
        }
        true
    }

    /// Feed one input and execute every action it produced.
    fn input(&mut self, now: Millis, input: Input<'_>) {
        let started = Instant::now();
        if let Err(e) = self.engine.handle(now, input) {
            // A host bug; the engine ignored the input.
            tracing::error!(error = %e, "engine refused an input");
        }
        self.pump(now);
        self.metrics
            .handle_latency
            .observe(started.elapsed().as_secs_f64());
    }

    /// Execute the engine's queued actions; with durable streams, an action waits until
    /// the stream changes made before it are written (see [`crate::streams`]).
    fn pump(&mut self, now: Millis) {
        loop {
            if let Some(gate) = self.streams.as_mut() {
                let ops = self.engine.take_stream_ops();
                if !ops.is_empty() {
                    gate.stage(ops);
                }
            }
            let Some(action) = self.engine.poll_action() else {
                break;
            };
            let admitted = match self.streams.as_mut() {
                Some(gate) => gate.admit(action),
                None => Some(action),
            };
            if let Some(action) = admitted {
                self.execute(now, action);
            }
        }
        let released = self.streams.as_mut().map(|g| g.flush()).unwrap_or_default();
        if !released.is_empty() {
            for action in released {
                self.execute(now, action);
            }
            self.pump(now);
        }
    }

    /// A stream batch was written (or failed): run the actions that waited for it.
    fn stream_written(&mut self, now: Millis, done: crate::streams::WriteDone) {
        if let Err(e) = done {
            self.metrics.stream_write_failures.inc();
            tracing::error!(error = %e, "channel history could not be saved; delivering anyway (a restart will report these offsets as unrecoverable)");
        }
        let ready = self
            .streams
            .as_mut()
            .map(|g| g.written())
            .unwrap_or_default();
        for action in ready {
            self.execute(now, action);
        }
        self.pump(now);
    }
}

/// The next message of an optional channel (never resolves without a receiver).
async fn recv_any<T>(rx: &mut Option<mpsc::UnboundedReceiver<T>>) -> Option<T> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}
