//! The upgrade decision: route, origin, authentication, scopes and connection limits.

use std::collections::hash_map::Entry;
use std::sync::Arc;

use serde_json::json;

use super::{Action, Engine};
use crate::auth::{extract_credential, AuthError};
use crate::connection::{Connection, ConnectionSnapshot, Heartbeat, UserView, SNAPSHOT_VERSION};
use crate::error::{ApiMisuse, ErrorCode};
use crate::guard::GuardValue;
use crate::protocol::{ServerMessage, PROTOCOL_VERSION, SUBPROTOCOL};
use crate::rate::TokenBucket;
use crate::timers::TimerKey;
use crate::timestamp::iso8601;
use crate::types::{ConnId, Millis, UpgradeRequest, User};

/// Why an upgrade was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rejection {
    /// A body in another protocol's format (Engine.IO's `{code, message}`), if not ours.
    pub raw_body: Option<String>,
    pub status: u16,
    pub code: ErrorCode,
    pub reason: &'static str,
    pub message: String,
}

impl Rejection {
    fn new(status: u16, code: ErrorCode, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            raw_body: None,
            status,
            code,
            reason,
            message: message.into(),
        }
    }

    fn body(&self) -> String {
        if let Some(b) = &self.raw_body {
            return b.clone();
        }
        json!({
            "type": "error",
            "code": self.code,
            "reason": self.reason,
            "message": self.message,
        })
        .to_string()
    }
}

fn auth_rejection(e: &AuthError) -> Rejection {
    Rejection::new(401, ErrorCode::Unauthorized, e.reason(), e.to_string())
}

impl Engine {
    /// The rejection for a credential that failed to verify: 503 `keys_unavailable`
    /// while the issuer's keys are being fetched (retry), else 401 with the reason.
    fn credential_rejection(&mut self, now: Millis, token: &str, e: &AuthError) -> Rejection {
        if self.keys_pending(now, token, e) {
            let (code, message) = super::key_sources::KEYS_UNAVAILABLE;
            return Rejection::new(503, code, "keys_unavailable", message);
        }
        auth_rejection(e)
    }
}

struct Accepted {
    route: usize,
    params: std::collections::BTreeMap<String, String>,
    tenant: Option<String>,
    user: Option<User>,
    /// The token's `exp` (seconds), if it has one.
    exp: Option<i64>,
    protocol: Option<String>,
}

impl Engine {
    fn decide(&mut self, now: Millis, req: &UpgradeRequest) -> Result<Accepted, Rejection> {
        if self.draining {
            return Err(Rejection::new(
                503,
                ErrorCode::Unavailable,
                "draining",
                "server is shutting down; reconnect to another instance",
            ));
        }
        // Route: see `crate::routes` (host-specific and literal routes win).
        let host = req.host();
        let (route_index, params) =
            crate::routes::match_route(&self.config.routes, &req.path, host.as_deref())
                .ok_or_else(|| {
                    Rejection::new(
                        404,
                        ErrorCode::NotFound,
                        "unknown_route",
                        format!("no WebSocket route at `{}`", truncate(&req.path, 200)),
                    )
                })?;
        let route = &self.config.routes[route_index];
        if route.codec.is_engine_io() && !self.polls.opening {
            if let Some(body) = super::socketio::eio_query_error(&req.query) {
                let mut r = Rejection::new(
                    400,
                    ErrorCode::InvalidMessage,
                    "bad_engine_io_request",
                    "not an Engine.IO v4 WebSocket request",
                );
                r.raw_body = Some(body);
                return Err(r);
            }
        }
        // Origin.
        if let Some(origin) = req.header("origin") {
            let allowed = route.origins.is_empty()
                || route
                    .origins
                    .iter()
                    .any(|o| o == "*" || o.eq_ignore_ascii_case(origin.trim()));
            if !allowed {
                return Err(Rejection::new(
                    403,
                    ErrorCode::Forbidden,
                    "origin_not_allowed",
                    format!(
                        "origin `{}` is not allowed on this route",
                        truncate(origin, 200)
                    ),
                ));
            }
        }
        // Authentication: an invalid token is refused even where auth is optional.
        let required =
            route.auth_required.unwrap_or(self.config.auth.required) || !route.scopes.is_empty();
        let (user, exp) = match extract_credential(req) {
            Some(cred) => match self.auth.authenticate_with_expiry(now, &cred.token) {
                Ok((user, exp)) => (Some(user), exp),
                Err(e) => return Err(self.credential_rejection(now, &cred.token, &e)),
            },
            None if required => return Err(auth_rejection(&AuthError::MissingToken)),
            None => (None, None),
        };
        if let Some(missing) = route
            .scopes
            .iter()
            .find(|s| !user.as_ref().is_some_and(|u| u.has_scope(s)))
        {
            return Err(Rejection::new(
                403,
                ErrorCode::Forbidden,
                "missing_scope",
                format!("this route requires scope `{missing}`"),
            ));
        }
        // Connection limits.
        let limits = &self.config.limits;
        if self.conns.len() >= limits.max_connections || self.cluster_full() {
            return Err(Rejection::new(
                503,
                ErrorCode::LimitExceeded,
                "too_many_connections",
                "the server has reached its connection limit; retry later",
            ));
        }
        if limits.max_connections_per_ip > 0
            && self.per_ip.get(&req.peer).copied().unwrap_or(0)
                + self.remote_ip_connections(&req.peer)
                >= limits.max_connections_per_ip
        {
            return Err(Rejection::new(
                429,
                ErrorCode::LimitExceeded,
                "too_many_connections_from_ip",
                format!(
                    "at most {} connections per IP address",
                    limits.max_connections_per_ip
                ),
            ));
        }
        if let Some(u) = &user {
            if limits.max_connections_per_user > 0
                && self.per_user.get(&u.id).copied().unwrap_or(0)
                    + self.remote_user_connections(&u.id)
                    >= limits.max_connections_per_user
            {
                return Err(Rejection::new(
                    429,
                    ErrorCode::LimitExceeded,
                    "too_many_connections_for_user",
                    format!(
                        "at most {} connections per user",
                        limits.max_connections_per_user
                    ),
                ));
            }
        }
        let protocol = req
            .subprotocols()
            .into_iter()
            .find(|p| *p == SUBPROTOCOL)
            .map(str::to_string);
        let tenant = route.tenant.as_ref().map(|t| match t.strip_prefix(':') {
            Some(p) => params.get(p).cloned().unwrap_or_default(),
            None => t.clone(),
        });
        Ok(Accepted {
            route: route_index,
            params,
            tenant,
            user,
            exp,
            protocol,
        })
    }

    pub(super) fn open(
        &mut self,
        now: Millis,
        conn: ConnId,
        req: UpgradeRequest,
    ) -> Result<(), ApiMisuse> {
        if self.by_conn.contains_key(&conn) {
            return Err(ApiMisuse::DuplicateConnection(conn.0));
        }
        if self.poll_upgrade(conn, &req) {
            return Ok(());
        }
        let decision = self.decide(now, &req).and_then(|a| {
            let client_id = if req.client_id.is_empty() {
                let mut id = self.random_id(22);
                while self.by_client.contains(&self.conns, &id) {
                    id = self.random_id(22);
                }
                id
            } else if self.by_client.contains(&self.conns, &req.client_id) {
                return Err(Rejection::new(
                    500,
                    ErrorCode::InternalError,
                    "client_id_collision",
                    "connection id collision; please reconnect",
                ));
            } else {
                req.client_id.clone()
            };
            Ok((a, client_id))
        });
        let (accepted, client_id) = match decision {
            Ok(v) => v,
            Err(r) => {
                *self.metrics.rejected_upgrades.entry(r.status).or_default() += 1;
                self.actions.push_back(Action::Reject {
                    conn,
                    status: r.status,
                    body: r.body(),
                });
                return Ok(());
            }
        };
        let route = &self.config.routes[accepted.route];
        let heartbeat = if self.config.heartbeat_interval > 0 {
            Heartbeat::NextPing {
                at: now.plus(self.config.heartbeat_interval),
            }
        } else {
            Heartbeat::Off
        };
        let rate = self
            .config
            .rate_limit
            .enabled
            .then(|| TokenBucket::new(&self.config.rate_limit, now));
        let state = ConnectionSnapshot {
            version: SNAPSHOT_VERSION,
            client_id: client_id.clone(),
            user: accepted.user.map(Box::new),
            route: accepted.route,
            codec: route.codec,
            peer: req.peer.clone(),
            connected_at: now,
            subscriptions: Vec::new(),
            rooms: Vec::new(),
            rate,
            rate_violations: 0,
            heartbeat,
            next_subscription: 0,
            expiry: None,
            params: accepted.params,
            tenant: accepted.tenant,
            meta: None,
        };
        let slot = self.insert_connection(conn, state);
        self.metrics.connections += 1;
        self.actions.push_back(Action::Accept {
            conn,
            protocol: accepted.protocol,
        });
        if self.connect_hook_on() {
            // The welcome waits for the application's `connect` hook (handlers.rs); so
            // does the token's expiry schedule, so no `token:expiring` precedes it.
            self.conns[slot].connect_exp = accepted.exp;
            self.run_connect_hook(now, slot);
        } else {
            self.welcome(now, slot);
            self.arm_expiry(now, slot, accepted.exp);
        }
        Ok(())
    }

    /// Send the welcome frame.
    pub(super) fn welcome(&mut self, now: Millis, slot: usize) {
        if self.conns[slot].state.codec.is_engine_io() {
            return self.sio_open(slot);
        }
        let user = self.conns[slot].public_user();
        let client_id = self.conns[slot].state.client_id.clone();
        self.send(
            slot,
            &ServerMessage::Connected {
                client_id,
                user,
                timestamp: iso8601(now),
                protocol_version: PROTOCOL_VERSION,
            },
        );
    }

    /// Register a connection in every map and arm its heartbeat timer.
    pub(super) fn insert_connection(&mut self, conn: ConnId, state: ConnectionSnapshot) -> usize {
        *self.per_ip.entry(state.peer.clone()).or_default() += 1;
        self.tenanted += usize::from(state.tenant.is_some());
        if let Some(u) = &state.user {
            *self.per_user.entry(u.id.clone()).or_default() += 1;
        }
        let deadline = state.heartbeat.deadline();
        let expiry = state.expiry.map(|e| e.deadline());
        let client_id = state.client_id.clone();
        let user_view = state.user.as_ref().map(|u| self.intern_user(u));
        let slot = self
            .conns
            .insert(Box::new(Connection::new(conn, state, user_view)));
        self.by_conn.insert(conn, slot);
        let c = &self.conns[slot].state;
        let (tenant, user) = (c.tenant.clone(), c.user.as_ref().map(|u| u.id.clone()));
        let ip = c.peer.clone();
        self.cluster_client(
            &client_id,
            tenant.as_deref(),
            user.as_deref(),
            Some(&ip),
            true,
        );
        self.by_client.insert(&self.conns, slot);
        self.timers.reschedule(TimerKey::Conn(conn), None, deadline);
        self.timers.reschedule(TimerKey::Expiry(conn), None, expiry);
        self.metrics.current_connections += 1;
        slot
    }

    /// The shared view of `user` (built, and converted for guards, on its first
    /// connection); every call is matched by one [`Engine::release_user`].
    pub(super) fn intern_user(&mut self, user: &User) -> Arc<UserView> {
        let subject = user.as_filter_subject();
        match self.user_views.entry(subject.to_string()) {
            Entry::Occupied(mut e) => {
                let (view, n) = e.get_mut();
                *n += 1;
                Arc::clone(view)
            }
            Entry::Vacant(e) => {
                let view = Arc::new(UserView {
                    key: e.key().clone(),
                    guard: GuardValue::new(Some(&subject)),
                    subject,
                });
                e.insert((Arc::clone(&view), 1));
                view
            }
        }
    }

    /// A connection holding `view` is gone; the view is dropped with its last one.
    pub(super) fn release_user(&mut self, view: &UserView) {
        if let Some((_, n)) = self.user_views.get_mut(&view.key) {
            *n -= 1;
            if *n == 0 {
                self.user_views.remove(&view.key);
            }
        }
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}
