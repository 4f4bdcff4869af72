//! The Socket.IO compliance application (fixed interface of issue 14) on the native host.
//!
//! On `/socket.io/`: namespaces `/` and `/custom`; on connect the server emits `auth`
//! with the handshake payload, echoes `message` as `message-back` (every argument,
//! binary attachments included) and acknowledges `message-with-ack` with its
//! arguments. On `/engine.io/`, a bare Engine.IO session echoes every message packet.
//! pingInterval 300 ms, pingTimeout 200 ms, maxPayload 1000000.
//!
//! ```text
//! cargo run --release -p switchboard --example socketio-compliance -- --listen 127.0.0.1:3000
//! ```
//!
//! It prints `listening on <addr>` once bound (`--listen 127.0.0.1:0` picks a port).
//! Over WebSocket and over Engine.IO HTTP long-polling (with the upgrade to WebSocket).
//!
//! Beyond the compliance suites: `ask-me` makes the server ask the client back (the
//! event `ask` with the same arguments, acknowledged by the client), and acknowledges
//! `ask-me` with the client's answer (or `{"error": {code, message}}`).
//! The built-ins `join` and `room:message` serve room broadcasts.

use serde_json::json;
use switchboard::handlers::{Ctx, HandlerResponse, MessageCall};
use switchboard::ServerBuilder;

const CONFIG: &str = r#"
heartbeatInterval = 300
heartbeatTimeout = 200
maxPayloadSize = 1000000

[server]
listen = "127.0.0.1:3000"
store = "memory"

[[routes]]
path = "/socket.io"
codec = "socket.io"

[[routes]]
path = "/engine.io"
codec = "engine.io"

[socketIo]
namespaces = ["/", "/custom"]

[messages.connection]
[messages.message]
[messages.message-with-ack]
[messages.ask-me]
"#;

fn send(message: serde_json::Value) -> HandlerResponse {
    HandlerResponse {
        commands: vec![json!({"command": "send", "message": message})],
        ..HandlerResponse::default()
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt().with_env_filter("warn").init();
    let mut doc = switchboard::config::toml_to_json(CONFIG).map_err(|p| anyhow::anyhow!("{p}"))?;
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--listen") {
        let addr = args
            .get(i + 1)
            .ok_or_else(|| anyhow::anyhow!("--listen needs an address (127.0.0.1:3000)"))?;
        doc["server"]["listen"] = json!(addr);
    }
    let deployment = switchboard::config::from_document(doc).map_err(|p| anyhow::anyhow!("{p}"))?;
    let server = ServerBuilder::new(deployment)
        .on_message("connection", |msg: MessageCall, _ctx: Ctx| async move {
            send(json!({
                "event": "auth",
                "data": msg.data["auth"],
                "namespace": msg.data["namespace"],
            }))
        })
        .on_message("message", |msg: MessageCall, _ctx: Ctx| async move {
            // A bare Engine.IO session: echo every message packet.
            if msg.client.route == "/engine.io" {
                return send(json!({"event": "message", "data": msg.data}));
            }
            // The request id of a Socket.IO event names its namespace: answer there.
            send(json!({
                "event": "message-back",
                "data": msg.data,
                "namespace": msg.request_id["sio"],
            }))
        })
        .on_message(
            "message-with-ack",
            |msg: MessageCall, _ctx: Ctx| async move { HandlerResponse::reply(msg.data) },
        )
        .on_message("ask-me", |msg: MessageCall, ctx: Ctx| async move {
            // A server-requested ack: emit `ask` to the caller and wait for its answer
            // (within the handler's own 5 s deadline).
            match ctx.emit_with_ack("ask", msg.data, Some(2000)).await {
                Ok(answer) => HandlerResponse::reply(answer),
                Err(e) => HandlerResponse::reply(json!({
                    "error": {"code": e.code, "message": e.message}
                })),
            }
        })
        .start()
        .await?;
    println!("listening on {}", server.local_addr());
    tokio::signal::ctrl_c().await?;
    server.shutdown().await;
    Ok(())
}
