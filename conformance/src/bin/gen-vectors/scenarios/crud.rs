//! Resources over a memory store (`autoStore`): insert, get, list, update, delete,
//! validation, protected fields, resource roles.
//!
//! The demo vectors also run live, against whatever store the server has, so they use
//! record ids unique to the vector and never list.

use serde_json::{json, Value};

use crate::dsl::{std_with, Sc};

fn msg(id: &str) -> Value {
    json!({"id": id, "content": "hello", "author": "ann", "channel": "general"})
}

fn schema_config() -> Value {
    std_with(json!({"resources": {"posts": {"schema": {
        "type": "object",
        "properties": {
            "title": {"type": "string", "maxLength": 10},
            "views": {"type": "integer", "minimum": 0},
            "meta": {"type": "object", "properties": {"n": {"type": "number"}}}
        },
        "required": ["title"]
    }}}}))
}

/// The scenarios of this area.
pub fn scenarios() -> Vec<Sc> {
    vec![
        Sc::new("crud/insert-generated-id", "An insert without `id` gets a 20-character id from the seed and server-set createdAt/updatedAt (client-supplied ones are discarded); the storage call and the answer show the record.")
            .auto_store()
            .open(1)
            .send(1, json!({"type": "insert", "resource": "messages", "data": {"content": "hi", "createdAt": "forged", "updatedAt": "forged"}, "requestId": 6}))
            .at(5)
            .send(1, json!({"type": "insert", "resource": "messages", "data": {"content": "again"}, "requestId": 7}))
            .types(&["inserted"])
            .features(&["hostcall:store"]),
        Sc::new("crud/insert-explicit-id", "An insert with an explicit id stores `id`, the client's fields in order, then createdAt and updatedAt; a subscriber gets the insert event after the writer's answer.")
            .demo()
            .auto_store()
            .open(1)
            .open(2)
            .send(2, json!({"type": "subscribe", "resource": "messages", "filter": {"id": "crud-insert-1"}}))
            .send(1, json!({"type": "insert", "resource": "messages", "data": {"content": "hello", "id": "crud-insert-1", "author": "ann"}, "requestId": 1}))
            .types(&["inserted", "event"])
            .features(&["hostcall:store"]),
        Sc::new("crud/insert-duplicate-id", "Inserting an id that exists is VALIDATION_ERROR, without storage details.")
            .demo()
            .auto_store()
            .open(1)
            .send(1, json!({"type": "insert", "resource": "messages", "data": msg("crud-dup-1"), "requestId": 1}))
            .send(1, json!({"type": "insert", "resource": "messages", "data": msg("crud-dup-1"), "requestId": 2}))
            .errors(&["VALIDATION_ERROR"])
            .types(&["inserted"]),
        Sc::new("crud/get", "`get` answers `data` with the record; a missing record is NOT_FOUND naming id and resource; an empty id is INVALID_MESSAGE.")
            .demo()
            .auto_store()
            .open(1)
            .send(1, json!({"type": "insert", "resource": "messages", "data": msg("crud-get-1")}))
            .send(1, json!({"type": "get", "resource": "messages", "id": "crud-get-1", "requestId": 4}))
            .send(1, json!({"type": "get", "resource": "messages", "id": "crud-get-missing", "requestId": 5}))
            .send(1, json!({"type": "get", "resource": "messages", "id": "", "requestId": 6}))
            .errors(&["NOT_FOUND", "INVALID_MESSAGE"])
            .types(&["data"]),
        Sc::new("crud/update", "`update` merges top-level fields, keeps createdAt, sets updatedAt, and subscribers see `$before`/`$after`; a matching `data.id` is ignored.")
            .demo()
            .auto_store()
            .open(1)
            .open(2)
            .send(2, json!({"type": "subscribe", "resource": "messages", "filter": {"id": "crud-update-1"}, "events": ["update"]}))
            .send(1, json!({"type": "insert", "resource": "messages", "data": msg("crud-update-1")}))
            .send(1, json!({"type": "update", "resource": "messages", "id": "crud-update-1", "data": {"id": "crud-update-1", "content": "edited", "createdAt": "forged", "likes": 1}, "requestId": 7}))
            .types(&["updated", "event"]),
        Sc::new("crud/update-errors", "Update of a missing record is NOT_FOUND; a different `data.id` is VALIDATION_ERROR; an empty id is INVALID_MESSAGE.")
            .demo()
            .auto_store()
            .open(1)
            .send(1, json!({"type": "insert", "resource": "messages", "data": msg("crud-upd-err-1")}))
            .send(1, json!({"type": "update", "resource": "messages", "id": "crud-upd-missing", "data": {"content": "x"}, "requestId": 1}))
            .send(1, json!({"type": "update", "resource": "messages", "id": "crud-upd-err-1", "data": {"id": "other"}, "requestId": 2}))
            .send(1, json!({"type": "update", "resource": "messages", "id": "", "data": {}, "requestId": 3}))
            .errors(&["NOT_FOUND", "VALIDATION_ERROR", "INVALID_MESSAGE"]),
        Sc::new("crud/delete", "`delete` answers `deleted` with the id and subscribers get the delete event; deleting again is NOT_FOUND; an empty id is INVALID_MESSAGE.")
            .demo()
            .auto_store()
            .open(1)
            .open(2)
            .send(2, json!({"type": "subscribe", "resource": "messages", "filter": {"id": "crud-delete-1"}, "events": ["delete"]}))
            .send(1, json!({"type": "insert", "resource": "messages", "data": msg("crud-delete-1")}))
            .send(1, json!({"type": "delete", "resource": "messages", "id": "crud-delete-1", "requestId": 8}))
            .send(1, json!({"type": "delete", "resource": "messages", "id": "crud-delete-1", "requestId": 9}))
            .send(1, json!({"type": "delete", "resource": "messages", "id": "", "requestId": 10}))
            .errors(&["NOT_FOUND", "INVALID_MESSAGE"])
            .types(&["deleted", "event"]),
        Sc::new("crud/writer-gets-own-event", "A writer subscribed to the resource gets its answer first, then its own event.")
            .demo()
            .auto_store()
            .open(1)
            .send(1, json!({"type": "subscribe", "resource": "messages", "filter": {"id": "crud-own-1"}}))
            .send(1, json!({"type": "insert", "resource": "messages", "data": msg("crud-own-1"), "requestId": 1}))
            .types(&["inserted", "event"]),
        Sc::new("crud/list-pagination", "`list` pages in id order with an opaque cursor that advances and ends with `cursor: null`; the page size is clamped to maxListLimit.")
            .cfg(std_with(json!({"resources": {"messages": {"maxListLimit": 2}}})))
            .store("messages", (0..5).map(|i| json!({"id": format!("m{i}"), "n": i})).collect())
            .open(1)
            .send(1, json!({"type": "list", "resource": "messages", "limit": 50, "requestId": 1}))
            .send(1, json!({"type": "list", "resource": "messages", "cursor": "bTE", "requestId": 2}))
            .send(1, json!({"type": "list", "resource": "messages", "cursor": "bTM", "requestId": 3}))
            .types(&["data"])
            .limits(&["resources.maxListLimit"])
            .features(&["pagination:cursor"]),
        Sc::new("crud/list-errors", "`limit: 0` and a cursor storage does not recognise are INVALID_MESSAGE; an empty resource lists `[]` with `cursor: null`.")
            .store("messages", vec![json!({"id": "m1"})])
            .open(1)
            .send(1, json!({"type": "list", "resource": "messages", "limit": 0, "requestId": 1}))
            .send(1, json!({"type": "list", "resource": "messages", "cursor": "@@bad", "requestId": 2}))
            .send(1, json!({"type": "list", "resource": "notifications", "requestId": 3}))
            .errors(&["INVALID_MESSAGE"])
            .types(&["data"])
            .features(&["pagination:cursor"]),
        Sc::new("crud/unknown-resource", "All five CRUD messages on a resource that is not configured get RESOURCE_NOT_FOUND (no storage call).")
            .demo()
            .auto_store()
            .open(1)
            .send(1, json!({"type": "get", "resource": "internal", "id": "x", "requestId": 1}))
            .send(1, json!({"type": "list", "resource": "internal", "requestId": 2}))
            .send(1, json!({"type": "insert", "resource": "internal", "data": {}, "requestId": 3}))
            .send(1, json!({"type": "update", "resource": "internal", "id": "x", "data": {}, "requestId": 4}))
            .send(1, json!({"type": "delete", "resource": "internal", "id": "x", "requestId": 5}))
            .errors(&["RESOURCE_NOT_FOUND"]),
        Sc::new("crud/resource-roles-anonymous", "In the demo, anonymous clients get UNAUTHORIZED for every CRUD message on the role-restricted `users` resource.")
            .demo()
            .auto_store()
            .open(1)
            .send(1, json!({"type": "get", "resource": "users", "id": "u1", "requestId": 1}))
            .send(1, json!({"type": "list", "resource": "users", "requestId": 2}))
            .send(1, json!({"type": "insert", "resource": "users", "data": {"name": "x"}, "requestId": 3}))
            .send(1, json!({"type": "update", "resource": "users", "id": "u1", "data": {}, "requestId": 4}))
            .send(1, json!({"type": "delete", "resource": "users", "id": "u1", "requestId": 5}))
            .errors(&["UNAUTHORIZED"])
            .features(&["auth:resource-roles"]),
        Sc::new("crud/resource-roles-forbidden", "A role not listed in the resource's `auth` gets FORBIDDEN for CRUD; a listed role goes through.")
            .cfg(std_with(json!({"resources": {"users": {"auth": ["admin"]}}})))
            .auto_store()
            .open_q(1, "token=key_user")
            .open_q(2, "token=key_admin")
            .send(1, json!({"type": "insert", "resource": "users", "data": {"id": "x"}, "requestId": 1}))
            .send(1, json!({"type": "get", "resource": "users", "id": "x", "requestId": 2}))
            .send(2, json!({"type": "insert", "resource": "users", "data": {"id": "x"}, "requestId": 3}))
            .errors(&["FORBIDDEN"])
            .types(&["inserted"])
            .features(&["auth:resource-roles"]),
        Sc::new("crud/protected-fields", "In the demo, `users.password` is stored but never sent: not in `inserted`, `data`, `updated`, nor in events and their `$before`/`$after`.")
            .demo()
            .auto_store()
            .open_q(1, "token=key_admin")
            .open_q(2, "token=key_admin")
            .send(2, json!({"type": "subscribe", "resource": "users", "filter": {"id": "crud-prot-1"}}))
            .send(1, json!({"type": "insert", "resource": "users", "data": {"id": "crud-prot-1", "name": "Pat", "role": "user", "password": "s3cret"}, "requestId": 1}))
            .send(1, json!({"type": "get", "resource": "users", "id": "crud-prot-1", "requestId": 2}))
            .send(1, json!({"type": "update", "resource": "users", "id": "crud-prot-1", "data": {"password": "n3w", "name": "Pat B"}, "requestId": 3}))
            .send(1, json!({"type": "delete", "resource": "users", "id": "crud-prot-1", "requestId": 4}))
            .types(&["inserted", "data", "updated", "deleted", "event"])
            .features(&["protected-fields"]),
        Sc::new("crud/protected-nested-paths", "Protected dotted paths are removed inside nested objects and every element of arrays, in answers and list pages.")
            .cfg(std_with(json!({"resources": {"accounts": {"protected": ["secret", "profile.ssn", "cards.number"]}}})))
            .store("accounts", vec![json!({"id": "a1", "secret": "x", "profile": {"ssn": "1", "name": "A"}, "cards": [{"number": "4111", "last4": "1111"}, {"number": "5500", "last4": "0004"}]})])
            .open(1)
            .send(1, json!({"type": "get", "resource": "accounts", "id": "a1", "requestId": 1}))
            .send(1, json!({"type": "list", "resource": "accounts", "requestId": 2}))
            .types(&["data"])
            .features(&["protected-fields"]),
        Sc::new("crud/schema-validation", "With a JSON Schema, insert data is validated (errors name each field path); updates are checked without `required`.")
            .cfg(schema_config())
            .auto_store()
            .open(1)
            .send(1, json!({"type": "insert", "resource": "posts", "data": {"title": "ok", "views": -1, "meta": {"n": "x"}}, "requestId": 1}))
            .send(1, json!({"type": "insert", "resource": "posts", "data": {"id": "p1", "title": "Hello"}, "requestId": 2}))
            .send(1, json!({"type": "update", "resource": "posts", "id": "p1", "data": {"views": 3}, "requestId": 3}))
            .send(1, json!({"type": "update", "resource": "posts", "id": "p1", "data": {"title": "far too long a title"}, "requestId": 4}))
            .errors(&["VALIDATION_ERROR"])
            .types(&["inserted", "updated"])
            .features(&["validation:schema"]),
        Sc::new("crud/schema-required-path", "A missing required property is reported with the property's own path (`title: \"title\" is a required property`), as PROTOCOL.md §13.3 and the engine's validation docs say.")
            .cfg(schema_config())
            .auto_store()
            .open(1)
            .send(1, json!({"type": "insert", "resource": "posts", "data": {"views": 1}, "requestId": 1}))
            .errors(&["VALIDATION_ERROR"])
            .features(&["validation:schema"]),
        Sc::new("crud/demo-messages-schema", "In the demo, `messages` is checked by its JSON Schema: an insert without `content` is VALIDATION_ERROR naming the field, as are an empty `content` and a non-string `author`; a valid message is stored, and an update without `content` is fine (updates skip `required`) but an empty one is not.")
            .demo()
            .auto_store()
            .open(1)
            .send(1, json!({"type": "insert", "resource": "messages", "data": {"id": "crud-demo-schema-1", "author": "ann", "channel": "general"}, "requestId": 1}))
            .send(1, json!({"type": "insert", "resource": "messages", "data": {"id": "crud-demo-schema-1", "content": ""}, "requestId": 2}))
            .send(1, json!({"type": "insert", "resource": "messages", "data": {"id": "crud-demo-schema-1", "content": "hi", "author": 7}, "requestId": 3}))
            .send(1, json!({"type": "insert", "resource": "messages", "data": {"id": "crud-demo-schema-1", "content": "hi", "author": "ann", "channel": "general"}, "requestId": 4}))
            .send(1, json!({"type": "update", "resource": "messages", "id": "crud-demo-schema-1", "data": {"channel": "random"}, "requestId": 5}))
            .send(1, json!({"type": "update", "resource": "messages", "id": "crud-demo-schema-1", "data": {"content": ""}, "requestId": 6}))
            .errors(&["VALIDATION_ERROR"])
            .types(&["inserted", "updated"])
            .features(&["validation:schema"]),
        Sc::new("crud/schema-many-errors", "A validation message lists at most five problems, then `(and N more)`.")
            .cfg(std_with(json!({"resources": {"wide": {"schema": {
                "type": "object",
                "properties": {"a": {"type": "string"}, "b": {"type": "string"}, "c": {"type": "string"}, "d": {"type": "string"}, "e": {"type": "string"}, "f": {"type": "string"}, "g": {"type": "string"}}
            }}}})))
            .auto_store()
            .open(1)
            .send(1, json!({"type": "insert", "resource": "wide", "data": {"a": 1, "b": 2, "c": 3, "d": 4, "e": 5, "f": 6, "g": 7}, "requestId": 1}))
            .errors(&["VALIDATION_ERROR"])
            .features(&["validation:schema"]),
    ]
}
