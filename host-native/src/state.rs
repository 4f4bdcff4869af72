//! State shared by the HTTP handlers and connection tasks of one server.
//!
//! It depends only on low-level modules (the actor's [`crate::mailbox`], the store's
//! handle, the metrics, the test control [`crate::test_session`]): every endpoint
//! depends on it.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::mailbox::ActorHandle;
use crate::metrics::Metrics;
use crate::store::StoreHandle;

/// Per-connection WebSocket parameters.
#[derive(Debug, Clone, Copy)]
pub struct WsParams {
    /// The engine's `maxPayloadSize`: larger frames and messages are refused (1009).
    pub max_payload: usize,
    /// `server.readBufferSize`: the read buffer each worker thread shares between its
    /// connections.
    pub read_buffer: usize,
    /// `server.writeBufferSize`: bytes handed to one write call at most.
    pub write_batch: usize,
    /// Outbound queue capacity in frames.
    pub outbound_queue: usize,
    /// The engine's `limits.maxBufferedBytes`.
    pub max_buffered: u64,
}

/// Everything a request handler needs.
#[derive(Debug)]
pub struct AppState {
    /// The engine actor.
    pub actor: ActorHandle,
    /// The store thread.
    pub store: StoreHandle,
    /// Prometheus series.
    pub metrics: Arc<Metrics>,
    /// Admin API key.
    pub admin_key: String,
    /// Whether `GET /` shows counts, routes and resources without the admin key.
    pub public_info: bool,
    /// Largest admin request body.
    pub max_admin_body: usize,
    /// False while draining (`/readyz` answers 503).
    pub ready: AtomicBool,
    /// With `--broker`: whether the cluster broker is reachable (`/readyz` answers 503
    /// while it is not) and its redacted URL.
    pub broker: Option<(Arc<AtomicBool>, String)>,
    /// With a PostgreSQL store: whether the database answers (`/readyz` answers 503
    /// while it does not).
    pub store_health: Option<crate::store::StoreHealth>,
    /// Next connection id.
    pub next_conn: AtomicU64,
    /// WebSocket parameters.
    pub ws: WsParams,
    /// Connection tasks (awaited on shutdown).
    pub ws_tasks: TaskTracker,
    /// Fired when the shutdown deadline passes: every task drops its socket.
    pub hard_stop: CancellationToken,
    /// The WebSocket routes (plain GETs on their paths, parameters included, answer with
    /// server info; [`engine::routes::serves_path`]).
    pub ws_routes: Vec<engine::config::RouteConfig>,
    /// Configured resources (admin resource reads must name one; writes are checked by
    /// the engine).
    pub resources: BTreeSet<String>,
    /// The test control channel's shared state, when enabled ([`crate::testctl`]).
    pub test: Option<Arc<crate::test_session::Shared>>,
    /// Whether records live in memory (`--memory`; test resets need it).
    pub memory_store: bool,
}
