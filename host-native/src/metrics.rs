//! Prometheus metrics (`GET /metrics`), built with `prometheus-client`.
//!
//! Two kinds of series:
//! - host series the host observes itself: engine handling latency, store latency,
//!   outbound queue overflows, oversize-frame closes, admin requests;
//! - engine counters mirrored from [`engine::metrics::Metrics`]: at each scrape the
//!   actor hands over a snapshot and the difference since the previous scrape is
//!   added to the Prometheus counters (gauges are set).

use std::collections::BTreeMap;
use std::sync::Mutex;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

type Labels = Vec<(String, String)>;

/// Every series the server exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    last: Mutex<engine::metrics::Metrics>,

    connections_open: Gauge,
    connections: Counter,
    disconnections: Counter,
    rejected_upgrades: Family<Labels, Counter>,
    messages_in: Counter,
    messages_in_by_type: Family<Labels, Counter>,
    messages_out: Counter,
    messages_out_by_type: Family<Labels, Counter>,
    fanout_deliveries: Counter,
    broadcasts: Counter,
    dropped_slow_consumer: Counter,
    closed_slow_consumer: Counter,
    errors: Family<Labels, Counter>,
    pending_calls: Gauge,
    timed_out_calls: Counter,
    late_completions: Counter,
    heartbeat_timeouts: Counter,
    key_fetches: Family<Labels, Counter>,
    key_fetch_failures: Family<Labels, Counter>,
    unknown_kid_fetches: Counter,
    token_refreshes: Counter,
    token_refresh_failures: Counter,
    token_expirations: Counter,

    /// Seconds spent in one `Engine::handle` call plus executing its actions.
    pub handle_latency: Histogram,
    /// Seconds one store operation took on the store thread.
    pub store_latency: Histogram,
    /// Frames that did not fit a connection's outbound queue (the engine was told).
    pub outbound_overflow: Counter,
    /// Channel-history batches that could not be written to `streams.db`.
    pub stream_write_failures: Counter,
    /// Connections closed with 1009 because a frame exceeded `maxPayloadSize`.
    pub oversize_closes: Counter,
    /// Connections closed with 1002/1007 for WebSocket protocol violations.
    pub protocol_violation_closes: Counter,
    /// Failed `accept` calls (usually file descriptors exhausted).
    pub accept_errors: Counter,
    /// Admin API requests by endpoint and HTTP status.
    pub admin_requests: Family<Labels, Counter>,
    /// WebSocket sockets the host holds open (including ones being closed).
    pub sockets_open: Gauge,
    /// With `--broker`: 1 while Redis is reachable, else 0.
    pub cluster_broker_up: Gauge,
    /// Cluster messages published to Redis, by kind.
    pub cluster_sent: Family<Labels, Counter>,
    /// Cluster messages received from other nodes, by kind.
    pub cluster_received: Family<Labels, Counter>,
    /// Cluster messages that could not be published (Redis failed under them).
    pub cluster_lost: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Create and register every series.
    pub fn new() -> Self {
        let mut r = Registry::with_prefix("switchboard");
        let m = Metrics {
            last: Mutex::new(engine::metrics::Metrics::default()),
            connections_open: Gauge::default(),
            connections: Counter::default(),
            disconnections: Counter::default(),
            rejected_upgrades: Family::default(),
            messages_in: Counter::default(),
            messages_in_by_type: Family::default(),
            messages_out: Counter::default(),
            messages_out_by_type: Family::default(),
            fanout_deliveries: Counter::default(),
            broadcasts: Counter::default(),
            dropped_slow_consumer: Counter::default(),
            closed_slow_consumer: Counter::default(),
            errors: Family::default(),
            pending_calls: Gauge::default(),
            timed_out_calls: Counter::default(),
            late_completions: Counter::default(),
            heartbeat_timeouts: Counter::default(),
            key_fetches: Family::default(),
            key_fetch_failures: Family::default(),
            unknown_kid_fetches: Counter::default(),
            token_refreshes: Counter::default(),
            token_refresh_failures: Counter::default(),
            token_expirations: Counter::default(),
            // 1 µs .. ~16 s
            handle_latency: Histogram::new(exponential_buckets(1e-6, 2.0, 24)),
            store_latency: Histogram::new(exponential_buckets(1e-5, 2.0, 22)),
            outbound_overflow: Counter::default(),
            stream_write_failures: Counter::default(),
            oversize_closes: Counter::default(),
            protocol_violation_closes: Counter::default(),
            accept_errors: Counter::default(),
            admin_requests: Family::default(),
            sockets_open: Gauge::default(),
            cluster_broker_up: Gauge::default(),
            cluster_sent: Family::default(),
            cluster_received: Family::default(),
            cluster_lost: Counter::default(),
            registry: Registry::default(),
        };
        r.register(
            "connections_open",
            "Open WebSocket connections (engine view)",
            m.connections_open.clone(),
        );
        r.register(
            "connections",
            "WebSocket connections accepted",
            m.connections.clone(),
        );
        r.register(
            "disconnections",
            "WebSocket connections ended",
            m.disconnections.clone(),
        );
        r.register(
            "rejected_upgrades",
            "Upgrades rejected, by HTTP status",
            m.rejected_upgrades.clone(),
        );
        r.register(
            "messages_received",
            "Frames received",
            m.messages_in.clone(),
        );
        r.register(
            "messages_received_by_type",
            "Decoded client requests, by message type",
            m.messages_in_by_type.clone(),
        );
        r.register(
            "messages_sent",
            "Frames sent (each fan-out recipient counts)",
            m.messages_out.clone(),
        );
        r.register(
            "messages_sent_by_type",
            "Frames sent, by server message type (raw: verbatim server-API messages)",
            m.messages_out_by_type.clone(),
        );
        r.register(
            "fanout_deliveries",
            "Fan-out deliveries (events, channel, room and broadcast messages)",
            m.fanout_deliveries.clone(),
        );
        r.register("broadcasts", "Server-API broadcasts", m.broadcasts.clone());
        r.register(
            "dropped_slow_consumer",
            "Pushes skipped for slow consumers (drop policy)",
            m.dropped_slow_consumer.clone(),
        );
        r.register(
            "closed_slow_consumer",
            "Connections closed as slow consumers (close policy)",
            m.closed_slow_consumer.clone(),
        );
        r.register("errors", "Error frames sent, by code", m.errors.clone());
        r.register(
            "pending_host_calls",
            "Host calls (storage) in flight",
            m.pending_calls.clone(),
        );
        r.register(
            "timed_out_host_calls",
            "Host calls that missed their deadline",
            m.timed_out_calls.clone(),
        );
        r.register(
            "late_completions",
            "Host-call completions that arrived too late",
            m.late_completions.clone(),
        );
        r.register(
            "heartbeat_timeouts",
            "Connections closed for missing pongs",
            m.heartbeat_timeouts.clone(),
        );
        r.register(
            "key_fetches",
            "Key sets fetched and installed from remote key sources, by issuer",
            m.key_fetches.clone(),
        );
        r.register(
            "key_fetch_failures",
            "Failed key fetches (the last good keys stay in use), by issuer",
            m.key_fetch_failures.clone(),
        );
        r.register(
            "unknown_kid_fetches",
            "Key fetches started by a token with an unknown kid",
            m.unknown_kid_fetches.clone(),
        );
        r.register(
            "token_refreshes",
            "Refresh requests accepted",
            m.token_refreshes.clone(),
        );
        r.register(
            "token_refresh_failures",
            "Refresh requests refused",
            m.token_refresh_failures.clone(),
        );
        r.register(
            "token_expirations",
            "Connections closed with 4401 because their token expired",
            m.token_expirations.clone(),
        );
        r.register(
            "engine_handle_seconds",
            "Time to handle one input and execute its actions",
            m.handle_latency.clone(),
        );
        r.register(
            "store_operation_seconds",
            "Time of one storage operation",
            m.store_latency.clone(),
        );
        r.register(
            "outbound_queue_overflows",
            "Frames that found a connection's outbound queue full",
            m.outbound_overflow.clone(),
        );
        r.register(
            "stream_write_failures",
            "Channel-history batches that could not be written to streams.db",
            m.stream_write_failures.clone(),
        );
        r.register(
            "oversize_frame_closes",
            "Connections closed with 1009 for frames over maxPayloadSize",
            m.oversize_closes.clone(),
        );
        r.register(
            "protocol_violation_closes",
            "Connections closed with 1002 (framing violation) or 1007 (invalid UTF-8)",
            m.protocol_violation_closes.clone(),
        );
        r.register(
            "accept_errors",
            "Failed accept calls (usually file descriptors exhausted; the listener backs off)",
            m.accept_errors.clone(),
        );
        r.register(
            "admin_requests",
            "Admin API requests, by endpoint and status",
            m.admin_requests.clone(),
        );
        r.register(
            "sockets_open",
            "WebSocket sockets held by the host",
            m.sockets_open.clone(),
        );
        r.register(
            "cluster_broker_up",
            "With --broker: 1 while the Redis broker is reachable, else 0",
            m.cluster_broker_up.clone(),
        );
        r.register(
            "cluster_messages_sent",
            "Cluster messages published to the broker, by kind",
            m.cluster_sent.clone(),
        );
        r.register(
            "cluster_messages_received",
            "Cluster messages received from other nodes, by kind",
            m.cluster_received.clone(),
        );
        r.register(
            "cluster_messages_lost",
            "Cluster messages not published because the broker failed under them",
            m.cluster_lost.clone(),
        );
        Metrics { registry: r, ..m }
    }

    /// Bring the mirrored series up to date with an engine snapshot.
    pub fn sync(&self, now: &engine::metrics::Metrics) {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        let add = |c: &Counter, new: u64, old: u64| {
            c.inc_by(new.saturating_sub(old));
        };
        self.connections_open.set(now.current_connections as i64);
        self.pending_calls.set(now.pending_calls as i64);
        add(&self.connections, now.connections, last.connections);
        add(
            &self.disconnections,
            now.disconnections,
            last.disconnections,
        );
        add(
            &self.messages_in,
            now.messages_received,
            last.messages_received,
        );
        add(&self.messages_out, now.messages_sent, last.messages_sent);
        add(
            &self.fanout_deliveries,
            now.fanout_deliveries,
            last.fanout_deliveries,
        );
        add(&self.broadcasts, now.broadcasts, last.broadcasts);
        add(
            &self.dropped_slow_consumer,
            now.dropped_slow_consumer,
            last.dropped_slow_consumer,
        );
        add(
            &self.closed_slow_consumer,
            now.closed_slow_consumer,
            last.closed_slow_consumer,
        );
        add(
            &self.timed_out_calls,
            now.timed_out_calls,
            last.timed_out_calls,
        );
        add(
            &self.late_completions,
            now.late_completions,
            last.late_completions,
        );
        add(
            &self.heartbeat_timeouts,
            now.heartbeat_timeouts,
            last.heartbeat_timeouts,
        );
        for (counter, new, old) in [
            (
                &self.unknown_kid_fetches,
                now.unknown_kid_fetches,
                last.unknown_kid_fetches,
            ),
            (
                &self.token_refreshes,
                now.token_refreshes,
                last.token_refreshes,
            ),
            (
                &self.token_refresh_failures,
                now.token_refresh_failures,
                last.token_refresh_failures,
            ),
            (
                &self.token_expirations,
                now.token_expirations,
                last.token_expirations,
            ),
        ] {
            add(counter, new, old);
        }
        add_by_label(
            &self.key_fetches,
            "issuer",
            &now.key_fetches,
            &last.key_fetches,
            String::clone,
        );
        add_by_label(
            &self.key_fetch_failures,
            "issuer",
            &now.key_fetch_failures,
            &last.key_fetch_failures,
            String::clone,
        );
        add_by_label(
            &self.rejected_upgrades,
            "status",
            &now.rejected_upgrades,
            &last.rejected_upgrades,
            |status| status.to_string(),
        );
        add_by_label(
            &self.messages_in_by_type,
            "type",
            &now.messages_received_by_type,
            &last.messages_received_by_type,
            |ty| ty.to_string(),
        );
        add_by_label(
            &self.messages_out_by_type,
            "type",
            &now.messages_sent_by_type,
            &last.messages_sent_by_type,
            |ty| ty.to_string(),
        );
        add_by_label(
            &self.errors,
            "code",
            &now.errors_by_code,
            &last.errors_by_code,
            |code| code.as_str().to_string(),
        );
        *last = now.clone();
    }

    /// Count one admin request.
    pub fn admin_request(&self, endpoint: &str, status: u16) {
        self.admin_requests
            .get_or_create(&vec![
                ("endpoint".into(), endpoint.to_string()),
                ("status".into(), status.to_string()),
            ])
            .inc();
    }

    /// The Prometheus text exposition of every series.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(8 * 1024);
        // Writing to a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

/// Mirror one engine counter map into a labelled family: each key's increase since the
/// previous snapshot is added to the series `label="<key>"`.
fn add_by_label<K: Ord>(
    family: &Family<Labels, Counter>,
    label: &str,
    now: &BTreeMap<K, u64>,
    last: &BTreeMap<K, u64>,
    value: impl Fn(&K) -> String,
) {
    for (key, n) in now {
        let old = last.get(key).copied().unwrap_or(0);
        family
            .get_or_create(&vec![(label.to_string(), value(key))])
            .inc_by(n.saturating_sub(old));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirrors_engine_counters_as_deltas() {
        let m = Metrics::new();
        let mut snap = engine::metrics::Metrics {
            connections: 3,
            current_connections: 2,
            ..Default::default()
        };
        snap.messages_received_by_type.insert("ping", 4);
        snap.messages_sent_by_type.insert("pong", 1);
        m.sync(&snap);
        snap.connections = 5;
        snap.messages_sent_by_type.insert("pong", 3);
        m.sync(&snap);
        let text = m.render();
        assert!(text.contains("switchboard_connections_total 5"), "{text}");
        assert!(text.contains("switchboard_connections_open 2"), "{text}");
        assert!(
            text.contains("switchboard_messages_received_by_type_total{type=\"ping\"} 4"),
            "{text}"
        );
        assert!(
            text.contains("switchboard_messages_sent_by_type_total{type=\"pong\"} 3"),
            "{text}"
        );
        assert!(
            text.contains("switchboard_engine_handle_seconds_bucket"),
            "{text}"
        );
    }
}
