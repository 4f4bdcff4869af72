//! Application handlers: declared message types (validation, roles, guard, cost),
//! replies, errors, commands (streaming), the `connect`/`disconnect` hooks,
//! interceptors (cancel, modify), route parameters and room permissions.

use serde_json::{json, Value};

use crate::dsl::{request, std_with, Sc};

/// A `HostResult::Handler` as JSON: `{"kind":"handler", ...response}`.
pub fn handler(response: Value) -> Value {
    let mut v = json!({"kind": "handler"});
    if let (Some(m), Some(r)) = (v.as_object_mut(), response.as_object()) {
        m.extend(r.clone());
    }
    v
}

/// The standard config with application message types and `patch` on top.
fn app(patch: Value) -> Value {
    let mut c = std_with(json!({
        "heartbeatInterval": 0,
        "messages": {
            "chat": {
                "schema": {
                    "type": "object",
                    "required": ["text"],
                    "properties": {"text": {"type": "string", "maxLength": 20}},
                },
            },
            "ai:chat": {},
            "admin:stats": {"roles": ["admin"]},
            "report": {"scopes": ["read"]},
            "vote": {"guard": "user != null && data.choice in ['a', 'b']"},
        },
    }));
    if let (Some(c), Some(p)) = (c.as_object_mut(), patch.as_object()) {
        for (k, v) in p {
            c.insert(k.clone(), v.clone());
        }
    }
    c
}

/// The scenarios of this area.
pub fn scenarios() -> Vec<Sc> {
    vec![
        Sc::new("handlers/message-reply", "A declared message type becomes a `message` host call with the type, the validated data, the requestId and the client context (id, user, route, params); the handler's `reply` comes back as `{\"type\":\"reply\",\"requestId\",\"data\"}`, `null` included.")
            .cfg(app(json!({})))
            .open_q(1, "token=key_user")
            .send(1, json!({"type": "chat", "data": {"text": "hello"}, "requestId": "r1"}))
            .complete(1, handler(json!({"reply": {"echo": "hello", "n": 1}})))
            .send(1, json!({"type": "ai:chat", "requestId": 0}))
            .complete(2, handler(json!({"reply": null})))
            .types(&["reply"])
            .features(&["handler:message", "handler:reply"]),
        Sc::new("handlers/message-refused-before-the-handler", "Before any handler call: an undeclared type is UNKNOWN_MESSAGE_TYPE, data failing the type's JSON Schema VALIDATION_ERROR, a missing role UNAUTHORIZED (anonymous) or FORBIDDEN, a missing scope FORBIDDEN, a CEL guard that is not true FORBIDDEN.")
            .cfg(app(json!({})))
            .open(1)
            .open_q(2, "token=key_user2")
            .send(1, json!({"type": "nope", "data": 1, "requestId": 1}))
            .send(1, json!({"type": "chat", "data": {"text": 5}, "requestId": 2}))
            .send(1, json!({"type": "chat", "requestId": 3}))
            .send(1, json!({"type": "admin:stats", "requestId": 4}))
            .send(2, json!({"type": "admin:stats", "requestId": 5}))
            .send(2, json!({"type": "report", "requestId": 6}))
            .send(1, json!({"type": "vote", "data": {"choice": "a"}, "requestId": 7}))
            .send(2, json!({"type": "vote", "data": {"choice": "z"}, "requestId": 8}))
            .send(2, json!({"type": "vote", "data": {"choice": "b"}, "requestId": 9}))
            .complete(1, handler(json!({"reply": "counted"})))
            .errors(&["UNKNOWN_MESSAGE_TYPE", "VALIDATION_ERROR", "UNAUTHORIZED", "FORBIDDEN"])
            .types(&["reply"])
            .features(&["handler:validation", "handler:roles", "handler:guard"]),
        Sc::new("handlers/message-errors", "A handler may answer an error: a documented code keeps its meaning, an application code (`[A-Z][A-Z0-9_]*`) is passed through, an invalid code is INTERNAL_ERROR; a handler the host could not run (`failed`) is INTERNAL_ERROR without internals; an empty answer sends nothing.")
            .cfg(app(json!({})))
            .open_q(1, "token=key_user")
            .send(1, json!({"type": "chat", "data": {"text": "a"}, "requestId": 1}))
            .send(1, json!({"type": "chat", "data": {"text": "b"}, "requestId": 2}))
            .send(1, json!({"type": "chat", "data": {"text": "c"}, "requestId": 3}))
            .send(1, json!({"type": "chat", "data": {"text": "d"}, "requestId": 4}))
            .send(1, json!({"type": "chat", "data": {"text": "e"}, "requestId": 5}))
            .complete(1, handler(json!({"error": {"code": "FORBIDDEN", "message": "you are muted"}})))
            .complete(2, handler(json!({"error": {"code": "CHAT_MUTED", "message": "muted for 5 minutes"}})))
            .complete(3, handler(json!({"error": {"code": "not a code", "message": "x"}})))
            .complete(4, handler(json!({"failed": "TypeError: cannot read properties of undefined (at /srv/app.js:12)"})))
            .complete(5, handler(json!({})))
            .send(1, json!({"type": "ping", "requestId": 6}))
            .errors(&["FORBIDDEN", "INTERNAL_ERROR"])
            .types(&["pong"])
            .features(&["handler:error", "handler:failure", "handler:no-reply"]),
        Sc::new("handlers/message-timeout", "A handler that does not answer within the type's `timeoutMs` is answered TIMEOUT with the requestId at the deadline; its late answer is dropped.")
            .cfg(app(json!({"messages": {"slow": {"timeoutMs": 100}}})))
            .open(1)
            .send(1, json!({"type": "slow", "data": [1, 2], "requestId": "s1"}))
            .timeout_at(100)
            .at(150)
            .complete(1, handler(json!({"reply": "late"})))
            .errors(&["TIMEOUT"])
            .features(&["handler:timeout", "hostcall:late-completion"]),
        Sc::new("handlers/message-calls-in-flight", "Handler calls count against `maxPendingCallsPerConnection`: beyond it LIMIT_EXCEEDED with the requestId, until an answer frees a slot.")
            .cfg(app(json!({"limits": {"maxPendingCallsPerConnection": 1}})))
            .open(1)
            .send(1, json!({"type": "ai:chat", "data": "one", "requestId": 1}))
            .send(1, json!({"type": "ai:chat", "data": "two", "requestId": 2}))
            .complete(1, handler(json!({"reply": 1})))
            .send(1, json!({"type": "ai:chat", "data": "three", "requestId": 3}))
            .errors(&["LIMIT_EXCEEDED"])
            .types(&["reply"])
            .limits(&["limits.maxPendingCallsPerConnection"])
            .features(&["handler:limits"]),
        Sc::new("handlers/message-cost", "With rate limiting on, a message type's `cost` takes that many tokens: a message that costs more than is left is RATE_LIMIT_EXCEEDED (the frame's own token stays taken).")
            .cfg(app(json!({"rateLimit": {"enabled": true, "maxRequests": 4, "windowMs": 60000}, "messages": {"ai:chat": {"cost": 3}}})))
            .open(1)
            .send(1, json!({"type": "ai:chat", "data": "a", "requestId": 1}))
            .send(1, json!({"type": "ai:chat", "data": "b", "requestId": 2}))
            .complete(1, handler(json!({"reply": "ok"})))
            .errors(&["RATE_LIMIT_EXCEEDED"])
            .types(&["reply"])
            .features(&["handler:cost"]),
        Sc::new("handlers/streaming-and-commands", "A handler's answer may carry server-API commands, run in order before the reply: `send` to the caller several times (streaming: start, chunks, complete), `sendTo` another client, `sendToUser`, `joinRoom` the caller, `publish`, `broadcast`; a command that fails is skipped and counted.")
            .cfg(app(json!({})))
            .open_q(1, "token=key_user")
            .open_q(2, "token=key_user2")
            .send(2, json!({"type": "subscribe", "channel": "news"}))
            .send(1, json!({"type": "ai:chat", "data": {"prompt": "hi"}, "requestId": "q1"}))
            .complete(1, handler(json!({
                "commands": [
                    {"command": "send", "message": {"type": "ai:response:start", "requestId": "q1"}},
                    {"command": "send", "message": {"type": "ai:response:chunk", "requestId": "q1", "data": "Hel"}},
                    {"command": "send", "message": {"type": "ai:response:chunk", "requestId": "q1", "data": "lo"}},
                    {"command": "send", "message": {"type": "ai:response:complete", "requestId": "q1"}},
                    {"command": "sendTo", "clientId": "c2", "message": {"type": "notice", "text": "c1 asked"}},
                    {"command": "sendToUser", "userId": "u1", "message": {"type": "for-u1"}},
                    {"command": "joinRoom", "room": "ai-users"},
                    {"command": "publish", "channel": "news", "data": {"n": 1}},
                    {"command": "sendTo", "clientId": "nobody", "message": 1},
                    {"command": "shutdown"},
                    {"command": "broadcast", "message": {"type": "all"}},
                ],
                "reply": {"done": true},
            })))
            .cmd(json!({"command": "metrics"}))
            .types(&["reply", "joined", "message"])
            .features(&["handler:commands", "handler:streaming"]),
        Sc::new("handlers/connect-hook-admits", "With `hooks.connect`, an authenticated connection is accepted but not welcomed until the hook answers (frames before are UNAVAILABLE); the hook may replace the user, attach metadata (seen by later handlers) and run commands (a server-side join) after the welcome.")
            .cfg(app(json!({"hooks": {"connect": true}})))
            .open_q(1, "token=key_user")
            .send(1, json!({"type": "ping", "requestId": "early"}))
            .complete(1, handler(json!({
                "user": {"id": "u1", "role": "vip", "scopes": ["read"], "plan": "pro"},
                "meta": {"tier": 3},
                "commands": [{"command": "joinRoom", "room": "vip-lounge"}],
            })))
            .send(1, json!({"type": "ai:chat", "requestId": 1}))
            .complete(2, handler(json!({"reply": "hi vip"})))
            .errors(&["UNAVAILABLE"])
            .types(&["connected", "joined", "reply"])
            .features(&["hook:connect", "hook:connect-user", "hook:connect-meta"]),
        Sc::new("handlers/connect-hook-refuses", "A `connect` hook's error refuses the connection: an error frame with its code and message, then close 4403 (or the hook's own 4000–4999 `closeCode`); no welcome.")
            .cfg(app(json!({"hooks": {"connect": true}})))
            .open_q(1, "token=key_user")
            .open(2)
            .complete(1, handler(json!({"error": {"code": "FORBIDDEN", "message": "banned"}})))
            .complete(2, handler(json!({"error": {"code": "MAINTENANCE", "message": "back soon", "closeCode": 4503}})))
            .errors(&["FORBIDDEN"])
            .closes(&[4403, 4503])
            .features(&["hook:connect-refuse"]),
        Sc::new("handlers/connect-hook-fails", "A `connect` hook that fails or misses its deadline (`hooks.timeoutMs`) closes the connection with 1013 after an UNAVAILABLE error frame: the server fails closed. A connection never admitted gets no `disconnect` hook call.")
            // 1 s: live runs play this on real timers, and the failed answer must reach a
            // host before the other connection's deadline even when six hosts share a
            // loaded machine (100 ms was missed once in CI on live:deno).
            .cfg(app(json!({"hooks": {"connect": true, "disconnect": true, "timeoutMs": 1000}})))
            .open(1)
            .open(2)
            .complete(1, handler(json!({"failed": "ECONNREFUSED 10.1.2.3:8080"})))
            .close(1, Some(1013))
            .timeout_at(1000)
            .close(2, Some(1013))
            .errors(&["UNAVAILABLE"])
            .closes(&[1013])
            .features(&["hook:connect-timeout"]),
        Sc::new("handlers/disconnect-hook", "With `hooks.disconnect`, a welcomed connection that ends becomes a `hook` call (no connection) with its client context and the close code, and the reason when the server closed it; the answer's commands run (here: tell the room).")
            .cfg(app(json!({"hooks": {"disconnect": true}})))
            .open_q(1, "token=key_user")
            .open(2)
            .open(3)
            .send(3, json!({"type": "join", "room": "lobby"}))
            .close(1, Some(1000))
            .complete(1, handler(json!({"commands": [{"command": "sendToRoom", "room": "lobby", "message": {"type": "gone", "clientId": "c1"}}]})))
            .cmd(json!({"command": "disconnect", "clientId": "c2", "reason": "kicked"}))
            .close(2, Some(4001))
            .types(&["joined"])
            .closes(&[4001])
            .features(&["hook:disconnect"]),
        Sc::new("handlers/interceptor-cancels", "An interceptor sees a built-in message (here `publish`) before it runs; an `error` answer cancels it: the sender gets the error with its requestId and subscribers get nothing.")
            .cfg(app(json!({"interceptors": {"publish": true}})))
            .open(1)
            .open(2)
            .send(2, json!({"type": "subscribe", "channel": "news"}))
            .send(1, json!({"type": "publish", "channel": "news", "message": {"text": "spam"}, "requestId": "p1"}))
            .complete(1, handler(json!({"error": {"code": "FORBIDDEN", "message": "no spam"}})))
            .send(1, json!({"type": "publish", "channel": "news", "message": {"text": "ok"}, "requestId": "p2"}))
            .complete(2, handler(json!({})))
            .errors(&["FORBIDDEN"])
            .types(&["published", "message"])
            .features(&["intercept:cancel"]),
        Sc::new("handlers/interceptor-modifies", "An interceptor's `modified` message runs instead of the original (same type, same requestId): a `room:message` with its data rewritten, an `insert` with a field added; an invalid replacement is INTERNAL_ERROR.")
            .cfg(app(json!({"interceptors": {"room:message": true, "insert": "http://127.0.0.1:9/hooks/insert"}})))
            .auto_store()
            .open(1)
            .open(2)
            .send(1, json!({"type": "join", "room": "lobby"}))
            .send(2, json!({"type": "join", "room": "lobby"}))
            .send(1, json!({"type": "room:message", "room": "lobby", "data": {"text": "darn"}, "ack": true, "requestId": "m1"}))
            .complete(1, handler(json!({"modified": {"room": "lobby", "data": {"text": "d**n"}, "ack": true}})))
            .send(1, json!({"type": "insert", "resource": "messages", "data": {"id": "x1", "text": "hi"}, "requestId": "i1"}))
            .complete(2, handler(json!({"modified": {"resource": "messages", "data": {"id": "x1", "text": "hi", "moderated": true}}})))
            .send(1, json!({"type": "room:message", "room": "lobby", "data": 1, "requestId": "m2"}))
            .complete(4, handler(json!({"modified": {"data": 2}})))
            .errors(&["INTERNAL_ERROR"])
            .types(&["room:message", "sent", "inserted"])
            .features(&["intercept:modify"]),
        Sc::new("handlers/route-params", "A route `/ws/game/:sessionId` matches `/ws/game/42`: the parameters and the route reach handlers and guards (a message guard and a `rooms.join` guard comparing the room with the session); another path is 404.")
            .cfg(app(json!({
                "routes": [{"path": "/ws/game/:sessionId"}, {"path": "/ws/game/lobby"}],
                "messages": {"move": {"guard": "data.game == params.sessionId"}},
                "rooms": {"join": {"guard": "room == 'game:' + params.sessionId"}},
            })))
            .open_req(1, request(1, "/ws/game/42", "", &[]))
            .open_req(2, request(2, "/ws/game/lobby", "", &[]))
            .open_req(3, request(3, "/ws/game/42/extra", "", &[]))
            .send(1, json!({"type": "move", "data": {"game": "42", "to": "e4"}, "requestId": 1}))
            .complete(1, handler(json!({"reply": {"ok": true}})))
            .send(1, json!({"type": "move", "data": {"game": "7"}, "requestId": 2}))
            .send(1, json!({"type": "join", "room": "game:42", "requestId": 3}))
            .send(1, json!({"type": "join", "room": "game:7", "requestId": 4}))
            .send(2, json!({"type": "join", "room": "game:42", "requestId": 5}))
            .errors(&["FORBIDDEN"])
            .rejects(&["unknown_route"])
            .types(&["reply", "joined"])
            .features(&["route:params", "rooms:permissions"]),
        Sc::new("handlers/room-permissions", "`rooms.join` roles keep anonymous clients out (UNAUTHORIZED); `rooms.members` and `rooms.message` guards see the room and the user.")
            .cfg(app(json!({"rooms": {
                "join": {"roles": ["user", "admin"]},
                "members": {"guard": "user.role == 'admin'"},
                "message": {"guard": "!room.startsWith('announce') || user.role == 'admin'"},
            }})))
            .open(1)
            .open_q(2, "token=key_user")
            .open_q(3, "token=key_admin")
            .send(1, json!({"type": "join", "room": "lobby", "requestId": 1}))
            .send(2, json!({"type": "join", "room": "announce-1", "requestId": 2}))
            .send(3, json!({"type": "join", "room": "announce-1", "requestId": 3}))
            .send(2, json!({"type": "room:members", "room": "announce-1", "requestId": 4}))
            .send(3, json!({"type": "room:members", "room": "announce-1", "requestId": 5}))
            .send(2, json!({"type": "room:message", "room": "announce-1", "data": 1, "requestId": 6}))
            .send(3, json!({"type": "room:message", "room": "announce-1", "data": 2, "ack": true, "requestId": 7}))
            .errors(&["UNAUTHORIZED", "FORBIDDEN"])
            .types(&["joined", "room:joined", "room:members", "room:message", "sent"])
            .features(&["rooms:permissions"]),
    ]
}
