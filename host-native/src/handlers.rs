//! Application handlers on the native host: Rust closures registered on the
//! [`crate::ServerBuilder`], or HTTP webhooks named in the config (the standalone
//! binary).
//!
//! The engine decides everything about an application message, hook or interceptor
//! (validation, authorization, limits, deadlines, what the client sees) and asks the
//! host with a `message`, `hook` or `intercept` host call. The actor hands the call to
//! the registered closure, or else to the config's webhook, on a task of its own, and
//! feeds the [`HandlerResponse`] back as the call's completion. A closure that panics,
//! a webhook that fails (network error, non-2xx status, a body that is not a response)
//! and a call with no handler at all are answered `failed` (the client gets
//! `INTERNAL_ERROR`); a slow one is answered `TIMEOUT` by the engine at its deadline
//! while other clients go on.
//!
//! ```no_run
//! use serde_json::json;
//! use switchboard::handlers::{Ctx, HandlerError, MessageCall};
//! use switchboard::ServerBuilder;
//! # async fn run(deployment: switchboard::Deployment) -> anyhow::Result<()> {
//! let server = ServerBuilder::new(deployment)
//!     .on_message("ai:chat", |msg: MessageCall, ctx: Ctx| async move {
//!         // Stream: several frames to the caller, then the reply.
//!         for chunk in ["Hel", "lo"] {
//!             let _ = ctx.send(json!({"type": "ai:response:chunk", "data": chunk})).await;
//!         }
//!         if msg.data.is_null() {
//!             return Err(HandlerError::new("EMPTY_PROMPT", "say something"));
//!         }
//!         Ok(json!({"done": true}))
//!     })
//!     .start()
//!     .await?;
//! # server.shutdown().await; Ok(()) }
//! ```

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

pub use engine::app::{
    ClientContext, HandlerError, HandlerResponse, HookCall, HookKind, InterceptCall, MessageCall,
};
use engine::{Command, CommandError, ErrorCode, HostRequest, OpId};
use futures_util::FutureExt;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use tokio::sync::mpsc;

use crate::mailbox::ActorHandle;

/// The webhook signature header: `sha256=<hex HMAC-SHA256 of the body>` with
/// `hooks.webhookSecret`.
pub const SIGNATURE_HEADER: &str = "x-switchboard-signature";

/// Largest webhook response body read.
pub const MAX_WEBHOOK_BODY: usize = 1024 * 1024;

type BoxFut = Pin<Box<dyn Future<Output = HandlerResponse> + Send>>;
type Dyn = Arc<dyn Fn(HostRequest, Ctx) -> BoxFut + Send + Sync>;

/// One registered handler (a closure behind an `Arc`).
#[derive(Clone)]
pub struct Handler(Dyn);

impl fmt::Debug for Handler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Handler")
    }
}

/// The handlers registered in code, by message type, hook and intercepted type.
#[derive(Debug, Clone, Default)]
pub struct Handlers {
    messages: HashMap<String, Handler>,
    connect: Option<Handler>,
    disconnect: Option<Handler>,
    interceptors: HashMap<String, Handler>,
}

impl Handlers {
    /// Whether none is registered.
    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
            && self.connect.is_none()
            && self.disconnect.is_none()
            && self.interceptors.is_empty()
    }

    /// Register the handler of an application message type.
    pub fn on_message<F, Fut, R>(&mut self, message_type: &str, f: F)
    where
        F: Fn(MessageCall, Ctx) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = R> + Send + 'static,
        R: Into<HandlerResponse>,
    {
        let f = Arc::new(f);
        let h: Dyn = Arc::new(move |req, ctx| {
            let f = f.clone();
            Box::pin(async move {
                match req {
                    HostRequest::Message(call) => f(*call, ctx).await.into(),
                    _ => HandlerResponse::failed("not a message call"),
                }
            })
        });
        self.messages.insert(message_type.to_string(), Handler(h));
    }

    /// Register a lifecycle hook.
    pub fn on_hook<F, Fut, R>(&mut self, kind: HookKind, f: F)
    where
        F: Fn(HookCall, Ctx) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = R> + Send + 'static,
        R: Into<HandlerResponse>,
    {
        let f = Arc::new(f);
        let h: Dyn = Arc::new(move |req, ctx| {
            let f = f.clone();
            Box::pin(async move {
                match req {
                    HostRequest::Hook(call) => f(*call, ctx).await.into(),
                    _ => HandlerResponse::failed("not a hook call"),
                }
            })
        });
        match kind {
            HookKind::Connect => self.connect = Some(Handler(h)),
            HookKind::Disconnect => self.disconnect = Some(Handler(h)),
        }
    }

    /// Register the interceptor of a built-in message type.
    pub fn intercept<F, Fut, R>(&mut self, message_type: &str, f: F)
    where
        F: Fn(InterceptCall, Ctx) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = R> + Send + 'static,
        R: Into<HandlerResponse>,
    {
        let f = Arc::new(f);
        let h: Dyn = Arc::new(move |req, ctx| {
            let f = f.clone();
            Box::pin(async move {
                match req {
                    HostRequest::Intercept(call) => f(*call, ctx).await.into(),
                    _ => HandlerResponse::failed("not an intercept call"),
                }
            })
        });
        self.interceptors
            .insert(message_type.to_string(), Handler(h));
    }

    /// Names the config must enable for the registered handlers (so the engine makes
    /// the calls): hooks and interceptors registered in code are switched on, message
    /// types registered in code but not declared are declared with defaults.
    pub fn enable_in(&self, config: &mut engine::Config) {
        use engine::app::HookTarget;
        for t in self.messages.keys() {
            config.messages.entry(t.clone()).or_default();
        }
        if self.connect.is_some() && config.hooks.connect.is_none() {
            config.hooks.connect = Some(HookTarget::Enabled(true));
        }
        if self.disconnect.is_some() && config.hooks.disconnect.is_none() {
            config.hooks.disconnect = Some(HookTarget::Enabled(true));
        }
        for t in self.interceptors.keys() {
            config
                .interceptors
                .entry(t.clone())
                .or_insert(HookTarget::Enabled(true));
        }
    }
}

/// The command handle of a running server: the server API for Rust code (the same
/// commands as the admin HTTP API, without HTTP).
#[derive(Debug, Clone)]
pub struct ServerHandle {
    actor: ActorHandle,
}

fn stopping() -> CommandError {
    CommandError {
        code: ErrorCode::Unavailable,
        message: "server is stopping".into(),
        store: None,
    }
}

impl ServerHandle {
    pub(crate) fn new(actor: ActorHandle) -> Self {
        ServerHandle { actor }
    }

    /// Run any server-API command.
    pub async fn command(&self, command: Command) -> Result<Value, CommandError> {
        self.actor.command(command).await.unwrap_or(Err(stopping()))
    }

    /// Send `message` verbatim to every connection.
    pub async fn broadcast(&self, message: Value) -> Result<Value, CommandError> {
        self.command(Command::Broadcast {
            message,
            filter: None,
            tenant: None,
        })
        .await
    }

    /// Send `message` verbatim to one client.
    pub async fn send_to(&self, client_id: &str, message: Value) -> Result<Value, CommandError> {
        self.command(Command::SendTo {
            client_id: client_id.into(),
            message,
        })
        .await
    }

    /// Send `message` verbatim to every connection of a user.
    pub async fn send_to_user(&self, user_id: &str, message: Value) -> Result<Value, CommandError> {
        self.command(Command::SendToUser {
            user_id: user_id.into(),
            message,
            tenant: None,
        })
        .await
    }

    /// Send `message` verbatim to the members of a room.
    pub async fn send_to_room(&self, room: &str, message: Value) -> Result<Value, CommandError> {
        self.command(Command::SendToRoom {
            room: room.into(),
            message,
            except_client_id: None,
            tenant: None,
        })
        .await
    }

    /// Publish on a channel as the server.
    pub async fn publish(&self, channel: &str, data: Value) -> Result<Value, CommandError> {
        self.command(Command::Publish {
            channel: channel.into(),
            data: Some(data),
            tenant: None,
        })
        .await
    }

    /// Put a client in a room.
    pub async fn join_room(&self, client_id: &str, room: &str) -> Result<Value, CommandError> {
        self.command(Command::JoinRoom {
            client_id: client_id.into(),
            room: room.into(),
        })
        .await
    }

    /// Take a client out of a room.
    pub async fn leave_room(&self, client_id: &str, room: &str) -> Result<Value, CommandError> {
        self.command(Command::LeaveRoom {
            client_id: client_id.into(),
            room: room.into(),
        })
        .await
    }

    /// Close a client's connection (4001).
    pub async fn disconnect(&self, client_id: &str, reason: &str) -> Result<Value, CommandError> {
        self.command(Command::Disconnect {
            client_id: client_id.into(),
            reason: Some(reason.into()),
        })
        .await
    }

    /// Emit the Socket.IO event `event` to a client on the namespace `/`, asking for an
    /// acknowledgement, and wait for it (at most `timeout_ms`, default
    /// `limits.hostCallTimeoutMs`): the ack's arguments (none: `null`, several:
    /// `{"$args": [...]}`). `TIMEOUT` when the client does not acknowledge in time,
    /// `NOT_FOUND` when it is not connected or disconnects first (see
    /// [`Command::EmitWithAck`]).
    pub async fn emit_with_ack(
        &self,
        client_id: &str,
        event: &str,
        data: Value,
        timeout_ms: Option<u64>,
    ) -> Result<Value, CommandError> {
        let result = self
            .command(Command::EmitWithAck {
                client_id: client_id.into(),
                event: event.into(),
                data: Some(data),
                namespace: None,
                timeout_ms,
            })
            .await?;
        Ok(result.get("data").cloned().unwrap_or(Value::Null))
    }
}

/// What a handler gets besides its call: the caller's id and the server's command
/// handle.
#[derive(Debug, Clone)]
pub struct Ctx {
    client_id: String,
    server: ServerHandle,
}

impl Ctx {
    /// The calling client's id.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The server's command handle.
    pub fn server(&self) -> &ServerHandle {
        &self.server
    }

    /// Send `message` verbatim to the caller (call it several times to stream).
    pub async fn send(&self, message: Value) -> Result<Value, CommandError> {
        self.server.send_to(&self.client_id, message).await
    }

    /// Put the caller in a room.
    pub async fn join(&self, room: &str) -> Result<Value, CommandError> {
        self.server.join_room(&self.client_id, room).await
    }

    /// Take the caller out of a room.
    pub async fn leave(&self, room: &str) -> Result<Value, CommandError> {
        self.server.leave_room(&self.client_id, room).await
    }

    /// Ask the calling Socket.IO client for an acknowledgement of `event` and wait for
    /// it (see [`ServerHandle::emit_with_ack`]). Keep `timeout_ms` under the handler's
    /// own deadline.
    pub async fn emit_with_ack(
        &self,
        event: &str,
        data: Value,
        timeout_ms: Option<u64>,
    ) -> Result<Value, CommandError> {
        self.server
            .emit_with_ack(&self.client_id, event, data, timeout_ms)
            .await
    }
}

/// Posts handler calls to webhooks.
#[derive(Debug, Clone)]
pub struct Webhooks {
    client: reqwest::Client,
}

impl Webhooks {
    /// A client that never follows redirects.
    pub fn new() -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("switchboard/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build the webhook HTTP client: {e}"))?;
        Ok(Webhooks { client })
    }

    /// POST `body` to `url` (signed with `secret`) and read the answer within `budget`.
    pub async fn call(
        &self,
        url: &str,
        body: &Value,
        secret: Option<&str>,
        budget: Duration,
    ) -> HandlerResponse {
        match tokio::time::timeout(budget, self.try_call(url, body, secret)).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => HandlerResponse::failed(e),
            Err(_) => HandlerResponse::failed(format!(
                "webhook gave no answer within {} ms",
                budget.as_millis()
            )),
        }
    }

    async fn try_call(
        &self,
        url: &str,
        body: &Value,
        secret: Option<&str>,
    ) -> Result<HandlerResponse, String> {
        let bytes = serde_json::to_vec(body).map_err(|e| e.to_string())?;
        let mut req = self
            .client
            .post(url)
            .header("content-type", "application/json");
        if let Some(secret) = secret {
            req = req.header(SIGNATURE_HEADER, signature(secret, &bytes));
        }
        let mut resp = req
            .body(bytes)
            .send()
            .await
            .map_err(|e| format!("webhook request failed: {e}"))?;
        let status = resp.status();
        let mut out = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| e.to_string())? {
            out.extend_from_slice(&chunk);
            if out.len() > MAX_WEBHOOK_BODY {
                return Err(format!("webhook answer exceeds {MAX_WEBHOOK_BODY} bytes"));
            }
        }
        if !status.is_success() {
            return Err(format!("webhook answered HTTP {}", status.as_u16()));
        }
        if out.iter().all(u8::is_ascii_whitespace) {
            return Ok(HandlerResponse::default());
        }
        serde_json::from_slice(&out).map_err(|e| format!("webhook answer is not a response: {e}"))
    }
}

/// `sha256=<hex>`: HMAC-SHA256 of `body` with `secret`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(body);
    let bytes = mac.finalize().into_bytes();
    let mut hex = String::with_capacity(71);
    hex.push_str("sha256=");
    for b in bytes {
        hex.push_str(&format!("{b:02x}"));
    }
    hex
}

/// Where a call goes.
enum Target {
    Code(Handler),
    Webhook(String),
    None(String),
}

/// Find the handler of a call: code first, then the config's webhook.
fn target(handlers: &Handlers, config: &engine::Config, request: &HostRequest) -> Target {
    match request {
        HostRequest::Message(call) => {
            if let Some(h) = handlers.messages.get(&call.message_type) {
                return Target::Code(h.clone());
            }
            match config
                .messages
                .get(&call.message_type)
                .and_then(|m| m.webhook.clone())
            {
                Some(url) => Target::Webhook(url),
                None => Target::None(format!(
                    "no handler is registered for message type `{}`",
                    call.message_type
                )),
            }
        }
        HostRequest::Hook(call) => {
            let (code, cfg) = match call.hook {
                HookKind::Connect => (&handlers.connect, &config.hooks.connect),
                HookKind::Disconnect => (&handlers.disconnect, &config.hooks.disconnect),
            };
            if let Some(h) = code {
                return Target::Code(h.clone());
            }
            match cfg.as_ref().and_then(|t| t.url()) {
                Some(url) => Target::Webhook(url.to_string()),
                None => Target::None(format!("no {:?} hook is registered", call.hook)),
            }
        }
        HostRequest::Intercept(call) => {
            if let Some(h) = handlers.interceptors.get(&call.message_type) {
                return Target::Code(h.clone());
            }
            match config
                .interceptors
                .get(&call.message_type)
                .and_then(|t| t.url())
            {
                Some(url) => Target::Webhook(url.to_string()),
                None => Target::None(format!(
                    "no interceptor is registered for `{}`",
                    call.message_type
                )),
            }
        }
        _ => Target::None("not a handler call".into()),
    }
}

/// How long a handler may run past the engine's deadline before its task is dropped.
pub const HANDLER_GRACE: Duration = Duration::from_secs(1);

/// Everything the actor needs to run handler calls.
#[derive(Debug, Clone)]
pub struct Runner {
    /// Handlers registered in code.
    pub handlers: Handlers,
    /// The webhook client (None if it could not be built).
    pub webhooks: Option<Webhooks>,
    /// The server's command handle (given to handlers).
    pub server: ServerHandle,
    /// Answers go back to the actor here.
    pub tx: mpsc::UnboundedSender<(OpId, HandlerResponse)>,
}

impl Runner {
    /// Run a handler call. A code handler is polled once right here: if it answers
    /// without waiting (a synchronous handler), its answer is returned and the caller
    /// completes the call at once, so the answers of one connection's synchronous
    /// handlers come back in the order of its messages, as on the JS hosts. A handler
    /// that waits, and every webhook, continues on its own task and answers on `tx`.
    pub fn spawn(
        &self,
        config: &engine::Config,
        op: OpId,
        client_id: String,
        request: HostRequest,
        budget: Duration,
    ) -> Option<HandlerResponse> {
        let tx = self.tx.clone();
        match target(&self.handlers, config, &request) {
            Target::None(why) => {
                tracing::warn!(reason = %why, "handler call without a handler");
                Some(HandlerResponse::failed(why))
            }
            Target::Code(h) => {
                let ctx = Ctx {
                    client_id,
                    server: self.server.clone(),
                };
                // The closure and the first poll run here; a panic in either is the
                // handler's failure, never the actor's.
                let first = std::panic::catch_unwind(AssertUnwindSafe(|| {
                    let mut fut = (h.0)(request, ctx);
                    match fut.as_mut().now_or_never() {
                        Some(resp) => Ok(resp),
                        None => Err(fut),
                    }
                }));
                let fut = match first {
                    Ok(Ok(resp)) => return Some(resp),
                    Ok(Err(fut)) => fut,
                    Err(_) => {
                        tracing::error!("application handler panicked");
                        return Some(HandlerResponse::failed("the handler panicked"));
                    }
                };
                tokio::spawn(async move {
                    let mut task = tokio::spawn(fut);
                    let resp = match tokio::time::timeout(budget + HANDLER_GRACE, &mut task).await {
                        Ok(Ok(r)) => r,
                        Ok(Err(e)) => {
                            tracing::error!(error = %e, "application handler failed");
                            HandlerResponse::failed("the handler panicked")
                        }
                        Err(_) => {
                            task.abort();
                            tracing::warn!("application handler still running long after its deadline; abandoned");
                            return;
                        }
                    };
                    let _ = tx.send((op, resp));
                });
                None
            }
            Target::Webhook(url) => {
                let Some(webhooks) = self.webhooks.clone() else {
                    return Some(HandlerResponse::failed("no HTTP client"));
                };
                let secret = config.hooks.webhook_secret.clone();
                let body = serde_json::to_value(&request).unwrap_or(json!(null));
                tokio::spawn(async move {
                    let resp = webhooks.call(&url, &body, secret.as_deref(), budget).await;
                    if let Some(why) = &resp.failed {
                        tracing::warn!(%url, error = %why, "webhook failed");
                    }
                    let _ = tx.send((op, resp));
                });
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_hex_hmac_sha256() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
