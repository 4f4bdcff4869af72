//! Small value types shared by every module: time, ids, users and upgrade requests.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A point in time: milliseconds since the Unix epoch, as read by the host's wall clock.
///
/// The engine never reads a clock; every call takes `now`. If the host's clock steps
/// backwards the engine treats time as standing still until it catches up.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Millis(pub u64);

impl Millis {
    /// `self + ms`, saturating.
    pub fn plus(self, ms: u64) -> Millis {
        Millis(self.0.saturating_add(ms))
    }

    /// Milliseconds from `earlier` to `self` (0 if `earlier` is later).
    pub fn since(self, earlier: Millis) -> u64 {
        self.0.saturating_sub(earlier.0)
    }
}

/// The host's handle for one connection. Hosts choose it; it must be unique among open
/// connections (and below 2^53 when it crosses into JavaScript).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct ConnId(pub u64);

/// Identifies one host call (see [`crate::hostcall`]). Allocated by the engine from a counter.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct OpId(pub u64);

/// An authenticated user, part of the connection state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    /// User id (JWT `sub`, or the API key's `id`).
    pub id: String,
    /// Role, if the credential carries one (the first of `roles` when the role claim
    /// is an array).
    #[serde(default)]
    pub role: Option<String>,
    /// Every role of an array role claim (e.g. Keycloak's `realm_access.roles`); a
    /// resource or channel role list admits the user when it names any of them.
    /// Empty when the role claim is a string.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    /// Scopes granted.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Every other claim (JWT payload or the API key's extra attributes).
    #[serde(default)]
    pub claims: Map<String, Value>,
}

impl User {
    /// Whether the user holds `role` (its `role`, or one of its `roles`).
    pub fn has_role(&self, role: &str) -> bool {
        self.role.as_deref() == Some(role) || self.roles.iter().any(|r| r == role)
    }

    /// Whether the user holds `scope`.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }

    /// The public view sent to clients: `{id, role, scopes}` (claims are never echoed).
    pub fn public_view(&self) -> Value {
        let mut m = Map::new();
        m.insert("id".into(), Value::String(self.id.clone()));
        m.insert(
            "role".into(),
            self.role.clone().map_or(Value::Null, Value::String),
        );
        m.insert(
            "scopes".into(),
            Value::Array(self.scopes.iter().cloned().map(Value::String).collect()),
        );
        Value::Object(m)
    }

    /// The object filters and broadcast selectors see: claims overlaid with id, role,
    /// scopes (and `roles`, when the role claim was an array).
    pub fn as_filter_subject(&self) -> Value {
        let mut m = self.claims.clone();
        m.insert("id".into(), Value::String(self.id.clone()));
        m.insert(
            "role".into(),
            self.role.clone().map_or(Value::Null, Value::String),
        );
        m.insert(
            "scopes".into(),
            Value::Array(self.scopes.iter().cloned().map(Value::String).collect()),
        );
        if !self.roles.is_empty() {
            m.insert(
                "roles".into(),
                Value::Array(self.roles.iter().cloned().map(Value::String).collect()),
            );
        }
        Value::Object(m)
    }
}

/// What the host knows about an HTTP upgrade request.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct UpgradeRequest {
    /// Request path without the query string, e.g. `/ws`.
    pub path: String,
    /// Raw query string without the leading `?` (may be empty).
    pub query: String,
    /// Header name/value pairs as received (names are matched case-insensitively).
    pub headers: Vec<(String, String)>,
    /// Peer IP address as text (used for per-IP limits).
    pub peer: String,
    /// A random id chosen by the host; becomes the client's `clientId`.
    pub client_id: String,
}

impl UpgradeRequest {
    /// First value of a header, case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// First value of a query parameter, percent-decoded.
    pub fn query_param(&self, name: &str) -> Option<String> {
        form_urlencoded::parse(self.query.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }

    /// The `Host` header without its port, lower-cased.
    pub fn host(&self) -> Option<String> {
        let h = self.header("host")?.trim();
        let without_port = if let Some(rest) = h.strip_prefix('[') {
            // [v6]:port
            rest.split(']').next().unwrap_or(rest)
        } else {
            h.rsplit_once(':')
                .filter(|(_, port)| port.chars().all(|c| c.is_ascii_digit()))
                .map_or(h, |(host, _)| host)
        };
        Some(without_port.to_ascii_lowercase())
    }

    /// Entries of `Sec-WebSocket-Protocol`, trimmed, in the order offered.
    pub fn subprotocols(&self) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case("sec-websocket-protocol"))
            .flat_map(|(_, v)| v.split(','))
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(headers: &[(&str, &str)], query: &str) -> UpgradeRequest {
        UpgradeRequest {
            path: "/".into(),
            query: query.into(),
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            peer: "127.0.0.1".into(),
            client_id: "c1".into(),
        }
    }

    #[test]
    fn headers_are_case_insensitive() {
        let r = req(&[("X-Api-Key", "k")], "");
        assert_eq!(r.header("x-api-key"), Some("k"));
    }

    #[test]
    fn query_params_are_decoded() {
        let r = req(&[], "a=1&token=ab%2Bc%3D&b");
        assert_eq!(r.query_param("token").as_deref(), Some("ab+c="));
        assert_eq!(r.query_param("nope"), None);
    }

    #[test]
    fn host_strips_port_and_case() {
        assert_eq!(
            req(&[("Host", "Tenant.Example.com:8080")], "")
                .host()
                .as_deref(),
            Some("tenant.example.com")
        );
        assert_eq!(
            req(&[("Host", "[::1]:80")], "").host().as_deref(),
            Some("::1")
        );
        assert_eq!(req(&[], "").host(), None);
    }

    #[test]
    fn subprotocols_split_on_commas() {
        let r = req(
            &[("Sec-WebSocket-Protocol", "switchboard.v1, bearer.abc")],
            "",
        );
        assert_eq!(r.subprotocols(), vec!["switchboard.v1", "bearer.abc"]);
    }

    #[test]
    fn millis_arithmetic_saturates() {
        assert_eq!(Millis(u64::MAX).plus(5), Millis(u64::MAX));
        assert_eq!(Millis(5).since(Millis(9)), 0);
    }
}
