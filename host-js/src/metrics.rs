//! Prometheus text exposition of the engine counters, with the native host's series
//! names (`switchboard_*`, counters ending in `_total`), so dashboards work for every
//! host. JavaScript hosts append their own socket-level series after it.

use std::fmt::Write;

use engine::metrics::Metrics;

fn series(out: &mut String, name: &str, kind: &str, help: &str, value: u64) {
    let full = if kind == "counter" {
        format!("switchboard_{name}_total")
    } else {
        format!("switchboard_{name}")
    };
    let _ = writeln!(out, "# HELP switchboard_{name} {help}");
    let _ = writeln!(out, "# TYPE switchboard_{name} {kind}");
    let _ = writeln!(out, "{full} {value}");
}

fn family<K: std::fmt::Display>(
    out: &mut String,
    name: &str,
    help: &str,
    label: &str,
    values: impl Iterator<Item = (K, u64)>,
) {
    let _ = writeln!(out, "# HELP switchboard_{name} {help}");
    let _ = writeln!(out, "# TYPE switchboard_{name} counter");
    for (k, v) in values {
        let _ = writeln!(out, "switchboard_{name}_total{{{label}=\"{k}\"}} {v}");
    }
}

/// Render the engine counters.
pub fn render(m: &Metrics) -> String {
    let mut o = String::with_capacity(2048);
    let s = &mut o;
    series(
        s,
        "connections_open",
        "gauge",
        "Open WebSocket connections (engine view)",
        m.current_connections,
    );
    series(
        s,
        "connections",
        "counter",
        "WebSocket connections accepted",
        m.connections,
    );
    series(
        s,
        "disconnections",
        "counter",
        "WebSocket connections ended",
        m.disconnections,
    );
    family(
        s,
        "rejected_upgrades",
        "Upgrades rejected, by HTTP status",
        "status",
        m.rejected_upgrades.iter().map(|(k, v)| (k, *v)),
    );
    series(
        s,
        "messages_received",
        "counter",
        "Frames received",
        m.messages_received,
    );
    family(
        s,
        "messages_received_by_type",
        "Decoded requests, by message type",
        "type",
        m.messages_received_by_type.iter().map(|(k, v)| (k, *v)),
    );
    series(
        s,
        "messages_sent",
        "counter",
        "Frames sent (each fan-out recipient counts)",
        m.messages_sent,
    );
    family(
        s,
        "messages_sent_by_type",
        "Frames sent, by server message type (raw: verbatim server-API messages)",
        "type",
        m.messages_sent_by_type.iter().map(|(k, v)| (k, *v)),
    );
    series(
        s,
        "fanout_deliveries",
        "counter",
        "Fan-out deliveries",
        m.fanout_deliveries,
    );
    series(
        s,
        "broadcasts",
        "counter",
        "Server-API broadcasts",
        m.broadcasts,
    );
    series(
        s,
        "dropped_slow_consumer",
        "counter",
        "Pushes skipped for slow consumers",
        m.dropped_slow_consumer,
    );
    series(
        s,
        "closed_slow_consumer",
        "counter",
        "Connections closed as slow consumers",
        m.closed_slow_consumer,
    );
    family(
        s,
        "errors",
        "Error frames sent, by code",
        "code",
        m.errors_by_code.iter().map(|(k, v)| (k.as_str(), *v)),
    );
    series(
        s,
        "pending_host_calls",
        "gauge",
        "Host calls in flight",
        m.pending_calls,
    );
    series(
        s,
        "timed_out_host_calls",
        "counter",
        "Host calls that missed their deadline",
        m.timed_out_calls,
    );
    series(
        s,
        "late_completions",
        "counter",
        "Completions for unknown or timed-out calls",
        m.late_completions,
    );
    series(
        s,
        "guard_denials",
        "counter",
        "Requests refused by a guard",
        m.guard_denials,
    );
    series(
        s,
        "heartbeat_timeouts",
        "counter",
        "Connections closed for a missed heartbeat",
        m.heartbeat_timeouts,
    );
    family(
        s,
        "key_fetches",
        "Key sets fetched and installed from remote key sources, by issuer",
        "issuer",
        m.key_fetches.iter().map(|(k, v)| (label_value(k), *v)),
    );
    family(
        s,
        "key_fetch_failures",
        "Failed key fetches (the last good keys stay in use), by issuer",
        "issuer",
        m.key_fetch_failures
            .iter()
            .map(|(k, v)| (label_value(k), *v)),
    );
    series(
        s,
        "unknown_kid_fetches",
        "counter",
        "Key fetches started by a token with an unknown kid",
        m.unknown_kid_fetches,
    );
    series(
        s,
        "token_refreshes",
        "counter",
        "Refresh requests accepted",
        m.token_refreshes,
    );
    series(
        s,
        "token_refresh_failures",
        "counter",
        "Refresh requests refused",
        m.token_refresh_failures,
    );
    series(
        s,
        "token_expirations",
        "counter",
        "Connections closed with 4401 because their token expired",
        m.token_expirations,
    );
    o
}

/// A label value escaped for the text exposition (`\`, `"`, newline).
fn label_value(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_families() {
        let mut m = Metrics {
            connections: 3,
            ..Metrics::default()
        };
        m.rejected_upgrades.insert(401, 2);
        m.messages_sent_by_type.insert("pong", 4);
        let text = render(&m);
        assert!(text.contains("switchboard_messages_sent_by_type_total{type=\"pong\"} 4\n"));
        assert!(text.contains("switchboard_connections_total 3\n"), "{text}");
        assert!(text.contains("switchboard_rejected_upgrades_total{status=\"401\"} 2\n"));
        assert!(text.contains(
            "# TYPE switchboard_connections_open gauge\nswitchboard_connections_open 0\n"
        ));
    }
}
