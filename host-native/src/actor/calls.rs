//! Host calls ([`engine::Action::Call`]): storage calls go to the store thread, guard
//! calls to the application's [`GuardCallback`] on a task of their own, handler calls
//! to the [`crate::handlers::Runner`], key-source fetches to the [`crate::fetch`]
//! client; their answers come back to the actor as `Input::Completed`.

use std::time::Duration;

use engine::hostcall::GuardDecision;
use engine::{ConnId, FetchRequest, FetchResponse, HostRequest, HostResult, Input, Millis, OpId};
use tokio::sync::mpsc;

use super::{Actor, GUARD_GRACE};
use crate::guard::{GuardCallback, GuardRequest};
use crate::store::{Job, Reply};

impl Actor {
    /// Make the host call `op` (for `conn`, answered by `deadline`).
    pub(super) fn call(
        &mut self,
        now: Millis,
        op: OpId,
        conn: Option<ConnId>,
        request: HostRequest,
        deadline: Millis,
    ) {
        match request {
            HostRequest::Store(request) => {
                if !self.store.submit(Job {
                    request,
                    reply: Reply::Engine(op),
                    lane: crate::store::lane_of(conn),
                }) {
                    self.engine_completed_unavailable(now, op);
                }
            }
            HostRequest::Guard {
                resource,
                action,
                context,
            } => match &self.guard {
                Some(guard) => {
                    let req = GuardRequest::from_call(resource, action, *context);
                    let budget = Duration::from_millis(deadline.since(now)) + GUARD_GRACE;
                    spawn_guard(guard.clone(), req, op, budget, self.guard_tx.clone());
                }
                None => {
                    // Not reached: without a callback the engine denies host guard
                    // calls itself (`host_capabilities`). Fail closed all the same.
                    let decision = GuardDecision::Deny {
                        message: Some(engine::hostcall::NO_HOST_GUARD.into()),
                    };
                    self.complete_now(now, op, HostResult::Guard(decision));
                }
            },
            HostRequest::Message(_) | HostRequest::Hook(_) | HostRequest::Intercept(_) => {
                let client_id = match &request {
                    HostRequest::Message(c) => c.client.client_id.clone(),
                    HostRequest::Hook(c) => c.client.client_id.clone(),
                    HostRequest::Intercept(c) => c.client.client_id.clone(),
                    _ => String::new(),
                };
                match &self.runner {
                    Some(runner) => {
                        let budget = Duration::from_millis(deadline.since(now).max(1));
                        // A handler that answers without waiting completes here, in order.
                        if let Some(r) =
                            runner.spawn(self.engine.config(), op, client_id, request, budget)
                        {
                            self.complete_now(now, op, HostResult::Handler(Box::new(r)));
                        }
                    }
                    None => {
                        // Not reached: without handlers the engine fails these calls
                        // itself (`host_capabilities`).
                        let r = engine::app::HandlerResponse::failed(engine::hostcall::NO_HANDLERS);
                        self.complete_now(now, op, HostResult::Handler(Box::new(r)));
                    }
                }
            }
            HostRequest::Fetch(FetchRequest { url }) => match &self.fetcher {
                Some(fetcher) => {
                    let (fetcher, tx) = (fetcher.clone(), self.fetch_tx.clone());
                    let budget = Duration::from_millis(deadline.since(now).max(1));
                    tokio::spawn(async move {
                        let response = fetcher.get(&url, budget).await;
                        if let Some(e) = &response.error {
                            tracing::debug!(%url, error = %e, "key source fetch failed");
                        }
                        let _ = tx.send((op, response));
                    });
                }
                None => {
                    let response = FetchResponse {
                        error: Some("this server has no HTTP client".into()),
                        ..FetchResponse::default()
                    };
                    self.complete_now(now, op, HostResult::Fetch(response));
                }
            },
        }
    }

    /// The store thread is gone: answer the call right away so the client is not left waiting.
    fn engine_completed_unavailable(&mut self, now: Millis, op: engine::OpId) {
        let outcome =
            engine::store::failed(engine::StoreErrorKind::Unavailable, "the store has stopped");
        self.complete_now(now, op, HostResult::Store(outcome));
    }

    /// Answer a call without doing I/O.
    pub(super) fn complete_now(&mut self, now: Millis, op: engine::OpId, result: HostResult) {
        if let Err(e) = self.engine.handle(now, Input::Completed { op, result }) {
            tracing::error!(error = %e, "engine refused a completion");
        }
    }
}

/// Run a guard callback on its own task and send its decision to the actor. A panic
/// counts as a denial; a callback still running `budget` after the call was made is
/// aborted (the engine has given up on it already).
fn spawn_guard(
    guard: GuardCallback,
    req: GuardRequest,
    op: OpId,
    budget: Duration,
    tx: mpsc::UnboundedSender<(OpId, GuardDecision)>,
) {
    let (resource, action) = (req.resource.clone(), req.action);
    tokio::spawn(async move {
        let mut task = tokio::spawn(async move { guard.call(req).await });
        let decision = match tokio::time::timeout(budget, &mut task).await {
            Ok(Ok(decision)) => decision,
            Ok(Err(e)) => {
                tracing::error!(%resource, action = action.as_str(), error = %e, "guard callback failed; denying");
                GuardDecision::Deny { message: None }
            }
            Err(_) => {
                task.abort();
                tracing::warn!(%resource, action = action.as_str(), "guard callback still running long after the engine's deadline; abandoned");
                return;
            }
        };
        let _ = tx.send((op, decision));
    });
}
