//! Test fixtures every SQL store runs against the memory store: records of every kind of
//! value, the filters whose pages must not change when pushed into SQL, and the paging
//! comparison. Used by the SQLite unit tests and the PostgreSQL integration tests
//! (`tests/postgres_store.rs` includes this file).

use engine::store::RecordStore;
use engine::{StoreOutcome, StoreRequest};
use serde_json::{json, Value};

/// Page through `filter` on both stores: identical pages and cursors (`same` compares
/// two outcomes).
pub fn same_pages_by(
    a: &mut dyn RecordStore,
    b: &mut dyn RecordStore,
    resource: &str,
    filter: &Value,
    limit: usize,
    same: &dyn Fn(&StoreOutcome, &StoreOutcome) -> bool,
) {
    let mut cursor = None;
    let mut pages = 0;
    loop {
        let req = StoreRequest::List {
            resource: resource.into(),
            filter: filter.clone(),
            limit,
            cursor: cursor.clone(),
        };
        let x = a.apply(&req);
        let y = b.apply(&req);
        assert!(same(&x, &y), "filter {filter}, page {pages}:\n{x:?}\n{y:?}");
        pages += 1;
        match x {
            StoreOutcome::Page {
                cursor: Some(c), ..
            } => cursor = Some(c),
            _ => break,
        }
    }
}

/// [`same_pages_by`] with equal outcomes.
pub fn same_pages(
    a: &mut dyn RecordStore,
    b: &mut dyn RecordStore,
    resource: &str,
    filter: &Value,
    limit: usize,
) {
    same_pages_by(a, b, resource, filter, limit, &|x, y| x == y);
}

/// The values the equivalence records hold and the filters compare with.
pub fn values() -> Vec<Value> {
    vec![
        json!("a"),
        json!("b"),
        json!("é"),
        json!("10"),
        json!(1),
        json!(1.0),
        json!(2.5),
        json!(-3),
        json!(9007199254740993u64),
        json!(1e16),
        json!(true),
        json!(false),
        json!(null),
        json!([1, "a"]),
        json!({"k": 1}),
    ]
}

/// 60 records mixing [`values`] at `v` (missing in one of four), `m.w` and an odd
/// field name.
pub fn records() -> Vec<Value> {
    let values = values();
    (0..60)
        .map(|i| {
            let v = values[i % values.len()].clone();
            let w = values[(i * 7 + 3) % values.len()].clone();
            let mut r = json!({"id": format!("k{i:03}"), "v": v, "m": {"w": w}, "we\"ird": i});
            if i % 4 == 0 {
                r.as_object_mut().unwrap().remove("v");
            }
            r
        })
        .collect()
}

/// Every operator, every kind of value, numbers written as integers and floats, nested
/// paths, odd names.
pub fn filters() -> Vec<Value> {
    let mut filters = vec![
        json!({"m": {"w": 1}}),
        json!({"we\"ird": {"$gte": 10}}),
        json!({"$and": [{"v": {"$exists": true}}, {"m.w": {"$ne": "a"}}]}),
        json!({"v": {"$exists": false}}),
        json!({"m.k": {"$exists": false}}),
        json!({"v.0": {"$exists": false}}),
        json!({"v": {"$in": ["a", 1, 2.5, null]}}),
        json!({"v": {"$in": []}}),
        json!({"v": {"$gt": 9007199254740992u64}}),
        json!({"v": 9007199254740993u64}),
        json!({"v": 10000000000000000u64}),
    ];
    for v in &values() {
        for op in ["$eq", "$ne", "$gt", "$gte", "$lt", "$lte"] {
            filters.push(json!({"v": {op: v}}));
            filters.push(json!({"m.w": {op: v}}));
        }
        filters.push(json!({"v": v}));
    }
    filters
}
