//! The cluster's stream scripts against a real redis-server (127.0.0.1, temp dir, no
//! persistence, killed at the end): offsets and epoch, trimming to `size`, entries older
//! than `ttlMs` skipped, the TTLs of the two keys, and the sequenced message published on
//! the bus. Skipped, with a message, when `redis-server` is not installed.

use std::process::Stdio;
use std::time::Duration;

use engine::cluster::{ClusterMessage, StreamPublication, StreamSpec};
use futures_util::StreamExt;
use switchboard::cluster_streams;
use tokio::process::Command;

fn redis_installed() -> bool {
    std::process::Command::new("redis-server")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn spec(key: &str, size: usize, ttl_ms: u64) -> StreamSpec {
    StreamSpec {
        key: key.into(),
        size,
        ttl_ms,
        meta_ttl_ms: 60_000,
        epoch: "EPOCH1".into(),
    }
}

fn publication(n: u64) -> StreamPublication {
    StreamPublication {
        node: "n1".into(),
        request: None,
        tenant: None,
        channel: "chat:x".into(),
        from: "c1".into(),
        data: Some(serde_json::json!({"n": n, "text": "quote \" and \\ and ü"})),
        timestamp: "2026-01-01T00:00:00.000Z".into(),
        resource_too: false,
        offset: 0,
        epoch: String::new(),
    }
}

#[tokio::test]
async fn the_scripts_order_trim_expire_and_publish_streams_as_documented() {
    if !redis_installed() {
        eprintln!("SKIPPED: redis-server is not installed (bash scripts/setup.sh installs it)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut redis = Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
        ])
        .args(["--appendonly", "no", "--dir"])
        .arg(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("redis-server starts");
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/2")).unwrap();
    let mut conn = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Ok(c) = client.get_multiplexed_async_connection().await {
                return c;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("redis-server answers");
    let scripts = cluster_streams::load(&mut conn).await.unwrap();
    let mut pubsub = client.get_async_pubsub().await.unwrap();
    pubsub.subscribe("bus").await.unwrap();
    let mut bus = pubsub.into_on_message();

    // A read creates the epoch (TTL ttlMs) with nothing in it.
    let s = spec("chat:x", 3, 60_000);
    let f = cluster_streams::fetch(&mut conn, &scripts, &s)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (f.epoch.as_str(), f.offset, f.publications.len()),
        ("EPOCH1", 0, 0)
    );

    // Five appends: offsets 1..5 in the first epoch (a later candidate epoch is ignored),
    // each published on the bus; the log keeps the last 3.
    for n in 1..=5 {
        let mut pipe = redis::pipe();
        let mut s = s.clone();
        s.epoch = format!("OTHER{n}");
        cluster_streams::add_append(&mut pipe, &scripts, "bus", &s, publication(n)).unwrap();
        pipe.query_async::<()>(&mut conn).await.unwrap();
        let msg = tokio::time::timeout(Duration::from_secs(5), bus.next())
            .await
            .unwrap()
            .unwrap();
        let m: ClusterMessage = serde_json::from_slice(msg.get_payload_bytes()).unwrap();
        let ClusterMessage::Sequenced(p) = m else {
            panic!("{m:?}")
        };
        assert_eq!((p.offset, p.epoch.as_str()), (n, "EPOCH1"));
        assert_eq!(p.data, publication(n).data);
    }
    let f = cluster_streams::fetch(&mut conn, &scripts, &s)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(f.offset, 5);
    let offsets: Vec<u64> = f.publications.iter().map(|p| p.offset).collect();
    assert_eq!(offsets, [3, 4, 5]);
    let meta_ttl: i64 = redis::cmd("PTTL")
        .arg("switchboard:meta:chat:x")
        .query_async(&mut conn)
        .await
        .unwrap();
    let log_ttl: i64 = redis::cmd("PTTL")
        .arg("switchboard:log:chat:x")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(
        meta_ttl > 59_000 && meta_ttl <= 60_000,
        "meta TTL {meta_ttl}"
    );
    assert!(log_ttl > 59_000 && log_ttl <= 60_000, "log TTL {log_ttl}");

    // Entries older than ttlMs are skipped; the position stays.
    let short = spec("chat:short", 10, 100);
    let mut pipe = redis::pipe();
    cluster_streams::add_append(&mut pipe, &scripts, "bus", &short, publication(1)).unwrap();
    pipe.query_async::<()>(&mut conn).await.unwrap();
    tokio::time::sleep(Duration::from_millis(150)).await;
    let f = cluster_streams::fetch(&mut conn, &scripts, &short)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((f.offset, f.publications.len()), (1, 0));

    // A tenant's stream key (with NUL separators) is its own stream.
    let tenant = spec("\0acme\0chat:x", 3, 60_000);
    let f = cluster_streams::fetch(&mut conn, &scripts, &tenant)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(f.offset, 0);

    redis.kill().await.unwrap();
}
