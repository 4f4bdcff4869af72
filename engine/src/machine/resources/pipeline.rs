//! The resource pipeline ([`ResourceOp`]): access and validation happened before;
//! here the stored record is fetched if a guard needs it, the CEL guard and the host
//! guard run, forced filters are checked, and the request executes (the subscription
//! is registered or the store is called). Host calls suspend it; their completions
//! resume it.

use serde_json::{Map, Value};

use super::compile::CompiledResource;
use super::{Continuation, Rid};
use crate::broker::Since;
use crate::config::ChangeKind;
use crate::connection::{JsonText, SubTarget, Subscription};
use crate::error::ErrorCode;
use crate::filter::{Filter, FilterError};
use crate::guard::{and_filters, Guard, GuardAction, GuardValue, GuardValues, ParsedOutcome};
use crate::hostcall::{GuardContext, HostRequest, StoreRequest};
use crate::machine::Engine;
use crate::machine::PendingCall;
use crate::protocol::ServerMessage;
use crate::store::merge_patch;
use crate::timers::TimerKey;
use crate::types::Millis;

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
    /// The client's filter, parsed once when it was checked.
    pub client_filter: Option<Filter>,
    /// Filters forced by guards, ANDed.
    pub forced: Option<Value>,
    /// `forced`, parsed (present exactly when `forced` is; see [`ResourceOp::force`]).
    pub forced_filter: Option<Filter>,
    /// Subscribe: the events to deliver.
    pub events: Vec<ChangeKind>,
    /// Subscribe: recover the changes after this position (resources with history).
    pub since: Option<Since>,
    /// List: page size and cursor.
    pub limit: usize,
    pub cursor: Option<String>,
    /// The stored record, once fetched (update, delete).
    pub record: Option<Value>,
    /// Where the request is in the pipeline.
    pub stage: Stage,
}

impl ResourceOp {
    /// AND a guard's forced filter into the request's: `value` is its JSON (an empty
    /// one, `null` or `{}`, forces nothing) and `parsed` the same filter parsed. Fails,
    /// as parsing the combined JSON would, when together they have too many conditions.
    pub(crate) fn force(&mut self, value: &Value, parsed: Filter) -> Result<(), FilterError> {
        if value.is_null() || value.as_object().is_some_and(Map::is_empty) {
            return Ok(());
        }
        self.forced_filter = Some(match self.forced_filter.take() {
            None => parsed,
            Some(before) => before.and(&parsed)?,
        });
        self.forced = and_filters(self.forced.as_ref(), Some(value));
        Ok(())
    }
}

/// The stages of the resource pipeline, in order. Each runs once; a stage that waits
/// for a host call (a fetch of the stored record, the host guard) suspends the request
/// in a [`Continuation`], and the completion resumes it where it stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stage {
    /// Fetch the stored record if a guard of an update or delete needs it.
    Fetch,
    /// Evaluate the resource's CEL guard for the action.
    CelGuard,
    /// Ask the host guard, if the resource has one for the action.
    HostGuard,
    /// Check the guards' forced filters against the record(s).
    ForcedFilter,
    /// Register the subscription or call the store.
    Execute,
}

impl ResourceOp {
    pub(crate) fn new(action: GuardAction, resource: String) -> Self {
        Self {
            action,
            resource,
            id: None,
            data: None,
            filter: None,
            client_filter: None,
            forced: None,
            forced_filter: None,
            events: Vec::new(),
            since: None,
            limit: 0,
            cursor: None,
            record: None,
            stage: Stage::Fetch,
        }
    }
}

impl Engine {
    /// The slot of the connection a call belongs to, if it is still the same client.
    pub(in crate::machine) fn call_slot(&self, call: &PendingCall) -> Option<usize> {
        let slot = *self.by_conn.get(&call.conn?)?;
        (self.conns[slot].state.client_id == call.client_id).then_some(slot)
    }

    pub(super) fn deny(&mut self, slot: usize, message: Option<String>, rid: Rid) {
        self.metrics.guard_denials += 1;
        self.send_error(
            slot,
            ErrorCode::Forbidden,
            message.unwrap_or_else(|| "Access denied".into()),
            rid,
        );
    }

    /// Register a host call for `slot`, enforcing the pending-call bounds.
    pub(super) fn call(
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
        self.emit_call(op, Some(conn), deadline, request);
    }

    pub(super) fn call_store(
        &mut self,
        now: Millis,
        slot: usize,
        request: StoreRequest,
        forced: Option<Filter>,
        rid: Rid,
    ) {
        let then = Continuation::Store {
            request: request.clone(),
            forced,
        };
        self.call(now, slot, HostRequest::Store(request), then, rid);
    }

    pub(super) fn prefetch(&mut self, now: Millis, slot: usize, op: ResourceOp, rid: Rid) {
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

    /// Run (or resume) the pipeline of a resource request from its current [`Stage`].
    pub(in crate::machine) fn run_op(
        &mut self,
        now: Millis,
        slot: usize,
        mut op: ResourceOp,
        rid: Rid,
    ) {
        let cr = self.compiled(&op.resource);
        loop {
            let next = match op.stage {
                Stage::Fetch => self.fetch_stage(now, slot, &cr, op, &rid),
                Stage::CelGuard => self.cel_guard_stage(slot, &cr, op, &rid),
                Stage::HostGuard => self.host_guard_stage(now, slot, &cr, op, &rid),
                Stage::ForcedFilter => self.forced_filter_stage(now, slot, op, &rid),
                Stage::Execute => return self.execute(now, slot, op, rid),
            };
            match next {
                Some(next) => op = next,
                // Answered, or suspended until a host call completes.
                None => return,
            }
        }
    }

    /// [`Stage::Fetch`]: an update or delete whose CEL guard reads `record`, or that
    /// has a host guard, fetches the stored record first.
    fn fetch_stage(
        &mut self,
        now: Millis,
        slot: usize,
        cr: &CompiledResource,
        mut op: ResourceOp,
        rid: &Rid,
    ) -> Option<ResourceOp> {
        op.stage = Stage::CelGuard;
        let is_write = matches!(op.action, GuardAction::Update | GuardAction::Delete);
        let needs_record = is_write
            && op.record.is_none()
            && (cr.guards.get(&op.action).is_some_and(Guard::uses_record)
                || cr.host_guards.contains(&op.action));
        if needs_record {
            self.prefetch(now, slot, op, rid.clone());
            return None;
        }
        Some(op)
    }

    /// [`Stage::CelGuard`]: the resource's CEL guard for the action allows, denies, or
    /// forces a filter (ANDed with any before).
    fn cel_guard_stage(
        &mut self,
        slot: usize,
        cr: &CompiledResource,
        mut op: ResourceOp,
        rid: &Rid,
    ) -> Option<ResourceOp> {
        op.stage = Stage::HostGuard;
        let Some(g) = cr.guards.get(&op.action) else {
            return Some(op);
        };
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
        match g.evaluate_parsed(&values) {
            Ok(ParsedOutcome::Allow) => {}
            Ok(ParsedOutcome::Deny) => {
                self.deny(slot, None, rid.clone());
                return None;
            }
            Ok(ParsedOutcome::Filter(json, parsed)) => {
                if op.force(&json, parsed).is_err() {
                    self.deny(slot, None, rid.clone());
                    return None;
                }
            }
            Err(_) => {
                self.metrics.guard_errors += 1;
                self.deny(slot, None, rid.clone());
                return None;
            }
        }
        Some(op)
    }

    /// [`Stage::HostGuard`]: if the resource has a host guard for the action, ask the
    /// host; its answer resumes the pipeline at [`Stage::ForcedFilter`].
    fn host_guard_stage(
        &mut self,
        now: Millis,
        slot: usize,
        cr: &CompiledResource,
        mut op: ResourceOp,
        rid: &Rid,
    ) -> Option<ResourceOp> {
        op.stage = Stage::ForcedFilter;
        if !cr.host_guards.contains(&op.action) {
            return Some(op);
        }
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
        self.call(
            now,
            slot,
            request,
            Continuation::HostGuard(Box::new(op)),
            rid.clone(),
        );
        None
    }

    /// [`Stage::ForcedFilter`]: a create's record, and an update's or delete's stored
    /// record (before and after the patch), must match the guards' forced filters; the
    /// stored record is fetched first if it is not known yet (this stage then resumes).
    fn forced_filter_stage(
        &mut self,
        now: Millis,
        slot: usize,
        op: ResourceOp,
        rid: &Rid,
    ) -> Option<ResourceOp> {
        // Parsed (and refused if too large) when each guard forced it.
        let Some(f) = &op.forced_filter else {
            return Some(ResourceOp {
                stage: Stage::Execute,
                ..op
            });
        };
        match op.action {
            GuardAction::Create if !op.data.as_ref().is_some_and(|d| f.matches(d)) => {
                self.deny(
                    slot,
                    Some("Access denied: the record is outside what you may create".into()),
                    rid.clone(),
                );
                return None;
            }
            GuardAction::Update | GuardAction::Delete => match &op.record {
                None => {
                    self.prefetch(now, slot, op, rid.clone());
                    return None;
                }
                Some(r) => {
                    let after = match (&op.action, &op.data) {
                        (GuardAction::Update, Some(p)) => merge_patch(r, p),
                        _ => r.clone(),
                    };
                    if !f.matches(r) || !f.matches(&after) {
                        self.deny(
                            slot,
                            Some("Access denied for this record".into()),
                            rid.clone(),
                        );
                        return None;
                    }
                }
            },
            _ => {}
        }
        Some(ResourceOp {
            stage: Stage::Execute,
            ..op
        })
    }

    /// [`Stage::Execute`]: register the subscription or call the store.
    fn execute(&mut self, now: Millis, slot: usize, op: ResourceOp, rid: Rid) {
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
                self.call_store(now, slot, request, op.forced_filter, rid)
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
    pub(super) fn register_subscription(
        &mut self,
        now: Millis,
        slot: usize,
        op: ResourceOp,
        rid: Rid,
    ) {
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
        let forced_parsed = op.forced_filter.clone().filter(|f| !f.is_empty());
        // The client's filter AND the forced one, as parsing their `$and` would give.
        let effective = match (&op.client_filter, &op.forced_filter) {
            (Some(c), Some(f)) => c.and(f).map(Some),
            (c, f) => Ok(c.clone().or_else(|| f.clone())),
        };
        let parsed = match effective {
            Ok(f) => f.filter(|f| !f.is_empty()),
            Err(e) => return self.send_error(slot, ErrorCode::InvalidMessage, e.0, rid),
        };
        // Recovery is read in the step that indexes the subscription: a change is in
        // the replay or arrives live, never both (see `resource_streams`).
        let view = crate::machine::resource_streams::SubscriberView {
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
        c.push_subscription(
            key,
            Subscription {
                id: id.clone(),
                target: SubTarget::Resource {
                    name: op.resource.clone(),
                    filter: op.filter.as_ref().map(JsonText::new),
                    forced: op.forced.as_ref().map(JsonText::new),
                    events: op.events.clone(),
                },
            },
        );
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
}
