//! Plain HTTP on the WebSocket port: health, readiness, metrics, server info, the admin
//! API, graceful drain and TLS.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use serde_json::json;

#[tokio::test]
async fn health_readiness_metrics_and_server_info() {
    let server = start(json!({})).await;
    let addr = server.local_addr();
    let r = http(addr, "GET", "/healthz", &[], None).await;
    assert_eq!((r.status, r.json()["status"].as_str()), (200, Some("ok")));
    let r = http(addr, "GET", "/readyz", &[], None).await;
    assert_eq!(
        (r.status, r.json()["status"].as_str()),
        (200, Some("ready"))
    );

    let (mut ws, _) = connect(addr, "/").await;
    send(&mut ws, json!({"type":"ping","requestId":1})).await;
    recv(&mut ws).await;
    send(&mut ws, json!({"type":"nope"})).await;
    assert_eq!(recv(&mut ws).await["code"], "UNKNOWN_MESSAGE_TYPE");
    let r = admin(
        addr,
        "POST",
        "/admin/broadcast",
        Some(json!({"message":{"x":1}})),
    )
    .await;
    assert_eq!(r.json()["delivered"], 1);
    assert_eq!(recv(&mut ws).await["x"], 1);
    let r = http(addr, "GET", "/metrics", &[], None).await;
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").unwrap().starts_with("text/plain"));
    for needle in [
        "switchboard_connections_open 1",
        "switchboard_messages_received_by_type_total{type=\"ping\"} 1",
        "switchboard_errors_total{code=\"UNKNOWN_MESSAGE_TYPE\"} 1",
        // Sent frames by type, labelled by the engine.
        "switchboard_messages_sent_by_type_total{type=\"connected\"} 1",
        "switchboard_messages_sent_by_type_total{type=\"pong\"} 1",
        "switchboard_messages_sent_by_type_total{type=\"error\"} 1",
        "switchboard_messages_sent_by_type_total{type=\"raw\"} 1",
        "switchboard_fanout_deliveries_total",
        "switchboard_dropped_slow_consumer_total",
        "switchboard_pending_host_calls",
        "switchboard_engine_handle_seconds_count",
    ] {
        assert!(r.body.contains(needle), "missing {needle}:\n{}", r.body);
    }

    let key = format!("Bearer {ADMIN}");
    for path in ["/", "/ws", "/ws/"] {
        let info = http(addr, "GET", path, &[("Authorization", &key)], None).await;
        assert_eq!(info.status, 200, "{path}");
        assert_eq!(info.json()["clients"], 1);
        assert_eq!(info.json()["protocolVersion"], 1);
    }
    let r = http(addr, "GET", "/nothing-here", &[], None).await;
    assert_eq!(
        (r.status, r.json()["code"].as_str()),
        (404, Some("NOT_FOUND"))
    );
    server.shutdown().await;
}

#[tokio::test]
async fn plain_get_on_a_route_with_parameters_is_server_info_like_get_root() {
    let server = start(json!({"routes": [{"path": "/"}, {"path": "/ws/game/:sessionId"}]})).await;
    let addr = server.local_addr();
    let root = http(addr, "GET", "/", &[], None).await;
    assert_eq!(root.status, 200);
    for path in ["/ws/game/42", "/ws/game/42/"] {
        let r = http(addr, "GET", path, &[], None).await;
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.json(), root.json(), "{path}");
    }
    for path in ["/ws/game", "/ws/game/42/x"] {
        let r = http(addr, "GET", path, &[], None).await;
        assert_eq!(
            (r.status, r.json()["code"].as_str()),
            (404, Some("NOT_FOUND")),
            "{path}"
        );
    }
    // The route itself still upgrades.
    let (_ws, welcome) = connect(addr, "/ws/game/42").await;
    assert_eq!(welcome["protocolVersion"], 1);
    server.shutdown().await;
}

#[tokio::test]
async fn admin_api_needs_the_key_and_answers_json_errors() {
    let server = start(json!({})).await;
    let addr = server.local_addr();
    let r = http(addr, "GET", "/admin/clients", &[], None).await;
    assert_eq!(
        (r.status, r.json()["code"].as_str()),
        (401, Some("UNAUTHORIZED"))
    );
    let r = http(
        addr,
        "GET",
        "/admin/clients",
        &[("Authorization", "Bearer nope")],
        None,
    )
    .await;
    assert_eq!(r.status, 401);
    let r = http(addr, "GET", "/admin/info", &[("X-Admin-Key", ADMIN)], None).await;
    assert_eq!(r.status, 200);

    let r = admin(
        addr,
        "POST",
        "/admin/send",
        Some(json!({"clientId":"ghost","message":{}})),
    )
    .await;
    assert_eq!(
        (r.status, r.json()["code"].as_str()),
        (404, Some("NOT_FOUND"))
    );
    let r = admin(addr, "POST", "/admin/publish", Some(json!({"data":1}))).await;
    assert_eq!(
        (r.status, r.json()["code"].as_str()),
        (400, Some("INVALID_MESSAGE"))
    );
    assert!(
        r.json()["message"].as_str().unwrap().contains("channel"),
        "{}",
        r.body
    );
    let r = http(
        addr,
        "POST",
        "/admin/broadcast",
        &[("Authorization", &format!("Bearer {ADMIN}"))],
        Some("{not json"),
    )
    .await;
    assert_eq!(
        (r.status, r.json()["code"].as_str()),
        (400, Some("INVALID_JSON"))
    );
    let r = admin(addr, "POST", "/admin/resources/nope", Some(json!({}))).await;
    assert_eq!(
        (r.status, r.json()["code"].as_str()),
        (404, Some("RESOURCE_NOT_FOUND"))
    );
    let r = admin(addr, "GET", "/admin/bogus", None).await;
    assert_eq!(
        (r.status, r.json()["code"].as_str()),
        (404, Some("NOT_FOUND"))
    );
    let m = http(addr, "GET", "/metrics", &[], None).await.body;
    assert!(
        m.contains("switchboard_admin_requests_total{endpoint=\"unauthorized\",status=\"401\"} 2"),
        "{m}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn admin_clients_send_broadcast_and_disconnect() {
    let server = start(json!({})).await;
    let addr = server.local_addr();
    let (mut admin_ws, wa) = connect(addr, "/?token=key_admin").await;
    let (mut user_ws, wu) = connect(addr, "/?token=key_user").await;

    let clients = admin(addr, "GET", "/admin/clients", None).await.json();
    let ids: Vec<_> = clients
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["clientId"].clone())
        .collect();
    assert!(
        ids.contains(&wa["clientId"]) && ids.contains(&wu["clientId"]),
        "{clients}"
    );

    let r = admin(
        addr,
        "POST",
        "/admin/broadcast",
        Some(json!({"message":{"hello":"admins"},"filter":{"role":"admin"}})),
    )
    .await;
    assert_eq!(r.json()["delivered"], 1);
    assert_eq!(recv(&mut admin_ws).await["hello"], "admins");
    assert_silent(&mut user_ws, 150).await;

    let r = admin(
        addr,
        "POST",
        "/admin/send",
        Some(json!({"clientId": wu["clientId"], "message": {"just":"you"}})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(recv(&mut user_ws).await["just"], "you");

    let r = admin(
        addr,
        "POST",
        "/admin/command",
        Some(json!({"command":"rooms"})),
    )
    .await;
    assert_eq!(r.json(), json!([]));

    let path = format!("/admin/clients/{}", wu["clientId"].as_str().unwrap());
    let r = admin(addr, "DELETE", &path, None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(closed(&mut user_ws).await.0, 4001);
    let r = admin(
        addr,
        "POST",
        "/admin/disconnect",
        Some(json!({"clientId": wa["clientId"], "reason": "bye"})),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(closed(&mut admin_ws).await, (4001, "bye".to_string()));
    server.shutdown().await;
}

#[tokio::test]
async fn admin_resource_reads() {
    let server = start(json!({})).await;
    let addr = server.local_addr();
    for i in 0..5 {
        let r = admin(
            addr,
            "POST",
            "/admin/resources/users",
            Some(json!({"id": format!("u{i}"), "name": "n", "password": "pw"})),
        )
        .await;
        assert_eq!(r.status, 201, "{}", r.body);
    }
    let r = admin(
        addr,
        "POST",
        "/admin/resources/users",
        Some(json!({"id": "u0"})),
    )
    .await;
    assert_eq!(
        (r.status, r.json()["code"].as_str()),
        (409, Some("VALIDATION_ERROR"))
    );
    let page = admin(addr, "GET", "/admin/resources/users?limit=2", None)
        .await
        .json();
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    let cursor = page["cursor"].as_str().unwrap().to_string();
    let page2 = admin(
        addr,
        "GET",
        &format!("/admin/resources/users?limit=10&cursor={cursor}"),
        None,
    )
    .await
    .json();
    assert_eq!(page2["items"][0]["id"], "u2");
    let one = admin(addr, "GET", "/admin/resources/users/u3", None)
        .await
        .json();
    assert_eq!(
        one["record"]["password"], "pw",
        "the admin API sees protected fields"
    );
    let r = admin(addr, "GET", "/admin/resources/users/zz", None).await;
    assert_eq!(r.status, 404);

    // Sockets never see protected fields.
    let (mut ws, _) = connect(addr, "/?token=key_user").await;
    send(
        &mut ws,
        json!({"type":"get","resource":"users","id":"u3","requestId":1}),
    )
    .await;
    let d = recv(&mut ws).await;
    assert_eq!(d["data"]["id"], "u3");
    assert!(d["data"].get("password").is_none(), "{d}");
    server.shutdown().await;
}

#[tokio::test]
async fn admin_resource_writes_run_through_the_engine() {
    let server = start(json!({
        "resources": {
            "tasks": {
                "protected": ["secret"],
                // Write guards are for clients: the admin API is a trusted server caller.
                "guards": {"create": "false", "update": "false", "delete": "false"},
                "schema": {
                    "type": "object",
                    "properties": {"title": {"type": "string"}, "done": {"type": "boolean"}},
                    "required": ["title"]
                }
            }
        }
    }))
    .await;
    let addr = server.local_addr();
    let (mut ws, _) = connect(addr, "/").await;
    send(
        &mut ws,
        json!({"type":"subscribe","resource":"tasks","requestId":1}),
    )
    .await;
    assert_eq!(recv(&mut ws).await["type"], "subscribed");

    // Insert: the engine shapes the record (generated id, timestamps) and fans it out.
    let r = admin(
        addr,
        "POST",
        "/admin/resources/tasks",
        Some(json!({"title":"write docs","secret":"s3","createdAt":"forged"})),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let body = r.json();
    let rec = &body["record"];
    let id = rec["id"].as_str().unwrap().to_string();
    assert_eq!(id.len(), 20);
    assert_ne!(rec["createdAt"], "forged");
    assert_eq!(rec["createdAt"], rec["updatedAt"]);
    assert_eq!(rec["secret"], "s3", "the admin API sees protected fields");
    assert_eq!(body["delivered"], 1);
    let ev = recv(&mut ws).await;
    assert_eq!(
        (ev["event"].as_str(), ev["data"]["id"].as_str()),
        (Some("insert"), Some(id.as_str()))
    );
    assert!(ev["data"].get("secret").is_none(), "{ev}");

    // Validation errors name the field; nothing is stored or sent.
    let r = admin(
        addr,
        "POST",
        "/admin/resources/tasks",
        Some(json!({"done": "yes"})),
    )
    .await;
    assert_eq!(
        (r.status, r.json()["code"].as_str()),
        (400, Some("VALIDATION_ERROR")),
        "{}",
        r.body
    );
    let msg = r.json()["message"].as_str().unwrap().to_string();
    assert!(msg.contains("title") && msg.contains("done"), "{msg}");
    let r = admin(
        addr,
        "POST",
        "/admin/resources/tasks",
        Some(json!({"id": 7, "title": "x"})),
    )
    .await;
    assert_eq!(
        (r.status, r.json()["code"].as_str()),
        (400, Some("VALIDATION_ERROR"))
    );
    let path = format!("/admin/resources/tasks/{id}");
    let r = admin(addr, "PATCH", &path, Some(json!({"done": 1}))).await;
    assert_eq!(
        (r.status, r.json()["code"].as_str()),
        (400, Some("VALIDATION_ERROR"))
    );
    let r = admin(addr, "PATCH", &path, Some(json!({"id": "other"}))).await;
    assert_eq!(
        (r.status, r.json()["code"].as_str()),
        (400, Some("VALIDATION_ERROR"))
    );
    let r = http(
        addr,
        "PATCH",
        &path,
        &[("Authorization", &format!("Bearer {ADMIN}"))],
        Some("[1]"),
    )
    .await;
    assert_eq!(
        (r.status, r.json()["code"].as_str()),
        (400, Some("INVALID_MESSAGE"))
    );
    assert_silent(&mut ws, 100).await;

    // Update and delete fan out; the answers carry the record.
    let r = admin(addr, "PUT", &path, Some(json!({"done": true}))).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["record"]["done"], true);
    let ev = recv(&mut ws).await;
    assert_eq!(
        (
            ev["event"].as_str(),
            ev["data"]["$before"]["done"].is_null()
        ),
        (Some("update"), true)
    );
    let r = admin(addr, "DELETE", &path, None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        (
            r.json()["record"]["id"].as_str(),
            r.json()["delivered"].as_u64()
        ),
        (Some(id.as_str()), Some(1))
    );
    assert_eq!(recv(&mut ws).await["event"], "delete");

    // Missing records and unknown resources.
    for (method, body) in [("PATCH", Some(json!({"title": "x"}))), ("DELETE", None)] {
        let r = admin(addr, method, &path, body.clone()).await;
        assert_eq!(
            (r.status, r.json()["code"].as_str()),
            (404, Some("NOT_FOUND")),
            "{method}"
        );
        assert!(
            r.json()["message"].as_str().unwrap().contains(&id),
            "{}",
            r.body
        );
        let r = admin(addr, method, "/admin/resources/nope/x", body).await;
        assert_eq!(
            (r.status, r.json()["code"].as_str()),
            (404, Some("RESOURCE_NOT_FOUND")),
            "{method}"
        );
    }
    let r = admin(addr, "POST", "/admin/resources/nope", Some(json!({}))).await;
    assert_eq!(
        (r.status, r.json()["code"].as_str()),
        (404, Some("RESOURCE_NOT_FOUND"))
    );
    assert_silent(&mut ws, 100).await;
    server.shutdown().await;
}

#[tokio::test]
async fn graceful_drain_sends_1001_and_readyz_turns_503() {
    let server = start(json!({"server": {"shutdownTimeoutMs": 5000}})).await;
    let addr = server.local_addr();
    let (mut a, _) = connect(addr, "/").await;
    let (mut b, _) = connect(addr, "/ws").await;
    let started = tokio::time::Instant::now();
    let shutdown = tokio::spawn(server.shutdown());
    // Neither client has answered the close yet, so the server is still draining.
    let mut saw_503 = false;
    for _ in 0..50 {
        let r = http(addr, "GET", "/readyz", &[], None).await;
        if r.status == 503 {
            assert_eq!(r.json()["status"], "draining");
            saw_503 = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(saw_503, "readyz never reported draining");
    // New upgrades are refused while draining.
    match try_connect(addr, "/", &[]).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 503),
        other => panic!("expected 503, got {:?}", other.map(|_| ())),
    }
    assert_eq!(
        closed(&mut a).await,
        (1001, "server shutting down".to_string())
    );
    assert_eq!(closed(&mut b).await.0, 1001);
    // Both clients answered the close, so the drain ends well before the deadline.
    tokio::time::timeout(Duration::from_secs(2), shutdown)
        .await
        .expect("shutdown finished")
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "listener closed"
    );
}

#[tokio::test]
async fn wss_with_rustls() {
    let dir = tempfile::tempdir().unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert_path = dir.path().join("cert.pem");
    let key_path = dir.path().join("key.pem");
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();
    let server = start(json!({"server": {"tls": {"cert": cert_path, "key": key_path}}})).await;
    assert!(server.is_tls());

    let mut roots = tokio_rustls::rustls::RootCertStore::empty();
    roots.add(cert.cert.der().clone()).unwrap();
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = tokio_rustls::rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(server.local_addr())
        .await
        .unwrap();
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let tls = connector.connect(name, tcp).await.unwrap();
    let url = format!("wss://localhost:{}/", server.local_addr().port());
    let (mut ws, _) = tokio::time::timeout(WAIT, tokio_tungstenite::client_async(url, tls))
        .await
        .unwrap()
        .unwrap();
    use futures_util::StreamExt;
    let first = tokio::time::timeout(WAIT, ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(first.to_text().unwrap()).unwrap();
    assert_eq!(v["type"], "connected");
    server.shutdown().await;
}
