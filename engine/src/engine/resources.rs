//! Resource requests (get/list/insert/update/delete) as host calls, their completions,
//! and change events fanned out to subscribers.

use serde_json::{Map, Value};

use super::{Action, Engine};
use crate::config::{ChangeKind, ResourceConfig};
use crate::error::ErrorCode;
use crate::filter::Filter;
use crate::hostcall::{
    HostRequest, HostResult, PendingCall, StoreErrorKind, StoreOutcome, StoreRequest,
};
use crate::protocol::codec::Outbound;
use crate::protocol::ServerMessage;
use crate::timers::TimerKey;
use crate::timestamp::iso8601;
use crate::types::{Millis, OpId};

type Rid = Option<Value>;

impl Engine {
    /// The resource's config if this connection may use it.
    pub(super) fn resource_access(
        &self,
        slot: usize,
        resource: &str,
    ) -> Result<ResourceConfig, (ErrorCode, String)> {
        let Some(rc) = self.config.resources.get(resource) else {
            let shown = if resource.len() > 128 {
                &resource[..resource.floor_char_boundary_compat(128)]
            } else {
                resource
            };
            return Err((
                ErrorCode::ResourceNotFound,
                format!("Resource \"{shown}\" is not configured for WebSocket access"),
            ));
        };
        self.role_allowed(slot, &rc.auth, &format!("use resource `{resource}`"))?;
        Ok(rc.clone())
    }

    /// Start a storage call for `slot`, enforcing the pending-call bounds.
    fn call_store(&mut self, now: Millis, slot: usize, request: StoreRequest, rid: Rid) {
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
        self.conns[slot].pending += 1;
        self.pending.insert(
            op,
            PendingCall {
                conn: Some(conn),
                request_id: rid,
                deadline,
                request: request.clone(),
            },
        );
        self.metrics.pending_calls = self.pending.len() as u64;
        self.timers
            .reschedule(TimerKey::Op(op), None, Some(deadline));
        self.actions.push_back(Action::Call {
            op,
            conn: Some(conn),
            deadline,
            request: HostRequest::Store(request),
        });
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
        self.call_store(now, slot, StoreRequest::Get { resource, id }, rid);
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
        let filter = filter.unwrap_or(Value::Null);
        if let Err(e) = Filter::parse(&filter) {
            return self.send_error(slot, ErrorCode::InvalidMessage, e.0, rid);
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
        self.call_store(
            now,
            slot,
            StoreRequest::List {
                resource,
                filter,
                limit,
                cursor,
            },
            rid,
        );
    }

    pub(super) fn crud_insert(
        &mut self,
        now: Millis,
        slot: usize,
        resource: String,
        mut data: Map<String, Value>,
        rid: Rid,
    ) {
        if let Err((code, m)) = self.resource_access(slot, &resource) {
            return self.send_error(slot, code, m, rid);
        }
        let id = match data.get("id") {
            None => Value::String(self.random_id(20)),
            Some(Value::String(s)) if !s.is_empty() && s.len() <= 256 => Value::String(s.clone()),
            Some(_) => {
                return self.send_error(
                    slot,
                    ErrorCode::ValidationError,
                    "id: must be a non-empty string of at most 256 characters",
                    rid,
                )
            }
        };
        let ts = Value::String(iso8601(now));
        let mut record = Map::with_capacity(data.len() + 3);
        record.insert("id".into(), id);
        data.remove("id");
        data.remove("createdAt");
        data.remove("updatedAt");
        record.extend(data);
        record.insert("createdAt".into(), ts.clone());
        record.insert("updatedAt".into(), ts);
        self.call_store(
            now,
            slot,
            StoreRequest::Insert {
                resource,
                record: Value::Object(record),
            },
            rid,
        );
    }

    pub(super) fn crud_update(
        &mut self,
        now: Millis,
        slot: usize,
        resource: String,
        id: String,
        mut data: Map<String, Value>,
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
        match data.remove("id") {
            None => {}
            Some(Value::String(s)) if s == id => {}
            Some(_) => {
                return self.send_error(
                    slot,
                    ErrorCode::ValidationError,
                    "id: a record's id cannot be changed",
                    rid,
                )
            }
        }
        data.remove("createdAt");
        data.insert("updatedAt".into(), Value::String(iso8601(now)));
        self.call_store(
            now,
            slot,
            StoreRequest::Update {
                resource,
                id,
                patch: Value::Object(data),
            },
            rid,
        );
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
        self.call_store(now, slot, StoreRequest::Delete { resource, id }, rid);
    }

    /// A host call finished.
    pub(super) fn completed(&mut self, now: Millis, op: OpId, result: HostResult) {
        let Some(call) = self.pending.remove(&op) else {
            self.metrics.late_completions += 1;
            return;
        };
        self.metrics.pending_calls = self.pending.len() as u64;
        self.timers
            .reschedule(TimerKey::Op(op), Some(call.deadline), None);
        let slot = call.conn.and_then(|c| self.by_conn.get(&c).copied());
        if let Some(s) = slot {
            self.conns[s].pending = self.conns[s].pending.saturating_sub(1);
        }
        let HostResult::Store(outcome) = result;
        let rid = call.request_id;
        let reply_to = slot.filter(|s| !self.conns[*s].closing);
        let protected = |e: &Engine, r: &str| {
            e.config
                .resources
                .get(r)
                .map(|rc| rc.protected.clone())
                .unwrap_or_default()
        };
        match (call.request, outcome) {
            (_, StoreOutcome::Failed(err)) => {
                if let Some(s) = reply_to {
                    let (code, msg) = match err.kind {
                        StoreErrorKind::NotFound => {
                            (ErrorCode::NotFound, "Record not found".to_string())
                        }
                        StoreErrorKind::Conflict => (
                            ErrorCode::ValidationError,
                            "id: a record with this id already exists".to_string(),
                        ),
                        StoreErrorKind::Unavailable => (
                            ErrorCode::Unavailable,
                            "storage is unavailable; retry later".to_string(),
                        ),
                        StoreErrorKind::Internal => (
                            ErrorCode::InternalError,
                            "the storage operation failed".to_string(),
                        ),
                    };
                    self.send_error(s, code, msg, rid);
                }
            }
            (StoreRequest::Get { resource, id }, StoreOutcome::Record(rec)) => {
                if let Some(s) = reply_to {
                    match rec {
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
            }
            (StoreRequest::List { resource, .. }, StoreOutcome::Page { items, cursor }) => {
                if let Some(s) = reply_to {
                    let p = protected(self, &resource);
                    let data = Value::Array(items.iter().map(|r| strip_protected(r, &p)).collect());
                    self.send(
                        s,
                        &ServerMessage::Data {
                            resource,
                            data,
                            cursor: Some(cursor.map_or(Value::Null, Value::String)),
                            request_id: rid,
                        },
                    );
                }
            }
            (StoreRequest::Insert { resource, .. }, StoreOutcome::Inserted(record)) => {
                if let Some(s) = reply_to {
                    let data = strip_protected(&record, &protected(self, &resource));
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
                    let data = strip_protected(&record, &protected(self, &resource));
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
                // The host answered a different kind of call: a host bug, never the client's.
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
    pub(super) fn call_timed_out(&mut self, op: OpId) {
        let Some(call) = self.pending.remove(&op) else {
            return;
        };
        self.metrics.pending_calls = self.pending.len() as u64;
        self.metrics.timed_out_calls += 1;
        let slot = call.conn.and_then(|c| self.by_conn.get(&c).copied());
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

    /// Fan a change out to matching subscribers. Returns the number of recipients, or
    /// `None` when the resource does not broadcast this kind of change.
    pub(super) fn fanout_change(
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
        let mut recipients = std::mem::take(&mut self.scratch);
        recipients.clear();
        let max_slot = self.conns.capacity();
        self.hub
            .change_recipients(resource, kind, record, previous, max_slot, &mut recipients);
        let n = if recipients.is_empty() {
            0
        } else {
            let data = event_data(kind, record, previous, &protected);
            let msg = ServerMessage::Event {
                event: kind,
                resource: resource.to_string(),
                data,
                timestamp: iso8601(now),
            };
            self.fanout(&recipients, Outbound::Message(&msg))
        };
        self.scratch = recipients;
        Some(n)
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

fn clip(s: &str) -> String {
    if s.len() <= 128 {
        s.to_string()
    } else {
        format!("{}…", &s[..s.floor_char_boundary_compat(128)])
    }
}

/// `str::floor_char_boundary` is not stable on our MSRV.
trait FloorCharBoundary {
    fn floor_char_boundary_compat(&self, i: usize) -> usize;
}

impl FloorCharBoundary for str {
    fn floor_char_boundary_compat(&self, i: usize) -> usize {
        let mut end = i.min(self.len());
        while !self.is_char_boundary(end) {
            end -= 1;
        }
        end
    }
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
