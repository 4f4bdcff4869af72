//! Socket.IO (`routes[].codec = "socket.io"`): acknowledgements requested by the server
//! (the server-API command `emitWithAck`). In process only: the live runners send a
//! command and wait for its result before the next step, and this result waits for a
//! later step (the client's ack).

use serde_json::json;

use crate::dsl::{std_with, Sc};

const IN_PROCESS: &str = "the command's result waits for a later step (the client's ack), \
    and the live runners wait for each command's result before the next step";

fn sio() -> serde_json::Value {
    std_with(json!({
        "heartbeatInterval": 0,
        "routes": [{"path": "/"}, {"path": "/socket.io", "codec": "socket.io"}],
        "socketIo": {"namespaces": ["/", "/custom"]},
    }))
}

/// The scenarios of this area.
pub fn scenarios() -> Vec<Sc> {
    vec![
        Sc::new("socketio/server-requested-ack", "`emitWithAck` emits `2<id>[\"event\", ...args]` with the connection's next ack id (0, 1, ...; `{\"$args\"}` spread, `/custom` as `2/custom,<id>`); the client's `3<id>[...]` on the same namespace answers the command with `{clientId, data}` (several arguments as `{\"$args\"}`), in any order; an ack with an unknown id, or with a known id on another namespace, is ignored.")
            .in_process(IN_PROCESS)
            .cfg(sio())
            .open_h(1, "/socket.io/", "EIO=4&transport=websocket", &[])
            .text(1, "40")
            .text(1, "40/custom,")
            .cmd(json!({"command": "emitWithAck", "clientId": "c1", "event": "ask", "data": {"q": 1}}))
            .cmd(json!({"command": "emitWithAck", "clientId": "c1", "event": "ask", "data": {"$args": [1, "two"]}, "namespace": "/custom"}))
            .text(1, r#"4399["stray"]"#)
            .text(1, r#"431["wrong namespace"]"#)
            .text(1, r#"43/custom,1["a",2]"#)
            .text(1, r#"430[{"answer":42}]"#)
            .features(&["codec:socket.io", "socket.io:server-ack"]),
        Sc::new("socketio/server-requested-ack-failures", "`emitWithAck` fails with TIMEOUT when no ack comes within `timeoutMs` (a late ack is then ignored), with NOT_FOUND when the client leaves the namespace (`41`) or disconnects first, for a client that is not connected or not on the namespace, and with INVALID_MESSAGE for a client of another codec.")
            .in_process(IN_PROCESS)
            .cfg(sio())
            .open_h(1, "/socket.io/", "EIO=4&transport=websocket", &[])
            .open(2)
            .text(1, "40")
            .cmd(json!({"command": "emitWithAck", "clientId": "c1", "event": "ask", "timeoutMs": 1000}))
            .timeout_at(1000)
            .text(1, r#"430["late"]"#)
            .cmd(json!({"command": "emitWithAck", "clientId": "c1", "event": "ask", "namespace": "/custom"}))
            .cmd(json!({"command": "emitWithAck", "clientId": "c2", "event": "ask"}))
            .cmd(json!({"command": "emitWithAck", "clientId": "nobody", "event": "ask"}))
            .text(1, "40/custom,")
            .cmd(json!({"command": "emitWithAck", "clientId": "c1", "event": "ask", "namespace": "/custom"}))
            .text(1, "41/custom,")
            .cmd(json!({"command": "emitWithAck", "clientId": "c1", "event": "bye"}))
            .close(1, Some(1000))
            .features(&["codec:socket.io", "socket.io:server-ack"]),
    ]
}
