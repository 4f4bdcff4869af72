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

use engine::metrics::prometheus as prom;

type Labels = Vec<(String, String)>;

/// Every series the server exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    last: Mutex<engine::metrics::Metrics>,

    /// The engine's unlabelled series ([`engine::metrics::prometheus::SERIES`], in order).
    engine_series: Vec<EngineSeries>,
    /// The engine's labelled families ([`engine::metrics::prometheus::FAMILIES`], in order).
    engine_families: Vec<Family<Labels, Counter>>,

    /// Seconds spent in one `Engine::handle` call plus executing its actions.
    pub handle_latency: Histogram,
    /// Seconds one store operation took on the store thread.
    pub store_latency: Histogram,
    /// Frames that did not fit a connection's outbound queue (the engine was told).
    pub outbound_overflow: Counter,
    /// Actor turns ended early, with messages waiting, because they had queued
    /// [`crate::actor::TURN_FRAMES`] frames.
    pub turns_split: Counter,
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
            engine_series: prom::SERIES
                .iter()
                .map(|series| match series.kind {
                    prom::Kind::Counter => EngineSeries::Counter(Counter::default()),
                    prom::Kind::Gauge => EngineSeries::Gauge(Gauge::default()),
                })
                .collect(),
            engine_families: prom::FAMILIES.iter().map(|_| Family::default()).collect(),
            // 1 µs .. ~16 s
            handle_latency: Histogram::new(exponential_buckets(1e-6, 2.0, 24)),
            store_latency: Histogram::new(exponential_buckets(1e-5, 2.0, 22)),
            outbound_overflow: Counter::default(),
            turns_split: Counter::default(),
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
        // The engine's series: names and help texts from the engine, as on every host.
        for (series, metric) in prom::SERIES.iter().zip(&m.engine_series) {
            match metric {
                EngineSeries::Counter(c) => r.register(series.name, series.help, c.clone()),
                EngineSeries::Gauge(g) => r.register(series.name, series.help, g.clone()),
            }
        }
        for (family, metric) in prom::FAMILIES.iter().zip(&m.engine_families) {
            r.register(family.name, family.help, metric.clone());
        }
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
            "turns_split",
            format!(
                "Engine turns that ended early to write a burst out ({} frames queued, more waiting)",
                crate::actor::TURN_FRAMES
            ),
            m.turns_split.clone(),
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
        for (series, metric) in prom::SERIES.iter().zip(&self.engine_series) {
            let (new, old) = ((series.value)(now), (series.value)(&last));
            match metric {
                EngineSeries::Counter(c) => {
                    c.inc_by(new.saturating_sub(old));
                }
                EngineSeries::Gauge(g) => {
                    g.set(i64::try_from(new).unwrap_or(i64::MAX));
                }
            }
        }
        for (family, metric) in prom::FAMILIES.iter().zip(&self.engine_families) {
            let old: BTreeMap<String, u64> = (family.values)(&last).into_iter().collect();
            for (key, n) in (family.values)(now) {
                let before = old.get(&key).copied().unwrap_or(0);
                metric
                    .get_or_create(&vec![(family.label.to_string(), key)])
                    .inc_by(n.saturating_sub(before));
            }
        }
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

/// One engine series as registered.
#[derive(Debug)]
enum EngineSeries {
    Counter(Counter),
    Gauge(Gauge),
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

    #[test]
    fn exports_every_engine_series_with_the_engines_name_and_kind() {
        let m = Metrics::new();
        let mut snap = engine::metrics::Metrics::default();
        // (A family is exposed once it has a member.)
        snap.errors_by_code.insert(engine::ErrorCode::Forbidden, 1);
        snap.rejected_upgrades.insert(401, 1);
        snap.messages_received_by_type.insert("ping", 1);
        snap.messages_sent_by_type.insert("pong", 1);
        snap.key_fetches.insert("https://id.example".into(), 1);
        snap.key_fetch_failures
            .insert("https://id.example".into(), 1);
        m.sync(&snap);
        let text = m.render();
        for s in prom::SERIES {
            let kind = match s.kind {
                prom::Kind::Counter => "counter",
                prom::Kind::Gauge => "gauge",
            };
            let line = format!(
                "# HELP switchboard_{0} {1}.\n# TYPE switchboard_{0} {kind}\n",
                s.name, s.help
            );
            assert!(text.contains(&line), "missing {line:?} in\n{text}");
        }
        for f in prom::FAMILIES {
            let line = format!(
                "# HELP switchboard_{0} {1}.\n# TYPE switchboard_{0} counter\n",
                f.name, f.help
            );
            assert!(text.contains(&line), "missing {line:?} in\n{text}");
        }
        assert!(
            text.contains("switchboard_errors_total{code=\"FORBIDDEN\"} 1"),
            "{text}"
        );
    }
}
