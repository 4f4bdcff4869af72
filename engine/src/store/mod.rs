//! Record stores: what a host runs to answer [`StoreRequest`] host calls.
//!
//! The engine never touches storage; hosts do. [`RecordStore`] is the synchronous
//! contract every store implements (hosts wrap it in whatever async machinery they
//! have), [`MemoryStore`] is the pure reference implementation used by tests,
//! conformance vectors and the JS hosts' memory mode, and [`contract`] is the test
//! suite every store must pass (the native SQLite store runs it too).
//!
//! Semantics shared by all stores:
//! - records are JSON objects with a string `id`, unique per resource;
//! - `list` returns records in ascending `id` order (byte order), filtered with the
//!   engine's [`Filter`](crate::filter::Filter), `limit` at a time; the cursor is opaque
//!   (base64url of the last id) and a page with fewer than `limit` records (or exactly
//!   the last records) ends the listing with `cursor: None`;
//! - one `list` examines at most [`MAX_LIST_SCAN`] records after its cursor: when the
//!   budget runs out before the page is full, the page ends early (possibly empty) with
//!   a cursor after the last record examined, so one request's work is bounded however
//!   selective its filter (clients keep paging while `cursor` is not null);
//! - `update` merges the patch's top-level fields; `insert` of an existing id is a
//!   `Conflict`; `get` of a missing id is `Record(None)`; `update`/`delete` of a missing
//!   id are `NotFound`.

pub mod contract;

use std::collections::BTreeMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{Map, Value};

use crate::filter::Filter;
use crate::hostcall::{StoreError, StoreErrorKind, StoreOutcome, StoreRequest};

/// A synchronous record store.
pub trait RecordStore {
    /// Execute one request.
    fn apply(&mut self, request: &StoreRequest) -> StoreOutcome;
}

/// Encode a list cursor (the last id of a page).
pub fn encode_cursor(last_id: &str) -> String {
    URL_SAFE_NO_PAD.encode(last_id.as_bytes())
}

/// Decode a list cursor; `None` if it is not one of ours.
pub fn decode_cursor(cursor: &str) -> Option<String> {
    let bytes = URL_SAFE_NO_PAD.decode(cursor.as_bytes()).ok()?;
    String::from_utf8(bytes).ok()
}

/// Build a failure outcome.
pub fn failed(kind: StoreErrorKind, message: impl Into<String>) -> StoreOutcome {
    StoreOutcome::Failed(StoreError {
        kind,
        message: message.into(),
    })
}

/// Merge `patch`'s top-level fields into `record`.
pub fn merge_patch(record: &Value, patch: &Value) -> Value {
    let mut out = record.as_object().cloned().unwrap_or_default();
    if let Some(p) = patch.as_object() {
        for (k, v) in p {
            out.insert(k.clone(), v.clone());
        }
    }
    Value::Object(out)
}

/// Most records one `list` examines (see the module docs): bounds the work one request
/// can cause, so an expensive filter cannot monopolise a store.
pub const MAX_LIST_SCAN: usize = 10_000;

/// Pick a page out of records sorted by id: those after `cursor` that match `filter`,
/// examining at most [`MAX_LIST_SCAN`] records after the cursor.
pub fn page<'a>(
    sorted: impl Iterator<Item = (&'a String, &'a Value)>,
    filter: &Value,
    limit: usize,
    cursor: Option<&str>,
) -> StoreOutcome {
    let filter = match Filter::parse(filter) {
        Ok(f) => f,
        Err(e) => return failed(StoreErrorKind::Internal, format!("bad filter: {e}")),
    };
    let after = match cursor {
        None => None,
        Some(c) => match decode_cursor(c) {
            Some(id) => Some(id),
            None => {
                return failed(StoreErrorKind::NotFound, "the cursor is not valid");
            }
        },
    };
    let mut items = Vec::with_capacity(limit.min(1024));
    let mut more = false;
    let mut scanned = 0;
    // The last id examined when the scan budget ran out (the page continues after it).
    let mut budget_end: Option<&str> = None;
    for (id, rec) in sorted {
        if after.as_deref().is_some_and(|a| id.as_str() <= a) {
            continue;
        }
        if scanned == MAX_LIST_SCAN {
            more = true;
            break;
        }
        scanned += 1;
        budget_end = Some(id.as_str());
        if !filter.matches(rec) {
            continue;
        }
        if items.len() == limit {
            budget_end = None;
            more = true;
            break;
        }
        items.push(rec.clone());
    }
    let cursor = match (more, budget_end) {
        (false, _) => None,
        // A full page: continue after its last record.
        (true, None) => items
            .last()
            .and_then(|r| r.get("id"))
            .and_then(Value::as_str)
            .map(encode_cursor),
        // The budget ran out: continue after the last record examined.
        (true, Some(last)) => Some(encode_cursor(last)),
    };
    StoreOutcome::Page { items, cursor }
}

/// The pure in-memory reference store.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MemoryStore {
    resources: BTreeMap<String, BTreeMap<String, Value>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Insert or replace records directly (seeding).
    pub fn seed(&mut self, resource: &str, records: impl IntoIterator<Item = Value>) {
        let table = self.resources.entry(resource.to_string()).or_default();
        for r in records {
            if let Some(id) = r.get("id").and_then(Value::as_str) {
                table.insert(id.to_string(), r.clone());
            }
        }
    }

    /// Number of records in a resource.
    pub fn len(&self, resource: &str) -> usize {
        self.resources.get(resource).map_or(0, BTreeMap::len)
    }

    /// Whether a resource has no records.
    pub fn is_empty(&self, resource: &str) -> bool {
        self.len(resource) == 0
    }
}

fn record_id(record: &Value) -> Option<&str> {
    record
        .get("id")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

impl RecordStore for MemoryStore {
    fn apply(&mut self, request: &StoreRequest) -> StoreOutcome {
        match request {
            StoreRequest::Get { resource, id } => StoreOutcome::Record(
                self.resources
                    .get(resource)
                    .and_then(|t| t.get(id))
                    .cloned(),
            ),
            StoreRequest::List {
                resource,
                filter,
                limit,
                cursor,
            } => match self.resources.get(resource) {
                // Start at the cursor (a range, not a scan from the first record).
                Some(t) => match cursor.as_deref().and_then(decode_cursor) {
                    Some(after) => {
                        use std::ops::Bound;
                        let range =
                            t.range::<String, _>((Bound::Excluded(after), Bound::Unbounded));
                        page(range, filter, *limit, cursor.as_deref())
                    }
                    None => page(t.iter(), filter, *limit, cursor.as_deref()),
                },
                None => page(std::iter::empty(), filter, *limit, cursor.as_deref()),
            },
            StoreRequest::Insert { resource, record } => {
                let Some(id) = record_id(record) else {
                    return failed(StoreErrorKind::Internal, "record has no string id");
                };
                let table = self.resources.entry(resource.clone()).or_default();
                if table.contains_key(id) {
                    return failed(StoreErrorKind::Conflict, format!("id `{id}` exists"));
                }
                table.insert(id.to_string(), record.clone());
                StoreOutcome::Inserted(record.clone())
            }
            StoreRequest::Update {
                resource,
                id,
                patch,
            } => {
                let Some(previous) = self.resources.get(resource).and_then(|t| t.get(id)) else {
                    return failed(StoreErrorKind::NotFound, format!("no record `{id}`"));
                };
                let previous = previous.clone();
                let mut record = merge_patch(&previous, patch);
                if let Value::Object(m) = &mut record {
                    m.insert("id".into(), Value::String(id.clone()));
                }
                self.resources
                    .entry(resource.clone())
                    .or_default()
                    .insert(id.clone(), record.clone());
                StoreOutcome::Updated { record, previous }
            }
            StoreRequest::Delete { resource, id } => {
                match self.resources.get_mut(resource).and_then(|t| t.remove(id)) {
                    Some(previous) => StoreOutcome::Deleted { previous },
                    None => failed(StoreErrorKind::NotFound, format!("no record `{id}`")),
                }
            }
        }
    }
}

/// An empty JSON object.
pub fn empty_object() -> Value {
    Value::Object(Map::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_store_passes_the_contract() {
        contract::check(MemoryStore::new);
    }

    /// One `list` examines at most MAX_LIST_SCAN records: a filter that matches nothing
    /// answers an empty page with a cursor after the last record examined, and paging
    /// on reaches the matches further on; the listing still ends with no cursor.
    #[test]
    fn a_selective_list_is_bounded_and_pages_on() {
        let mut store = MemoryStore::new();
        let n = MAX_LIST_SCAN * 2 + 5;
        store.seed(
            "r",
            (0..n).map(|i| serde_json::json!({"id": format!("k{i:06}"), "hit": i == n - 1})),
        );
        let list = |store: &mut MemoryStore, cursor: Option<String>| match store.apply(
            &StoreRequest::List {
                resource: "r".into(),
                filter: serde_json::json!({"hit": true}),
                limit: 10,
                cursor,
            },
        ) {
            StoreOutcome::Page { items, cursor } => (items, cursor),
            other => panic!("{other:?}"),
        };
        let (items, cursor) = list(&mut store, None);
        assert!(items.is_empty());
        assert_eq!(
            cursor.as_deref().and_then(decode_cursor).as_deref(),
            Some(format!("k{:06}", MAX_LIST_SCAN - 1).as_str())
        );
        let (items, cursor) = list(&mut store, cursor);
        assert!(items.is_empty() && cursor.is_some());
        let (items, cursor) = list(&mut store, cursor);
        assert_eq!(items.len(), 1);
        assert_eq!(cursor, None);
    }

    #[test]
    fn cursor_round_trip() {
        assert_eq!(
            decode_cursor(&encode_cursor("a/b é")).as_deref(),
            Some("a/b é")
        );
        assert_eq!(decode_cursor("!!"), None);
    }
}
