//! A deployment document (`examples/demo.toml` / `examples/demo.json`): host settings
//! under `server`, every other top-level key is the engine [`Config`]. The parts every
//! host shares live here so that they cannot drift: the environment overrides of the two
//! secrets, the development values of the demo and the warnings about them.
//!
//! ```
//! use serde_json::json;
//! use engine::deployment::{apply_env, ENV_ADMIN_KEY, ENV_JWT_SECRET};
//! let mut doc = json!({"auth": {"jwt": {"secret": "dev-secret"}}});
//! apply_env(&mut doc, |k| match k {
//!     ENV_JWT_SECRET => Some("s3cret".into()),
//!     ENV_ADMIN_KEY => Some("k".into()),
//!     _ => None,
//! });
//! assert_eq!(doc, json!({"auth": {"jwt": {"secret": "s3cret"}}, "server": {"adminKey": "k"}}));
//! ```

use serde_json::{Map, Value};

use crate::Config;

/// The JWT secret of the demo config; a server using it warns loudly.
pub const DEV_JWT_SECRET: &str = "dev-secret";

/// The admin key of the demo config; a server using it warns.
pub const DEV_ADMIN_KEY: &str = "dev-admin";

/// Environment variable overriding `auth.jwt.secret`.
pub const ENV_JWT_SECRET: &str = "SWITCHBOARD_JWT_SECRET";

/// Environment variable overriding `server.adminKey`.
pub const ENV_ADMIN_KEY: &str = "SWITCHBOARD_ADMIN_KEY";

/// Apply the secret overrides from the environment (`env` looks a variable up; an empty
/// value counts as unset): `SWITCHBOARD_JWT_SECRET` → `auth.jwt.secret`,
/// `SWITCHBOARD_ADMIN_KEY` → `server.adminKey`. A document that is not an object is left
/// alone (its own validation reports it).
pub fn apply_env(doc: &mut Value, env: impl Fn(&str) -> Option<String>) {
    let Value::Object(root) = doc else {
        return;
    };
    if let Some(secret) = env(ENV_JWT_SECRET).filter(|s| !s.is_empty()) {
        let auth = object_at(root, "auth");
        if let Some(auth) = auth {
            if let Some(jwt) = object_at(auth, "jwt") {
                jwt.insert("secret".into(), Value::String(secret));
            }
        }
    }
    if let Some(key) = env(ENV_ADMIN_KEY).filter(|s| !s.is_empty()) {
        if let Some(server) = object_at(root, "server") {
            server.insert("adminKey".into(), Value::String(key));
        }
    }
}

/// The object under `key`, created when missing; `None` if something else is there.
fn object_at<'a>(map: &'a mut Map<String, Value>, key: &str) -> Option<&'a mut Map<String, Value>> {
    match map.entry(key).or_insert_with(|| Value::Object(Map::new())) {
        Value::Object(m) => Some(m),
        _ => None,
    }
}

/// Whether the deployment verifies JWTs with the well-known development secret.
pub fn uses_dev_jwt_secret(config: &Config) -> bool {
    config
        .auth
        .jwt
        .as_ref()
        .and_then(|j| j.secret.as_deref())
        .is_some_and(|s| s == DEV_JWT_SECRET)
}

/// The warnings every host prints before serving a deployment that uses the demo's
/// development secrets (`admin_key`: the host's admin key, if it has one).
pub fn dev_warnings(config: &Config, admin_key: Option<&str>) -> Vec<String> {
    let mut w = Vec::new();
    if uses_dev_jwt_secret(config) {
        w.push(format!(
            "JWTs are verified with the public development secret \"{DEV_JWT_SECRET}\": anyone \
             can mint tokens for this server. Set {ENV_JWT_SECRET}."
        ));
    }
    if admin_key == Some(DEV_ADMIN_KEY) {
        w.push(format!(
            "the admin API accepts the development key \"{DEV_ADMIN_KEY}\". Set {ENV_ADMIN_KEY}."
        ));
    }
    w
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn overrides_leave_a_malformed_document_for_validation_to_report() {
        let mut doc = json!({"auth": "nope", "server": 3});
        apply_env(&mut doc, |_| Some("x".into()));
        assert_eq!(doc, json!({"auth": "nope", "server": 3}));
        let mut doc = json!([1]);
        apply_env(&mut doc, |_| Some("x".into()));
        assert_eq!(doc, json!([1]));
    }

    #[test]
    fn empty_variables_do_not_override() {
        let mut doc = json!({});
        apply_env(&mut doc, |_| Some(String::new()));
        assert_eq!(doc, json!({}));
    }

    #[test]
    fn development_secrets_are_warned_about() {
        let config =
            Config::from_value(json!({"auth": {"jwt": {"secret": DEV_JWT_SECRET}}})).unwrap();
        let w = dev_warnings(&config, Some(DEV_ADMIN_KEY));
        assert_eq!(w.len(), 2);
        assert!(w[0].contains(ENV_JWT_SECRET) && w[1].contains(ENV_ADMIN_KEY));
        assert!(dev_warnings(&Config::default(), None).is_empty());
    }
}
