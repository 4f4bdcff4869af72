//! Cluster mode: what this node tells the others (publications, direct messages to
//! their clients, resource change events, clients and channel members) and how what
//! they tell it reaches local connections. See [`crate::cluster`].

use std::collections::BTreeMap;

use rustc_hash::FxHashMap;
use serde_json::{json, Value};

use super::server_api::err;
use super::{Action, Command, CommandError, Engine};
use crate::cluster::{ClusterEvent, ClusterMessage, RemoteClient, RemoteMember};
use crate::connection::SubTarget;
use crate::error::ErrorCode;
use crate::protocol::codec::Outbound;
use crate::protocol::{MemberView, ServerMessage};
use crate::types::Millis;

/// What the engine knows about the other nodes.
#[derive(Debug, Default)]
pub(super) struct ClusterState {
    /// This node's id.
    pub(super) node: String,
    /// Whether the host reported the broker reachable.
    pub(super) up: bool,
    /// Clients of other nodes by client id.
    clients: FxHashMap<String, Remote>,
    /// Connections of other nodes per user id.
    per_user: FxHashMap<String, usize>,
    /// Connections of other nodes per IP address.
    per_ip: FxHashMap<String, usize>,
    /// The connection limit of the whole cluster (default: `limits.maxConnections`).
    max_connections: Option<usize>,
    /// Channel members of other nodes: channel key → (node, client id) → entry.
    members: BTreeMap<String, BTreeMap<(String, String), MemberView>>,
    /// Room members of other nodes.
    pub(super) rooms: super::cluster_rooms::RemoteRooms,
    /// Stream publications and reads waiting for the shared broker.
    pub(super) streams: super::cluster_streams::StreamRequests,
}

/// A client of another node.
#[derive(Debug)]
struct Remote {
    node: String,
    tenant: Option<String>,
    user: Option<String>,
    ip: Option<String>,
}

/// Count one more (`true`) or one less for `key`.
fn count(map: &mut FxHashMap<String, usize>, key: &str, up: bool) {
    if up {
        *map.entry(key.to_string()).or_default() += 1;
    } else if let Some(n) = map.get_mut(key) {
        *n -= 1;
        if *n == 0 {
            map.remove(key);
        }
    }
}

impl ClusterState {
    /// Record (or update) a client of another node, keeping the per-user and per-IP
    /// counts.
    fn put_client(&mut self, node: String, client: RemoteClient) {
        self.drop_client(&client.client_id);
        if let Some(u) = &client.user {
            count(&mut self.per_user, u, true);
        }
        if let Some(ip) = &client.ip {
            count(&mut self.per_ip, ip, true);
        }
        let remote = Remote {
            node,
            tenant: client.tenant,
            user: client.user,
            ip: client.ip,
        };
        self.clients.insert(client.client_id, remote);
    }

    /// Forget a client of another node.
    fn drop_client(&mut self, client_id: &str) {
        if let Some(r) = self.clients.remove(client_id) {
            if let Some(u) = &r.user {
                count(&mut self.per_user, u, false);
            }
            if let Some(ip) = &r.ip {
                count(&mut self.per_ip, ip, false);
            }
        }
    }
}

/// The message for a cluster outage.
pub(super) const UNAVAILABLE: &str =
    "the cluster broker is unreachable; nothing was sent, retry once it is back";

impl Engine {
    /// Join a cluster as node `node` (an id unique among the nodes, drawn by the host).
    /// The engine then emits [`Action::Cluster`] messages for the other nodes and accepts
    /// [`crate::Input::Cluster`]. It starts disconnected: publications are refused with
    /// `UNAVAILABLE` until the host reports [`ClusterEvent::Connected`].
    pub fn enable_cluster(&mut self, node: impl Into<String>) {
        self.cluster = Some(Box::new(ClusterState {
            node: node.into(),
            ..ClusterState::default()
        }));
    }

    /// This node's id, when the engine is in a cluster.
    pub fn cluster_node(&self) -> Option<&str> {
        self.cluster.as_ref().map(|c| c.node.as_str())
    }

    /// Set the connection limit of the whole cluster (`limits.maxConnections` counted on
    /// every node, as last announced) when it differs from this node's own limit: a host
    /// that lowers a node's limit to its file descriptors passes the configured one here.
    pub fn set_cluster_max_connections(&mut self, limit: usize) {
        if let Some(c) = self.cluster.as_mut() {
            c.max_connections = Some(limit);
        }
    }

    /// Whether the cluster broker is reachable (always true outside a cluster).
    pub fn cluster_available(&self) -> bool {
        self.cluster.as_ref().is_none_or(|c| c.up)
    }

    /// Queue a message for the other nodes (nothing outside a cluster or while the
    /// broker is down: the snapshot sent on reconnection carries the state).
    pub(super) fn cluster_emit(&mut self, message: impl FnOnce(String) -> ClusterMessage) {
        if let Some(c) = self.cluster.as_ref().filter(|c| c.up) {
            let message = message(c.node.clone());
            self.actions.push_back(Action::Cluster {
                message: Box::new(message),
            });
        }
    }

    /// Whether a channel's members are shared with the other nodes (its namespace
    /// enables presence or join/leave notices).
    fn shares_members(&self, channel: &str) -> bool {
        self.cluster.is_some()
            && self
                .namespace(channel)
                .is_some_and(|(n, _)| n.presence || n.join_leave)
    }

    /// A local connection joined (`true`) or left a channel.
    pub(super) fn cluster_membership(&mut self, slot: usize, channel: &str, joined: bool) {
        if !self.shares_members(channel) {
            return;
        }
        let member = RemoteMember {
            tenant: self.conns[slot].state.tenant.clone(),
            channel: channel.to_string(),
            member: self.conns[slot].member_view(),
        };
        self.cluster_emit(|node| match joined {
            true => ClusterMessage::Join { node, member },
            false => ClusterMessage::Leave { node, member },
        });
    }

    /// A local client connected (`true`; also when its user changed) or is gone.
    pub(super) fn cluster_client(
        &mut self,
        client_id: &str,
        tenant: Option<&str>,
        user: Option<&str>,
        ip: Option<&str>,
        up: bool,
    ) {
        if self.cluster.is_none() {
            return;
        }
        self.cluster_emit(|node| match up {
            true => ClusterMessage::ClientUp {
                node,
                client: RemoteClient {
                    client_id: client_id.to_string(),
                    tenant: tenant.map(str::to_string),
                    user: user.map(str::to_string),
                    ip: ip.map(str::to_string),
                },
            },
            false => ClusterMessage::ClientDown {
                node,
                client_id: client_id.to_string(),
            },
        });
    }

    /// The node a client of another node is connected to, if known (in `tenant`).
    pub(super) fn remote_client(&self, client_id: &str, tenant: Option<&str>) -> Option<String> {
        let c = self.cluster.as_ref()?;
        c.clients
            .get(client_id)
            .filter(|r| r.tenant.as_deref() == tenant)
            .map(|r| r.node.clone())
    }

    /// Connections of `user_id` on other nodes.
    pub(super) fn remote_user_connections(&self, user_id: &str) -> usize {
        self.cluster
            .as_ref()
            .and_then(|c| c.per_user.get(user_id).copied())
            .unwrap_or(0)
    }

    /// Connections from `ip` on other nodes.
    pub(super) fn remote_ip_connections(&self, ip: &str) -> usize {
        self.cluster
            .as_ref()
            .and_then(|c| c.per_ip.get(ip).copied())
            .unwrap_or(0)
    }

    /// Whether the cluster as a whole holds its connection limit (counting this node's
    /// connections and the others' as last announced).
    pub(super) fn cluster_full(&self) -> bool {
        self.cluster.as_ref().is_some_and(|c| {
            let limit = c
                .max_connections
                .unwrap_or(self.config.limits.max_connections);
            self.conns.len() + c.clients.len() >= limit
        })
    }

    /// Presence entries of other nodes for the channel keyed `key`.
    pub(super) fn remote_members(&self, key: &str) -> Vec<MemberView> {
        self.cluster
            .as_ref()
            .and_then(|c| c.members.get(key))
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }

    /// This node's clients, shared channel members and room members.
    fn snapshot_message(&self, node: String) -> ClusterMessage {
        let mut clients = Vec::new();
        let mut members = Vec::new();
        for (_, c) in self.conns.iter().filter(|(_, c)| !c.closing) {
            clients.push(RemoteClient {
                client_id: c.state.client_id.clone(),
                tenant: c.state.tenant.clone(),
                user: c.state.user.as_ref().map(|u| u.id.clone()),
                ip: Some(c.state.peer.clone()),
            });
            for s in &c.state.subscriptions {
                if let SubTarget::Channel { name } = &s.target {
                    if self.shares_members(name) {
                        members.push(RemoteMember {
                            tenant: c.state.tenant.clone(),
                            channel: name.clone(),
                            member: c.member_view(),
                        });
                    }
                }
            }
        }
        ClusterMessage::Snapshot {
            node,
            clients,
            members,
            rooms: self.room_snapshot(),
        }
    }

    /// `Input::Cluster`.
    pub(super) fn cluster_input(&mut self, now: Millis, event: ClusterEvent) {
        let Some(state) = self.cluster.as_mut() else {
            self.metrics.unknown_connection_inputs += 1;
            return;
        };
        match event {
            ClusterEvent::Connected => {
                state.up = true;
                let node = state.node.clone();
                self.actions.push_back(Action::Cluster {
                    message: Box::new(ClusterMessage::Hello { node: node.clone() }),
                });
                let message = self.snapshot_message(node);
                self.actions.push_back(Action::Cluster {
                    message: Box::new(message),
                });
            }
            ClusterEvent::Disconnected => {
                state.up = false;
                self.streams_disconnected(now);
            }
            ClusterEvent::Fetched { request, result } => self.fetched(now, request, result),
            ClusterEvent::NodeGone { node } => {
                if node != state.node {
                    self.replace_node(&node, Vec::new(), Vec::new());
                    self.replace_node_rooms(&node, Vec::new());
                }
            }
            ClusterEvent::Message(message) => {
                // Ordered publications come back to their node too.
                if message.node() != state.node || matches!(*message, ClusterMessage::Sequenced(_))
                {
                    self.cluster_message(now, *message);
                }
            }
        }
    }

    fn cluster_message(&mut self, now: Millis, message: ClusterMessage) {
        match message {
            ClusterMessage::Hello { .. } => {
                let me = self
                    .cluster
                    .as_ref()
                    .filter(|c| c.up)
                    .map(|c| c.node.clone());
                if let Some(node) = me {
                    let message = self.snapshot_message(node);
                    self.actions.push_back(Action::Cluster {
                        message: Box::new(message),
                    });
                }
            }
            ClusterMessage::Snapshot {
                node,
                clients,
                members,
                rooms,
            } => {
                self.replace_node(&node, clients, members);
                self.replace_node_rooms(&node, rooms);
            }
            ClusterMessage::Publish {
                tenant,
                channel,
                from,
                data,
                timestamp,
                resource_too,
                ..
            } => {
                self.deliver_publication(
                    now,
                    None,
                    tenant.as_deref(),
                    &channel,
                    from,
                    data,
                    resource_too,
                    timestamp,
                );
            }
            ClusterMessage::Direct {
                to_node,
                tenant,
                from,
                to,
                data,
                timestamp,
                ..
            } => {
                if self.cluster_node() != Some(to_node.as_str()) {
                    return;
                }
                let target = self
                    .by_client
                    .get(&self.conns, &to)
                    .filter(|s| !self.conns[*s].closing)
                    .filter(|s| self.conns[*s].state.tenant == tenant);
                if let Some(slot) = target {
                    let conn = self.conns[slot].id;
                    let msg = ServerMessage::Direct {
                        from,
                        data,
                        timestamp,
                    };
                    self.fanout(&[(slot, conn)], Outbound::Message(&msg));
                }
            }
            ClusterMessage::Change {
                resource,
                event,
                record,
                previous,
                ..
            } => {
                self.fanout_change_local(now, &resource, event, &record, previous.as_ref());
            }
            ClusterMessage::ClientUp { node, client } => {
                if let Some(c) = self.cluster.as_mut() {
                    c.put_client(node, client);
                }
            }
            ClusterMessage::ClientDown { node, client_id } => {
                if let Some(c) = self.cluster.as_mut() {
                    if c.clients.get(&client_id).is_some_and(|r| r.node == node) {
                        c.drop_client(&client_id);
                    }
                }
            }
            ClusterMessage::Command {
                to_node, command, ..
            } => {
                if to_node.is_none() || to_node.as_deref() == self.cluster_node() {
                    if let Err(e) = self.immediate_command(now, command) {
                        log::debug!("cluster command from another node failed: {}", e.message);
                    }
                }
            }
            ClusterMessage::Join { node, member } => self.remote_join(node, member),
            ClusterMessage::Leave { node, member } => self.remote_leave(&node, &member),
            ClusterMessage::RoomJoin { node, member } => self.remote_room_join(node, member),
            ClusterMessage::RoomLeave { node, member } => self.remote_room_leave(&node, &member),
            ClusterMessage::RoomMessage {
                tenant,
                room,
                from,
                event,
                data,
                timestamp,
                ..
            } => {
                let message = ServerMessage::RoomMessage {
                    room,
                    from,
                    event,
                    data,
                    timestamp,
                };
                self.remote_room_message(tenant.as_deref(), message);
            }
            ClusterMessage::Sequenced(p) => self.take_sequenced(now, p),
            // Requests for a host, never sent between nodes.
            ClusterMessage::Append { .. } | ClusterMessage::Fetch { .. } => {}
        }
    }

    /// Run a server-API command answered right away; in a cluster, `broadcast`,
    /// `broadcastToResource`, `sendToUser`, `sendToRoom` and `createRoom` also run on
    /// every other node (the result counts this node's deliveries), `deleteRoom` runs on
    /// every node, and `sendTo`, `disconnect`, `joinRoom` and `leaveRoom` of a client of
    /// another node run there.
    pub(super) fn cluster_command(
        &mut self,
        now: Millis,
        cmd: Command,
    ) -> Result<Value, CommandError> {
        if self.cluster.is_none() {
            return self.immediate_command(now, cmd);
        }
        match &cmd {
            Command::Broadcast { .. }
            | Command::BroadcastToResource { .. }
            | Command::SendToUser { .. }
            | Command::SendToRoom { .. }
            | Command::CreateRoom { .. } => {
                self.cluster_gate().map_err(|(c, m)| err(c, m))?;
                let result = self.immediate_command(now, cmd.clone())?;
                self.cluster_emit(|node| ClusterMessage::Command {
                    node,
                    to_node: None,
                    command: cmd,
                });
                Ok(result)
            }
            Command::DeleteRoom { room, tenant } => {
                let key = crate::tenant::scoped(tenant.as_deref(), room);
                if !self.room_known(&key) {
                    return self.immediate_command(now, cmd);
                }
                self.cluster_gate().map_err(|(c, m)| err(c, m))?;
                // The others first: they drop their members before hearing this node's
                // leaves, so nobody gets `room:left` for a room being deleted.
                let command = cmd.clone();
                self.cluster_emit(|node| ClusterMessage::Command {
                    node,
                    to_node: None,
                    command,
                });
                self.immediate_command(now, cmd)
            }
            Command::SendTo { client_id, .. }
            | Command::Disconnect { client_id, .. }
            | Command::JoinRoom { client_id, .. }
            | Command::LeaveRoom { client_id, .. }
                if !self.by_client.contains(&self.conns, client_id) =>
            {
                let Some(to_node) = self.remote_node_of(client_id) else {
                    return self.immediate_command(now, cmd);
                };
                self.cluster_gate().map_err(|(c, m)| err(c, m))?;
                let answer = match &cmd {
                    Command::Disconnect { client_id, .. } => json!({ "disconnected": client_id }),
                    Command::JoinRoom { client_id, room }
                    | Command::LeaveRoom { client_id, room } => {
                        json!({ "clientId": client_id, "room": room })
                    }
                    _ => json!({ "delivered": 1 }),
                };
                self.cluster_emit(|node| ClusterMessage::Command {
                    node,
                    to_node: Some(to_node),
                    command: cmd,
                });
                Ok(answer)
            }
            _ => self.immediate_command(now, cmd),
        }
    }

    /// The node a client of another node is connected to, whatever its tenant.
    fn remote_node_of(&self, client_id: &str) -> Option<String> {
        let c = self.cluster.as_ref()?;
        c.clients.get(client_id).map(|r| r.node.clone())
    }

    fn member_key(member: &RemoteMember) -> String {
        crate::tenant::scoped(member.tenant.as_deref(), &member.channel).into_owned()
    }

    fn remote_join(&mut self, node: String, member: RemoteMember) {
        let key = Self::member_key(&member);
        let Some(c) = self.cluster.as_mut() else {
            return;
        };
        let id = (node, member.member.client_id.clone());
        let fresh = c
            .members
            .entry(key.clone())
            .or_default()
            .insert(id, member.member.clone())
            .is_none();
        if fresh {
            self.push_presence(&key, member, true);
        }
    }

    fn remote_leave(&mut self, node: &str, member: &RemoteMember) {
        let key = Self::member_key(member);
        let Some(c) = self.cluster.as_mut() else {
            return;
        };
        let Some(entries) = c.members.get_mut(&key) else {
            return;
        };
        let removed = entries.remove(&(node.to_string(), member.member.client_id.clone()));
        if entries.is_empty() {
            c.members.remove(&key);
        }
        if let Some(view) = removed {
            let member = RemoteMember {
                member: view,
                ..member.clone()
            };
            self.push_presence(&key, member, false);
        }
    }

    /// Tell local subscribers of `key` that a member of another node joined or left,
    /// when the channel's namespace sends those notices.
    fn push_presence(&mut self, key: &str, member: RemoteMember, joined: bool) {
        if !self
            .namespace(&member.channel)
            .is_some_and(|(n, _)| n.join_leave)
        {
            return;
        }
        let peers = self.channel_peers(key, usize::MAX);
        let channel = member.channel;
        let member = member.member;
        let msg = match joined {
            true => ServerMessage::PresenceJoin { channel, member },
            false => ServerMessage::PresenceLeave { channel, member },
        };
        self.fanout(&peers, Outbound::Message(&msg));
    }

    /// Forget what is known of `node` and take `clients` and `members` instead, with
    /// join/leave notices for the difference.
    fn replace_node(&mut self, node: &str, clients: Vec<RemoteClient>, members: Vec<RemoteMember>) {
        let Some(c) = self.cluster.as_mut() else {
            return;
        };
        let stale: Vec<String> = c
            .clients
            .iter()
            .filter(|(_, r)| r.node == node)
            .map(|(id, _)| id.clone())
            .collect();
        for id in stale {
            c.drop_client(&id);
        }
        for client in clients {
            c.put_client(node.to_string(), client);
        }
        let mut old: Vec<RemoteMember> = Vec::new();
        for (key, entries) in &c.members {
            let (tenant, channel) = crate::tenant::split(key);
            for ((n, _), view) in entries {
                if n == node {
                    old.push(RemoteMember {
                        tenant: tenant.map(str::to_string),
                        channel: channel.to_string(),
                        member: view.clone(),
                    });
                }
            }
        }
        let same = |a: &RemoteMember, b: &RemoteMember| {
            a.tenant == b.tenant
                && a.channel == b.channel
                && a.member.client_id == b.member.client_id
        };
        for m in old.iter().filter(|m| !members.iter().any(|n| same(m, n))) {
            self.remote_leave(node, m);
        }
        for m in members {
            if !old.iter().any(|o| same(o, &m)) {
                self.remote_join(node.to_string(), m);
            }
        }
    }

    /// Refuse a publication while the broker is down: `Err` with the error to send.
    pub(super) fn cluster_gate(&self) -> Result<(), (ErrorCode, String)> {
        if self.cluster_available() {
            Ok(())
        } else {
            Err((ErrorCode::Unavailable, UNAVAILABLE.to_string()))
        }
    }

    /// Share a local publication with the other nodes.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn cluster_publish(
        &mut self,
        tenant: Option<&str>,
        channel: &str,
        from: &str,
        data: Option<&Value>,
        timestamp: &str,
        resource_too: bool,
    ) {
        if self.cluster.is_none() {
            return;
        }
        self.cluster_emit(|node| ClusterMessage::Publish {
            node,
            tenant: tenant.map(str::to_string),
            channel: channel.to_string(),
            from: from.to_string(),
            data: data.cloned(),
            timestamp: timestamp.to_string(),
            resource_too,
        });
    }

    /// Share a local change event with the other nodes.
    pub(super) fn cluster_change(
        &mut self,
        resource: &str,
        event: crate::config::ChangeKind,
        record: &Value,
        previous: Option<&Value>,
    ) {
        if self.cluster.is_none() {
            return;
        }
        self.cluster_emit(|node| ClusterMessage::Change {
            node,
            resource: resource.to_string(),
            event,
            record: record.clone(),
            previous: previous.cloned(),
        });
    }

    /// Send a direct message to a client of node `to_node`.
    pub(super) fn cluster_direct(
        &mut self,
        to_node: String,
        tenant: Option<String>,
        from: String,
        to: String,
        data: Option<Value>,
        timestamp: String,
    ) {
        self.cluster_emit(|node| ClusterMessage::Direct {
            node,
            to_node,
            tenant,
            from,
            to,
            data,
            timestamp,
        });
    }
}
