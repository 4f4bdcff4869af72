//! Channel streams: namespace permissions, publications through the broker (offsets,
//! epochs, history), recovery on `subscribe` with `since`, `history`, presence and
//! join/leave pushes.

use std::sync::Arc;

use serde_json::value::RawValue;
use serde_json::{json, Value};

use super::cluster_streams::{Access, Waiting};
use super::server_api::{err, CommandError};
use super::Engine;
use crate::broker::{HistoryQuery, Publication, Since, StreamPosition};
use crate::connection::{SubTarget, Subscription};
use crate::error::ErrorCode;
use crate::namespace::{CompiledPermission, Namespace, PatternMatch};
use crate::protocol::codec::Outbound;
use crate::protocol::{MemberView, ServerMessage, StreamState};
use crate::timestamp::iso8601;
use crate::types::{ConnId, Millis};

type Rid = Option<Value>;

/// What a permission is checked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ChannelAction {
    Subscribe,
    Publish,
}

/// A publication's JSON as stored in history (`{offset, from, data, timestamp}`).
pub(super) fn publication_json(
    offset: u64,
    from: &str,
    data: Option<&Value>,
    timestamp: &str,
) -> Box<RawValue> {
    let mut m = serde_json::Map::new();
    m.insert("offset".into(), json!(offset));
    m.insert("from".into(), json!(from));
    if let Some(d) = data {
        m.insert("data".into(), d.clone());
    }
    m.insert("timestamp".into(), json!(timestamp));
    let text = serde_json::to_string(&m).unwrap_or_else(|_| "{}".into());
    RawValue::from_string(text).unwrap_or_else(|_| empty_object())
}

fn empty_object() -> Box<RawValue> {
    // `{}` is valid JSON; the fallback of the fallback keeps this panic-free.
    RawValue::from_string("{}".into()).unwrap_or_else(|e| {
        log::error!("broker: {e}");
        Box::<RawValue>::default()
    })
}

impl Engine {
    /// The namespace deciding for `channel`, if any.
    pub(super) fn namespace(&self, channel: &str) -> Option<(Arc<Namespace>, PatternMatch)> {
        self.namespaces.find(channel)
    }

    /// The epoch for `channel`'s stream should the broker have to create it: drawn from
    /// the seeded generator only then, so existing streams cost no randomness.
    pub(super) fn epoch_for(&mut self, now: Millis, channel: &str) -> String {
        self.broker.prune(channel, now);
        if self.broker.contains(channel) {
            String::new()
        } else {
            self.random_id(8)
        }
    }

    /// Whether the connection at `slot` may subscribe to or publish on `channel`.
    pub(super) fn channel_allowed(
        &self,
        slot: usize,
        channel: &str,
        action: ChannelAction,
    ) -> Result<Option<Arc<Namespace>>, (ErrorCode, String)> {
        let what = match action {
            ChannelAction::Subscribe => "subscribe to",
            ChannelAction::Publish => "publish on",
        };
        let Some((ns, m)) = self.namespace(channel) else {
            let roles = match action {
                ChannelAction::Subscribe => &self.config.channels.subscribe_roles,
                ChannelAction::Publish => &self.config.channels.publish_roles,
            };
            let what = match action {
                ChannelAction::Subscribe => "subscribe to channels",
                ChannelAction::Publish => "publish",
            };
            return self.role_allowed(slot, roles, what).map(|()| None);
        };
        let user = self.conns[slot].state.user.as_ref();
        if action == ChannelAction::Subscribe {
            if let Some(owner) = &m.owner {
                match user {
                    None => {
                        return Err((
                            ErrorCode::Unauthorized,
                            format!(
                                "channel `{}` belongs to a user: authenticate",
                                clip(channel)
                            ),
                        ))
                    }
                    Some(u) if u.id != *owner => {
                        return Err((
                            ErrorCode::Forbidden,
                            format!("channel `{}` belongs to another user", clip(channel)),
                        ))
                    }
                    Some(_) => {}
                }
            }
        }
        let perm: &CompiledPermission = match action {
            ChannelAction::Subscribe => &ns.subscribe,
            ChannelAction::Publish => &ns.publish,
        };
        self.role_allowed(slot, &perm.roles, &format!("{what} `{}`", clip(channel)))?;
        if let Some(g) = &perm.guard {
            let subject = user.map(|u| u.as_filter_subject());
            if !g.allows(subject.as_ref(), channel, &m) {
                return Err(if user.is_none() {
                    (
                        ErrorCode::Unauthorized,
                        format!("authentication is required to {what} `{}`", clip(channel)),
                    )
                } else {
                    (
                        ErrorCode::Forbidden,
                        format!("you may not {what} `{}`", clip(channel)),
                    )
                });
            }
        }
        Ok(Some(ns))
    }

    /// `subscribe {channel, since?}`.
    pub(super) fn subscribe_channel(
        &mut self,
        now: Millis,
        slot: usize,
        channel: String,
        since: Option<Since>,
        rid: Rid,
    ) {
        self.subscribe_channel_at(now, slot, channel, since, rid, true);
    }

    /// `subscribe {channel, since?}`; in a cluster, a stream this node holds no synced
    /// copy of is read from the shared broker first (`may_fetch`), and the subscribe runs
    /// again once it is.
    pub(super) fn subscribe_channel_at(
        &mut self,
        now: Millis,
        slot: usize,
        channel: String,
        since: Option<Since>,
        rid: Rid,
        may_fetch: bool,
    ) {
        if let Err(m) = self.check_name("channel", &channel) {
            return self.send_error(slot, ErrorCode::InvalidMessage, m, rid);
        }
        let ns = match self.channel_allowed(slot, &channel, ChannelAction::Subscribe) {
            Ok(ns) => ns,
            Err((code, m)) => return self.send_error(slot, code, m, rid),
        };
        if let Some(cfg) = self.cluster_history(&channel) {
            let key = self.key_for(slot, &channel).into_owned();
            match self.stream_access(now, &key, may_fetch) {
                Access::Local => {}
                Access::Fetch => {
                    let conn = self.conns[slot].id;
                    let waiter = Waiting::Subscribe {
                        conn,
                        channel,
                        since,
                        rid,
                    };
                    return self.cluster_fetch(key, cfg, waiter);
                }
                Access::Unavailable => {
                    let (code, m) = Self::stream_unavailable();
                    return self.send_error(slot, code, m, rid);
                }
            }
        }
        let existing = self.conns[slot]
            .state
            .subscriptions
            .iter()
            .find_map(|s| match &s.target {
                SubTarget::Channel { name } if *name == channel => Some(s.id.clone()),
                _ => None,
            });
        let (id, joined) = match existing {
            Some(id) => (id, false),
            None => {
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
                let id = self.next_subscription_id(slot);
                let key = self.key_for(slot, &channel);
                self.hub.join_channel(slot, self.conns[slot].id, &key);
                let c = &mut self.conns[slot];
                c.push_subscription(
                    usize::MAX,
                    Subscription {
                        id: id.clone(),
                        target: SubTarget::Channel {
                            name: channel.clone(),
                        },
                    },
                );
                self.cluster_membership(slot, &channel, true);
                (id, true)
            }
        };
        // The recovery and the join happen in this one step: a publication fanned out
        // after it is live, one before it is in `publications`; none is in both.
        let key = self.key_for(slot, &channel).into_owned();
        let stream = match ns.as_ref().and_then(|n| n.history) {
            Some(cfg) => {
                let epoch = self.epoch_for(now, &key);
                Some(match since {
                    Some(since) => {
                        let r = self.broker.recover(&key, cfg, now, &since, || epoch);
                        self.metrics.recoveries += 1;
                        if !r.recovered {
                            self.metrics.recoveries_failed += 1;
                        }
                        StreamState {
                            recovered: Some(r.recovered),
                            offset: Some(r.position.offset),
                            epoch: Some(r.position.epoch),
                            publications: Some(r.publications),
                        }
                    }
                    None => {
                        let p = self.broker.position(&key, cfg, now, || epoch);
                        StreamState {
                            recovered: None,
                            offset: Some(p.offset),
                            epoch: Some(p.epoch),
                            publications: None,
                        }
                    }
                })
            }
            None => since.map(|_| StreamState {
                recovered: Some(false),
                offset: None,
                epoch: None,
                publications: Some(Vec::new()),
            }),
        };
        self.send(
            slot,
            &ServerMessage::Subscribed {
                subscription_id: id,
                resource: None,
                channel: Some(channel.clone()),
                filter: None,
                events: None,
                stream,
                request_id: rid,
            },
        );
        if joined && ns.as_ref().is_some_and(|n| n.join_leave) {
            let member = self.member_view(slot);
            let others = self.channel_peers(&key, slot);
            self.fanout(
                &others,
                Outbound::Message(&ServerMessage::PresenceJoin { channel, member }),
            );
        }
    }

    fn member_view(&self, slot: usize) -> MemberView {
        self.conns[slot].member_view()
    }

    /// Subscribers of the channel keyed `key` other than `slot`, in subscription order.
    pub(super) fn channel_peers(&self, key: &str, slot: usize) -> Vec<(usize, ConnId)> {
        self.hub
            .channel_members(key)
            .filter(|(s, _)| *s != slot)
            .filter(|(s, _)| self.conns.get(*s).is_some_and(|c| !c.closing))
            .collect()
    }

    /// After `slot` left `channel` (unsubscribe or disconnect): tell the others.
    pub(super) fn channel_left(&mut self, slot: usize, channel: &str) {
        self.cluster_membership(slot, channel, false);
        let Some((ns, _)) = self.namespace(channel) else {
            return;
        };
        if !ns.join_leave {
            return;
        }
        let member = self.member_view(slot);
        let key = self.key_for(slot, channel);
        let others = self.channel_peers(&key, slot);
        self.fanout(
            &others,
            Outbound::Message(&ServerMessage::PresenceLeave {
                channel: channel.to_string(),
                member,
            }),
        );
    }

    /// `publish {channel, message}` from a client.
    pub(super) fn publish(
        &mut self,
        now: Millis,
        slot: usize,
        channel: String,
        message: Option<Value>,
        rid: Rid,
    ) {
        if let Err(m) = self.check_name("channel", &channel) {
            return self.send_error(slot, ErrorCode::InvalidMessage, m, rid);
        }
        if let Err((code, m)) = self.channel_allowed(slot, &channel, ChannelAction::Publish) {
            return self.send_error(slot, code, m, rid);
        }
        if let Err((code, m)) = self.cluster_gate() {
            return self.send_error(slot, code, m, rid);
        }
        // A resource of the same name that opted in (`publish`) is reached too, if the
        // publisher may use it: its subscribers were admitted by its roles.
        let resource = self.config.resources.get(&channel);
        let resource_too = match resource.filter(|rc| rc.publish).map(|rc| rc.auth.clone()) {
            None => false,
            Some(roles) => {
                let what = format!("publish to the subscribers of resource `{channel}`");
                if let Err((code, m)) = self.role_allowed(slot, &roles, &what) {
                    return self.send_error(slot, code, m, rid);
                }
                true
            }
        };
        let from = self.conns[slot].state.client_id.clone();
        let tenant = self.conns[slot].state.tenant.clone();
        if let Some(cfg) = self.cluster_history(&channel) {
            // Ordered by the shared broker; `published` follows once it is.
            let waiter = Waiting::Publish {
                conn: self.conns[slot].id,
                channel: channel.clone(),
                rid,
            };
            return self.cluster_append(
                now,
                tenant.as_deref(),
                &channel,
                from,
                message,
                resource_too,
                cfg,
                Some(waiter),
            );
        }
        let (delivered, _) = self.publish_to_channel(
            now,
            Some(slot),
            tenant.as_deref(),
            &channel,
            from,
            message,
            resource_too,
        );
        self.send(
            slot,
            &ServerMessage::Published {
                channel,
                delivered,
                request_id: rid,
            },
        );
    }

    /// Order a publication through the broker (channels with history), then deliver it
    /// to the channel's subscribers and, with `resource_too` (s3db.js compatibility, a
    /// resource's `publish` opt-in), to subscribers of the configured resource of the same
    /// name, except `exclude`. Everything stays in `tenant`'s space: its channel, and
    /// only its connections among the resource's subscribers. Returns the number of
    /// recipients and the stream position the broker assigned.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn publish_to_channel(
        &mut self,
        now: Millis,
        exclude: Option<usize>,
        tenant: Option<&str>,
        channel: &str,
        from: String,
        data: Option<Value>,
        resource_too: bool,
    ) -> (usize, Option<StreamPosition>) {
        if let Some(cfg) = self.cluster_history(channel) {
            // A stream shared by the cluster: the broker orders it, every node delivers
            // it when it comes back (nobody waits for the answer here).
            self.cluster_append(now, tenant, channel, from, data, resource_too, cfg, None);
            return (0, None);
        }
        let timestamp = iso8601(now);
        self.cluster_publish(
            tenant,
            channel,
            &from,
            data.as_ref(),
            &timestamp,
            resource_too,
        );
        self.deliver_publication(
            now,
            exclude,
            tenant,
            channel,
            from,
            data,
            resource_too,
            timestamp,
        )
    }

    /// Order a publication (local or from another node) through this node's broker and
    /// deliver it to local subscribers, as [`Engine::publish_to_channel`] describes.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn deliver_publication(
        &mut self,
        now: Millis,
        exclude: Option<usize>,
        tenant: Option<&str>,
        channel: &str,
        from: String,
        data: Option<Value>,
        resource_too: bool,
        timestamp: String,
    ) -> (usize, Option<StreamPosition>) {
        let key = crate::tenant::scoped(tenant, channel);
        let position = match self.namespace(channel).and_then(|(n, _)| n.history) {
            Some(cfg) => {
                let epoch = self.epoch_for(now, &key);
                let p = self.broker.publish(
                    &key,
                    cfg,
                    now,
                    || epoch,
                    |offset| publication_json(offset, &from, data.as_ref(), &timestamp),
                );
                self.metrics.history_publications += 1;
                Some(p)
            }
            None => None,
        };
        let n = self.fanout_publication(
            exclude,
            tenant,
            channel,
            from,
            data,
            resource_too,
            timestamp,
            position.as_ref(),
        );
        (n, position)
    }

    /// Deliver a publication at `position` (None: a channel without history) to the
    /// local subscribers, as [`Engine::publish_to_channel`] describes. Returns the number
    /// of recipients.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn fanout_publication(
        &mut self,
        exclude: Option<usize>,
        tenant: Option<&str>,
        channel: &str,
        from: String,
        data: Option<Value>,
        resource_too: bool,
        timestamp: String,
        position: Option<&StreamPosition>,
    ) -> usize {
        let key = crate::tenant::scoped(tenant, channel);
        let mut recipients = std::mem::take(&mut self.scratch);
        recipients.clear();
        let max_slot = self.conns.capacity();
        let resource = resource_too.then_some(channel);
        self.hub
            .publish_recipients(&key, resource, max_slot, &mut recipients);
        // The resource's subscribers span tenants; the channel's do not. While no
        // connection has a tenant, a publication without one reaches them all: no
        // per-recipient look-up.
        let untenanted = tenant.is_none() && self.tenanted == 0;
        if resource_too && !untenanted {
            let conns = &self.conns;
            recipients.retain(|(s, _)| conns[*s].state.tenant.as_deref() == tenant);
        }
        recipients.retain(|(s, _)| Some(*s) != exclude);
        let msg = ServerMessage::Message {
            channel: channel.to_string(),
            from,
            data,
            timestamp,
            offset: position.map(|p| p.offset),
            epoch: position.map(|p| Arc::clone(&p.epoch)),
        };
        let n = self.fanout(&recipients, Outbound::Message(&msg));
        self.scratch = recipients;
        n
    }

    /// The history settings of `channel`, or a clear error.
    fn history_of(
        &self,
        channel: &str,
    ) -> Result<crate::namespace::HistoryConfig, (ErrorCode, String)> {
        self.namespace(channel)
            .and_then(|(n, _)| n.history)
            .ok_or_else(|| {
                (
                    ErrorCode::NotFound,
                    format!(
                        "channel `{}` keeps no history (no namespace enables it)",
                        clip(channel)
                    ),
                )
            })
    }

    /// The history of `channel` in `tenant`'s space.
    #[allow(clippy::too_many_arguments)]
    fn read_history(
        &mut self,
        now: Millis,
        tenant: Option<&str>,
        channel: &str,
        limit: Option<u64>,
        since: Option<Since>,
        reverse: bool,
    ) -> Result<(Vec<Publication>, StreamPosition), (ErrorCode, String)> {
        let cfg = self.history_of(channel)?;
        let limit = limit.map_or(cfg.size, |l| (l.min(cfg.size as u64)) as usize);
        let key = crate::tenant::scoped(tenant, channel);
        if self.stream_access(now, &key, false) == Access::Unavailable {
            return Err(Self::stream_unavailable());
        }
        let epoch = self.epoch_for(now, &key);
        let query = HistoryQuery {
            limit,
            since,
            reverse,
        };
        self.broker
            .history(&key, cfg, now, &query, || epoch)
            .map_err(|u| {
                (
                    ErrorCode::UnrecoverablePosition,
                    format!(
                        "the history of `{}` no longer covers that position (now offset {} in epoch `{}`)",
                        clip(channel),
                        u.position.offset,
                        u.position.epoch
                    ),
                )
            })
    }

    /// `history {channel, limit?, since?, reverse?}`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn history(
        &mut self,
        now: Millis,
        slot: usize,
        channel: String,
        limit: Option<u64>,
        since: Option<Since>,
        reverse: bool,
        rid: Rid,
    ) {
        self.history_at(now, slot, channel, limit, since, reverse, rid, true);
    }

    /// `history`; in a cluster, a stream without a synced copy is read from the shared
    /// broker first (`may_fetch`), as for `subscribe`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn history_at(
        &mut self,
        now: Millis,
        slot: usize,
        channel: String,
        limit: Option<u64>,
        since: Option<Since>,
        reverse: bool,
        rid: Rid,
        may_fetch: bool,
    ) {
        if let Err(m) = self.check_name("channel", &channel) {
            return self.send_error(slot, ErrorCode::InvalidMessage, m, rid);
        }
        if let Err((code, m)) = self.channel_allowed(slot, &channel, ChannelAction::Subscribe) {
            return self.send_error(slot, code, m, rid);
        }
        if let Some(cfg) = self.cluster_history(&channel) {
            let key = self.key_for(slot, &channel).into_owned();
            if may_fetch && self.stream_access(now, &key, true) == Access::Fetch {
                let waiter = Waiting::History {
                    conn: self.conns[slot].id,
                    channel,
                    limit,
                    since,
                    reverse,
                    rid,
                };
                return self.cluster_fetch(key, cfg, waiter);
            }
        }
        let tenant = self.conns[slot].state.tenant.clone();
        match self.read_history(now, tenant.as_deref(), &channel, limit, since, reverse) {
            Ok((publications, p)) => self.send(
                slot,
                &ServerMessage::History {
                    channel,
                    publications,
                    offset: p.offset,
                    epoch: p.epoch,
                    request_id: rid,
                },
            ),
            Err((code, m)) => self.send_error(slot, code, m, rid),
        }
    }

    fn presence_of(&self, channel: &str) -> Result<(), (ErrorCode, String)> {
        match self.namespace(channel) {
            Some((n, _)) if n.presence => Ok(()),
            _ => Err((
                ErrorCode::NotFound,
                format!(
                    "channel `{}` has no presence (no namespace enables it)",
                    clip(channel)
                ),
            )),
        }
    }

    /// Subscribers of the channel keyed `key`.
    fn presence_members(&self, key: &str) -> Vec<MemberView> {
        let mut members: Vec<MemberView> = self
            .hub
            .channel_members(key)
            .filter(|(s, _)| self.conns.get(*s).is_some_and(|c| !c.closing))
            .map(|(s, _)| self.member_view(s))
            .collect();
        // Other nodes' members follow, ordered by node and client id.
        members.extend(self.remote_members(key));
        members
    }

    /// Client and user counts of the channel keyed `key`.
    fn presence_counts(&self, key: &str) -> (usize, usize) {
        let mut users = std::collections::BTreeSet::new();
        let mut clients = 0;
        for (s, _) in self.hub.channel_members(key) {
            let Some(c) = self.conns.get(s).filter(|c| !c.closing) else {
                continue;
            };
            clients += 1;
            if let Some(u) = &c.state.user {
                users.insert(std::borrow::Cow::Borrowed(u.id.as_str()));
            }
        }
        for m in self.remote_members(key) {
            clients += 1;
            if let Some(id) = m.user.get("id") {
                let id = id.as_str().map_or_else(|| id.to_string(), str::to_string);
                users.insert(std::borrow::Cow::Owned(id));
            }
        }
        (clients, users.len())
    }

    /// `presence {channel}` and `presence:stats {channel}`.
    pub(super) fn presence(&mut self, slot: usize, channel: String, stats: bool, rid: Rid) {
        if let Err(m) = self.check_name("channel", &channel) {
            return self.send_error(slot, ErrorCode::InvalidMessage, m, rid);
        }
        let checked = self
            .channel_allowed(slot, &channel, ChannelAction::Subscribe)
            .and_then(|_| self.presence_of(&channel));
        if let Err((code, m)) = checked {
            return self.send_error(slot, code, m, rid);
        }
        let key = self.key_for(slot, &channel).into_owned();
        let msg = if stats {
            let (clients, users) = self.presence_counts(&key);
            ServerMessage::PresenceStats {
                channel,
                clients,
                users,
                request_id: rid,
            }
        } else {
            ServerMessage::Presence {
                clients: self.presence_members(&key),
                channel,
                request_id: rid,
            }
        };
        self.send(slot, &msg);
    }

    // ----- server API -----------------------------------------------------------------

    /// Server-API `history`: `{publications, offset, epoch}`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn command_history(
        &mut self,
        now: Millis,
        tenant: Option<&str>,
        channel: String,
        limit: Option<u64>,
        since: Option<Since>,
        reverse: bool,
    ) -> Result<Value, CommandError> {
        self.check_name("channel", &channel)
            .map_err(|m| err(ErrorCode::InvalidMessage, m))?;
        let (publications, p) = self
            .read_history(now, tenant, &channel, limit, since, reverse)
            .map_err(|(c, m)| err(c, m))?;
        let publications: Vec<Value> = publications
            .iter()
            .map(|p| serde_json::from_str(p.0.get()).unwrap_or(Value::Null))
            .collect();
        Ok(
            json!({"channel": channel, "publications": publications, "offset": p.offset, "epoch": &*p.epoch}),
        )
    }

    /// Server-API `presence` / `presenceStats`.
    pub(super) fn command_presence(
        &self,
        tenant: Option<&str>,
        channel: String,
        stats: bool,
    ) -> Result<Value, CommandError> {
        self.check_name("channel", &channel)
            .map_err(|m| err(ErrorCode::InvalidMessage, m))?;
        self.presence_of(&channel).map_err(|(c, m)| err(c, m))?;
        let key = crate::tenant::scoped(tenant, &channel);
        if stats {
            let (clients, users) = self.presence_counts(&key);
            Ok(json!({"channel": channel, "clients": clients, "users": users}))
        } else {
            let clients = self.presence_members(&key);
            Ok(json!({"channel": channel, "clients": clients}))
        }
    }
}

fn clip(s: &str) -> &str {
    let mut end = s.len().min(64);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}
