//! Server writes (`Command::Insert` / `Update` / `Delete`): the same shaping and
//! validation as a client's write, then the storage call and its fan-out; no access
//! roles, write guards or host guards (the server is trusted). The result goes to
//! `Action::CommandResult` with the command's tag.

use serde_json::{Map, Value};

use super::{clip, Continuation};
use crate::config::ChangeKind;
use crate::error::ErrorCode;
use crate::hostcall::{HostRequest, StoreErrorKind, StoreOutcome, StoreRequest};
use crate::machine::server_api::{err as cmd_err, CommandError};
use crate::machine::PendingCall;
use crate::machine::{Action, Engine};
use crate::timers::TimerKey;
use crate::types::Millis;

impl Engine {
    pub(super) fn command_result(&mut self, tag: u64, result: Result<Value, CommandError>) {
        self.actions
            .push_back(Action::CommandResult { tag, result });
    }

    /// Whether a server write names a configured resource (answers the command if not).
    pub(super) fn server_resource(&mut self, tag: u64, resource: &str) -> bool {
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

    pub(in crate::machine) fn server_insert(
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

    pub(in crate::machine) fn server_update(
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

    pub(in crate::machine) fn server_delete(
        &mut self,
        now: Millis,
        tag: u64,
        resource: String,
        id: String,
    ) {
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
    pub(super) fn server_call(&mut self, now: Millis, tag: u64, request: StoreRequest) {
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
    pub(super) fn server_write_done(
        &mut self,
        now: Millis,
        request: StoreRequest,
        outcome: StoreOutcome,
    ) -> Result<Value, CommandError> {
        let (resource, kind, record, previous) = match (request, outcome) {
            (request, StoreOutcome::Failed(e)) => {
                let (code, message) = e.kind.client_error();
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
}
