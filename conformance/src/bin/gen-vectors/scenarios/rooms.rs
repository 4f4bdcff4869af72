//! Rooms: join/leave with presence, room messages, member lists.

use serde_json::json;

use crate::dsl::Sc;

/// The scenarios of this area.
pub fn scenarios() -> Vec<Sc> {
    vec![
        Sc::new("rooms/join-and-presence", "`join` answers with the member count; the other members get `room:joined` with the newcomer's public user view.")
            .demo()
            .open_q(1, "token=key_user")
            .open(2)
            .send(1, json!({"type": "join", "room": "lobby", "requestId": "j1"}))
            .send(2, json!({"type": "join", "room": "lobby", "requestId": "j2"}))
            .types(&["joined", "room:joined"]),
        Sc::new("rooms/join-channel-alias", "`join`/`leave`/`room:message`/`room:members` accept `channel` as an alias of `room` (the s3db.js spelling).")
            .demo()
            .open(1)
            .open(2)
            .send(1, json!({"type": "join", "channel": "lobby", "requestId": 1}))
            .send(2, json!({"type": "join", "channel": "lobby"}))
            .send(1, json!({"type": "room:message", "channel": "lobby", "data": 1}))
            .send(1, json!({"type": "room:members", "channel": "lobby", "requestId": 2}))
            .send(2, json!({"type": "leave", "channel": "lobby", "requestId": 3}))
            .types(&["joined", "room:message", "room:members", "left", "room:left"]),
        Sc::new("rooms/channel-message-alias", "s3db.js's `channel:message` is accepted as an alias of `room:message` (with the `channel` field): members get `room:message`, non-members FORBIDDEN.")
            .demo()
            .open(1)
            .open(2)
            .open(3)
            .send(1, json!({"type": "join", "channel": "lobby"}))
            .send(2, json!({"type": "join", "channel": "lobby"}))
            .send(1, json!({"type": "channel:message", "channel": "lobby", "data": {"t": 1}, "ack": true, "requestId": 1}))
            .send(3, json!({"type": "channel:message", "channel": "lobby", "data": 2, "requestId": 2}))
            .errors(&["FORBIDDEN"])
            .types(&["room:message", "sent"]),
        Sc::new("rooms/rejoin-is-quiet", "Joining a room you are already in answers `joined` again without a presence notice.")
            .demo()
            .open(1)
            .open(2)
            .send(1, json!({"type": "join", "room": "lobby"}))
            .send(2, json!({"type": "join", "room": "lobby"}))
            .send(2, json!({"type": "join", "room": "lobby", "requestId": "again"}))
            .types(&["joined"]),
        Sc::new("rooms/join-invalid", "Both `room` and `channel`, or an empty name, are INVALID_MESSAGE.")
            .demo()
            .open(1)
            .send(1, json!({"type": "join", "room": "a", "channel": "b", "requestId": 1}))
            .send(1, json!({"type": "join", "room": "", "requestId": 2}))
            .send(1, json!({"type": "join", "requestId": 3}))
            .errors(&["INVALID_MESSAGE"]),
        Sc::new("rooms/room-message", "`room:message` reaches the other members (not the sender) with `from`, `event` and `data`; without `ack` there is no answer, with `ack` the answer is `sent`.")
            .demo()
            .open(1)
            .open(2)
            .open(3)
            .send(1, json!({"type": "join", "room": "lobby"}))
            .send(2, json!({"type": "join", "room": "lobby"}))
            .send(3, json!({"type": "join", "room": "lobby"}))
            .send(1, json!({"type": "room:message", "room": "lobby", "event": "typing", "data": {"user": "ann"}}))
            .send(1, json!({"type": "room:message", "room": "lobby", "data": "hi", "ack": true, "requestId": 12}))
            .send(1, json!({"type": "room:message", "room": "lobby", "ack": true, "requestId": 13}))
            .types(&["room:message", "sent"]),
        Sc::new("rooms/non-member-refused", "Sending to or listing a room you are not in is FORBIDDEN; leaving it is NOT_FOUND.")
            .demo()
            .open(1)
            .open(2)
            .send(1, json!({"type": "join", "room": "club"}))
            .send(2, json!({"type": "room:message", "room": "club", "data": 1, "requestId": 1}))
            .send(2, json!({"type": "room:members", "room": "club", "requestId": 2}))
            .send(2, json!({"type": "leave", "room": "club", "requestId": 3}))
            .errors(&["FORBIDDEN", "NOT_FOUND"]),
        Sc::new("rooms/members-in-join-order", "`room:members` lists members in join order with their public user views.")
            .demo()
            .open_q(1, "token=key_admin")
            .open(2)
            .open_q(3, "token=key_user")
            .send(3, json!({"type": "join", "room": "r"}))
            .send(1, json!({"type": "join", "room": "r"}))
            .send(2, json!({"type": "join", "room": "r"}))
            .send(2, json!({"type": "room:members", "room": "r", "requestId": 13}))
            .types(&["room:members"]),
        Sc::new("rooms/leave-and-disconnect", "`leave` answers `left` and tells the remaining members `room:left`; a disconnect announces `room:left` too.")
            .demo()
            .open(1)
            .open(2)
            .open(3)
            .send(1, json!({"type": "join", "room": "lobby"}))
            .send(2, json!({"type": "join", "room": "lobby"}))
            .send(3, json!({"type": "join", "room": "lobby"}))
            .send(1, json!({"type": "leave", "room": "lobby", "requestId": 11}))
            .close(2, Some(1000))
            .send(3, json!({"type": "room:members", "room": "lobby", "requestId": 1}))
            .types(&["left", "room:left", "room:members"])
            .features(&["close:cleanup"]),
        Sc::new("rooms/empty-room-disappears", "A room without members disappears from the `rooms` command; `rooms` lists name, members and capacity sorted by name.")
            .open(1)
            .open(2)
            .send(1, json!({"type": "join", "room": "zeta"}))
            .send(2, json!({"type": "join", "room": "alpha"}))
            .send(2, json!({"type": "join", "room": "duo"}))
            .cmd(json!({"command": "rooms"}))
            .send(1, json!({"type": "leave", "room": "zeta"}))
            .cmd(json!({"command": "rooms"}))
            .types(&["joined", "left"]),
    ]
}
