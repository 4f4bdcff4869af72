//! Host guards answered by the embedding application's async callback
//! (`ServerBuilder::guard`): allow, deny, forced filters, and a slow callback that
//! runs into the engine's deadline.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use serde_json::{json, Value};
use switchboard::{GuardAction, GuardDecision, GuardRequest, RunningServer, ServerBuilder};

/// `notes` is host-guarded for create, list and subscribe; host calls time out after
/// 300 ms.
fn guarded() -> Value {
    json!({
        "resources": {"notes": {"hostGuards": ["create", "list", "subscribe"]}},
        "limits": {"hostCallTimeoutMs": 300},
    })
}

/// A server whose guard callback records every request and decides:
/// create → deny titles "secret", sleep on "slow", allow the rest;
/// list/subscribe → only the caller's own notes (`owner` = user id); anonymous → deny.
async fn start_guarded(seen: Arc<Mutex<Vec<GuardRequest>>>) -> RunningServer {
    ServerBuilder::new(deployment(guarded()))
        .guard(move |req: GuardRequest| {
            seen.lock().unwrap().push(req.clone());
            async move {
                let title = req
                    .data
                    .as_ref()
                    .and_then(|d| d.get("title"))
                    .and_then(Value::as_str)
                    .unwrap_or("");
                match req.action {
                    GuardAction::Create if title == "secret" => GuardDecision::Deny {
                        message: Some("no secrets here".into()),
                    },
                    GuardAction::Create if title == "slow" => {
                        tokio::time::sleep(Duration::from_millis(1200)).await;
                        GuardDecision::Allow
                    }
                    GuardAction::Create => GuardDecision::Allow,
                    _ => match req.user_id() {
                        Some(id) => GuardDecision::Filter {
                            filter: json!({ "owner": id }),
                        },
                        None => GuardDecision::Deny { message: None },
                    },
                }
            }
        })
        .start()
        .await
        .expect("server starts")
}

#[tokio::test]
async fn guard_callback_allows_and_sees_the_request() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let server = start_guarded(seen.clone()).await;
    let (mut ws, _) = connect(server.local_addr(), "/?token=key_user").await;
    send(
        &mut ws,
        json!({"type":"insert","resource":"notes","data":{"id":"n1","title":"hello","owner":"u1"},"requestId":1}),
    )
    .await;
    let r = recv(&mut ws).await;
    assert_eq!(
        (r["type"].as_str(), r["data"]["id"].as_str()),
        (Some("inserted"), Some("n1")),
        "{r}"
    );
    let req = seen.lock().unwrap()[0].clone();
    assert_eq!(
        (req.resource.as_str(), req.action),
        ("notes", GuardAction::Create)
    );
    assert_eq!(req.user_id(), Some("u1"));
    assert_eq!(req.user.as_ref().unwrap()["role"], "user");
    assert_eq!(req.id.as_deref(), Some("n1"));
    let data = req.data.unwrap();
    assert_eq!(data["title"], "hello");
    assert!(
        data["createdAt"].is_string(),
        "the callback sees the shaped record"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn guard_callback_denies_with_forbidden() {
    let server = start_guarded(Arc::default()).await;
    let (mut ws, _) = connect(server.local_addr(), "/?token=key_user").await;
    send(
        &mut ws,
        json!({"type":"insert","resource":"notes","data":{"title":"secret"},"requestId":"d"}),
    )
    .await;
    let r = recv(&mut ws).await;
    assert_eq!(
        (
            r["code"].as_str(),
            r["message"].as_str(),
            r["requestId"].as_str()
        ),
        (Some("FORBIDDEN"), Some("no secrets here"), Some("d"))
    );
    // Anonymous list: the callback denies without a message.
    let (mut anon, _) = connect(server.local_addr(), "/").await;
    send(&mut anon, json!({"type":"list","resource":"notes"})).await;
    assert_eq!(recv(&mut anon).await["code"], "FORBIDDEN");
    server.shutdown().await;
}

#[tokio::test]
async fn guard_callback_forced_filter_limits_lists_and_events() {
    let server = start_guarded(Arc::default()).await;
    let addr = server.local_addr();
    // Admin writes are trusted: no guard call.
    for (id, owner) in [("a", "u1"), ("b", "someone"), ("c", "u1")] {
        let r = admin(
            addr,
            "POST",
            "/admin/resources/notes",
            Some(json!({"id": id, "owner": owner})),
        )
        .await;
        assert_eq!(r.status, 201, "{}", r.body);
    }
    let (mut ws, _) = connect(addr, "/?token=key_user").await;
    send(
        &mut ws,
        json!({"type":"list","resource":"notes","requestId":1}),
    )
    .await;
    let page = recv(&mut ws).await;
    let ids: Vec<&str> = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["a", "c"], "{page}");
    send(
        &mut ws,
        json!({"type":"subscribe","resource":"notes","requestId":2}),
    )
    .await;
    assert_eq!(recv(&mut ws).await["type"], "subscribed");
    let r = admin(
        addr,
        "POST",
        "/admin/resources/notes",
        Some(json!({"id": "d", "owner": "someone"})),
    )
    .await;
    assert_eq!(r.json()["delivered"], 0);
    assert_silent(&mut ws, 150).await;
    let r = admin(
        addr,
        "POST",
        "/admin/resources/notes",
        Some(json!({"id": "e", "owner": "u1"})),
    )
    .await;
    assert_eq!(r.json()["delivered"], 1);
    assert_eq!(recv(&mut ws).await["data"]["id"], "e");
    server.shutdown().await;
}

#[tokio::test]
async fn slow_guard_callback_runs_into_the_engines_timeout() {
    let server = start_guarded(Arc::default()).await;
    let addr = server.local_addr();
    let (mut ws, _) = connect(addr, "/?token=key_user").await;
    let started = tokio::time::Instant::now();
    send(
        &mut ws,
        json!({"type":"insert","resource":"notes","data":{"id":"s","title":"slow"},"requestId":9}),
    )
    .await;
    let r = recv(&mut ws).await;
    assert_eq!(
        (r["code"].as_str(), r["requestId"].as_i64()),
        (Some("TIMEOUT"), Some(9)),
        "{r}"
    );
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(250) && waited < Duration::from_millis(1100),
        "answered after {waited:?}: the engine's deadline, not the callback's"
    );
    // The late decision (at 1.2 s, within the actor's grace) is dropped: nothing more
    // arrives and nothing was stored.
    assert_silent(&mut ws, 1300).await;
    let r = admin(addr, "GET", "/admin/resources/notes/s", None).await;
    assert_eq!(r.status, 404, "{}", r.body);
    let m = admin(addr, "GET", "/admin/metrics", None).await.json();
    assert_eq!(m["timedOutCalls"], 1, "{m}");
    assert_eq!(m["lateCompletions"], 1, "{m}");
    server.shutdown().await;
}

#[tokio::test]
async fn without_a_callback_host_guards_deny() {
    let server = switchboard::start(deployment(guarded())).await.unwrap();
    let (mut ws, _) = connect(server.local_addr(), "/?token=key_user").await;
    send(
        &mut ws,
        json!({"type":"insert","resource":"notes","data":{"title":"x"}}),
    )
    .await;
    assert_eq!(recv(&mut ws).await["code"], "FORBIDDEN");
    server.shutdown().await;
}
