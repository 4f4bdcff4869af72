//! End-to-end WebSocket behaviour over real sockets against an in-process server.

mod common;

use std::time::Duration;

use common::*;
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

#[tokio::test]
async fn welcome_frame() {
    let server = start(json!({})).await;
    let (_ws, welcome) = connect(server.local_addr(), "/").await;
    assert_eq!(welcome["protocolVersion"], 1);
    assert_eq!(welcome["clientId"].as_str().unwrap().len(), 22);
    assert!(welcome["user"].is_null());
    // The second route works too, and every client gets its own id.
    let (_ws2, w2) = connect(server.local_addr(), "/ws").await;
    assert_ne!(w2["clientId"], welcome["clientId"]);
    server.shutdown().await;
}

#[tokio::test]
async fn auth_by_query_header_api_key_and_subprotocol() {
    let server = start(json!({})).await;
    let addr = server.local_addr();

    let (_a, w) = connect(addr, "/?token=key_user").await;
    assert_eq!(w["user"]["id"], "u1");
    assert_eq!(w["user"]["role"], "user");

    let token = jwt("alice", "admin", &[]);
    let (mut b, _) = try_connect(addr, "/", &[("Authorization", &format!("Bearer {token}"))])
        .await
        .unwrap();
    assert_eq!(recv(&mut b).await["user"]["id"], "alice");

    let (mut c, _) = try_connect(addr, "/", &[("X-API-Key", "key_admin")])
        .await
        .unwrap();
    assert_eq!(recv(&mut c).await["user"]["id"], "admin1");

    let offered = format!("switchboard.v1, bearer.{token}");
    let (mut d, resp) = try_connect(addr, "/", &[("Sec-WebSocket-Protocol", &offered)])
        .await
        .unwrap();
    assert_eq!(
        resp.headers().get("sec-websocket-protocol").unwrap(),
        "switchboard.v1"
    );
    assert_eq!(recv(&mut d).await["user"]["id"], "alice");
    server.shutdown().await;
}

fn rejection(err: WsError) -> (u16, serde_json::Value, String) {
    match err {
        WsError::Http(resp) => {
            let ct = resp
                .headers()
                .get("content-type")
                .map(|v| v.to_str().unwrap().to_string())
                .unwrap_or_default();
            let body = resp.body().clone().expect("rejection has a body");
            (
                resp.status().as_u16(),
                serde_json::from_slice(&body).unwrap(),
                ct,
            )
        }
        other => panic!("expected an HTTP rejection, got {other}"),
    }
}

#[tokio::test]
async fn rejected_upgrades_have_json_bodies() {
    let server = start(json!({})).await;
    let addr = server.local_addr();

    let (status, body, ct) = rejection(try_connect(addr, "/?token=wrong", &[]).await.unwrap_err());
    assert_eq!((status, body["code"].as_str()), (401, Some("UNAUTHORIZED")));
    assert_eq!(ct, "application/json");

    let (status, body, _) = rejection(try_connect(addr, "/nowhere", &[]).await.unwrap_err());
    assert_eq!((status, body["code"].as_str()), (404, Some("NOT_FOUND")));

    // Route needing a scope the user lacks.
    let (status, body, _) = rejection(
        try_connect(addr, "/secure?token=key_user", &[])
            .await
            .unwrap_err(),
    );
    assert_eq!((status, body["code"].as_str()), (403, Some("FORBIDDEN")));
    // ... and with it.
    let token = jwt("v", "user", &["vip"]);
    connect(addr, &format!("/secure?token={token}")).await;

    // Origin not allowed.
    let (status, body, _) = rejection(
        try_connect(addr, "/browser", &[("Origin", "https://evil.example")])
            .await
            .unwrap_err(),
    );
    assert_eq!((status, body["code"].as_str()), (403, Some("FORBIDDEN")));
    server.shutdown().await;
}

#[tokio::test]
async fn subscribe_then_admin_insert_delivers_an_event_with_filters() {
    let server = start(json!({})).await;
    let addr = server.local_addr();
    let (mut all, _) = connect(addr, "/").await;
    let (mut only_a, _) = connect(addr, "/").await;
    send(
        &mut all,
        json!({"type":"subscribe","resource":"messages","requestId":1}),
    )
    .await;
    assert_eq!(recv(&mut all).await["type"], "subscribed");
    send(
        &mut only_a,
        json!({"type":"subscribe","resource":"messages","filter":{"channel":"a"},"requestId":2}),
    )
    .await;
    let sub = recv(&mut only_a).await;
    assert_eq!(
        (sub["type"].as_str(), sub["requestId"].as_i64()),
        (Some("subscribed"), Some(2))
    );

    let r = admin(
        addr,
        "POST",
        "/admin/resources/messages",
        Some(json!({"content":"hi","channel":"b"})),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.json()["delivered"], 1);
    let ev = recv(&mut all).await;
    assert_eq!(
        (ev["type"].as_str(), ev["event"].as_str()),
        (Some("event"), Some("insert"))
    );
    assert_eq!(ev["data"]["content"], "hi");
    assert_silent(&mut only_a, 200).await;

    let r = admin(
        addr,
        "POST",
        "/admin/resources/messages",
        Some(json!({"id":"m2","content":"yo","channel":"a"})),
    )
    .await;
    assert_eq!(r.json()["delivered"], 2);
    assert_eq!(recv(&mut only_a).await["data"]["id"], "m2");
    assert_eq!(recv(&mut all).await["data"]["id"], "m2");

    // Update and delete fan out too.
    let r = admin(
        addr,
        "PATCH",
        "/admin/resources/messages/m2",
        Some(json!({"content":"edited"})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let ev = recv(&mut all).await;
    assert_eq!(ev["event"], "update");
    assert_eq!(ev["data"]["$before"]["content"], "yo");
    let r = admin(addr, "DELETE", "/admin/resources/messages/m2", None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(recv(&mut all).await["event"], "delete");
    let r = admin(addr, "DELETE", "/admin/resources/messages/m2", None).await;
    assert_eq!(
        (r.status, r.json()["code"].as_str()),
        (404, Some("NOT_FOUND"))
    );
    server.shutdown().await;
}

#[tokio::test]
async fn socket_crud_goes_through_the_store() {
    let server = start(json!({})).await;
    let (mut ws, _) = connect(server.local_addr(), "/").await;
    send(&mut ws, json!({"type":"insert","resource":"messages","data":{"id":"x","content":"c"},"requestId":1})).await;
    let ins = recv(&mut ws).await;
    assert_eq!(ins["type"], "inserted", "{ins}");
    send(
        &mut ws,
        json!({"type":"get","resource":"messages","id":"x","requestId":2}),
    )
    .await;
    let got = recv(&mut ws).await;
    assert_eq!(
        (got["type"].as_str(), got["data"]["content"].as_str()),
        (Some("data"), Some("c"))
    );
    send(
        &mut ws,
        json!({"type":"list","resource":"messages","requestId":3}),
    )
    .await;
    let list = recv(&mut ws).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    server.shutdown().await;
}

#[tokio::test]
async fn rooms_and_direct_messages() {
    let server = start(json!({})).await;
    let addr = server.local_addr();
    let (mut a, wa) = connect(addr, "/").await;
    let (mut b, wb) = connect(addr, "/").await;
    send(&mut a, json!({"type":"join","room":"lobby","requestId":1})).await;
    assert_eq!(recv(&mut a).await["type"], "joined");
    send(&mut b, json!({"type":"join","room":"lobby","requestId":1})).await;
    assert_eq!(recv_type(&mut b, "joined").await["members"], 2);
    assert_eq!(recv(&mut a).await["type"], "room:joined");

    send(
        &mut a,
        json!({"type":"room:message","room":"lobby","data":{"t":"hey"}}),
    )
    .await;
    let m = recv(&mut b).await;
    assert_eq!(
        (m["type"].as_str(), m["from"].as_str()),
        (Some("room:message"), wa["clientId"].as_str())
    );
    assert_eq!(m["data"]["t"], "hey");
    assert_silent(&mut a, 150).await;

    let rooms = admin(addr, "GET", "/admin/rooms", None).await.json();
    assert_eq!(rooms[0]["room"], "lobby");
    assert_eq!(rooms[0]["members"], 2);

    send(
        &mut b,
        json!({"type":"direct","to":wa["clientId"],"data":"psst","ack":true,"requestId":9}),
    )
    .await;
    let d = recv(&mut a).await;
    assert_eq!(
        (d["type"].as_str(), d["from"].as_str()),
        (Some("direct"), wb["clientId"].as_str())
    );
    let ack = recv(&mut b).await;
    assert_eq!(
        (ack["type"].as_str(), ack["delivered"].as_i64()),
        (Some("sent"), Some(1))
    );
    server.shutdown().await;
}

#[tokio::test]
async fn publish_from_clients_and_admin() {
    let server = start(json!({})).await;
    let addr = server.local_addr();
    let (mut sub, _) = connect(addr, "/").await;
    let (mut pubr, wp) = connect(addr, "/").await;
    send(
        &mut sub,
        json!({"type":"subscribe","channel":"news","requestId":1}),
    )
    .await;
    assert_eq!(recv(&mut sub).await["type"], "subscribed");
    send(
        &mut pubr,
        json!({"type":"publish","channel":"news","message":{"n":1},"requestId":2}),
    )
    .await;
    let ack = recv(&mut pubr).await;
    assert_eq!(
        (ack["type"].as_str(), ack["delivered"].as_i64()),
        (Some("published"), Some(1))
    );
    let m = recv(&mut sub).await;
    assert_eq!(
        (m["type"].as_str(), m["from"].as_str()),
        (Some("message"), wp["clientId"].as_str())
    );
    assert_eq!(m["data"]["n"], 1);

    let r = admin(
        addr,
        "POST",
        "/admin/publish",
        Some(json!({"channel":"news","data":{"n":2}})),
    )
    .await;
    assert_eq!((r.status, r.json()["delivered"].as_i64()), (200, Some(1)));
    let m = recv(&mut sub).await;
    assert_eq!(
        (m["from"].as_str(), m["data"]["n"].as_i64()),
        (Some("server"), Some(2))
    );
    server.shutdown().await;
}

#[tokio::test]
async fn rate_limit_answers_with_an_error_frame() {
    let server = start(json!({"rateLimit": {"enabled": true, "maxRequests": 3, "windowMs": 60000, "closeAfter": 2}})).await;
    let (mut ws, _) = connect(server.local_addr(), "/").await;
    for i in 0..3 {
        send(&mut ws, json!({"type":"ping","requestId":i})).await;
        assert_eq!(recv(&mut ws).await["type"], "pong");
    }
    send(&mut ws, json!({"type":"ping","requestId":3})).await;
    let e = recv(&mut ws).await;
    assert_eq!(
        (e["type"].as_str(), e["code"].as_str()),
        (Some("error"), Some("RATE_LIMIT_EXCEEDED"))
    );
    // Repeated abuse closes with 1008.
    send(&mut ws, json!({"type":"ping","requestId":4})).await;
    assert_eq!(closed(&mut ws).await.0, 1008);
    server.shutdown().await;
}

#[tokio::test]
async fn oversize_payload_closes_with_1009() {
    let server = start(json!({"maxPayloadSize": 1024})).await;
    let (mut ws, _) = connect(server.local_addr(), "/").await;
    // Exactly at the limit is fine (the engine answers: not JSON).
    ws.send(Message::Text("x".repeat(1024).into()))
        .await
        .unwrap();
    assert_eq!(recv(&mut ws).await["code"], "INVALID_JSON");
    ws.send(Message::Text("x".repeat(4096).into()))
        .await
        .unwrap();
    let (code, reason) = closed(&mut ws).await;
    assert_eq!(code, 1009, "{reason}");
    let m = http(server.local_addr(), "GET", "/metrics", &[], None).await;
    assert!(
        m.body.contains("switchboard_oversize_frame_closes_total 1"),
        "{}",
        m.body
    );
    server.shutdown().await;
}

#[tokio::test]
async fn heartbeat_timeout_closes_with_4000() {
    let server = start(json!({"heartbeatInterval": 150, "heartbeatTimeout": 150})).await;
    let (mut quiet, _) = connect(server.local_addr(), "/").await;
    let (mut alive, _) = connect(server.local_addr(), "/").await;
    // `alive` keeps reading, so tungstenite answers every ping with a pong.
    let keep = tokio::spawn(async move {
        let deadline = tokio::time::Instant::now() + Duration::from_millis(800);
        while let Ok(Some(Ok(m))) = tokio::time::timeout_at(deadline, alive.next()).await {
            assert!(
                !matches!(m, Message::Close(_)),
                "the live client was closed: {m:?}"
            );
        }
    });
    // `quiet` does not read, so the ping goes unanswered.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(closed(&mut quiet).await, (4000, "heartbeat timeout".into()));
    keep.await.unwrap();
    server.shutdown().await;
}

#[tokio::test]
async fn slow_consumer_is_closed_and_others_keep_up() {
    let server = start(json!({
        "limits": {"maxBufferedBytes": 65536, "slowConsumer": "close"},
        "server": {"outboundQueue": 64},
    }))
    .await;
    let addr = server.local_addr();
    let (mut slow, _) = connect(addr, "/").await;
    let (mut fast, _) = connect(addr, "/").await;
    for ws in [&mut slow, &mut fast] {
        send(
            ws,
            json!({"type":"subscribe","channel":"firehose","requestId":1}),
        )
        .await;
        assert_eq!(recv(ws).await["type"], "subscribed");
    }
    let (mut publisher, _) = connect(addr, "/").await;
    let payload = "p".repeat(16 * 1024);
    // Lockstep: the fast client reads every message before the next is published, so
    // only the client that never reads falls behind (32 MB > any loopback buffering).
    let mut metrics = json!(null);
    for i in 0..4000 {
        send(
            &mut publisher,
            json!({"type":"publish","channel":"firehose","message":{"i":i,"p":payload}}),
        )
        .await;
        assert_eq!(
            recv_type(&mut publisher, "published").await["type"],
            "published"
        );
        let m = recv_type(&mut fast, "message").await;
        assert_eq!(m["data"]["i"], i);
        if i % 50 == 49 {
            metrics = admin(addr, "GET", "/admin/metrics", None).await.json();
            if metrics["closedSlowConsumer"] == 1 {
                break;
            }
        }
    }
    assert_eq!(metrics["closedSlowConsumer"], 1, "{metrics}");
    assert_eq!(metrics["currentConnections"], 2, "{metrics}");
    // The slow client eventually sees 1013 once it reads (or its socket was dropped).
    let end = close_code_after_reading(&mut slow, Duration::from_secs(15)).await;
    assert!(matches!(end, Some(1013) | None), "{end:?}");
    server.shutdown().await;
}
