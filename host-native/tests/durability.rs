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

/// A config file (JSON) for the real binary: SQLite in `dir/data`, channels `chat:*`
/// with history, and `persistStreams` as given.
fn stream_config(dir: &Path, persist: bool) -> std::path::PathBuf {
    let config = dir.join("server.json");
    let doc = json!({
        "server": {"listen": "127.0.0.1:0", "dataDir": dir.join("data"), "adminKey": ADMIN,
                   "persistStreams": persist},
        "channels": {"namespaces": [
            {"pattern": "chat:*", "history": {"size": 1000, "ttlMs": 300000}, "presence": true}
        ]},
        "resources": {"messages": {}},
    });
    std::fs::write(&config, doc.to_string()).unwrap();
    config
}

/// Subscribe to `channel` (with `since`, if given) and return the `subscribed` frame.
async fn subscribe(ws: &mut common::Ws, channel: &str, since: Option<(u64, &str)>) -> Value {
    let mut frame = json!({"type": "subscribe", "channel": channel, "requestId": "s"});
    if let Some((offset, epoch)) = since {
        frame["since"] = json!({"offset": offset, "epoch": epoch});
    }
    send(ws, frame).await;
    recv_type(ws, "subscribed").await
}

/// A publisher fires publications without waiting while a subscriber reads them; the
/// server is killed (SIGKILL) mid-stream. After a restart on the same data directory the
/// subscriber reconnects with `since` = the last offset it saw and gets `recovered: true`
/// in the same epoch, with every publication after it in order, and the stream holds every
/// publication the publisher had seen acknowledged.
#[tokio::test]
async fn kill_9_keeps_channel_history_so_a_reconnect_recovers_everything() {
    let dir = tempfile::tempdir().unwrap();
    let config = stream_config(dir.path(), true);
    let (mut child, addr) = spawn_server(&config).await;

    let (mut sub, _) = connect(addr, "/").await;
    let s = subscribe(&mut sub, "chat:crash", None).await;
    assert_eq!(s["offset"], 0, "{s}");
    let epoch = s["epoch"].as_str().unwrap().to_string();

    let (mut publisher, _) = connect(addr, "/").await;
    for n in 0..400u64 {
        send(
            &mut publisher,
            json!({"type": "publish", "channel": "chat:crash", "message": {"n": n}, "requestId": n}),
        )
        .await;
    }
    // Read until 150 acknowledgements arrived, then crash the server mid-stream.
    let mut acked = 0u64;
    while acked < 150 {
        let f = recv(&mut publisher).await;
        if f["type"] == "published" {
            acked += 1;
        }
    }
    child.kill().await.unwrap();
    // Whatever the subscriber received before the crash, in order, from offset 1.
    let mut seen = 0u64;
    loop {
        let next = tokio::time::timeout(WAIT, futures_util::StreamExt::next(&mut sub)).await;
        let Ok(Some(Ok(tokio_tungstenite::tungstenite::Message::Text(t)))) = next else {
            break;
        };
        let f: Value = serde_json::from_str(&t).unwrap();
        if f["type"] == "message" {
            seen += 1;
            assert_eq!(f["offset"], seen, "{f}");
            assert_eq!(f["data"]["n"], seen - 1, "{f}");
            assert_eq!(f["epoch"], epoch.as_str());
        }
    }
    assert!(
        seen >= 1,
        "the subscriber saw publications before the crash"
    );
    drop(publisher);

    let (mut child, addr) = spawn_server(&config).await;
    let (mut ws, _) = connect(addr, "/").await;
    // Half-way back: the subscriber resumes from an offset it saw.
    let since = seen / 2;
    let r = subscribe(&mut ws, "chat:crash", Some((since, &epoch))).await;
    assert_eq!(r["recovered"], true, "{r}");
    assert_eq!(
        r["epoch"],
        epoch.as_str(),
        "same epoch after the restart: {r}"
    );
    let top = r["offset"].as_u64().unwrap();
    assert!(
        top >= acked.max(seen),
        "every acknowledged ({acked}) and delivered ({seen}) publication is kept; top {top}"
    );
    let publications = r["publications"].as_array().unwrap();
    assert_eq!(publications.len() as u64, top - since, "{r}");
    for (i, p) in publications.iter().enumerate() {
        let offset = since + 1 + i as u64;
        assert_eq!(p["offset"], offset);
        assert_eq!(p["data"]["n"], offset - 1);
    }
    // The stream continues in the same epoch after the restart (a publisher does not
    // receive its own publication: another connection publishes).
    let (mut other, _) = connect(addr, "/").await;
    send(
        &mut other,
        json!({"type": "publish", "channel": "chat:crash", "message": {"n": "after"}, "requestId": "p"}),
    )
    .await;
    assert_eq!(recv_type(&mut other, "published").await["delivered"], 1);
    let m = recv_type(&mut ws, "message").await;
    assert_eq!(m["offset"], top + 1, "{m}");
    assert_eq!(m["epoch"], epoch.as_str());
    // The history read sees the same stream.
    send(
        &mut ws,
        json!({"type": "history", "channel": "chat:crash", "limit": 2, "requestId": "h"}),
    )
    .await;
    let h = recv_type(&mut ws, "history").await;
    assert_eq!(h["offset"], top + 1, "{h}");
    assert_eq!(h["publications"][0]["offset"], top, "{h}");
    child.kill().await.unwrap();
}

/// With `persistStreams: false` channel history lives in memory only: after a restart
/// the stream has a new epoch and the old position is unrecoverable.
#[tokio::test]
async fn without_persist_streams_a_restart_starts_a_new_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let config = stream_config(dir.path(), false);
    let (mut child, addr) = spawn_server(&config).await;
    let (mut ws, _) = connect(addr, "/").await;
    let s = subscribe(&mut ws, "chat:mem", None).await;
    let epoch = s["epoch"].as_str().unwrap().to_string();
    send(
        &mut ws,
        json!({"type": "publish", "channel": "chat:mem", "message": 1, "requestId": "p"}),
    )
    .await;
    recv_type(&mut ws, "published").await;
    send(
        &mut ws,
        json!({"type": "history", "channel": "chat:mem", "requestId": "h"}),
    )
    .await;
    assert_eq!(recv_type(&mut ws, "history").await["offset"], 1);
    child.kill().await.unwrap();
    assert!(!dir.path().join("data").join("streams.db").exists());

    let (mut child, addr) = spawn_server(&config).await;
    let (mut ws, _) = connect(addr, "/").await;
    let r = subscribe(&mut ws, "chat:mem", Some((1, &epoch))).await;
    assert_eq!(r["recovered"], false, "{r}");
    assert_ne!(r["epoch"], epoch.as_str());
    child.kill().await.unwrap();
}
