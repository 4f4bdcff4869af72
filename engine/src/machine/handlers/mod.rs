//! Application handlers inside the engine: application messages, the `connect` and
//! `disconnect` hooks, interceptors of built-in messages, and the commands their
//! answers carry. The contract types live in [`crate::app`].
//!
//! Every handler runs as a host call with the same discipline as storage and guard
//! calls: bounded per connection and in total, a deadline (`TIMEOUT` with the
//! `requestId`), late answers dropped and counted.
//!
//! Here: the compiled handler config, the context and guards handlers see, and the
//! bounded call; by noun: [`messages`] (application messages, interceptors),
//! [`hooks`] (`connect`, `disconnect`), [`completion`] (answers, timeouts, commands).

mod completion;
mod hooks;
mod messages;

use std::sync::Arc;

use serde_json::{json, Map, Value};

use super::resources::Continuation;
use super::Engine;
use crate::app::{
    valid_app_code, AppGuard, ClientContext, HandlerError, HandlerResponse, HookCall, HookKind,
    InterceptCall, MessageCall, CLOSE_CONNECT_FAILED, CLOSE_CONNECT_REFUSED,
};
use crate::connection::Connection;
use crate::error::ErrorCode;
use crate::hostcall::{HostRequest, HostResult};
use crate::machine::PendingCall;
use crate::protocol::codec::decode_value;
use crate::protocol::{ClientMessage, Request, ServerMessage};
use crate::timers::TimerKey;
use crate::types::{Millis, OpId, User};

type Rid = Option<Value>;

/// What to do when a handler call completes.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum HandlerThen {
    /// An application message: reply to the caller.
    Message {
        /// The declared type.
        message_type: String,
    },
    /// The `connect` hook: welcome or refuse.
    Connect,
    /// The `disconnect` hook: run its commands (in the gone connection's tenant),
    /// nothing else.
    Disconnect {
        /// The tenant of the connection that ended.
        tenant: Option<String>,
    },
    /// An interceptor: execute the (possibly modified) message, or cancel it.
    Intercept(Box<Request>),
}

/// Which room action a [`RoomRule`](crate::app::RoomRule) governs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RoomAction {
    Join,
    Members,
    Message,
}

impl RoomAction {
    fn verb(self) -> &'static str {
        match self {
            RoomAction::Join => "join",
            RoomAction::Members => "list the members of",
            RoomAction::Message => "send to",
        }
    }
}

/// Parse the user a `connect` hook returns.
fn user_from_json(v: &Value) -> Result<User, String> {
    let Value::Object(m) = v else {
        return Err("`user` must be an object with a string `id` (or null)".into());
    };
    let mut claims = m.clone();
    let id = match claims.shift_remove("id") {
        Some(Value::String(s)) if !s.is_empty() => s,
        _ => return Err("`user.id` must be a non-empty string".into()),
    };
    let role = match claims.shift_remove("role") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s),
        Some(_) => return Err("`user.role` must be a string".into()),
    };
    let strings = |v: Option<Value>, what: &str| -> Result<Vec<String>, String> {
        match v {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(a)) => a
                .into_iter()
                .map(|x| match x {
                    Value::String(s) => Ok(s),
                    _ => Err(format!("`user.{what}` must be an array of strings")),
                })
                .collect(),
            Some(_) => Err(format!("`user.{what}` must be an array of strings")),
        }
    };
    let scopes = strings(claims.shift_remove("scopes"), "scopes")?;
    let roles = strings(claims.shift_remove("roles"), "roles")?;
    Ok(User {
        id,
        role,
        roles,
        scopes,
        claims,
    })
}

fn clip_message(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

impl Engine {
    /// The context a handler sees for the connection in `slot`.
    pub(super) fn client_context(&self, slot: usize) -> ClientContext {
        let c = &self.conns[slot];
        ClientContext {
            client_id: c.state.client_id.clone(),
            user: self.user_subject(slot).unwrap_or(Value::Null),
            route: self
                .config
                .routes
                .get(c.state.route)
                .map(|r| r.path.clone())
                .unwrap_or_default(),
            params: c.state.params.clone(),
            tenant: c.state.tenant.clone(),
            meta: c.state.meta.as_deref().cloned().unwrap_or(Value::Null),
        }
    }

    /// Guard variables shared by message guards and room rules.
    fn guard_vars(&self, slot: usize) -> [(&'static str, Value); 5] {
        let ctx = self.client_context(slot);
        let params = Value::Object(
            ctx.params
                .into_iter()
                .map(|(k, v)| (k, Value::String(v)))
                .collect::<Map<_, _>>(),
        );
        [
            ("user", ctx.user),
            ("params", params),
            ("route", Value::String(ctx.route)),
            ("clientId", Value::String(ctx.client_id)),
            ("meta", ctx.meta),
        ]
    }

    /// Evaluate an application guard with the connection's variables plus `extra`.
    fn app_guard_allows(&mut self, slot: usize, guard: &AppGuard, extra: (&str, &Value)) -> bool {
        let vars = self.guard_vars(slot);
        let mut refs: Vec<(&str, &Value)> = vars.iter().map(|(n, v)| (*n, v)).collect();
        refs.push(extra);
        match guard.allows(&refs) {
            Ok(true) => true,
            Ok(false) => false,
            Err(_) => {
                self.metrics.guard_errors += 1;
                false
            }
        }
    }

    /// Whether the connection in `slot` may do `action` on `room` (`rooms.join`, ...).
    pub(super) fn room_permitted(
        &mut self,
        slot: usize,
        action: RoomAction,
        room: &str,
    ) -> Result<(), (ErrorCode, String)> {
        let rule = match action {
            RoomAction::Join => &self.config.rooms.join,
            RoomAction::Members => &self.config.rooms.members,
            RoomAction::Message => &self.config.rooms.message,
        };
        if rule.is_open() {
            return Ok(());
        }
        let roles = rule.roles.clone();
        self.role_allowed(slot, &roles, &format!("{} rooms", action.verb()))?;
        let app = Arc::clone(&self.app);
        let guard = match action {
            RoomAction::Join => app.join.as_ref(),
            RoomAction::Members => app.members.as_ref(),
            RoomAction::Message => app.message.as_ref(),
        };
        if let Some(g) = guard {
            let room_v = Value::String(room.to_string());
            if !self.app_guard_allows(slot, g, ("room", &room_v)) {
                self.metrics.guard_denials += 1;
                return Err((
                    ErrorCode::Forbidden,
                    format!(
                        "you may not {} room `{}`",
                        action.verb(),
                        crate::machine::resources::clip(room)
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Register a handler call, enforcing the pending-call bounds. `slot` is the
    /// connection it is for (None: a notification about a connection that is gone).
    #[allow(clippy::too_many_arguments)]
    fn handler_call(
        &mut self,
        now: Millis,
        slot: Option<usize>,
        client_id: String,
        request: HostRequest,
        then: HandlerThen,
        rid: Rid,
        timeout_ms: u64,
    ) -> Result<(), (ErrorCode, String)> {
        let limits = &self.config.limits;
        if let Some(s) = slot {
            if self.conns[s].pending >= limits.max_pending_calls_per_connection {
                return Err((
                    ErrorCode::LimitExceeded,
                    format!(
                        "at most {} requests in flight per connection; wait for answers",
                        limits.max_pending_calls_per_connection
                    ),
                ));
            }
        }
        if self.pending.len() >= limits.max_pending_calls {
            return Err((
                ErrorCode::Unavailable,
                "the server is busy; retry shortly".into(),
            ));
        }
        let op = self.ops.next();
        let deadline = now.plus(timeout_ms);
        let conn = slot.map(|s| self.conns[s].id);
        if let Some(s) = slot {
            self.conns[s].pending += 1;
        }
        self.pending.insert(
            op,
            PendingCall {
                conn,
                client_id,
                request_id: rid,
                deadline,
                then: Continuation::Handler(then),
                command: None,
            },
        );
        self.metrics.pending_calls = self.pending.len() as u64;
        self.metrics.handler_calls += 1;
        self.timers
            .reschedule(TimerKey::Op(op), None, Some(deadline));
        self.emit_call(op, conn, deadline, request);
        Ok(())
    }

    fn hook_timeout(&self) -> u64 {
        self.config
            .hooks
            .timeout_ms
            .unwrap_or(self.config.limits.host_call_timeout_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hook_users_are_parsed_with_their_claims() {
        let u = user_from_json(&json!({"id": "u9", "role": "vip", "scopes": ["a"], "team": "x"}))
            .unwrap();
        assert_eq!(u.id, "u9");
        assert_eq!(u.role.as_deref(), Some("vip"));
        assert_eq!(u.claims["team"], "x");
        assert!(user_from_json(&json!({"role": "x"})).is_err());
        assert!(user_from_json(&json!("u1")).is_err());
    }
}
