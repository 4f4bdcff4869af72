//! `switchboard serve` on one runtime thread (`server.workerThreads = 1`, or a process
//! pinned to one CPU): the single-threaded scheduler serves WebSockets, HTTP and a
//! graceful shutdown like the multi-threaded one.
#![cfg(unix)] // the test stops the server with SIGTERM (`kill`)

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;
use serde_json::json;

/// `switchboard serve` with the demo config and `workerThreads = threads`, on a free port.
async fn serve_with_threads(
    threads: usize,
    dir: &Path,
) -> (
    tokio::process::Child,
    std::net::SocketAddr,
    tokio::task::JoinHandle<String>,
) {
    let demo = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/demo.toml"),
    )
    .unwrap();
    // The key goes first in the demo's own `[server]` table.
    let config = demo.replacen(
        "[server]\n",
        &format!("[server]\nworkerThreads = {threads}\n"),
        1,
    );
    assert_ne!(config, demo, "the demo config has a [server] table");
    let path = dir.join("one-thread.toml");
    std::fs::write(&path, config).unwrap();
    spawn_serve(&path, &[], dir, "switchboard=debug,info").await
}

#[tokio::test]
async fn one_runtime_thread_serves_round_trips_fan_out_and_a_graceful_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, addr, log) = serve_with_threads(1, dir.path()).await;

    let (mut sub, _) = connect(addr, "/").await;
    let (mut publisher, _) = connect(addr, "/").await;
    send(
        &mut sub,
        json!({"type":"subscribe","channel":"chat:lobby","requestId":1}),
    )
    .await;
    assert_eq!(recv_type(&mut sub, "subscribed").await["requestId"], 1);
    for i in 0..50 {
        send(&mut publisher, json!({"type":"ping","requestId":i})).await;
        assert_eq!(recv_type(&mut publisher, "pong").await["requestId"], i);
        send(
            &mut publisher,
            json!({"type":"publish","channel":"chat:lobby","message":i,"requestId":i}),
        )
        .await;
        assert_eq!(recv_type(&mut publisher, "published").await["requestId"], i);
        assert_eq!(recv_type(&mut sub, "message").await["data"], i);
    }
    assert_eq!(http(addr, "GET", "/healthz", &[], None).await.status, 200);

    // SIGTERM: every connection gets 1001, and the process exits 0 by itself.
    let pid = child.id().expect("running").to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    assert_eq!(closed(&mut sub).await.0, 1001);
    assert_eq!(closed(&mut publisher).await.0, 1001);
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("the server exits within its shutdown timeout")
        .unwrap();
    assert!(status.success(), "{status}");
    let log = log.await.unwrap();
    assert!(
        log.contains("runtime threads threads=1") && log.contains("flavor=CurrentThread"),
        "the single-threaded runtime was chosen:\n{log}"
    );
}
