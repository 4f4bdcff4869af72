//! Handler answers: completions and timeouts of handler calls, application errors,
//! and the server-API commands an answer carries.

use super::messages::modified_request;
use super::*;

impl Engine {
    /// Whether `op` is a handler call in flight.
    pub(in crate::machine) fn is_handler_call(&self, op: OpId) -> bool {
        self.pending
            .get(&op)
            .is_some_and(|c| matches!(c.then, Continuation::Handler(_)))
    }

    /// A handler call completed.
    pub(in crate::machine) fn handler_completed(
        &mut self,
        now: Millis,
        op: OpId,
        result: HostResult,
    ) {
        let Some(call) = self.pending.remove(&op) else {
            self.metrics.late_completions += 1;
            return;
        };
        self.metrics.pending_calls = self.pending.len() as u64;
        self.timers
            .reschedule(TimerKey::Op(op), Some(call.deadline), None);
        let slot = self.call_slot(&call);
        if let Some(s) = slot {
            self.conns[s].pending = self.conns[s].pending.saturating_sub(1);
        }
        let live = slot.filter(|s| !self.conns[*s].closing);
        let Continuation::Handler(then) = call.then else {
            return;
        };
        let resp = match result {
            HostResult::Handler(r) => *r,
            _ => HandlerResponse::failed("the host answered a handler call with another kind"),
        };
        if resp.failed.is_some() {
            self.metrics.handler_failures += 1;
        } else if !matches!(then, HandlerThen::Connect) {
            // (The connect hook's commands run after the welcome.)
            let tenant = match &then {
                HandlerThen::Disconnect { tenant } => tenant.clone(),
                _ => slot.and_then(|s| self.conns[s].state.tenant.clone()),
            };
            self.run_handler_commands(now, &call.client_id, tenant, &resp.commands);
        }
        let rid = call.request_id;
        match then {
            HandlerThen::Message { message_type } => {
                let Some(s) = live else { return };
                if resp.failed.is_some() {
                    let m = format!(
                        "the `{}` handler failed",
                        crate::machine::resources::clip(&message_type)
                    );
                    self.send_error(s, ErrorCode::InternalError, m, rid);
                } else if let Some(e) = resp.error {
                    self.send_app_error(s, &e, rid);
                } else if let Some(data) = resp.reply {
                    self.send(
                        s,
                        &ServerMessage::Reply {
                            request_id: rid,
                            data,
                        },
                    );
                }
            }
            HandlerThen::Connect => {
                let Some(s) = live else { return };
                self.connect_answered(now, s, resp);
            }
            HandlerThen::Disconnect { .. } => {}
            HandlerThen::Intercept(req) => {
                let Some(s) = live else { return };
                let type_name = req.message.type_name();
                if resp.failed.is_some() {
                    let m = format!("the `{type_name}` interceptor failed");
                    return self.send_error(s, ErrorCode::InternalError, m, rid);
                }
                if let Some(e) = resp.error {
                    self.metrics.intercept_cancels += 1;
                    return self.send_app_error(s, &e, rid);
                }
                let req = match resp.modified {
                    None => *req,
                    Some(v) => match modified_request(type_name, v) {
                        Some(message) => {
                            self.metrics.intercept_modifications += 1;
                            Request {
                                request_id: rid.clone(),
                                message,
                            }
                        }
                        None => {
                            self.metrics.handler_failures += 1;
                            let m = format!(
                                "the `{type_name}` interceptor returned an invalid message"
                            );
                            return self.send_error(s, ErrorCode::InternalError, m, rid);
                        }
                    },
                };
                self.dispatch_checked(now, s, req);
            }
        }
    }

    /// A handler call missed its deadline; true when handled here (the `connect` hook:
    /// the connection is closed), false for the common `TIMEOUT` answer.
    pub(in crate::machine) fn handler_timed_out(&mut self, call: &PendingCall) -> bool {
        if !matches!(call.then, Continuation::Handler(HandlerThen::Connect)) {
            return false;
        }
        if let Some(s) = self.call_slot(call) {
            self.conns[s].pending = self.conns[s].pending.saturating_sub(1);
            if !self.conns[s].closing {
                self.connect_failed(s, "the connect hook timed out");
            }
        }
        true
    }

    /// Send an application-chosen error.
    pub(in crate::machine) fn send_app_error(&mut self, slot: usize, e: &HandlerError, rid: Rid) {
        let message = clip_message(&e.message, 500);
        if let Some(code) = ErrorCode::ALL.iter().find(|c| c.as_str() == e.code) {
            return self.send_error(slot, *code, message, rid);
        }
        if !valid_app_code(&e.code) {
            self.metrics.handler_failures += 1;
            return self.send_error(
                slot,
                ErrorCode::InternalError,
                "the handler answered with an invalid error code",
                rid,
            );
        }
        self.metrics.errors += 1;
        self.send(
            slot,
            &ServerMessage::AppError {
                code: e.code.clone(),
                message,
                request_id: rid,
            },
        );
    }

    /// Run the server-API commands of a handler's answer, in order. A command without
    /// `clientId` is about the caller; `send` is `sendTo` the caller; a command about
    /// rooms, channels or broadcasts without `tenant` is in the caller's tenant. Failures are
    /// counted (`handlerCommandErrors`), never sent to the caller.
    pub(in crate::machine) fn run_handler_commands(
        &mut self,
        now: Millis,
        caller: &str,
        tenant: Option<String>,
        commands: &[Value],
    ) {
        for raw in commands {
            let Some(mut m) = raw.as_object().cloned() else {
                self.metrics.handler_command_errors += 1;
                continue;
            };
            if m.get("command") == Some(&json!("send")) {
                m.insert("command".into(), json!("sendTo"));
            }
            let takes_client = matches!(
                m.get("command").and_then(Value::as_str),
                Some("sendTo" | "disconnect" | "joinRoom" | "leaveRoom" | "clientInfo")
            );
            if takes_client && !m.contains_key("clientId") {
                m.insert("clientId".into(), Value::String(caller.to_string()));
            }
            // Rooms, channels and broadcasts default to the caller's tenant.
            let takes_tenant = matches!(
                m.get("command").and_then(Value::as_str),
                Some(
                    "broadcast"
                        | "broadcastToResource"
                        | "publish"
                        | "history"
                        | "presence"
                        | "presenceStats"
                        | "sendToUser"
                        | "createRoom"
                        | "deleteRoom"
                        | "sendToRoom"
                        | "roomInfo"
                )
            );
            if takes_tenant && !m.contains_key("tenant") {
                if let Some(t) = &tenant {
                    m.insert("tenant".into(), Value::String(t.clone()));
                }
            }
            let ok = match serde_json::from_value::<crate::machine::Command>(Value::Object(m)) {
                Ok(
                    crate::machine::Command::Insert { .. }
                    | crate::machine::Command::Update { .. }
                    | crate::machine::Command::Delete { .. }
                    | crate::machine::Command::Shutdown { .. }
                    | crate::machine::Command::SetJwks { .. },
                ) => false,
                Ok(cmd) => self.cluster_command(now, cmd).is_ok(),
                Err(_) => false,
            };
            if !ok {
                self.metrics.handler_command_errors += 1;
            }
        }
    }
}
