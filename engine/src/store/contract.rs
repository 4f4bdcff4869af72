//! The store contract: every [`RecordStore`] must pass [`check`].
//!
//! Call it from a test with a constructor that returns an empty store; it panics with
//! a message naming the broken rule.

use serde_json::{json, Value};

use super::RecordStore;
use crate::hostcall::{StoreErrorKind, StoreOutcome, StoreRequest};

fn ins(resource: &str, record: Value) -> StoreRequest {
    StoreRequest::Insert {
        resource: resource.into(),
        record,
    }
}

fn list(resource: &str, filter: Value, limit: usize, cursor: Option<String>) -> StoreRequest {
    StoreRequest::List {
        resource: resource.into(),
        filter,
        limit,
        cursor,
    }
}

fn expect_kind(outcome: StoreOutcome, kind: StoreErrorKind, rule: &str) {
    match outcome {
        StoreOutcome::Failed(e) if e.kind == kind => {}
        other => panic!("store contract: {rule}: expected {kind:?} failure, got {other:?}"),
    }
}

/// Run every rule of the contract against fresh stores from `make`.
pub fn check<S: RecordStore>(mut make: impl FnMut() -> S) {
    // Insert, get, conflict.
    let mut s = make();
    let rec = json!({"id":"a","n":1,"nested":{"k":"v"},"createdAt":"t","updatedAt":"t"});
    assert_eq!(
        s.apply(&ins("r", rec.clone())),
        StoreOutcome::Inserted(rec.clone()),
        "store contract: insert returns the stored record"
    );
    assert_eq!(
        s.apply(&StoreRequest::Get {
            resource: "r".into(),
            id: "a".into()
        }),
        StoreOutcome::Record(Some(rec.clone())),
        "store contract: get returns what was inserted, unchanged"
    );
    expect_kind(
        s.apply(&ins("r", json!({"id":"a"}))),
        StoreErrorKind::Conflict,
        "insert of an existing id",
    );
    assert_eq!(
        s.apply(&StoreRequest::Get {
            resource: "r".into(),
            id: "zz".into()
        }),
        StoreOutcome::Record(None),
        "store contract: get of a missing id is Record(None)"
    );
    assert_eq!(
        s.apply(&StoreRequest::Get {
            resource: "other".into(),
            id: "a".into()
        }),
        StoreOutcome::Record(None),
        "store contract: resources are separate"
    );

    // Update merges top-level fields and returns before/after.
    let out = s.apply(&StoreRequest::Update {
        resource: "r".into(),
        id: "a".into(),
        patch: json!({"n":2,"extra":true}),
    });
    let StoreOutcome::Updated { record, previous } = out else {
        panic!("store contract: update returns Updated, got {out:?}");
    };
    assert_eq!(
        previous, rec,
        "store contract: update returns the previous record"
    );
    assert_eq!(record["n"], 2, "store contract: update sets fields");
    assert_eq!(record["extra"], true, "store contract: update adds fields");
    assert_eq!(
        record["nested"],
        json!({"k":"v"}),
        "store contract: update keeps other fields"
    );
    assert_eq!(record["id"], "a", "store contract: update keeps the id");
    expect_kind(
        s.apply(&StoreRequest::Update {
            resource: "r".into(),
            id: "nope".into(),
            patch: json!({}),
        }),
        StoreErrorKind::NotFound,
        "update of a missing id",
    );

    // Delete returns the previous record; a second delete is NotFound.
    let out = s.apply(&StoreRequest::Delete {
        resource: "r".into(),
        id: "a".into(),
    });
    assert_eq!(
        out,
        StoreOutcome::Deleted { previous: record },
        "store contract: delete returns the removed record"
    );
    expect_kind(
        s.apply(&StoreRequest::Delete {
            resource: "r".into(),
            id: "a".into(),
        }),
        StoreErrorKind::NotFound,
        "delete of a missing id",
    );

    // List: id order, filter, pagination that terminates and covers everything once.
    let mut s = make();
    for i in (0..25).rev() {
        let r = json!({"id": format!("id{i:02}"), "team": if i % 2 == 0 { "even" } else { "odd" }, "n": i});
        s.apply(&ins("r", r));
    }
    let mut seen = Vec::new();
    let mut cursor = None;
    for round in 0.. {
        assert!(round < 30, "store contract: pagination must terminate");
        let out = s.apply(&list("r", json!({"team":"even"}), 4, cursor.take()));
        let StoreOutcome::Page {
            items,
            cursor: next,
        } = out
        else {
            panic!("store contract: list returns Page, got {out:?}");
        };
        assert!(items.len() <= 4, "store contract: list honours limit");
        seen.extend(
            items
                .iter()
                .map(|r| r["id"].as_str().unwrap_or("").to_string()),
        );
        match next {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    let expected: Vec<String> = (0..25)
        .filter(|i| i % 2 == 0)
        .map(|i| format!("id{i:02}"))
        .collect();
    assert_eq!(
        seen, expected,
        "store contract: pages cover every match once, in id order"
    );
    let out = s.apply(&list("r", json!({"n":{"$gte":20}}), 100, None));
    let StoreOutcome::Page { items, cursor } = out else {
        panic!("store contract: list returns Page");
    };
    assert_eq!(items.len(), 5, "store contract: list applies operators");
    assert_eq!(cursor, None, "store contract: last page has no cursor");
    let out = s.apply(&list("empty", Value::Null, 10, None));
    assert_eq!(
        out,
        StoreOutcome::Page {
            items: vec![],
            cursor: None
        },
        "store contract: listing an empty resource is an empty page"
    );
    expect_kind(
        s.apply(&list("r", Value::Null, 10, Some("%%%not-a-cursor".into()))),
        StoreErrorKind::NotFound,
        "a cursor the store did not issue",
    );
}
