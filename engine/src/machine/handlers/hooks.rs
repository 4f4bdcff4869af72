//! The `connect` and `disconnect` hooks: admission of a new connection, its answer
//! (user, commands), and the notice when a welcomed connection ends.

use super::*;

impl Engine {
    pub(in crate::machine) fn connect_hook_on(&self) -> bool {
        self.config
            .hooks
            .connect
            .as_ref()
            .is_some_and(|h| h.is_on())
    }

    /// Ask the `connect` hook about a new connection; the welcome waits for it.
    pub(in crate::machine) fn run_connect_hook(&mut self, now: Millis, slot: usize) {
        self.conns[slot].awaiting_connect = true;
        let call = HookCall {
            hook: HookKind::Connect,
            client: self.client_context(slot),
            code: None,
            reason: None,
            peer: Some(self.conns[slot].state.peer.clone()),
        };
        let client_id = self.conns[slot].state.client_id.clone();
        let timeout = self.hook_timeout();
        if let Err((code, m)) = self.handler_call(
            now,
            Some(slot),
            client_id,
            HostRequest::Hook(Box::new(call)),
            HandlerThen::Connect,
            None,
            timeout,
        ) {
            self.send_error(slot, code, m, None);
            self.close(slot, CLOSE_CONNECT_FAILED, "server busy; retry later");
        }
    }

    /// A frame arrived before the `connect` hook answered.
    pub(in crate::machine) fn not_admitted(&mut self, slot: usize, rid: Rid) {
        self.send_error(
            slot,
            ErrorCode::Unavailable,
            "the connection is not admitted yet; wait for the `connected` welcome",
            rid,
        );
    }

    /// Tell the `disconnect` hook that a welcomed connection ended.
    pub(in crate::machine) fn run_disconnect_hook(
        &mut self,
        now: Millis,
        c: &Connection,
        code: Option<u16>,
    ) {
        let on = self
            .config
            .hooks
            .disconnect
            .as_ref()
            .is_some_and(|h| h.is_on());
        if !on || c.awaiting_connect {
            return;
        }
        let (code, reason) = match c.closed_with.as_deref() {
            Some((code, reason)) => (Some(*code), Some(reason.clone())),
            None => (code, None),
        };
        let client = ClientContext {
            client_id: c.state.client_id.clone(),
            user: c
                .state
                .user
                .as_ref()
                .map_or(Value::Null, |u| u.as_filter_subject()),
            route: self
                .config
                .routes
                .get(c.state.route)
                .map(|r| r.path.clone())
                .unwrap_or_default(),
            params: c.state.params.clone(),
            tenant: c.state.tenant.clone(),
            meta: c.state.meta.as_deref().cloned().unwrap_or(Value::Null),
        };
        let call = HookCall {
            hook: HookKind::Disconnect,
            client,
            code,
            reason,
            peer: None,
        };
        let timeout = self.hook_timeout();
        if self
            .handler_call(
                now,
                None,
                c.state.client_id.clone(),
                HostRequest::Hook(Box::new(call)),
                HandlerThen::Disconnect {
                    tenant: c.state.tenant.clone(),
                },
                None,
                timeout,
            )
            .is_err()
        {
            self.metrics.dropped_hook_calls += 1;
        }
    }

    /// The `connect` hook answered for the connection in `slot`.
    pub(super) fn connect_answered(&mut self, now: Millis, slot: usize, resp: HandlerResponse) {
        // A refused connection stays "not admitted": it never gets a disconnect hook.
        if resp.failed.is_some() {
            return self.connect_failed(slot, "the connect hook failed");
        }
        if let Some(e) = resp.error {
            let close_code = e
                .close_code
                .filter(|c| (4000..=4999).contains(c))
                .unwrap_or(CLOSE_CONNECT_REFUSED);
            let reason = clip_message(&e.message, 123);
            self.send_app_error(slot, &e, None);
            return self.close(slot, close_code, &reason);
        }
        if let Some(u) = &resp.user {
            let user = match u {
                Value::Null => None,
                v => match user_from_json(v) {
                    Ok(u) => Some(u),
                    Err(_) => {
                        self.metrics.handler_failures += 1;
                        return self.connect_failed(slot, "the connect hook returned a bad user");
                    }
                },
            };
            self.replace_user(slot, user);
        }
        if let Some(meta) = resp.meta {
            self.conns[slot].state.meta = (!meta.is_null()).then(|| Box::new(meta));
        }
        self.conns[slot].awaiting_connect = false;
        self.welcome(now, slot);
        // The expiry schedule starts with the welcome: a notice already due is sent
        // right after it, a token that expired while the hook ran closes now (4401).
        let exp = self.conns[slot].connect_exp.take();
        self.arm_expiry(now, slot, exp);
        if self.conns[slot].closing {
            return;
        }
        // After the welcome, so server-side joins reach a client that knows its id.
        let client_id = self.conns[slot].state.client_id.clone();
        let tenant = self.conns[slot].state.tenant.clone();
        self.run_handler_commands(now, &client_id, tenant, &resp.commands);
    }

    pub(super) fn connect_failed(&mut self, slot: usize, reason: &str) {
        self.send_error(
            slot,
            ErrorCode::Unavailable,
            "the server could not admit the connection; retry later",
            None,
        );
        self.close(slot, CLOSE_CONNECT_FAILED, reason);
    }

    /// Swap a connection's user (keeping the per-user counts and shared views right).
    pub(in crate::machine) fn replace_user(&mut self, slot: usize, user: Option<User>) {
        if let Some(view) = self.conns[slot].user_view.take() {
            self.release_user(&view);
        }
        if let Some(old) = self.conns[slot].state.user.take() {
            if let Some(n) = self.per_user.get_mut(&old.id) {
                *n -= 1;
                if *n == 0 {
                    self.per_user.remove(&old.id);
                }
            }
        }
        if let Some(u) = &user {
            *self.per_user.entry(u.id.clone()).or_default() += 1;
            let view = self.intern_user(u);
            self.conns[slot].user_view = Some(view);
        }
        if self.cluster.is_some() {
            let c = &self.conns[slot].state;
            let (client_id, tenant, ip) = (c.client_id.clone(), c.tenant.clone(), c.peer.clone());
            let user_id = user.as_ref().map(|u| u.id.clone());
            let (tenant, user_id) = (tenant.as_deref(), user_id.as_deref());
            self.cluster_client(&client_id, tenant, user_id, Some(&ip), true);
        }
        self.conns[slot].state.user = user.map(Box::new);
    }
}
