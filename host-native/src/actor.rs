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
//! Timers follow quinn's `drive_timer`: one reusable `Sleep`, reset only when
//! `poll_timeout()` changes, and the clock is checked before the sleep is polled.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use engine::hostcall::GuardDecision;
use engine::{
    Action, Command, CommandError, ConnId, Engine, FetchRequest, FetchResponse, HostRequest,
    HostResult, InFrame, Input, Millis, OpId, UpgradeRequest,
};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

use crate::fetch::Fetcher;
use crate::guard::{GuardCallback, GuardRequest};
use crate::metrics::Metrics;
use crate::outbound::{Outbound, PushError};
use crate::store::{Completion, Job, Reply, StoreHandle};

/// The wall clock as the engine wants it: Unix epoch milliseconds.
pub fn wall_now() -> Millis {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    Millis(u64::try_from(ms).unwrap_or(u64::MAX))
}

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
        message: crate::transport::Inbound,
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
        msg: crate::testctl::TestMsg,
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

impl ActorHandle {
    /// Send a message (waits for room; fails when the actor has stopped).
    pub async fn send(&self, msg: ToActor) -> Result<(), ()> {
        self.tx.send(msg).await.map_err(|_| ())
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

/// What the actor remembers about a connection.
struct Peer {
    out: Arc<Outbound>,
    route: String,
    client_id: String,
    user: Option<String>,
    open_reply: Option<oneshot::Sender<OpenOutcome>>,
    accepted: bool,
}

/// The actor.
pub struct Actor {
    engine: Engine,
    peers: HashMap<ConnId, Peer>,
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
    test: Option<crate::testctl::ActorTest>,
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
}

/// Inbound channel capacity of the actor.
pub const ACTOR_QUEUE: usize = 4096;

/// How long a guard callback may run past the engine's deadline before its task is
/// aborted (the engine has answered `TIMEOUT` by then; the decision would be dropped).
pub const GUARD_GRACE: Duration = Duration::from_secs(1);

impl Actor {
    /// Create the actor's channel. Returns the handle and the receiver [`Actor::run`] needs.
    pub fn channel() -> (ActorHandle, mpsc::Receiver<ToActor>) {
        let (tx, rx) = mpsc::channel(ACTOR_QUEUE);
        (ActorHandle { tx }, rx)
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
            peers: HashMap::new(),
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

    /// Serve the test control channel (see [`crate::testctl`]).
    pub fn with_test_control(mut self, test: Option<crate::testctl::ActorTest>) -> Self {
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
            if self.flush(self.now()) {
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
                    // Drain what is already queued before looking at timers again.
                    for _ in 0..256 {
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
                    crate::testctl::ActorTest::client_id(&mut request);
                }
                self.peers.insert(
                    conn,
                    Peer {
                        out,
                        route: request.path.clone(),
                        client_id: request.client_id.clone(),
                        user: None,
                        open_reply: Some(reply),
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
                    crate::transport::Inbound::Text(t) => InFrame::Text(t.as_str()),
                    crate::transport::Inbound::Binary(b) => InFrame::Binary(b),
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
                if self.peers.contains_key(&conn) {
                    self.input(now, Input::Backpressure { conn, buffered });
                }
            }
            ToActor::Closed { conn, code } => {
                if let Some(peer) = self.peers.remove(&conn) {
                    if peer.accepted {
                        log_close(&peer, code, "client");
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

    fn execute(&mut self, now: Millis, action: Action) {
        match action {
            Action::Accept { conn, protocol } => {
                let snapshot = self.engine.snapshot(conn);
                if let Some(peer) = self.peers.get_mut(&conn) {
                    peer.accepted = true;
                    if let Some(s) = snapshot {
                        peer.client_id = s.client_id;
                        peer.user = s.user.map(|u| u.id);
                    }
                    // Debug, not info: a connection flood must not flood the log
                    // (counts are in /metrics).
                    tracing::debug!(
                        client = %peer.client_id,
                        route = %peer.route,
                        user = peer.user.as_deref().unwrap_or("-"),
                        "connection opened"
                    );
                    if let Some(reply) = peer.open_reply.take() {
                        if reply.send(OpenOutcome::Accept { protocol }).is_err() {
                            // The HTTP request went away before the answer.
                            self.peers.remove(&conn);
                            self.feed_closed(now, conn, None);
                        }
                    }
                }
            }
            Action::Reject { conn, status, body } => {
                if let Some(mut peer) = self.peers.remove(&conn) {
                    tracing::debug!(route = %peer.route, status, "upgrade rejected");
                    if let Some(reply) = peer.open_reply.take() {
                        let _ = reply.send(OpenOutcome::Reject { status, body });
                    }
                }
            }
            Action::Send { conn, frame } => {
                let bytes = crate::transport::codec::encode_frame(&frame);
                self.deliver(now, conn, bytes);
            }
            Action::SendMany { conns, frame } => {
                // Framed once: every recipient's queue shares these bytes.
                let bytes = crate::transport::codec::encode_frame(&frame);
                for conn in conns {
                    self.deliver(now, conn, bytes.clone());
                }
            }
            Action::Ping { conn } => {
                if let Some(peer) = self.peers.get(&conn) {
                    if peer.out.push_control(crate::transport::codec::ping()) {
                        self.dirty.push((conn, peer.out.clone()));
                    }
                }
            }
            Action::Close { conn, code, reason } => {
                if let Some(peer) = self.peers.remove(&conn) {
                    log_close(&peer, Some(code), "server");
                    peer.out.close(code, &reason);
                    self.feed_closed(now, conn, Some(code));
                }
            }
            Action::Call { .. } if self.test.as_ref().is_some_and(|t| t.hold_call(&action)) => {}
            Action::Call {
                op,
                conn,
                request,
                deadline,
            } => match request {
                HostRequest::Store(request) => {
                    if !self.store.submit(Job {
                        request,
                        reply: Reply::Engine(op),
                        lane: crate::store::lane_of(conn),
                    }) {
                        self.engine_completed_unavailable(now, op);
                    }
                }
                HostRequest::Guard {
                    resource,
                    action,
                    context,
                } => match &self.guard {
                    Some(guard) => {
                        let req = GuardRequest::from_call(resource, action, *context);
                        let budget = Duration::from_millis(deadline.since(now)) + GUARD_GRACE;
                        spawn_guard(guard.clone(), req, op, budget, self.guard_tx.clone());
                    }
                    None => {
                        // Not reached: without a callback the engine denies host guard
                        // calls itself (`host_capabilities`). Fail closed all the same.
                        let decision = GuardDecision::Deny {
                            message: Some(engine::hostcall::NO_HOST_GUARD.into()),
                        };
                        self.complete_now(now, op, HostResult::Guard(decision));
                    }
                },
                HostRequest::Message(_) | HostRequest::Hook(_) | HostRequest::Intercept(_) => {
                    let client_id = match &request {
                        HostRequest::Message(c) => c.client.client_id.clone(),
                        HostRequest::Hook(c) => c.client.client_id.clone(),
                        HostRequest::Intercept(c) => c.client.client_id.clone(),
                        _ => String::new(),
                    };
                    match &self.runner {
                        Some(runner) => {
                            let budget = Duration::from_millis(deadline.since(now).max(1));
                            // A handler that answers without waiting completes here, in order.
                            if let Some(r) =
                                runner.spawn(self.engine.config(), op, client_id, request, budget)
                            {
                                self.complete_now(now, op, HostResult::Handler(Box::new(r)));
                            }
                        }
                        None => {
                            // Not reached: without handlers the engine fails these calls
                            // itself (`host_capabilities`).
                            let r =
                                engine::app::HandlerResponse::failed(engine::hostcall::NO_HANDLERS);
                            self.complete_now(now, op, HostResult::Handler(Box::new(r)));
                        }
                    }
                }
                HostRequest::Fetch(FetchRequest { url }) => match &self.fetcher {
                    Some(fetcher) => {
                        let (fetcher, tx) = (fetcher.clone(), self.fetch_tx.clone());
                        let budget = Duration::from_millis(deadline.since(now).max(1));
                        tokio::spawn(async move {
                            let response = fetcher.get(&url, budget).await;
                            if let Some(e) = &response.error {
                                tracing::debug!(%url, error = %e, "key source fetch failed");
                            }
                            let _ = tx.send((op, response));
                        });
                    }
                    None => {
                        let response = FetchResponse {
                            error: Some("this server has no HTTP client".into()),
                            ..FetchResponse::default()
                        };
                        self.complete_now(now, op, HostResult::Fetch(response));
                    }
                },
            },
            Action::Respond {
                req,
                status,
                headers,
                body,
            } => {
                if let Some(reply) = self.http.remove(&req) {
                    let _ = reply.send(HttpAnswer {
                        status,
                        headers,
                        body,
                    });
                }
            }
            Action::CommandResult { tag, result } => {
                if let Some(reply) = self.commands.remove(&tag) {
                    let _ = reply.send(result);
                }
            }
            Action::Cluster { message } => match &self.cluster {
                // The link reports an outage to the engine, which then stops sending.
                Some(tx) => {
                    let _ = tx.send(message);
                }
                None => tracing::error!("the engine sent a cluster message without a cluster"),
            },
        }
    }

    /// A test control request (see [`crate::testctl`]).
    fn test_message(
        &mut self,
        now: Millis,
        msg: crate::testctl::TestMsg,
        completions: &mut mpsc::Receiver<Completion>,
    ) -> Result<Value, (u16, String)> {
        use crate::testctl::{Injected, TestClock, TestMsg};
        let Some(test) = self.test.as_mut() else {
            return Err((403, "the test control channel is off".into()));
        };
        self.rearm = true;
        match msg {
            TestMsg::Reset(reset) => {
                let engine = Engine::with_seed(test.config.clone(), reset.seed)
                    .map_err(|e| (500, format!("cannot rebuild the engine: {e}")))?;
                test.hold = reset.hold;
                test.clock = reset.clock.map_or_else(TestClock::wall, TestClock::set);
                // Completions of the old engine's store calls (the store was swapped
                // after them) must not reach the new engine, whose op ids restart.
                while completions.try_recv().is_ok() {}
                for (_, peer) in self.peers.drain() {
                    peer.out.close(1001, "test reset");
                }
                self.commands.clear();
                self.engine = engine;
                self.engine.set_host_capabilities(self.host_capabilities());
                if let Some(gate) = self.streams.as_mut() {
                    gate.clear();
                    self.engine.set_persistent_streams(true);
                }
                Ok(serde_json::json!({"reset": true}))
            }
            TestMsg::Clock(set) => {
                test.clock = TestClock::set(set);
                Ok(serde_json::json!({"now": set.at}))
            }
            TestMsg::Complete(op, result) => {
                self.input(
                    now,
                    Input::Completed {
                        op: OpId(op),
                        result,
                    },
                );
                Ok(serde_json::json!({"completed": op}))
            }
            TestMsg::Inject(client_id, input) => {
                let conn = match &client_id {
                    None => ConnId(u64::MAX),
                    Some(id) => self
                        .peers
                        .iter()
                        .find(|(_, p)| p.accepted && p.client_id == *id)
                        .map(|(c, _)| *c)
                        .ok_or_else(|| {
                            (404, format!("no open connection with client id `{id}`"))
                        })?,
                };
                let input = match &input {
                    Injected::Backpressure { buffered } => Input::Backpressure {
                        conn,
                        buffered: *buffered,
                    },
                    Injected::Pong => Input::Pong { conn },
                    Injected::Closed { code } => Input::Closed { conn, code: *code },
                    Injected::Text { text } => Input::Frame {
                        conn,
                        frame: InFrame::Text(text),
                    },
                };
                self.input(now, input);
                Ok(serde_json::json!({"conn": client_id.map(|_| conn.0)}))
            }
        }
    }

    /// The store thread is gone: answer the call right away so the client is not left waiting.
    fn engine_completed_unavailable(&mut self, now: Millis, op: engine::OpId) {
        let outcome =
            engine::store::failed(engine::StoreErrorKind::Unavailable, "the store has stopped");
        self.complete_now(now, op, HostResult::Store(outcome));
    }

    /// Answer a call without doing I/O.
    fn complete_now(&mut self, now: Millis, op: engine::OpId, result: HostResult) {
        if let Err(e) = self.engine.handle(now, Input::Completed { op, result }) {
            tracing::error!(error = %e, "engine refused a completion");
        }
    }

    /// `Closed` after executing a `Close` (the socket task's own report is then ignored).
    fn feed_closed(&mut self, now: Millis, conn: ConnId, code: Option<u16>) {
        if let Err(e) = self.engine.handle(now, Input::Closed { conn, code }) {
            tracing::error!(error = %e, "engine refused Closed");
        }
    }

    /// Write every connection queued to this turn (one vectored write each); tell the
    /// engine about connections that drained back under their limit.
    /// Returns whether the engine was given an input.
    fn flush(&mut self, now: Millis) -> bool {
        let mut fed = false;
        // Bounded: a drained report can make the engine queue more frames.
        for _ in 0..8 {
            if self.dirty.is_empty() {
                break;
            }
            for (conn, out) in std::mem::take(&mut self.dirty) {
                if let Some(buffered) = out.flush_now() {
                    if self.peers.contains_key(&conn) {
                        self.input(now, Input::Backpressure { conn, buffered });
                        fed = true;
                    }
                }
            }
        }
        fed
    }

    /// Queue a frame for one connection; tell the engine when the queue is over its limit.
    fn deliver(&mut self, now: Millis, conn: ConnId, frame: bytes::Bytes) {
        let Some(peer) = self.peers.get(&conn) else {
            return;
        };
        let out = &peer.out;
        let report = match out.push(frame) {
            Ok((queued, schedule)) => {
                if schedule {
                    self.dirty.push((conn, out.clone()));
                }
                (out.pressure.crossing(false, queued) == Some(true)
                    && !out.reported_over.swap(true, Ordering::AcqRel))
                .then_some(queued)
            }
            Err(PushError::Full) => {
                // A full queue counts as over the byte limit: the engine's policy decides.
                self.metrics.outbound_overflow.inc();
                out.reported_over.store(true, Ordering::Release);
                let queued = out.queued.load(Ordering::Acquire);
                Some(queued.max(out.pressure.over.saturating_add(1)))
            }
            // The connection task is gone; its Closed report is on the way.
            Err(PushError::Gone) => None,
        };
        if let Some(buffered) = report {
            if let Err(e) = self
                .engine
                .handle(now, Input::Backpressure { conn, buffered })
            {
                tracing::error!(error = %e, "engine refused Backpressure");
            }
        }
    }
}

/// The next message of an optional channel (never resolves without a receiver).
async fn recv_any<T>(rx: &mut Option<mpsc::UnboundedReceiver<T>>) -> Option<T> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// Run a guard callback on its own task and send its decision to the actor. A panic
/// counts as a denial; a callback still running `budget` after the call was made is
/// aborted (the engine has given up on it already).
fn spawn_guard(
    guard: GuardCallback,
    req: GuardRequest,
    op: OpId,
    budget: Duration,
    tx: mpsc::UnboundedSender<(OpId, GuardDecision)>,
) {
    let (resource, action) = (req.resource.clone(), req.action);
    tokio::spawn(async move {
        let mut task = tokio::spawn(async move { guard.call(req).await });
        let decision = match tokio::time::timeout(budget, &mut task).await {
            Ok(Ok(decision)) => decision,
            Ok(Err(e)) => {
                tracing::error!(%resource, action = action.as_str(), error = %e, "guard callback failed; denying");
                GuardDecision::Deny { message: None }
            }
            Err(_) => {
                task.abort();
                tracing::warn!(%resource, action = action.as_str(), "guard callback still running long after the engine's deadline; abandoned");
                return;
            }
        };
        let _ = tx.send((op, decision));
    });
}

fn log_close(peer: &Peer, code: Option<u16>, by: &str) {
    tracing::debug!(
        client = %peer.client_id,
        route = %peer.route,
        user = peer.user.as_deref().unwrap_or("-"),
        code = code.map_or(-1, i32::from),
        by,
        "connection closed"
    );
}
