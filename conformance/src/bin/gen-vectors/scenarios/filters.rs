//! Filters: every operator, literals, paths, kinds, `$and`, and invalid filters.
//! Each vector subscribes with a filter and reports records through `resourceChanged`;
//! the events (and `delivered` counts) show which records matched.

use serde_json::{json, Value};

use crate::dsl::{std_with, Sc};
use crate::scenarios::subscribe::changed;

fn filter_case(name: &str, desc: &str, filter: Value, records: &[Value], feature: &[&str]) -> Sc {
    let mut sc = Sc::new(&format!("filters/{name}"), desc).open(1).send(
        1,
        json!({"type": "subscribe", "resource": "messages", "filter": filter, "requestId": 1}),
    );
    for r in records {
        sc = sc.cmd(changed("messages", "insert", r.clone()));
    }
    sc.types(&["subscribed", "event"]).features(feature)
}

fn invalid(name: &str, desc: &str, filters: &[Value]) -> Sc {
    let mut sc = Sc::new(&format!("filters/{name}"), desc).demo().open(1);
    for (i, f) in filters.iter().enumerate() {
        sc = sc.send(
            1,
            json!({"type": "subscribe", "resource": "messages", "filter": f, "requestId": i}),
        );
    }
    sc.errors(&["INVALID_MESSAGE"])
        .features(&["filter:invalid"])
}

/// The scenarios of this area.
pub fn scenarios() -> Vec<Sc> {
    vec![
        filter_case("eq", "`$eq` matches equal values (numbers by value).",
            json!({"n": {"$eq": 1}}),
            &[json!({"id": "a", "n": 1}), json!({"id": "b", "n": 1.0}), json!({"id": "c", "n": 2}), json!({"id": "d"})],
            &["filter:$eq"]),
        filter_case("ne", "`$ne` matches different values and a missing field.",
            json!({"status": {"$ne": "done"}}),
            &[json!({"id": "a", "status": "open"}), json!({"id": "b", "status": "done"}), json!({"id": "c"})],
            &["filter:$ne"]),
        filter_case("in", "`$in` matches a value equal to one of the elements.",
            json!({"channel": {"$in": ["a", "b", 3]}}),
            &[json!({"id": "a", "channel": "a"}), json!({"id": "b", "channel": "c"}), json!({"id": "c", "channel": 3.0}), json!({"id": "d"})],
            &["filter:$in"]),
        filter_case("gt-lt-numbers", "`$gt` and `$lt` compare numbers as numbers (integers and floats alike).",
            json!({"n": {"$gt": 1, "$lt": 10}}),
            &[json!({"id": "a", "n": 1}), json!({"id": "b", "n": 1.5}), json!({"id": "c", "n": 9}), json!({"id": "d", "n": 10}), json!({"id": "e", "n": -3})],
            &["filter:$gt", "filter:$lt"]),
        filter_case("gte-lte-numbers", "`$gte` and `$lte` include the bounds.",
            json!({"n": {"$gte": 2, "$lte": 4}}),
            &[json!({"id": "a", "n": 1}), json!({"id": "b", "n": 2}), json!({"id": "c", "n": 4.0}), json!({"id": "d", "n": 4.5})],
            &["filter:$gte", "filter:$lte"]),
        filter_case("range-strings", "Range operators compare strings by code point.",
            json!({"name": {"$gte": "b", "$lt": "d"}}),
            &[json!({"id": "a", "name": "apple"}), json!({"id": "b", "name": "b"}), json!({"id": "c", "name": "cherry"}), json!({"id": "d", "name": "d"}), json!({"id": "e", "name": "Zed"})],
            &["filter:$gte", "filter:$lt"]),
        filter_case("kinds-never-match", "Values of different kinds never compare: a string field never satisfies a numeric bound, nor a number a string bound, nor null either.",
            json!({"n": {"$gt": 1}}),
            &[json!({"id": "a", "n": "5"}), json!({"id": "b", "n": null}), json!({"id": "c", "n": true}), json!({"id": "d", "n": 5})],
            &["filter:kinds-never-match", "filter:$gt"]),
        filter_case("exists", "`$exists: true` matches a present field (even null), `$exists: false` an absent one.",
            json!({"meta.owner": {"$exists": true}, "deleted": {"$exists": false}}),
            &[json!({"id": "a", "meta": {"owner": null}}), json!({"id": "b", "meta": {}}), json!({"id": "c", "meta": {"owner": "u1"}, "deleted": true}), json!({"id": "d", "meta": {"owner": "u1"}})],
            &["filter:$exists", "filter:dotted-path"]),
        filter_case("dotted-path", "Dotted paths reach into nested objects; a path through a non-object does not match.",
            json!({"meta.owner.id": "u1"}),
            &[json!({"id": "a", "meta": {"owner": {"id": "u1"}}}), json!({"id": "b", "meta": {"owner": "u1"}}), json!({"id": "c", "meta": {"owner": {"id": "u2"}}}), json!({"id": "d"})],
            &["filter:dotted-path"]),
        filter_case("literal-values", "A literal condition is equality: numbers by value, objects regardless of key order, arrays element by element.",
            json!({"n": 1, "o": {"a": 1, "b": [1, 2]}, "tags": ["x", "y"]}),
            &[json!({"id": "a", "n": 1.0, "o": {"b": [1, 2], "a": 1}, "tags": ["x", "y"]}),
              json!({"id": "b", "n": 1, "o": {"a": 1, "b": [2, 1]}, "tags": ["x", "y"]}),
              json!({"id": "c", "n": 1, "o": {"a": 1, "b": [1, 2]}, "tags": ["y", "x"]}),
              json!({"id": "d", "n": 1, "o": {"a": 1, "b": [1, 2], "c": 3}, "tags": ["x", "y"]})],
            &["filter:literal"]),
        filter_case("and", "`$and` matches when every listed filter matches, combined with other fields.",
            json!({"$and": [{"n": {"$gte": 1}}, {"n": {"$lte": 3}}], "channel": "a"}),
            &[json!({"id": "a", "n": 2, "channel": "a"}), json!({"id": "b", "n": 5, "channel": "a"}), json!({"id": "c", "n": 2, "channel": "b"})],
            &["filter:$and"]),
        filter_case("empty-filter", "An empty filter `{}` matches everything.",
            json!({}),
            &[json!({"id": "a"}), json!({"id": "b", "x": null})],
            &["filter:literal"]),
        filter_case("null-literal", "A literal `null` condition matches a null field but not a missing one.",
            json!({"x": null}),
            &[json!({"id": "a", "x": null}), json!({"id": "b"}), json!({"id": "c", "x": 0})],
            &["filter:literal"]),
        invalid("invalid-operators", "Unknown operators (`$regex`), a top-level `$or`, mixed operator/literal keys and wrong argument types are refused with INVALID_MESSAGE.",
            &[json!({"a": {"$regex": "x"}}), json!({"$or": [{"a": 1}]}), json!({"a": {"$gt": 1, "b": 2}}),
              json!({"a": {"$in": 5}}), json!({"a": {"$exists": "yes"}}), json!({"a": {"$gt": [1]}})]),
        invalid("invalid-shapes", "A filter that is not an object, a path with empty segments or a `$`-name, and `$and` that is not an array of objects are refused.",
            &[json!("a"), json!(5), json!({"a..b": 1}), json!({"$x": 1}), json!({"$and": {"a": 1}}), json!({"$and": [1]})]),
        Sc::new("filters/list-with-filter", "The same filters apply to `list` through storage: the filter is validated and passed to the store.")
            .store("messages", vec![json!({"id": "m1", "n": 1}), json!({"id": "m2", "n": 5}), json!({"id": "m3", "n": 9})])
            .open(1)
            .send(1, json!({"type": "list", "resource": "messages", "filter": {"n": {"$gt": 2, "$lte": 9}}, "requestId": 1}))
            .send(1, json!({"type": "list", "resource": "messages", "filter": {"n": {"$nope": 1}}, "requestId": 2}))
            .types(&["data"])
            .errors(&["INVALID_MESSAGE"])
            .features(&["filter:$gt", "filter:$lte", "filter:invalid"]),
        Sc::new("filters/protected-fields-refused", "In the demo, `users.password` is protected: a filter that reaches it, one of its children or (in a config with `meta.internal` protected) its parent would let a client binary-search its value, so `list`, `subscribe` and `unsubscribe` refuse it with FORBIDDEN before any storage call, even for an admin. Other fields stay usable.")
            .demo()
            .open_q(1, "token=key_admin")
            .send(1, json!({"type": "list", "resource": "users", "filter": {"id": "u1", "password": {"$gte": "T"}}, "requestId": 1}))
            .send(1, json!({"type": "list", "resource": "users", "filter": {"$and": [{"password.hash": {"$exists": true}}]}, "requestId": 2}))
            .send(1, json!({"type": "subscribe", "resource": "users", "filter": {"password": "hunter2"}, "requestId": 3}))
            .send(1, json!({"type": "unsubscribe", "resource": "users", "filter": {"password": "hunter2"}, "requestId": 4}))
            .send(1, json!({"type": "subscribe", "resource": "users", "filter": {"name": "filters-protected"}, "requestId": 5}))
            .errors(&["FORBIDDEN"])
            .types(&["subscribed"])
            .features(&["filter:protected-refused"]),
        Sc::new("filters/protected-parent-refused", "A filter on the parent of a protected path (`meta` for `meta.internal`) is refused like the path itself; a sibling (`meta.owner`) is not. A guard's forced filter may use a protected field: it is the server's own.")
            .cfg(std_with(json!({"resources": {"docs": {
                "protected": ["meta.internal", "owner"],
                "guards": {"list": "{'owner': user.id}"}
            }}})))
            .store("docs", vec![json!({"id": "d1", "owner": "u1", "meta": {"owner": "a", "internal": 1}}), json!({"id": "d2", "owner": "u2", "meta": {"owner": "a", "internal": 2}})])
            .open_q(1, "token=key_user")
            .send(1, json!({"type": "list", "resource": "docs", "filter": {"meta": {"owner": "a", "internal": 1}}, "requestId": 1}))
            .send(1, json!({"type": "list", "resource": "docs", "filter": {"meta.internal": {"$lt": 2}}, "requestId": 2}))
            .send(1, json!({"type": "list", "resource": "docs", "filter": {"meta.owner": "a"}, "requestId": 3}))
            .errors(&["FORBIDDEN"])
            .types(&["data"])
            .features(&["filter:protected-refused", "guard:forced-filter"]),
    ]
}
