//! One source of truth per vocabulary: the engine's lists, the protocol schemas and the
//! conformance coverage list must name the same things. A word added on one side only
//! fails here, with what is missing where.

use std::collections::BTreeSet;
use std::path::Path;

use conformance::coverage::FEATURES;
use serde_json::Value;

fn client_schema() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../protocol-spec/schemas/client-message.schema.json");
    let text = std::fs::read_to_string(&path).expect("client-message.schema.json");
    serde_json::from_str(&text).expect("valid JSON")
}

/// Every `propertyNames.enum` list in the schema holding `$`-operators.
fn schema_operator_lists(v: &Value, out: &mut Vec<BTreeSet<String>>) {
    match v {
        Value::Object(o) => {
            if let Some(list) = o
                .get("propertyNames")
                .and_then(|p| p.get("enum"))
                .and_then(Value::as_array)
            {
                let names: BTreeSet<String> = list
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect();
                if names.iter().all(|n| n.starts_with('$')) && !names.is_empty() {
                    out.push(names);
                }
            }
            o.values().for_each(|c| schema_operator_lists(c, out));
        }
        Value::Array(a) => a.iter().for_each(|c| schema_operator_lists(c, out)),
        _ => {}
    }
}

#[test]
fn the_client_schema_lists_exactly_the_engines_filter_operators() {
    let engine: BTreeSet<String> = engine::filter::OPERATORS
        .iter()
        .map(|s| s.to_string())
        .collect();
    let mut lists = Vec::new();
    schema_operator_lists(&client_schema(), &mut lists);
    assert!(
        !lists.is_empty(),
        "no operator list found in the client schema"
    );
    for list in lists {
        assert_eq!(
            list, engine,
            "client-message.schema.json vs engine::filter::OPERATORS"
        );
    }
}

#[test]
fn every_filter_operator_is_a_coverage_item() {
    let listed: BTreeSet<&str> = FEATURES.iter().map(|(id, _)| *id).collect();
    let missing: Vec<String> = engine::filter::OPERATORS
        .iter()
        .map(|op| format!("filter:{op}"))
        .filter(|id| !listed.contains(id.as_str()))
        .collect();
    assert!(missing.is_empty(), "not in coverage::FEATURES: {missing:?}");
    let extra: Vec<&str> = listed
        .iter()
        .filter(|id| {
            id.strip_prefix("filter:$").is_some_and(|op| {
                op != "and" && !engine::filter::OPERATORS.contains(&&*format!("${op}"))
            })
        })
        .copied()
        .collect();
    assert!(
        extra.is_empty(),
        "coverage items for operators the engine lacks: {extra:?}"
    );
}

#[test]
fn an_unknown_operator_error_names_every_operator() {
    let err = engine::filter::Filter::parse(&serde_json::json!({"a": {"$nope": 1}}))
        .expect_err("unknown operator");
    let text = err.to_string();
    for op in engine::filter::OPERATORS {
        assert!(text.contains(op), "{text} lacks {op}");
    }
}
