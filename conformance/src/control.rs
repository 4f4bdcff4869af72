//! Client of a host's test control channel (`/__switchboard/test/...`, enabled with
//! `SWITCHBOARD_TEST_CONTROL=1`; protocol in `conformance/README.md`).

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{anyhow, bail};
use conformance_core::{StepInput, Vector};
use serde_json::{json, Value};

use crate::wsclient::http;

/// Path prefix of the channel.
pub const PREFIX: &str = "/__switchboard/test";

/// Upgrade header naming the client id the host must use.
pub const CLIENT_ID_HEADER: &str = "x-switchboard-test-client-id";

/// How long one control request may take.
const REQUEST_WAIT: Duration = Duration::from_secs(10);

/// The test control channel of one server.
#[derive(Debug, Clone)]
pub struct Control {
    addr: SocketAddr,
}

impl Control {
    /// The channel of the server at `addr`, if it is enabled there (`GET PREFIX`).
    pub async fn probe(addr: SocketAddr) -> anyhow::Result<Option<Control>> {
        let (status, _) = http(addr, "GET", PREFIX, None, REQUEST_WAIT).await?;
        Ok((status == 200).then_some(Control { addr }))
    }

    /// `POST PREFIX/op` with `body`; the JSON answer, or an error with the host's message.
    pub async fn post(&self, op: &str, body: Value) -> anyhow::Result<Value> {
        self.post_wait(op, body, REQUEST_WAIT).await
    }

    async fn post_wait(&self, op: &str, body: Value, wait: Duration) -> anyhow::Result<Value> {
        let path = format!("{PREFIX}/{op}");
        let (status, bytes) = http(self.addr, "POST", &path, Some(&body), wait).await?;
        let value: Value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        if status != 200 {
            bail!("test control {op}: {status} {value}");
        }
        Ok(value)
    }

    /// Events (held calls, command results): wait up to `wait` until `min` are queued.
    pub async fn events(&self, min: usize, wait: Duration) -> anyhow::Result<Vec<Value>> {
        let body = json!({"min": min, "waitMs": wait.as_millis() as u64});
        let v = self.post_wait("events", body, wait + REQUEST_WAIT).await?;
        match v.get("events") {
            Some(Value::Array(a)) => Ok(a.clone()),
            _ => Err(anyhow!("test control events: unexpected answer {v}")),
        }
    }
}

/// Why a vector cannot run against a server without the test control channel.
pub fn needs_control(v: &Vector) -> Option<&'static str> {
    if v.live.as_ref().is_some_and(|l| l.deployment != "demo") {
        return Some("has its own config");
    }
    if v.store.is_some() {
        return Some("seeds storage");
    }
    let mut ids = std::collections::HashSet::new();
    for s in &v.steps {
        let why = match &s.input {
            StepInput::Timeout => "drives time",
            StepInput::Command { .. } => "runs server commands",
            StepInput::Completed { .. } => "answers host calls",
            StepInput::Backpressure { .. } => "reports backpressure",
            StepInput::Evict => "evicts the server",
            StepInput::Open { request, .. } if !ids.insert(request.client_id.clone()) => {
                "picks client ids"
            }
            _ => continue,
        };
        return Some(why);
    }
    if v.steps
        .iter()
        .any(|s| s.expect.iter().any(|a| has_key(a, &SEEDED_OR_CLOCKED)))
    {
        return Some("expects values the server's seed or clock decides");
    }
    None
}

/// Fields whose expected values only a server with the vector's seed and clock can
/// produce: stream epochs (drawn from the seed), uptimes and connection times.
const SEEDED_OR_CLOCKED: [&str; 3] = ["epoch", "uptimeMs", "connectedAt"];

/// Whether `value` (an expected action) has one of `keys` at any depth; frame texts are
/// parsed JSON, so this looks inside the frames too.
fn has_key(value: &Value, keys: &[&str]) -> bool {
    match value {
        Value::Object(m) => m
            .iter()
            .any(|(k, v)| keys.contains(&k.as_str()) || has_key(v, keys)),
        Value::Array(a) => a.iter().any(|v| has_key(v, keys)),
        _ => false,
    }
}

/// Whether the reported event `e` is of the kind of the expected action `w` (a call, or
/// the command result with `w`'s tag).
pub fn event_matches(w: &Value, e: &Value) -> bool {
    match w["action"].as_str() {
        Some("call") => e["event"] == "call",
        _ => e["event"] == "commandResult" && e["tag"] == w["tag"],
    }
}

/// How many of `want` have no reported event of their kind yet (each event counts once).
pub fn unmatched(want: &[Value], events: &[Value]) -> usize {
    let mut used = vec![false; events.len()];
    want.iter()
        .filter(|w| {
            let found = events
                .iter()
                .enumerate()
                .position(|(k, e)| !used[k] && event_matches(w, e));
            match found {
                Some(k) => {
                    used[k] = true;
                    false
                }
                None => true,
            }
        })
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_of_another_kind_does_not_stand_in_for_a_wanted_command_result() {
        let want = [json!({"action": "commandResult", "tag": 1})];
        let call = json!({"event": "call", "action": {}});
        assert_eq!(unmatched(&want, std::slice::from_ref(&call)), 1);
        let result = json!({"event": "commandResult", "tag": 1, "result": {}});
        assert_eq!(unmatched(&want, &[call, result]), 0);
        let two_calls = [json!({"action": "call"}), json!({"action": "call"})];
        assert_eq!(unmatched(&two_calls, &[json!({"event": "call"})]), 1);
    }

    #[test]
    fn expected_epochs_uptimes_and_connection_times_need_the_control_channel() {
        let frame = json!({"type": "frame", "text": {"type": "subscribed", "epoch": "X3gMZRe4"}});
        assert!(has_key(&frame, &SEEDED_OR_CLOCKED));
        let nested = json!([{"data": {"server": {"uptimeMs": 0}}}]);
        assert!(has_key(&nested, &SEEDED_OR_CLOCKED));
        let plain = json!({"type": "frame", "text": {"type": "pong", "requestId": "epoch"}});
        assert!(!has_key(&plain, &SEEDED_OR_CLOCKED));
    }
}
