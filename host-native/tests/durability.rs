//! The SQLite store keeps every acknowledged write across restarts, including `kill -9`.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;

use common::*;
use serde_json::{json, Value};
use tokio::process::{Child, Command};

fn sqlite(dir: &Path) -> Value {
    json!({"server": {"store": "sqlite", "dataDir": dir}})
}

async fn all_ids(addr: SocketAddr, resource: &str) -> Vec<String> {
    let mut ids = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/admin/resources/{resource}?limit=1000&cursor={c}"),
            None => format!("/admin/resources/{resource}?limit=1000"),
        };
        let page = admin(addr, "GET", &path, None).await.json();
        ids.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["id"].as_str().unwrap().to_string()),
        );
        match page["cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return ids,
        }
    }
}

#[tokio::test]
async fn restart_keeps_socket_and_admin_writes() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(sqlite(dir.path())).await;
    let addr = server.local_addr();
    let (mut ws, _) = connect(addr, "/").await;
    for i in 0..20 {
        send(&mut ws, json!({"type":"insert","resource":"messages","data":{"id":format!("s{i:02}"),"n":i},"requestId":i})).await;
        assert_eq!(recv(&mut ws).await["type"], "inserted");
    }
    send(
        &mut ws,
        json!({"type":"update","resource":"messages","id":"s01","data":{"n":100},"requestId":"u"}),
    )
    .await;
    assert_eq!(recv(&mut ws).await["type"], "updated");
    send(
        &mut ws,
        json!({"type":"delete","resource":"messages","id":"s02","requestId":"d"}),
    )
    .await;
    assert_eq!(recv(&mut ws).await["type"], "deleted");
    let r = admin(
        addr,
        "POST",
        "/admin/resources/messages",
        Some(json!({"id":"a1","content":"admin"})),
    )
    .await;
    assert_eq!(r.status, 201);
    drop(ws);
    server.shutdown().await;

    let server = start(sqlite(dir.path())).await;
    let addr = server.local_addr();
    let ids = all_ids(addr, "messages").await;
    assert_eq!(ids.len(), 20, "{ids:?}");
    assert!(!ids.contains(&"s02".to_string()));
    assert!(ids.contains(&"a1".to_string()));
    let (mut ws, _) = connect(addr, "/").await;
    send(
        &mut ws,
        json!({"type":"get","resource":"messages","id":"s01","requestId":1}),
    )
    .await;
    assert_eq!(recv(&mut ws).await["data"]["n"], 100);
    server.shutdown().await;
}

/// Start the real binary and read its listen address from the log.
async fn spawn_server(config: &Path) -> (Child, SocketAddr) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["serve", "--config"])
        .arg(config)
        .env("NO_COLOR", "1")
        .env("RUST_LOG", "info")
        .env_remove("SWITCHBOARD_ADMIN_KEY")
        .env_remove("SWITCHBOARD_JWT_SECRET")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn switchboard");
    let (addr, _log) = listen_addr_from_stderr(&mut child).await;
    (child, addr)
}

#[tokio::test]
async fn kill_9_keeps_every_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("server.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\ndataDir = {:?}\nadminKey = \"{ADMIN}\"\n\n[resources.messages]\n",
            dir.path().join("data")
        ),
    )
    .unwrap();

    let (mut child, addr) = spawn_server(&config).await;
    let mut acknowledged = Vec::new();
    for i in 0..100 {
        let id = format!("k{i:03}");
        let r = admin(
            addr,
            "POST",
            "/admin/resources/messages",
            Some(json!({"id": id, "n": i})),
        )
        .await;
        assert_eq!(r.status, 201, "{}", r.body);
        acknowledged.push(id);
    }
    let (mut ws, _) = connect(addr, "/").await;
    for i in 0..50 {
        let id = format!("w{i:03}");
        send(
            &mut ws,
            json!({"type":"insert","resource":"messages","data":{"id":id},"requestId":i}),
        )
        .await;
        assert_eq!(recv(&mut ws).await["type"], "inserted");
        acknowledged.push(id);
    }
    // SIGKILL: no shutdown, no checkpoint.
    child.kill().await.unwrap();
    drop(ws);

    let (mut child, addr) = spawn_server(&config).await;
    let mut ids = all_ids(addr, "messages").await;
    ids.sort();
    acknowledged.sort();
    assert_eq!(ids, acknowledged);
    child.kill().await.unwrap();
}
