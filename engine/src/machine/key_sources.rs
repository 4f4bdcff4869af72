//! Remote key sources in the engine: fetch host calls, their timers, installing the
//! keys, metrics and logs. The policy itself (what, when, what a response means) is
//! [`crate::auth::sources`].

use super::{Action, Engine};
use crate::auth::sources::{Step, UnknownKid};
use crate::auth::{unverified_issuer, AuthError};
use crate::error::ErrorCode;
use crate::hostcall::{FetchRequest, FetchResponse, HostRequest};
use crate::timers::TimerKey;
use crate::types::{Millis, OpId};

/// The answer while an issuer's keys are being fetched: the client should retry.
pub(super) const KEYS_UNAVAILABLE: (ErrorCode, &str) = (
    ErrorCode::Unavailable,
    "the token's signing key is being fetched from its issuer; retry in a few seconds",
);

impl Engine {
    /// A new op id and deadline for a fetch started at `now`.
    fn fetch_op(&mut self, now: Millis) -> (OpId, Millis) {
        (
            self.ops.next(),
            now.plus(self.config.limits.host_call_timeout_ms),
        )
    }

    /// Run `f` on the key sources and keep source `i`'s timer in step with its state.
    fn with_source<T>(&mut self, i: usize, f: impl FnOnce(&mut Engine) -> T) -> T {
        let old = self.auth.sources.sources.get(i).and_then(|s| s.deadline());
        let out = f(self);
        let new = self.auth.sources.sources.get(i).and_then(|s| s.deadline());
        // The entry may already be gone (popped by `timeout`); removing it again is a no-op.
        self.timers.reschedule(TimerKey::KeySource(i), old, None);
        self.timers.reschedule(TimerKey::KeySource(i), None, new);
        out
    }

    /// Source `i`'s timer fired: its next fetch is due, or its fetch missed the deadline.
    pub(super) fn key_source_due(&mut self, now: Millis, i: usize) {
        let Some(source) = self.auth.sources.sources.get(i) else {
            return;
        };
        let timed_out = source.in_flight.is_some();
        if !timed_out && source.next_at.is_some_and(|t| t > now) {
            return;
        }
        self.with_source(i, |e| {
            let step = if timed_out {
                e.metrics.timed_out_calls += 1;
                e.auth.sources.timed_out(now, i)
            } else {
                let (op, deadline) = e.fetch_op(now);
                e.auth.sources.start(i, op, deadline)
            };
            e.key_step(now, i, step);
        });
    }

    /// The host answered a fetch call.
    pub(super) fn fetch_completed(&mut self, now: Millis, op: OpId, response: &FetchResponse) {
        let Some(i) = self.auth.sources.by_op(op) else {
            self.metrics.late_completions += 1;
            return;
        };
        self.with_source(i, |e| {
            let deadline = now.plus(e.config.limits.host_call_timeout_ms);
            let ops = &mut e.ops;
            let step = e
                .auth
                .sources
                .response(now, i, response, || (ops.next(), deadline));
            e.key_step(now, i, step);
        });
    }

    /// Carry out one step of source `i`.
    fn key_step(&mut self, now: Millis, i: usize, step: Step) {
        let issuer = self.auth.sources.sources[i].issuer.clone();
        match step {
            Step::Fetch { op, document, url } => {
                let deadline = self.auth.sources.sources[i]
                    .in_flight
                    .as_ref()
                    .map_or(now, |f| f.3);
                log::debug!(
                    "key source {issuer}: fetching the {} document {url}",
                    document.as_str()
                );
                self.actions.push_back(Action::Call {
                    op,
                    conn: None,
                    deadline,
                    request: HostRequest::Fetch(FetchRequest { url }),
                });
            }
            Step::Install(doc) => match self.auth.set_remote_jwks(&issuer, &doc) {
                Ok(n) => {
                    self.auth.sources.installed(now, i, Ok(()));
                    *self.metrics.key_fetches.entry(issuer.clone()).or_default() += 1;
                    let next = self.auth.sources.sources[i]
                        .next_at
                        .map_or(0, |t| t.since(now) / 1000);
                    log::info!(
                        "key source {issuer}: installed {n} signing keys; next refresh in {next} s"
                    );
                }
                Err(reason) => {
                    let reason = format!("the JWKS was refused: {reason}");
                    if let Some(step) = self.auth.sources.installed(now, i, Err(reason)) {
                        self.key_step(now, i, step);
                    }
                }
            },
            Step::Failed {
                document,
                reason,
                retry_at,
            } => {
                *self
                    .metrics
                    .key_fetch_failures
                    .entry(issuer.clone())
                    .or_default() += 1;
                let kept = self.auth.remote_key_count(&issuer);
                log::warn!(
                    "key source {issuer}: fetching the {} document failed: {reason}; \
                     keeping the {kept} keys from the last good fetch; retrying in {} s",
                    document.as_str(),
                    retry_at.since(now) / 1000
                );
            }
        }
    }

    /// Whether a credential that failed with `e` should be retried because the keys of
    /// its issuer are being fetched (an unknown `kid` may start that fetch, at most
    /// once per cooldown per issuer).
    pub(super) fn keys_pending(&mut self, now: Millis, token: &str, e: &AuthError) -> bool {
        if !matches!(e, AuthError::UnknownKey { .. }) {
            return false;
        }
        let Some(issuer) = unverified_issuer(token) else {
            return false;
        };
        let Some(i) = self
            .auth
            .sources
            .sources
            .iter()
            .position(|s| s.issuer == issuer)
        else {
            return false;
        };
        self.with_source(i, |e| {
            let deadline = now.plus(e.config.limits.host_call_timeout_ms);
            let ops = &mut e.ops;
            match e
                .auth
                .sources
                .unknown_kid(now, &issuer, || (ops.next(), deadline))
            {
                UnknownKid::NotRemote | UnknownKid::Unknown => false,
                UnknownKid::Retry(None) => true,
                UnknownKid::Retry(Some(step)) => {
                    e.metrics.unknown_kid_fetches += 1;
                    e.key_step(now, i, *step);
                    true
                }
            }
        })
    }
}
