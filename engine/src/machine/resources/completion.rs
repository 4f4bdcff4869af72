//! Host call completions and timeouts: resume the pipeline after a prefetch or a host
//! guard, answer storage results, and remember timed-out writes so a late success
//! still fans out.

use serde_json::Value;

use super::visibility::strip_protected;
use super::{clip, Continuation, Rid};
use crate::config::ChangeKind;
use crate::error::ErrorCode;
use crate::filter::Filter;
use crate::hostcall::{GuardDecision, HostResult, StoreOutcome, StoreRequest};
use crate::machine::server_api::err as cmd_err;
use crate::machine::Engine;
use crate::protocol::ServerMessage;
use crate::timers::TimerKey;
use crate::types::{Millis, OpId};

impl Engine {
    /// A host call finished.
    pub(in crate::machine) fn completed(&mut self, now: Millis, op: OpId, result: HostResult) {
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
                        let (code, msg) = e.kind.client_error();
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
                        let Ok(parsed) = Filter::parse(&filter) else {
                            self.metrics.guard_errors += 1;
                            return self.deny(s, None, rid);
                        };
                        // Too many conditions with the CEL guard's forced filter.
                        if op.force(&filter, parsed).is_err() {
                            return self.deny(s, None, rid);
                        }
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

    pub(super) fn store_completed(
        &mut self,
        now: Millis,
        reply_to: Option<usize>,
        request: StoreRequest,
        forced: Option<Filter>,
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
            (StoreRequest::List { .. }, StoreOutcome::Failed(err)) => {
                if let Some(s) = reply_to {
                    let (code, msg) = err.kind.list_client_error();
                    self.send_error(s, code, msg, rid);
                }
            }
            (_, StoreOutcome::Failed(err)) => {
                if let Some(s) = reply_to {
                    let (code, msg) = err.kind.client_error();
                    self.send_error(s, code, msg, rid);
                }
            }
            (StoreRequest::Get { resource, id }, StoreOutcome::Record(rec)) => {
                let Some(s) = reply_to else { return };
                let cr = self.compiled(&resource);
                let visible = rec.filter(|r| forced.as_ref().is_none_or(|f| f.matches(r)));
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

    /// A host call missed its deadline.
    pub(in crate::machine) fn call_timed_out(&mut self, op: OpId) {
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
}
