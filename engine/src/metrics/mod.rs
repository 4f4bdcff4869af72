//! Counters the engine keeps; hosts export them (Prometheus, JSON).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::error::ErrorCode;

pub mod prometheus;

/// Engine counters. All are monotonically increasing except the `current*` gauges.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Metrics {
    /// Connections accepted since start.
    pub connections: u64,
    /// Connections re-created from snapshots (also counted in `connections`).
    pub restored_connections: u64,
    /// Connections that ended since start.
    pub disconnections: u64,
    /// Open connections now.
    pub current_connections: u64,
    /// Upgrades rejected, by HTTP status.
    pub rejected_upgrades: BTreeMap<u16, u64>,
    /// Frames received.
    pub messages_received: u64,
    /// Decoded requests, by message type.
    pub messages_received_by_type: BTreeMap<&'static str, u64>,
    /// Frames sent (each recipient of a fan-out counts).
    pub messages_sent: u64,
    /// Frames sent, by server message type (`raw` for the server API's verbatim
    /// messages); sums to `messages_sent`.
    pub messages_sent_by_type: BTreeMap<&'static str, u64>,
    /// Server-API broadcasts performed.
    pub broadcasts: u64,
    /// Fan-out deliveries (events, channel messages, room messages, broadcasts).
    pub fanout_deliveries: u64,
    /// Pushes skipped for slow consumers (drop policy).
    pub dropped_slow_consumer: u64,
    /// Connections closed as slow consumers (close policy).
    pub closed_slow_consumer: u64,
    /// Error frames sent.
    pub errors: u64,
    /// Error frames sent, by code.
    pub errors_by_code: BTreeMap<ErrorCode, u64>,
    /// Host calls in flight now.
    pub pending_calls: u64,
    /// Host calls that missed their deadline.
    pub timed_out_calls: u64,
    /// Completions for unknown or already timed-out calls (dropped).
    pub late_completions: u64,
    /// Requests refused by a guard.
    pub guard_denials: u64,
    /// Guard evaluations that failed (counted as denials; fail closed).
    pub guard_errors: u64,
    /// Heartbeat timeouts.
    pub heartbeat_timeouts: u64,
    /// Inputs naming a connection the engine does not know (host bugs; ignored).
    pub unknown_connection_inputs: u64,
    /// Key sets fetched and installed from remote key sources, by issuer.
    pub key_fetches: BTreeMap<String, u64>,
    /// Failed key fetches (network, HTTP status, bad document, timeout), by issuer; the
    /// issuer's last good keys stay in use.
    pub key_fetch_failures: BTreeMap<String, u64>,
    /// Fetches started because a token named an unknown `kid` (rate-limited per issuer).
    pub unknown_kid_fetches: u64,
    /// `refresh` requests accepted.
    pub token_refreshes: u64,
    /// `refresh` requests refused.
    pub token_refresh_failures: u64,
    /// Connections closed with 4401 because their token expired.
    pub token_expirations: u64,
    /// Publications stored in a stream's history (channels whose namespace keeps it).
    pub history_publications: u64,
    /// `subscribe` requests with `since` (recovery attempts).
    pub recoveries: u64,
    /// Recovery attempts answered with `recovered: false`.
    pub recoveries_failed: u64,
    /// Application messages received, by declared type.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub app_messages: BTreeMap<String, u64>,
    /// Handler, hook and interceptor calls made.
    #[serde(skip_serializing_if = "is_zero")]
    pub handler_calls: u64,
    /// Handler calls the host could not run, or that answered something invalid.
    #[serde(skip_serializing_if = "is_zero")]
    pub handler_failures: u64,
    /// Commands in handler answers that failed or were not allowed.
    #[serde(skip_serializing_if = "is_zero")]
    pub handler_command_errors: u64,
    /// `disconnect` hook calls dropped because `limits.maxPendingCalls` were in flight.
    #[serde(skip_serializing_if = "is_zero")]
    pub dropped_hook_calls: u64,
    /// Built-in messages cancelled by an interceptor.
    #[serde(skip_serializing_if = "is_zero")]
    pub intercept_cancels: u64,
    /// Built-in messages modified by an interceptor.
    #[serde(skip_serializing_if = "is_zero")]
    pub intercept_modifications: u64,
    /// Socket.IO events the server emitted asking for an ack (`emitWithAck`).
    #[serde(skip_serializing_if = "is_zero")]
    pub sio_acks_requested: u64,
    /// Of those, acknowledged by the client in time.
    #[serde(skip_serializing_if = "is_zero")]
    pub sio_acks_received: u64,
    /// Of those, not acknowledged within their timeout.
    #[serde(skip_serializing_if = "is_zero")]
    pub sio_ack_timeouts: u64,
    /// Socket.IO acks from clients that match no pending `emitWithAck` (ignored, as the
    /// reference server does).
    #[serde(skip_serializing_if = "is_zero")]
    pub sio_unknown_acks: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Metrics {
    pub(crate) fn error(&mut self, code: ErrorCode) {
        self.errors += 1;
        *self.errors_by_code.entry(code).or_default() += 1;
    }

    /// Count `n` frames of one type sent.
    pub(crate) fn sent(&mut self, type_name: &'static str, n: u64) {
        if n == 0 {
            return;
        }
        self.messages_sent += n;
        *self.messages_sent_by_type.entry(type_name).or_default() += n;
    }

    pub(crate) fn received(&mut self, type_name: &'static str) {
        *self.messages_received_by_type.entry(type_name).or_default() += 1;
    }
}
