use serde_json::json;

use super::*;
use crate::compile_count::{self, Counts};
use crate::Engine;

/// Two resource guards and a schema, a message type's guard and schema, a room guard,
/// a channel namespace guard, and JWT plus API-key auth. A build without JSON Schema
/// refuses schemas, so there they are left out.
fn deployment() -> String {
    let mut d = json!({
        "auth": {"jwt": {"secret": "s3"}, "apiKeys": {"k1": {"id": "u1"}}},
        "resources": {"posts": {
            "guards": {"update": "user.id == record.owner", "delete": "user.role == 'admin'"},
            "schema": {"type": "object"}
        }},
        "messages": {"chat": {"guard": "size(payload.text) < 100", "schema": {"type": "object"}}},
        "rooms": {"join": {"guard": "room != 'vip'"}},
        "channels": {"namespaces": [{"pattern": "chat:*", "subscribe": {"guard": "user != null"}}]}
    });
    if !cfg!(feature = "json-schema") {
        d["resources"]["posts"]
            .as_object_mut()
            .unwrap()
            .remove("schema");
        d["messages"]["chat"]
            .as_object_mut()
            .unwrap()
            .remove("schema");
    }
    d.to_string()
}

/// What one compilation of [`deployment`] compiles: five CEL programs, two schemas
/// (none without JSON Schema), one authenticator.
const ONCE: Counts = Counts {
    cel: 5,
    schemas: if cfg!(feature = "json-schema") { 2 } else { 0 },
    auth: 1,
};

#[test]
fn guards_schemas_and_auth_compile_once_per_deployment() {
    compile_count::take();
    let compiled = CompiledConfig::from_json(&deployment()).unwrap();
    assert_eq!(compile_count::take(), ONCE);
    let _engine = Engine::from_compiled(compiled, 7);
    assert_eq!(compile_count::take(), Counts::default());
}

#[test]
fn engine_new_from_a_config_compiles_once() {
    // Parsed without validation: `Engine::new` checks and compiles, in one pass.
    let config: Config = serde_json::from_str(&deployment()).unwrap();
    compile_count::take();
    let _engine = Engine::new(config).unwrap();
    assert_eq!(compile_count::take(), ONCE);
}

#[test]
fn validate_compiles_once() {
    let config: Config = serde_json::from_str(&deployment()).unwrap();
    compile_count::take();
    config.validate().unwrap();
    assert_eq!(compile_count::take(), ONCE);
}

#[test]
fn cloning_a_compiled_config_compiles_nothing() {
    let compiled = CompiledConfig::from_json(&deployment()).unwrap();
    compile_count::take();
    let _a = Engine::from_compiled(compiled.clone(), 1);
    let _b = Engine::from_compiled(compiled, 2);
    assert_eq!(compile_count::take(), Counts::default());
}

#[test]
fn compiling_reports_every_problem_in_field_order() {
    let err = CompiledConfig::from_json(
        r#"{
        "limits": {"maxConnections": 0},
        "resources": {"posts": {"guards": {"read": "(("}, "schema": 3}},
        "messages": {"chat": {"guard": "))"}},
        "channels": {"namespaces": [{"pattern": "a:*", "publish": {"guard": "(("}}]},
        "auth": {"apiKeys": {"": {"id": "u1"}}}
    }"#,
    )
    .unwrap_err();
    let paths: Vec<&str> = err.issues.iter().map(|i| i.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "limits.maxConnections",
            "resources.posts.guards.read",
            "resources.posts.schema",
            "channels.namespaces[0].publish.guard",
            "messages.chat.guard",
            "auth.apiKeys",
        ]
    );
    // `Config::validate` reports the same problems.
    let config: Config = serde_json::from_str(
        r#"{"limits": {"maxConnections": 0}, "resources": {"posts": {"schema": 3}}}"#,
    )
    .unwrap();
    let err = config.validate().unwrap_err();
    assert_eq!(err.issues.len(), 2);
}

#[test]
fn a_compiled_config_keeps_the_config_it_was_compiled_from() {
    let config = Config::from_json(&deployment()).unwrap();
    let compiled = CompiledConfig::compile(config.clone()).unwrap();
    assert_eq!(compiled.config(), &config);
    let engine = Engine::from_compiled(compiled.clone(), 0);
    assert_eq!(engine.config(), &config);
    assert_eq!(compiled.into_config(), config);
}
