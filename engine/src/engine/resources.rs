//! Resources: access checks, validation, guards (CEL and host callbacks), CRUD as host
//! calls, their completions, and change events fanned out to subscribers.
//!
//! Every resource request runs the same pipeline ([`ResourceOp`]): access (configured,
//! roles) → validation → fetch the stored record if a guard needs it → CEL guard →
//! host guard → forced-filter checks → execute (register the subscription or call the
//! store). Completions resume the pipeline; `read` guards and protected-field stripping
//! apply to every record that leaves: replies and events alike.

use std::collections::BTreeMap;
use std::sync::Arc;

use rustc_hash::FxHashMap;
use serde_json::{Map, Value};

use super::server_api::{err as cmd_err, CommandError};
use super::{Action, Engine};
use crate::broker::Since;
use crate::config::{ChangeKind, ResourceConfig};
use crate::connection::{SubTarget, Subscription, UserView};
use crate::error::{ConfigError, ErrorCode};
use crate::filter::Filter;
use crate::guard::{
    and_filters, Guard, GuardAction, GuardEnv, GuardOutcome, GuardValue, GuardValues,
};
use crate::hostcall::{
    GuardContext, GuardDecision, HostRequest, HostResult, PendingCall, StoreErrorKind,
    StoreOutcome, StoreRequest,
};
use crate::protocol::codec::Outbound;
use crate::protocol::ServerMessage;
use crate::store::merge_patch;
use crate::timers::TimerKey;
use crate::timestamp::iso8601;
use crate::types::{ConnId, Millis, OpId};
use crate::validation::RecordSchema;

type Rid = Option<Value>;

/// A resource's compiled guards and schema.
#[derive(Debug, Default)]
pub(crate) struct CompiledResource {
    pub(super) guards: BTreeMap<GuardAction, Guard>,
    schema: Option<RecordSchema>,
    host_guards: Vec<GuardAction>,
}

/// Compile every resource's guards and schema (config validation already vetted them).
pub(crate) fn compile_resources(
    resources: &BTreeMap<String, ResourceConfig>,
) -> Result<BTreeMap<String, Arc<CompiledResource>>, ConfigError> {
    let mut out = BTreeMap::new();
    // One CEL environment for every guard, built only if there is a guard.
    let mut env: Option<GuardEnv> = None;
    for (name, rc) in resources {
        let mut guards = BTreeMap::new();
        for (action, src) in &rc.guards {
            let env = env.get_or_insert_with(GuardEnv::new);
            let g = Guard::compile_in(env, src).map_err(|e| {
                ConfigError::single(format!("resources.{name}.guards.{}", action.as_str()), e)
            })?;
            guards.insert(*action, g);
        }
        let schema = rc
            .schema
            .as_ref()
            .map(RecordSchema::compile)
            .transpose()
            .map_err(|e| ConfigError::single(format!("resources.{name}.schema"), e))?;
        out.insert(
            name.clone(),
            Arc::new(CompiledResource {
                guards,
                schema,
                host_guards: rc.host_guards.clone(),
            }),
        );
    }
    Ok(out)
}

/// One resource request on its way through the pipeline.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ResourceOp {
    pub action: GuardAction,
    pub resource: String,
    pub id: Option<String>,
    /// Create: the full record; update: the patch.
    pub data: Option<Value>,
    /// The client's filter (subscribe, list).
    pub filter: Option<Value>,
    /// Filters forced by guards, ANDed.
    pub forced: Option<Value>,
    /// Subscribe: the events to deliver.
    pub events: Vec<ChangeKind>,
    /// Subscribe: recover the changes after this position (resources with history).
    pub since: Option<Since>,
    /// List: page size and cursor.
    pub limit: usize,
    pub cursor: Option<String>,
    /// The stored record, once fetched (update, delete).
    pub record: Option<Value>,
    pub cel_done: bool,
    pub host_done: bool,
}

impl ResourceOp {
    pub(crate) fn new(action: GuardAction, resource: String) -> Self {
        Self {
            action,
            resource,
            id: None,
            data: None,
            filter: None,
            forced: None,
            events: Vec::new(),
            since: None,
            limit: 0,
            cursor: None,
            record: None,
            cel_done: false,
            host_done: false,
        }
    }
}

/// What to do when a host call completes.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Continuation {
    /// A storage operation: answer the client and fan out the change.
    Store {
        /// What was asked.
        request: StoreRequest,
        /// A forced filter the record must match (get).
        forced: Option<Value>,
    },
    /// The stored record was fetched for a guard; resume the pipeline.
    Prefetch(Box<ResourceOp>),
    /// The host guard answered; resume the pipeline.
    HostGuard(Box<ResourceOp>),
    /// An application handler, hook or interceptor answered (see `handlers.rs`).
    Handler(super::handlers::HandlerThen),
}

fn store_error(kind: StoreErrorKind) -> (ErrorCode, &'static str) {
    match kind {
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

impl Engine {
    /// The resource's config if this connection may use it.
    pub(super) fn resource_access(
        &self,
        slot: usize,
        resource: &str,
    ) -> Result<ResourceConfig, (ErrorCode, String)> {
        let Some(rc) = self.config.resources.get(resource) else {
            return Err((
                ErrorCode::ResourceNotFound,
                format!(
                    "Resource \"{}\" is not configured for WebSocket access",
                    clip(resource)
                ),
            ));
        };
        self.role_allowed(
            slot,
            &rc.auth,
            &format!("use resource `{}`", clip(resource)),
        )?;
        Ok(rc.clone())
    }

    /// Check a client's filter on resource `rc` (subscribe, list, unsubscribe): it must
    /// parse (`INVALID_MESSAGE`) and must not reach a protected field, its parents or
    /// its children (`FORBIDDEN`; PROTOCOL.md §8). Guards' forced filters are
    /// server-side and never go through here.
    pub(super) fn check_client_filter(
        rc: &ResourceConfig,
        resource: &str,
        filter: &Value,
    ) -> Result<(), (ErrorCode, String)> {
        let parsed = Filter::parse(filter).map_err(|e| (ErrorCode::InvalidMessage, e.0))?;
        match parsed.protected_field(&rc.protected) {
            None => Ok(()),
            Some(field) => Err((
                ErrorCode::Forbidden,
                format!(
                    "filter field `{}` reaches a protected field of `{}`; filters cannot use protected fields",
                    clip(&field),
                    clip(resource)
                ),
            )),
        }
    }

    /// The shared view of the user of the connection in `slot` (`None`: anonymous).
    fn user_view(&self, slot: usize) -> Option<&Arc<UserView>> {
        self.conns.get(slot).and_then(|c| c.user_view.as_ref())
    }

    /// The user of `slot` as filters and host guards see it.
    pub(super) fn user_subject(&self, slot: usize) -> Option<Value> {
        self.user_view(slot).map(|v| v.subject.clone())
    }

    /// The user of `slot` as CEL guards see it (converted when it connected).
    fn user_guard_value(&self, slot: usize) -> GuardValue {
        self.user_view(slot)
            .map_or_else(GuardValue::null, |v| v.guard.clone())
    }

    /// Whether the connection in `slot` may read `record` (the resource's `read` guard).
    pub(super) fn can_read(&mut self, slot: usize, cr: &CompiledResource, record: &Value) -> bool {
        let Some(g) = cr.guards.get(&GuardAction::Read) else {
            return true;
        };
        let user = self.user_guard_value(slot);
        let read = ReadCheck::new(g, record).decide(&user);
        self.count_read(read)
    }

    /// A `read` decision as allowed or not, counting an evaluation error.
    fn count_read(&mut self, read: Read) -> bool {
        match read {
            Read::Allow => true,
            Read::Deny => false,
            Read::Error => {
                self.metrics.guard_errors += 1;
                false
            }
        }
    }

    /// The slot of the connection a call belongs to, if it is still the same client.
    pub(super) fn call_slot(&self, call: &PendingCall) -> Option<usize> {
        let slot = *self.by_conn.get(&call.conn?)?;
        (self.conns[slot].state.client_id == call.client_id).then_some(slot)
    }

    pub(super) fn compiled(&self, resource: &str) -> Arc<CompiledResource> {
        self.compiled.get(resource).cloned().unwrap_or_default()
    }

    fn deny(&mut self, slot: usize, message: Option<String>, rid: Rid) {
        self.metrics.guard_denials += 1;
        self.send_error(
            slot,
            ErrorCode::Forbidden,
            message.unwrap_or_else(|| "Access denied".into()),
            rid,
        );
    }

    /// Register a host call for `slot`, enforcing the pending-call bounds.
    fn call(
        &mut self,
        now: Millis,
        slot: usize,
        request: HostRequest,
        then: Continuation,
        rid: Rid,
    ) {
        let limits = &self.config.limits;
        if self.conns[slot].pending >= limits.max_pending_calls_per_connection {
            return self.send_error(
                slot,
                ErrorCode::LimitExceeded,
                format!(
                    "at most {} requests in flight per connection; wait for answers",
                    limits.max_pending_calls_per_connection
                ),
                rid,
            );
        }
        if self.pending.len() >= limits.max_pending_calls {
            return self.send_error(
                slot,
                ErrorCode::Unavailable,
                "the server is busy; retry shortly",
                rid,
            );
        }
        let op = self.ops.next();
        let deadline = now.plus(limits.host_call_timeout_ms);
        let conn = self.conns[slot].id;
        let client_id = self.conns[slot].state.client_id.clone();
        self.conns[slot].pending += 1;
        self.pending.insert(
            op,
            PendingCall {
                conn: Some(conn),
                client_id,
                request_id: rid,
                deadline,
                then,
                command: None,
            },
        );
        self.metrics.pending_calls = self.pending.len() as u64;
        self.timers
            .reschedule(TimerKey::Op(op), None, Some(deadline));
        self.actions.push_back(Action::Call {
            op,
            conn: Some(conn),
            deadline,
            request,
        });
    }

    fn call_store(
        &mut self,
        now: Millis,
        slot: usize,
        request: StoreRequest,
        forced: Option<Value>,
        rid: Rid,
    ) {
        let then = Continuation::Store {
            request: request.clone(),
            forced,
        };
        self.call(now, slot, HostRequest::Store(request), then, rid);
    }

    fn prefetch(&mut self, now: Millis, slot: usize, op: ResourceOp, rid: Rid) {
        let request = StoreRequest::Get {
            resource: op.resource.clone(),
            id: op.id.clone().unwrap_or_default(),
        };
        self.call(
            now,
            slot,
            HostRequest::Store(request),
            Continuation::Prefetch(Box::new(op)),
            rid,
        );
    }

    /// Run (or resume) the pipeline of a resource request.
    pub(super) fn run_op(&mut self, now: Millis, slot: usize, mut op: ResourceOp, rid: Rid) {
        let cr = self.compiled(&op.resource);
        let is_write = matches!(op.action, GuardAction::Update | GuardAction::Delete);
        let needs_record = is_write
            && op.record.is_none()
            && (cr.guards.get(&op.action).is_some_and(Guard::uses_record)
                || cr.host_guards.contains(&op.action));
        if needs_record {
            return self.prefetch(now, slot, op, rid);
        }
        if !op.cel_done {
            op.cel_done = true;
            if let Some(g) = cr.guards.get(&op.action) {
                let user = self.user_guard_value(slot);
                let filter = GuardValue::new(op.filter.as_ref());
                let data = GuardValue::new(op.data.as_ref());
                let record = GuardValue::new(op.record.as_ref());
                let id = GuardValue::string(op.id.as_deref());
                let values = GuardValues {
                    user: &user,
                    filter: &filter,
                    data: &data,
                    record: &record,
                    id: &id,
                };
                match g.evaluate_values(&values) {
                    Ok(GuardOutcome::Allow) => {}
                    Ok(GuardOutcome::Deny) => return self.deny(slot, None, rid),
                    Ok(GuardOutcome::Filter(f)) => {
                        op.forced = and_filters(op.forced.as_ref(), Some(&f))
                    }
                    Err(_) => {
                        self.metrics.guard_errors += 1;
                        return self.deny(slot, None, rid);
                    }
                }
            }
        }
        if !op.host_done && cr.host_guards.contains(&op.action) {
            op.host_done = true;
            let context = GuardContext {
                user: self.user_subject(slot),
                filter: op.filter.clone(),
                data: op.data.clone(),
                record: op.record.clone(),
                id: op.id.clone(),
            };
            let request = HostRequest::Guard {
                resource: op.resource.clone(),
                action: op.action,
                context: Box::new(context),
            };
            return self.call(
                now,
                slot,
                request,
                Continuation::HostGuard(Box::new(op)),
                rid,
            );
        }
        if let Some(forced) = op.forced.clone() {
            let f = match Filter::parse(&forced) {
                Ok(f) => f,
                Err(_) => return self.deny(slot, None, rid),
            };
            match op.action {
                GuardAction::Create if !op.data.as_ref().is_some_and(|d| f.matches(d)) => {
                    return self.deny(
                        slot,
                        Some("Access denied: the record is outside what you may create".into()),
                        rid,
                    );
                }
                GuardAction::Update | GuardAction::Delete => match &op.record {
                    None => return self.prefetch(now, slot, op, rid),
                    Some(r) => {
                        let after = match (&op.action, &op.data) {
                            (GuardAction::Update, Some(p)) => merge_patch(r, p),
                            _ => r.clone(),
                        };
                        if !f.matches(r) || !f.matches(&after) {
                            return self.deny(
                                slot,
                                Some("Access denied for this record".into()),
                                rid,
                            );
                        }
                    }
                },
                _ => {}
            }
        }
        let resource = op.resource.clone();
        match op.action {
            GuardAction::Subscribe => self.register_subscription(now, slot, op, rid),
            GuardAction::List => {
                let filter =
                    and_filters(op.filter.as_ref(), op.forced.as_ref()).unwrap_or(Value::Null);
                let request = StoreRequest::List {
                    resource,
                    filter,
                    limit: op.limit,
                    cursor: op.cursor,
                };
                self.call_store(now, slot, request, None, rid)
            }
            GuardAction::Get => {
                let request = StoreRequest::Get {
                    resource,
                    id: op.id.unwrap_or_default(),
                };
                self.call_store(now, slot, request, op.forced, rid)
            }
            GuardAction::Create => {
                let request = StoreRequest::Insert {
                    resource,
                    record: op.data.unwrap_or(Value::Null),
                };
                self.call_store(now, slot, request, None, rid)
            }
            GuardAction::Update => {
                let request = StoreRequest::Update {
                    resource,
                    id: op.id.unwrap_or_default(),
                    patch: op.data.unwrap_or(Value::Null),
                };
                self.call_store(now, slot, request, None, rid)
            }
            GuardAction::Delete => {
                let request = StoreRequest::Delete {
                    resource,
                    id: op.id.unwrap_or_default(),
                };
                self.call_store(now, slot, request, None, rid)
            }
            GuardAction::Read => {}
        }
    }

    /// The last step of `subscribe`: index the subscription and confirm it.
    fn register_subscription(&mut self, now: Millis, slot: usize, op: ResourceOp, rid: Rid) {
        if self.conns[slot].state.subscriptions.len()
            >= self.config.limits.max_subscriptions_per_connection
        {
            return self.send_error(
                slot,
                ErrorCode::LimitExceeded,
                format!(
                    "at most {} subscriptions per connection",
                    self.config.limits.max_subscriptions_per_connection
                ),
                rid,
            );
        }
        let forced_parsed = op
            .forced
            .as_ref()
            .and_then(|f| Filter::parse(f).ok())
            .filter(|f| !f.is_empty());
        let effective = and_filters(op.filter.as_ref(), op.forced.as_ref());
        let parsed = match effective.as_ref().map(Filter::parse).transpose() {
            Ok(f) => f.filter(|f| !f.is_empty()),
            Err(e) => return self.send_error(slot, ErrorCode::InvalidMessage, e.0, rid),
        };
        // Recovery is read in the step that indexes the subscription: a change is in
        // the replay or arrives live, never both (see `resource_streams`).
        let view = super::resource_streams::SubscriberView {
            filter: parsed.as_ref(),
            forced: forced_parsed.as_ref(),
            events: &op.events,
        };
        let stream = self.resource_stream_state(now, slot, &op.resource, op.since.clone(), &view);
        let s = &mut self.conns[slot].state;
        s.next_subscription += 1;
        let id = format!("sub-{}", s.next_subscription);
        let conn = self.conns[slot].id;
        let key = self.hub.subscribe_resource_forced(
            slot,
            conn,
            &op.resource,
            parsed,
            forced_parsed,
            &op.events,
        );
        let c = &mut self.conns[slot];
        c.sub_keys.push(key);
        c.state.subscriptions.push(Subscription {
            id: id.clone(),
            target: SubTarget::Resource {
                name: op.resource.clone(),
                filter: op.filter.clone(),
                forced: op.forced,
                events: op.events.clone(),
            },
        });
        self.send(
            slot,
            &ServerMessage::Subscribed {
                subscription_id: id,
                resource: Some(op.resource),
                channel: None,
                filter: op.filter,
                events: Some(op.events),
                stream,
                request_id: rid,
            },
        );
    }

    pub(super) fn crud_get(
        &mut self,
        now: Millis,
        slot: usize,
        resource: String,
        id: String,
        rid: Rid,
    ) {
        if let Err((code, m)) = self.resource_access(slot, &resource) {
            return self.send_error(slot, code, m, rid);
        }
        if id.is_empty() {
            return self.send_error(
                slot,
                ErrorCode::InvalidMessage,
                "`id` must not be empty",
                rid,
            );
        }
        let mut op = ResourceOp::new(GuardAction::Get, resource);
        op.id = Some(id);
        self.run_op(now, slot, op, rid);
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn crud_list(
        &mut self,
        now: Millis,
        slot: usize,
        resource: String,
        filter: Option<Value>,
        limit: Option<u64>,
        cursor: Option<String>,
        rid: Rid,
    ) {
        let rc = match self.resource_access(slot, &resource) {
            Ok(rc) => rc,
            Err((code, m)) => return self.send_error(slot, code, m, rid),
        };
        if let Some(f) = &filter {
            if let Err((code, m)) = Self::check_client_filter(&rc, &resource, f) {
                return self.send_error(slot, code, m, rid);
            }
        }
        let limit = match limit {
            None => rc.max_list_limit,
            Some(0) => {
                return self.send_error(
                    slot,
                    ErrorCode::InvalidMessage,
                    "`limit` must be at least 1",
                    rid,
                )
            }
            Some(n) => (n.min(rc.max_list_limit as u64)) as usize,
        };
        let mut op = ResourceOp::new(GuardAction::List, resource);
        op.filter = filter.filter(|f| !f.is_null());
        op.limit = limit;
        op.cursor = cursor;
        self.run_op(now, slot, op, rid);
    }

    pub(super) fn crud_insert(
        &mut self,
        now: Millis,
        slot: usize,
        resource: String,
        data: Map<String, Value>,
        rid: Rid,
    ) {
        if let Err((code, m)) = self.resource_access(slot, &resource) {
            return self.send_error(slot, code, m, rid);
        }
        let record = match self.new_record(now, &resource, data) {
            Ok(r) => r,
            Err((code, m)) => return self.send_error(slot, code, m, rid),
        };
        let mut op = ResourceOp::new(GuardAction::Create, resource);
        op.id = record.get("id").and_then(Value::as_str).map(str::to_string);
        op.data = Some(Value::Object(record));
        self.run_op(now, slot, op, rid);
    }

    pub(super) fn crud_update(
        &mut self,
        now: Millis,
        slot: usize,
        resource: String,
        id: String,
        data: Map<String, Value>,
        rid: Rid,
    ) {
        if let Err((code, m)) = self.resource_access(slot, &resource) {
            return self.send_error(slot, code, m, rid);
        }
        let patch = match self.update_patch(now, &resource, &id, data) {
            Ok(p) => p,
            Err((code, m)) => return self.send_error(slot, code, m, rid),
        };
        let mut op = ResourceOp::new(GuardAction::Update, resource);
        op.id = Some(id);
        op.data = Some(Value::Object(patch));
        self.run_op(now, slot, op, rid);
    }

    /// The record an insert stores, shaped the same way for clients and the server:
    /// `id` first (given, or generated from the engine's seeded generator), the fields,
    /// then `createdAt` and `updatedAt` set to `now`; client-sent timestamps are
    /// ignored; the fields are checked against the resource's schema.
    fn new_record(
        &mut self,
        now: Millis,
        resource: &str,
        mut data: Map<String, Value>,
    ) -> Result<Map<String, Value>, (ErrorCode, String)> {
        let id = match data.shift_remove("id") {
            None => Value::String(self.random_id(20)),
            Some(Value::String(s)) if !s.is_empty() && s.len() <= 256 => Value::String(s),
            Some(_) => {
                return Err((
                    ErrorCode::ValidationError,
                    "id: must be a non-empty string of at most 256 bytes".into(),
                ))
            }
        };
        data.shift_remove("createdAt");
        data.shift_remove("updatedAt");
        let cr = self.compiled(resource);
        if let Some(schema) = &cr.schema {
            schema
                .check_insert(&Value::Object(data.clone()))
                .map_err(|e| (ErrorCode::ValidationError, e))?;
        }
        let ts = Value::String(iso8601(now));
        let mut record = Map::with_capacity(data.len() + 3);
        record.insert("id".into(), id);
        record.extend(data);
        record.insert("createdAt".into(), ts.clone());
        record.insert("updatedAt".into(), ts);
        Ok(record)
    }

    /// The patch an update stores, shaped the same way for clients and the server: the
    /// id must be non-empty and may not change, client-sent timestamps are ignored, the
    /// fields are checked against the resource's schema, and `updatedAt` is set.
    fn update_patch(
        &self,
        now: Millis,
        resource: &str,
        id: &str,
        mut data: Map<String, Value>,
    ) -> Result<Map<String, Value>, (ErrorCode, String)> {
        if id.is_empty() {
            return Err((ErrorCode::InvalidMessage, "`id` must not be empty".into()));
        }
        match data.shift_remove("id") {
            None => {}
            Some(Value::String(s)) if s == id => {}
            Some(_) => {
                return Err((
                    ErrorCode::ValidationError,
                    "id: a record's id cannot be changed".into(),
                ))
            }
        }
        data.shift_remove("createdAt");
        data.shift_remove("updatedAt");
        let cr = self.compiled(resource);
        if let Some(schema) = &cr.schema {
            schema
                .check_update(&Value::Object(data.clone()))
                .map_err(|e| (ErrorCode::ValidationError, e))?;
        }
        data.insert("updatedAt".into(), Value::String(iso8601(now)));
        Ok(data)
    }

    pub(super) fn crud_delete(
        &mut self,
        now: Millis,
        slot: usize,
        resource: String,
        id: String,
        rid: Rid,
    ) {
        if let Err((code, m)) = self.resource_access(slot, &resource) {
            return self.send_error(slot, code, m, rid);
        }
        if id.is_empty() {
            return self.send_error(
                slot,
                ErrorCode::InvalidMessage,
                "`id` must not be empty",
                rid,
            );
        }
        let mut op = ResourceOp::new(GuardAction::Delete, resource);
        op.id = Some(id);
        self.run_op(now, slot, op, rid);
    }

    // ----- server writes (Command::Insert / Update / Delete) ------------------------------
    //
    // The same shaping and validation as a client's write, then the storage call and its
    // fan-out; no access roles, write guards or host guards (the server is trusted). The
    // result goes to Action::CommandResult with the command's tag.

    fn command_result(&mut self, tag: u64, result: Result<Value, CommandError>) {
        self.actions
            .push_back(Action::CommandResult { tag, result });
    }

    /// Whether a server write names a configured resource (answers the command if not).
    fn server_resource(&mut self, tag: u64, resource: &str) -> bool {
        if self.config.resources.contains_key(resource) {
            return true;
        }
        self.command_result(
            tag,
            Err(cmd_err(
                ErrorCode::ResourceNotFound,
                format!("resource `{}` is not configured", clip(resource)),
            )),
        );
        false
    }

    pub(super) fn server_insert(
        &mut self,
        now: Millis,
        tag: u64,
        resource: String,
        data: Map<String, Value>,
    ) {
        if !self.server_resource(tag, &resource) {
            return;
        }
        match self.new_record(now, &resource, data) {
            Ok(record) => {
                let request = StoreRequest::Insert {
                    resource,
                    record: Value::Object(record),
                };
                self.server_call(now, tag, request)
            }
            Err((code, m)) => self.command_result(tag, Err(cmd_err(code, m))),
        }
    }

    pub(super) fn server_update(
        &mut self,
        now: Millis,
        tag: u64,
        resource: String,
        id: String,
        data: Map<String, Value>,
    ) {
        if !self.server_resource(tag, &resource) {
            return;
        }
        match self.update_patch(now, &resource, &id, data) {
            Ok(patch) => {
                let request = StoreRequest::Update {
                    resource,
                    id,
                    patch: Value::Object(patch),
                };
                self.server_call(now, tag, request)
            }
            Err((code, m)) => self.command_result(tag, Err(cmd_err(code, m))),
        }
    }

    pub(super) fn server_delete(&mut self, now: Millis, tag: u64, resource: String, id: String) {
        if !self.server_resource(tag, &resource) {
            return;
        }
        if id.is_empty() {
            let e = cmd_err(ErrorCode::InvalidMessage, "`id` must not be empty");
            return self.command_result(tag, Err(e));
        }
        self.server_call(now, tag, StoreRequest::Delete { resource, id });
    }

    /// Register a storage call for a command (bounded by `limits.maxPendingCalls`).
    fn server_call(&mut self, now: Millis, tag: u64, request: StoreRequest) {
        let limits = &self.config.limits;
        if self.pending.len() >= limits.max_pending_calls {
            let e = cmd_err(ErrorCode::Unavailable, "the server is busy; retry shortly");
            return self.command_result(tag, Err(e));
        }
        let op = self.ops.next();
        let deadline = now.plus(limits.host_call_timeout_ms);
        self.pending.insert(
            op,
            PendingCall {
                conn: None,
                client_id: String::new(),
                request_id: None,
                deadline,
                then: Continuation::Store {
                    request: request.clone(),
                    forced: None,
                },
                command: Some(tag),
            },
        );
        self.metrics.pending_calls = self.pending.len() as u64;
        self.timers
            .reschedule(TimerKey::Op(op), None, Some(deadline));
        self.actions.push_back(Action::Call {
            op,
            conn: None,
            deadline,
            request: HostRequest::Store(request),
        });
    }

    /// A command's storage call finished: fan the change out and build its result.
    fn server_write_done(
        &mut self,
        now: Millis,
        request: StoreRequest,
        outcome: StoreOutcome,
    ) -> Result<Value, CommandError> {
        let (resource, kind, record, previous) = match (request, outcome) {
            (request, StoreOutcome::Failed(e)) => {
                let (code, message) = store_error(e.kind);
                let message = match (&request, e.kind) {
                    (
                        StoreRequest::Update { resource, id, .. }
                        | StoreRequest::Delete { resource, id },
                        StoreErrorKind::NotFound,
                    ) => format!("Record `{}` not found in `{resource}`", clip(id)),
                    _ => message.to_string(),
                };
                return Err(CommandError {
                    code,
                    message,
                    store: Some(e.kind),
                });
            }
            (StoreRequest::Insert { resource, .. }, StoreOutcome::Inserted(record)) => {
                (resource, ChangeKind::Insert, record, None)
            }
            (StoreRequest::Update { resource, .. }, StoreOutcome::Updated { record, previous }) => {
                (resource, ChangeKind::Update, record, Some(previous))
            }
            (StoreRequest::Delete { resource, .. }, StoreOutcome::Deleted { previous }) => {
                (resource, ChangeKind::Delete, previous, None)
            }
            _ => {
                return Err(cmd_err(
                    ErrorCode::InternalError,
                    "the storage operation failed",
                ))
            }
        };
        let delivered = self
            .fanout_change(now, &resource, kind, &record, previous.as_ref())
            .unwrap_or(0);
        Ok(serde_json::json!({ "record": record, "delivered": delivered }))
    }

    /// A host call finished.
    pub(super) fn completed(&mut self, now: Millis, op: OpId, result: HostResult) {
        let Some(call) = self.pending.remove(&op) else {
            self.metrics.late_completions += 1;
            // A write that finished after its deadline still happened: its subscribers
            // must see the change even though the client was told TIMEOUT.
            if let (Some(Continuation::Store { request, .. }), HostResult::Store(outcome)) =
                (self.abandoned.remove(&op), result)
            {
                self.store_completed(now, None, request, None, outcome, None);
            }
            return;
        };
        self.metrics.pending_calls = self.pending.len() as u64;
        self.timers
            .reschedule(TimerKey::Op(op), Some(call.deadline), None);
        if let Some(tag) = call.command {
            let result = match (call.then, result) {
                (Continuation::Store { request, .. }, HostResult::Store(outcome)) => {
                    self.server_write_done(now, request, outcome)
                }
                // The host answered a different kind of call: a host bug.
                _ => Err(cmd_err(ErrorCode::InternalError, "the operation failed")),
            };
            return self.command_result(tag, result);
        }
        let slot = self.call_slot(&call);
        if let Some(s) = slot {
            self.conns[s].pending = self.conns[s].pending.saturating_sub(1);
        }
        let rid = call.request_id;
        let reply_to = slot.filter(|s| !self.conns[*s].closing);
        match (call.then, result) {
            (Continuation::Store { request, forced }, HostResult::Store(outcome)) => {
                self.store_completed(now, reply_to, request, forced, outcome, rid)
            }
            (Continuation::Prefetch(mut op), HostResult::Store(outcome)) => {
                let Some(s) = reply_to else { return };
                match outcome {
                    StoreOutcome::Record(Some(r)) => {
                        op.record = Some(r);
                        self.run_op(now, s, *op, rid);
                    }
                    StoreOutcome::Record(None) => {
                        self.send_error(s, ErrorCode::NotFound, "Record not found", rid)
                    }
                    StoreOutcome::Failed(e) => {
                        let (code, msg) = store_error(e.kind);
                        self.send_error(s, code, msg, rid);
                    }
                    _ => self.send_error(
                        s,
                        ErrorCode::InternalError,
                        "the storage operation failed",
                        rid,
                    ),
                }
            }
            (Continuation::HostGuard(mut op), HostResult::Guard(decision)) => {
                let Some(s) = reply_to else { return };
                match decision {
                    GuardDecision::Allow => self.run_op(now, s, *op, rid),
                    GuardDecision::Deny { message } => {
                        let message = message.map(|m| m.chars().take(200).collect());
                        self.deny(s, message, rid)
                    }
                    GuardDecision::Filter { filter } => {
                        if Filter::parse(&filter).is_err() {
                            self.metrics.guard_errors += 1;
                            return self.deny(s, None, rid);
                        }
                        op.forced = and_filters(op.forced.as_ref(), Some(&filter));
                        self.run_op(now, s, *op, rid);
                    }
                }
            }
            (_, _) => {
                // The host answered a different kind of call: a host bug, never the client's.
                if let Some(s) = reply_to {
                    self.send_error(s, ErrorCode::InternalError, "the operation failed", rid);
                }
            }
        }
    }

    fn store_completed(
        &mut self,
        now: Millis,
        reply_to: Option<usize>,
        request: StoreRequest,
        forced: Option<Value>,
        outcome: StoreOutcome,
        rid: Rid,
    ) {
        let protected = |e: &Engine, r: &str| {
            e.config
                .resources
                .get(r)
                .map(|rc| rc.protected.clone())
                .unwrap_or_default()
        };
        match (request, outcome) {
            (StoreRequest::List { .. }, StoreOutcome::Failed(err))
                if err.kind == StoreErrorKind::NotFound =>
            {
                if let Some(s) = reply_to {
                    self.send_error(
                        s,
                        ErrorCode::InvalidMessage,
                        "`cursor` is not valid; start the listing again without it",
                        rid,
                    );
                }
            }
            (_, StoreOutcome::Failed(err)) => {
                if let Some(s) = reply_to {
                    let (code, msg) = store_error(err.kind);
                    self.send_error(s, code, msg, rid);
                }
            }
            (StoreRequest::Get { resource, id }, StoreOutcome::Record(rec)) => {
                let Some(s) = reply_to else { return };
                let cr = self.compiled(&resource);
                let visible = rec.filter(|r| {
                    forced
                        .as_ref()
                        .is_none_or(|f| Filter::parse(f).is_ok_and(|f| f.matches(r)))
                });
                let visible = match visible {
                    Some(r) if self.can_read(s, &cr, &r) => Some(r),
                    _ => None,
                };
                match visible {
                    Some(r) => {
                        let data = strip_protected(&r, &protected(self, &resource));
                        self.send(
                            s,
                            &ServerMessage::Data {
                                resource,
                                data,
                                cursor: None,
                                request_id: rid,
                            },
                        );
                    }
                    None => self.send_error(
                        s,
                        ErrorCode::NotFound,
                        format!("Record `{}` not found in `{resource}`", clip(&id)),
                        rid,
                    ),
                }
            }
            (StoreRequest::List { resource, .. }, StoreOutcome::Page { items, cursor }) => {
                let Some(s) = reply_to else { return };
                let cr = self.compiled(&resource);
                let p = protected(self, &resource);
                let mut data = Vec::with_capacity(items.len());
                for r in &items {
                    if self.can_read(s, &cr, r) {
                        data.push(strip_protected(r, &p));
                    }
                }
                self.send(
                    s,
                    &ServerMessage::Data {
                        resource,
                        data: Value::Array(data),
                        cursor: Some(cursor.map_or(Value::Null, Value::String)),
                        request_id: rid,
                    },
                );
            }
            (StoreRequest::Insert { resource, .. }, StoreOutcome::Inserted(record)) => {
                if let Some(s) = reply_to {
                    let data = self.reply_view(s, &resource, &record);
                    self.send(
                        s,
                        &ServerMessage::Inserted {
                            resource: resource.clone(),
                            data,
                            request_id: rid,
                        },
                    );
                }
                self.fanout_change(now, &resource, ChangeKind::Insert, &record, None);
            }
            (StoreRequest::Update { resource, .. }, StoreOutcome::Updated { record, previous }) => {
                if let Some(s) = reply_to {
                    let data = self.reply_view(s, &resource, &record);
                    self.send(
                        s,
                        &ServerMessage::Updated {
                            resource: resource.clone(),
                            data,
                            request_id: rid,
                        },
                    );
                }
                self.fanout_change(now, &resource, ChangeKind::Update, &record, Some(&previous));
            }
            (StoreRequest::Delete { resource, id }, StoreOutcome::Deleted { previous }) => {
                if let Some(s) = reply_to {
                    self.send(
                        s,
                        &ServerMessage::Deleted {
                            resource: resource.clone(),
                            id,
                            request_id: rid,
                        },
                    );
                }
                self.fanout_change(now, &resource, ChangeKind::Delete, &previous, None);
            }
            (_, _) => {
                if let Some(s) = reply_to {
                    self.send_error(
                        s,
                        ErrorCode::InternalError,
                        "the storage operation failed",
                        rid,
                    );
                }
            }
        }
    }

    /// What the writer sees of the record it wrote: stripped, or only its id if its
    /// `read` guard does not let it read the result.
    fn reply_view(&mut self, slot: usize, resource: &str, record: &Value) -> Value {
        let cr = self.compiled(resource);
        if self.can_read(slot, &cr, record) {
            let p = self
                .config
                .resources
                .get(resource)
                .map(|rc| rc.protected.clone())
                .unwrap_or_default();
            strip_protected(record, &p)
        } else {
            let mut m = Map::new();
            m.insert(
                "id".into(),
                record.get("id").cloned().unwrap_or(Value::Null),
            );
            Value::Object(m)
        }
    }

    /// A host call missed its deadline.
    pub(super) fn call_timed_out(&mut self, op: OpId) {
        let Some(call) = self.pending.remove(&op) else {
            return;
        };
        self.metrics.pending_calls = self.pending.len() as u64;
        self.metrics.timed_out_calls += 1;
        if self.handler_timed_out(&call) {
            return;
        }
        let slot = self.call_slot(&call);
        if let Continuation::Store { request, .. } = &call.then {
            if !matches!(
                request,
                StoreRequest::Get { .. } | StoreRequest::List { .. }
            ) {
                // Remember timed-out writes (bounded) so a late success still fans out.
                if self.abandoned.len() >= self.config.limits.max_pending_calls {
                    self.abandoned.pop_first();
                }
                self.abandoned.insert(op, call.then.clone());
            }
        }
        if let Some(tag) = call.command {
            let e = cmd_err(
                ErrorCode::Timeout,
                "the operation did not finish in time; its outcome is unknown",
            );
            return self.command_result(tag, Err(e));
        }
        if let Some(s) = slot {
            self.conns[s].pending = self.conns[s].pending.saturating_sub(1);
            if !self.conns[s].closing {
                self.send_error(
                    s,
                    ErrorCode::Timeout,
                    "the operation did not finish in time; its outcome is unknown",
                    call.request_id,
                );
            }
        }
    }

    /// Fan a local change out to matching subscribers that may read it, and to the other
    /// nodes of a cluster. Returns the number of local recipients, or `None` when the
    /// resource does not broadcast this kind of change.
    pub(super) fn fanout_change(
        &mut self,
        now: Millis,
        resource: &str,
        kind: ChangeKind,
        record: &Value,
        previous: Option<&Value>,
    ) -> Option<usize> {
        let n = self.fanout_change_local(now, resource, kind, record, previous)?;
        self.cluster_change(resource, kind, record, previous);
        Some(n)
    }

    /// Fan a change (local or from another node) out to this node's subscribers.
    pub(super) fn fanout_change_local(
        &mut self,
        now: Millis,
        resource: &str,
        kind: ChangeKind,
        record: &Value,
        previous: Option<&Value>,
    ) -> Option<usize> {
        let rc = self.config.resources.get(resource)?;
        if !rc.events.contains(&kind) {
            return None;
        }
        let protected = rc.protected.clone();
        let timestamp = iso8601(now);
        let position = self.append_change(now, resource, kind, record, previous, &timestamp);
        let cr = self.compiled(resource);
        let max_slot = self.conns.capacity();
        let mut candidates = Vec::new();
        self.hub.change_recipients_visibility(
            resource,
            kind,
            record,
            previous,
            max_slot,
            &mut candidates,
        );
        // Split into those who may see the whole event and those who may see the
        // record after an update but not before it (`$before` withheld).
        // The `read` guard's records are converted for CEL once per change, and its
        // decision, which for a given record depends only on the user, is taken once
        // per distinct user (see `ReadCheck`).
        let mut read_checks = cr.guards.get(&GuardAction::Read).map(|g| {
            (
                ReadCheck::new(g, record),
                previous.map(|p| ReadCheck::new(g, p)),
            )
        });
        let mut full = std::mem::take(&mut self.scratch);
        full.clear();
        let mut partial: Vec<(usize, ConnId)> = Vec::new();
        for (slot, conn, mut before_ok) in candidates {
            if let Some((after, before)) = &mut read_checks {
                // Deletes are checked against the removed record, others the new one.
                let read = after.decide_for(self.user_view(slot));
                if !self.count_read(read) {
                    continue;
                }
                if let Some(before) = before {
                    if before_ok {
                        let read = before.decide_for(self.user_view(slot));
                        before_ok = self.count_read(read);
                    }
                }
            }
            if kind == ChangeKind::Update && !before_ok {
                partial.push((slot, conn));
            } else {
                full.push((slot, conn));
            }
        }
        let mut n = 0;
        for (group, prev) in [(&full, previous), (&partial, None)] {
            if group.is_empty() {
                continue;
            }
            let data = event_data(kind, record, prev, &protected);
            let msg = ServerMessage::Event {
                event: kind,
                resource: resource.to_string(),
                data,
                timestamp: timestamp.clone(),
                offset: position.as_ref().map(|p| p.offset),
                epoch: position.as_ref().map(|p| Arc::clone(&p.epoch)),
            };
            n += self.fanout(group, Outbound::Message(&msg));
        }
        let recipients = full;
        self.scratch = recipients;
        Some(n)
    }
}

/// What a `read` guard decided for one record and one user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Read {
    Allow,
    Deny,
    /// The evaluation failed: denied, and counted in `guard_errors`.
    Error,
}

/// One record to check with a `read` guard, converted for CEL once, for any number of
/// users. For a given record the guard's outcome depends only on the user (its other
/// variables are the record, its id and `null`s), so [`ReadCheck::decide_for`]
/// remembers it per distinct user view.
struct ReadCheck<'a> {
    guard: &'a Guard,
    record: &'a Value,
    converted: GuardValue,
    id: GuardValue,
    null: GuardValue,
    /// Decisions by user view (its address; 0 for anonymous). Views are shared by
    /// every connection of the same user, and live while one of them does.
    memo: FxHashMap<usize, Read>,
}

impl<'a> ReadCheck<'a> {
    fn new(guard: &'a Guard, record: &'a Value) -> Self {
        ReadCheck {
            guard,
            record,
            converted: GuardValue::new(Some(record)),
            id: GuardValue::string(record.get("id").and_then(Value::as_str)),
            null: GuardValue::null(),
            memo: FxHashMap::default(),
        }
    }

    /// The decision for the user `user` (already converted).
    fn decide(&self, user: &GuardValue) -> Read {
        let values = GuardValues {
            user,
            filter: &self.null,
            data: &self.null,
            record: &self.converted,
            id: &self.id,
        };
        match self.guard.evaluate_values(&values) {
            Ok(GuardOutcome::Allow) => Read::Allow,
            Ok(GuardOutcome::Deny) => Read::Deny,
            Ok(GuardOutcome::Filter(f)) => {
                if Filter::parse(&f).is_ok_and(|f| f.matches(self.record)) {
                    Read::Allow
                } else {
                    Read::Deny
                }
            }
            Err(_) => Read::Error,
        }
    }

    /// The decision for a connection's user view (`None`: anonymous), remembered.
    fn decide_for(&mut self, view: Option<&Arc<UserView>>) -> Read {
        let key = view.map_or(0, |v| Arc::as_ptr(v) as usize);
        if let Some(read) = self.memo.get(&key) {
            return *read;
        }
        let read = match view {
            Some(v) => self.decide(&v.guard),
            None => self.decide(&self.null),
        };
        self.memo.insert(key, read);
        read
    }
}

/// The `data` of an event: insert → the record; update → the record with `$before` and
/// `$after`; delete → the old record with `$before` and `$after: null`. Protected
/// fields are stripped everywhere, nested copies included.
pub(crate) fn event_data(
    kind: ChangeKind,
    record: &Value,
    previous: Option<&Value>,
    protected: &[String],
) -> Value {
    let after = strip_protected(record, protected);
    match kind {
        ChangeKind::Insert => after,
        ChangeKind::Update => {
            let before = previous.map_or(Value::Null, |p| strip_protected(p, protected));
            let mut m = match after.clone() {
                Value::Object(m) => m,
                other => {
                    let mut m = Map::new();
                    m.insert("value".into(), other);
                    m
                }
            };
            m.insert("$before".into(), before);
            m.insert("$after".into(), after);
            Value::Object(m)
        }
        ChangeKind::Delete => {
            let mut m = match after.clone() {
                Value::Object(m) => m,
                _ => Map::new(),
            };
            m.insert("$before".into(), after);
            m.insert("$after".into(), Value::Null);
            Value::Object(m)
        }
    }
}

/// A copy of `record` without the protected dotted paths.
pub fn strip_protected(record: &Value, protected: &[String]) -> Value {
    let mut out = record.clone();
    for path in protected {
        let parts: Vec<&str> = path.split('.').collect();
        remove_path(&mut out, &parts);
    }
    out
}

fn remove_path(v: &mut Value, parts: &[&str]) {
    let Some((first, rest)) = parts.split_first() else {
        return;
    };
    match v {
        Value::Object(m) => {
            if rest.is_empty() {
                m.shift_remove(*first);
            } else if let Some(child) = m.get_mut(*first) {
                remove_path(child, rest);
            }
        }
        // A protected path applies to every element of an array on the way.
        Value::Array(items) => {
            for item in items {
                remove_path(item, parts);
            }
        }
        _ => {}
    }
}

/// At most 128 bytes of `s`, for messages.
pub(crate) fn clip(s: &str) -> String {
    if s.len() <= 128 {
        return s.to_string();
    }
    let mut end = 128;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strips_nested_and_array_paths() {
        let r =
            json!({"a":1,"password":"x","meta":{"internal":1,"ok":2},"list":[{"secret":1,"k":2}]});
        let p = vec![
            "password".to_string(),
            "meta.internal".into(),
            "list.secret".into(),
        ];
        assert_eq!(
            strip_protected(&r, &p),
            json!({"a":1,"meta":{"ok":2},"list":[{"k":2}]})
        );
    }

    #[test]
    fn update_and_delete_events_never_leak_protected_fields() {
        let p = vec!["password".to_string()];
        let before = json!({"id":"u1","password":"old","name":"a"});
        let after = json!({"id":"u1","password":"new","name":"b"});
        let d = event_data(ChangeKind::Update, &after, Some(&before), &p);
        assert!(!d.to_string().contains("password"), "{d}");
        assert_eq!(d["$before"]["name"], "a");
        assert_eq!(d["$after"]["name"], "b");
        let d = event_data(ChangeKind::Delete, &before, None, &p);
        assert!(!d.to_string().contains("password"), "{d}");
        assert_eq!(d["$after"], Value::Null);
    }
}
