//! Rooms: join, leave, room messages and members.

use super::*;

impl Engine {
    pub(super) fn join(&mut self, slot: usize, room: String, rid: Rid) {
        if let Err(m) = self.check_name("room", &room) {
            return self.send_error(slot, ErrorCode::InvalidMessage, m, rid);
        }
        if let Err((code, m)) = self.room_permitted(slot, RoomAction::Join, &room) {
            return self.send_error(slot, code, m, rid);
        }
        if let Err((code, m)) = self.join_room(slot, room, rid.clone()) {
            self.send_error(slot, code, m, rid);
        }
    }

    /// Put `slot` in `room` (limits and capacity apply; permissions are the caller's):
    /// `joined` to it (with `rid`), `room:joined` to the others. In a cluster, capacity
    /// and the member count include the other nodes' members as last announced.
    pub(in crate::machine) fn join_room(
        &mut self,
        slot: usize,
        room: String,
        rid: Rid,
    ) -> Result<(), (ErrorCode, String)> {
        let key = self.key_for(slot, &room).into_owned();
        let remote = self.remote_room_count(&key);
        if self.conns[slot].state.rooms.contains(&room) {
            let members = self.hub.room_members(&key).map_or(0, |m| m.len()) + remote;
            self.send(
                slot,
                &ServerMessage::Joined {
                    room,
                    members,
                    request_id: rid,
                },
            );
            return Ok(());
        }
        if self.conns[slot].state.rooms.len() >= self.config.limits.max_rooms_per_connection {
            return Err((
                ErrorCode::LimitExceeded,
                format!(
                    "at most {} rooms per connection",
                    self.config.limits.max_rooms_per_connection
                ),
            ));
        }
        let current = self.hub.room_members(&key).map(|m| m.len());
        if current.is_none() && self.hub.room_count() >= self.config.rooms.max_rooms {
            return Err((
                ErrorCode::LimitExceeded,
                format!(
                    "the server holds at most {} rooms",
                    self.config.rooms.max_rooms
                ),
            ));
        }
        let capacity = self.room_capacity(&key);
        if current.unwrap_or(0) + remote >= capacity {
            return Err((
                ErrorCode::RoomFull,
                format!("room `{room}` is full ({capacity} members)"),
            ));
        }
        let others: Vec<(usize, ConnId)> = self.room_peers(&key, slot);
        let members = self.hub.join_room(slot, &key) + remote;
        self.conns[slot].state.rooms.push(room.clone());
        self.cluster_room(slot, &room, true);
        self.send(
            slot,
            &ServerMessage::Joined {
                room: room.clone(),
                members,
                request_id: rid,
            },
        );
        let member = self.conns[slot].member_view();
        self.fanout(
            &others,
            Outbound::Message(&ServerMessage::RoomJoined { room, member }),
        );
        Ok(())
    }

    /// Members of the room keyed `key` other than `slot`.
    pub(in crate::machine) fn room_peers(&self, key: &str, slot: usize) -> Vec<(usize, ConnId)> {
        self.hub
            .room_members(key)
            .into_iter()
            .flatten()
            .filter(|s| **s != slot)
            .map(|s| (*s, self.conns[*s].id))
            .collect()
    }

    /// Take `slot` out of `room` (the name it gave) and tell the remaining members.
    pub(in crate::machine) fn leave_room_and_notify(&mut self, slot: usize, room: &str) {
        let key = self.key_for(slot, room).into_owned();
        self.hub.leave_room(slot, &key);
        let others = self.room_peers(&key, slot);
        let client_id = self.conns[slot].state.client_id.clone();
        self.fanout(
            &others,
            Outbound::Message(&ServerMessage::RoomLeft {
                room: room.to_string(),
                client_id,
            }),
        );
        self.cluster_room(slot, room, false);
    }

    pub(super) fn leave(&mut self, slot: usize, room: String, rid: Rid) {
        let Some(pos) = self.conns[slot].state.rooms.iter().position(|r| *r == room) else {
            return self.send_error(
                slot,
                ErrorCode::NotFound,
                format!("not a member of room `{}`", clip(&room)),
                rid,
            );
        };
        self.conns[slot].state.rooms.remove(pos);
        self.send(
            slot,
            &ServerMessage::Left {
                room: room.clone(),
                request_id: rid,
            },
        );
        self.leave_room_and_notify(slot, &room);
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn room_message(
        &mut self,
        now: Millis,
        slot: usize,
        room: String,
        data: Option<Value>,
        event: Option<String>,
        ack: bool,
        rid: Rid,
    ) {
        if !self.conns[slot].state.rooms.contains(&room) {
            return self.send_error(
                slot,
                ErrorCode::Forbidden,
                format!("join room `{}` before sending to it", clip(&room)),
                rid,
            );
        }
        if let Err((code, m)) = self.room_permitted(slot, RoomAction::Message, &room) {
            return self.send_error(slot, code, m, rid);
        }
        let key = self.key_for(slot, &room).into_owned();
        if let Err((code, m)) = self.room_message_gate(&key) {
            return self.send_error(slot, code, m, rid);
        }
        let others = self.room_peers(&key, slot);
        let msg = ServerMessage::RoomMessage {
            room,
            from: self.conns[slot].state.client_id.clone(),
            event,
            data,
            timestamp: iso8601(now),
        };
        let delivered = self.fanout(&others, Outbound::Message(&msg));
        self.cluster_room_message(slot, &key, &msg);
        if ack {
            self.send(
                slot,
                &ServerMessage::Sent {
                    delivered,
                    request_id: rid,
                },
            );
        }
    }

    pub(super) fn room_members(&mut self, slot: usize, room: String, rid: Rid) {
        if !self.conns[slot].state.rooms.contains(&room) {
            return self.send_error(
                slot,
                ErrorCode::Forbidden,
                format!("only members of room `{}` may list it", clip(&room)),
                rid,
            );
        }
        if let Err((code, m)) = self.room_permitted(slot, RoomAction::Members, &room) {
            return self.send_error(slot, code, m, rid);
        }
        let key = self.key_for(slot, &room).into_owned();
        let mut members: Vec<_> = self
            .hub
            .room_members(&key)
            .into_iter()
            .flatten()
            .map(|s| self.conns[*s].member_view())
            .collect();
        members.extend(self.remote_room_members(&key));
        self.send(
            slot,
            &ServerMessage::RoomMembers {
                room,
                members,
                request_id: rid,
            },
        );
    }
}
