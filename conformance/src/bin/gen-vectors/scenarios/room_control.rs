//! Room control through the server API: create, info, join/leave a client, send to a
//! room, client info, delete; sending to a user's connections.

use serde_json::json;

use crate::dsl::{std_with, Sc};

fn quiet() -> serde_json::Value {
    std_with(json!({"heartbeatInterval": 0}))
}

/// The scenarios of this area.
pub fn scenarios() -> Vec<Sc> {
    vec![
        Sc::new("room-control/create-join-send-delete", "`createRoom` keeps a room (description, capacity, metadata) even without members; `joinRoom`/`leaveRoom` move a client (it gets `joined`/`left`, the others presence); `sendToRoom` sends verbatim to the members; `roomInfo` lists them; `deleteRoom` empties it (members get `left`).")
            .cfg(quiet())
            .open_q(1, "token=key_user")
            .open(2)
            .cmd(json!({"command": "createRoom", "room": "stage", "description": "Main stage", "capacity": 1, "metadata": {"topic": "rust"}}))
            .cmd(json!({"command": "roomInfo", "room": "stage"}))
            .cmd(json!({"command": "joinRoom", "clientId": "c1", "room": "stage"}))
            .cmd(json!({"command": "joinRoom", "clientId": "c2", "room": "stage"}))
            .cmd(json!({"command": "sendToRoom", "room": "stage", "message": {"type": "show", "act": 1}}))
            .cmd(json!({"command": "roomInfo", "room": "stage"}))
            .cmd(json!({"command": "rooms"}))
            .cmd(json!({"command": "leaveRoom", "clientId": "c1", "room": "stage"}))
            .cmd(json!({"command": "leaveRoom", "clientId": "c1", "room": "stage"}))
            .cmd(json!({"command": "joinRoom", "clientId": "c2", "room": "stage"}))
            .cmd(json!({"command": "deleteRoom", "room": "stage"}))
            .cmd(json!({"command": "roomInfo", "room": "stage"}))
            .cmd(json!({"command": "deleteRoom", "room": "stage"}))
            .errors(&["ROOM_FULL", "NOT_FOUND"])
            .types(&["joined", "left"])
            .features(&["room-control"]),
        Sc::new("room-control/client-info-and-send-to-user", "`clientInfo` shows a client's user, route, params, rooms and subscriptions; `sendToUser` reaches every connection of a user; unknown clients are NOT_FOUND.")
            .cfg(quiet())
            .open_q(1, "token=key_user")
            .open_q(2, "token=key_user")
            .open(3)
            .send(1, json!({"type": "join", "room": "lobby"}))
            .send(1, json!({"type": "subscribe", "channel": "news"}))
            .cmd(json!({"command": "clientInfo", "clientId": "c1"}))
            .cmd(json!({"command": "clientInfo", "clientId": "zz"}))
            .cmd(json!({"command": "sendToUser", "userId": "u1", "message": {"type": "hello"}}))
            .cmd(json!({"command": "sendToUser", "userId": "nobody", "message": 1}))
            .errors(&["NOT_FOUND"])
            .types(&["joined", "subscribed"])
            .features(&["room-control"]),
    ]
}
