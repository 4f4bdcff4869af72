//! The test control channel: how the conformance suite's live runner drives a real
//! server through everything a WebSocket client cannot do (seeded storage, scripted
//! host calls, server-API commands, host clock, injected host reports).
//!
//! **Off by default.** It exists only when the server is started with
//! `SWITCHBOARD_TEST_CONTROL=1` ([`ENV`]; [`crate::ServerBuilder::test_control`] when
//! embedding). Otherwise every request under [`PREFIX`] is refused with
//! `403 {"code":"FORBIDDEN","message":...}` naming the variable, and nothing else
//! changes. Never enable it on a reachable server: it lets anyone reset the engine,
//! answer guard calls and run commands without the admin key. The server logs a
//! warning at startup when it is on.
//!
//! The protocol is the same on every host (native, Node, Deno, Bun, Workers; the JS
//! side is `host-js/js/test-control.js`) and is described in
//! `conformance/README.md` ("Test control channel"). Requests are `POST PREFIX/<op>`
//! with a JSON body, answers JSON:
//!
//! | op | body | effect |
//! | --- | --- | --- |
//! | `reset` | `{seed, clock?: {at, frozen}, store?: {resource: [records]}, hold?: {guard, store}}` | close leftover connections, a fresh engine from the served config seeded with `seed`, a fresh memory store holding `store`, events cleared |
//! | `clock` | `{at, frozen}` | the host clock reads `at` now (and stays there when `frozen`); timers re-armed |
//! | `command` | `{tag, command}` | run a server-API command; its result arrives as an event |
//! | `complete` | `{op, result}` | `Input::Completed` (answers a held call, or any op) |
//! | `input` | `{clientId?, input: {kind: backpressure\|pong\|closed\|text, ...}}` | feed a host report for the connection with that client id (none: a connection id never assigned) |
//! | `events` | `{waitMs, min}` | the queued events (held calls, command results), waiting up to `waitMs` for `min` |
//!
//! Handler calls (application messages, hooks, interceptors) are always held.
//! Held calls (`hold.guard`, `hold.store`) are not executed: they are reported as
//! `{"event":"call","action":{...}}` (the engine's `Action::Call` JSON) and wait for a
//! `complete`. With [`CLIENT_ID_HEADER`] on an upgrade, the host uses that client id
//! (empty: none, so the engine generates one from its seed).

use std::sync::Arc;
use std::time::Duration;

use engine::store::MemoryStore;
use engine::{Command, HostResult};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::oneshot;

use crate::mailbox::ToActor;
use crate::response::{json_error, json_response, json_value, truncate, Body};
use crate::state::AppState;

// The session's plain types live in [`crate::test_session`] (the actor and the server
// state share them) and the clock in [`crate::clock`]. Re-exported so their old paths
// keep working.
pub use crate::clock::{ClockSet, TestClock};
pub use crate::test_session::{
    ActorTest, Events, Hold, Injected, Reset, Shared, TestMsg, CLIENT_ID_HEADER,
};

/// The environment variable that enables the channel (`1`).
pub const ENV: &str = "SWITCHBOARD_TEST_CONTROL";

/// Path prefix of the channel.
pub const PREFIX: &str = engine::endpoint::TEST_CONTROL_PREFIX;

/// Largest request body.
const MAX_BODY: usize = 8 * 1024 * 1024;

/// Longest `events` wait.
const MAX_WAIT: Duration = Duration::from_secs(30);

/// Whether `SWITCHBOARD_TEST_CONTROL` asks for the channel.
pub fn enabled_by_env() -> bool {
    std::env::var(ENV).is_ok_and(|v| v == "1")
}

/// A value given inline or as JSON text (which keeps number spellings such as `1.0`
/// exact through hosts whose JSON parser would not).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Inline<T> {
    Text(String),
    Value(T),
}

impl<T: serde::de::DeserializeOwned> Inline<T> {
    fn get(self) -> Result<T, String> {
        match self {
            Inline::Value(v) => Ok(v),
            Inline::Text(t) => serde_json::from_str(&t).map_err(|e| format!("bad JSON text: {e}")),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CommandBody {
    tag: u64,
    command: Inline<Command>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CompleteBody {
    op: u64,
    result: Inline<HostResult>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct InputBody {
    #[serde(default)]
    client_id: Option<String>,
    input: Injected,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct EventsBody {
    #[serde(default)]
    wait_ms: u64,
    #[serde(default)]
    min: usize,
}

fn refused() -> Response<Body> {
    json_error(
        StatusCode::FORBIDDEN,
        engine::ErrorCode::Forbidden,
        format!(
            "the test control channel is off; it exists only on servers started with {ENV}=1 (tests only, never in production)"
        ),
    )
}

fn bad(message: impl Into<String>) -> Response<Body> {
    json_error(
        StatusCode::BAD_REQUEST,
        engine::ErrorCode::InvalidMessage,
        message,
    )
}

fn stopping() -> Response<Body> {
    json_error(
        StatusCode::SERVICE_UNAVAILABLE,
        engine::ErrorCode::Unavailable,
        "server is stopping",
    )
}

async fn body<T: serde::de::DeserializeOwned>(req: Request<Incoming>) -> Result<T, Response<Body>> {
    let bytes = Limited::new(req.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|_| bad(format!("bodies are limited to {MAX_BODY} bytes")))?
        .to_bytes();
    serde_json::from_slice(&bytes).map_err(|e| bad(format!("bad body: {e}")))
}

async fn ask(state: &AppState, msg: TestMsg) -> Response<Body> {
    let (reply, rx) = oneshot::channel();
    if state
        .actor
        .send(ToActor::Test { msg, reply })
        .await
        .is_err()
    {
        return stopping();
    }
    match rx.await {
        Ok(Ok(v)) => json_value(StatusCode::OK, &v),
        Ok(Err((status, message))) => json_error(
            StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
            engine::ErrorCode::InvalidMessage,
            message,
        ),
        Err(_) => stopping(),
    }
}

/// Answer one request under [`PREFIX`].
pub async fn handle(state: Arc<AppState>, req: Request<Incoming>) -> Response<Body> {
    let Some(shared) = state.test.clone() else {
        return refused();
    };
    let op = req
        .uri()
        .path()
        .trim_start_matches(PREFIX)
        .trim_matches('/')
        .to_string();
    if req.method() == Method::GET && op.is_empty() {
        return json_value(
            StatusCode::OK,
            &json!({"enabled": true, "host": "native", "store": state.memory_store}),
        );
    }
    if req.method() != Method::POST {
        return json_error(
            StatusCode::METHOD_NOT_ALLOWED,
            engine::ErrorCode::InvalidMessage,
            "test control requests are POST with a JSON body",
        );
    }
    let result = match op.as_str() {
        "reset" => reset(&state, &shared, req).await,
        "clock" => match body::<ClockSet>(req).await {
            Ok(c) => Ok(ask(&state, TestMsg::Clock(c)).await),
            Err(r) => Err(r),
        },
        "command" => command(&state, &shared, req).await,
        "complete" => match body::<CompleteBody>(req).await {
            Ok(c) => match c.result.get() {
                Ok(result) => Ok(ask(&state, TestMsg::Complete(c.op, result)).await),
                Err(e) => Err(bad(e)),
            },
            Err(r) => Err(r),
        },
        "input" => match body::<InputBody>(req).await {
            Ok(i) => Ok(ask(&state, TestMsg::Inject(i.client_id, i.input)).await),
            Err(r) => Err(r),
        },
        // A process keeps its memory: there is nothing to evict (the Cloudflare host
        // simulates a Durable Object eviction here).
        "evict" => Ok(json_response(
            StatusCode::OK,
            r#"{"evicted":false}"#,
        )),
        "events" => match body::<EventsBody>(req).await {
            Ok(e) => Ok(events(&shared, e).await),
            Err(r) => Err(r),
        },
        other => Err(json_error(
            StatusCode::NOT_FOUND,
            engine::ErrorCode::NotFound,
            format!(
                "no test control operation `{}` (reset, clock, command, complete, input, events, evict)",
                truncate(other, 100)
            ),
        )),
    };
    result.unwrap_or_else(|r| r)
}

async fn reset(
    state: &AppState,
    shared: &Shared,
    req: Request<Incoming>,
) -> Result<Response<Body>, Response<Body>> {
    let reset: Reset = body(req).await?;
    if !state.memory_store {
        return Err(json_error(
            StatusCode::CONFLICT,
            engine::ErrorCode::InvalidMessage,
            "test resets replace the store with a memory store: start the server with --memory",
        ));
    }
    let mut store = MemoryStore::new();
    for (resource, records) in &reset.store {
        store.seed(resource, records.iter().cloned());
    }
    // The store thread runs jobs in order: once the swap is answered, every earlier
    // job's completion is queued for the actor, which drops them with the old engine.
    if !state.store.replace(Box::new(store)).await {
        return Err(stopping());
    }
    shared.clear();
    Ok(ask(state, TestMsg::Reset(reset)).await)
}

async fn command(
    state: &Arc<AppState>,
    shared: &Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<Body>, Response<Body>> {
    let CommandBody { tag, command } = body(req).await?;
    let command = command.get().map_err(bad)?;
    let (reply, rx) = oneshot::channel();
    state
        .actor
        .send(ToActor::Command { command, reply })
        .await
        .map_err(|_| stopping())?;
    let epoch = shared.epoch();
    let shared = shared.clone();
    tokio::spawn(async move {
        if let Ok(result) = rx.await {
            let result = serde_json::to_value(&result).unwrap_or(Value::Null);
            shared.push_if(
                epoch,
                json!({"event": "commandResult", "tag": tag, "result": result}),
            );
        }
    });
    Ok(json_value(StatusCode::OK, &json!({"accepted": tag})))
}

async fn events(shared: &Shared, e: EventsBody) -> Response<Body> {
    let deadline = tokio::time::Instant::now() + Duration::from_millis(e.wait_ms).min(MAX_WAIT);
    loop {
        if let Some(events) = shared.take_if(e.min) {
            return json_value(StatusCode::OK, &json!({ "events": events }));
        }
        if tokio::time::Instant::now() >= deadline {
            let events = shared.take_if(0).unwrap_or_default();
            return json_value(StatusCode::OK, &json!({ "events": events }));
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}
