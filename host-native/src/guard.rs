//! Host guards: the embedding application's async callback for resources with
//! `hostGuards`.
//!
//! When a client request reaches a host-guarded action, the engine asks the host with a
//! `HostRequest::Guard` call. The actor turns it into a [`GuardRequest`], runs the
//! registered [`GuardCallback`] on its own tokio task (never on the actor), and feeds
//! the [`GuardDecision`] back as the call's completion. The engine's deadline
//! (`limits.hostCallTimeoutMs`) still applies: a callback that has not answered by then
//! makes the engine answer the client `TIMEOUT`; its decision, if it ever comes, is
//! dropped (counted as a late completion), and the task is aborted a grace period after
//! the deadline. A callback that panics counts as a denial.
//!
//! ```no_run
//! use switchboard::{GuardAction, GuardDecision, GuardRequest, ServerBuilder};
//! # async fn run(deployment: switchboard::Deployment) -> anyhow::Result<()> {
//! let server = ServerBuilder::new(deployment)
//!     .guard(|req: GuardRequest| async move {
//!         match req.action {
//!             // Everyone lists only their own records.
//!             GuardAction::List | GuardAction::Subscribe => match req.user_id() {
//!                 Some(id) => GuardDecision::Filter { filter: serde_json::json!({ "owner": id }) },
//!                 None => GuardDecision::Deny { message: Some("sign in first".into()) },
//!             },
//!             _ => GuardDecision::Allow,
//!         }
//!     })
//!     .start()
//!     .await?;
//! # server.shutdown().await; Ok(()) }
//! ```
//!
//! Without a callback, every host guard call is denied (`FORBIDDEN`), and the server
//! logs a warning at startup if the config has `hostGuards`.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

pub use engine::guard::GuardAction;
pub use engine::hostcall::{GuardContext, GuardDecision};
use serde_json::Value;

/// What a guard callback is asked: the resource, the action, and what the engine's
/// guard context holds for it (absent parts are `None`).
#[derive(Debug, Clone, PartialEq)]
pub struct GuardRequest {
    /// Resource name.
    pub resource: String,
    /// The guarded action.
    pub action: GuardAction,
    /// The connection's user as filters see it (`{id, role, scopes, ...claims}`);
    /// `None` for anonymous connections.
    pub user: Option<Value>,
    /// The client's filter (`subscribe`, `list`).
    pub filter: Option<Value>,
    /// The record to create (`create`, id and timestamps already set) or the patch
    /// (`update`).
    pub data: Option<Value>,
    /// The stored record (`update`, `delete`).
    pub record: Option<Value>,
    /// The record id (`get`, `update`, `delete`, and `create`).
    pub id: Option<String>,
}

impl GuardRequest {
    /// Build the request from a guard call's fields.
    pub fn from_call(resource: String, action: GuardAction, context: GuardContext) -> Self {
        let GuardContext {
            user,
            filter,
            data,
            record,
            id,
        } = context;
        GuardRequest {
            resource,
            action,
            user,
            filter,
            data,
            record,
            id,
        }
    }

    /// The user's `id`, if the connection is authenticated.
    pub fn user_id(&self) -> Option<&str> {
        self.user.as_ref()?.get("id")?.as_str()
    }
}

/// The future a guard callback returns.
pub type GuardFuture = Pin<Box<dyn Future<Output = GuardDecision> + Send + 'static>>;

/// A registered guard callback (cheap to clone).
#[derive(Clone)]
pub struct GuardCallback(Arc<dyn Fn(GuardRequest) -> GuardFuture + Send + Sync>);

impl GuardCallback {
    /// Wrap an async function.
    pub fn new<F, Fut>(f: F) -> Self
    where
        F: Fn(GuardRequest) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = GuardDecision> + Send + 'static,
    {
        GuardCallback(Arc::new(move |req| Box::pin(f(req))))
    }

    /// Start deciding `req`.
    pub fn call(&self, req: GuardRequest) -> GuardFuture {
        (self.0)(req)
    }
}

impl fmt::Debug for GuardCallback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("GuardCallback(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn request_from_the_engines_context() {
        let ctx = json!({"user": {"id": "u1", "role": "user"}, "filter": null,
                         "data": {"a": 1}, "record": null, "id": "r1"});
        let ctx: GuardContext = serde_json::from_value(ctx).unwrap();
        let r = GuardRequest::from_call("notes".into(), GuardAction::Create, ctx);
        assert_eq!(r.user_id(), Some("u1"));
        assert_eq!((r.filter, r.record), (None, None));
        assert_eq!(r.data, Some(json!({"a": 1})));
        assert_eq!(r.id.as_deref(), Some("r1"));
        let r = GuardRequest::from_call("notes".into(), GuardAction::List, GuardContext::default());
        assert_eq!(r.user_id(), None);
        assert_eq!(r.user, None);
    }
}
