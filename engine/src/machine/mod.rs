//! The engine's state machine (`machine`): one for every connection of a deployment.
//!
//! Feed it [`Input`]s with the current time, then drain [`Action`]s with
//! [`Engine::poll_action`] and execute them; sleep until [`Engine::poll_timeout`] and
//! feed [`Input::Timeout`]. See the crate docs for the host loop.

mod calls;
mod clients;
mod cluster;
mod cluster_rooms;
mod cluster_streams;
mod compat;
mod expiry;
mod handlers;
mod key_sources;
mod lifecycle;
mod polling;
mod requests;
mod resource_streams;
mod resources;
mod room_control;
mod server_api;
mod sio_acks;
mod socketio;
mod streams;
mod upgrade;

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use slab::Slab;

use crate::auth::Authenticator;
use crate::compile::{CompiledConfig, CompiledResource};
use crate::config::{Config, SlowConsumerPolicy};
use crate::connection::{Connection, ConnectionSnapshot, UserView};
use crate::error::{ApiMisuse, ConfigError, ErrorCode};
use crate::hostcall::{HostRequest, HostResult};
use crate::hub::Hub;
use crate::metrics::Metrics;
use crate::protocol::codec::{codec_for, Outbound};
use crate::protocol::{Frame, InFrame, ServerMessage};
use crate::timers::{self, Timers};
use crate::types::{ConnId, Millis, OpId, UpgradeRequest};

use calls::OpCounter;
pub(crate) use calls::PendingCall;
pub use polling::POLL_CONN_BASE;
pub(crate) use resources::Continuation;
pub use server_api::{Command, CommandError};

/// An input to the engine.
#[derive(Debug, Clone, PartialEq)]
pub enum Input<'a> {
    /// An HTTP upgrade request arrived; the engine answers with `Accept` or `Reject`.
    Open {
        /// Host's id for the connection.
        conn: ConnId,
        /// What the request said.
        request: UpgradeRequest,
    },
    /// A data frame arrived.
    Frame {
        /// Connection.
        conn: ConnId,
        /// The frame.
        frame: InFrame<'a>,
    },
    /// A WebSocket pong arrived.
    Pong {
        /// Connection.
        conn: ConnId,
    },
    /// The host's outbound queue for a connection holds `buffered` bytes.
    Backpressure {
        /// Connection.
        conn: ConnId,
        /// Bytes queued and not yet written.
        buffered: u64,
    },
    /// The connection is gone (client close, network error, or after a `Close` action).
    Closed {
        /// Connection.
        conn: ConnId,
        /// Close code received, if any.
        code: Option<u16>,
    },
    /// `poll_timeout()` has passed.
    Timeout,
    /// A host call finished.
    Completed {
        /// The call.
        op: OpId,
        /// Its result.
        result: HostResult,
    },
    /// A server-API command; answered with [`Action::CommandResult`] carrying `tag`:
    /// during this `handle` call, or for the resource writes ([`Command::Insert`],
    /// [`Command::Update`], [`Command::Delete`]) once their storage call completes or
    /// times out. Tags are the host's; the engine only echoes them.
    Command {
        /// Host's correlation tag (unique among the host's commands in flight).
        tag: u64,
        /// The command.
        command: Command,
    },
    /// Cluster news from the host: the broker's state, a message from another node, or
    /// a node gone silent (see [`crate::cluster`]). Only after
    /// [`Engine::enable_cluster`].
    Cluster {
        /// What happened.
        event: crate::cluster::ClusterEvent,
    },
    /// Re-create a connection from a snapshot (after hibernation). No welcome is sent.
    Restore {
        /// Host's id for the connection.
        conn: ConnId,
        /// The state taken with [`Engine::snapshot`].
        snapshot: Box<ConnectionSnapshot>,
    },
    /// A plain HTTP request on an Engine.IO route (see [`Engine::serves_http`]):
    /// long-polling. Answered with [`Action::Respond`] carrying `req`, at once or later
    /// (a held `GET`). Request ids are the host's, unique among its requests in flight.
    Http {
        /// Host's id for the request.
        req: u64,
        /// HTTP method (`GET`, `POST`, `OPTIONS`, ...).
        method: String,
        /// Path, query, headers, peer and (for a handshake) the client id to use.
        request: UpgradeRequest,
        /// The request body (hosts read at most `maxPayloadSize + 1` bytes).
        body: &'a [u8],
    },
    /// A request not yet answered went away (the client aborted it).
    HttpAborted {
        /// Host's id for the request.
        req: u64,
    },
}

/// What the host must do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "camelCase")]
pub enum Action {
    /// Complete the WebSocket handshake.
    Accept {
        /// Connection.
        conn: ConnId,
        /// Subprotocol to put in `Sec-WebSocket-Protocol`, if any.
        protocol: Option<String>,
    },
    /// Refuse the upgrade with this HTTP status and JSON body.
    Reject {
        /// Connection.
        conn: ConnId,
        /// HTTP status.
        status: u16,
        /// JSON body (`{"type":"error","code",...}`).
        body: String,
    },
    /// Send a frame to one connection.
    Send {
        /// Connection.
        conn: ConnId,
        /// Frame (shared bytes).
        frame: Frame,
    },
    /// Send the same frame to many connections.
    SendMany {
        /// Connections, in delivery order.
        conns: Vec<ConnId>,
        /// Frame (shared bytes).
        frame: Frame,
    },
    /// Send a WebSocket ping.
    Ping {
        /// Connection.
        conn: ConnId,
    },
    /// Send a close frame with this code and reason, then report `Closed`.
    Close {
        /// Connection.
        conn: ConnId,
        /// Close code.
        code: u16,
        /// Close reason.
        reason: String,
    },
    /// Perform I/O and answer with `Input::Completed { op, .. }` before `deadline`.
    Call {
        /// Call id.
        op: OpId,
        /// Connection the call is for (None for server-initiated calls).
        conn: Option<ConnId>,
        /// Deadline after which the engine gives up.
        deadline: Millis,
        /// What to do.
        request: HostRequest,
    },
    /// Answer the HTTP request `req` ([`Input::Http`]) with this status, these headers
    /// and this body.
    Respond {
        /// Host's id for the request.
        req: u64,
        /// HTTP status.
        status: u16,
        /// Header name/value pairs (lower-case names).
        headers: Vec<(String, String)>,
        /// Body text.
        body: String,
    },
    /// Result of an `Input::Command` (for the resource writes, possibly after other
    /// actions and inputs: match it by `tag`).
    CommandResult {
        /// The command's tag.
        tag: u64,
        /// Outcome: the command's JSON result, or its error code and message.
        result: Result<serde_json::Value, CommandError>,
    },
    /// Carry this message to every other node of the cluster (only after
    /// [`Engine::enable_cluster`]; see [`crate::cluster`]).
    Cluster {
        /// The message (boxed: it is the largest payload, and every action moves
        /// through the queue).
        message: Box<crate::cluster::ClusterMessage>,
    },
}

/// The sans-IO protocol engine.
#[derive(Debug)]
pub struct Engine {
    config: Config,
    auth: Authenticator,
    /// Boxed: the slab keeps spare slots (up to as many again as it holds) and moves
    /// every entry when it grows; a box makes a slot one pointer.
    conns: clients::Conns,
    by_conn: FxHashMap<ConnId, usize>,
    by_client: clients::ClientIndex,
    per_ip: FxHashMap<String, usize>,
    per_user: FxHashMap<String, usize>,
    /// Users as filters and guards see them, shared by their connections: serialized
    /// subject → (view, connections holding it).
    user_views: FxHashMap<String, (Arc<UserView>, usize)>,
    hub: Hub,
    timers: Timers,
    pending: BTreeMap<OpId, PendingCall>,
    ops: OpCounter,
    actions: VecDeque<Action>,
    metrics: Metrics,
    now: Millis,
    started_at: Option<Millis>,
    draining: bool,
    rng: u64,
    scratch: Vec<(usize, ConnId)>,
    /// Connections that have a tenant (from their route, or a restored snapshot): while
    /// there are none, a publication without a tenant reaches every subscriber.
    tenanted: usize,
    compiled: BTreeMap<String, Arc<CompiledResource>>,
    /// Timed-out writes whose late completion must still fan out (bounded).
    abandoned: BTreeMap<OpId, Continuation>,
    /// Channel namespaces (history, presence, permissions per pattern).
    namespaces: crate::namespace::Namespaces,
    /// What orders the streams (offsets, epochs, history).
    broker: crate::broker::MemoryBroker,
    /// Application guards and schemas, compiled once.
    app: Arc<crate::app::CompiledApp>,
    /// Rooms created through the server API (description, capacity, metadata).
    room_meta: BTreeMap<String, room_control::RoomMeta>,
    /// Cluster mode (None: a single node).
    cluster: Option<Box<cluster::ClusterState>>,
    /// Engine.IO long-polling sessions.
    polls: polling::Polls,
    /// What the host can answer ([`Engine::set_host_capabilities`]).
    host: crate::hostcall::HostCapabilities,
    /// Calls the engine answered itself for the host, completed after the current input.
    engine_answers: VecDeque<(OpId, HostResult)>,
}

impl Engine {
    /// Create an engine from a config (checked and compiled here). Equivalent to
    /// `with_seed(config, 0)`.
    pub fn new(config: Config) -> Result<Self, ConfigError> {
        Self::with_seed(config, 0)
    }

    /// Create an engine whose generated ids (record ids, client ids the host did not
    /// supply) come from `seed`. Hosts pass a random seed; tests pass a fixed one.
    /// Checks and compiles `config` ([`CompiledConfig::compile`]), then
    /// [`Engine::from_compiled`].
    pub fn with_seed(config: Config, seed: u64) -> Result<Self, ConfigError> {
        Ok(Self::from_compiled(CompiledConfig::compile(config)?, seed))
    }

    /// Create an engine from a compiled config (nothing is checked or compiled again),
    /// its generated ids from `seed` as in [`Engine::with_seed`].
    pub fn from_compiled(compiled: CompiledConfig, seed: u64) -> Self {
        let CompiledConfig {
            config,
            auth,
            resources: compiled,
            namespaces,
            app,
        } = compiled;
        let mut timers = Timers::default();
        for (i, source) in auth.sources.sources.iter().enumerate() {
            timers.reschedule(timers::TimerKey::KeySource(i), None, source.deadline());
        }
        Self {
            config,
            auth,
            conns: Slab::new(),
            by_conn: FxHashMap::default(),
            by_client: clients::ClientIndex::default(),
            per_ip: FxHashMap::default(),
            per_user: FxHashMap::default(),
            user_views: FxHashMap::default(),
            hub: Hub::default(),
            timers,
            pending: BTreeMap::new(),
            ops: OpCounter::default(),
            actions: VecDeque::new(),
            metrics: Metrics::default(),
            now: Millis(0),
            started_at: None,
            draining: false,
            rng: seed,
            scratch: Vec::new(),
            tenanted: 0,
            compiled,
            abandoned: BTreeMap::new(),
            namespaces,
            broker: crate::broker::MemoryBroker::default(),
            app,
            room_meta: BTreeMap::new(),
            cluster: None,
            polls: polling::Polls::default(),
            host: crate::hostcall::HostCapabilities::default(),
            engine_answers: VecDeque::new(),
        }
    }

    /// The validated config.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Counters.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Number of open connections (including ones the engine is closing).
    pub fn connection_count(&self) -> usize {
        self.conns.len()
    }

    /// Feed one input at time `now` (epoch ms). Errors only for host bugs ([`ApiMisuse`]);
    /// everything a client can do is answered with actions.
    pub fn handle(&mut self, now: Millis, input: Input<'_>) -> Result<(), ApiMisuse> {
        let now = self.advance(now);
        self.broker.sweep(now);
        let result = match self.poll_ws_input(input) {
            Some(input) => self.dispatch_input(now, input),
            None => Ok(()),
        };
        // Calls the host cannot answer complete as if it had answered at once.
        while let Some((op, answer)) = self.engine_answers.pop_front() {
            let _ = self.dispatch_input(now, Input::Completed { op, result: answer });
        }
        self.route_polls(now);
        result
    }

    /// Say what the host can answer: without a guard callback every host guard call is
    /// denied, without application handlers every handler call fails, by the engine
    /// itself and with the same texts on every host (no `Action::Call` is emitted for
    /// them). Default: the host answers everything.
    pub fn set_host_capabilities(&mut self, caps: crate::hostcall::HostCapabilities) {
        self.host = caps;
    }

    /// Emit a host call, or queue the engine's own answer when the host cannot answer it
    /// ([`Engine::set_host_capabilities`]).
    pub(crate) fn emit_call(
        &mut self,
        op: OpId,
        conn: Option<ConnId>,
        deadline: Millis,
        request: HostRequest,
    ) {
        match self.host.answer(&request) {
            Some(answer) => self.engine_answers.push_back((op, answer)),
            None => self.actions.push_back(Action::Call {
                op,
                conn,
                deadline,
                request,
            }),
        }
    }

    /// Whether an HTTP request on `path` is the engine's to answer ([`Input::Http`]):
    /// the path of an Engine.IO route (`codec = "socket.io"` or `"engine.io"`).
    pub fn serves_http(&self, path: &str) -> bool {
        crate::routes::serves_engine_io(&self.config.routes, path)
    }

    fn dispatch_input(&mut self, now: Millis, input: Input<'_>) -> Result<(), ApiMisuse> {
        match input {
            Input::Http {
                req,
                method,
                request,
                body,
            } => {
                // Deadlines already due fire first: a session whose pong is overdue is
                // closed before its next request is answered, however late the host's
                // timer is.
                self.timeout(now);
                self.http(now, req, &method, request, body)
            }
            Input::HttpAborted { req } => self.http_aborted(req),
            Input::Open { conn, request } => return self.open(now, conn, request),
            Input::Frame { conn, frame } => self.frame(now, conn, frame),
            Input::Pong { conn } => {
                if let Some(slot) = self.live_slot(conn) {
                    self.alive(slot, now);
                }
            }
            Input::Backpressure { conn, buffered } => self.backpressure(conn, buffered),
            Input::Closed { conn, code } => self.closed(now, conn, code),
            Input::Timeout => self.timeout(now),
            Input::Completed {
                op,
                result: HostResult::Fetch(response),
            } => self.fetch_completed(now, op, &response),
            Input::Completed { op, result } if self.is_handler_call(op) => {
                self.handler_completed(now, op, result)
            }
            Input::Completed { op, result } => self.completed(now, op, result),
            Input::Command { tag, command } => self.command(now, tag, command),
            Input::Cluster { event } => self.cluster_input(now, event),
            Input::Restore { conn, snapshot } => return self.restore(now, conn, *snapshot),
        }
        Ok(())
    }

    /// A host's transport refused a frame from its header because it is larger than
    /// `maxPayloadSize` (so it never reached [`Input::Frame`]). Returns the engine's
    /// `PAYLOAD_TOO_LARGE` error frame for the host to send before it closes with
    /// [`close::MESSAGE_TOO_BIG`](crate::close::MESSAGE_TOO_BIG) and reports `Closed`.
    /// `None` for an unknown or closing connection.
    pub fn oversize_frame(&mut self, conn: ConnId, size: Option<usize>) -> Option<Frame> {
        let conn = self.polls.session_of_ws(conn).unwrap_or(conn);
        let slot = self.live_slot(conn)?;
        self.metrics.messages_received += 1;
        self.metrics.error(ErrorCode::PayloadTooLarge);
        let size = size.map_or_else(|| "a frame".to_string(), |s| format!("frame of {s} bytes"));
        let msg = ServerMessage::Error {
            code: ErrorCode::PayloadTooLarge,
            reason: None,
            message: format!(
                "{size} exceeds maxPayloadSize ({} bytes)",
                self.config.max_payload_size
            ),
            request_id: None,
        };
        self.metrics.sent(msg.type_name(), 1);
        Some(codec_for(self.conns[slot].state.codec).encode(Outbound::Message(&msg)))
    }

    /// The next action to execute, in order.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// Take every queued action at once (one crossing per input for JS hosts).
    pub fn drain_actions(&mut self) -> std::collections::vec_deque::Drain<'_, Action> {
        self.actions.drain(..)
    }

    /// When the engine next needs `Input::Timeout` (None: no deadline pending).
    pub fn poll_timeout(&self) -> Option<Millis> {
        match (self.timers.next(), self.broker.next_deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Keep the stream history durable: record every change as [`crate::broker::KvOp`]s
    /// (taken with [`Engine::take_stream_ops`]) for the host's key/value storage.
    pub fn set_persistent_streams(&mut self, on: bool) {
        self.broker.set_persistent(on);
    }

    /// The storage operations recorded since the last call (see
    /// [`Engine::set_persistent_streams`]); apply them in order before sending the frames
    /// of the same step.
    pub fn take_stream_ops(&mut self) -> Vec<crate::broker::KvOp> {
        self.broker.take_kv_ops()
    }

    /// Rebuild stream histories from stored key/value pairs (after an eviction); returns
    /// the keys that could not be read.
    pub fn restore_streams(&mut self, pairs: &[(String, String)]) -> Vec<String> {
        self.broker.restore(pairs)
    }

    /// A snapshot of one connection's state for hibernation (None if unknown).
    pub fn snapshot(&self, conn: ConnId) -> Option<ConnectionSnapshot> {
        let conn = self.polls.session_of_ws(conn).unwrap_or(conn);
        let slot = *self.by_conn.get(&conn)?;
        Some(self.conns[slot].state.clone())
    }

    /// Check internal invariants (used by tests and fuzzing): every index entry belongs
    /// to an open connection and the counts agree.
    pub fn check_invariants(&self) -> Result<(), String> {
        let live: Vec<&Connection> = self.conns.iter().map(|(_, c)| &**c).collect();
        let active_subs: usize = live
            .iter()
            .filter(|c| !c.closing)
            .map(|c| {
                c.state
                    .subscriptions
                    .iter()
                    .filter(|s| matches!(s.target, crate::connection::SubTarget::Resource { .. }))
                    .count()
            })
            .sum();
        if active_subs != self.hub.subscription_count() {
            return Err(format!(
                "hub has {} resource subscriptions, connections hold {active_subs}",
                self.hub.subscription_count()
            ));
        }
        let active_channels: usize = live
            .iter()
            .filter(|c| !c.closing)
            .map(|c| {
                c.state
                    .subscriptions
                    .iter()
                    .filter(|s| matches!(s.target, crate::connection::SubTarget::Channel { .. }))
                    .count()
            })
            .sum();
        if active_channels != self.hub.channel_membership_count() {
            return Err("channel memberships disagree".into());
        }
        let rooms: usize = live
            .iter()
            .filter(|c| !c.closing)
            .map(|c| c.state.rooms.len())
            .sum();
        if rooms != self.hub.room_membership_count() {
            return Err("room memberships disagree".into());
        }
        if self.by_conn.len() != self.conns.len() || self.by_client.len() != self.conns.len() {
            return Err("connection maps disagree".into());
        }
        for (slot, c) in &self.conns {
            if self.by_conn.get(&c.id) != Some(&slot) || !self.by_client.holds(&self.conns, slot) {
                return Err(format!("connection {} is not indexed", c.id.0));
            }
        }
        if self.metrics.current_connections != self.conns.len() as u64 {
            return Err("currentConnections gauge disagrees".into());
        }
        if self.metrics.connections < self.metrics.disconnections {
            return Err("more disconnections than connections".into());
        }
        let pending: usize = live.iter().map(|c| c.pending).sum();
        if pending > self.pending.len() {
            return Err("connection pending counts exceed calls in flight".into());
        }
        if self.metrics.pending_calls != self.pending.len() as u64 {
            return Err("pendingCalls gauge disagrees".into());
        }
        let with_user = live.iter().filter(|c| c.state.user.is_some()).count();
        let shared: usize = self.user_views.values().map(|(_, n)| n).sum();
        if with_user != shared {
            return Err(format!(
                "{with_user} connections have a user, the user views count {shared}"
            ));
        }
        for c in &live {
            let ok = match (&c.state.user, &c.user_view) {
                (None, None) => true,
                (Some(u), Some(v)) => {
                    v.subject == u.as_filter_subject()
                        && self
                            .user_views
                            .get(&v.key)
                            .is_some_and(|(w, _)| Arc::ptr_eq(v, w))
                }
                _ => false,
            };
            if !ok {
                return Err(format!("connection {} has a stale user view", c.id.0));
            }
        }
        Ok(())
    }

    // ----- shared helpers -------------------------------------------------------------

    fn advance(&mut self, now: Millis) -> Millis {
        if self.started_at.is_none() {
            self.started_at = Some(now);
        }
        if now > self.now {
            self.now = now;
        }
        self.now
    }

    /// Slot of an open, not-closing connection.
    fn live_slot(&mut self, conn: ConnId) -> Option<usize> {
        match self.by_conn.get(&conn) {
            Some(&slot) if !self.conns[slot].closing => Some(slot),
            Some(_) => None,
            None => {
                self.metrics.unknown_connection_inputs += 1;
                None
            }
        }
    }

    /// Encode and queue a message for one connection.
    fn send(&mut self, slot: usize, msg: &ServerMessage) {
        let Some(c) = self.conns.get(slot) else {
            return;
        };
        if c.closing {
            return;
        }
        let frames = codec_for(c.state.codec).encode_all(Outbound::Message(msg));
        let conn = c.id;
        self.metrics.sent(msg.type_name(), 1);
        for frame in frames {
            self.actions.push_back(Action::Send { conn, frame });
        }
    }

    /// Queue an error frame.
    fn send_error(
        &mut self,
        slot: usize,
        code: ErrorCode,
        message: impl Into<String>,
        request_id: Option<serde_json::Value>,
    ) {
        self.metrics.error(code);
        self.send(
            slot,
            &ServerMessage::Error {
                code,
                reason: None,
                message: message.into(),
                request_id,
            },
        );
    }

    /// Deliver one message to many connections: encoded once per codec, bytes shared.
    /// Skips closing connections and, under the drop policy, slow consumers.
    /// Returns the number of connections it was sent to.
    fn fanout(&mut self, recipients: &[(usize, ConnId)], out: Outbound<'_>) -> usize {
        let limit = self.config.limits.max_buffered_bytes;
        let drop_slow = self.config.limits.slow_consumer == SlowConsumerPolicy::Drop;
        // Group by codec: each group's message is encoded once.
        let mut groups: Vec<(crate::config::CodecKind, Vec<ConnId>)> = Vec::new();
        let mut dropped = 0u64;
        for &(slot, conn) in recipients {
            let Some(c) = self.conns.get(slot) else {
                continue;
            };
            if c.closing || c.id != conn {
                continue;
            }
            if drop_slow && c.buffered > limit {
                dropped += 1;
                continue;
            }
            let kind = c.state.codec;
            match groups.iter_mut().find(|(k, _)| *k == kind) {
                Some((_, v)) => v.push(conn),
                None => {
                    let mut v = Vec::with_capacity(recipients.len());
                    v.push(conn);
                    groups.push((kind, v));
                }
            }
        }
        self.metrics.dropped_slow_consumer += dropped;
        let mut delivered = 0;
        for (kind, mut conns) in groups {
            delivered += conns.len();
            let frames = codec_for(kind).encode_all(out);
            let last = frames.len().saturating_sub(1);
            for (i, frame) in frames.into_iter().enumerate() {
                if conns.len() == 1 {
                    self.actions.push_back(Action::Send {
                        conn: conns[0],
                        frame,
                    });
                } else {
                    // Attachments (Socket.IO) share the list; the last frame takes it.
                    let conns = if i == last {
                        std::mem::take(&mut conns)
                    } else {
                        conns.clone()
                    };
                    self.actions.push_back(Action::SendMany { conns, frame });
                }
            }
        }
        self.metrics.sent(out.type_name(), delivered as u64);
        self.metrics.fanout_deliveries += delivered as u64;
        delivered
    }

    /// Next value of the engine's deterministic generator (splitmix64).
    fn next_random(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A random id of `len` characters from the URL-safe alphabet.
    fn random_id(&mut self, len: usize) -> String {
        const ALPHABET: &[u8; 64] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut s = String::with_capacity(len);
        let mut bits = 0u64;
        let mut left = 0;
        for _ in 0..len {
            if left < 6 {
                bits = self.next_random();
                left = 64;
            }
            s.push(ALPHABET[(bits & 63) as usize] as char);
            bits >>= 6;
            left -= 6;
        }
        s
    }

    fn check_name(&self, what: &str, name: &str) -> Result<(), String> {
        if name.is_empty() {
            return Err(format!("{what} name must not be empty"));
        }
        if name.len() > self.config.limits.max_name_length {
            return Err(format!(
                "{what} name is longer than {} bytes",
                self.config.limits.max_name_length
            ));
        }
        if name.contains(crate::tenant::SEPARATOR) {
            return Err(format!("{what} name must not contain a NUL character"));
        }
        Ok(())
    }

    /// The tenant of the connection at `slot`, if its route declares one.
    pub(super) fn tenant_of(&self, slot: usize) -> Option<&str> {
        self.conns[slot].state.tenant.as_deref()
    }

    /// The hub/broker key of the room or channel `name` as the connection at `slot`
    /// names it (scoped by its tenant; [`crate::tenant`]).
    pub(super) fn key_for<'a>(&self, slot: usize, name: &'a str) -> std::borrow::Cow<'a, str> {
        crate::tenant::scoped(self.tenant_of(slot), name)
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod resource_tests;

#[cfg(test)]
mod identity_tests;

#[cfg(test)]
mod stream_tests;

#[cfg(test)]
mod resource_stream_tests;

#[cfg(test)]
mod envelope_tests;

#[cfg(test)]
mod polling_tests;
#[cfg(test)]
mod socketio_tests;

#[cfg(test)]
mod cluster_tests;
