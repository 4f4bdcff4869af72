//! Token expiry on open connections and the `refresh` message.
//!
//! A connection authenticated with a token that carries `exp` gets a schedule
//! ([`TokenExpiry`], kept in its snapshot): `refreshNoticeSeconds` before `exp` it is
//! sent `{"type":"token:expiring","expiresAt":...}` (at once if it connected later
//! than that), and when the token is expired under the upgrade's rule (`now > exp +
//! leewaySeconds`, whole seconds) it is closed with 4401 "token expired". A `refresh`
//! with a valid token for the same user replaces the user (claims, role, scopes) and
//! the schedule, and is answered with `refreshed`.

use serde_json::Value;

use super::key_sources::KEYS_UNAVAILABLE;
use super::Engine;
use crate::auth::AuthError;
use crate::connection::TokenExpiry;
use crate::error::{close, ErrorCode};
use crate::protocol::ServerMessage;
use crate::timers::TimerKey;
use crate::timestamp::iso8601;
use crate::types::{ConnId, Millis};

/// `exp` (seconds) as epoch milliseconds, clamped to the representable range.
fn seconds_to_millis(seconds: i128) -> Millis {
    Millis(seconds.clamp(0, i128::from(u64::MAX / 1000)) as u64 * 1000)
}

impl Engine {
    /// (`expireConnections`, `leewaySeconds`, `refreshNoticeSeconds`) with the
    /// `auth.jwt` defaults when only `auth.oidc` is configured.
    fn expiry_settings(&self) -> (bool, u64, u64) {
        self.config.auth.jwt.as_ref().map_or((true, 30, 60), |j| {
            (
                j.expire_connections,
                j.leeway_seconds,
                j.refresh_notice_seconds,
            )
        })
    }

    /// Replace the connection's expiry schedule and its timer.
    pub(super) fn set_expiry(&mut self, slot: usize, expiry: Option<TokenExpiry>) {
        let c = &mut self.conns[slot];
        let old = c.state.expiry.map(|e| e.deadline());
        c.state.expiry = expiry;
        let id = c.id;
        self.timers
            .reschedule(TimerKey::Expiry(id), old, expiry.map(|e| e.deadline()));
    }

    /// Schedule the expiry of the connection in `slot` from its token's `exp` (seconds;
    /// `None`: it never expires). A notice that is already due is sent at once.
    pub(super) fn arm_expiry(&mut self, now: Millis, slot: usize, exp: Option<i64>) {
        let (enabled, leeway, notice) = self.expiry_settings();
        let expiry = exp.filter(|_| enabled).map(|exp| {
            let exp = i128::from(exp);
            let expires_at = seconds_to_millis(exp);
            TokenExpiry {
                expires_at,
                notice_at: Some(Millis(expires_at.0.saturating_sub(notice * 1000)).max(now)),
                close_at: seconds_to_millis(exp + i128::from(leeway) + 1),
            }
        });
        self.set_expiry(slot, expiry);
        if expiry.is_some_and(|e| e.deadline() <= now) {
            let conn = self.conns[slot].id;
            self.expiry_due(now, conn);
        }
    }

    /// The expiry timer of `conn` fired: send the notice, or close the connection.
    pub(super) fn expiry_due(&mut self, now: Millis, conn: ConnId) {
        let Some(&slot) = self.by_conn.get(&conn) else {
            return;
        };
        if self.conns[slot].closing {
            return;
        }
        let Some(mut expiry) = self.conns[slot].state.expiry else {
            return;
        };
        if now < expiry.deadline() {
            // Not due (a stale timer entry): keep the schedule armed.
            return self.set_expiry(slot, Some(expiry));
        }
        if now >= expiry.close_at {
            self.set_expiry(slot, None);
            self.metrics.token_expirations += 1;
            return self.close(slot, close::TOKEN_EXPIRED, "token expired");
        }
        expiry.notice_at = None;
        self.set_expiry(slot, Some(expiry));
        self.send(
            slot,
            &ServerMessage::TokenExpiring {
                expires_at: iso8601(expiry.expires_at),
            },
        );
    }

    fn refresh_error(
        &mut self,
        slot: usize,
        code: ErrorCode,
        reason: &'static str,
        message: String,
        request_id: Option<Value>,
    ) {
        self.metrics.token_refresh_failures += 1;
        self.metrics.error(code);
        self.send(
            slot,
            &ServerMessage::Error {
                code,
                reason: Some(reason),
                message,
                request_id,
            },
        );
    }

    /// `refresh {token}`: verify the token, require the same user and the route's
    /// scopes, then swap the user and the expiry schedule.
    pub(super) fn refresh(&mut self, now: Millis, slot: usize, token: &str, rid: Option<Value>) {
        let (user, exp) = match self.auth.authenticate_with_expiry(now, token) {
            Ok(v) => v,
            Err(e) => {
                if self.keys_pending(now, token, &e) {
                    let (code, message) = KEYS_UNAVAILABLE;
                    return self.refresh_error(slot, code, "keys_unavailable", message.into(), rid);
                }
                let code = match e {
                    AuthError::MissingToken => ErrorCode::InvalidMessage,
                    _ => ErrorCode::Unauthorized,
                };
                return self.refresh_error(slot, code, e.reason(), e.to_string(), rid);
            }
        };
        let state = &self.conns[slot].state;
        match &state.user {
            Some(current) if current.id == user.id => {}
            Some(_) => {
                return self.refresh_error(
                    slot,
                    ErrorCode::Forbidden,
                    "subject_mismatch",
                    "the token is for another user; a connection keeps its user \
                     (open a new connection to switch users)"
                        .into(),
                    rid,
                )
            }
            None => {
                return self.refresh_error(
                    slot,
                    ErrorCode::Forbidden,
                    "subject_mismatch",
                    "this connection is anonymous; authenticate when connecting \
                     (open a new connection with the token)"
                        .into(),
                    rid,
                )
            }
        }
        if let Some(route) = self.config.routes.get(state.route) {
            if let Some(missing) = route.scopes.iter().find(|s| !user.has_scope(s)) {
                let message = format!("this route requires scope `{missing}`");
                return self.refresh_error(
                    slot,
                    ErrorCode::Forbidden,
                    "missing_scope",
                    message,
                    rid,
                );
            }
        }
        // Same id: the per-user count stays; the shared user view is swapped.
        if let Some(old) = self.conns[slot].user_view.take() {
            self.release_user(&old);
        }
        let view = self.intern_user(&user);
        let public = user.public_view();
        let c = &mut self.conns[slot];
        c.user_view = Some(view);
        c.state.user = Some(Box::new(user));
        self.metrics.token_refreshes += 1;
        let enabled = self.expiry_settings().0;
        let expires_at = exp
            .filter(|_| enabled)
            .map(|e| iso8601(seconds_to_millis(i128::from(e))));
        self.send(
            slot,
            &ServerMessage::Refreshed {
                user: public,
                expires_at,
                request_id: rid,
            },
        );
        self.arm_expiry(now, slot, exp);
    }
}
