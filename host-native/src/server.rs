//! Starting a server: store thread, engine actor, listener and accept loop; and the
//! graceful shutdown that stops them in order.
//!
//! [`start`] serves a deployment as configured; [`ServerBuilder`] adds what only code
//! can give, such as the async guard callback for `hostGuards`
//! ([`ServerBuilder::guard`]).

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use engine::{Command, Engine};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::actor::{Actor, ToActor};
use crate::config::{Deployment, StoreKind};
use crate::guard::{GuardCallback, GuardDecision, GuardRequest};
use crate::metrics::Metrics;
use crate::state::{AppState, WsParams};
use crate::store::StoreWorker;

/// How long a client may take to send its request headers (or finish a TLS handshake).
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// First pause after a failed `accept` (doubles per failure in a row).
const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(5);
/// Longest pause after failed `accept`s.
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_millis(500);
/// Failed `accept`s are logged at most once per this interval (with the count).
const ACCEPT_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// A running server. Dropping it without [`RunningServer::shutdown`] leaves the tasks
/// running until the runtime ends.
#[derive(Debug)]
pub struct RunningServer {
    addr: SocketAddr,
    tls: bool,
    store_kind: StoreKind,
    state: Arc<AppState>,
    stop_accepting: CancellationToken,
    http_shutdown: CancellationToken,
    http_tasks: TaskTracker,
    accept_task: JoinHandle<()>,
    actor_task: JoinHandle<()>,
    store_worker: StoreWorker,
    /// The thread writing channel history (durable streams), if on.
    stream_thread: Option<crate::streams::StreamWriterThread>,
    /// The Redis link, with `--broker`.
    cluster: Option<crate::cluster::ClusterLink>,
    shutdown_timeout: Duration,
}

/// Start serving a deployment. The listen address may use port 0; see
/// [`RunningServer::local_addr`]. Same as `ServerBuilder::new(deployment).start()`.
pub async fn start(deployment: Deployment) -> anyhow::Result<RunningServer> {
    ServerBuilder::new(deployment).start().await
}

/// A server to start, with the callbacks an embedding application registers.
///
/// ```no_run
/// # async fn run(deployment: switchboard::Deployment) -> anyhow::Result<()> {
/// use switchboard::{GuardDecision, GuardRequest, ServerBuilder};
/// let server = ServerBuilder::new(deployment)
///     .guard(|req: GuardRequest| async move {
///         if req.user_id().is_some() { GuardDecision::Allow } else { GuardDecision::Deny { message: None } }
///     })
///     .start()
///     .await?;
/// println!("listening on {}", server.local_addr());
/// # server.shutdown().await; Ok(()) }
/// ```
#[derive(Debug)]
pub struct ServerBuilder {
    deployment: Deployment,
    guard: Option<GuardCallback>,
    test_control: bool,
    handlers: crate::handlers::Handlers,
}

impl ServerBuilder {
    /// A server for `deployment` with no callbacks.
    pub fn new(deployment: Deployment) -> Self {
        ServerBuilder {
            deployment,
            guard: None,
            test_control: false,
            handlers: crate::handlers::Handlers::default(),
        }
    }

    /// Serve the test control channel under `/__switchboard/test/` (tests only: it
    /// resets the engine and answers guard calls without any key; see
    /// [`crate::testctl`]). `switchboard serve` turns it on with
    /// `SWITCHBOARD_TEST_CONTROL=1`.
    pub fn test_control(mut self, on: bool) -> Self {
        self.test_control = on;
        self
    }

    /// Answer the engine's host guard calls (resources with `hostGuards`) with an async
    /// callback. It runs on a task of its own for each call, with the engine's deadline
    /// (`limits.hostCallTimeoutMs`): a late answer leaves the client with `TIMEOUT`.
    /// See [`crate::guard`].
    pub fn guard<F, Fut>(mut self, f: F) -> Self
    where
        F: Fn(GuardRequest) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = GuardDecision> + Send + 'static,
    {
        self.guard = Some(GuardCallback::new(f));
        self
    }

    /// Start serving. The listen address may use port 0; see
    /// [`RunningServer::local_addr`].
    /// Handle the application message type `message_type` with an async closure
    /// (declared with defaults if the config does not declare it). The closure gets the
    /// call and a [`crate::handlers::Ctx`] (the caller's id, `send` to stream to it, the
    /// server's command handle) and returns a reply value, a
    /// [`crate::handlers::HandlerError`], `Result` of the two, `()` for no reply, or a
    /// full [`crate::handlers::HandlerResponse`].
    pub fn on_message<F, Fut, R>(mut self, message_type: &str, f: F) -> Self
    where
        F: Fn(crate::handlers::MessageCall, crate::handlers::Ctx) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = R> + Send + 'static,
        R: Into<crate::handlers::HandlerResponse>,
    {
        self.handlers.on_message(message_type, f);
        self
    }

    /// The `connect` hook: after authentication, before the welcome. Return a
    /// `HandlerResponse` with `error` to refuse, `user` to replace the user, `meta` to
    /// attach metadata, `commands` for server-side joins.
    pub fn on_connect<F, Fut, R>(mut self, f: F) -> Self
    where
        F: Fn(crate::handlers::HookCall, crate::handlers::Ctx) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = R> + Send + 'static,
        R: Into<crate::handlers::HandlerResponse>,
    {
        self.handlers.on_hook(crate::handlers::HookKind::Connect, f);
        self
    }

    /// The `disconnect` hook: told when a welcomed connection ends (code, reason).
    pub fn on_disconnect<F, Fut, R>(mut self, f: F) -> Self
    where
        F: Fn(crate::handlers::HookCall, crate::handlers::Ctx) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = R> + Send + 'static,
        R: Into<crate::handlers::HandlerResponse>,
    {
        self.handlers
            .on_hook(crate::handlers::HookKind::Disconnect, f);
        self
    }

    /// Intercept a built-in message type (`publish`, `room:message`, `direct`,
    /// `insert`, `update`, `delete`, `subscribe`, `join`): answer `error` to cancel,
    /// `modified` to run another message of the same type, nothing to let it run.
    pub fn intercept<F, Fut, R>(mut self, message_type: &str, f: F) -> Self
    where
        F: Fn(crate::handlers::InterceptCall, crate::handlers::Ctx) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = R> + Send + 'static,
        R: Into<crate::handlers::HandlerResponse>,
    {
        self.handlers.intercept(message_type, f);
        self
    }

    /// Start serving.
    pub async fn start(mut self) -> anyhow::Result<RunningServer> {
        self.handlers.enable_in(&mut self.deployment.engine);
        start_server(
            self.deployment,
            self.guard,
            self.test_control,
            self.handlers,
        )
        .await
    }
}

async fn start_server(
    deployment: Deployment,
    guard: Option<GuardCallback>,
    test_control: bool,
    handlers: crate::handlers::Handlers,
) -> anyhow::Result<RunningServer> {
    let Deployment { server, mut engine } = deployment;
    // Never promise more connections than the process has file descriptors for.
    let nofile = crate::capacity::nofile_limit();
    let configured = engine.limits.max_connections;
    let effective = crate::capacity::effective_max_connections(configured, nofile);
    if let (true, Some(n)) = (effective < configured, nofile) {
        tracing::info!(
            "connection limit {effective}: limits.maxConnections {configured} lowered to the file descriptor limit {n} minus {} kept for HTTP, admin and storage (raise `ulimit -n` for more)",
            crate::capacity::reserve(n)
        );
        engine.limits.max_connections = effective;
    }
    let addr = server
        .listen_addr()
        .map_err(|e| anyhow::anyhow!("server.listen: {e}"))?;
    let tls = server.tls.as_ref().map(crate::tls::acceptor).transpose()?;
    let metrics = Arc::new(Metrics::new());

    let crate::store::Opened {
        store,
        health: store_health,
    } = crate::store::open(&server.store, &server.data_dir, &engine.resources)?;
    let (completions_tx, completions_rx) = mpsc::channel(1024);
    let (store_handle, store_worker) = StoreWorker::spawn(store, completions_tx, metrics.clone())
        .context("cannot start the store thread")?;

    let ws = WsParams {
        max_payload: engine.max_payload_size,
        read_buffer: server.read_buffer_size,
        write_batch: server.write_buffer_size,
        outbound_queue: server.outbound_queue,
        max_buffered: engine.limits.max_buffered_bytes,
    };
    let ws_routes = engine.routes.clone();
    let resources: BTreeSet<String> = engine.resources.keys().cloned().collect();
    let host_guarded: Vec<&String> = engine
        .resources
        .iter()
        .filter(|(_, rc)| !rc.host_guards.is_empty())
        .map(|(name, _)| name)
        .collect();
    if guard.is_none() && !host_guarded.is_empty() {
        tracing::warn!(
            resources = ?host_guarded,
            "the config has hostGuards but no guard callback is registered: those actions are denied (FORBIDDEN)"
        );
    }
    let test_shared = test_control.then(|| Arc::new(crate::test_session::Shared::default()));
    let actor_test = test_shared
        .as_ref()
        .map(|shared| crate::test_session::ActorTest::new(engine.clone(), shared.clone()));
    if test_control {
        tracing::warn!(
            "TEST CONTROL CHANNEL ENABLED ({}=1): anyone reaching {}/ can reset the engine; tests only",
            crate::testctl::ENV,
            crate::testctl::PREFIX
        );
    }
    let mut engine = Engine::with_seed(engine, crate::ids::seed())
        .map_err(|e| anyhow::anyhow!("invalid engine config: {e}"))?;
    // In a cluster the streams live in Redis (`crate::cluster_streams`).
    let streams =
        if server.store == StoreKind::Sqlite && server.persist_streams && server.broker.is_none() {
            Some(open_streams(&mut engine, &server.data_dir)?)
        } else {
            None
        };

    let (actor_handle, actor_rx) = Actor::channel();
    let server_handle = crate::handlers::ServerHandle::new(actor_handle.clone());
    let actor = Actor::new(engine, store_handle.clone(), metrics.clone())
        .with_guard(guard)
        .with_handlers(handlers, server_handle)
        .with_test_control(actor_test);
    let writers = crate::writers::Writers::spawn(server.write_threads, &actor_handle)
        .context("cannot start the write threads")?;
    let actor = actor.with_writers(writers);
    let (actor, cluster) = match &server.broker {
        Some(url) => {
            let client = crate::cluster::parse_url(url)?;
            let node = crate::cluster::node_id();
            let (tx, rx) = mpsc::unbounded_channel();
            let actor = actor.with_cluster(&node, tx, configured);
            tracing::info!(%node, broker = %crate::cluster::redact(url), "joining the cluster");
            let link =
                crate::cluster::spawn(client, url, node, actor_handle.clone(), rx, metrics.clone());
            (actor, Some(link))
        }
        None => (actor, None),
    };
    let (actor, stream_thread) = match streams {
        Some((writer, done, thread)) => (actor.with_stream_writer(writer, done), Some(thread)),
        None => (actor, None),
    };
    let actor_task = tokio::spawn(actor.run(actor_rx, completions_rx));

    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let local = listener.local_addr()?;

    let state = Arc::new(AppState {
        actor: actor_handle,
        store: store_handle,
        metrics,
        admin_key: server.admin_key.clone(),
        public_info: server.public_info,
        max_admin_body: server.max_admin_body,
        ready: AtomicBool::new(true),
        broker: cluster.as_ref().map(|l| (l.up.clone(), l.url.clone())),
        store_health,
        next_conn: AtomicU64::new(1),
        ws,
        ws_tasks: TaskTracker::new(),
        hard_stop: CancellationToken::new(),
        ws_routes,
        resources,
        test: test_shared,
        memory_store: server.store == StoreKind::Memory,
    });
    let stop_accepting = CancellationToken::new();
    let http_shutdown = CancellationToken::new();
    let http_tasks = TaskTracker::new();
    let accept_task = tokio::spawn(accept_loop(
        listener,
        tls.clone(),
        state.clone(),
        stop_accepting.clone(),
        http_shutdown.clone(),
        http_tasks.clone(),
    ));
    Ok(RunningServer {
        addr: local,
        tls: tls.is_some(),
        store_kind: server.store.clone(),
        state,
        stop_accepting,
        http_shutdown,
        http_tasks,
        accept_task,
        actor_task,
        store_worker,
        stream_thread,
        cluster,
        shutdown_timeout: Duration::from_millis(server.shutdown_timeout_ms),
    })
}

/// What the accept loop does after failed `accept`s: pause (from ACCEPT_BACKOFF_MIN,
/// doubling per failure in a row, up to ACCEPT_BACKOFF_MAX) and log at most once per
/// ACCEPT_LOG_INTERVAL, with the number of failures since the last log.
#[derive(Debug)]
struct AcceptBackoff {
    pause: Duration,
    failures: u64,
    last_log: Option<Instant>,
}

impl Default for AcceptBackoff {
    fn default() -> Self {
        AcceptBackoff {
            pause: ACCEPT_BACKOFF_MIN,
            failures: 0,
            last_log: None,
        }
    }
}

impl AcceptBackoff {
    /// An `accept` succeeded: the next failure pauses the minimum again.
    fn succeeded(&mut self) {
        self.pause = ACCEPT_BACKOFF_MIN;
    }

    /// An `accept` failed at `now`: how long to pause, and `Some(failures)` when this
    /// failure is to be logged (the count includes the unlogged ones since the last log).
    fn failed(&mut self, now: Instant) -> (Duration, Option<u64>) {
        self.failures += 1;
        let log = self
            .last_log
            .is_none_or(|t| now.duration_since(t) >= ACCEPT_LOG_INTERVAL)
            .then(|| {
                self.last_log = Some(now);
                std::mem::take(&mut self.failures)
            });
        let pause = self.pause;
        self.pause = (self.pause * 2).min(ACCEPT_BACKOFF_MAX);
        (pause, log)
    }
}

/// Open `DATA_DIR/streams.db`, restore the channel streams it holds into `engine` and
/// start the thread that keeps them (see [`crate::streams`]).
fn open_streams(
    engine: &mut Engine,
    data_dir: &std::path::Path,
) -> anyhow::Result<(
    crate::streams::StreamWriter,
    mpsc::UnboundedReceiver<crate::streams::WriteDone>,
    crate::streams::StreamWriterThread,
)> {
    let db = crate::streams::StreamDb::open_dir(data_dir)?;
    let pairs = db.load().with_context(|| {
        format!(
            "cannot read channel history from {}",
            data_dir.join(crate::streams::STREAMS_FILE).display()
        )
    })?;
    let unreadable = engine.restore_streams(&pairs);
    if !unreadable.is_empty() {
        tracing::warn!(keys = ?unreadable, "skipped unreadable channel-history entries");
    }
    tracing::info!(
        entries = pairs.len() - unreadable.len(),
        "channel history restored"
    );
    let (done_tx, done_rx) = mpsc::unbounded_channel();
    let (writer, thread) = crate::streams::StreamWriter::spawn(db, done_tx)
        .context("cannot start the stream writer thread")?;
    Ok((writer, done_rx, thread))
}

async fn accept_loop(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    state: Arc<AppState>,
    stop: CancellationToken,
    http_shutdown: CancellationToken,
    tasks: TaskTracker,
) {
    let mut backoff = AcceptBackoff::default();
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            () = stop.cancelled() => break,
        };
        let (tcp, peer) = match accepted {
            Ok(v) => {
                backoff.succeeded();
                v
            }
            Err(e) => {
                // Usually EMFILE/ENFILE: back off instead of spinning, log once per
                // ACCEPT_LOG_INTERVAL.
                state.metrics.accept_errors.inc();
                let (pause, log) = backoff.failed(Instant::now());
                if let Some(failures) = log {
                    tracing::warn!(
                        error = %e,
                        failures,
                        "accept failed; backing off (logged at most every {} s)",
                        ACCEPT_LOG_INTERVAL.as_secs()
                    );
                }
                tokio::select! {
                    () = tokio::time::sleep(pause) => {}
                    () = stop.cancelled() => break,
                }
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let state = state.clone();
        let shutdown = http_shutdown.clone();
        match &tls {
            None => {
                tasks.spawn(serve_http(TokioIo::new(tcp), peer, state, shutdown));
            }
            Some(acceptor) => {
                let acceptor = acceptor.clone();
                tasks.spawn(async move {
                    match tokio::time::timeout(HEADER_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(stream)) => {
                            serve_http(TokioIo::new(stream), peer, state, shutdown).await
                        }
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        }
    }
}

/// Serve HTTP/1.1 on one socket until it closes, upgrades, or the server shuts down.
async fn serve_http<I>(
    io: TokioIo<I>,
    peer: SocketAddr,
    state: Arc<AppState>,
    shutdown: CancellationToken,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let svc = service_fn(move |req| crate::http::serve(state.clone(), req, peer));
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .serve_connection(io, svc)
        .with_upgrades();
    tokio::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => {
            if let Err(e) = r {
                tracing::debug!(%peer, error = %e, "HTTP connection ended with an error");
            }
        }
        () = shutdown.cancelled() => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(Duration::from_secs(1), conn).await;
        }
    }
}

impl RunningServer {
    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Whether it serves `wss://`.
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// The store in use.
    pub fn store_kind(&self) -> StoreKind {
        self.store_kind.clone()
    }

    /// Run a server-API command from Rust: publish into a channel's stream
    /// (`Command::Publish`, whose result carries the publication's `offset` and `epoch`),
    /// read its history (`Command::History`) and presence (`Command::Presence`,
    /// `Command::PresenceStats`), broadcast, disconnect, write records, ... The result is
    /// the command's JSON (see PROTOCOL.md §18); `UNAVAILABLE` once the server stopped.
    pub async fn command(
        &self,
        command: engine::Command,
    ) -> Result<serde_json::Value, engine::CommandError> {
        match self.state.actor.command(command).await {
            Some(r) => r,
            None => Err(engine::CommandError {
                code: engine::ErrorCode::Unavailable,
                message: "the server has stopped".into(),
                store: None,
            }),
        }
    }

    /// The server's command handle: broadcast, send, join and leave rooms, disconnect
    /// from Rust code (the server API without HTTP).
    pub fn handle(&self) -> crate::handlers::ServerHandle {
        crate::handlers::ServerHandle::new(self.state.actor.clone())
    }

    /// Graceful shutdown: `/readyz` turns 503, the engine refuses new upgrades and closes
    /// every connection with 1001, queued frames are written, then the listener, the
    /// actor and the store stop. Sockets still open at the deadline are dropped.
    pub async fn shutdown(self) {
        let started = tokio::time::Instant::now();
        let deadline = started + self.shutdown_timeout;
        let state = self.state;
        state.ready.store(false, Ordering::Release);
        tracing::info!("shutting down: draining connections");
        match tokio::time::timeout_at(
            deadline,
            state.actor.command(Command::Shutdown { reason: None }),
        )
        .await
        {
            Ok(Some(Ok(v))) => {
                tracing::info!(closing = %v["closing"], "closing connections with 1001")
            }
            _ => tracing::warn!("the engine did not answer the shutdown command"),
        }
        state.ws_tasks.close();
        if tokio::time::timeout_at(deadline, state.ws_tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                left = state.ws_tasks.len(),
                "shutdown deadline passed; dropping the remaining sockets"
            );
        }
        state.hard_stop.cancel();
        self.stop_accepting.cancel();
        let _ = self.accept_task.await;
        self.http_shutdown.cancel();
        self.http_tasks.close();
        let http_deadline = deadline.max(tokio::time::Instant::now() + Duration::from_millis(200));
        let _ = tokio::time::timeout_at(http_deadline, self.http_tasks.wait()).await;
        let _ = tokio::time::timeout(Duration::from_secs(1), state.ws_tasks.wait()).await;
        let _ = state.actor.send(ToActor::Stop).await;
        let _ = self.actor_task.await;
        if let Some(link) = self.cluster {
            link.stop().await;
        }
        // The actor dropped its writer: the thread writes what is queued and exits.
        if let Some(thread) = self.stream_thread {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
        // Finish queued store work and close the database (checkpointing the WAL).
        state.store.stop();
        let worker = self.store_worker;
        let _ = tokio::task::spawn_blocking(move || worker.join()).await;
        tracing::info!(
            elapsed_ms = started.elapsed().as_millis() as u64,
            "shutdown complete"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_of_accept_failures_is_logged_once_per_interval_and_backs_off() {
        let mut b = AcceptBackoff::default();
        let t0 = Instant::now();
        // 1 000 failures within one interval (EMFILE while the fds are exhausted).
        let mut logs = Vec::new();
        let mut pauses = Vec::new();
        for i in 0..1000u32 {
            let (pause, log) = b.failed(t0 + Duration::from_millis(u64::from(i)));
            pauses.push(pause);
            logs.extend(log);
        }
        assert_eq!(logs, vec![1], "logged once, for the first failure");
        assert_eq!(pauses[0], ACCEPT_BACKOFF_MIN);
        assert_eq!(pauses[1], ACCEPT_BACKOFF_MIN * 2);
        assert!(
            pauses.windows(2).all(|w| w[1] >= w[0]),
            "never shorter in a row"
        );
        assert_eq!(*pauses.last().unwrap(), ACCEPT_BACKOFF_MAX, "capped");
        // The next interval logs again, with the failures it did not log.
        let (_, log) = b.failed(t0 + ACCEPT_LOG_INTERVAL);
        assert_eq!(log, Some(1000));
        let (_, log) = b.failed(t0 + ACCEPT_LOG_INTERVAL + Duration::from_secs(1));
        assert_eq!(log, None);
        // A success resets the pause, not the log interval.
        b.succeeded();
        let (pause, log) = b.failed(t0 + ACCEPT_LOG_INTERVAL + Duration::from_secs(2));
        assert_eq!((pause, log), (ACCEPT_BACKOFF_MIN, None));
    }
}
