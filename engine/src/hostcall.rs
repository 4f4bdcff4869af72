//! Host calls: work that needs I/O (storage, async guards, a broker), requested by the
//! engine as [`crate::Action::Call`] and answered by the host with
//! [`crate::Input::Completed`].
//!
//! Wire types only: what is asked and what is answered. Each call has an [`OpId`](crate::OpId) and a
//! deadline; the engine keeps what it needs to resume privately. Calls are bounded per
//! connection and in total; a call that misses its deadline is answered with `TIMEOUT`
//! and a late completion is dropped and counted (`lateCompletions`).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::ErrorCode;

/// What the engine asks the host to do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum HostRequest {
    /// A storage operation.
    Store(StoreRequest),
    /// Ask the host's guard callback for a decision (resources with `hostGuards`).
    #[serde(rename_all = "camelCase")]
    Guard {
        /// Resource name.
        resource: String,
        /// The guarded action.
        action: crate::guard::GuardAction,
        /// What the guard sees (serialized `{user, filter, data, record, id}`, absent
        /// ones null). Boxed: the store requests, by far the most calls, stay small.
        context: Box<GuardContext>,
    },
    /// GET a document over HTTPS (a key source: an OpenID discovery document or a
    /// JWKS) and answer with [`HostResult::Fetch`]. The engine decides what and when
    /// (see `auth.jwt.keyRefresh`); the host only performs the request. `url` is
    /// `https://`, or `http://` on a loopback address; hosts refuse redirects to
    /// anything else and read at most [`crate::auth::MAX_FETCH_BODY`] bytes.
    Fetch(FetchRequest),
    /// Run the application's handler for an application message type; answer with
    /// [`HostResult::Handler`] (see [`crate::app`]).
    Message(Box<crate::app::MessageCall>),
    /// Run a lifecycle hook (`connect`, `disconnect`); answer with [`HostResult::Handler`].
    Hook(Box<crate::app::HookCall>),
    /// Run the interceptor of a built-in message; answer with [`HostResult::Handler`].
    Intercept(Box<crate::app::InterceptCall>),
}

/// An HTTP GET the engine asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FetchRequest {
    /// The URL (already checked with [`crate::auth::check_fetch_url`]).
    pub url: String,
}

/// The host's answer to a [`HostRequest::Fetch`]: what the server said, or why there
/// was no answer (`status` 0 and `error`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FetchResponse {
    /// HTTP status (0 when the request failed before a response).
    #[serde(default)]
    pub status: u16,
    /// The response body as text.
    #[serde(default)]
    pub body: String,
    /// The `Cache-Control` header, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_control: Option<String>,
    /// Why the request failed (network, TLS, timeout, body too large, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The context of a host guard call: what the engine knows about the request.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GuardContext {
    /// The connection's user as filters see it (`{id, role, scopes, ...claims}`);
    /// `None` for anonymous connections.
    #[serde(default)]
    pub user: Option<Value>,
    /// The client's filter (`subscribe`, `list`).
    #[serde(default)]
    pub filter: Option<Value>,
    /// The record to create (`create`, id and timestamps already set) or the patch
    /// (`update`).
    #[serde(default)]
    pub data: Option<Value>,
    /// The stored record (`update`, `delete`).
    #[serde(default)]
    pub record: Option<Value>,
    /// The record id (`get`, `update`, `delete`, and `create`).
    #[serde(default)]
    pub id: Option<String>,
}

/// Storage operations over a resource's records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "camelCase")]
pub enum StoreRequest {
    /// Read one record.
    Get {
        /// Resource name.
        resource: String,
        /// Record id.
        id: String,
    },
    /// Read a page of records in a stable order.
    List {
        /// Resource name.
        resource: String,
        /// Validated filter (`null` = all).
        filter: Value,
        /// Page size.
        limit: usize,
        /// Cursor returned by the previous page.
        cursor: Option<String>,
    },
    /// Create a record (its `id`, `createdAt` and `updatedAt` are set by the engine).
    Insert {
        /// Resource name.
        resource: String,
        /// The full record.
        record: Value,
    },
    /// Merge `patch` into a record (top-level fields).
    Update {
        /// Resource name.
        resource: String,
        /// Record id.
        id: String,
        /// Fields to set (includes the new `updatedAt`).
        patch: Value,
    },
    /// Remove a record.
    Delete {
        /// Resource name.
        resource: String,
        /// Record id.
        id: String,
    },
}

/// The host's answer to a call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum HostResult {
    /// Answer to a storage call.
    Store(StoreOutcome),
    /// Answer to a guard call.
    Guard(GuardDecision),
    /// Answer to a fetch call.
    Fetch(FetchResponse),
    /// Answer to a message, hook or intercept call.
    Handler(Box<crate::app::HandlerResponse>),
}

/// A host guard's decision; the same three outcomes as a CEL guard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "camelCase")]
pub enum GuardDecision {
    /// Go ahead.
    Allow,
    /// Refuse with `FORBIDDEN`; `message` (if any) is shown to the client.
    Deny {
        /// Optional explanation for the client.
        #[serde(default)]
        message: Option<String>,
    },
    /// Go ahead, restricted to records matching `filter`.
    Filter {
        /// A filter object.
        filter: Value,
    },
}

impl GuardDecision {
    /// The decision an application's guard callback means when it returns a loose value
    /// (the JS hosts' `guard` option): `true`, `undefined` or `null` allow; an object
    /// with a `decision` of `allow`, `deny` (with an optional `message`) or `filter`
    /// (with a `filter`) is that decision; an object with only a `filter` restricts;
    /// anything else, `false` included, denies without a message. Fails closed.
    pub fn from_callback_value(value: &Value) -> Self {
        match value {
            Value::Bool(true) | Value::Null => Self::Allow,
            Value::Object(o) if o.contains_key("decision") => {
                serde_json::from_value(value.clone()).unwrap_or(Self::Deny { message: None })
            }
            Value::Object(o) => match o.get("filter") {
                Some(f) if !f.is_null() && f != &Value::Bool(false) => {
                    Self::Filter { filter: f.clone() }
                }
                _ => Self::Deny { message: None },
            },
            _ => Self::Deny { message: None },
        }
    }
}

/// What the host can answer, so the engine answers the rest itself (the same way on every
/// host). Both default to `true`; a host without a guard callback or without
/// application handlers says so with [`crate::Engine::set_host_capabilities`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostCapabilities {
    /// The host has a guard callback for resources' `hostGuards`. Without one, every
    /// host guard call is denied (`FORBIDDEN`, [`NO_HOST_GUARD`]).
    pub guard: bool,
    /// The host runs application handlers (messages, hooks, interceptors). Without
    /// them, every such call fails ([`NO_HANDLERS`]; the client sees `INTERNAL_ERROR`).
    pub handlers: bool,
}

impl Default for HostCapabilities {
    fn default() -> Self {
        Self {
            guard: true,
            handlers: true,
        }
    }
}

/// The denial of a host guard call on a host without a guard callback.
pub const NO_HOST_GUARD: &str = "this server has no host guard for this action";
/// The failure of a handler call on a host without application handlers.
pub const NO_HANDLERS: &str = "this server runs no application handlers";

impl HostCapabilities {
    /// The engine's own answer to `request` when the host cannot answer it.
    pub(crate) fn answer(&self, request: &HostRequest) -> Option<HostResult> {
        match request {
            HostRequest::Guard { .. } if !self.guard => {
                Some(HostResult::Guard(GuardDecision::Deny {
                    message: Some(NO_HOST_GUARD.into()),
                }))
            }
            HostRequest::Message(_) | HostRequest::Hook(_) | HostRequest::Intercept(_)
                if !self.handlers =>
            {
                Some(HostResult::Handler(Box::new(
                    crate::app::HandlerResponse::failed(NO_HANDLERS),
                )))
            }
            _ => None,
        }
    }
}

/// Result of a storage call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum StoreOutcome {
    /// `get`: the record, or `None` when there is none.
    Record(Option<Value>),
    /// `list`: a page and the cursor of the next one (`None` on the last page).
    Page {
        /// Records in order.
        items: Vec<Value>,
        /// Opaque cursor for the next page.
        cursor: Option<String>,
    },
    /// `insert`: the stored record.
    Inserted(Value),
    /// `update`: the record after and before the change.
    Updated {
        /// After.
        record: Value,
        /// Before.
        previous: Value,
    },
    /// `delete`: the record that was removed.
    Deleted {
        /// The removed record.
        previous: Value,
    },
    /// The operation failed.
    Failed(StoreError),
}

/// A storage failure, classified so the engine can answer with the right code.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoreError {
    /// What kind of failure.
    pub kind: StoreErrorKind,
    /// Detail for logs; never sent to clients for `Internal`/`Unavailable`.
    pub message: String,
}

/// Storage failure kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum StoreErrorKind {
    /// No record with that id → `NOT_FOUND`.
    NotFound,
    /// A record with that id exists already → `VALIDATION_ERROR`.
    Conflict,
    /// The store cannot serve now → `UNAVAILABLE`.
    Unavailable,
    /// Anything else → `INTERNAL_ERROR`.
    Internal,
}

impl StoreErrorKind {
    /// The error code and message a client gets for a storage operation that failed
    /// this way (PROTOCOL.md §13.6); the store's own message is never shown. Hosts that
    /// answer storage errors themselves (the admin HTTP API) use the same mapping.
    pub fn client_error(self) -> (ErrorCode, &'static str) {
        match self {
            StoreErrorKind::NotFound => (ErrorCode::NotFound, "Record not found"),
            StoreErrorKind::Conflict => (
                ErrorCode::ValidationError,
                "id: a record with this id already exists",
            ),
            StoreErrorKind::Unavailable => (
                ErrorCode::Unavailable,
                "storage is unavailable; retry later",
            ),
            StoreErrorKind::Internal => (ErrorCode::InternalError, "the storage operation failed"),
        }
    }

    /// [`StoreErrorKind::client_error`] for a `list`, where not found means the cursor
    /// is not recognised: `INVALID_MESSAGE`, start again without it.
    pub fn list_client_error(self) -> (ErrorCode, &'static str) {
        match self {
            StoreErrorKind::NotFound => (
                ErrorCode::InvalidMessage,
                "`cursor` is not valid; start the listing again without it",
            ),
            other => other.client_error(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guard_context_serializes_every_part_with_nulls_in_order() {
        let c = GuardContext {
            data: Some(serde_json::json!({"a": 1})),
            id: Some("r1".into()),
            ..GuardContext::default()
        };
        assert_eq!(
            serde_json::to_string(&c).unwrap(),
            r#"{"user":null,"filter":null,"data":{"a":1},"record":null,"id":"r1"}"#
        );
    }
}
