//! Channel namespaces: per-pattern channel options (history, presence, join/leave pushes,
//! who may subscribe and publish).
//!
//! `channels.namespaces` is an ordered list; the first namespace whose `pattern` matches
//! a channel name decides for it. A channel no namespace matches keeps the global
//! `channels.publishRoles` / `channels.subscribeRoles` and has no history or presence.
//!
//! Pattern syntax (whole-name match):
//! - literal text matches itself;
//! - `*` matches any run of characters (possibly empty), at most once per pattern;
//! - `{name}` captures a non-empty run of characters without `:` as `params.name`;
//! - `#{user.id}` matches a non-empty run without `:` that must equal the connecting
//!   user's id: a *user-limited* channel (`personal:#{user.id}`) only that user may
//!   subscribe to, read the history or presence of. The server API is not limited.
//!
//! Permissions (`subscribe`, `publish`): `roles` (empty: everyone, anonymous included)
//! and an optional CEL `guard` over `user` (null when anonymous), `channel` (the name)
//! and `params` (the pattern's captures); it must return `true`. Both must pass.
//! Subscribing also grants `presence`, `presence:stats` and `history` on the channel.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use cel::common::value::{CowVal, Val};
use cel::context::VariableResolver;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// History kept for every stream of a namespace (a channel's publications).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HistoryConfig {
    /// Publications kept per stream (the oldest are dropped first). 1..=100000.
    pub size: usize,
    /// How long a publication is kept, in milliseconds (at least 1).
    pub ttl_ms: u64,
    /// How long a stream's position (offset and epoch) is remembered after its last
    /// publication, in milliseconds, so a client that reconnects to a quiet stream can
    /// still recover. Default 24 hours; never less than `ttlMs`.
    #[serde(default = "default_meta_ttl")]
    pub meta_ttl_ms: u64,
}

fn default_meta_ttl() -> u64 {
    86_400_000
}

/// Who may do something on a namespace's channels.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Permission {
    /// Roles allowed; empty allows everyone (anonymous clients too).
    pub roles: Vec<String>,
    /// CEL expression over `user`, `channel` and `params` that must return `true`.
    pub guard: Option<String>,
}

/// Options for the channels matching one pattern.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NamespaceConfig {
    /// Channel pattern, e.g. `chat:*`, `org:{org}:feed`, `personal:#{user.id}`.
    pub pattern: String,
    /// Keep publications with offsets for `history` and recovery (`subscribe` with
    /// `since`). Absent: no history, `message` frames carry no offset.
    #[serde(default)]
    pub history: Option<HistoryConfig>,
    /// Answer `presence` and `presence:stats` requests.
    #[serde(default)]
    pub presence: bool,
    /// Push `presence:join` / `presence:leave` to subscribers (needs `presence`).
    #[serde(default)]
    pub join_leave: bool,
    /// Who may subscribe (and read history and presence).
    #[serde(default)]
    pub subscribe: Permission,
    /// Who may publish.
    #[serde(default)]
    pub publish: Permission,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Literal(String),
    Star,
    Param(String),
    UserId,
}

/// A parsed channel pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    tokens: Vec<Token>,
    user_limited: bool,
}

/// What a pattern matched: its captures and, for user-limited patterns, the user id the
/// channel belongs to.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PatternMatch {
    /// `{name}` captures.
    pub params: BTreeMap<String, String>,
    /// The `#{user.id}` part, if the pattern has one.
    pub owner: Option<String>,
}

impl Pattern {
    /// Parse a pattern; the error says what is wrong.
    pub fn parse(src: &str) -> Result<Pattern, String> {
        if src.is_empty() {
            return Err("a pattern must not be empty".into());
        }
        let mut tokens = Vec::new();
        let mut lit = String::new();
        let mut rest = src;
        let mut stars = 0;
        let mut user_limited = false;
        while let Some(c) = rest.chars().next() {
            let flush = |lit: &mut String, tokens: &mut Vec<Token>| {
                if !lit.is_empty() {
                    tokens.push(Token::Literal(std::mem::take(lit)));
                }
            };
            if c == '*' {
                flush(&mut lit, &mut tokens);
                tokens.push(Token::Star);
                stars += 1;
                rest = &rest[1..];
            } else if let Some(r) = rest.strip_prefix("#{user.id}") {
                if user_limited {
                    return Err("`#{user.id}` may appear once".into());
                }
                flush(&mut lit, &mut tokens);
                tokens.push(Token::UserId);
                user_limited = true;
                rest = r;
            } else if c == '{' {
                let end = rest
                    .find('}')
                    .ok_or_else(|| "`{` without a closing `}`".to_string())?;
                let name = &rest[1..end];
                if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    return Err(format!(
                        "`{{{name}}}`: a parameter name is letters, digits and `_`"
                    ));
                }
                flush(&mut lit, &mut tokens);
                tokens.push(Token::Param(name.to_string()));
                rest = &rest[end + 1..];
            } else {
                lit.push(c);
                rest = &rest[c.len_utf8()..];
            }
            if stars > 1 {
                return Err("`*` may appear at most once".into());
            }
        }
        if !lit.is_empty() {
            tokens.push(Token::Literal(lit));
        }
        for w in tokens.windows(2) {
            let capture = |t: &Token| matches!(t, Token::Star | Token::Param(_) | Token::UserId);
            if capture(&w[0]) && capture(&w[1]) {
                return Err("two wildcards or parameters must be separated by literal text".into());
            }
        }
        Ok(Pattern {
            tokens,
            user_limited,
        })
    }

    /// Whether only the user named in the channel may subscribe.
    pub fn user_limited(&self) -> bool {
        self.user_limited
    }

    /// Match a whole channel name.
    pub fn matches(&self, name: &str) -> Option<PatternMatch> {
        let mut m = PatternMatch::default();
        if match_tokens(&self.tokens, name, &mut m) {
            Some(m)
        } else {
            None
        }
    }
}

fn match_tokens(tokens: &[Token], s: &str, m: &mut PatternMatch) -> bool {
    let Some((first, rest)) = tokens.split_first() else {
        return s.is_empty();
    };
    match first {
        Token::Literal(l) => s
            .strip_prefix(l.as_str())
            .is_some_and(|r| match_tokens(rest, r, m)),
        Token::Star | Token::Param(_) | Token::UserId => {
            let segment_only = !matches!(first, Token::Star);
            let min = usize::from(segment_only);
            // Candidate end positions of the capture, shortest first.
            let ends = s
                .char_indices()
                .map(|(i, _)| i)
                .chain(std::iter::once(s.len()));
            for end in ends {
                if end < min {
                    continue;
                }
                let part = &s[..end];
                if segment_only && part.contains(':') {
                    break;
                }
                if match_tokens(rest, &s[end..], m) {
                    match first {
                        Token::Param(name) => {
                            m.params.insert(name.clone(), part.to_string());
                        }
                        Token::UserId => m.owner = Some(part.to_string()),
                        _ => {}
                    }
                    return true;
                }
            }
            false
        }
    }
}

/// The CEL environment channel guards run in.
#[derive(Clone)]
struct Env(Arc<cel::Env>);

/// A compiled channel guard.
#[derive(Clone)]
pub struct ChannelGuard {
    source: String,
    program: Arc<cel::Program>,
    env: Env,
}

impl fmt::Debug for ChannelGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChannelGuard")
            .field("source", &self.source)
            .finish()
    }
}

struct Resolver<'a> {
    user: &'a dyn Val,
    channel: &'a dyn Val,
    params: &'a dyn Val,
}

impl VariableResolver for Resolver<'_> {
    fn resolve<'b>(&'b self, variable: &str) -> Option<CowVal<'b, 'b>> {
        let v = match variable {
            "user" => self.user,
            "channel" => self.channel,
            "params" => self.params,
            _ => return None,
        };
        Some(CowVal::Borrowed(v))
    }
}

fn to_val(v: cel::Value) -> Result<Box<dyn Val>, String> {
    Box::<dyn Val>::try_from(v).map_err(|e| e.to_string())
}

impl ChannelGuard {
    fn compile(env: &Env, source: &str) -> Result<ChannelGuard, String> {
        #[cfg(test)]
        crate::compile_count::cel();
        let program = cel::Program::compile(source)
            .map_err(|e| format!("not a valid CEL expression: {e}"))?;
        Ok(ChannelGuard {
            source: source.to_string(),
            program: Arc::new(program),
            env: env.clone(),
        })
    }

    /// Whether the guard returns `true`; anything else (false, null, an error) denies.
    pub fn allows(&self, user: Option<&Value>, channel: &str, m: &PatternMatch) -> bool {
        let eval = || -> Result<bool, String> {
            let user = to_val(match user {
                Some(u) => cel::to_value(u).map_err(|e| e.to_string())?,
                None => cel::Value::Null,
            })?;
            let channel = to_val(cel::Value::String(channel.to_string().into()))?;
            let params: serde_json::Map<String, Value> = m
                .params
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect();
            let params = to_val(cel::to_value(Value::Object(params)).map_err(|e| e.to_string())?)?;
            let resolver = Resolver {
                user: user.as_ref(),
                channel: channel.as_ref(),
                params: params.as_ref(),
            };
            let mut c = cel::Context::with_env(Arc::clone(&self.env.0));
            c.set_variable_resolver(&resolver);
            let out = self.program.execute(&c).map_err(|e| e.to_string())?;
            Ok(matches!(out, cel::Value::Bool(true)))
        };
        eval().unwrap_or(false)
    }
}

/// A compiled permission.
#[derive(Debug, Clone, Default)]
pub struct CompiledPermission {
    /// Roles (empty: everyone).
    pub roles: Vec<String>,
    /// Guard, if any.
    pub guard: Option<ChannelGuard>,
}

/// A namespace ready to use.
#[derive(Debug, Clone)]
pub struct Namespace {
    /// Index in `channels.namespaces`.
    pub index: usize,
    /// The pattern.
    pub pattern: Pattern,
    /// History bounds, if kept.
    pub history: Option<HistoryConfig>,
    /// Presence answered.
    pub presence: bool,
    /// Join/leave pushes.
    pub join_leave: bool,
    /// Subscribe permission.
    pub subscribe: CompiledPermission,
    /// Publish permission.
    pub publish: CompiledPermission,
}

/// Every namespace of a config, compiled.
#[derive(Debug, Clone, Default)]
pub struct Namespaces {
    list: Vec<Arc<Namespace>>,
}

impl Namespaces {
    /// Compile `channels.namespaces`; errors are `(path, problem)`.
    pub fn compile(configs: &[NamespaceConfig]) -> Result<Namespaces, Vec<(String, String)>> {
        let mut issues = Vec::new();
        let mut list = Vec::new();
        let mut env: Option<Env> = None;
        for (i, c) in configs.iter().enumerate() {
            let at = |f: &str| format!("channels.namespaces[{i}].{f}");
            let pattern = match Pattern::parse(&c.pattern) {
                Ok(p) => Some(p),
                Err(e) => {
                    issues.push((at("pattern"), e));
                    None
                }
            };
            if let Some(h) = &c.history {
                if h.size == 0 || h.size > 100_000 {
                    issues.push((at("history.size"), "must be 1..=100000".into()));
                }
                if h.ttl_ms == 0 {
                    issues.push((at("history.ttlMs"), "must be at least 1".into()));
                }
            }
            if c.join_leave && !c.presence {
                issues.push((at("joinLeave"), "needs `presence: true`".into()));
            }
            let mut perm = |p: &Permission, what: &str| {
                let guard = p.guard.as_ref().and_then(|src| {
                    let env = env.get_or_insert_with(|| Env(Arc::new(cel::Env::stdlib())));
                    match ChannelGuard::compile(env, src) {
                        Ok(g) => Some(g),
                        Err(e) => {
                            issues.push((at(&format!("{what}.guard")), e));
                            None
                        }
                    }
                });
                CompiledPermission {
                    roles: p.roles.clone(),
                    guard,
                }
            };
            let subscribe = perm(&c.subscribe, "subscribe");
            let publish = perm(&c.publish, "publish");
            if let Some(pattern) = pattern {
                list.push(Arc::new(Namespace {
                    index: i,
                    pattern,
                    history: c.history.map(|mut h| {
                        h.meta_ttl_ms = h.meta_ttl_ms.max(h.ttl_ms);
                        h
                    }),
                    presence: c.presence,
                    join_leave: c.join_leave,
                    subscribe,
                    publish,
                }));
            }
        }
        if issues.is_empty() {
            Ok(Namespaces { list })
        } else {
            Err(issues)
        }
    }

    /// The first namespace matching `channel`, with what its pattern captured.
    pub fn find(&self, channel: &str) -> Option<(Arc<Namespace>, PatternMatch)> {
        self.list
            .iter()
            .find_map(|n| n.pattern.matches(channel).map(|m| (Arc::clone(n), m)))
    }

    /// Whether any namespace is configured.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn star_matches_any_suffix() {
        let p = Pattern::parse("chat:*").unwrap();
        assert!(p.matches("chat:").is_some());
        assert!(p.matches("chat:a:b").is_some());
        assert!(p.matches("chatx").is_none());
    }

    #[test]
    fn params_capture_one_segment() {
        let p = Pattern::parse("org:{org}:feed").unwrap();
        let m = p.matches("org:acme:feed").unwrap();
        assert_eq!(m.params["org"], "acme");
        assert!(p.matches("org:a:b:feed").is_none());
        assert!(p.matches("org::feed").is_none());
    }

    #[test]
    fn user_limited_pattern_names_the_owner() {
        let p = Pattern::parse("personal:#{user.id}").unwrap();
        assert!(p.user_limited());
        assert_eq!(
            p.matches("personal:u1").unwrap().owner.as_deref(),
            Some("u1")
        );
        assert!(p.matches("personal:").is_none());
    }

    #[test]
    fn bad_patterns_are_refused_with_a_reason() {
        assert!(Pattern::parse("").is_err());
        assert!(Pattern::parse("a*b*").unwrap_err().contains("once"));
        assert!(Pattern::parse("a{b").is_err());
        assert!(Pattern::parse("a{}").is_err());
        assert!(Pattern::parse("{a}{b}").is_err());
    }

    #[test]
    fn guard_sees_user_channel_and_params() {
        let ns = Namespaces::compile(&[NamespaceConfig {
            pattern: "team:{team}".into(),
            history: None,
            presence: false,
            join_leave: false,
            subscribe: Permission {
                roles: vec![],
                guard: Some(
                    "user != null && user.team == params.team && channel.startsWith('team:')"
                        .into(),
                ),
            },
            publish: Permission::default(),
        }])
        .unwrap();
        let (n, m) = ns.find("team:red").unwrap();
        let g = n.subscribe.guard.as_ref().unwrap();
        assert!(g.allows(Some(&json!({"id":"u","team":"red"})), "team:red", &m));
        assert!(!g.allows(Some(&json!({"id":"u","team":"blue"})), "team:red", &m));
        assert!(!g.allows(None, "team:red", &m));
    }

    #[test]
    fn invalid_guard_and_join_leave_without_presence_are_config_errors() {
        let err = Namespaces::compile(&[NamespaceConfig {
            pattern: "x:*".into(),
            history: Some(HistoryConfig {
                size: 0,
                ttl_ms: 1,
                meta_ttl_ms: 1,
            }),
            presence: false,
            join_leave: true,
            subscribe: Permission {
                roles: vec![],
                guard: Some("user ==".into()),
            },
            publish: Permission::default(),
        }])
        .unwrap_err();
        let paths: Vec<_> = err.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            paths,
            vec![
                "channels.namespaces[0].history.size",
                "channels.namespaces[0].joinLeave",
                "channels.namespaces[0].subscribe.guard"
            ]
        );
    }
}
