//! Channel streams end to end: recovery after a reconnect at scale, and the server API
//! (Rust and admin HTTP) publishing into a stream and reading its history and presence.

mod common;

use common::*;
use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

fn streams() -> Value {
    json!({"channels": {"namespaces": [
        {"pattern": "chat:*", "history": {"size": 200, "ttlMs": 300000},
         "presence": true, "joinLeave": false}
    ]}})
}

/// 1,000 clients subscribe and see a first publication; all disconnect; the server
/// publishes a burst of 100; all reconnect with `since`. Every client must get every
/// missed publication exactly once, in order (`recovered: true`), then the next live
/// publication exactly once, and nothing else before its `pong`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_clients_reconnect_after_a_burst_and_see_every_publication_once_in_order() {
    const CLIENTS: usize = 1000;
    const BURST: u64 = 100;
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let server = start(streams()).await;
    let addr = server.local_addr();
    let subscribe = json!({"type": "subscribe", "channel": "chat:burst"});

    let clients: Vec<Ws> = futures_util::stream::iter(0..CLIENTS)
        .map(|_| {
            let subscribe = subscribe.clone();
            async move {
                let (mut ws, _) = connect(addr, "/").await;
                send(&mut ws, subscribe).await;
                let s = recv_type(&mut ws, "subscribed").await;
                assert_eq!(s["offset"], 0, "{s}");
                ws
            }
        })
        .buffer_unordered(64)
        .collect()
        .await;
    let first = server
        .command(engine::Command::Publish {
            channel: "chat:burst".into(),
            data: Some(json!({"n": 0})),
            tenant: None,
        })
        .await
        .unwrap();
    assert_eq!(first["delivered"], CLIENTS);
    let epoch = first["epoch"].as_str().unwrap().to_string();
    // Every client sees offset 1, then disconnects.
    futures_util::stream::iter(clients)
        .for_each_concurrent(64, |mut ws| async move {
            let m = recv_type(&mut ws, "message").await;
            assert_eq!(m["offset"], 1);
            ws.close(None).await.unwrap();
            while let Some(Ok(msg)) = ws.next().await {
                if matches!(msg, Message::Close(_)) {
                    break;
                }
            }
        })
        .await;

    // The burst, while nobody is connected.
    for n in 1..=BURST {
        let r = server
            .command(engine::Command::Publish {
                channel: "chat:burst".into(),
                data: Some(json!({"n": n})),
                tenant: None,
            })
            .await
            .unwrap();
        assert_eq!(r["offset"], n + 1);
    }

    let since = json!({"type": "subscribe", "channel": "chat:burst",
                       "since": {"offset": 1, "epoch": epoch}});
    let clients: Vec<Ws> = futures_util::stream::iter(0..CLIENTS)
        .map(|_| {
            let since = since.clone();
            async move {
                let (mut ws, _) = connect(addr, "/").await;
                send(&mut ws, since).await;
                let s = recv_type(&mut ws, "subscribed").await;
                assert_eq!(s["recovered"], true, "{s}");
                assert_eq!(s["offset"], BURST + 1);
                let got: Vec<(u64, u64)> = s["publications"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|p| {
                        (
                            p["offset"].as_u64().unwrap(),
                            p["data"]["n"].as_u64().unwrap(),
                        )
                    })
                    .collect();
                let want: Vec<(u64, u64)> = (1..=BURST).map(|n| (n + 1, n)).collect();
                assert_eq!(got, want);
                ws
            }
        })
        .buffer_unordered(64)
        .collect()
        .await;

    // One live publication: exactly once, and nothing else before the pong.
    let live = server
        .command(engine::Command::Publish {
            channel: "chat:burst".into(),
            data: Some(json!({"n": "live"})),
            tenant: None,
        })
        .await
        .unwrap();
    assert_eq!(live["delivered"], CLIENTS);
    futures_util::stream::iter(clients)
        .for_each_concurrent(64, |mut ws| async move {
            let m = recv(&mut ws).await;
            assert_eq!(
                (m["type"].clone(), m["offset"].clone()),
                (json!("message"), json!(BURST + 2))
            );
            send(&mut ws, json!({"type": "ping", "requestId": 1})).await;
            assert_eq!(recv(&mut ws).await["type"], "pong");
        })
        .await;
    server.shutdown().await;
}

#[tokio::test]
async fn admin_api_publishes_into_a_stream_and_reads_history_and_presence() {
    let server = start(json!({"channels": {"namespaces": [
        {"pattern": "chat:*", "history": {"size": 10, "ttlMs": 300000}, "presence": true}
    ]}}))
    .await;
    let addr = server.local_addr();
    let (mut ws, welcome) = connect(addr, "/?token=key_user").await;
    send(&mut ws, json!({"type": "subscribe", "channel": "chat:a"})).await;
    recv_type(&mut ws, "subscribed").await;

    let r = admin(
        addr,
        "POST",
        "/admin/publish",
        Some(json!({"channel": "chat:a", "data": "hi"})),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["offset"], 1);
    let epoch = r.json()["epoch"].as_str().unwrap().to_string();
    assert_eq!(recv_type(&mut ws, "message").await["offset"], 1);

    let h = admin(addr, "GET", "/admin/channels/chat:a/history?limit=5", None).await;
    assert_eq!(h.status, 200);
    assert_eq!(h.json()["publications"][0]["data"], "hi");
    assert_eq!(h.json()["epoch"], epoch.as_str());
    let gone = admin(
        addr,
        "GET",
        &format!("/admin/channels/chat:a/history?sinceOffset=9&sinceEpoch={epoch}"),
        None,
    )
    .await;
    assert_eq!(gone.status, 410);
    assert_eq!(gone.json()["code"], "UNRECOVERABLE_POSITION");
    let bad = admin(
        addr,
        "GET",
        "/admin/channels/chat:a/history?sinceOffset=1",
        None,
    )
    .await;
    assert_eq!(bad.status, 400);

    let p = admin(addr, "GET", "/admin/channels/chat:a/presence", None).await;
    assert_eq!(p.status, 200);
    assert_eq!(p.json()["clients"][0]["clientId"], welcome["clientId"]);
    let s = admin(addr, "GET", "/admin/channels/chat:a/presence/stats", None).await;
    assert_eq!(
        (s.json()["clients"].clone(), s.json()["users"].clone()),
        (json!(1), json!(1))
    );
    let none = admin(addr, "GET", "/admin/channels/plain/presence", None).await;
    assert_eq!(none.status, 404);

    // The Rust API reads the same.
    let h = server
        .command(engine::Command::History {
            channel: "chat:a".into(),
            limit: None,
            since: None,
            reverse: false,
            tenant: None,
        })
        .await
        .unwrap();
    assert_eq!(h["offset"], 1);
    server.shutdown().await;
}
