//! Publications per second into a channel with history on the native host, over real
//! sockets on loopback, with durable streams on and off (numbers in BENCHMARKS.md,
//! "Durable channel streams"):
//!
//! - `memory`: the memory store; history in memory only;
//! - `sqlite, persistStreams=false`: the SQLite record store, history in memory only;
//! - `sqlite, persistStreams=true`: history written to `streams.db` (fsynced,
//!   group-committed) before the frames of a publication are sent.
//!
//! `cargo run --release -p switchboard --example stream_bench -- [PUBLISHERS] [SECONDS]`
//! (defaults 32 publishers, 5 s per mode). Closed loop: each publisher sends its next
//! `publish` when the previous `published` arrived; one subscriber receives every
//! publication. The data directory is a fresh directory under the system temp dir (set
//! `TMPDIR` to measure another disk).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

/// Publications/s, publications acknowledged, publications the subscriber received.
async fn run(addr: std::net::SocketAddr, publishers: usize, secs: u64) -> (f64, u64, u64) {
    let done = Arc::new(AtomicU64::new(0));
    // One subscriber draining the channel (the fan-out is part of each publication).
    let (mut sub, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/"))
        .await
        .expect("connect");
    let _ = sub.next().await; // welcome
    sub.send(Message::text(
        json!({"type": "subscribe", "channel": "chat:bench", "requestId": 0}).to_string(),
    ))
    .await
    .unwrap();
    let received = Arc::new(AtomicU64::new(0));
    let counter = received.clone();
    let drain = tokio::spawn(async move {
        while let Some(Ok(m)) = sub.next().await {
            if let Message::Text(t) = m {
                if t.contains("\"type\":\"message\"") {
                    counter.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    });
    // Connect every publisher first; the clock starts when all are ready.
    let mut sockets = Vec::new();
    for _ in 0..publishers {
        let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/"))
            .await
            .expect("connect");
        let _ = ws.next().await; // welcome
        sockets.push(ws);
    }
    let start = Instant::now();
    let until = start + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for (i, mut ws) in sockets.into_iter().enumerate() {
        let done = done.clone();
        let msg = json!({"type": "publish", "channel": "chat:bench",
                         "message": {"from": i, "text": "hello, world"}, "requestId": 1})
        .to_string();
        tasks.push(tokio::spawn(async move {
            while Instant::now() < until {
                ws.send(Message::text(msg.clone())).await.unwrap();
                loop {
                    match ws.next().await {
                        Some(Ok(Message::Text(t))) if t.contains("\"published\"") => break,
                        Some(Ok(_)) => continue,
                        _ => return,
                    }
                }
                done.fetch_add(1, Ordering::Relaxed);
            }
            let _ = ws.close(None).await;
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let rate = done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64();
    // Let the subscriber catch up, then check it saw every acknowledged publication.
    let total = done.load(Ordering::Relaxed);
    let deadline = Instant::now() + Duration::from_secs(10);
    while received.load(Ordering::Relaxed) < total && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    drain.abort();
    (rate, total, received.load(Ordering::Relaxed))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let publishers: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(32);
    let secs: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(5);
    for (name, store, persist) in [
        ("memory", "memory", false),
        ("sqlite, persistStreams=false", "sqlite", false),
        ("sqlite, persistStreams=true", "sqlite", true),
    ] {
        let dir = tempfile::tempdir()?;
        let doc = json!({
            "server": {"listen": "127.0.0.1:0", "store": store, "dataDir": dir.path(),
                       "persistStreams": persist, "logLevel": "warn"},
            "heartbeatInterval": 0,
            "limits": {"maxConnections": 10000},
            "channels": {"namespaces": [
                {"pattern": "chat:*", "history": {"size": 1000, "ttlMs": 300000}}
            ]},
        });
        let deployment =
            switchboard::config::from_document(doc).map_err(|p| anyhow::anyhow!("{p}"))?;
        let server = switchboard::start(deployment).await?;
        let (rate, acked, received) = run(server.local_addr(), publishers, secs).await;
        println!(
            "{name:30} {publishers:3} publishers, {secs} s: {rate:>6.0} publications/s ({acked} acknowledged, the subscriber received {received})"
        );
        server.shutdown().await;
    }
    Ok(())
}
