//! Client of a host's test control channel (`/__switchboard/test/...`, enabled with
//! `SWITCHBOARD_TEST_CONTROL=1`; protocol in `conformance/README.md`).

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{anyhow, bail};
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
