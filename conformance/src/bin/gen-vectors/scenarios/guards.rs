//! Row-level guards: CEL guards per action, forced filters, the `read` guard, failing
//! closed, and host guards answered through host calls.

use serde_json::{json, Value};

use crate::dsl::Sc;

fn guard_config() -> Value {
    json!({
        "heartbeatInterval": 0,
        "auth": {"apiKeys": {
            "key_admin": {"id": "admin1", "role": "admin", "tenantId": "t1"},
            "key_u1": {"id": "u1", "role": "user", "tenantId": "t1"},
            "key_u2": {"id": "u2", "role": "user", "tenantId": "t2"}
        }},
        "resources": {
            "users": {
                "protected": ["password"],
                "guards": {
                    "list": "user != null && user.role == 'admin' ? true : {'id': user.id}",
                    "get": "user != null && (user.role == 'admin' || id == user.id)",
                    "update": "user != null && (user.role == 'admin' || id == user.id)",
                    "create": "user != null && user.role == 'admin'",
                    "delete": "user != null && user.role == 'admin'",
                    "subscribe": "user != null && user.role == 'admin' ? true : {'id': user.id}"
                }
            },
            "documents": {
                "guards": {
                    "create": "{'tenantId': user.tenantId}",
                    "update": "record.tenantId == user.tenantId",
                    "delete": "record.tenantId == user.tenantId && user.role == 'admin'",
                    "read": "user != null && record.tenantId == user.tenantId"
                }
            },
            "drafts": {"guards": {"read": "record.published == true"}},
            "notes": {"guards": {"get": "user.role == 'admin'", "list": "'yes'"}},
            "tasks": {"hostGuards": ["subscribe", "create", "get"]}
        }
    })
}

fn users() -> Vec<Value> {
    vec![
        json!({"id": "admin1", "name": "Ada", "password": "p0"}),
        json!({"id": "u1", "name": "Uma", "password": "p1"}),
        json!({"id": "u2", "name": "Ugo", "password": "p2"}),
    ]
}

fn documents() -> Vec<Value> {
    vec![
        json!({"id": "d1", "tenantId": "t1", "title": "t1 plan"}),
        json!({"id": "d2", "tenantId": "t2", "title": "t2 plan"}),
        json!({"id": "d3", "tenantId": "t1", "title": "t1 notes"}),
    ]
}

fn base(name: &str, desc: &str) -> Sc {
    Sc::new(name, desc)
        .cfg(guard_config())
        .store("users", users())
        .store("documents", documents())
        .open_q(1, "token=key_admin")
        .open_q(2, "token=key_u1")
        .open_q(3, "token=key_u2")
}

fn guard(decision: Value) -> Value {
    let mut v = json!({"kind": "guard"});
    if let (Some(m), Some(d)) = (v.as_object_mut(), decision.as_object()) {
        m.extend(d.clone());
    }
    v
}

/// The scenarios of this area.
pub fn scenarios() -> Vec<Sc> {
    vec![
        base("guards/get-allow-deny", "A `get` guard allows admins and the user themself and denies others with FORBIDDEN (before any storage call); protected fields are stripped.")
            .send(2, json!({"type": "get", "resource": "users", "id": "u1", "requestId": 1}))
            .send(2, json!({"type": "get", "resource": "users", "id": "u2", "requestId": 2}))
            .send(1, json!({"type": "get", "resource": "users", "id": "u2", "requestId": 3}))
            .errors(&["FORBIDDEN"])
            .types(&["data"])
            .features(&["guard:cel", "protected-fields"]),
        base("guards/list-forced-filter", "A `list` guard's forced filter is always ANDed with the client's filter, also when the client sends none (s3db.js bug B4); admins see every row.")
            .send(2, json!({"type": "list", "resource": "users", "requestId": 1}))
            .send(2, json!({"type": "list", "resource": "users", "filter": {"name": {"$exists": true}}, "requestId": 2}))
            .send(1, json!({"type": "list", "resource": "users", "requestId": 3}))
            .types(&["data"])
            .features(&["guard:cel", "guard:forced-filter"]),
        base("guards/create-guard", "A `create` guard denying non-admins answers FORBIDDEN \"Access denied\"; an admin's insert goes through.")
            .send(2, json!({"type": "insert", "resource": "users", "data": {"name": "x"}, "requestId": 1}))
            .send(1, json!({"type": "insert", "resource": "users", "data": {"id": "u9", "name": "Nia", "password": "p9"}, "requestId": 2}))
            .errors(&["FORBIDDEN"])
            .types(&["inserted"])
            .features(&["guard:cel"]),
        base("guards/create-forced-filter", "A `create` guard returning a map forces a filter the new record must match: another tenant's record is FORBIDDEN.")
            .send(2, json!({"type": "insert", "resource": "documents", "data": {"id": "d7", "tenantId": "t1"}, "requestId": 1}))
            .send(2, json!({"type": "insert", "resource": "documents", "data": {"id": "d8", "tenantId": "t2"}, "requestId": 2}))
            .send(2, json!({"type": "insert", "resource": "documents", "data": {"id": "d9"}, "requestId": 3}))
            .errors(&["FORBIDDEN"])
            .types(&["inserted"])
            .features(&["guard:forced-filter"]),
        base("guards/update-reads-stored-record", "An `update` guard that reads `record` makes the engine fetch the stored record first: another tenant is FORBIDDEN, the owner's update goes through, a missing record is NOT_FOUND.")
            .send(3, json!({"type": "update", "resource": "documents", "id": "d1", "data": {"title": "x"}, "requestId": 1}))
            .send(2, json!({"type": "update", "resource": "documents", "id": "d1", "data": {"title": "new"}, "requestId": 2}))
            .send(2, json!({"type": "update", "resource": "documents", "id": "nope", "data": {"title": "x"}, "requestId": 3}))
            .errors(&["FORBIDDEN", "NOT_FOUND"])
            .types(&["updated"])
            .features(&["guard:cel"]),
        base("guards/delete-guard", "A `delete` guard over the stored record: a same-tenant user is refused, the tenant's admin may delete, another tenant's record is refused.")
            .send(2, json!({"type": "delete", "resource": "documents", "id": "d1", "requestId": 1}))
            .send(1, json!({"type": "delete", "resource": "documents", "id": "d1", "requestId": 2}))
            .send(1, json!({"type": "delete", "resource": "documents", "id": "d2", "requestId": 3}))
            .errors(&["FORBIDDEN"])
            .types(&["deleted"])
            .features(&["guard:cel"]),
        base("guards/read-guard-get", "A record the `read` guard refuses is answered NOT_FOUND, exactly like a missing one.")
            .send(3, json!({"type": "get", "resource": "documents", "id": "d1", "requestId": 1}))
            .send(2, json!({"type": "get", "resource": "documents", "id": "d1", "requestId": 2}))
            .errors(&["NOT_FOUND"])
            .types(&["data"])
            .features(&["guard:read"]),
        base("guards/read-guard-list", "Records the `read` guard refuses are left out of list pages.")
            .send(2, json!({"type": "list", "resource": "documents", "requestId": 1}))
            .send(3, json!({"type": "list", "resource": "documents", "requestId": 2}))
            .types(&["data"])
            .features(&["guard:read"]),
        base("guards/read-guard-reduces-answers", "When the `read` guard refuses the stored record, `inserted` and `updated` carry only `{id}`.")
            .send(2, json!({"type": "insert", "resource": "drafts", "data": {"id": "r1", "published": false, "body": "secret"}, "requestId": 1}))
            .send(2, json!({"type": "update", "resource": "drafts", "id": "r1", "data": {"body": "still secret"}, "requestId": 2}))
            .send(2, json!({"type": "update", "resource": "drafts", "id": "r1", "data": {"published": true}, "requestId": 3}))
            .types(&["inserted", "updated"])
            .features(&["guard:read"]),
        base("guards/read-guard-events", "Events are pushed only to subscribers the `read` guard lets read the record: the new record for inserts and updates, the removed one for deletes.")
            .send(2, json!({"type": "subscribe", "resource": "documents"}))
            .send(3, json!({"type": "subscribe", "resource": "documents"}))
            .send(1, json!({"type": "insert", "resource": "documents", "data": {"id": "d9", "tenantId": "t1"}}))
            .send(1, json!({"type": "update", "resource": "documents", "id": "d9", "data": {"title": "t"}}))
            .send(1, json!({"type": "delete", "resource": "documents", "id": "d9"}))
            .types(&["event"])
            .features(&["guard:read"]),
        base("guards/subscribe-forced-filter", "A `subscribe` guard's forced filter narrows events (not shown in `subscribed.filter`): a user sees only their own row, an admin sees all.")
            .send(2, json!({"type": "subscribe", "resource": "users", "requestId": 1}))
            .send(1, json!({"type": "subscribe", "resource": "users", "requestId": 2}))
            .send(1, json!({"type": "update", "resource": "users", "id": "u2", "data": {"name": "Ugo B", "password": "np"}}))
            .send(1, json!({"type": "update", "resource": "users", "id": "u1", "data": {"name": "Uma B"}}))
            .types(&["subscribed", "event"])
            .features(&["guard:forced-filter"]),
        base("guards/row-moving-into-filter", "When a row moves into a subscriber's forced filter, the update event does not reveal its old state (`$before: null`); the subscriber that may not see the new state gets nothing.")
            .cfg(json!({
                "heartbeatInterval": 0,
                "auth": {"apiKeys": {
                    "key_admin": {"id": "admin1", "role": "admin", "tenantId": "t1"},
                    "key_u1": {"id": "u1", "role": "user", "tenantId": "t1"},
                    "key_u2": {"id": "u2", "role": "user", "tenantId": "t2"}
                }},
                "resources": {"documents": {"guards": {"subscribe": "{'tenantId': user.tenantId}"}}}
            }))
            .send(2, json!({"type": "subscribe", "resource": "documents"}))
            .send(3, json!({"type": "subscribe", "resource": "documents"}))
            .send(1, json!({"type": "update", "resource": "documents", "id": "d2", "data": {"tenantId": "t1", "title": "moved"}}))
            .types(&["event", "updated"])
            .features(&["guard:forced-filter"]),
        Sc::new("guards/fail-closed", "A guard that errors (anonymous `user.role`) or returns something other than true/false/null/map denies with FORBIDDEN; the metrics count guard errors.")
            .cfg(guard_config())
            .auto_store()
            .open(1)
            .open_q(2, "token=key_admin")
            .send(1, json!({"type": "get", "resource": "notes", "id": "x", "requestId": 1}))
            .send(2, json!({"type": "list", "resource": "notes", "requestId": 2}))
            .cmd(json!({"command": "metrics"}))
            .errors(&["FORBIDDEN"])
            .features(&["guard:fail-closed"]),
        Sc::new("guards/host-guard-decisions", "A host guard is a host call with the guard context; `allow` proceeds, `deny` answers FORBIDDEN with the host's message (or \"Access denied\"), `filter` forces a filter.")
            .cfg(guard_config())
            .open_q(1, "token=key_admin")
            .open_q(2, "token=key_u1")
            .open(3)
            .send(1, json!({"type": "subscribe", "resource": "tasks", "requestId": 1}))
            .complete(1, guard(json!({"decision": "allow"})))
            .send(2, json!({"type": "subscribe", "resource": "tasks", "filter": {"done": false}, "requestId": 2}))
            .complete(2, guard(json!({"decision": "filter", "filter": {"owner": "u1"}})))
            .send(3, json!({"type": "subscribe", "resource": "tasks", "requestId": 3}))
            .complete(3, guard(json!({"decision": "deny", "message": "members only"})))
            .send(3, json!({"type": "subscribe", "resource": "tasks", "requestId": 4}))
            .complete(4, guard(json!({"decision": "deny"})))
            .cmd(json!({"command": "resourceChanged", "resource": "tasks", "event": "insert", "record": {"id": "t1", "owner": "u9", "done": false}}))
            .cmd(json!({"command": "resourceChanged", "resource": "tasks", "event": "insert", "record": {"id": "t2", "owner": "u1", "done": false}}))
            .errors(&["FORBIDDEN"])
            .types(&["subscribed", "event"])
            .features(&["guard:host", "guard:forced-filter"]),
        Sc::new("guards/host-guard-create", "A `create` host guard sees the full record in its context; after `allow` the storage call follows.")
            .cfg(guard_config())
            .auto_store()
            .open_q(1, "token=key_u1")
            .send(1, json!({"type": "insert", "resource": "tasks", "data": {"id": "t1", "owner": "u1"}, "requestId": 1}))
            .complete(1, guard(json!({"decision": "allow"})))
            .types(&["inserted"])
            .features(&["guard:host"]),
        Sc::new("guards/host-guard-timeout", "A host guard call that misses its deadline is answered TIMEOUT; a later decision is dropped.")
            .cfg(guard_config())
            .open_q(1, "token=key_u1")
            .send(1, json!({"type": "get", "resource": "tasks", "id": "t1", "requestId": "g"}))
            .timeout_at(5000)
            .complete(1, guard(json!({"decision": "allow"})))
            .errors(&["TIMEOUT"])
            .features(&["guard:host", "hostcall:timeout"]),
    ]
}
