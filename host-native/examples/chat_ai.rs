//! Two small apps on `host-native` with application handlers written in Rust:
//!
//! - **chat** (OwlMeans style): `chat-message` `{text}` is validated by a JSON Schema,
//!   stored in a bounded history, sent to everyone in room `general` (clients are put
//!   there by the `connect` hook) and answered with the message id; `get-history`
//!   answers the last messages.
//! - **AI streaming echo** (YektaYar's `ai:chat`): `{prompt}` is answered with
//!   `ai:response:start`, one `ai:response:chunk` per word, `ai:response:complete`,
//!   then the reply `{done: true}`.
//!
//! Run: `cargo run -p switchboard --example chat_ai` (listens on 127.0.0.1:3002), then
//! with any WebSocket client (e.g. `npx wscat -c ws://127.0.0.1:3002/`):
//! `{"type":"chat-message","data":{"text":"hi"},"requestId":1}`,
//! `{"type":"get-history","requestId":2}`,
//! `{"type":"ai:chat","data":{"prompt":"hello streaming world"},"requestId":3}`.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use switchboard::handlers::{Ctx, HandlerResponse, HookCall, MessageCall};
use switchboard::ServerBuilder;

const CONFIG: &str = r#"
[server]
listen = "127.0.0.1:3002"
store = "memory"

[[routes]]
path = "/"

[messages.chat-message]
schema = { type = "object", required = ["text"], properties = { text = { type = "string", minLength = 1, maxLength = 500 } } }
cost = 1

[messages.get-history]

[messages."ai:chat"]
schema = { type = "object", required = ["prompt"], properties = { prompt = { type = "string", maxLength = 2000 } } }
timeoutMs = 30000
"#;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt().with_env_filter("info").init();
    let doc = switchboard::config::toml_to_json(CONFIG).map_err(|p| anyhow::anyhow!("{p}"))?;
    let deployment = switchboard::config::from_document(doc).map_err(|p| anyhow::anyhow!("{p}"))?;
    let history: Arc<Mutex<VecDeque<Value>>> = Arc::default();
    let next_id = Arc::new(Mutex::new(0u64));
    let (h1, h2) = (history.clone(), history.clone());

    let server = ServerBuilder::new(deployment)
        .on_connect(|_hook: HookCall, _ctx: Ctx| async {
            // Everyone joins the chat room when admitted.
            HandlerResponse {
                commands: vec![json!({"command": "joinRoom", "room": "general"})],
                ..HandlerResponse::default()
            }
        })
        .on_message("chat-message", move |msg: MessageCall, ctx: Ctx| {
            let (history, next_id) = (h1.clone(), next_id.clone());
            async move {
                let id = {
                    let mut n = next_id.lock().unwrap();
                    *n += 1;
                    *n
                };
                let entry = json!({
                    "id": id,
                    "from": msg.client.user.get("id").cloned().unwrap_or(json!(msg.client.client_id)),
                    "text": msg.data["text"],
                });
                {
                    let mut h = history.lock().unwrap();
                    h.push_back(entry.clone());
                    while h.len() > 100 {
                        h.pop_front();
                    }
                }
                let _ = ctx
                    .server()
                    .send_to_room("general", json!({"type": "chat-message", "data": entry}))
                    .await;
                json!({"id": id})
            }
        })
        .on_message("get-history", move |_msg: MessageCall, _ctx: Ctx| {
            let history = h2.clone();
            async move {
                let h = history.lock().unwrap();
                json!({"messages": h.iter().rev().take(50).rev().cloned().collect::<Vec<_>>()})
            }
        })
        .on_message("ai:chat", |msg: MessageCall, ctx: Ctx| async move {
            let rid = msg.request_id.clone();
            let _ = ctx.send(json!({"type": "ai:response:start", "requestId": rid})).await;
            let prompt = msg.data["prompt"].as_str().unwrap_or_default().to_string();
            for word in prompt.split_whitespace() {
                tokio::time::sleep(Duration::from_millis(50)).await;
                let _ = ctx
                    .send(json!({"type": "ai:response:chunk", "requestId": rid, "data": word}))
                    .await;
            }
            let _ = ctx.send(json!({"type": "ai:response:complete", "requestId": rid})).await;
            json!({"done": true})
        })
        .start()
        .await?;
    println!("chat + AI echo on ws://{}/", server.local_addr());
    tokio::signal::ctrl_c().await?;
    server.shutdown().await;
    Ok(())
}
