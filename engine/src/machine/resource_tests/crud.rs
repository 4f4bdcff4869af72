//! Client CRUD: listing with cursors, configured resources only, validation, ids and timestamps.

use super::*;

#[test]
fn list_cursor_advances_and_terminates() {
    let mut r = R::new(json!({"messages": {"maxListLimit": 2}}));
    r.seed(
        "messages",
        (0..5).map(|i| json!({"id": format!("m{i}")})).collect(),
    );
    r.open(1, "");
    let mut seen = vec![];
    let mut cursor = Value::Null;
    for _ in 0..10 {
        let mut msg = json!({"type":"list","resource":"messages","limit":50});
        if !cursor.is_null() {
            msg["cursor"] = cursor.clone();
        }
        let f = r.ask(1, msg);
        assert!(f["data"].as_array().unwrap().len() <= 2, "limit is clamped");
        seen.extend(
            f["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["id"].as_str().unwrap().to_string()),
        );
        cursor = f["cursor"].clone();
        if cursor.is_null() {
            break;
        }
    }
    assert_eq!(seen, vec!["m0", "m1", "m2", "m3", "m4"]);
    let f = r.ask(
        1,
        json!({"type":"list","resource":"messages","cursor":"@@bad"}),
    );
    assert_eq!(f["code"], "INVALID_MESSAGE");
}

#[test]
fn crud_only_on_configured_resources() {
    let mut r = seeded();
    r.seed("internal", vec![json!({"id":"secret"})]);
    for msg in [
        json!({"type":"get","resource":"internal","id":"secret"}),
        json!({"type":"list","resource":"internal"}),
        json!({"type":"insert","resource":"internal","data":{}}),
        json!({"type":"update","resource":"internal","id":"secret","data":{}}),
        json!({"type":"delete","resource":"internal","id":"secret"}),
        json!({"type":"subscribe","resource":"internal"}),
    ] {
        assert_eq!(r.ask(1, msg.clone())["code"], "RESOURCE_NOT_FOUND", "{msg}");
    }
    assert_eq!(r.store.len("internal"), 1);
}

#[test]
#[cfg(feature = "json-schema")]
fn validation_errors_name_fields_and_missing_records_are_not_found() {
    let mut r = seeded();
    let f = r.ask(1, json!({"type":"insert","resource":"messages","data":{"content":5,"author":"a"},"requestId":2}));
    assert_eq!(f["code"], "VALIDATION_ERROR");
    let m = f["message"].as_str().unwrap();
    assert!(m.contains("content:") && m.contains("channel"), "{m}");
    let f = r.ask(
        1,
        json!({"type":"update","resource":"messages","id":"nope","data":{"content":"x"}}),
    );
    assert_eq!(f["code"], "NOT_FOUND");
    let f = r.ask(
        1,
        json!({"type":"update","resource":"messages","id":"nope","data":{"content":1}}),
    );
    assert_eq!(f["code"], "VALIDATION_ERROR");
    let f = r.ask(
        1,
        json!({"type":"delete","resource":"messages","id":"nope"}),
    );
    assert_eq!(f["code"], "NOT_FOUND");
    let f = r.ask(1, json!({"type":"insert","resource":"messages","data":{"id":"m1","content":"a","author":"b","channel":"c"}}));
    assert_eq!(f["type"], "inserted");
    let f = r.ask(1, json!({"type":"insert","resource":"messages","data":{"id":"m1","content":"a","author":"b","channel":"c"}}));
    assert_eq!(f["code"], "VALIDATION_ERROR");
    assert!(!f["message"].as_str().unwrap().contains("exists`"));
}

#[test]
#[cfg(not(feature = "json-schema"))]
fn a_build_without_json_schema_refuses_schemas_with_a_config_error() {
    let err =
        Config::from_value(json!({"resources":{"a":{"schema": {"type": "object"}}}})).unwrap_err();
    assert_eq!(err.issues[0].path, "resources.a.schema");
    assert_eq!(err.issues[0].problem, crate::validation::UNSUPPORTED);
    assert!(Config::from_value(json!({"resources":{"a":{}}})).is_ok());
}

#[test]
fn insert_and_update_ids_and_timestamps_are_deterministic() {
    let mut r = R::new(json!({"m": {}}));
    r.open(1, "");
    let f = r.ask(
        1,
        json!({"type":"insert","resource":"m","data":{"a":1,"createdAt":"forged"}}),
    );
    let id = f["data"]["id"].as_str().unwrap().to_string();
    assert_eq!(f["data"]["createdAt"], "2023-11-14T22:13:20.000Z");
    let mut r2 = R::new(json!({"m": {}}));
    r2.open(1, "");
    let f2 = r2.ask(1, json!({"type":"insert","resource":"m","data":{"a":1}}));
    assert_eq!(f2["data"]["id"], id.as_str(), "same seed, same id");
    let f = r.ask(
        1,
        json!({"type":"update","resource":"m","id":id,"data":{"a":2}}),
    );
    assert_eq!(f["data"]["a"], 2);
    assert_eq!(f["data"]["createdAt"], "2023-11-14T22:13:20.000Z");
}
