//! The `{event, data}` envelope codec (`routes[].codec = "event"`, the demo's `/events`):
//! every built-in and application message in the envelope, errors as `error` events,
//! YektaYar's built-ins, and fan-out across codecs.

use serde_json::json;

use super::handlers::handler;
use crate::dsl::{std_with, Sc};

/// The scenarios of this area.
pub fn scenarios() -> Vec<Sc> {
    vec![
        Sc::new("envelope/welcome-and-ping", "On an envelope route the welcome is `{\"event\":\"connected\",\"data\":{message,socketId,isLoggedIn,user,clientId,timestamp,protocolVersion}}` (isLoggedIn true with a token); `ping` is answered with `pong` carrying `{timestamp}` and the envelope's `id` (none without one; any `data` is ignored).")
            .demo()
            .open_h(1, "/events", "", &[])
            .open_h(2, "/events", "token=key_user", &[])
            .send(1, json!({"event": "ping", "id": 1}))
            .send(1, json!({"event": "ping"}))
            .send(2, json!({"event": "ping", "data": {}, "id": "p"}))
            .types(&["envelope:connected", "envelope:pong"])
            .features(&["codec:event"]),
        Sc::new("envelope/yektayar-built-ins", "YektaYar's built-ins: `status` → `status_response` {server, connection}, `echo` → `echo_response` {received, timestamp, socketId}, `info` → `info_response` {server, websocket, session}, `message` → `message_received` {success, message, data}; each echoes the `id`.")
            .demo()
            .open_h(1, "/events", "token=key_user", &[])
            .send(1, json!({"event": "status", "id": 1}))
            .send(1, json!({"event": "echo", "data": "Hello World", "id": 2}))
            .send(1, json!({"event": "info", "data": {}}))
            .send(1, json!({"event": "message", "data": {"content": "hi"}, "id": 3}))
            .types(&["envelope:status_response", "envelope:echo_response", "envelope:info_response", "envelope:message_received"])
            .features(&["codec:event"]),
        Sc::new("envelope/errors", "Errors are `{\"event\":\"error\",\"data\":{code,message}}` with the `id` when one was readable: not JSON INVALID_JSON, not an object or no string `event` INVALID_MESSAGE, an undeclared event UNKNOWN_MESSAGE_TYPE, a built-in whose `data` is not an object or lacks a field INVALID_MESSAGE; a protocol-v1 frame is not an envelope. YektaYar's built-ins do not exist on JSON routes.")
            .demo()
            .open_h(1, "/events", "", &[])
            .open(2)
            .text(1, "{nope")
            .text(1, "[1]")
            .send(1, json!({"data": {}, "id": 1}))
            .send(1, json!({"event": 5, "id": 2}))
            .send(1, json!({"event": "nope", "id": 3}))
            .send(1, json!({"event": "join", "data": "lobby", "id": 4}))
            .send(1, json!({"event": "get", "data": {"resource": "messages"}, "id": 5}))
            .send(1, json!({"type": "ping", "requestId": 6}))
            .send(2, json!({"type": "status", "requestId": 7}))
            .errors(&["INVALID_JSON", "INVALID_MESSAGE", "UNKNOWN_MESSAGE_TYPE"])
            .types(&["envelope:error", "error"])
            .features(&["codec:event"]),
        Sc::new("envelope/built-ins-and-fan-out", "A built-in's fields come from `data` (`subscribe`, `join`, `room:message`, `insert`, `publish`); answers and pushes reach envelope clients as envelopes and JSON clients as protocol v1, encoded once per codec.")
            .demo()
            .open_h(1, "/events", "", &[])
            .open(2)
            .send(1, json!({"event": "subscribe", "data": {"channel": "news"}, "id": 1}))
            .send(2, json!({"type": "subscribe", "channel": "news", "requestId": 1}))
            .send(2, json!({"type": "publish", "channel": "news", "message": {"t": 1}, "requestId": 2}))
            .send(1, json!({"event": "publish", "data": {"channel": "news", "message": "hey"}, "id": 2}))
            .send(1, json!({"event": "join", "data": {"room": "lobby"}, "id": 3}))
            .send(2, json!({"type": "join", "room": "lobby"}))
            .send(2, json!({"type": "room:message", "room": "lobby", "event": "hi", "data": 1}))
            .send(1, json!({"event": "subscribe", "data": {"resource": "messages"}, "id": 4}))
            .send(2, json!({"type": "insert", "resource": "messages", "data": {"id": "m1", "content": "x"}, "requestId": 3}))
            .auto_store()
            .types(&["envelope:subscribed", "envelope:message", "envelope:joined", "envelope:room:joined", "envelope:room:message", "envelope:event", "message", "published"])
            .features(&["codec:event", "fanout:codecs"]),
        Sc::new("envelope/application-messages", "An application message is `{event: type, data, id}`: its handler's reply comes back as `{\"event\":\"reply\",\"data\":<reply>,\"id\"}`, its error as an `error` event; a declared type named like a YektaYar built-in (`message`) goes to its handler instead.")
            .cfg(std_with(json!({
                "heartbeatInterval": 0,
                "routes": [{"path": "/"}, {"path": "/events", "codec": "event"}],
                "messages": {"chat": {}, "message": {}},
            })))
            .open_h(1, "/events", "", &[])
            .send(1, json!({"event": "chat", "data": {"text": "hi"}, "id": "r1"}))
            .complete(1, handler(json!({"reply": {"echo": "hi"}})))
            .send(1, json!({"event": "message", "data": 1, "id": "r2"}))
            .complete(2, handler(json!({"error": {"code": "NOPE", "message": "not now"}})))
            .errors(&["NOPE"])
            .types(&["envelope:reply", "envelope:error"])
            .features(&["codec:event", "handler:message"]),
        Sc::new("envelope/server-api", "Server-API messages reach envelope clients verbatim when they already are `{event, ...}` objects, otherwise wrapped as `{\"event\":\"message\",\"data\":<value>}`; JSON clients get them verbatim.")
            .demo()
            .open_h(1, "/events", "", &[])
            .open(2)
            .cmd(json!({"command": "broadcast", "message": {"kind": "news"}}))
            .cmd(json!({"command": "broadcast", "message": {"event": "alert", "data": {"level": 2}}}))
            .cmd(json!({"command": "broadcast", "message": "plain"}))
            .features(&["codec:event", "server-api:envelope"]),
    ]
}
