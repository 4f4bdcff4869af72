//! Two `switchboard serve --broker redis://...` nodes on one redis-server (started here on
//! 127.0.0.1 with a temp dir, no persistence, killed at the end): cross-node channel
//! publications, direct messages by client id, presence, resource change events, a
//! Redis restart (`/readyz` 503 and `UNAVAILABLE` publications during the outage,
//! recovery without restarting the nodes), and channel history shared through Redis
//! (one epoch and offset sequence, recovery on another node after a `kill -9`, and on a
//! node started afterwards), and rooms with members on both nodes (`room:message`,
//! member lists, capacity, `sendToRoom`, a killed node's members leaving).
//!
//! Skipped, with a message, when `redis-server` is not installed (`scripts/setup.sh`
//! installs it).

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use common::*;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};

/// Longest wait for something that travels through Redis or a reconnection.
const CLUSTER_WAIT: Duration = Duration::from_secs(15);

fn redis_installed() -> bool {
    std::process::Command::new("redis-server")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Start redis-server on `port` and wait until it answers PING.
async fn start_redis(port: u16, dir: &Path) -> Child {
    let child = Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
        ])
        .args(["--appendonly", "no", "--dir"])
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("redis-server starts");
    tokio::time::timeout(CLUSTER_WAIT, async {
        loop {
            if let Ok(mut s) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
                let mut buf = [0u8; 7];
                if s.write_all(b"PING\r\n").await.is_ok()
                    && s.read_exact(&mut buf).await.is_ok()
                    && &buf == b"+PONG\r\n"
                {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("redis-server answers PING");
    child
}

/// `switchboard serve --config examples/demo.toml --listen 127.0.0.1:0 --broker URL --memory`.
async fn start_node(broker: &str, dir: &Path) -> (Child, SocketAddr) {
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/demo.toml");
    let (child, addr, _log) = spawn_serve(&config, &["--broker", broker], dir, "info").await;
    (child, addr)
}

/// Next frame of type `ty` within `limit` (longer than the helpers' per-frame wait).
async fn recv_type_within(ws: &mut Ws, ty: &str, limit: Duration) -> Value {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    tokio::time::timeout(limit, async {
        loop {
            let msg = ws.next().await.expect("stream ended").expect("read error");
            if let Message::Text(t) = msg {
                let v: Value = serde_json::from_str(&t).expect("frame is JSON");
                if v["type"] == ty {
                    return v;
                }
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no `{ty}` frame within {limit:?}"))
}

/// Poll `/readyz` until it answers `status`; returns its body.
async fn readyz_becomes(addr: SocketAddr, status: u16) -> Value {
    tokio::time::timeout(CLUSTER_WAIT, async {
        loop {
            let r = http(addr, "GET", "/readyz", &[], None).await;
            if r.status == status {
                return r.json();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{addr}/readyz never answered {status}"))
}

/// Send `msg` (with a fresh requestId) until the answer is not `NOT_FOUND` (what the
/// other node announces travels through Redis); returns that answer.
async fn ask_until_found(ws: &mut Ws, msg: Value) -> Value {
    tokio::time::timeout(CLUSTER_WAIT, async {
        for i in 0u64.. {
            let mut m = msg.clone();
            m["requestId"] = json!(format!("retry-{i}"));
            send(ws, m).await;
            let answer = loop {
                let v = recv(ws).await;
                if v["requestId"] == json!(format!("retry-{i}")) {
                    break v;
                }
            };
            if answer["code"] != "NOT_FOUND" {
                return answer;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        unreachable!()
    })
    .await
    .expect("the other node's client became known")
}

#[tokio::test]
async fn two_nodes_share_publications_direct_messages_presence_and_change_events_and_survive_a_redis_restart(
) {
    if !redis_installed() {
        eprintln!("SKIPPED: redis-server is not installed (bash scripts/setup.sh installs it)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let broker = format!("redis://127.0.0.1:{port}");
    let mut redis = start_redis(port, dir.path()).await;
    let (dir_a, dir_b) = (dir.path().join("a"), dir.path().join("b"));
    std::fs::create_dir_all(&dir_a).unwrap();
    std::fs::create_dir_all(&dir_b).unwrap();
    let (mut node_a, a) = start_node(&broker, &dir_a).await;
    let (mut node_b, b) = start_node(&broker, &dir_b).await;
    readyz_becomes(a, 200).await;
    readyz_becomes(b, 200).await;

    // Channel publication: A publishes, B's subscriber gets it.
    let (mut wa, welcome_a) = connect(a, "/").await;
    let (mut wb, welcome_b) = connect(b, "/").await;
    let (id_a, id_b) = (
        welcome_a["clientId"].as_str().unwrap().to_string(),
        welcome_b["clientId"].as_str().unwrap().to_string(),
    );
    send(
        &mut wb,
        json!({"type":"subscribe","channel":"chat:lobby","requestId":1}),
    )
    .await;
    assert_eq!(
        recv_type(&mut wb, "subscribed").await["channel"],
        "chat:lobby"
    );
    send(
        &mut wa,
        json!({"type":"publish","channel":"chat:lobby","message":{"text":"hi from a"},"requestId":2}),
    )
    .await;
    assert_eq!(recv_type(&mut wa, "published").await["requestId"], 2);
    let m = recv_type(&mut wb, "message").await;
    assert_eq!(
        (m["from"].as_str(), m["data"]["text"].as_str()),
        (Some(id_a.as_str()), Some("hi from a"))
    );

    // Direct message by clientId to a client of the other node.
    let sent = ask_until_found(
        &mut wa,
        json!({"type":"direct","to":id_b,"data":"psst","ack":true}),
    )
    .await;
    assert_eq!(
        (sent["type"].as_str(), sent["delivered"].as_u64()),
        (Some("sent"), Some(1)),
        "{sent}"
    );
    let d = recv_type(&mut wb, "direct").await;
    assert_eq!(
        (d["from"].as_str(), d["data"].as_str()),
        (Some(id_a.as_str()), Some("psst"))
    );

    // Presence: A's member shows in B's list, with a join push to B.
    send(
        &mut wa,
        json!({"type":"subscribe","channel":"chat:lobby","requestId":3}),
    )
    .await;
    recv_type(&mut wa, "subscribed").await;
    let join = recv_type(&mut wb, "presence:join").await;
    assert_eq!(join["member"]["clientId"], id_a.as_str());
    send(
        &mut wb,
        json!({"type":"presence","channel":"chat:lobby","requestId":4}),
    )
    .await;
    let p = recv_type(&mut wb, "presence").await;
    let mut ids: Vec<&str> = p["clients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["clientId"].as_str().unwrap())
        .collect();
    ids.sort_unstable();
    let mut want = vec![id_a.as_str(), id_b.as_str()];
    want.sort_unstable();
    assert_eq!(ids, want, "{p}");
    // The publication reached A's own subscriber locally, once.
    send(
        &mut wb,
        json!({"type":"publish","channel":"chat:lobby","message":"from b","requestId":5}),
    )
    .await;
    assert_eq!(recv_type(&mut wa, "message").await["data"], "from b");

    // Resource change event: an insert on A reaches B's subscriber (each keeps its own
    // records with --memory).
    send(
        &mut wb,
        json!({"type":"subscribe","resource":"messages","requestId":6}),
    )
    .await;
    assert_eq!(
        recv_type(&mut wb, "subscribed").await["resource"],
        "messages"
    );
    send(
        &mut wa,
        json!({"type":"insert","resource":"messages","data":{"id":"m1","content":"shared"},"requestId":7}),
    )
    .await;
    assert_eq!(recv_type(&mut wa, "inserted").await["requestId"], 7);
    let ev = recv_type(&mut wb, "event").await;
    assert_eq!(
        (ev["event"].as_str(), ev["data"]["content"].as_str()),
        (Some("insert"), Some("shared")),
        "{ev}"
    );

    // Server API on A: a broadcast reaches B's clients, `send` reaches B's client by id.
    let demo_admin = [
        ("Authorization", "Bearer dev-admin"),
        ("Content-Type", "application/json"),
    ];
    let body = json!({"message":{"x":"everywhere"}}).to_string();
    let r = http(a, "POST", "/admin/broadcast", &demo_admin, Some(&body)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(recv(&mut wb).await, json!({"x":"everywhere"}));
    let body = json!({"clientId": id_b, "message":{"just":"b"}}).to_string();
    let r = http(a, "POST", "/admin/send", &demo_admin, Some(&body)).await;
    assert_eq!(
        (r.status, r.json()["delivered"].as_u64()),
        (200, Some(1)),
        "{}",
        r.body
    );
    assert_eq!(recv(&mut wb).await, json!({"just":"b"}));
    // A's own client got the broadcast locally.
    assert_eq!(recv(&mut wa).await, json!({"x":"everywhere"}));

    // Redis goes away: both nodes turn unready and refuse publications clearly.
    redis.kill().await.unwrap();
    let body = readyz_becomes(a, 503).await;
    assert_eq!(body["status"], "broker-unavailable", "{body}");
    readyz_becomes(b, 503).await;
    send(
        &mut wa,
        json!({"type":"publish","channel":"chat:lobby","message":"lost?","requestId":8}),
    )
    .await;
    let e = recv_type(&mut wa, "error").await;
    assert_eq!(
        (e["code"].as_str(), e["requestId"].as_u64()),
        (Some("UNAVAILABLE"), Some(8)),
        "{e}"
    );
    let metrics = http(a, "GET", "/metrics", &[], None).await.body;
    assert!(
        metrics.contains("switchboard_cluster_broker_up 0"),
        "{metrics}"
    );
    assert!(
        metrics.contains("switchboard_cluster_messages_sent_total{kind=\"append\"} 1"),
        "{metrics}"
    );

    // Redis is back on the same port: the nodes reconnect by themselves.
    let mut redis = start_redis(port, dir.path()).await;
    readyz_becomes(a, 200).await;
    readyz_becomes(b, 200).await;
    send(
        &mut wa,
        json!({"type":"publish","channel":"chat:lobby","message":"after","requestId":9}),
    )
    .await;
    assert_eq!(recv_type(&mut wa, "published").await["requestId"], 9);
    let m = loop {
        let m = recv_type(&mut wb, "message").await;
        if m["data"] == "after" {
            break m;
        }
    };
    assert_eq!(m["from"], id_a.as_str());
    // The snapshots exchanged on reconnection restore the directory: DMs work again.
    let sent = ask_until_found(
        &mut wb,
        json!({"type":"direct","to":id_a,"data":"back","ack":true}),
    )
    .await;
    assert_eq!(sent["delivered"], 1, "{sent}");
    assert_eq!(recv_type(&mut wa, "direct").await["data"], "back");

    for child in [&mut node_a, &mut node_b, &mut redis] {
        child.kill().await.unwrap();
    }
}

#[tokio::test]
async fn three_nodes_share_a_publication_and_direct_messages_in_every_direction() {
    if !redis_installed() {
        eprintln!("SKIPPED: redis-server is not installed (bash scripts/setup.sh installs it)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let broker = format!("redis://127.0.0.1:{port}");
    let mut redis = start_redis(port, dir.path()).await;
    let mut nodes = Vec::new();
    for name in ["a", "b", "c"] {
        let d = dir.path().join(name);
        std::fs::create_dir_all(&d).unwrap();
        nodes.push(start_node(&broker, &d).await);
    }
    let addrs: Vec<SocketAddr> = nodes.iter().map(|(_, addr)| *addr).collect();
    let mut clients = Vec::new();
    for addr in &addrs {
        readyz_becomes(*addr, 200).await;
        let (mut ws, welcome) = connect(*addr, "/").await;
        send(
            &mut ws,
            json!({"type":"subscribe","channel":"news","requestId":1}),
        )
        .await;
        assert_eq!(recv_type(&mut ws, "subscribed").await["channel"], "news");
        clients.push((ws, welcome["clientId"].as_str().unwrap().to_string()));
    }

    // A publication on the first node reaches the subscribers of the two others.
    send(
        &mut clients[0].0,
        json!({"type":"publish","channel":"news","message":"to all","requestId":2}),
    )
    .await;
    assert_eq!(
        recv_type(&mut clients[0].0, "published").await["requestId"],
        2
    );
    for (ws, _) in clients.iter_mut().skip(1) {
        assert_eq!(recv_type(ws, "message").await["data"], "to all");
    }

    // Direct messages from every node to the client of the next one.
    for i in 0..3 {
        let to = clients[(i + 1) % 3].1.clone();
        let sent = ask_until_found(
            &mut clients[i].0,
            json!({"type":"direct","to":to,"data":format!("from {i}"),"ack":true}),
        )
        .await;
        assert_eq!(sent["delivered"], 1, "{sent}");
        let d = recv_type(&mut clients[(i + 1) % 3].0, "direct").await;
        assert_eq!(d["data"], format!("from {i}"));
    }

    for (child, _) in nodes.iter_mut() {
        child.kill().await.unwrap();
    }
    redis.kill().await.unwrap();
}

#[tokio::test]
async fn a_killed_node_leaves_the_presence_lists_of_the_others_within_its_ttl() {
    if !redis_installed() {
        eprintln!("SKIPPED: redis-server is not installed (bash scripts/setup.sh installs it)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let broker = format!("redis://127.0.0.1:{port}/3");
    let mut redis = start_redis(port, dir.path()).await;
    let (mut node_a, a) = start_node(&broker, dir.path()).await;
    let (mut node_b, b) = start_node(&broker, dir.path()).await;
    readyz_becomes(a, 200).await;
    readyz_becomes(b, 200).await;
    let (mut wb, welcome_b) = connect(b, "/").await;
    let id_b = welcome_b["clientId"].as_str().unwrap().to_string();
    send(
        &mut wb,
        json!({"type":"subscribe","channel":"chat:room","requestId":1}),
    )
    .await;
    recv_type(&mut wb, "subscribed").await;
    let (mut wa, welcome_a) = connect(a, "/").await;
    let id_a = welcome_a["clientId"].as_str().unwrap().to_string();
    send(
        &mut wa,
        json!({"type":"subscribe","channel":"chat:room","requestId":2}),
    )
    .await;
    recv_type(&mut wa, "subscribed").await;
    assert_eq!(
        recv_type(&mut wb, "presence:join").await["member"]["clientId"],
        id_a.as_str()
    );

    // kill -9: no leave is ever sent; B forgets A once its heartbeats stop for the TTL.
    node_a.start_kill().unwrap();
    let _ = node_a.wait().await;
    let leave = recv_type_within(&mut wb, "presence:leave", CLUSTER_WAIT).await;
    assert_eq!(leave["member"]["clientId"], id_a.as_str());
    send(
        &mut wb,
        json!({"type":"presence","channel":"chat:room","requestId":3}),
    )
    .await;
    let p = recv_type(&mut wb, "presence").await;
    let ids: Vec<&str> = p["clients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["clientId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [id_b.as_str()], "{p}");
    send(
        &mut wb,
        json!({"type":"direct","to":id_a,"data":1,"ack":true,"requestId":4}),
    )
    .await;
    assert_eq!(recv_type(&mut wb, "error").await["code"], "NOT_FOUND");

    for child in [&mut node_b, &mut redis] {
        child.kill().await.unwrap();
    }
}

/// Poll `GET /admin/rooms/{room}` on `addr` until its `count` is `count`.
async fn room_count_becomes(addr: SocketAddr, room: &str, count: u64) {
    let admin = [("Authorization", "Bearer dev-admin")];
    tokio::time::timeout(CLUSTER_WAIT, async {
        loop {
            let r = http(addr, "GET", &format!("/admin/rooms/{room}"), &admin, None).await;
            if r.status == 200 && r.json()["count"] == count {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("room `{room}` on {addr} never counted {count} members"));
}

#[tokio::test]
async fn a_room_with_members_on_two_nodes_shares_messages_capacity_and_loses_a_killed_nodes_members(
) {
    if !redis_installed() {
        eprintln!("SKIPPED: redis-server is not installed (bash scripts/setup.sh installs it)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let broker = format!("redis://127.0.0.1:{port}/5");
    let mut redis = start_redis(port, dir.path()).await;
    let (mut node_a, a) = start_node(&broker, dir.path()).await;
    let (mut node_b, b) = start_node(&broker, dir.path()).await;
    readyz_becomes(a, 200).await;
    readyz_becomes(b, 200).await;
    let admin = [
        ("Authorization", "Bearer dev-admin"),
        ("Content-Type", "application/json"),
    ];

    // A room of two created through A exists on B too.
    let body = json!({"room":"team","capacity":2}).to_string();
    let r = http(a, "POST", "/admin/rooms", &admin, Some(&body)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    room_count_becomes(b, "team", 0).await;

    // One member on each node.
    let (mut wa, welcome_a) = connect(a, "/").await;
    let id_a = welcome_a["clientId"].as_str().unwrap().to_string();
    send(&mut wa, json!({"type":"join","room":"team","requestId":1})).await;
    assert_eq!(recv_type(&mut wa, "joined").await["members"], 1);
    room_count_becomes(b, "team", 1).await;
    let (mut wb, welcome_b) = connect(b, "/").await;
    let id_b = welcome_b["clientId"].as_str().unwrap().to_string();
    send(&mut wb, json!({"type":"join","room":"team","requestId":2})).await;
    assert_eq!(recv_type(&mut wb, "joined").await["members"], 2);
    let joined = recv_type(&mut wa, "room:joined").await;
    assert_eq!(joined["member"]["clientId"], id_b.as_str());

    // room:message from A reaches B's member; room:members lists both on either node.
    send(
        &mut wa,
        json!({"type":"room:message","room":"team","data":{"text":"hi team"},"requestId":3}),
    )
    .await;
    let m = recv_type(&mut wb, "room:message").await;
    assert_eq!(
        (m["from"].as_str(), m["data"]["text"].as_str()),
        (Some(id_a.as_str()), Some("hi team")),
        "{m}"
    );
    send(
        &mut wb,
        json!({"type":"room:members","room":"team","requestId":4}),
    )
    .await;
    let members = recv_type(&mut wb, "room:members").await;
    let mut ids: Vec<&str> = members["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["clientId"].as_str().unwrap())
        .collect();
    ids.sort_unstable();
    let mut want = vec![id_a.as_str(), id_b.as_str()];
    want.sort_unstable();
    assert_eq!(ids, want, "{members}");

    // The room is full across the nodes: a second client of A is refused.
    let (mut wa2, _) = connect(a, "/").await;
    send(&mut wa2, json!({"type":"join","room":"team","requestId":5})).await;
    let full = recv_type(&mut wa2, "error").await;
    assert_eq!(full["code"], "ROOM_FULL", "{full}");

    // sendToRoom through B's server API reaches A's member.
    let body = json!({"message":{"note":"from b's api"}}).to_string();
    let r = http(b, "POST", "/admin/rooms/team/send", &admin, Some(&body)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(recv(&mut wa).await, json!({"note":"from b's api"}));

    // kill -9 B: A's member gets `room:left` within the node TTL, and the place is free.
    node_b.start_kill().unwrap();
    let _ = node_b.wait().await;
    let left = recv_type_within(&mut wa, "room:left", CLUSTER_WAIT).await;
    assert_eq!(left["clientId"], id_b.as_str());
    send(&mut wa2, json!({"type":"join","room":"team","requestId":6})).await;
    assert_eq!(recv_type(&mut wa2, "joined").await["members"], 2);

    for child in [&mut node_a, &mut redis] {
        child.kill().await.unwrap();
    }
}

/// Subscribe `ws` to `channel` (with `since` when given); returns `subscribed`.
async fn subscribe(ws: &mut Ws, channel: &str, since: Option<(u64, &str)>) -> Value {
    let mut m = json!({"type":"subscribe","channel":channel,"requestId":"sub"});
    if let Some((offset, epoch)) = since {
        m["since"] = json!({"offset": offset, "epoch": epoch});
    }
    send(ws, m).await;
    recv_type_within(ws, "subscribed", CLUSTER_WAIT).await
}

/// Publish `message` on `channel` from `ws` and wait for `published`.
async fn publish(ws: &mut Ws, channel: &str, message: &str) {
    send(
        ws,
        json!({"type":"publish","channel":channel,"message":message,"requestId":"pub"}),
    )
    .await;
    let p = recv_type_within(ws, "published", CLUSTER_WAIT).await;
    assert_eq!(p["requestId"], "pub", "{p}");
}

fn data_of(publications: &Value) -> Vec<(u64, String)> {
    publications
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["offset"].as_u64().unwrap(),
                p["data"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn history_offsets_and_epochs_are_shared_and_survive_a_killed_node_and_a_restart() {
    if !redis_installed() {
        eprintln!("SKIPPED: redis-server is not installed (bash scripts/setup.sh installs it)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let broker = format!("redis://127.0.0.1:{port}/5");
    let mut redis = start_redis(port, dir.path()).await;
    let (mut node_a, a) = start_node(&broker, dir.path()).await;
    let (mut node_b, b) = start_node(&broker, dir.path()).await;
    readyz_becomes(a, 200).await;
    readyz_becomes(b, 200).await;

    // One epoch and one sequence of offsets for both nodes.
    let (mut wa, _) = connect(a, "/").await;
    let (mut wb, _) = connect(b, "/").await;
    let sa = subscribe(&mut wa, "chat:h", None).await;
    let epoch = sa["epoch"].as_str().unwrap().to_string();
    assert_eq!(sa["offset"], 0, "{sa}");
    let sb = subscribe(&mut wb, "chat:h", None).await;
    assert_eq!(sb["epoch"], epoch.as_str(), "{sb}");
    publish(&mut wb, "chat:h", "one").await;
    let m = recv_type_within(&mut wa, "message", CLUSTER_WAIT).await;
    assert_eq!(
        (
            m["offset"].as_u64(),
            m["epoch"].as_str(),
            m["data"].as_str()
        ),
        (Some(1), Some(epoch.as_str()), Some("one"))
    );
    publish(&mut wa, "chat:h", "two").await;
    let m = recv_type_within(&mut wb, "message", CLUSTER_WAIT).await;
    assert_eq!(
        (m["offset"].as_u64(), m["data"].as_str()),
        (Some(2), Some("two"))
    );

    // kill -9 A: its client saw offset 2; B publishes while it is away.
    node_a.start_kill().unwrap();
    let _ = node_a.wait().await;
    publish(&mut wb, "chat:h", "three").await;
    publish(&mut wb, "chat:h", "four").await;
    let (mut wa2, _) = connect(b, "/").await;
    let r = subscribe(&mut wa2, "chat:h", Some((2, &epoch))).await;
    assert_eq!(r["recovered"], true, "{r}");
    assert_eq!(
        data_of(&r["publications"]),
        [(3, "three".to_string()), (4, "four".to_string())]
    );
    assert_eq!(
        (r["offset"].as_u64(), r["epoch"].as_str()),
        (Some(4), Some(epoch.as_str()))
    );

    // B goes too; a node started afterwards recovers from Redis alone.
    node_b.start_kill().unwrap();
    let _ = node_b.wait().await;
    let (mut node_c, c) = start_node(&broker, dir.path()).await;
    readyz_becomes(c, 200).await;
    let (mut wc, _) = connect(c, "/").await;
    let r = subscribe(&mut wc, "chat:h", Some((1, &epoch))).await;
    assert_eq!(r["recovered"], true, "{r}");
    assert_eq!(
        data_of(&r["publications"])
            .into_iter()
            .map(|(o, _)| o)
            .collect::<Vec<_>>(),
        [2, 3, 4]
    );
    publish(&mut wc, "chat:h", "five").await;
    send(
        &mut wc,
        json!({"type":"history","channel":"chat:h","limit":2,"requestId":"h"}),
    )
    .await;
    let h = recv_type_within(&mut wc, "history", CLUSTER_WAIT).await;
    assert_eq!(
        data_of(&h["publications"]),
        [(4, "four".to_string()), (5, "five".to_string())]
    );
    assert_eq!(h["epoch"], epoch.as_str());

    // The server API's publish answers with the offset the broker assigned.
    let demo_admin = [
        ("Authorization", "Bearer dev-admin"),
        ("Content-Type", "application/json"),
    ];
    let body = json!({"channel":"chat:h","data":"six"}).to_string();
    let r = http(c, "POST", "/admin/publish", &demo_admin, Some(&body)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert_eq!(
        (
            v["offset"].as_u64(),
            v["epoch"].as_str(),
            v["delivered"].as_u64()
        ),
        (Some(6), Some(epoch.as_str()), Some(1)),
        "{v}"
    );
    let m = recv_type_within(&mut wc, "message", CLUSTER_WAIT).await;
    assert_eq!(
        (m["offset"].as_u64(), m["data"].as_str()),
        (Some(6), Some("six"))
    );

    for child in [&mut node_c, &mut redis] {
        child.kill().await.unwrap();
    }
}

#[tokio::test]
async fn a_broker_url_that_is_not_redis_is_refused_at_startup_with_the_expected_form() {
    let out = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--memory",
            "--broker",
            "postgres://x",
        ])
        .env_remove("SWITCHBOARD_BROKER")
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("redis://HOST:PORT[/DB]"), "{err}");
}
