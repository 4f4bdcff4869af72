//! Application handlers inside the engine: application messages, the `connect` and
//! `disconnect` hooks, interceptors of built-in messages, and the commands their
//! answers carry. The contract types live in [`crate::app`].
//!
//! Every handler runs as a host call with the same discipline as storage and guard
//! calls: bounded per connection and in total, a deadline (`TIMEOUT` with the
//! `requestId`), late answers dropped and counted.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{json, Map, Value};

use super::resources::Continuation;
use super::{Action, Engine};
use crate::app::{
    valid_app_code, AppGuard, ClientContext, HandlerError, HandlerResponse, HookCall, HookKind,
    InterceptCall, MessageCall, RoomRule, CLOSE_CONNECT_FAILED, CLOSE_CONNECT_REFUSED,
};
use crate::config::Config;
use crate::connection::Connection;
use crate::error::{ConfigError, ConfigIssue, ErrorCode};
use crate::hostcall::{HostRequest, HostResult, PendingCall};
use crate::protocol::codec::decode_value;
use crate::protocol::{ClientMessage, Request, ServerMessage};
use crate::timers::TimerKey;
use crate::types::{Millis, OpId, User};
use crate::validation::RecordSchema;

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

/// Which room action a [`RoomRule`] governs.
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

/// Guards and schemas of the application parts of a config, compiled once.
#[derive(Debug, Default)]
pub(crate) struct Compiled {
    guards: BTreeMap<String, AppGuard>,
    schemas: BTreeMap<String, RecordSchema>,
    join: Option<AppGuard>,
    members: Option<AppGuard>,
    message: Option<AppGuard>,
}

pub(crate) fn compile(config: &Config) -> Result<Arc<Compiled>, ConfigError> {
    let mut c = Compiled::default();
    let mut issues = Vec::new();
    let mut guard = |path: String, src: &str| match AppGuard::compile(src) {
        Ok(g) => Some(g),
        Err(problem) => {
            issues.push(ConfigIssue { path, problem });
            None
        }
    };
    for (name, m) in &config.messages {
        if let Some(g) = m.guard.as_deref() {
            if let Some(g) = guard(format!("messages.{name}.guard"), g) {
                c.guards.insert(name.clone(), g);
            }
        }
    }
    let rule = |r: &RoomRule| r.guard.clone();
    c.join = rule(&config.rooms.join).and_then(|g| guard("rooms.join.guard".into(), &g));
    c.members = rule(&config.rooms.members).and_then(|g| guard("rooms.members.guard".into(), &g));
    c.message = rule(&config.rooms.message).and_then(|g| guard("rooms.message.guard".into(), &g));
    for (name, m) in &config.messages {
        if let Some(s) = &m.schema {
            match RecordSchema::compile(s) {
                Ok(s) => {
                    c.schemas.insert(name.clone(), s);
                }
                Err(problem) => issues.push(ConfigIssue {
                    path: format!("messages.{name}.schema"),
                    problem,
                }),
            }
        }
    }
    if issues.is_empty() {
        Ok(Arc::new(c))
    } else {
        Err(ConfigError { issues })
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
            meta: c.state.meta.clone().unwrap_or(Value::Null),
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
                        super::resources::clip(room)
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
        self.actions.push_back(Action::Call {
            op,
            conn,
            deadline,
            request,
        });
        Ok(())
    }

    fn hook_timeout(&self) -> u64 {
        self.config
            .hooks
            .timeout_ms
            .unwrap_or(self.config.limits.host_call_timeout_ms)
    }

    // ----- application messages ------------------------------------------------------

    /// A frame whose type is not built in: dispatch it if the deployment declares it.
    /// Returns false when the type is not declared (the caller answers
    /// `UNKNOWN_MESSAGE_TYPE`).
    pub(super) fn app_message(
        &mut self,
        now: Millis,
        slot: usize,
        message_type: String,
        data: Value,
        rid: Rid,
    ) -> bool {
        let Some(mc) = self.config.messages.get(&message_type).cloned() else {
            return false;
        };
        *self
            .metrics
            .app_messages
            .entry(message_type.clone())
            .or_default() += 1;
        let what = format!("send `{}`", super::resources::clip(&message_type));
        if let Err((code, m)) = self.role_allowed(slot, &mc.roles, &what) {
            self.send_error(slot, code, m, rid);
            return true;
        }
        let user = self.conns[slot].state.user.as_ref();
        if let Some(missing) = mc
            .scopes
            .iter()
            .find(|s| !user.is_some_and(|u| u.has_scope(s)))
        {
            let code = if user.is_none() {
                ErrorCode::Unauthorized
            } else {
                ErrorCode::Forbidden
            };
            let m = format!("`{message_type}` requires scope `{missing}`");
            self.send_error(slot, code, m, rid);
            return true;
        }
        let app = Arc::clone(&self.app);
        if let Some(schema) = app.schemas.get(&message_type) {
            if let Err(e) = schema.check_insert(&data) {
                self.send_error(slot, ErrorCode::ValidationError, e, rid);
                return true;
            }
        }
        if let Some(g) = app.guards.get(&message_type) {
            if !self.app_guard_allows(slot, g, ("data", &data)) {
                self.metrics.guard_denials += 1;
                self.send_error(slot, ErrorCode::Forbidden, "Access denied", rid);
                return true;
            }
        }
        if mc.cost > 1 && self.config.rate_limit.enabled {
            let cfg = &self.config.rate_limit;
            let ok = match &mut self.conns[slot].state.rate {
                Some(bucket) => bucket.try_take_n(cfg, now, mc.cost - 1),
                None => true,
            };
            if !ok {
                let m = format!(
                    "`{message_type}` costs {} requests; at most {} per {} ms",
                    mc.cost, cfg.max_requests, cfg.window_ms
                );
                self.send_error(slot, ErrorCode::RateLimitExceeded, m, rid);
                return true;
            }
        }
        let call = MessageCall {
            message_type: message_type.clone(),
            data,
            request_id: rid.clone().unwrap_or(Value::Null),
            client: self.client_context(slot),
        };
        let client_id = self.conns[slot].state.client_id.clone();
        let timeout = mc
            .timeout_ms
            .unwrap_or(self.config.limits.host_call_timeout_ms);
        if let Err((code, m)) = self.handler_call(
            now,
            Some(slot),
            client_id,
            HostRequest::Message(Box::new(call)),
            HandlerThen::Message { message_type },
            rid.clone(),
            timeout,
        ) {
            self.send_error(slot, code, m, rid);
        }
        true
    }

    // ----- hooks ---------------------------------------------------------------------

    pub(super) fn connect_hook_on(&self) -> bool {
        self.config
            .hooks
            .connect
            .as_ref()
            .is_some_and(|h| h.is_on())
    }

    /// Ask the `connect` hook about a new connection; the welcome waits for it.
    pub(super) fn run_connect_hook(&mut self, now: Millis, slot: usize) {
        self.conns[slot].awaiting_connect = true;
        let call = HookCall {
            hook: HookKind::Connect,
            client: self.client_context(slot),
            code: None,
            reason: None,
            peer: Some(self.conns[slot].state.peer.clone()),
        };
        let client_id = self.conns[slot].state.client_id.clone();
        let timeout = self.hook_timeout();
        if let Err((code, m)) = self.handler_call(
            now,
            Some(slot),
            client_id,
            HostRequest::Hook(Box::new(call)),
            HandlerThen::Connect,
            None,
            timeout,
        ) {
            self.send_error(slot, code, m, None);
            self.close(slot, CLOSE_CONNECT_FAILED, "server busy; retry later");
        }
    }

    /// A frame arrived before the `connect` hook answered.
    pub(super) fn not_admitted(&mut self, slot: usize, rid: Rid) {
        self.send_error(
            slot,
            ErrorCode::Unavailable,
            "the connection is not admitted yet; wait for the `connected` welcome",
            rid,
        );
    }

    /// Tell the `disconnect` hook that a welcomed connection ended.
    pub(super) fn run_disconnect_hook(&mut self, now: Millis, c: &Connection, code: Option<u16>) {
        let on = self
            .config
            .hooks
            .disconnect
            .as_ref()
            .is_some_and(|h| h.is_on());
        if !on || c.awaiting_connect {
            return;
        }
        let (code, reason) = match &c.closed_with {
            Some((code, reason)) => (Some(*code), Some(reason.clone())),
            None => (code, None),
        };
        let client = ClientContext {
            client_id: c.state.client_id.clone(),
            user: c
                .state
                .user
                .as_ref()
                .map_or(Value::Null, User::as_filter_subject),
            route: self
                .config
                .routes
                .get(c.state.route)
                .map(|r| r.path.clone())
                .unwrap_or_default(),
            params: c.state.params.clone(),
            tenant: c.state.tenant.clone(),
            meta: c.state.meta.clone().unwrap_or(Value::Null),
        };
        let call = HookCall {
            hook: HookKind::Disconnect,
            client,
            code,
            reason,
            peer: None,
        };
        let timeout = self.hook_timeout();
        if self
            .handler_call(
                now,
                None,
                c.state.client_id.clone(),
                HostRequest::Hook(Box::new(call)),
                HandlerThen::Disconnect {
                    tenant: c.state.tenant.clone(),
                },
                None,
                timeout,
            )
            .is_err()
        {
            self.metrics.dropped_hook_calls += 1;
        }
    }

    // ----- interceptors --------------------------------------------------------------

    /// Send `req` to its interceptor if one is configured (returns None: the call is
    /// made, or refused with an error); otherwise hand it back.
    pub(super) fn maybe_intercept(
        &mut self,
        now: Millis,
        slot: usize,
        req: Request,
    ) -> Option<Request> {
        if self.config.interceptors.is_empty() {
            return Some(req);
        }
        let type_name = req.message.type_name();
        if !self
            .config
            .interceptors
            .get(type_name)
            .is_some_and(|t| t.is_on())
        {
            return Some(req);
        }
        let message = message_json(&req.message)?;
        let rid = req.request_id.clone();
        let call = InterceptCall {
            message_type: type_name.to_string(),
            message,
            request_id: rid.clone().unwrap_or(Value::Null),
            client: self.client_context(slot),
        };
        let client_id = self.conns[slot].state.client_id.clone();
        let timeout = self.hook_timeout();
        if let Err((code, m)) = self.handler_call(
            now,
            Some(slot),
            client_id,
            HostRequest::Intercept(Box::new(call)),
            HandlerThen::Intercept(Box::new(req)),
            rid.clone(),
            timeout,
        ) {
            self.send_error(slot, code, m, rid);
        }
        None
    }

    // ----- completions ---------------------------------------------------------------

    /// Whether `op` is a handler call in flight.
    pub(super) fn is_handler_call(&self, op: OpId) -> bool {
        self.pending
            .get(&op)
            .is_some_and(|c| matches!(c.then, Continuation::Handler(_)))
    }

    /// A handler call completed.
    pub(super) fn handler_completed(&mut self, now: Millis, op: OpId, result: HostResult) {
        let Some(call) = self.pending.remove(&op) else {
            self.metrics.late_completions += 1;
            return;
        };
        self.metrics.pending_calls = self.pending.len() as u64;
        self.timers
            .reschedule(TimerKey::Op(op), Some(call.deadline), None);
        let slot = self.call_slot(&call);
        if let Some(s) = slot {
            self.conns[s].pending = self.conns[s].pending.saturating_sub(1);
        }
        let live = slot.filter(|s| !self.conns[*s].closing);
        let Continuation::Handler(then) = call.then else {
            return;
        };
        let resp = match result {
            HostResult::Handler(r) => *r,
            _ => HandlerResponse::failed("the host answered a handler call with another kind"),
        };
        if resp.failed.is_some() {
            self.metrics.handler_failures += 1;
        } else if !matches!(then, HandlerThen::Connect) {
            // (The connect hook's commands run after the welcome.)
            let tenant = match &then {
                HandlerThen::Disconnect { tenant } => tenant.clone(),
                _ => slot.and_then(|s| self.conns[s].state.tenant.clone()),
            };
            self.run_handler_commands(now, &call.client_id, tenant, &resp.commands);
        }
        let rid = call.request_id;
        match then {
            HandlerThen::Message { message_type } => {
                let Some(s) = live else { return };
                if resp.failed.is_some() {
                    let m = format!(
                        "the `{}` handler failed",
                        super::resources::clip(&message_type)
                    );
                    self.send_error(s, ErrorCode::InternalError, m, rid);
                } else if let Some(e) = resp.error {
                    self.send_app_error(s, &e, rid);
                } else if let Some(data) = resp.reply {
                    self.send(
                        s,
                        &ServerMessage::Reply {
                            request_id: rid,
                            data,
                        },
                    );
                }
            }
            HandlerThen::Connect => {
                let Some(s) = live else { return };
                self.connect_answered(now, s, resp);
            }
            HandlerThen::Disconnect { .. } => {}
            HandlerThen::Intercept(req) => {
                let Some(s) = live else { return };
                let type_name = req.message.type_name();
                if resp.failed.is_some() {
                    let m = format!("the `{type_name}` interceptor failed");
                    return self.send_error(s, ErrorCode::InternalError, m, rid);
                }
                if let Some(e) = resp.error {
                    self.metrics.intercept_cancels += 1;
                    return self.send_app_error(s, &e, rid);
                }
                let req = match resp.modified {
                    None => *req,
                    Some(v) => match modified_request(type_name, v) {
                        Some(message) => {
                            self.metrics.intercept_modifications += 1;
                            Request {
                                request_id: rid.clone(),
                                message,
                            }
                        }
                        None => {
                            self.metrics.handler_failures += 1;
                            let m = format!(
                                "the `{type_name}` interceptor returned an invalid message"
                            );
                            return self.send_error(s, ErrorCode::InternalError, m, rid);
                        }
                    },
                };
                self.dispatch_checked(now, s, req);
            }
        }
    }

    /// The `connect` hook answered for the connection in `slot`.
    fn connect_answered(&mut self, now: Millis, slot: usize, resp: HandlerResponse) {
        // A refused connection stays "not admitted": it never gets a disconnect hook.
        if resp.failed.is_some() {
            return self.connect_failed(slot, "the connect hook failed");
        }
        if let Some(e) = resp.error {
            let close_code = e
                .close_code
                .filter(|c| (4000..=4999).contains(c))
                .unwrap_or(CLOSE_CONNECT_REFUSED);
            let reason = clip_message(&e.message, 123);
            self.send_app_error(slot, &e, None);
            return self.close(slot, close_code, &reason);
        }
        if let Some(u) = &resp.user {
            let user = match u {
                Value::Null => None,
                v => match user_from_json(v) {
                    Ok(u) => Some(u),
                    Err(_) => {
                        self.metrics.handler_failures += 1;
                        return self.connect_failed(slot, "the connect hook returned a bad user");
                    }
                },
            };
            self.replace_user(slot, user);
        }
        if let Some(meta) = resp.meta {
            self.conns[slot].state.meta = (!meta.is_null()).then_some(meta);
        }
        self.conns[slot].awaiting_connect = false;
        self.welcome(now, slot);
        // The expiry schedule starts with the welcome: a notice already due is sent
        // right after it, a token that expired while the hook ran closes now (4401).
        let exp = self.conns[slot].connect_exp.take();
        self.arm_expiry(now, slot, exp);
        if self.conns[slot].closing {
            return;
        }
        // After the welcome, so server-side joins reach a client that knows its id.
        let client_id = self.conns[slot].state.client_id.clone();
        let tenant = self.conns[slot].state.tenant.clone();
        self.run_handler_commands(now, &client_id, tenant, &resp.commands);
    }

    fn connect_failed(&mut self, slot: usize, reason: &str) {
        self.send_error(
            slot,
            ErrorCode::Unavailable,
            "the server could not admit the connection; retry later",
            None,
        );
        self.close(slot, CLOSE_CONNECT_FAILED, reason);
    }

    /// Swap a connection's user (keeping the per-user counts and shared views right).
    pub(super) fn replace_user(&mut self, slot: usize, user: Option<User>) {
        if let Some(view) = self.conns[slot].user_view.take() {
            self.release_user(&view);
        }
        if let Some(old) = self.conns[slot].state.user.take() {
            if let Some(n) = self.per_user.get_mut(&old.id) {
                *n -= 1;
                if *n == 0 {
                    self.per_user.remove(&old.id);
                }
            }
        }
        if let Some(u) = &user {
            *self.per_user.entry(u.id.clone()).or_default() += 1;
            let view = self.intern_user(u);
            self.conns[slot].user_view = Some(view);
        }
        if self.cluster.is_some() {
            let c = &self.conns[slot].state;
            let (client_id, tenant) = (c.client_id.clone(), c.tenant.clone());
            let user_id = user.as_ref().map(|u| u.id.clone());
            self.cluster_client(&client_id, tenant.as_deref(), user_id.as_deref(), true);
        }
        self.conns[slot].state.user = user;
    }

    /// A handler call missed its deadline; true when handled here (the `connect` hook:
    /// the connection is closed), false for the common `TIMEOUT` answer.
    pub(super) fn handler_timed_out(&mut self, call: &PendingCall) -> bool {
        if !matches!(call.then, Continuation::Handler(HandlerThen::Connect)) {
            return false;
        }
        if let Some(s) = self.call_slot(call) {
            self.conns[s].pending = self.conns[s].pending.saturating_sub(1);
            if !self.conns[s].closing {
                self.connect_failed(s, "the connect hook timed out");
            }
        }
        true
    }

    /// Send an application-chosen error.
    pub(super) fn send_app_error(&mut self, slot: usize, e: &HandlerError, rid: Rid) {
        let message = clip_message(&e.message, 500);
        if let Some(code) = ErrorCode::ALL.iter().find(|c| c.as_str() == e.code) {
            return self.send_error(slot, *code, message, rid);
        }
        if !valid_app_code(&e.code) {
            self.metrics.handler_failures += 1;
            return self.send_error(
                slot,
                ErrorCode::InternalError,
                "the handler answered with an invalid error code",
                rid,
            );
        }
        self.metrics.errors += 1;
        self.send(
            slot,
            &ServerMessage::AppError {
                code: e.code.clone(),
                message,
                request_id: rid,
            },
        );
    }

    /// Run the server-API commands of a handler's answer, in order. A command without
    /// `clientId` is about the caller; `send` is `sendTo` the caller; a command about
    /// rooms, channels or broadcasts without `tenant` is in the caller's tenant. Failures are
    /// counted (`handlerCommandErrors`), never sent to the caller.
    pub(super) fn run_handler_commands(
        &mut self,
        now: Millis,
        caller: &str,
        tenant: Option<String>,
        commands: &[Value],
    ) {
        for raw in commands {
            let Some(mut m) = raw.as_object().cloned() else {
                self.metrics.handler_command_errors += 1;
                continue;
            };
            if m.get("command") == Some(&json!("send")) {
                m.insert("command".into(), json!("sendTo"));
            }
            let takes_client = matches!(
                m.get("command").and_then(Value::as_str),
                Some("sendTo" | "disconnect" | "joinRoom" | "leaveRoom" | "clientInfo")
            );
            if takes_client && !m.contains_key("clientId") {
                m.insert("clientId".into(), Value::String(caller.to_string()));
            }
            // Rooms, channels and broadcasts default to the caller's tenant.
            let takes_tenant = matches!(
                m.get("command").and_then(Value::as_str),
                Some(
                    "broadcast"
                        | "broadcastToResource"
                        | "publish"
                        | "history"
                        | "presence"
                        | "presenceStats"
                        | "sendToUser"
                        | "createRoom"
                        | "deleteRoom"
                        | "sendToRoom"
                        | "roomInfo"
                )
            );
            if takes_tenant && !m.contains_key("tenant") {
                if let Some(t) = &tenant {
                    m.insert("tenant".into(), Value::String(t.clone()));
                }
            }
            let ok = match serde_json::from_value::<super::Command>(Value::Object(m)) {
                Ok(
                    super::Command::Insert { .. }
                    | super::Command::Update { .. }
                    | super::Command::Delete { .. }
                    | super::Command::Shutdown { .. }
                    | super::Command::SetJwks { .. },
                ) => false,
                Ok(cmd) => self.cluster_command(now, cmd).is_ok(),
                Err(_) => false,
            };
            if !ok {
                self.metrics.handler_command_errors += 1;
            }
        }
    }
}

/// A built-in message as JSON (what an interceptor sees). None for types that cannot
/// be intercepted.
fn message_json(m: &ClientMessage) -> Option<Value> {
    let mut o = Map::new();
    o.insert("type".into(), Value::String(m.type_name().into()));
    let mut put = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            o.insert(k.into(), v);
        }
    };
    let s = |v: &String| Some(Value::String(v.clone()));
    match m {
        ClientMessage::Publish { channel, message } => {
            put("channel", s(channel));
            put("message", message.clone());
        }
        ClientMessage::RoomMessage {
            room,
            data,
            event,
            ack,
        } => {
            put("room", s(room));
            put("data", data.clone());
            put("event", event.as_ref().and_then(s));
            put("ack", Some(Value::Bool(*ack)));
        }
        ClientMessage::Direct { to, data, ack } => {
            put("to", s(to));
            put("data", data.clone());
            put("ack", Some(Value::Bool(*ack)));
        }
        ClientMessage::Insert { resource, data } => {
            put("resource", s(resource));
            put("data", Some(Value::Object(data.clone())));
        }
        ClientMessage::Update { resource, id, data } => {
            put("resource", s(resource));
            put("id", s(id));
            put("data", Some(Value::Object(data.clone())));
        }
        ClientMessage::Delete { resource, id } => {
            put("resource", s(resource));
            put("id", s(id));
        }
        ClientMessage::Subscribe {
            resource,
            channel,
            filter,
            events,
            since,
        } => {
            put("resource", resource.as_ref().and_then(s));
            put(
                "since",
                since
                    .as_ref()
                    .map(|p| serde_json::to_value(p).unwrap_or(Value::Null)),
            );
            put("channel", channel.as_ref().and_then(s));
            put("filter", filter.clone());
            put(
                "events",
                events
                    .as_ref()
                    .map(|e| serde_json::to_value(e).unwrap_or(Value::Null)),
            );
        }
        ClientMessage::Join { room } => put("room", s(room)),
        _ => return None,
    }
    Some(Value::Object(o))
}

/// The message an interceptor's `modified` describes, if it is a valid message of the
/// same type.
fn modified_request(type_name: &str, v: Value) -> Option<ClientMessage> {
    let Value::Object(mut m) = v else {
        return None;
    };
    m.insert("type".into(), Value::String(type_name.to_string()));
    let req = decode_value(Value::Object(m)).ok()?;
    (req.message.type_name() == type_name).then_some(req.message)
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

    #[test]
    fn modified_messages_keep_their_type() {
        let m = modified_request("publish", json!({"channel": "c", "message": 1})).unwrap();
        assert_eq!(m.type_name(), "publish");
        assert!(modified_request("publish", json!({"type": "join", "room": "r"})).is_none());
        assert!(modified_request("publish", json!({"nochannel": 1})).is_none());
    }
}
