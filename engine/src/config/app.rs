//! The application parts of a config: message types, lifecycle hooks, interceptors,
//! room rules (their contract and compiled guards live in [`crate::app`]).

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// One application message type (`[messages.<type>]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct MessageConfig {
    /// JSON Schema the message's `data` must satisfy (absent `data` is `null`).
    pub schema: Option<Value>,
    /// Roles allowed to send it; empty allows everyone (including anonymous clients).
    pub roles: Vec<String>,
    /// Scopes the sender must all hold (implies authentication).
    pub scopes: Vec<String>,
    /// CEL guard over `user`, `data`, `params`, `route`, `clientId`, `meta`: `true`
    /// allows, anything else (or an evaluation error) refuses with `FORBIDDEN`.
    pub guard: Option<String>,
    /// Rate-limit tokens the message costs (with `rateLimit.enabled`). Default 1.
    pub cost: u64,
    /// Deadline of the handler call in milliseconds (default `limits.hostCallTimeoutMs`).
    pub timeout_ms: Option<u64>,
    /// The HTTP handler (standalone server: `POST` JSON, see PROTOCOL.md "Webhooks").
    /// Embedded servers attach handlers in code instead; the engine ignores this field.
    pub webhook: Option<String>,
}

impl Default for MessageConfig {
    fn default() -> Self {
        Self {
            schema: None,
            roles: Vec::new(),
            scopes: Vec::new(),
            guard: None,
            cost: 1,
            timeout_ms: None,
            webhook: None,
        }
    }
}

/// Where a hook or an interceptor runs: `true` (a handler attached in code), `false`
/// (off) or a webhook URL (standalone server).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum HookTarget {
    /// On (`true`) or off (`false`).
    Enabled(bool),
    /// A webhook URL (on).
    Webhook(String),
}

impl HookTarget {
    /// Whether the hook runs.
    pub fn is_on(&self) -> bool {
        !matches!(self, HookTarget::Enabled(false))
    }

    /// The webhook URL, if it is one.
    pub fn url(&self) -> Option<&str> {
        match self {
            HookTarget::Webhook(u) => Some(u),
            HookTarget::Enabled(_) => None,
        }
    }
}

impl<'de> Deserialize<'de> for HookTarget {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            B(bool),
            S(String),
        }
        match Raw::deserialize(d) {
            Ok(Raw::B(b)) => Ok(HookTarget::Enabled(b)),
            Ok(Raw::S(s)) => Ok(HookTarget::Webhook(s)),
            Err(_) => Err(serde::de::Error::custom(
                "expected true, false or a webhook URL",
            )),
        }
    }
}

/// Lifecycle hooks (`[hooks]`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct HooksConfig {
    /// After authentication, before the welcome: the application may refuse the
    /// connection, replace the user, attach metadata and run commands (server-side
    /// joins). A failed or late hook closes the connection with 1013.
    pub connect: Option<HookTarget>,
    /// When a connection that was welcomed ends (a notification; its answer is ignored).
    pub disconnect: Option<HookTarget>,
    /// Deadline of hook calls in milliseconds (default `limits.hostCallTimeoutMs`).
    pub timeout_ms: Option<u64>,
    /// Secret for the webhooks' HMAC-SHA256 signature (`X-Switchboard-Signature`);
    /// hosts without webhooks ignore it.
    pub webhook_secret: Option<String>,
}

/// Who may use rooms for one action (`[rooms.join]`, `[rooms.members]`, `[rooms.message]`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct RoomRule {
    /// Roles allowed; empty allows everyone (including anonymous clients).
    pub roles: Vec<String>,
    /// CEL guard over `user`, `room`, `params`, `route`, `clientId`, `meta`; `true`
    /// allows, anything else refuses with `FORBIDDEN`.
    pub guard: Option<String>,
}

impl RoomRule {
    /// Whether the rule restricts anything.
    pub fn is_open(&self) -> bool {
        self.roles.is_empty() && self.guard.is_none()
    }
}
