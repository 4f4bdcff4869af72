//! Application handlers: the contract between the engine and application code.
//!
//! A deployment declares **application message types** (`[messages.<type>]`), **lifecycle
//! hooks** (`[hooks] connect`, `disconnect`) and **interceptors** for built-in messages
//! (`[interceptors] publish = true`). The engine decodes, validates (JSON Schema),
//! authorizes (roles, scopes, a CEL guard) and rate-limits an application message, then
//! hands it to the application as a host call ([`crate::HostRequest::Message`]); hooks
//! and interceptors are host calls too ([`crate::HostRequest::Hook`],
//! [`crate::HostRequest::Intercept`]). Every one of them is answered with the same
//! [`HandlerResponse`] ([`crate::HostResult::Handler`]): a reply, an error, commands of
//! the server API to run, and for hooks and interceptors a new user, connection
//! metadata or a modified message.
//!
//! The host decides *how* the application runs (a Rust closure, a JS function, an HTTP
//! webhook); the engine decides everything else, the same way on every host: limits on
//! calls in flight, deadlines (`TIMEOUT` with the `requestId`), what the client sees.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use cel::common::value::{CowVal, Val};
use cel::context::VariableResolver;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::error::ConfigIssue;

/// Built-in client message types an interceptor can be attached to.
pub const INTERCEPTABLE: &[&str] = &[
    "publish",
    "room:message",
    "direct",
    "insert",
    "update",
    "delete",
    "subscribe",
    "join",
];

/// Close code of a connection refused by the `connect` hook (unless the hook names
/// another 4000–4999 code).
pub const CLOSE_CONNECT_REFUSED: u16 = 4403;

/// Close code when the `connect` hook failed or timed out (try again later).
pub const CLOSE_CONNECT_FAILED: u16 = 1013;

pub use crate::config::{HookTarget, HooksConfig, MessageConfig, RoomRule};

/// Guards and schemas of the application parts of a config (message types, room rules),
/// compiled once with the config ([`crate::compile`]).
#[derive(Debug, Default)]
pub(crate) struct CompiledApp {
    /// Each message type's guard.
    pub(crate) guards: BTreeMap<String, AppGuard>,
    /// Each message type's payload schema.
    pub(crate) schemas: BTreeMap<String, crate::validation::RecordSchema>,
    /// The `rooms.join` guard.
    pub(crate) join: Option<AppGuard>,
    /// The `rooms.members` guard.
    pub(crate) members: Option<AppGuard>,
    /// The `rooms.message` guard.
    pub(crate) message: Option<AppGuard>,
}

/// Validate the application parts of a config (message types, hooks, interceptors,
/// room rules, route patterns) and compile their guards and schemas.
pub(crate) fn validate(config: &crate::Config, issues: &mut Vec<ConfigIssue>) -> CompiledApp {
    let mut out = CompiledApp::default();
    let mut issue = |path: String, problem: String| issues.push(ConfigIssue { path, problem });
    for (name, m) in &config.messages {
        let path = format!("messages.{name}");
        if name.is_empty() || name.len() > config.limits.max_name_length {
            issue(
                path.clone(),
                "message type names must be 1..=limits.maxNameLength characters".into(),
            );
        }
        if crate::protocol::CLIENT_TYPES.contains(&name.as_str()) {
            issue(
                path.clone(),
                format!("`{name}` is a built-in message type; choose another name"),
            );
        }
        if m.cost == 0 {
            issue(format!("{path}.cost"), "must be at least 1".into());
        }
        if m.timeout_ms == Some(0) {
            issue(format!("{path}.timeoutMs"), "must be at least 1".into());
        }
        if let Some(g) = &m.guard {
            match AppGuard::compile(g) {
                Ok(g) => {
                    out.guards.insert(name.clone(), g);
                }
                Err(e) => issue(format!("{path}.guard"), e),
            }
        }
        if let Some(s) = &m.schema {
            match crate::validation::RecordSchema::compile(s) {
                Ok(s) => {
                    out.schemas.insert(name.clone(), s);
                }
                Err(e) => issue(format!("{path}.schema"), e),
            }
        }
        if let Some(url) = &m.webhook {
            if let Err(e) = check_webhook_url(url) {
                issue(format!("{path}.webhook"), e);
            }
        }
    }
    for (name, target) in [
        ("connect", &config.hooks.connect),
        ("disconnect", &config.hooks.disconnect),
    ] {
        if let Some(url) = target.as_ref().and_then(HookTarget::url) {
            if let Err(e) = check_webhook_url(url) {
                issue(format!("hooks.{name}"), e);
            }
        }
    }
    if config.hooks.timeout_ms == Some(0) {
        issue("hooks.timeoutMs".into(), "must be at least 1".into());
    }
    for (name, target) in &config.interceptors {
        if !INTERCEPTABLE.contains(&name.as_str()) {
            issue(
                format!("interceptors.{name}"),
                format!(
                    "not an interceptable message type (one of {})",
                    INTERCEPTABLE.join(", ")
                ),
            );
        }
        if let Some(url) = target.url() {
            if let Err(e) = check_webhook_url(url) {
                issue(format!("interceptors.{name}"), e);
            }
        }
    }
    for (name, rule, slot) in [
        ("join", &config.rooms.join, &mut out.join),
        ("members", &config.rooms.members, &mut out.members),
        ("message", &config.rooms.message, &mut out.message),
    ] {
        if let Some(g) = &rule.guard {
            match AppGuard::compile(g) {
                Ok(g) => *slot = Some(g),
                Err(e) => issue(format!("rooms.{name}.guard"), e),
            }
        }
    }
    for (i, r) in config.routes.iter().enumerate() {
        if let Err(e) = crate::routes::RoutePattern::parse(&r.path) {
            issue(format!("routes[{i}].path"), e);
        }
        if let Some(t) = &r.tenant {
            if let Some(p) = t.strip_prefix(':') {
                let has = crate::routes::RoutePattern::parse(&r.path)
                    .is_ok_and(|pat| pat.param_names().any(|n| n == p));
                if !has {
                    issue(
                        format!("routes[{i}].tenant"),
                        format!("the path has no parameter `:{p}`"),
                    );
                }
            } else if t.is_empty() {
                issue(
                    format!("routes[{i}].tenant"),
                    "must be a tenant name or `:param`".into(),
                );
            }
        }
    }
    out
}

/// A webhook URL must be `http://` or `https://` with a host.
pub fn check_webhook_url(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(|| format!("`{url}` is not an http:// or https:// URL"))?;
    if rest.is_empty() || rest.starts_with('/') {
        return Err(format!("`{url}` has no host"));
    }
    Ok(())
}

/// The connection a handler call is about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientContext {
    /// The client's id.
    pub client_id: String,
    /// Its user (`{id, role, scopes, ...claims}`), or null when anonymous.
    pub user: Value,
    /// The route pattern it connected on (e.g. `/ws/game/:sessionId`).
    pub route: String,
    /// The route's path parameters (`{"sessionId": "42"}`).
    pub params: BTreeMap<String, String>,
    /// Its tenant, when its route declares one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// Metadata the `connect` hook attached (null when none).
    #[serde(default)]
    pub meta: Value,
}

/// An application message for its handler (`HostRequest::Message`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageCall {
    /// The message type, as declared.
    #[serde(rename = "type")]
    pub message_type: String,
    /// The message's `data` (null when absent), already validated.
    pub data: Value,
    /// The client's `requestId` (null when absent).
    pub request_id: Value,
    /// The sender.
    pub client: ClientContext,
}

/// Which lifecycle hook runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum HookKind {
    /// A connection was authenticated and waits for its welcome.
    Connect,
    /// A connection ended.
    Disconnect,
}

/// A lifecycle hook call (`HostRequest::Hook`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HookCall {
    /// `connect` or `disconnect`.
    pub hook: HookKind,
    /// The connection.
    pub client: ClientContext,
    /// Disconnect: the close code (null when the transport ended without one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<u16>,
    /// Disconnect: the close reason the server sent (absent for client closes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Connect: the peer address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer: Option<String>,
}

/// A built-in message on its way to be executed (`HostRequest::Intercept`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InterceptCall {
    /// The built-in type (`publish`, `room:message`, ...).
    #[serde(rename = "type")]
    pub message_type: String,
    /// The message as the client sent it (without `requestId`).
    pub message: Value,
    /// The client's `requestId` (null when absent).
    pub request_id: Value,
    /// The sender.
    pub client: ClientContext,
}

/// An error chosen by the application.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HandlerError {
    /// A documented code (`FORBIDDEN`, `VALIDATION_ERROR`, ...) or the application's
    /// own (`[A-Z][A-Z0-9_]*`, at most 64 characters); anything else becomes
    /// `INTERNAL_ERROR`.
    pub code: String,
    /// Shown to the client (at most 500 characters are kept).
    #[serde(default)]
    pub message: String,
    /// `connect` hook only: the close code (4000–4999; default 4403).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub close_code: Option<u16>,
}

/// What a handler, hook or interceptor answers (`HostResult::Handler`; also the body of
/// a webhook's response). Every part is optional.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HandlerResponse {
    /// Message handlers: sent to the caller as `{"type":"reply","requestId",...,"data"}`
    /// (`null` included; absent: no reply).
    #[serde(deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub reply: Option<Value>,
    /// Refuse: an error frame with this code (message handlers, interceptors: the
    /// request is cancelled) or a refused connection (`connect`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<HandlerError>,
    /// Server-API commands to run first, in order (`sendTo`, `joinRoom`, `publish`,
    /// ...). A missing `clientId` means the caller; `send` is `sendTo` the caller.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub commands: Vec<Value>,
    /// `connect`: replace the user (`{id, role?, scopes?, ...claims}`; null: anonymous).
    #[serde(deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub user: Option<Value>,
    /// `connect`: metadata attached to the connection, visible to handlers and guards.
    #[serde(deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub meta: Option<Value>,
    /// Interceptors: the message to execute instead (same type; `requestId` kept).
    #[serde(deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub modified: Option<Value>,
    /// The host could not run the handler (no handler, it threw, the webhook failed);
    /// for logs only. The client gets `INTERNAL_ERROR`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed: Option<String>,
}

impl HandlerResponse {
    /// A reply.
    pub fn reply(data: Value) -> Self {
        Self {
            reply: Some(data),
            ..Self::default()
        }
    }

    /// An error with a code and message.
    pub fn error(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            error: Some(HandlerError {
                code: code.into(),
                message: message.into(),
                close_code: None,
            }),
            ..Self::default()
        }
    }

    /// The host failed to run the handler.
    pub fn failed(why: impl Into<String>) -> Self {
        Self {
            failed: Some(why.into()),
            ..Self::default()
        }
    }
}

impl HandlerError {
    /// An error with a code (documented or the application's own) and a message.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
            close_code: None,
        }
    }
}

impl From<Value> for HandlerResponse {
    /// A reply.
    fn from(v: Value) -> Self {
        HandlerResponse::reply(v)
    }
}

impl From<()> for HandlerResponse {
    /// No reply.
    fn from(_: ()) -> Self {
        HandlerResponse::default()
    }
}

impl From<HandlerError> for HandlerResponse {
    /// An error.
    fn from(e: HandlerError) -> Self {
        HandlerResponse {
            error: Some(e),
            ..HandlerResponse::default()
        }
    }
}

impl From<Result<Value, HandlerError>> for HandlerResponse {
    /// A reply or an error.
    fn from(r: Result<Value, HandlerError>) -> Self {
        match r {
            Ok(v) => v.into(),
            Err(e) => e.into(),
        }
    }
}

/// A field that is present (even as `null`) becomes `Some`.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

/// Whether `code` is acceptable as an application error code.
pub fn valid_app_code(code: &str) -> bool {
    let b = code.as_bytes();
    !b.is_empty()
        && b.len() <= 64
        && b[0].is_ascii_uppercase()
        && b.iter()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == b'_')
}

/// A compiled CEL guard for application messages and room rules: `true` allows,
/// anything else (or an error) refuses.
pub struct AppGuard {
    program: cel::Program,
    env: Arc<cel::Env>,
}

impl fmt::Debug for AppGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AppGuard")
    }
}

struct Vars<'a>(&'a [(&'a str, Box<dyn Val>)]);

impl VariableResolver for Vars<'_> {
    fn resolve<'b>(&'b self, variable: &str) -> Option<CowVal<'b, 'b>> {
        self.0
            .iter()
            .find(|(n, _)| *n == variable)
            .map(|(_, v)| CowVal::Borrowed(v.as_ref()))
    }
}

impl AppGuard {
    /// Compile an expression.
    pub fn compile(source: &str) -> Result<AppGuard, String> {
        #[cfg(test)]
        crate::compile_count::cel();
        let program = cel::Program::compile(source)
            .map_err(|e| format!("not a valid CEL expression: {e}"))?;
        Ok(AppGuard {
            program,
            env: Arc::new(cel::Env::stdlib()),
        })
    }

    /// Evaluate with JSON variables: `Ok(true)` allows; `Err` is an evaluation error.
    pub fn allows(&self, vars: &[(&str, &Value)]) -> Result<bool, String> {
        let mut converted: Vec<(&str, Box<dyn Val>)> = Vec::with_capacity(vars.len());
        for (name, v) in vars {
            let cv = cel::to_value(*v).map_err(|e| e.to_string())?;
            let b = Box::<dyn Val>::try_from(cv).map_err(|e| e.to_string())?;
            converted.push((name, b));
        }
        let resolver = Vars(&converted);
        let mut c = cel::Context::with_env(Arc::clone(&self.env));
        c.set_variable_resolver(&resolver);
        match self.program.execute(&c).map_err(|e| e.to_string())? {
            cel::Value::Bool(b) => Ok(b),
            _ => Ok(false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_present_null_reply_is_a_reply() {
        let r: HandlerResponse = serde_json::from_value(json!({"reply": null})).unwrap();
        assert_eq!(r.reply, Some(Value::Null));
        let r: HandlerResponse = serde_json::from_value(json!({})).unwrap();
        assert_eq!(r.reply, None);
    }

    #[test]
    fn app_guard_sees_its_variables() {
        let g = AppGuard::compile("user != null && data.n < 3 && params.room == 'a'").unwrap();
        let user = json!({"id": "u1"});
        let params = json!({"room": "a"});
        assert_eq!(
            g.allows(&[
                ("user", &user),
                ("data", &json!({"n": 1})),
                ("params", &params)
            ]),
            Ok(true)
        );
        assert_eq!(
            g.allows(&[
                ("user", &user),
                ("data", &json!({"n": 5})),
                ("params", &params)
            ]),
            Ok(false)
        );
        assert!(g.allows(&[("user", &user)]).is_err());
    }

    #[test]
    fn app_codes_are_upper_snake_case() {
        assert!(valid_app_code("CHAT_MUTED"));
        assert!(!valid_app_code("chat"));
        assert!(!valid_app_code(""));
        assert!(!valid_app_code(&"A".repeat(65)));
    }
}
