//! Round trips per second through application handlers on the native host, over real
//! sockets on loopback (numbers in BENCHMARKS.md, "Application handlers"):
//!
//! - `ping`: the built-in `ping` → `pong` (baseline, no handler);
//! - `rust`: an application message → a Rust handler (`ServerBuilder::on_message`) →
//!   `reply`;
//! - `webhook`: an application message → an HTTP webhook on 127.0.0.1 (hyper) → `reply`.
//!
//! `cargo run --release -p switchboard --example handler_bench -- [CONNS] [SECONDS]`
//! (defaults 32 connections, 5 s per mode). Closed loop: each connection sends its next
//! message when the previous answer arrived.

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use switchboard::handlers::{Ctx, MessageCall};
use switchboard::ServerBuilder;
use tokio_tungstenite::tungstenite::Message;

async fn webhook_server() -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let svc = service_fn(|_req| async {
                    Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from_static(
                        br#"{"reply":{"ok":true}}"#,
                    ))))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), svc)
                    .await;
            });
        }
    });
    addr
}

async fn run(addr: std::net::SocketAddr, conns: usize, secs: u64, msg: Value) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let until = Instant::now() + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for _ in 0..conns {
        let (done, msg) = (done.clone(), msg.to_string());
        let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/"))
            .await
            .expect("connect");
        let _ = ws.next().await; // welcome
        tasks.push(tokio::spawn(async move {
            while Instant::now() < until {
                ws.send(Message::text(msg.clone())).await.unwrap();
                loop {
                    match ws.next().await {
                        Some(Ok(Message::Text(_))) => break,
                        Some(Ok(_)) => continue,
                        _ => return,
                    }
                }
                done.fetch_add(1, Ordering::Relaxed);
            }
            let _ = ws.close(None).await;
        }));
    }
    let start = Instant::now();
    for t in tasks {
        let _ = t.await;
    }
    done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let conns: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(32);
    let secs: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(5);
    let hook = webhook_server().await;
    let doc = json!({
        "server": {"listen": "127.0.0.1:0", "store": "memory"},
        "heartbeatInterval": 0,
        "limits": {"maxConnections": 10000},
        "messages": {"echo": {}, "hooked": {"webhook": format!("http://{hook}/hooked")}},
    });
    let deployment = switchboard::config::from_document(doc).map_err(|p| anyhow::anyhow!("{p}"))?;
    let server = ServerBuilder::new(deployment)
        .on_message(
            "echo",
            |msg: MessageCall, _ctx: Ctx| async move { msg.data },
        )
        .start()
        .await?;
    let addr = server.local_addr();
    for (name, msg) in [
        ("ping", json!({"type": "ping", "requestId": 1})),
        (
            "rust",
            json!({"type": "echo", "data": {"n": 1}, "requestId": 1}),
        ),
        (
            "webhook",
            json!({"type": "hooked", "data": {"n": 1}, "requestId": 1}),
        ),
    ] {
        let rate = run(addr, conns, secs, msg).await;
        println!("{name:8} {conns} connections, {secs} s: {rate:.0} round trips/s");
    }
    server.shutdown().await;
    Ok(())
}
