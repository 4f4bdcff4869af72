//! What leaves the engine of a record: the resource's `read` guard ([`ReadCheck`])
//! and protected-field stripping, for replies and events alike.

use std::sync::Arc;

use rustc_hash::FxHashMap;
use serde_json::{Map, Value};

use super::compile::CompiledResource;
use crate::connection::UserView;
use crate::guard::{Guard, GuardAction, GuardValue, GuardValues, ParsedOutcome};
use crate::machine::Engine;

impl Engine {
    /// Whether the connection in `slot` may read `record` (the resource's `read` guard).
    pub(in crate::machine) fn can_read(
        &mut self,
        slot: usize,
        cr: &CompiledResource,
        record: &Value,
    ) -> bool {
        let Some(g) = cr.guards.get(&GuardAction::Read) else {
            return true;
        };
        let user = self.user_guard_value(slot);
        let read = ReadCheck::new(g, record).decide(&user);
        self.count_read(read)
    }

    /// A `read` decision as allowed or not, counting an evaluation error.
    pub(super) fn count_read(&mut self, read: Read) -> bool {
        match read {
            Read::Allow => true,
            Read::Deny => false,
            Read::Error => {
                self.metrics.guard_errors += 1;
                false
            }
        }
    }

    /// What the writer sees of the record it wrote: stripped, or only its id if its
    /// `read` guard does not let it read the result.
    pub(super) fn reply_view(&mut self, slot: usize, resource: &str, record: &Value) -> Value {
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
}

/// What a `read` guard decided for one record and one user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Read {
    Allow,
    Deny,
    /// The evaluation failed: denied, and counted in `guard_errors`.
    Error,
}

/// One record to check with a `read` guard, converted for CEL once, for any number of
/// users. For a given record the guard's outcome depends only on the user (its other
/// variables are the record, its id and `null`s), so [`ReadCheck::decide_for`]
/// remembers it per distinct user view.
pub(super) struct ReadCheck<'a> {
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
    pub(super) fn new(guard: &'a Guard, record: &'a Value) -> Self {
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
        match self.guard.evaluate_parsed(&values) {
            Ok(ParsedOutcome::Allow) => Read::Allow,
            Ok(ParsedOutcome::Deny) => Read::Deny,
            Ok(ParsedOutcome::Filter(_, f)) => {
                if f.matches(self.record) {
                    Read::Allow
                } else {
                    Read::Deny
                }
            }
            Err(_) => Read::Error,
        }
    }

    /// The decision for a connection's user view (`None`: anonymous), remembered.
    pub(super) fn decide_for(&mut self, view: Option<&Arc<UserView>>) -> Read {
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

/// A copy of `record` without the protected dotted paths.
pub(super) fn strip_protected(record: &Value, protected: &[String]) -> Value {
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
}
