//! A deployment document (`examples/demo.json`): host settings under `server`, every
//! other top-level key is the engine config. Same split and environment overrides as
//! the native host (`SWITCHBOARD_JWT_SECRET` → `auth.jwt.secret`,
//! `SWITCHBOARD_ADMIN_KEY` → `server.adminKey`), so every host serves the same demo.

use engine::Config;
use serde_json::{json, Map, Value};

/// The JWT secret of the demo config; hosts warn loudly while it is in use.
pub const DEV_JWT_SECRET: &str = "dev-secret";
/// The admin key of the demo config.
pub const DEV_ADMIN_KEY: &str = "dev-admin";

/// Split and validate a deployment document. `env_json` is an object of environment
/// variables (only the two above are read). Returns
/// `{"config": <engine config, normalized>, "server": {...}, "warnings": [...]}` or every
/// config problem with its field path.
pub fn load(doc_json: &str, env_json: &str) -> Result<String, String> {
    let mut doc: Value =
        serde_json::from_str(doc_json).map_err(|e| format!("deployment is not JSON: {e}"))?;
    let env: Value = serde_json::from_str(env_json).unwrap_or(Value::Null);
    let var = |name: &str| {
        env.get(name)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let Value::Object(root) = &mut doc else {
        return Err("deployment must be a JSON object".into());
    };
    let mut server = match root.remove("server") {
        Some(Value::Object(m)) => m,
        None => Map::new(),
        Some(_) => return Err("server: must be an object".into()),
    };
    if let Some(secret) = var("SWITCHBOARD_JWT_SECRET") {
        let auth = root.entry("auth").or_insert_with(|| json!({}));
        if let Value::Object(auth) = auth {
            let jwt = auth.entry("jwt").or_insert_with(|| json!({}));
            if let Value::Object(jwt) = jwt {
                jwt.insert("secret".into(), Value::String(secret));
            }
        }
    }
    if let Some(key) = var("SWITCHBOARD_ADMIN_KEY") {
        server.insert("adminKey".into(), Value::String(key));
    }
    let config = Config::from_value(doc).map_err(|e| e.to_string())?;
    let mut warnings = Vec::new();
    if config
        .auth
        .jwt
        .as_ref()
        .and_then(|j| j.secret.as_deref())
        .is_some_and(|s| s == DEV_JWT_SECRET)
    {
        warnings.push(format!(
            "auth.jwt.secret is the public demo secret `{DEV_JWT_SECRET}`: anyone can mint tokens. \
             Set SWITCHBOARD_JWT_SECRET for anything but local testing."
        ));
    }
    if server.get("adminKey").and_then(Value::as_str) == Some(DEV_ADMIN_KEY) {
        warnings.push(format!(
            "server.adminKey is the demo key `{DEV_ADMIN_KEY}`; set SWITCHBOARD_ADMIN_KEY"
        ));
    }
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
