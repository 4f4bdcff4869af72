//! `switchboard token`: mint HS256 development JWTs the engine accepts.

use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::{json, Map, Value};

/// Parse a lifetime like `90`, `90s`, `15m`, `1h` or `7d` into seconds.
pub fn parse_ttl(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let (digits, unit) = match t.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => t.split_at(i),
        None => (t, "s"),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("`{text}` is not a lifetime like 30m, 1h or 7d"))?;
    let factor = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("`{text}`: the unit must be s, m, h or d")),
    };
    if n == 0 {
        return Err("the lifetime must be positive".into());
    }
    n.checked_mul(factor)
        .ok_or_else(|| format!("`{text}` is too long"))
}

/// What goes into a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenSpec {
    /// `sub`: the user id.
    pub sub: String,
    /// `role`, if any.
    pub role: Option<String>,
    /// `scope` (space-separated in the token).
    pub scopes: Vec<String>,
    /// Lifetime in seconds.
    pub ttl_secs: u64,
}

/// Sign an HS256 token with `secret`, issued at `now_secs` (Unix seconds).
pub fn mint(secret: &str, spec: &TokenSpec, now_secs: u64) -> Result<String, String> {
    let mut claims = Map::new();
    claims.insert("sub".into(), Value::String(spec.sub.clone()));
    if let Some(role) = &spec.role {
        claims.insert("role".into(), Value::String(role.clone()));
    }
    if !spec.scopes.is_empty() {
        claims.insert("scope".into(), Value::String(spec.scopes.join(" ")));
    }
    claims.insert("iat".into(), json!(now_secs));
    claims.insert("exp".into(), json!(now_secs.saturating_add(spec.ttl_secs)));
    encode(
        &Header::new(Algorithm::HS256),
        &Value::Object(claims),
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .map_err(|e| format!("cannot sign the token: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use engine::{Action, Config, ConnId, Engine, Input, Millis, UpgradeRequest};

    #[test]
    fn ttl_units() {
        assert_eq!(parse_ttl("1h"), Ok(3600));
        assert_eq!(parse_ttl("15m"), Ok(900));
        assert_eq!(parse_ttl("7d"), Ok(604_800));
        assert_eq!(parse_ttl("42"), Ok(42));
        assert!(parse_ttl("1w").is_err());
        assert!(parse_ttl("0s").is_err());
        assert!(parse_ttl("h").is_err());
    }

    #[test]
    fn minted_tokens_are_accepted_by_the_engine() {
        let now = 1_700_000_000u64;
        let token = mint(
            "s3",
            &TokenSpec {
                sub: "u9".into(),
                role: Some("admin".into()),
                scopes: vec![],
                ttl_secs: 3600,
            },
            now,
        )
        .unwrap();
        let config = Config::from_json(r#"{"auth":{"jwt":{"secret":"s3"}}}"#).unwrap();
        let mut engine = Engine::new(config).unwrap();
        let request = UpgradeRequest {
            path: "/".into(),
            query: format!("token={token}"),
            peer: "127.0.0.1".into(),
            client_id: "c".into(),
            ..Default::default()
        };
        engine
            .handle(
                Millis(now * 1000),
                Input::Open {
                    conn: ConnId(1),
                    request,
                },
            )
            .unwrap();
        assert!(matches!(engine.poll_action(), Some(Action::Accept { .. })));
    }
}
