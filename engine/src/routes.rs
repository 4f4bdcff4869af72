//! Route paths with parameters: `/ws/game/:sessionId` matches `/ws/game/42` with
//! `sessionId = "42"`.
//!
//! A segment `:name` matches exactly one non-empty segment; every other segment matches
//! itself. A trailing `/` and the query string of the request are ignored. Among the
//! routes that match a request, a host-specific route wins over one without a host, and
//! a route without parameters over one with them; otherwise the first declared wins.

use std::collections::BTreeMap;

/// One segment of a pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param(String),
}

/// A parsed route path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutePattern {
    segments: Vec<Segment>,
}

/// Path parameters of a matched route.
pub type Params = BTreeMap<String, String>;

fn segments(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').filter(|s| !s.is_empty())
}

impl RoutePattern {
    /// Parse a route path (must start with `/`; parameter names are `[A-Za-z0-9_]+`
    /// and unique).
    pub fn parse(path: &str) -> Result<RoutePattern, String> {
        let path = path.split('?').next().unwrap_or(path);
        let mut out = Vec::new();
        for s in segments(path) {
            if let Some(name) = s.strip_prefix(':') {
                if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                {
                    return Err(format!(
                        "`:{name}`: parameter names are letters, digits and `_`"
                    ));
                }
                if out.contains(&Segment::Param(name.to_string())) {
                    return Err(format!("parameter `:{name}` appears twice"));
                }
                out.push(Segment::Param(name.to_string()));
            } else {
                out.push(Segment::Literal(s.to_string()));
            }
        }
        Ok(RoutePattern { segments: out })
    }

    /// Whether the pattern has parameters.
    pub fn has_params(&self) -> bool {
        self.segments.iter().any(|s| matches!(s, Segment::Param(_)))
    }

    /// The parameter names in order.
    pub fn param_names(&self) -> impl Iterator<Item = &str> {
        self.segments.iter().filter_map(|s| match s {
            Segment::Param(n) => Some(n.as_str()),
            Segment::Literal(_) => None,
        })
    }

    /// Match a request path; the parameters on success.
    pub fn matches(&self, path: &str) -> Option<Params> {
        let path = path.split('?').next().unwrap_or(path);
        let mut params = Params::new();
        let mut it = segments(path);
        for seg in &self.segments {
            let got = it.next()?;
            match seg {
                Segment::Literal(l) if l == got => {}
                Segment::Literal(_) => return None,
                Segment::Param(name) => {
                    params.insert(name.clone(), got.to_string());
                }
            }
        }
        if it.next().is_some() {
            return None;
        }
        Some(params)
    }
}

/// Whether `path` is the path of one of `routes`, on any host (parameters match any
/// one segment; a trailing `/` and a query string are ignored). Hosts answer a plain
/// (non-upgrade) `GET` on such a path like `GET /`, with the server info.
pub fn serves_path(routes: &[crate::config::RouteConfig], path: &str) -> bool {
    routes
        .iter()
        .any(|r| RoutePattern::parse(&r.path).is_ok_and(|p| p.matches(path).is_some()))
}

/// Whether `path` is served by an Engine.IO route (`codec = "socket.io"` or
/// `"engine.io"`): plain HTTP requests there are long-polling, for the engine.
pub fn serves_engine_io(routes: &[crate::config::RouteConfig], path: &str) -> bool {
    routes.iter().any(|r| {
        r.codec.is_engine_io()
            && RoutePattern::parse(&r.path).is_ok_and(|p| p.matches(path).is_some())
    })
}

/// Find the route for a request: `(index, params)`.
pub(crate) fn match_route(
    routes: &[crate::config::RouteConfig],
    path: &str,
    host: Option<&str>,
) -> Option<(usize, Params)> {
    let mut best: Option<(u8, usize, Params)> = None;
    for (i, r) in routes.iter().enumerate() {
        let host_rank = match (&r.host, host) {
            (Some(h), Some(req)) if h.eq_ignore_ascii_case(req) => 0,
            (Some(_), _) => continue,
            (None, _) => 2,
        };
        let Ok(p) = RoutePattern::parse(&r.path) else {
            continue;
        };
        let Some(params) = p.matches(path) else {
            continue;
        };
        let rank = host_rank + u8::from(p.has_params());
        if best.as_ref().is_none_or(|(b, _, _)| rank < *b) {
            best = Some((rank, i, params));
        }
    }
    best.map(|(_, i, p)| (i, p))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RouteConfig;

    fn route(path: &str, host: Option<&str>) -> RouteConfig {
        RouteConfig {
            path: path.into(),
            host: host.map(Into::into),
            ..RouteConfig::default()
        }
    }

    #[test]
    fn params_are_extracted() {
        let p = RoutePattern::parse("/ws/game/:sessionId").unwrap();
        let m = p.matches("/ws/game/42/").unwrap();
        assert_eq!(m["sessionId"], "42");
        assert!(p.matches("/ws/game").is_none());
        assert!(p.matches("/ws/game/42/x").is_none());
    }

    #[test]
    fn bad_patterns_are_refused() {
        assert!(RoutePattern::parse("/a/:").is_err());
        assert!(RoutePattern::parse("/a/:x/:x").is_err());
        assert!(RoutePattern::parse("/a/:x-y").is_err());
    }

    #[test]
    fn literal_routes_and_host_routes_win() {
        let routes = vec![
            route("/ws/:room", None),
            route("/ws/lobby", None),
            route("/ws/:room", Some("a.example")),
        ];
        assert_eq!(match_route(&routes, "/ws/lobby", None).unwrap().0, 1);
        assert_eq!(match_route(&routes, "/ws/x", None).unwrap().0, 0);
        assert_eq!(
            match_route(&routes, "/ws/x", Some("a.example")).unwrap().0,
            2
        );
        assert!(match_route(&routes, "/other", None).is_none());
    }

    #[test]
    fn served_paths_include_parameterized_and_host_routes() {
        let routes = vec![
            route("/", None),
            route("/ws/game/:sessionId", None),
            route("/tenant", Some("a.example")),
        ];
        assert!(serves_path(&routes, "/"));
        assert!(serves_path(&routes, "/ws/game/42"));
        assert!(serves_path(&routes, "/ws/game/42/"));
        assert!(serves_path(&routes, "/tenant"));
        assert!(!serves_path(&routes, "/ws/game"));
        assert!(!serves_path(&routes, "/ws/game/42/x"));
        assert!(!serves_path(&routes, "/nothing"));
    }
}
