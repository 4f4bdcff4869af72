//! Cluster link: several nodes share one Redis (`--broker redis://HOST:PORT[/DB]`).
//!
//! The engine decides what the other nodes must know ([`engine::cluster`]); this task
//! carries it. Messages go through Redis pub/sub; the channel streams (history, offsets,
//! epochs) are the only keys stored ([`crate::cluster_streams`]):
//!
//! | channel | payload |
//! |---|---|
//! | `switchboard:{db}:bus` | one [`ClusterMessage`] as JSON (every node subscribes) |
//! | `switchboard:{db}:hb` | a node id, published by that node every [`HEARTBEAT`] |
//!
//! Redis pub/sub ignores the database number, so it is part of the channel names: nodes
//! on `/0` and `/1` of one server form two clusters.
//!
//! A node that sends no heartbeat for [`NODE_TTL`] is gone: its clients and channel
//! members are forgotten ([`ClusterEvent::NodeGone`]). While Redis is unreachable the
//! link reports [`ClusterEvent::Disconnected`] (publications are refused with
//! `UNAVAILABLE`, `/readyz` answers 503) and reconnects every [`RETRY`]; once back, it
//! reports [`ClusterEvent::Connected`] (the engine announces itself and every node
//! answers with its snapshot).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use engine::cluster::{ClusterEvent, ClusterMessage};
use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::cluster_streams::Scripts;
use crate::mailbox::{ActorHandle, ToActor};

/// How often a node publishes its heartbeat.
pub const HEARTBEAT: Duration = Duration::from_secs(1);

/// How long a node may stay silent before the others forget its clients and members.
pub const NODE_TTL: Duration = Duration::from_secs(5);

/// Pause between reconnection attempts while Redis is unreachable.
pub const RETRY: Duration = Duration::from_millis(500);

/// Most cluster messages published in one pipeline.
pub const BATCH: usize = 256;

/// Longest wait for one Redis connection attempt or command.
pub const IO_TIMEOUT: Duration = Duration::from_secs(2);

/// A running cluster link.
#[derive(Debug)]
pub struct ClusterLink {
    /// This node's id.
    pub node: String,
    /// Whether Redis is reachable (read by `/readyz`).
    pub up: Arc<AtomicBool>,
    /// The broker URL with any password removed (for logs and `/readyz`).
    pub url: String,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl ClusterLink {
    /// Stop the link (after the actor stopped).
    pub async fn stop(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}

/// Why a broker URL is refused.
#[derive(Debug)]
pub struct BrokerUrlError {
    url: String,
    problem: String,
}

impl std::fmt::Display for BrokerUrlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "broker `{}`: {} (expected redis://HOST:PORT[/DB])",
            self.url, self.problem
        )
    }
}

impl std::error::Error for BrokerUrlError {}

/// Check a broker URL without connecting: `redis://HOST[:PORT][/DB]` (`rediss://` for
/// TLS is not supported yet).
pub fn parse_url(url: &str) -> Result<redis::Client, BrokerUrlError> {
    let bad = |problem: String| BrokerUrlError {
        url: redact(url),
        problem,
    };
    if !url.starts_with("redis://") {
        return Err(bad("only redis:// URLs are supported".into()));
    }
    redis::Client::open(url).map_err(|e| bad(e.to_string()))
}

/// `url` without its password.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://***{}", &url[..s], &url[at..]),
        _ => url.to_string(),
    }
}

/// A fresh node id: 16 hex characters from the OS generator.
pub fn node_id() -> String {
    let mut b = [0u8; 8];
    if getrandom::fill(&mut b).is_err() {
        // Fall back on the clock and the process id (unique enough among a few nodes).
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        b = (t ^ (u64::from(std::process::id()) << 32)).to_le_bytes();
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Start the link: connect to Redis in the background, report to `actor`, publish what
/// arrives on `outbox`.
pub fn spawn(
    client: redis::Client,
    url: &str,
    node: String,
    actor: ActorHandle,
    outbox: mpsc::UnboundedReceiver<ClusterMessage>,
    metrics: Arc<crate::metrics::Metrics>,
) -> ClusterLink {
    let up = Arc::new(AtomicBool::new(false));
    let stop = CancellationToken::new();
    let db = client.get_connection_info().redis_settings().db();
    let url = redact(url);
    let link = Link {
        client,
        node: node.clone(),
        bus: format!("switchboard:{db}:bus"),
        hb: format!("switchboard:{db}:hb"),
        actor,
        outbox,
        up: up.clone(),
        seen: HashMap::new(),
        metrics,
    };
    let task = tokio::spawn(link.run(stop.clone()));
    ClusterLink {
        node,
        up,
        url,
        stop,
        task,
    }
}

struct Link {
    client: redis::Client,
    node: String,
    bus: String,
    hb: String,
    actor: ActorHandle,
    outbox: mpsc::UnboundedReceiver<ClusterMessage>,
    up: Arc<AtomicBool>,
    /// Other nodes: when their last heartbeat arrived.
    seen: HashMap<String, Instant>,
    metrics: Arc<crate::metrics::Metrics>,
}

impl Link {
    async fn run(mut self, stop: CancellationToken) {
        let mut logged_down = false;
        loop {
            let session = tokio::select! {
                () = stop.cancelled() => return,
                s = self.connect() => s,
            };
            match session {
                Ok((conn, stream, scripts)) => {
                    logged_down = false;
                    tracing::info!(node = %self.node, "cluster broker connected");
                    self.set_up(true).await;
                    let why = tokio::select! {
                        () = stop.cancelled() => return,
                        why = self.serve(conn, stream, scripts) => why,
                    };
                    tracing::error!(node = %self.node, "cluster broker lost: {why}; reconnecting every {} ms", RETRY.as_millis());
                    self.set_up(false).await;
                }
                Err(e) => {
                    if !logged_down {
                        tracing::error!(node = %self.node, "cluster broker unreachable: {e}; retrying every {} ms", RETRY.as_millis());
                        logged_down = true;
                    }
                }
            }
            // Messages the engine queued before it learnt of the outage cannot be sent.
            let mut lost = 0;
            while self.outbox.try_recv().is_ok() {
                lost += 1;
            }
            if lost > 0 {
                self.metrics.cluster_lost.inc_by(lost);
                tracing::warn!(lost, "cluster messages not sent: the broker is unreachable");
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(RETRY) => {}
            }
        }
    }

    async fn set_up(&mut self, up: bool) {
        self.up.store(up, Ordering::Release);
        self.metrics.cluster_broker_up.set(i64::from(up));
        let event = if up {
            // Nodes known before the outage get a full TTL to show up again.
            let now = Instant::now();
            self.seen.values_mut().for_each(|t| *t = now);
            ClusterEvent::Connected
        } else {
            ClusterEvent::Disconnected
        };
        let _ = self.actor.send(ToActor::Cluster { event }).await;
    }

    async fn connect(
        &self,
    ) -> Result<
        (
            redis::aio::MultiplexedConnection,
            redis::aio::PubSubStream,
            Scripts,
        ),
        String,
    > {
        let attempt = async {
            let mut conn = self.client.get_multiplexed_async_connection().await?;
            let scripts = crate::cluster_streams::load(&mut conn).await?;
            let mut pubsub = self.client.get_async_pubsub().await?;
            pubsub.subscribe(&self.bus).await?;
            pubsub.subscribe(&self.hb).await?;
            Ok::<_, redis::RedisError>((conn, pubsub.into_on_message(), scripts))
        };
        match tokio::time::timeout(IO_TIMEOUT, attempt).await {
            Ok(Ok(pair)) => Ok(pair),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("no answer within {} ms", IO_TIMEOUT.as_millis())),
        }
    }

    async fn publish(
        &self,
        conn: &mut redis::aio::MultiplexedConnection,
        channel: &str,
        payload: &str,
    ) -> Result<(), String> {
        let cmd = redis::cmd("PUBLISH").arg(channel).arg(payload).to_owned();
        match tokio::time::timeout(IO_TIMEOUT, cmd.query_async::<i64>(conn)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(format!("PUBLISH failed: {e}")),
            Err(_) => Err(format!(
                "PUBLISH had no answer within {} ms",
                IO_TIMEOUT.as_millis()
            )),
        }
    }

    /// Carry `batch` in order: bus messages and stream appends in pipelines, stream
    /// reads one by one between them (their answers go to the engine).
    async fn carry_batch(
        &self,
        conn: &mut redis::aio::MultiplexedConnection,
        scripts: &Scripts,
        batch: Vec<ClusterMessage>,
    ) -> Result<(), String> {
        let mut pipe = redis::pipe();
        let mut queued = 0;
        for m in batch {
            match m {
                ClusterMessage::Fetch {
                    request, stream, ..
                } => {
                    if queued > 0 {
                        self.run_pipe(conn, &pipe).await?;
                        pipe = redis::pipe();
                        queued = 0;
                    }
                    let read = crate::cluster_streams::fetch(conn, scripts, &stream);
                    let result = match tokio::time::timeout(IO_TIMEOUT, read).await {
                        Ok(Ok(result)) => result,
                        // A lost connection, or a Redis that forgot the scripts (restarted
                        // under us, `SCRIPT FLUSH`): reconnect, which loads them again.
                        Ok(Err(e))
                            if e.is_io_error()
                                || e.is_connection_dropped()
                                || e.kind()
                                    == redis::ErrorKind::Server(
                                        redis::ServerErrorKind::NoScript,
                                    ) =>
                        {
                            return Err(format!("stream read failed: {e}"))
                        }
                        Ok(Err(e)) => Err(e.to_string()),
                        Err(_) => {
                            return Err(format!(
                                "stream read had no answer within {} ms",
                                IO_TIMEOUT.as_millis()
                            ))
                        }
                    };
                    if let Err(e) = &result {
                        tracing::error!(stream = %stream.key.replace('\0', "/"), "cluster stream read failed: {e}");
                    }
                    self.metrics
                        .cluster_sent
                        .get_or_create(&kind_label_of("fetch"))
                        .inc();
                    let event = ClusterEvent::Fetched { request, result };
                    let _ = self.actor.send(ToActor::Cluster { event }).await;
                }
                ClusterMessage::Append {
                    stream,
                    publication,
                    ..
                } => {
                    let added = crate::cluster_streams::add_append(
                        &mut pipe,
                        scripts,
                        &self.bus,
                        &stream,
                        publication,
                    );
                    match added {
                        Ok(()) => queued += 1,
                        Err(e) => tracing::error!("stream publication not encodable: {e}"),
                    }
                    self.metrics
                        .cluster_sent
                        .get_or_create(&kind_label_of("append"))
                        .inc();
                }
                other => {
                    match serde_json::to_string(&other) {
                        Ok(payload) => {
                            pipe.cmd("PUBLISH").arg(&self.bus).arg(payload).ignore();
                            queued += 1;
                        }
                        Err(e) => tracing::error!(
                            kind = kind_of(&other),
                            "cluster message not encodable: {e}"
                        ),
                    }
                    self.metrics
                        .cluster_sent
                        .get_or_create(&kind_label(&other))
                        .inc();
                }
            }
        }
        if queued > 0 {
            self.run_pipe(conn, &pipe).await?;
        }
        Ok(())
    }

    async fn run_pipe(
        &self,
        conn: &mut redis::aio::MultiplexedConnection,
        pipe: &redis::Pipeline,
    ) -> Result<(), String> {
        match tokio::time::timeout(IO_TIMEOUT, pipe.query_async::<()>(conn)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(format!("PUBLISH failed: {e}")),
            Err(_) => Err(format!(
                "PUBLISH had no answer within {} ms",
                IO_TIMEOUT.as_millis()
            )),
        }
    }

    /// Carry messages both ways until the connection fails; returns why.
    async fn serve(
        &mut self,
        mut conn: redis::aio::MultiplexedConnection,
        mut stream: redis::aio::PubSubStream,
        scripts: Scripts,
    ) -> String {
        let mut beat = tokio::time::interval(HEARTBEAT);
        beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                msg = stream.next() => {
                    let Some(msg) = msg else {
                        return "the subscription connection closed".into();
                    };
                    self.received(&msg).await;
                }
                out = self.outbox.recv() => {
                    let Some(first) = out else {
                        return "the engine stopped".into();
                    };
                    // Everything already queued goes in one pipeline: one round trip
                    // per batch, in order, so the link keeps up with the engine.
                    let mut batch = vec![first];
                    while batch.len() < BATCH {
                        match self.outbox.try_recv() {
                            Ok(m) => batch.push(m),
                            Err(_) => break,
                        }
                    }
                    let n = batch.len();
                    if let Err(e) = self.carry_batch(&mut conn, &scripts, batch).await {
                        self.metrics.cluster_lost.inc_by(n as u64);
                        tracing::warn!(messages = n, "cluster messages lost: {e}");
                        return e;
                    }
                }
                _ = beat.tick() => {
                    let (hb, node) = (self.hb.clone(), self.node.clone());
                    if let Err(e) = self.publish(&mut conn, &hb, &node).await {
                        return e;
                    }
                    self.expire().await;
                }
            }
        }
    }

    async fn received(&mut self, msg: &redis::Msg) {
        let payload = msg.get_payload_bytes();
        if msg.get_channel_name() == self.hb {
            let node = String::from_utf8_lossy(payload).into_owned();
            if node != self.node {
                self.seen.insert(node, Instant::now());
            }
            return;
        }
        match serde_json::from_slice::<ClusterMessage>(payload) {
            // Ordered stream publications come back to their node too.
            Ok(m) if m.node() == self.node && !matches!(m, ClusterMessage::Sequenced(_)) => {}
            Ok(m) => {
                self.metrics
                    .cluster_received
                    .get_or_create(&kind_label(&m))
                    .inc();
                if m.node() != self.node {
                    self.seen
                        .entry(m.node().to_string())
                        .or_insert_with(Instant::now);
                }
                let event = ClusterEvent::Message(Box::new(m));
                let _ = self.actor.send(ToActor::Cluster { event }).await;
            }
            Err(e) => tracing::warn!("unreadable cluster message ignored: {e}"),
        }
    }

    /// Report nodes silent for longer than [`NODE_TTL`].
    async fn expire(&mut self) {
        let now = Instant::now();
        let gone: Vec<String> = self
            .seen
            .iter()
            .filter(|(_, t)| now.duration_since(**t) > NODE_TTL)
            .map(|(n, _)| n.clone())
            .collect();
        for node in gone {
            self.seen.remove(&node);
            tracing::warn!(%node, "cluster node silent for {} s: forgetting its clients and members", NODE_TTL.as_secs());
            let event = ClusterEvent::NodeGone { node };
            let _ = self.actor.send(ToActor::Cluster { event }).await;
        }
    }
}

fn kind_label(m: &ClusterMessage) -> Vec<(String, String)> {
    kind_label_of(kind_of(m))
}

fn kind_label_of(kind: &str) -> Vec<(String, String)> {
    vec![("kind".to_string(), kind.to_string())]
}

fn kind_of(m: &ClusterMessage) -> &'static str {
    match m {
        ClusterMessage::Hello { .. } => "hello",
        ClusterMessage::Snapshot { .. } => "snapshot",
        ClusterMessage::Publish { .. } => "publish",
        ClusterMessage::Direct { .. } => "direct",
        ClusterMessage::Change { .. } => "change",
        ClusterMessage::ClientUp { .. } => "clientUp",
        ClusterMessage::ClientDown { .. } => "clientDown",
        ClusterMessage::Command { .. } => "command",
        ClusterMessage::Join { .. } => "join",
        ClusterMessage::Leave { .. } => "leave",
        ClusterMessage::RoomJoin { .. } => "roomJoin",
        ClusterMessage::RoomLeave { .. } => "roomLeave",
        ClusterMessage::RoomMessage { .. } => "roomMessage",
        ClusterMessage::Append { .. } => "append",
        ClusterMessage::Sequenced(_) => "sequenced",
        ClusterMessage::Fetch { .. } => "fetch",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_urls_other_than_redis_are_refused_with_the_expected_form() {
        let e = parse_url("postgres://x").unwrap_err().to_string();
        assert!(e.contains("redis://HOST:PORT[/DB]"), "{e}");
        assert!(parse_url("redis://127.0.0.1:6379/2").is_ok());
    }

    #[test]
    fn passwords_are_redacted_from_broker_urls() {
        assert_eq!(redact("redis://:pw@h:1/0"), "redis://***@h:1/0");
        assert_eq!(redact("redis://h:1"), "redis://h:1");
    }

    #[test]
    fn node_ids_are_sixteen_hex_characters_and_differ() {
        let (a, b) = (node_id(), node_id());
        assert_eq!(a.len(), 16);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
