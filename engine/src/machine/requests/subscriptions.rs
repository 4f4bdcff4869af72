//! Resource subscriptions and unsubscribe (channel subscriptions are in `streams`).

use super::*;

impl Engine {
    pub(in crate::machine) fn subscription_limit_reached(&self, slot: usize) -> bool {
        self.conns[slot].state.subscriptions.len()
            >= self.config.limits.max_subscriptions_per_connection
    }

    pub(in crate::machine) fn next_subscription_id(&mut self, slot: usize) -> String {
        let s = &mut self.conns[slot].state;
        s.next_subscription += 1;
        format!("sub-{}", s.next_subscription)
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn subscribe_resource(
        &mut self,
        now: Millis,
        slot: usize,
        resource: String,
        filter: Option<Value>,
        events: Option<Vec<ChangeKind>>,
        since: Option<crate::broker::Since>,
        rid: Rid,
    ) {
        let rc = match self.resource_access(slot, &resource) {
            Ok(rc) => rc,
            Err((code, msg)) => return self.send_error(slot, code, msg, rid),
        };
        let client_filter = match filter.as_ref().filter(|f| !f.is_null()) {
            None => None,
            Some(f) => match Self::parse_client_filter(&rc, &resource, f) {
                Ok(parsed) => Some(parsed),
                Err((code, m)) => return self.send_error(slot, code, m, rid),
            },
        };
        let offered = &rc.events;
        let effective: Vec<ChangeKind> = match &events {
            None => offered.clone(),
            Some(list) if list.is_empty() => {
                return self.send_error(
                    slot,
                    ErrorCode::InvalidMessage,
                    "`events` must name at least one of insert, update, delete",
                    rid,
                )
            }
            Some(list) => ChangeKind::ALL
                .into_iter()
                .filter(|k| list.contains(k) && offered.contains(k))
                .collect(),
        };
        if effective.is_empty() {
            return self.send_error(
                slot,
                ErrorCode::InvalidMessage,
                format!(
                    "resource `{}` does not broadcast any of the requested events",
                    clip(&resource)
                ),
                rid,
            );
        }
        if self.subscription_limit_reached(slot) {
            return self.send_error(
                slot,
                ErrorCode::LimitExceeded,
                format!(
                    "at most {} subscriptions per connection",
                    self.config.limits.max_subscriptions_per_connection
                ),
                rid,
            );
        }
        let mut op = ResourceOp::new(GuardAction::Subscribe, resource);
        op.filter = filter.filter(|f| !f.is_null());
        op.client_filter = client_filter;
        op.events = effective;
        op.since = since;
        self.run_op(now, slot, op, rid);
    }

    /// Remove the subscription at `index` of a connection from the hub and its state.
    pub(in crate::machine) fn remove_subscription(
        &mut self,
        slot: usize,
        index: usize,
    ) -> Subscription {
        let c = &mut self.conns[slot];
        let key = c.sub_keys.remove(index);
        let sub = c.state.subscriptions.remove(index);
        match &sub.target {
            SubTarget::Resource { name, .. } => self.hub.unsubscribe_resource(key, name),
            SubTarget::Channel { name } => {
                let key = crate::tenant::scoped(c.state.tenant.as_deref(), name);
                self.hub.leave_channel(slot, &key);
                self.channel_left(slot, name);
            }
        }
        sub
    }

    pub(super) fn unsubscribe(
        &mut self,
        slot: usize,
        subscription_id: Option<String>,
        resource: Option<String>,
        channel: Option<String>,
        filter: Option<Value>,
        rid: Rid,
    ) {
        // A filter naming a protected field is refused here too (never compared), so
        // `unsubscribe` answers the same as `subscribe` would.
        if let (Some(r), Some(f)) = (&resource, &filter) {
            // A filter that does not parse is only compared, never refused.
            let rc = self.config.resources.get(r);
            if let Some((rc, parsed)) = rc.and_then(|rc| Some((rc, Filter::parse(f).ok()?))) {
                if let Err((code, m)) = Self::check_filter_fields(rc, r, &parsed) {
                    return self.send_error(slot, code, m, rid);
                }
            }
        }
        let subs = &self.conns[slot].state.subscriptions;
        let empty = Value::Object(Default::default());
        let norm = |f: Option<&Value>| match f {
            None | Some(Value::Null) => empty.clone(),
            Some(v) => v.clone(),
        };
        let matching: Vec<usize> = match (&subscription_id, &resource, &channel) {
            (Some(id), _, _) => subs.iter().position(|s| &s.id == id).into_iter().collect(),
            (None, Some(r), None) => subs
                .iter()
                .enumerate()
                .filter(|(_, s)| match &s.target {
                    SubTarget::Resource { name, filter: f, .. } => {
                        name == r
                            && filter
                                .as_ref()
                                .is_none_or(|want| values_equal(&norm(f.as_ref().map(crate::connection::JsonText::value).as_ref()), &norm(Some(want))))
                    }
                    SubTarget::Channel { .. } => false,
                })
                .map(|(i, _)| i)
                .collect(),
            (None, None, Some(ch)) if filter.is_none() => subs
                .iter()
                .position(|s| matches!(&s.target, SubTarget::Channel { name } if name == ch))
                .into_iter()
                .collect(),
            _ => {
                return self.send_error(
                    slot,
                    ErrorCode::InvalidMessage,
                    "unsubscribe needs `subscriptionId`, `resource` (optionally with `filter`) or `channel`",
                    rid,
                )
            }
        };
        if matching.is_empty() {
            return self.send_error(
                slot,
                ErrorCode::NotFound,
                "no subscription matches this unsubscribe",
                rid,
            );
        }
        let mut ids = Vec::with_capacity(matching.len());
        for index in matching.into_iter().rev() {
            ids.push(self.remove_subscription(slot, index).id);
        }
        ids.reverse();
        self.send(
            slot,
            &ServerMessage::Unsubscribed {
                subscription_ids: ids,
                resource,
                channel,
                filter,
                request_id: rid,
            },
        );
    }
}
