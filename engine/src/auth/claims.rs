//! Claims mapping: how a verified token's claims become the [`User`].
//!
//! `idClaim`, `roleClaim` and `scopesClaim` name a claim or a dotted path into nested
//! claims. The exact key is tried first (namespaced claims such as
//! `https://example.com/roles` contain dots), then the path (`realm_access.roles`,
//! `resource_access.my-client.roles`).
//!
//! - id: a non-empty string (`idClaim`, falling back to `id`).
//! - role: a string, or an array of strings (Keycloak `realm_access.roles`, Entra
//!   `roles`, Cognito `cognito:groups`): then `role` is the first entry and `roles` all
//!   of them; role lists admit the user when they name any of them.
//! - scopes: a space-separated string (OAuth `scope`, Entra `scp`) or an array of
//!   strings (Auth0 `permissions`), from `scopesClaim`, falling back to `scopes`.

use serde_json::{Map, Value};

use super::keys::sanitize;
use super::AuthError;
use crate::types::User;

/// The claim `name`: the exact key, else a dotted path through nested objects.
pub(crate) fn claim<'a>(claims: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    if let Some(v) = claims.get(name) {
        return Some(v);
    }
    let mut parts = name.split('.');
    let mut cur = claims.get(parts.next()?)?;
    for part in parts {
        cur = cur.as_object()?.get(part)?;
    }
    Some(cur)
}

/// Which claims hold the user's id, role and scopes.
#[derive(Debug, Clone)]
pub(crate) struct ClaimNames {
    pub(crate) id: String,
    pub(crate) role: String,
    pub(crate) scopes: String,
}

fn strings(v: &[Value]) -> Option<Vec<String>> {
    v.iter().map(|x| x.as_str().map(str::to_string)).collect()
}

impl ClaimNames {
    /// Build the user from verified claims.
    pub(crate) fn user(&self, claims: Map<String, Value>) -> Result<User, AuthError> {
        let id = [self.id.as_str(), "id"]
            .into_iter()
            .find_map(|name| claim(&claims, name).and_then(Value::as_str))
            .filter(|id| !id.is_empty())
            .ok_or_else(|| AuthError::MissingClaim(sanitize(&self.id)))?
            .to_string();
        let (role, roles) = match claim(&claims, &self.role) {
            None | Some(Value::Null) => (None, Vec::new()),
            Some(Value::String(s)) => (Some(s.clone()), Vec::new()),
            Some(Value::Array(items)) => {
                let roles = strings(items).ok_or_else(|| role_error(&self.role))?;
                (roles.first().cloned(), roles)
            }
            Some(_) => return Err(role_error(&self.role)),
        };
        let scopes_name = [self.scopes.as_str(), "scopes"]
            .into_iter()
            .find(|name| claim(&claims, name).is_some_and(|v| !v.is_null()));
        let scopes = match scopes_name.and_then(|name| claim(&claims, name).map(|v| (name, v))) {
            None => Vec::new(),
            Some((_, Value::String(s))) => s.split_whitespace().map(str::to_string).collect(),
            Some((name, Value::Array(items))) => {
                strings(items).ok_or_else(|| scopes_error(name))?
            }
            Some((name, _)) => return Err(scopes_error(name)),
        };
        Ok(User {
            id,
            role,
            roles,
            scopes,
            claims,
        })
    }
}

fn role_error(name: &str) -> AuthError {
    AuthError::Malformed(format!(
        "`{}` must be a string or an array of strings",
        sanitize(name)
    ))
}

fn scopes_error(name: &str) -> AuthError {
    AuthError::Malformed(format!(
        "`{}` must be a space-separated string or an array of strings",
        sanitize(name)
    ))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn names(id: &str, role: &str, scopes: &str) -> ClaimNames {
        ClaimNames {
            id: id.into(),
            role: role.into(),
            scopes: scopes.into(),
        }
    }

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn keycloak_realm_roles_and_space_separated_scope() {
        let claims = map(json!({
            "sub": "u1",
            "realm_access": {"roles": ["editor", "offline_access"]},
            "scope": "openid profile read"
        }));
        let u = names("sub", "realm_access.roles", "scope")
            .user(claims)
            .unwrap();
        assert_eq!(u.role.as_deref(), Some("editor"));
        assert_eq!(u.roles, vec!["editor", "offline_access"]);
        assert!(u.has_role("offline_access"));
        assert_eq!(u.scopes, vec!["openid", "profile", "read"]);
        assert_eq!(
            u.as_filter_subject()["roles"],
            json!(["editor", "offline_access"])
        );
    }

    #[test]
    fn namespaced_claim_with_dots_is_read_as_one_key() {
        let claims = map(json!({
            "sub": "u1",
            "https://example.com/roles": ["admin"],
            "permissions": ["read:messages", "write:messages"]
        }));
        let u = names("sub", "https://example.com/roles", "permissions")
            .user(claims)
            .unwrap();
        assert_eq!(u.role.as_deref(), Some("admin"));
        assert_eq!(u.scopes, vec!["read:messages", "write:messages"]);
    }

    #[test]
    fn nested_id_and_bad_role_shapes() {
        let u = names("user.uid", "role", "scp")
            .user(map(json!({"user": {"uid": "x9"}, "scp": "a b"})))
            .unwrap();
        assert_eq!(u.id, "x9");
        assert_eq!(u.scopes, vec!["a", "b"]);
        assert!(u.roles.is_empty() && u.role.is_none());
        let e = names("sub", "role", "scope")
            .user(map(json!({"sub": "u", "role": [1]})))
            .unwrap_err();
        assert_eq!(e.reason(), "malformed_token");
        let e = names("sub", "role", "scope")
            .user(map(json!({"role": "x"})))
            .unwrap_err();
        assert_eq!(e.reason(), "missing_claim");
    }
}
