//! Rooms across the nodes of a cluster: each node announces its room memberships
//! (`roomJoin` / `roomLeave`, and its snapshot), keeps the other nodes' members as last
//! announced, and carries `room:message` to the nodes that hold members. Capacity, member
//! counts and `room:members` include the other nodes' members. See [`crate::cluster`].

use std::collections::BTreeMap;

use serde_json::Value;

use super::Engine;
use crate::cluster::{ClusterMessage, RemoteRoomMember};
use crate::error::ErrorCode;
use crate::protocol::codec::Outbound;
use crate::protocol::{MemberView, ServerMessage};

/// Room members of other nodes: room key → (node, client id) → member.
pub(super) type RemoteRooms = BTreeMap<String, BTreeMap<(String, String), MemberView>>;

impl Engine {
    fn remote_rooms(&self) -> Option<&RemoteRooms> {
        self.cluster.as_ref().map(|c| &c.rooms)
    }

    /// Members of other nodes in the room keyed `key` (as last announced).
    pub(super) fn remote_room_count(&self, key: &str) -> usize {
        self.remote_rooms()
            .and_then(|r| r.get(key))
            .map_or(0, BTreeMap::len)
    }

    /// Members of other nodes in the room keyed `key`, ordered by node id, client id.
    pub(super) fn remote_room_members(&self, key: &str) -> Vec<MemberView> {
        self.remote_rooms()
            .and_then(|r| r.get(key))
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Rooms with members on other nodes only (key, member count), in key order.
    pub(super) fn remote_only_rooms(&self) -> Vec<(String, usize)> {
        self.remote_rooms()
            .into_iter()
            .flatten()
            .filter(|(key, _)| self.hub.room_members(key).is_none())
            .map(|(key, m)| (key.clone(), m.len()))
            .collect()
    }

    /// The membership of the connection at `slot` in `room` (the name it gave).
    fn room_member(&self, slot: usize, room: &str) -> RemoteRoomMember {
        RemoteRoomMember {
            tenant: self.conns[slot].state.tenant.clone(),
            room: room.to_string(),
            member: self.conns[slot].member_view(),
        }
    }

    /// Tell the other nodes that the connection at `slot` joined (`true`) or left `room`.
    pub(super) fn cluster_room(&mut self, slot: usize, room: &str, joined: bool) {
        if self.cluster.is_none() {
            return;
        }
        let member = self.room_member(slot, room);
        self.cluster_emit(|node| match joined {
            true => ClusterMessage::RoomJoin { node, member },
            false => ClusterMessage::RoomLeave { node, member },
        });
    }

    /// Refuse a `room:message` to the room keyed `key` while the broker is down and
    /// members of other nodes are known: it is never half-sent.
    pub(super) fn room_message_gate(&self, key: &str) -> Result<(), (ErrorCode, String)> {
        match self.remote_room_count(key) {
            0 => Ok(()),
            _ => self.cluster_gate(),
        }
    }

    /// Carry a `room:message` of the connection at `slot` to the nodes holding members of
    /// the room keyed `key` (nothing when no other node has any, as last announced).
    pub(super) fn cluster_room_message(&mut self, slot: usize, key: &str, message: &ServerMessage) {
        if self.remote_room_count(key) == 0 {
            return;
        }
        let ServerMessage::RoomMessage {
            room,
            from,
            event,
            data,
            timestamp,
        } = message
        else {
            return;
        };
        let tenant = self.conns[slot].state.tenant.clone();
        self.cluster_emit(|node| ClusterMessage::RoomMessage {
            node,
            tenant,
            room: room.clone(),
            from: from.clone(),
            event: event.clone(),
            data: data.clone(),
            timestamp: timestamp.clone(),
        });
    }

    /// This node's room memberships, for its snapshot.
    pub(super) fn room_snapshot(&self) -> Vec<RemoteRoomMember> {
        let mut rooms = Vec::new();
        for (slot, c) in self.conns.iter().filter(|(_, c)| !c.closing) {
            for room in &c.state.rooms {
                rooms.push(self.room_member(slot, room));
            }
        }
        rooms
    }

    fn room_key(member: &RemoteRoomMember) -> String {
        crate::tenant::scoped(member.tenant.as_deref(), &member.room).into_owned()
    }

    /// A member of another node joined: `room:joined` to the local members.
    pub(super) fn remote_room_join(&mut self, node: String, member: RemoteRoomMember) {
        let key = Self::room_key(&member);
        let Some(c) = self.cluster.as_mut() else {
            return;
        };
        let id = (node, member.member.client_id.clone());
        let fresh = c
            .rooms
            .entry(key.clone())
            .or_default()
            .insert(id, member.member.clone())
            .is_none();
        if fresh {
            let peers = self.room_peers(&key, usize::MAX);
            let msg = ServerMessage::RoomJoined {
                room: member.room,
                member: member.member,
            };
            self.fanout(&peers, Outbound::Message(&msg));
        }
    }

    /// A member of another node left: `room:left` to the local members.
    pub(super) fn remote_room_leave(&mut self, node: &str, member: &RemoteRoomMember) {
        let key = Self::room_key(member);
        let Some(c) = self.cluster.as_mut() else {
            return;
        };
        let Some(entries) = c.rooms.get_mut(&key) else {
            return;
        };
        let removed = entries.remove(&(node.to_string(), member.member.client_id.clone()));
        if entries.is_empty() {
            c.rooms.remove(&key);
        }
        if removed.is_some() {
            let peers = self.room_peers(&key, usize::MAX);
            let msg = ServerMessage::RoomLeft {
                room: member.room.clone(),
                client_id: member.member.client_id.clone(),
            };
            self.fanout(&peers, Outbound::Message(&msg));
        }
    }

    /// A `room:message` from a member of another node: to every local member.
    pub(super) fn remote_room_message(
        &mut self,
        tenant: Option<&str>,
        message: ServerMessage,
    ) -> usize {
        let ServerMessage::RoomMessage { room, .. } = &message else {
            return 0;
        };
        let key = crate::tenant::scoped(tenant, room).into_owned();
        let peers = self.room_peers(&key, usize::MAX);
        self.fanout(&peers, Outbound::Message(&message))
    }

    /// Forget the room members known of `node` and take `rooms` instead, with
    /// `room:left` / `room:joined` for the difference.
    pub(super) fn replace_node_rooms(&mut self, node: &str, rooms: Vec<RemoteRoomMember>) {
        let Some(c) = self.cluster.as_ref() else {
            return;
        };
        let mut old: Vec<RemoteRoomMember> = Vec::new();
        for (key, entries) in &c.rooms {
            let (tenant, room) = crate::tenant::split(key);
            for ((n, _), view) in entries {
                if n == node {
                    old.push(RemoteRoomMember {
                        tenant: tenant.map(str::to_string),
                        room: room.to_string(),
                        member: view.clone(),
                    });
                }
            }
        }
        let same = |a: &RemoteRoomMember, b: &RemoteRoomMember| {
            a.tenant == b.tenant && a.room == b.room && a.member.client_id == b.member.client_id
        };
        for m in old.iter().filter(|m| !rooms.iter().any(|n| same(m, n))) {
            self.remote_room_leave(node, m);
        }
        for m in rooms {
            if !old.iter().any(|o| same(o, &m)) {
                self.remote_room_join(node.to_string(), m);
            }
        }
    }

    /// Whether the room keyed `key` is known anywhere: created here, or with members
    /// on this node or another.
    pub(super) fn room_known(&self, key: &str) -> bool {
        self.room_meta.contains_key(key)
            || self.hub.room_members(key).is_some()
            || self.remote_room_count(key) > 0
    }

    /// The public info of the members of other nodes in the room keyed `key`.
    pub(super) fn remote_room_info(&self, key: &str) -> Vec<Value> {
        self.remote_room_members(key)
            .into_iter()
            .map(|m| serde_json::json!({ "clientId": m.client_id, "user": m.user }))
            .collect()
    }
}
