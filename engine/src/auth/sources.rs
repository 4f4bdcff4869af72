//! Remote key sources: JWKS documents at a URL (`auth.jwt.jwks[].url`) and OpenID
//! Connect providers (`auth.oidc[]`, discovery then `jwks_uri`).
//!
//! This module is the **policy**, the same on every host: which URL to fetch, when
//! (startup, cache lifetime from `Cache-Control` within bounds, retries with backoff,
//! an unknown `kid` at most once per cooldown per issuer), what a response means, and
//! that a failed fetch keeps the last good keys. Hosts only perform the HTTP GET the
//! engine asks for (a [`crate::HostRequest::Fetch`] host call) and hand back the status,
//! body and `Cache-Control` header. The engine glue (`machine/key_sources.rs`) turns the
//! [`Step`]s returned here into host calls, timers, installed keys, metrics and logs.

use serde_json::Value;

use crate::config::{AuthConfig, KeyRefreshConfig};
use crate::error::ConfigIssue;
use crate::hostcall::FetchResponse;
use crate::types::{Millis, OpId};

use super::keys::sanitize;

/// Largest response body the engine reads (bytes). Hosts should stop reading there too.
pub const MAX_FETCH_BODY: usize = 1024 * 1024;

/// The discovery document's path below the issuer.
pub const DISCOVERY_PATH: &str = "/.well-known/openid-configuration";

/// Check a URL the host will be asked to fetch: `https://` anywhere, plain `http://`
/// only on a loopback address (127.0.0.0/8 or `[::1]`), no credentials in the URL.
///
/// Only the scheme and host are classified here; the host's HTTP client parses the URL.
pub fn check_fetch_url(url: &str) -> Result<(), String> {
    let shown = sanitize(url);
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| format!("`{shown}` is not an absolute URL (https://...)"))?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return Err(format!(
            "`{shown}`: credentials in the URL are not supported"
        ));
    }
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split(']').next().unwrap_or_default()
    } else {
        authority.rsplit_once(':').map_or(authority, |(h, _)| h)
    };
    if host.is_empty() {
        return Err(format!("`{shown}` has no host"));
    }
    if scheme.eq_ignore_ascii_case("https") {
        return Ok(());
    }
    if !scheme.eq_ignore_ascii_case("http") {
        return Err(format!(
            "`{shown}`: only https:// URLs are fetched (http:// on 127.0.0.1 for tests)"
        ));
    }
    let loopback = match host.parse::<core::net::IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => false,
    };
    if loopback {
        Ok(())
    } else {
        Err(format!(
            "`{shown}`: plain http:// is only accepted on 127.0.0.1 (loopback, for tests); \
             use https:// so the keys cannot be tampered with in transit"
        ))
    }
}

/// What a source fetches.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Origin {
    /// A JWKS at a fixed URL.
    Jwks { url: String },
    /// An OpenID provider: discovery document, then its `jwks_uri` (remembered until a
    /// JWKS fetch fails, which sends the next attempt through discovery again).
    Oidc {
        discovery: Option<String>,
        jwks_uri: Option<String>,
    },
}

/// Which document a fetch in flight is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Document {
    /// The OpenID discovery document.
    Discovery,
    /// The JWKS.
    Jwks,
}

impl Document {
    /// Name for logs and metrics.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Document::Discovery => "discovery",
            Document::Jwks => "jwks",
        }
    }
}

/// One remote source of keys for one issuer.
#[derive(Debug, Clone)]
pub(crate) struct Source {
    /// The issuer whose keys these are (keys are always bound to it).
    pub(crate) issuer: String,
    origin: Origin,
    /// The fetch in flight: its op, document, URL and deadline.
    pub(crate) in_flight: Option<(OpId, Document, String, Millis)>,
    /// When the next fetch is due (none while one is in flight).
    pub(crate) next_at: Option<Millis>,
    /// Keys were installed at least once.
    pub(crate) loaded: bool,
    /// Failed attempts in a row.
    failures: u32,
    /// When an unknown `kid` last triggered a fetch.
    last_unknown_kid: Option<Millis>,
}

impl Source {
    /// The instant this source needs a timer for.
    pub(crate) fn deadline(&self) -> Option<Millis> {
        match &self.in_flight {
            Some((_, _, _, deadline)) => Some(*deadline),
            None => self.next_at,
        }
    }
}

/// What the engine does next for a source.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Step {
    /// Ask the host to GET `url` (the source is now waiting for op `op`).
    Fetch {
        /// The call's op id (allocated by the engine).
        op: OpId,
        /// Which document.
        document: Document,
        /// The URL.
        url: String,
    },
    /// Install this JWKS document for the issuer; then call [`KeySources::installed`].
    Install(Value),
    /// The attempt failed; the last good keys stay. Retry at `retry_at`.
    Failed {
        /// Which document failed.
        document: Document,
        /// Why, for logs (never key material).
        reason: String,
        /// When the next attempt is due.
        retry_at: Millis,
    },
}

/// How an unknown `kid` from a remote issuer is handled.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum UnknownKid {
    /// The issuer has no remote source: the key is simply unknown.
    NotRemote,
    /// A fetch is (now) in flight or the keys never loaded: the client should retry
    /// shortly. `Some(step)` when this token started the fetch.
    Retry(Option<Box<Step>>),
    /// The keys were fetched within the cooldown: the `kid` is really unknown.
    Unknown,
}

/// Every remote source of a deployment and the refresh policy.
#[derive(Debug, Clone, Default)]
pub(crate) struct KeySources {
    pub(crate) sources: Vec<Source>,
    policy: KeyRefreshConfig,
}

impl KeySources {
    /// Build from config; every bad URL or setting is reported with its path. All
    /// sources are due at once (`Millis(0)`): the first `Timeout` fetches them.
    pub(crate) fn from_config(config: &AuthConfig, issues: &mut Vec<ConfigIssue>) -> Self {
        let mut issue = |path: String, problem: String| issues.push(ConfigIssue { path, problem });
        let policy = config
            .jwt
            .as_ref()
            .map(|j| j.key_refresh.clone())
            .unwrap_or_default();
        for (name, value) in [
            ("minSeconds", policy.min_seconds),
            ("retrySeconds", policy.retry_seconds),
        ] {
            if value == 0 {
                issue(
                    format!("auth.jwt.keyRefresh.{name}"),
                    "must be at least 1".into(),
                );
            }
        }
        if policy.max_seconds < policy.min_seconds {
            issue(
                "auth.jwt.keyRefresh.maxSeconds".into(),
                "must be at least minSeconds".into(),
            );
        }
        if policy.max_retry_seconds < policy.retry_seconds {
            issue(
                "auth.jwt.keyRefresh.maxRetrySeconds".into(),
                "must be at least retrySeconds".into(),
            );
        }
        let mut sources: Vec<Source> = Vec::new();
        let mut push = |issuer: &str, origin: Origin| {
            sources.push(Source {
                issuer: issuer.to_string(),
                origin,
                in_flight: None,
                next_at: Some(Millis(0)),
                loaded: false,
                failures: 0,
                last_unknown_kid: None,
            })
        };
        let jwks = config.jwt.as_ref().map_or(&[][..], |j| &j.jwks[..]);
        for (i, set) in jwks.iter().enumerate() {
            if let Some(url) = &set.url {
                match check_fetch_url(url) {
                    Ok(()) if !set.issuer.is_empty() => {
                        push(&set.issuer, Origin::Jwks { url: url.clone() })
                    }
                    Ok(()) => {}
                    Err(problem) => issue(format!("auth.jwt.jwks[{i}].url"), problem),
                }
            }
        }
        for (i, o) in config.oidc.iter().enumerate() {
            let path = |f: &str| format!("auth.oidc[{i}].{f}");
            let discovery = if o.discovery {
                if o.jwks_url.is_some() {
                    issue(
                        path("jwksUrl"),
                        "is only used with `discovery = false` (discovery reads `jwks_uri`)".into(),
                    );
                }
                Some(format!(
                    "{}{DISCOVERY_PATH}",
                    o.issuer.trim_end_matches('/')
                ))
            } else {
                None
            };
            let url_checked = match (&discovery, &o.jwks_url) {
                (Some(d), _) => check_fetch_url(d).map_err(|p| (path("issuer"), p)),
                (None, Some(u)) => check_fetch_url(u).map_err(|p| (path("jwksUrl"), p)),
                (None, None) => Err((
                    path("jwksUrl"),
                    "is required when `discovery` is false".into(),
                )),
            };
            if o.issuer.is_empty() {
                issue(path("issuer"), "must not be empty".into());
                continue;
            }
            if let Err((p, problem)) = url_checked {
                issue(p, problem);
                continue;
            }
            for (j, aud) in o.audience.iter().enumerate() {
                if aud.is_empty() {
                    issue(
                        format!("auth.oidc[{i}].audience[{j}]"),
                        "must not be empty".into(),
                    );
                }
            }
            push(
                &o.issuer,
                Origin::Oidc {
                    jwks_uri: o.jwks_url.clone().filter(|_| discovery.is_none()),
                    discovery,
                },
            );
        }
        for (i, s) in sources.iter().enumerate() {
            if sources[..i].iter().any(|o| o.issuer == s.issuer) {
                issue(
                    "auth".into(),
                    format!(
                        "issuer `{}` has more than one remote key source (jwks[].url / oidc); \
                         configure one",
                        sanitize(&s.issuer)
                    ),
                );
            }
        }
        Self { sources, policy }
    }

    /// The source waiting for `op`, if any.
    pub(crate) fn by_op(&self, op: OpId) -> Option<usize> {
        self.sources
            .iter()
            .position(|s| s.in_flight.as_ref().is_some_and(|f| f.0 == op))
    }

    /// Start the next fetch of source `i` now (its timer fired, or an unknown `kid`).
    /// `op` is the id the engine allocated for the call; `deadline` its deadline.
    pub(crate) fn start(&mut self, i: usize, op: OpId, deadline: Millis) -> Step {
        let s = &mut self.sources[i];
        let (document, url) = match &s.origin {
            Origin::Jwks { url } => (Document::Jwks, url.clone()),
            Origin::Oidc {
                jwks_uri: Some(u), ..
            } => (Document::Jwks, u.clone()),
            Origin::Oidc {
                discovery: Some(d),
                jwks_uri: None,
            } => (Document::Discovery, d.clone()),
            // Unreachable by construction (config checks); fetch nothing, retry later.
            Origin::Oidc {
                discovery: None,
                jwks_uri: None,
            } => (Document::Jwks, String::new()),
        };
        s.in_flight = Some((op, document, url.clone(), deadline));
        s.next_at = None;
        Step::Fetch { op, document, url }
    }

    /// A token named an unknown `kid` for `issuer` at `now`. `op`/`deadline` are used
    /// only if a fetch is started (the caller allocates them lazily through `alloc`).
    pub(crate) fn unknown_kid(
        &mut self,
        now: Millis,
        issuer: &str,
        alloc: impl FnOnce() -> (OpId, Millis),
    ) -> UnknownKid {
        let Some(i) = self.sources.iter().position(|s| s.issuer == issuer) else {
            return UnknownKid::NotRemote;
        };
        let cooldown = self
            .policy
            .unknown_kid_cooldown_seconds
            .saturating_mul(1000);
        let s = &mut self.sources[i];
        if s.in_flight.is_some() {
            return UnknownKid::Retry(None);
        }
        let cooled = s.last_unknown_kid.is_none_or(|t| now.since(t) >= cooldown);
        if cooled {
            s.last_unknown_kid = Some(now);
            let (op, deadline) = alloc();
            return UnknownKid::Retry(Some(Box::new(self.start(i, op, deadline))));
        }
        if s.loaded {
            UnknownKid::Unknown
        } else {
            UnknownKid::Retry(None)
        }
    }

    /// The host answered the fetch of source `i`. Returns what to do next; for a
    /// discovery document that is the JWKS fetch (with `next_op`'s id and deadline).
    pub(crate) fn response(
        &mut self,
        now: Millis,
        i: usize,
        response: &FetchResponse,
        next_op: impl FnOnce() -> (OpId, Millis),
    ) -> Step {
        let Some((_, document, url, _)) = self.sources[i].in_flight.take() else {
            return self.fail(now, i, Document::Jwks, "no fetch was in flight".into());
        };
        let body = match check_response(response) {
            Ok(body) => body,
            Err(reason) => return self.fail(now, i, document, reason),
        };
        let parsed: Value = match serde_json::from_str(body) {
            Ok(v) => v,
            Err(e) => {
                return self.fail(now, i, document, format!("the body is not JSON: {e}"));
            }
        };
        match document {
            Document::Jwks => {
                let ttl = self.cache_lifetime(response.cache_control.as_deref());
                self.sources[i].next_at = Some(now.plus(ttl));
                Step::Install(parsed)
            }
            Document::Discovery => match self.read_discovery(i, &parsed) {
                Ok(jwks_uri) => {
                    if let Origin::Oidc { jwks_uri: slot, .. } = &mut self.sources[i].origin {
                        *slot = Some(jwks_uri);
                    }
                    let (op, deadline) = next_op();
                    self.start(i, op, deadline)
                }
                Err(reason) => {
                    let _ = url;
                    self.fail(now, i, document, reason)
                }
            },
        }
    }

    /// The JWKS from source `i` was installed (`Ok`) or refused by the key parser.
    pub(crate) fn installed(
        &mut self,
        now: Millis,
        i: usize,
        result: Result<(), String>,
    ) -> Option<Step> {
        match result {
            Ok(()) => {
                let s = &mut self.sources[i];
                s.loaded = true;
                s.failures = 0;
                None
            }
            Err(reason) => Some(self.fail(now, i, Document::Jwks, reason)),
        }
    }

    /// The fetch in flight for source `i` missed its deadline.
    pub(crate) fn timed_out(&mut self, now: Millis, i: usize) -> Step {
        let document = self.sources[i]
            .in_flight
            .take()
            .map_or(Document::Jwks, |f| f.1);
        self.fail(now, i, document, "the host did not answer in time".into())
    }

    fn fail(&mut self, now: Millis, i: usize, document: Document, reason: String) -> Step {
        let p = &self.policy;
        let s = &mut self.sources[i];
        s.in_flight = None;
        s.failures = s.failures.saturating_add(1);
        // A failing JWKS URL from discovery may have moved: rediscover next time.
        if let Origin::Oidc {
            discovery: Some(_),
            jwks_uri,
        } = &mut s.origin
        {
            *jwks_uri = None;
        }
        let shift = s.failures.saturating_sub(1).min(20);
        let delay = p
            .retry_seconds
            .saturating_mul(1u64 << shift)
            .min(p.max_retry_seconds)
            .saturating_mul(1000);
        let retry_at = now.plus(delay);
        s.next_at = Some(retry_at);
        Step::Failed {
            document,
            reason,
            retry_at,
        }
    }

    /// The `jwks_uri` of a discovery document, checked against the configured issuer.
    fn read_discovery(&self, i: usize, doc: &Value) -> Result<String, String> {
        let issuer = &self.sources[i].issuer;
        match doc.get("issuer").and_then(Value::as_str) {
            Some(found) if found == issuer => {}
            Some(found) => {
                return Err(format!(
                    "the discovery document names issuer `{}`, not `{}` (OpenID Connect \
                     Discovery requires them to be identical)",
                    sanitize(found),
                    sanitize(issuer)
                ))
            }
            None => return Err("the discovery document has no `issuer`".into()),
        }
        let uri = doc
            .get("jwks_uri")
            .and_then(Value::as_str)
            .ok_or_else(|| "the discovery document has no `jwks_uri`".to_string())?;
        check_fetch_url(uri).map_err(|p| format!("jwks_uri {p}"))?;
        Ok(uri.to_string())
    }

    /// The cache lifetime (ms) of a response: `max-age` within the bounds, the minimum
    /// for `no-cache`/`no-store`, the default without either.
    pub(crate) fn cache_lifetime(&self, cache_control: Option<&str>) -> u64 {
        let p = &self.policy;
        let seconds = match cache_control.map(parse_cache_control) {
            Some(CacheControl::NoCache) => p.min_seconds,
            Some(CacheControl::MaxAge(s)) => s,
            Some(CacheControl::None) | None => p.default_seconds,
        };
        seconds.clamp(p.min_seconds, p.max_seconds.max(p.min_seconds)) * 1000
    }
}

/// The status and body of a response, or why it is unusable.
fn check_response(r: &FetchResponse) -> Result<&str, String> {
    if let Some(e) = &r.error {
        return Err(format!("the request failed: {}", sanitize(e)));
    }
    if r.status == 0 {
        return Err("the request failed (no status)".into());
    }
    if !(200..300).contains(&r.status) {
        return Err(format!("HTTP status {}", r.status));
    }
    if r.body.len() > MAX_FETCH_BODY {
        return Err(format!("the body is larger than {MAX_FETCH_BODY} bytes"));
    }
    Ok(&r.body)
}

/// What a `Cache-Control` header says about freshness.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CacheControl {
    /// `no-cache` or `no-store`.
    NoCache,
    /// `max-age=N`.
    MaxAge(u64),
    /// Neither.
    None,
}

fn parse_cache_control(header: &str) -> CacheControl {
    let mut max_age = None;
    for directive in header.split(',') {
        let d = directive.trim();
        let (name, value) = d.split_once('=').unwrap_or((d, ""));
        let name = name.trim();
        if name.eq_ignore_ascii_case("no-cache") || name.eq_ignore_ascii_case("no-store") {
            return CacheControl::NoCache;
        }
        if name.eq_ignore_ascii_case("max-age") {
            max_age = value.trim().trim_matches('"').parse::<u64>().ok();
        }
    }
    max_age.map_or(CacheControl::None, CacheControl::MaxAge)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_is_accepted_only_on_loopback() {
        assert!(check_fetch_url("https://idp.example.com/jwks").is_ok());
        assert!(check_fetch_url("http://127.0.0.1:8080/jwks").is_ok());
        assert!(check_fetch_url("http://127.0.0.5/jwks").is_ok());
        assert!(check_fetch_url("http://[::1]:9/jwks").is_ok());
        let e = check_fetch_url("http://idp.example.com/jwks").unwrap_err();
        assert!(e.contains("only accepted on 127.0.0.1"), "{e}");
        assert!(check_fetch_url("http://localhost/jwks").is_err());
        assert!(check_fetch_url("http://10.0.0.1/jwks").is_err());
        assert!(check_fetch_url("ftp://127.0.0.1/jwks").is_err());
        assert!(check_fetch_url("/jwks").is_err());
        assert!(check_fetch_url("https://user:pw@idp.example.com/").is_err());
        assert!(check_fetch_url("http://127.0.0.1@evil.example/").is_err());
    }

    #[test]
    fn cache_control_is_read_within_bounds() {
        assert_eq!(
            parse_cache_control("public, max-age=300"),
            CacheControl::MaxAge(300)
        );
        assert_eq!(parse_cache_control("no-store"), CacheControl::NoCache);
        assert_eq!(
            parse_cache_control("Max-Age=\"20\", must-revalidate"),
            CacheControl::MaxAge(20)
        );
        assert_eq!(parse_cache_control("private"), CacheControl::None);
        let ks = KeySources::default();
        assert_eq!(ks.cache_lifetime(Some("max-age=5")), 60_000);
        assert_eq!(ks.cache_lifetime(Some("max-age=999999")), 86_400_000);
        assert_eq!(ks.cache_lifetime(Some("max-age=600")), 600_000);
        assert_eq!(ks.cache_lifetime(None), 3_600_000);
        assert_eq!(ks.cache_lifetime(Some("no-cache")), 60_000);
    }
}
