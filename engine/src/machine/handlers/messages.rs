//! Application messages (types the deployment declares) and interceptors of built-in
//! messages: the message an interceptor sees and the one it may hand back.

use super::*;

impl Engine {
    /// A frame whose type is not built in: dispatch it if the deployment declares it.
    /// Returns false when the type is not declared (the caller answers
    /// `UNKNOWN_MESSAGE_TYPE`).
    pub(in crate::machine) fn app_message(
        &mut self,
        now: Millis,
        slot: usize,
        message_type: String,
        data: Value,
        rid: Rid,
    ) -> bool {
        let Some(mc) = self.config.messages.get(&message_type).cloned() else {
            return false;
        };
        *self
            .metrics
            .app_messages
            .entry(message_type.clone())
            .or_default() += 1;
        let what = format!("send `{}`", crate::machine::resources::clip(&message_type));
        if let Err((code, m)) = self.role_allowed(slot, &mc.roles, &what) {
            self.send_error(slot, code, m, rid);
            return true;
        }
        let user = self.conns[slot].state.user.as_ref();
        if let Some(missing) = mc
            .scopes
            .iter()
            .find(|s| !user.is_some_and(|u| u.has_scope(s)))
        {
            let code = if user.is_none() {
                ErrorCode::Unauthorized
            } else {
                ErrorCode::Forbidden
            };
            let m = format!("`{message_type}` requires scope `{missing}`");
            self.send_error(slot, code, m, rid);
            return true;
        }
        let app = Arc::clone(&self.app);
        if let Some(schema) = app.schemas.get(&message_type) {
            if let Err(e) = schema.check_insert(&data) {
                self.send_error(slot, ErrorCode::ValidationError, e, rid);
                return true;
            }
        }
        if let Some(g) = app.guards.get(&message_type) {
            if !self.app_guard_allows(slot, g, ("data", &data)) {
                self.metrics.guard_denials += 1;
                self.send_error(slot, ErrorCode::Forbidden, "Access denied", rid);
                return true;
            }
        }
        if mc.cost > 1 && self.config.rate_limit.enabled {
            let cfg = &self.config.rate_limit;
            let ok = match &mut self.conns[slot].state.rate {
                Some(bucket) => bucket.try_take_n(cfg, now, mc.cost - 1),
                None => true,
            };
            if !ok {
                let m = format!(
                    "`{message_type}` costs {} requests; at most {} per {} ms",
                    mc.cost, cfg.max_requests, cfg.window_ms
                );
                self.send_error(slot, ErrorCode::RateLimitExceeded, m, rid);
                return true;
            }
        }
        let call = MessageCall {
            message_type: message_type.clone(),
            data,
            request_id: rid.clone().unwrap_or(Value::Null),
            client: self.client_context(slot),
        };
        let client_id = self.conns[slot].state.client_id.clone();
        let timeout = mc
            .timeout_ms
            .unwrap_or(self.config.limits.host_call_timeout_ms);
        if let Err((code, m)) = self.handler_call(
            now,
            Some(slot),
            client_id,
            HostRequest::Message(Box::new(call)),
            HandlerThen::Message { message_type },
            rid.clone(),
            timeout,
        ) {
            self.send_error(slot, code, m, rid);
        }
        true
    }

    /// Send `req` to its interceptor if one is configured (returns None: the call is
    /// made, or refused with an error); otherwise hand it back.
    pub(in crate::machine) fn maybe_intercept(
        &mut self,
        now: Millis,
        slot: usize,
        req: Request,
    ) -> Option<Request> {
        if self.config.interceptors.is_empty() {
            return Some(req);
        }
        let type_name = req.message.type_name();
        if !self
            .config
            .interceptors
            .get(type_name)
            .is_some_and(|t| t.is_on())
        {
            return Some(req);
        }
        let message = message_json(&req.message)?;
        let rid = req.request_id.clone();
        let call = InterceptCall {
            message_type: type_name.to_string(),
            message,
            request_id: rid.clone().unwrap_or(Value::Null),
            client: self.client_context(slot),
        };
        let client_id = self.conns[slot].state.client_id.clone();
        let timeout = self.hook_timeout();
        if let Err((code, m)) = self.handler_call(
            now,
            Some(slot),
            client_id,
            HostRequest::Intercept(Box::new(call)),
            HandlerThen::Intercept(Box::new(req)),
            rid.clone(),
            timeout,
        ) {
            self.send_error(slot, code, m, rid);
        }
        None
    }
}

/// A built-in message as JSON (what an interceptor sees). None for types that cannot
/// be intercepted.
pub(super) fn message_json(m: &ClientMessage) -> Option<Value> {
    let mut o = Map::new();
    o.insert("type".into(), Value::String(m.type_name().into()));
    let mut put = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            o.insert(k.into(), v);
        }
    };
    let s = |v: &String| Some(Value::String(v.clone()));
    match m {
        ClientMessage::Publish { channel, message } => {
            put("channel", s(channel));
            put("message", message.clone());
        }
        ClientMessage::RoomMessage {
            room,
            data,
            event,
            ack,
        } => {
            put("room", s(room));
            put("data", data.clone());
            put("event", event.as_ref().and_then(s));
            put("ack", Some(Value::Bool(*ack)));
        }
        ClientMessage::Direct { to, data, ack } => {
            put("to", s(to));
            put("data", data.clone());
            put("ack", Some(Value::Bool(*ack)));
        }
        ClientMessage::Insert { resource, data } => {
            put("resource", s(resource));
            put("data", Some(Value::Object(data.clone())));
        }
        ClientMessage::Update { resource, id, data } => {
            put("resource", s(resource));
            put("id", s(id));
            put("data", Some(Value::Object(data.clone())));
        }
        ClientMessage::Delete { resource, id } => {
            put("resource", s(resource));
            put("id", s(id));
        }
        ClientMessage::Subscribe {
            resource,
            channel,
            filter,
            events,
            since,
        } => {
            put("resource", resource.as_ref().and_then(s));
            put(
                "since",
                since
                    .as_ref()
                    .map(|p| serde_json::to_value(p).unwrap_or(Value::Null)),
            );
            put("channel", channel.as_ref().and_then(s));
            put("filter", filter.clone());
            put(
                "events",
                events
                    .as_ref()
                    .map(|e| serde_json::to_value(e).unwrap_or(Value::Null)),
            );
        }
        ClientMessage::Join { room } => put("room", s(room)),
        _ => return None,
    }
    Some(Value::Object(o))
}

/// The message an interceptor's `modified` describes, if it is a valid message of the
/// same type.
pub(super) fn modified_request(type_name: &str, v: Value) -> Option<ClientMessage> {
    let Value::Object(mut m) = v else {
        return None;
    };
    m.insert("type".into(), Value::String(type_name.to_string()));
    let req = decode_value(Value::Object(m)).ok()?;
    (req.message.type_name() == type_name).then_some(req.message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modified_messages_keep_their_type() {
        let m = modified_request("publish", json!({"channel": "c", "message": 1})).unwrap();
        assert_eq!(m.type_name(), "publish");
        assert!(modified_request("publish", json!({"type": "join", "room": "r"})).is_none());
        assert!(modified_request("publish", json!({"nochannel": 1})).is_none());
    }
}
