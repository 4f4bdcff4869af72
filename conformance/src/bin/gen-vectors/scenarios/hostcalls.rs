//! Host calls answered explicitly: outcome mapping, deadlines, late and unknown
//! completions, pending-call limits.

use serde_json::{json, Value};

use crate::dsl::{std_with, Sc};

/// A `HostResult::Store` as JSON: `{"kind":"store", <outcome>}`.
pub fn store(outcome: Value) -> Value {
    let mut v = json!({"kind": "store"});
    if let (Some(m), Some(o)) = (v.as_object_mut(), outcome.as_object()) {
        m.extend(o.clone());
    }
    v
}

fn failed(kind: &str, message: &str) -> Value {
    store(json!({"failed": {"kind": kind, "message": message}}))
}

fn quiet() -> Value {
    std_with(json!({"heartbeatInterval": 0}))
}

/// The scenarios of this area.
pub fn scenarios() -> Vec<Sc> {
    vec![
        Sc::new("hostcalls/insert-call-and-completion", "An insert becomes a storage call (op, conn, deadline = now + hostCallTimeoutMs); the completion answers `inserted` and fans the event out.")
            .cfg(quiet())
            .open(1)
            .open(2)
            .send(2, json!({"type": "subscribe", "resource": "messages"}))
            .send(1, json!({"type": "insert", "resource": "messages", "data": {"id": "m1", "text": "hi"}, "requestId": "i"}))
            .at(40)
            .complete(1, store(json!({"inserted": {"id": "m1", "text": "hi", "createdAt": "2023-11-14T22:13:20.000Z", "updatedAt": "2023-11-14T22:13:20.000Z"}})))
            .types(&["inserted", "event"])
            .features(&["hostcall:store"]),
        Sc::new("hostcalls/store-unavailable", "A storage `unavailable` failure is answered with UNAVAILABLE; the storage message is never shown.")
            .cfg(quiet())
            .open(1)
            .send(1, json!({"type": "get", "resource": "messages", "id": "m1", "requestId": 1}))
            .complete(1, failed("unavailable", "connection refused to db.internal:5432"))
            .errors(&["UNAVAILABLE"])
            .features(&["hostcall:store-unavailable"]),
        Sc::new("hostcalls/store-internal", "Any other storage failure is INTERNAL_ERROR \"the storage operation failed\", without internals.")
            .cfg(quiet())
            .open(1)
            .send(1, json!({"type": "update", "resource": "messages", "id": "m1", "data": {"x": 1}, "requestId": 1}))
            .complete(1, failed("internal", "disk I/O error at /var/lib/switchboard/db"))
            .errors(&["INTERNAL_ERROR"])
            .features(&["hostcall:store-internal"]),
        Sc::new("hostcalls/store-outcome-mapping", "Storage outcomes map to answers: `get` of nothing → NOT_FOUND, update/delete not found → NOT_FOUND, insert conflict → VALIDATION_ERROR, a list cursor not found → INVALID_MESSAGE.")
            .cfg(quiet())
            .open(1)
            .send(1, json!({"type": "get", "resource": "messages", "id": "m1", "requestId": 1}))
            .complete(1, store(json!({"record": null})))
            .send(1, json!({"type": "delete", "resource": "messages", "id": "m1", "requestId": 2}))
            .complete(2, failed("notFound", "no record `m1`"))
            .send(1, json!({"type": "insert", "resource": "messages", "data": {"id": "m1"}, "requestId": 3}))
            .complete(3, failed("conflict", "id `m1` exists"))
            .send(1, json!({"type": "list", "resource": "messages", "cursor": "zz", "requestId": 4}))
            .complete(4, failed("notFound", "the cursor is not valid"))
            .errors(&["NOT_FOUND", "VALIDATION_ERROR", "INVALID_MESSAGE"])
            .features(&["hostcall:store"]),
        Sc::new("hostcalls/wrong-kind-completion", "A completion of the wrong kind (an `inserted` outcome for a get, a guard decision for a storage call) is INTERNAL_ERROR.")
            .cfg(quiet())
            .open(1)
            .send(1, json!({"type": "get", "resource": "messages", "id": "m1", "requestId": 1}))
            .complete(1, store(json!({"inserted": {"id": "m1"}})))
            .send(1, json!({"type": "get", "resource": "messages", "id": "m1", "requestId": 2}))
            .complete(2, json!({"kind": "guard", "decision": "allow"}))
            .errors(&["INTERNAL_ERROR"])
            .features(&["hostcall:wrong-kind"]),
        Sc::new("hostcalls/out-of-order-completions", "Calls in flight complete in any order; each answer carries its own requestId.")
            .cfg(quiet())
            .open(1)
            .send(1, json!({"type": "get", "resource": "messages", "id": "a", "requestId": "first"}))
            .send(1, json!({"type": "get", "resource": "messages", "id": "b", "requestId": "second"}))
            .complete(2, store(json!({"record": {"id": "b"}})))
            .complete(1, store(json!({"record": {"id": "a"}})))
            .types(&["data"])
            .features(&["hostcall:store"]),
        Sc::new("hostcalls/timeout", "A call not answered within `hostCallTimeoutMs` is answered TIMEOUT (with requestId) at its deadline; the late completion is dropped.")
            .cfg(std_with(json!({"heartbeatInterval": 0, "limits": {"hostCallTimeoutMs": 100}})))
            .open(1)
            .send(1, json!({"type": "get", "resource": "messages", "id": "m1", "requestId": "g1"}))
            .timeout_at(99)
            .timeout_at(100)
            .at(150)
            .complete(1, store(json!({"record": {"id": "m1"}})))
            .errors(&["TIMEOUT"])
            .limits(&["limits.hostCallTimeoutMs"])
            .features(&["hostcall:timeout", "hostcall:late-completion"]),
        Sc::new("hostcalls/late-write-still-fans-out", "A write whose call timed out is answered TIMEOUT (its outcome is unknown); when storage later reports success, the change still happened, so subscribers get the event (the writer gets no answer).")
            .cfg(std_with(json!({"heartbeatInterval": 0, "limits": {"hostCallTimeoutMs": 100}})))
            .open(1)
            .open(2)
            .send(2, json!({"type": "subscribe", "resource": "messages"}))
            .send(1, json!({"type": "insert", "resource": "messages", "data": {"id": "m1"}, "requestId": 1}))
            .timeout_at(100)
            .at(200)
            .complete(1, store(json!({"inserted": {"id": "m1"}})))
            .errors(&["TIMEOUT"])
            .limits(&["limits.hostCallTimeoutMs"])
            .features(&["hostcall:timeout", "hostcall:late-completion"]),
        Sc::new("hostcalls/unknown-op", "A completion for an op the engine never issued is ignored.")
            .cfg(quiet())
            .open(1)
            .complete(77, store(json!({"record": null})))
            .send(1, json!({"type": "ping", "requestId": 1}))
            .types(&["pong"])
            .features(&["hostcall:late-completion"]),
        Sc::new("hostcalls/pending-per-connection", "With `maxPendingCallsPerConnection` calls in flight, further resource requests get LIMIT_EXCEEDED until one completes; other connections are unaffected.")
            .cfg(std_with(json!({"heartbeatInterval": 0, "limits": {"maxPendingCallsPerConnection": 1}})))
            .open(1)
            .open(2)
            .send(1, json!({"type": "get", "resource": "messages", "id": "a", "requestId": 1}))
            .send(1, json!({"type": "get", "resource": "messages", "id": "b", "requestId": 2}))
            .send(2, json!({"type": "get", "resource": "messages", "id": "c", "requestId": 3}))
            .complete(1, store(json!({"record": {"id": "a"}})))
            .send(1, json!({"type": "get", "resource": "messages", "id": "b", "requestId": 4}))
            .errors(&["LIMIT_EXCEEDED"])
            .types(&["data"])
            .limits(&["limits.maxPendingCallsPerConnection"]),
        Sc::new("hostcalls/pending-total", "With `maxPendingCalls` calls in flight server-wide, new resource requests get UNAVAILABLE.")
            .cfg(std_with(json!({"heartbeatInterval": 0, "limits": {"maxPendingCalls": 1}})))
            .open(1)
            .open(2)
            .send(1, json!({"type": "get", "resource": "messages", "id": "a", "requestId": 1}))
            .send(2, json!({"type": "get", "resource": "messages", "id": "b", "requestId": 2}))
            .complete(1, store(json!({"record": null})))
            .send(2, json!({"type": "get", "resource": "messages", "id": "b", "requestId": 3}))
            .errors(&["UNAVAILABLE", "NOT_FOUND"])
            .limits(&["limits.maxPendingCalls"]),
        Sc::new("hostcalls/writer-gone", "A write completing after its writer disconnected is not answered, but the change is still fanned out.")
            .cfg(quiet())
            .open(1)
            .open(2)
            .send(2, json!({"type": "subscribe", "resource": "messages"}))
            .send(1, json!({"type": "insert", "resource": "messages", "data": {"id": "m1", "a": 1}}))
            .close(1, Some(1001))
            .complete(1, store(json!({"inserted": {"id": "m1", "a": 1, "createdAt": "2023-11-14T22:13:20.000Z", "updatedAt": "2023-11-14T22:13:20.000Z"}})))
            .types(&["event"])
            .features(&["hostcall:writer-gone"]),
    ]
}
