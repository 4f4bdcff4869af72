//! A deployment document (`examples/demo.json`): host settings under `server`, every
//! other top-level key is the engine config. The environment overrides
//! (`SWITCHBOARD_JWT_SECRET` → `auth.jwt.secret`, `SWITCHBOARD_ADMIN_KEY` →
//! `server.adminKey`) and the development-secret warnings are the engine's
//! ([`engine::deployment`]), shared with the native host, so every host serves the same demo.

use engine::deployment::{apply_env, dev_warnings};
use engine::Config;
use serde_json::{json, Value};

/// Split and validate a deployment document. `env_json` is an object of environment
/// variables (only `SWITCHBOARD_JWT_SECRET` and `SWITCHBOARD_ADMIN_KEY` are read, as on
/// the native host: [`engine::deployment`]). Returns
/// `{"config": <engine config, normalized>, "server": {...}, "warnings": [...]}` or every
/// config problem with its field path.
pub fn load(doc_json: &str, env_json: &str) -> Result<String, String> {
    let mut doc: Value =
        serde_json::from_str(doc_json).map_err(|e| format!("deployment is not JSON: {e}"))?;
    let env: Value = serde_json::from_str(env_json).unwrap_or(Value::Null);
    apply_env(&mut doc, |name| {
        env.get(name).and_then(Value::as_str).map(str::to_owned)
    });
    let Value::Object(root) = &mut doc else {
        return Err("deployment must be a JSON object".into());
    };
    let server = match root.remove("server") {
        Some(Value::Object(m)) => m,
        None => serde_json::Map::new(),
        Some(_) => return Err("server: must be an object".into()),
    };
    let config = Config::from_value(doc).map_err(|e| e.to_string())?;
    let warnings = dev_warnings(&config, server.get("adminKey").and_then(Value::as_str));
    let config = serde_json::to_value(&config).map_err(|e| e.to_string())?;
    Ok(json!({ "config": config, "server": server, "warnings": warnings }).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_json_splits_and_env_overrides_apply() {
        let demo = include_str!("../../examples/demo.json");
        let out: Value = serde_json::from_str(&load(demo, "{}").unwrap()).unwrap();
        assert_eq!(out["server"]["adminKey"], "dev-admin");
        assert_eq!(out["config"]["auth"]["jwt"]["secret"], "dev-secret");
        assert_eq!(out["warnings"].as_array().unwrap().len(), 2);
        // The normalized config is accepted by the engine as is.
        Config::from_value(out["config"].clone()).unwrap();

        let env = r#"{"SWITCHBOARD_JWT_SECRET":"s3cret","SWITCHBOARD_ADMIN_KEY":"k"}"#;
        let out: Value = serde_json::from_str(&load(demo, env).unwrap()).unwrap();
        assert_eq!(out["config"]["auth"]["jwt"]["secret"], "s3cret");
        assert_eq!(out["server"]["adminKey"], "k");
        assert!(out["warnings"].as_array().unwrap().is_empty());
    }

    #[test]
    fn problems_carry_field_paths() {
        let err = load(r#"{"limits":{"maxConnections":"x"}}"#, "{}").unwrap_err();
        assert!(err.starts_with("limits.maxConnections"), "{err}");
        assert!(load("[]", "{}").is_err());
    }
}
