//! Change events: a stored change fanned out to the subscribers that match it and may
//! read it (and to the other nodes of a cluster), and the `data` an event carries.

use std::sync::Arc;

use serde_json::{Map, Value};

use super::visibility::{strip_protected, ReadCheck};
use crate::config::ChangeKind;
use crate::guard::GuardAction;
use crate::machine::Engine;
use crate::protocol::codec::Outbound;
use crate::protocol::ServerMessage;
use crate::timestamp::iso8601;
use crate::types::{ConnId, Millis};

impl Engine {
    /// Fan a local change out to matching subscribers that may read it, and to the other
    /// nodes of a cluster. Returns the number of local recipients, or `None` when the
    /// resource does not broadcast this kind of change.
    pub(in crate::machine) fn fanout_change(
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
    pub(in crate::machine) fn fanout_change_local(
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
