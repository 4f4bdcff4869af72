//! The engine counters as Prometheus series: one table of names, kinds, help texts and
//! labels that every host exports, so dashboards work the same on every host.
//!
//! The native host registers these series with its Prometheus registry (and adds its
//! own: latencies, queues, the cluster); the JS hosts render them with [`render`] (and
//! append their socket-level series). Names get the `switchboard_` prefix, counters the
//! `_total` suffix.

use std::fmt::Write;

use super::Metrics;

/// A counter only grows; a gauge is a level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Monotonic (`_total`).
    Counter,
    /// A current value.
    Gauge,
}

/// One unlabelled series.
#[derive(Debug, Clone, Copy)]
pub struct Series {
    /// Name without the `switchboard_` prefix and `_total` suffix.
    pub name: &'static str,
    /// The `# HELP` text.
    pub help: &'static str,
    /// Counter or gauge.
    pub kind: Kind,
    /// Its value in a snapshot.
    pub value: fn(&Metrics) -> u64,
}

/// One labelled counter family (one label).
#[derive(Debug, Clone, Copy)]
pub struct Family {
    /// Name without the `switchboard_` prefix and `_total` suffix.
    pub name: &'static str,
    /// The `# HELP` text.
    pub help: &'static str,
    /// The label's name.
    pub label: &'static str,
    /// `(label value, count)` pairs in a snapshot.
    pub values: fn(&Metrics) -> Vec<(String, u64)>,
}

const fn counter(name: &'static str, help: &'static str, value: fn(&Metrics) -> u64) -> Series {
    Series {
        name,
        help,
        kind: Kind::Counter,
        value,
    }
}

const fn gauge(name: &'static str, help: &'static str, value: fn(&Metrics) -> u64) -> Series {
    Series {
        name,
        help,
        kind: Kind::Gauge,
        value,
    }
}

fn pairs<K, F: Fn(&K) -> String>(
    map: &std::collections::BTreeMap<K, u64>,
    key: F,
) -> Vec<(String, u64)> {
    map.iter().map(|(k, v)| (key(k), *v)).collect()
}

/// The unlabelled engine series, in exposition order.
pub const SERIES: &[Series] = &[
    gauge(
        "connections_open",
        "Open WebSocket connections (engine view)",
        |m| m.current_connections,
    ),
    counter("connections", "WebSocket connections accepted", |m| {
        m.connections
    }),
    counter("disconnections", "WebSocket connections ended", |m| {
        m.disconnections
    }),
    counter("messages_received", "Frames received", |m| {
        m.messages_received
    }),
    counter(
        "messages_sent",
        "Frames sent (each fan-out recipient counts)",
        |m| m.messages_sent,
    ),
    counter(
        "fanout_deliveries",
        "Fan-out deliveries (events, channel, room and broadcast messages)",
        |m| m.fanout_deliveries,
    ),
    counter("broadcasts", "Server-API broadcasts", |m| m.broadcasts),
    counter(
        "dropped_slow_consumer",
        "Pushes skipped for slow consumers (drop policy)",
        |m| m.dropped_slow_consumer,
    ),
    counter(
        "closed_slow_consumer",
        "Connections closed as slow consumers (close policy)",
        |m| m.closed_slow_consumer,
    ),
    gauge(
        "pending_host_calls",
        "Host calls (storage, guards, handlers) in flight",
        |m| m.pending_calls,
    ),
    counter(
        "timed_out_host_calls",
        "Host calls that missed their deadline",
        |m| m.timed_out_calls,
    ),
    counter(
        "late_completions",
        "Host-call completions that arrived too late",
        |m| m.late_completions,
    ),
    counter(
        "guard_denials",
        "Requests denied by a guard (CEL or host)",
        |m| m.guard_denials,
    ),
    counter(
        "guard_errors",
        "Guards that failed to evaluate (denied: guards fail closed)",
        |m| m.guard_errors,
    ),
    counter(
        "heartbeat_timeouts",
        "Connections closed for missing pongs",
        |m| m.heartbeat_timeouts,
    ),
    counter(
        "unknown_kid_fetches",
        "Key fetches started by a token with an unknown kid",
        |m| m.unknown_kid_fetches,
    ),
    counter("token_refreshes", "Refresh requests accepted", |m| {
        m.token_refreshes
    }),
    counter("token_refresh_failures", "Refresh requests refused", |m| {
        m.token_refresh_failures
    }),
    counter(
        "token_expirations",
        "Connections closed with 4401 because their token expired",
        |m| m.token_expirations,
    ),
    counter(
        "handler_calls",
        "Application handler, hook and interceptor calls",
        |m| m.handler_calls,
    ),
    counter(
        "handler_failures",
        "Application handler calls that failed (a crash, no handler, a timeout)",
        |m| m.handler_failures,
    ),
    counter(
        "socketio_acks_requested",
        "Acks the server asked Socket.IO clients for (emitWithAck)",
        |m| m.sio_acks_requested,
    ),
    counter(
        "socketio_acks_received",
        "Acks Socket.IO clients sent back for the server's emits",
        |m| m.sio_acks_received,
    ),
    counter(
        "socketio_ack_timeouts",
        "Server emits whose ack did not come within its timeout",
        |m| m.sio_ack_timeouts,
    ),
    counter(
        "socketio_unknown_acks",
        "Acks from Socket.IO clients with an id the server was not waiting for (ignored)",
        |m| m.sio_unknown_acks,
    ),
];

/// The labelled engine families, in exposition order.
pub const FAMILIES: &[Family] = &[
    Family {
        name: "rejected_upgrades",
        help: "Upgrades rejected, by HTTP status",
        label: "status",
        values: |m| pairs(&m.rejected_upgrades, u16::to_string),
    },
    Family {
        name: "messages_received_by_type",
        help: "Decoded client requests, by message type",
        label: "type",
        values: |m| pairs(&m.messages_received_by_type, |t| t.to_string()),
    },
    Family {
        name: "messages_sent_by_type",
        help: "Frames sent, by server message type (raw: verbatim server-API messages)",
        label: "type",
        values: |m| pairs(&m.messages_sent_by_type, |t| t.to_string()),
    },
    Family {
        name: "errors",
        help: "Error frames sent, by code",
        label: "code",
        values: |m| pairs(&m.errors_by_code, |c| c.as_str().to_string()),
    },
    Family {
        name: "key_fetches",
        help: "Key sets fetched and installed from remote key sources, by issuer",
        label: "issuer",
        values: |m| pairs(&m.key_fetches, String::clone),
    },
    Family {
        name: "key_fetch_failures",
        help: "Failed key fetches (the last good keys stay in use), by issuer",
        label: "issuer",
        values: |m| pairs(&m.key_fetch_failures, String::clone),
    },
];

/// A label value escaped for the text format (backslash, double quote, newline).
pub fn label_value(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The text exposition of every engine series ([`SERIES`], then [`FAMILIES`]), line for
/// line what the native host's registry writes for them (help texts end with a `.`).
pub fn render(m: &Metrics) -> String {
    let mut out = String::with_capacity(4096);
    // Writing to a String cannot fail.
    for s in SERIES {
        let (kind, suffix) = match s.kind {
            Kind::Counter => ("counter", "_total"),
            Kind::Gauge => ("gauge", ""),
        };
        let _ = writeln!(out, "# HELP switchboard_{} {}.", s.name, s.help);
        let _ = writeln!(out, "# TYPE switchboard_{} {kind}", s.name);
        let _ = writeln!(out, "switchboard_{}{suffix} {}", s.name, (s.value)(m));
    }
    for f in FAMILIES {
        let _ = writeln!(out, "# HELP switchboard_{} {}.", f.name, f.help);
        let _ = writeln!(out, "# TYPE switchboard_{} counter", f.name);
        for (k, v) in (f.values)(m) {
            let _ = writeln!(
                out,
                "switchboard_{}_total{{{}=\"{}\"}} {v}",
                f.name,
                f.label,
                label_value(&k)
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_gauges_and_families() {
        let mut m = Metrics {
            connections: 3,
            ..Metrics::default()
        };
        m.rejected_upgrades.insert(401, 2);
        m.messages_sent_by_type.insert("pong", 4);
        m.key_fetches.insert("https://a\"b".into(), 1);
        let text = render(&m);
        assert!(text.contains("switchboard_messages_sent_by_type_total{type=\"pong\"} 4\n"));
        assert!(text.contains("switchboard_connections_total 3\n"), "{text}");
        assert!(text.contains("switchboard_rejected_upgrades_total{status=\"401\"} 2\n"));
        assert!(text.contains("switchboard_key_fetches_total{issuer=\"https://a\\\"b\"} 1\n"));
        assert!(text.contains(
            "# TYPE switchboard_connections_open gauge\nswitchboard_connections_open 0\n"
        ));
    }

    #[test]
    fn series_names_are_unique() {
        let mut names: Vec<_> = SERIES.iter().map(|s| s.name).collect();
        names.extend(FAMILIES.iter().map(|f| f.name));
        let n = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), n, "a series name is used twice");
    }
}
