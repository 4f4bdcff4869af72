//! Application handlers on the native host: Rust closures (`ServerBuilder::on_message`,
//! `on_connect`, `on_disconnect`, `intercept`, the command handle) and webhooks (a real
//! HTTP server on 127.0.0.1: signature, reply, timeout, failure, a slow webhook that
//! does not block other clients).

mod common;

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use common::*;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use switchboard::handlers::{signature, Ctx, HandlerError, HandlerResponse, HookCall, MessageCall};
use switchboard::ServerBuilder;

fn app_config() -> Value {
    json!({
        "messages": {
            "ai:chat": {},
            "chat": {"schema": {"type": "object", "required": ["text"]}},
        },
        "interceptors": {"publish": true},
        "limits": {"hostCallTimeoutMs": 500},
    })
}

#[tokio::test]
async fn rust_handlers_stream_reply_refuse_and_intercept() {
    let gone: Arc<Mutex<Vec<Value>>> = Arc::default();
    let gone2 = gone.clone();
    let server = ServerBuilder::new(deployment(app_config()))
        .on_message("ai:chat", |msg: MessageCall, ctx: Ctx| async move {
            let prompt = msg.data["prompt"].as_str().unwrap_or("").to_string();
            let _ = ctx
                .send(json!({"type": "ai:response:start", "requestId": msg.request_id}))
                .await;
            for chunk in prompt.split(' ') {
                let _ = ctx
                    .send(json!({"type": "ai:response:chunk", "data": chunk}))
                    .await;
            }
            if prompt.is_empty() {
                return Err(HandlerError::new("EMPTY_PROMPT", "say something"));
            }
            Ok(json!({"done": true, "words": prompt.split(' ').count()}))
        })
        .on_message("chat", |msg: MessageCall, ctx: Ctx| async move {
            let _ = ctx.join("chatters").await;
            json!({"from": msg.client.client_id, "text": msg.data["text"], "meta": msg.client.meta})
        })
        .on_message("boom", |msg: MessageCall, _ctx: Ctx| async move {
            if msg.data.is_null() {
                panic!("handler bug");
            }
        })
        .on_connect(|hook: HookCall, _ctx: Ctx| async move {
            if hook.client.user["id"] == "admin1" {
                return HandlerResponse::error("FORBIDDEN", "admins use the console");
            }
            HandlerResponse {
                meta: Some(json!({"greeted": true})),
                ..HandlerResponse::default()
            }
        })
        .on_disconnect(move |hook: HookCall, _ctx: Ctx| {
            gone2
                .lock()
                .unwrap()
                .push(json!({"client": hook.client.client_id, "code": hook.code}));
            async {}
        })
        .intercept(
            "publish",
            |call: switchboard::handlers::InterceptCall, _ctx: Ctx| async move {
                if call.message["message"] == "spam" {
                    return HandlerResponse::error("SPAM", "no spam");
                }
                HandlerResponse {
                    modified: Some(
                        json!({"channel": call.message["channel"], "message": "[ok] hi"}),
                    ),
                    ..HandlerResponse::default()
                }
            },
        )
        .start()
        .await
        .expect("server starts");
    let addr = server.local_addr();

    let (mut a, welcome) = connect(addr, "/").await;
    let id_a = welcome["clientId"].as_str().unwrap().to_string();
    send(
        &mut a,
        json!({"type": "ai:chat", "data": {"prompt": "hello big world"}, "requestId": 7}),
    )
    .await;
    assert_eq!(
        recv(&mut a).await,
        json!({"type": "ai:response:start", "requestId": 7})
    );
    for w in ["hello", "big", "world"] {
        assert_eq!(
            recv(&mut a).await,
            json!({"type": "ai:response:chunk", "data": w})
        );
    }
    assert_eq!(
        recv(&mut a).await,
        json!({"type": "reply", "requestId": 7, "data": {"done": true, "words": 3}})
    );
    send(
        &mut a,
        json!({"type": "ai:chat", "data": {}, "requestId": 8}),
    )
    .await;
    let f = recv_type(&mut a, "error").await;
    assert_eq!(
        (f["code"].as_str(), &f["requestId"]),
        (Some("EMPTY_PROMPT"), &json!(8))
    );

    // Handlers see the metadata the connect hook attached; ctx.join puts the caller in a room.
    send(
        &mut a,
        json!({"type": "chat", "data": {"text": "yo"}, "requestId": "c"}),
    )
    .await;
    assert_eq!(recv_type(&mut a, "joined").await["room"], "chatters");
    let r = recv(&mut a).await;
    assert_eq!(
        r["data"],
        json!({"from": id_a, "text": "yo", "meta": {"greeted": true}})
    );

    // Schema first: the handler never runs.
    send(
        &mut a,
        json!({"type": "chat", "data": {}, "requestId": "bad"}),
    )
    .await;
    assert_eq!(recv(&mut a).await["code"], "VALIDATION_ERROR");

    // A handler that panics is INTERNAL_ERROR (types registered in code are declared);
    // the server goes on.
    send(&mut a, json!({"type": "boom", "requestId": "b"})).await;
    let f = recv(&mut a).await;
    assert_eq!(
        (f["code"].as_str(), &f["requestId"]),
        (Some("INTERNAL_ERROR"), &json!("b"))
    );
    send(&mut a, json!({"type": "nope", "requestId": "n"})).await;
    assert_eq!(recv(&mut a).await["code"], "UNKNOWN_MESSAGE_TYPE");

    // Interceptors: cancel and modify.
    let (mut b, _) = connect(addr, "/").await;
    send(&mut b, json!({"type": "subscribe", "channel": "news"})).await;
    recv_type(&mut b, "subscribed").await;
    send(
        &mut a,
        json!({"type": "publish", "channel": "news", "message": "spam", "requestId": 1}),
    )
    .await;
    assert_eq!(recv(&mut a).await["code"], "SPAM");
    send(
        &mut a,
        json!({"type": "publish", "channel": "news", "message": "hi", "requestId": 2}),
    )
    .await;
    assert_eq!(recv_type(&mut b, "message").await["data"], "[ok] hi");

    // The command handle.
    let h = server.handle();
    let r = h
        .send_to(&id_a, json!({"type": "server-says"}))
        .await
        .unwrap();
    assert_eq!(r["delivered"], 1);
    assert_eq!(
        recv_type(&mut a, "server-says").await["type"],
        "server-says"
    );

    // The connect hook refuses admins: error frame, then 4403.
    let (mut c, _) = try_connect(addr, "/?token=key_admin", &[]).await.unwrap();
    let f = recv(&mut c).await;
    assert_eq!(
        (f["code"].as_str(), f["message"].as_str()),
        (Some("FORBIDDEN"), Some("admins use the console"))
    );
    assert_eq!(closed(&mut c).await.0, 4403);

    // The disconnect hook hears about closes.
    drop(b);
    let deadline = tokio::time::Instant::now() + WAIT;
    while gone.lock().unwrap().is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no disconnect hook call"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.shutdown().await;
}

/// What the test webhook server saw.
#[derive(Default)]
struct Seen {
    bodies: Vec<Value>,
    bad_signatures: usize,
}

const SECRET: &str = "webhook-secret";

/// A webhook server on 127.0.0.1: `/chat` echoes, `/slow` answers after 2 s, `/fail`
/// answers 500, `/garbage` answers text, `/connect` attaches metadata or refuses.
async fn webhook_server(
    seen: Arc<Mutex<Seen>>,
) -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let seen = seen.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req: Request<hyper::body::Incoming>| {
                    let seen = seen.clone();
                    async move {
                        let path = req.uri().path().to_string();
                        let sig = req
                            .headers()
                            .get("x-switchboard-signature")
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_string);
                        let body = req.into_body().collect().await.unwrap().to_bytes();
                        let ok = sig.as_deref() == Some(signature(SECRET, &body).as_str());
                        let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                        {
                            let mut s = seen.lock().unwrap();
                            s.bodies.push(v.clone());
                            if !ok {
                                s.bad_signatures += 1;
                            }
                        }
                        let (status, out) = match path.as_str() {
                            "/chat" => (200, json!({
                                "reply": {"echo": v["data"]["text"], "client": v["client"]["clientId"]},
                                "commands": [{"command": "send", "message": {"type": "typing"}}],
                            }).to_string()),
                            "/slow" => {
                                tokio::time::sleep(Duration::from_millis(2000)).await;
                                (200, json!({"reply": "too late"}).to_string())
                            }
                            "/fail" => (500, "oops".to_string()),
                            "/garbage" => (200, "not json".to_string()),
                            "/connect" if v["client"]["user"]["id"] == "admin1" => (200, json!({
                                "error": {"code": "FORBIDDEN", "message": "not here", "closeCode": 4003},
                            }).to_string()),
                            "/connect" => (200, json!({"meta": {"via": "webhook"}}).to_string()),
                            _ => (404, String::new()),
                        };
                        let mut r = Response::new(Full::new(Bytes::from(out)));
                        *r.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
                        Ok::<_, Infallible>(r)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), svc)
                    .await;
            });
        }
    });
    (addr, task)
}

#[tokio::test]
async fn webhooks_answer_messages_and_hooks_signed_with_timeouts_and_failures() {
    let seen: Arc<Mutex<Seen>> = Arc::default();
    let (hook_addr, hook_task) = webhook_server(seen.clone()).await;
    let url = |p: &str| format!("http://{hook_addr}{p}");
    let server = switchboard::start(deployment(json!({
        "messages": {
            "chat": {"webhook": url("/chat")},
            "slow": {"webhook": url("/slow"), "timeoutMs": 300},
            "fail": {"webhook": url("/fail")},
            "garbage": {"webhook": url("/garbage")},
            "nohandler": {},
        },
        "hooks": {"connect": url("/connect"), "webhookSecret": SECRET},
    })))
    .await
    .expect("server starts");
    let addr = server.local_addr();

    let (mut a, welcome) = connect(addr, "/?token=key_user").await;
    let id_a = welcome["clientId"].as_str().unwrap().to_string();
    let (mut b, _) = connect(addr, "/").await;

    // A slow webhook for A does not hold up B's messages.
    send(&mut a, json!({"type": "slow", "requestId": "s"})).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    send(
        &mut b,
        json!({"type": "chat", "data": {"text": "hi"}, "requestId": "b1"}),
    )
    .await;
    assert_eq!(recv(&mut b).await, json!({"type": "typing"}));
    let r = recv(&mut b).await;
    assert_eq!(r["type"], "reply");
    assert_eq!(r["data"]["echo"], "hi");
    // A's webhook misses its 300 ms deadline: TIMEOUT with the requestId.
    let f = recv(&mut a).await;
    assert_eq!(
        (f["code"].as_str(), &f["requestId"]),
        (Some("TIMEOUT"), &json!("s"))
    );

    // Failures: HTTP 500, a body that is not an answer, no handler at all.
    for (ty, rid) in [("fail", 1), ("garbage", 2), ("nohandler", 3)] {
        send(&mut a, json!({"type": ty, "requestId": rid})).await;
        let f = recv(&mut a).await;
        assert_eq!(
            (f["code"].as_str(), &f["requestId"]),
            (Some("INTERNAL_ERROR"), &json!(rid)),
            "{ty}: {f}"
        );
        assert!(
            !f["message"].as_str().unwrap().contains("500"),
            "no internals: {f}"
        );
    }

    // The connect webhook refuses admins with its own close code.
    let (mut c, _) = try_connect(addr, "/?token=key_admin", &[]).await.unwrap();
    assert_eq!(recv(&mut c).await["code"], "FORBIDDEN");
    assert_eq!(closed(&mut c).await.0, 4003);

    // What the webhooks received: signed JSON with type, data, requestId and client.
    let s = std::mem::take(&mut *seen.lock().unwrap());
    assert_eq!(s.bad_signatures, 0, "every request is signed");
    let chat = s
        .bodies
        .iter()
        .find(|b| b["type"] == "chat")
        .expect("chat call");
    assert_eq!(chat["kind"], "message");
    assert_eq!(chat["data"], json!({"text": "hi"}));
    assert_eq!(chat["requestId"], "b1");
    assert_eq!(chat["client"]["route"], "/");
    assert_eq!(chat["client"]["params"], json!({}));
    assert_eq!(chat["client"]["meta"], json!({"via": "webhook"}));
    let connect_a = s
        .bodies
        .iter()
        .find(|b| b["hook"] == "connect" && b["client"]["clientId"] == id_a.as_str())
        .expect("connect call for A");
    assert_eq!(connect_a["client"]["user"]["id"], "u1");
    server.shutdown().await;
    hook_task.abort();
}

#[tokio::test]
async fn admin_http_api_controls_rooms() {
    let server = start(json!({})).await;
    let addr = server.local_addr();
    let (mut a, welcome) = connect(addr, "/").await;
    let id = welcome["clientId"].as_str().unwrap().to_string();

    let r = admin(
        addr,
        "POST",
        "/admin/rooms",
        Some(json!({"room": "stage", "capacity": 5, "metadata": {"topic": "rust"}})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["capacity"], 5);
    let r = admin(
        addr,
        "POST",
        "/admin/rooms/stage/members",
        Some(json!({"clientId": id})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(recv(&mut a).await["type"], "joined");
    let r = admin(
        addr,
        "POST",
        "/admin/rooms/stage/send",
        Some(json!({"message": {"type": "show"}})),
    )
    .await;
    assert_eq!(r.json()["delivered"], 1);
    assert_eq!(recv(&mut a).await, json!({"type": "show"}));
    let r = admin(addr, "GET", "/admin/rooms/stage", None).await;
    assert_eq!(r.json()["members"][0]["clientId"], id.as_str());
    assert_eq!(r.json()["metadata"], json!({"topic": "rust"}));
    let r = admin(addr, "GET", &format!("/admin/clients/{id}"), None).await;
    assert_eq!(r.json()["rooms"], json!(["stage"]));
    let r = admin(
        addr,
        "DELETE",
        &format!("/admin/rooms/stage/members/{id}"),
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(recv(&mut a).await["type"], "left");
    let r = admin(addr, "DELETE", "/admin/rooms/stage", None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = admin(addr, "GET", "/admin/rooms/stage", None).await;
    assert_eq!(
        (r.status, r.json()["code"].as_str()),
        (404, Some("NOT_FOUND"))
    );
    let r = admin(addr, "GET", "/admin/clients/nobody", None).await;
    assert_eq!(r.status, 404);
    server.shutdown().await;
}

/// Synchronous handlers answer in the order of the connection's messages, even on a
/// multi-threaded runtime where spawned tasks finish in any order, and they complete at
/// once (a burst of 300 never hits the 16-requests-in-flight limit).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn synchronous_handler_answers_keep_the_connections_message_order() {
    let server = ServerBuilder::new(deployment(json!({"messages": {"echo": {}}})))
        .on_message("echo", |msg: MessageCall, _ctx: Ctx| async move {
            HandlerResponse {
                commands: vec![
                    json!({"command": "send", "message": {"type": "echoed", "data": msg.data}}),
                ],
                ..HandlerResponse::reply(msg.data)
            }
        })
        .start()
        .await
        .expect("server starts");
    let (mut ws, _) = connect(server.local_addr(), "/").await;
    for i in 0..300 {
        send(&mut ws, json!({"type": "echo", "data": i, "requestId": i})).await;
    }
    for i in 0..300 {
        assert_eq!(
            recv(&mut ws).await,
            json!({"type": "echoed", "data": i}),
            "message {i}"
        );
        assert_eq!(
            recv(&mut ws).await,
            json!({"type": "reply", "requestId": i, "data": i}),
            "message {i}"
        );
    }
    server.shutdown().await;
}
