//! Resource guards: CEL and host guards, forced filters, protected fields in filters, guard errors.

use super::*;

#[test]
fn get_guard_allow_and_deny_and_protected_fields() {
    let mut r = seeded();
    let f = r.ask(
        1,
        json!({"type":"get","resource":"users","id":"u1","requestId":1}),
    );
    assert_eq!(f["type"], "data");
    assert_eq!(f["data"]["name"], "Uma");
    assert!(f["data"].get("password").is_none());
    assert_eq!(f["data"]["meta"], json!({}));
    let f = r.ask(2, json!({"type":"get","resource":"users","id":"u1"}));
    assert_eq!(f["data"]["id"], "u1");
    let f = r.ask(
        2,
        json!({"type":"get","resource":"users","id":"u2","requestId":"x"}),
    );
    assert_eq!(
        (f["code"].as_str(), f["requestId"].as_str()),
        (Some("FORBIDDEN"), Some("x"))
    );
    let f = r.ask(1, json!({"type":"get","resource":"users","id":"ghost"}));
    assert_eq!(f["code"], "NOT_FOUND");
    assert!(!f["message"].as_str().unwrap().contains("bucket"));
}

/// A filter on a protected field would let a client tell its value from the matches
/// (a binary search with `$gte`): list, subscribe and unsubscribe refuse filters that
/// reach a protected path, its parents or its children, before any storage call.
#[test]
fn filters_cannot_reach_protected_fields_their_parents_or_children() {
    let mut r = seeded();
    for (i, filter) in [
        json!({"id": "u1", "password": {"$gte": "T"}}),
        json!({"password.x": 1}),
        json!({"meta": {"internal": 1}}),
        json!({"$and": [{"meta.internal": {"$exists": true}}]}),
    ]
    .into_iter()
    .enumerate()
    {
        let acts = r.send(
            1,
            json!({"type": "list", "resource": "users", "filter": filter, "requestId": i}),
        );
        assert_eq!(calls(&acts), 0, "no storage call for {filter}");
        let f = frames(&acts, 1).pop().unwrap();
        assert_eq!(
            (f["code"].as_str(), f["requestId"].as_u64()),
            (Some("FORBIDDEN"), Some(i as u64))
        );
        assert!(f["message"].as_str().unwrap().contains("protected"), "{f}");
        for ty in ["subscribe", "unsubscribe"] {
            let f = r.ask(
                1,
                json!({"type": ty, "resource": "users", "filter": filter}),
            );
            assert_eq!(f["code"], "FORBIDDEN", "{ty} {filter}: {f}");
        }
    }
    // Other fields, including siblings under the same parent, stay usable.
    let f = r.ask(
        1,
        json!({"type": "list", "resource": "users", "filter": {"meta.shown": 2}}),
    );
    assert_eq!(f["type"], "data", "{f}");
    let f = r.ask(
        1,
        json!({"type": "subscribe", "resource": "users", "filter": {"name": "Uma"}}),
    );
    assert_eq!(f["type"], "subscribed", "{f}");
}

/// Guards' forced filters are the server's own: they may use protected fields.
#[test]
fn a_guards_forced_filter_may_use_a_protected_field() {
    let mut r = R::new(json!({"vault": {
        "protected": ["owner"],
        "guards": {"list": "{'owner': user.id}"}
    }}));
    r.seed(
        "vault",
        vec![
            json!({"id": "v1", "owner": "u1"}),
            json!({"id": "v2", "owner": "u2"}),
        ],
    );
    r.open(2, "key_u1");
    let f = r.ask(2, json!({"type": "list", "resource": "vault"}));
    assert_eq!(f["data"], json!([{"id": "v1"}]), "{f}");
    let f = r.ask(
        2,
        json!({"type": "list", "resource": "vault", "filter": {"owner": "u2"}}),
    );
    assert_eq!(f["code"], "FORBIDDEN", "{f}");
}

#[test]
fn list_guard_filter_applies_without_client_filter() {
    let mut r = seeded();
    for filter in [
        None,
        Some(json!({})),
        Some(json!({"name":{"$exists":true}})),
    ] {
        let mut msg = json!({"type":"list","resource":"users"});
        if let Some(f) = filter {
            msg["filter"] = f;
        }
        let f = r.ask(2, msg);
        let ids: Vec<&str> = f["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, vec!["u1"], "guard filter dropped");
    }
    let f = r.ask(1, json!({"type":"list","resource":"users"}));
    assert_eq!(f["data"].as_array().unwrap().len(), 3);
    assert!(!f.to_string().contains("password"));
}

#[test]
fn create_update_delete_guards() {
    let mut r = seeded();
    assert_eq!(
        r.ask(
            2,
            json!({"type":"insert","resource":"users","data":{"name":"x"}})
        )["code"],
        "FORBIDDEN"
    );
    assert_eq!(
        r.ask(
            1,
            json!({"type":"insert","resource":"users","data":{"id":"u9","name":"x","password":"s"}})
        )["type"],
        "inserted"
    );
    assert_eq!(
        r.ask(
            2,
            json!({"type":"update","resource":"users","id":"u1","data":{"name":"U"}})
        )["type"],
        "updated"
    );
    assert_eq!(
        r.ask(
            2,
            json!({"type":"update","resource":"users","id":"u2","data":{"name":"U"}})
        )["code"],
        "FORBIDDEN"
    );
    assert_eq!(
        r.ask(2, json!({"type":"delete","resource":"users","id":"u9"}))["code"],
        "FORBIDDEN"
    );
    assert_eq!(
        r.ask(1, json!({"type":"delete","resource":"users","id":"u9"}))["type"],
        "deleted"
    );
    assert_eq!(r.store.len("users"), 3);
}

#[test]
fn tenant_guards_with_forced_filter_and_record_checks() {
    let mut r = seeded();
    // create: forced filter {tenantId: user.tenantId} must match the data.
    let f = r.ask(
        2,
        json!({"type":"insert","resource":"documents","data":{"id":"d1","tenantId":"t1"}}),
    );
    assert_eq!(f["type"], "inserted");
    let f = r.ask(
        2,
        json!({"type":"insert","resource":"documents","data":{"id":"d2","tenantId":"t2"}}),
    );
    assert_eq!(f["code"], "FORBIDDEN");
    // update uses the stored record (fetched first).
    assert_eq!(
        r.ask(
            3,
            json!({"type":"update","resource":"documents","id":"d1","data":{"x":1}})
        )["code"],
        "FORBIDDEN"
    );
    assert_eq!(
        r.ask(
            2,
            json!({"type":"update","resource":"documents","id":"d1","data":{"x":1}})
        )["type"],
        "updated"
    );
    // delete needs tenant and admin.
    assert_eq!(
        r.ask(2, json!({"type":"delete","resource":"documents","id":"d1"}))["code"],
        "FORBIDDEN"
    );
    // read guard: other tenant cannot get it (NOT_FOUND: existence is not revealed).
    assert_eq!(
        r.ask(3, json!({"type":"get","resource":"documents","id":"d1"}))["code"],
        "NOT_FOUND"
    );
    assert_eq!(
        r.ask(1, json!({"type":"get","resource":"documents","id":"d1"}))["data"]["x"],
        1
    );
    assert_eq!(
        r.ask(1, json!({"type":"delete","resource":"documents","id":"d1"}))["type"],
        "deleted"
    );
}

#[test]
fn host_guards_are_consulted_through_host_calls() {
    let mut r = R::new(json!({"rooms_data": {"hostGuards": ["subscribe", "create"]}}));
    r.guard = Box::new(|ctx| match ctx["user"]["id"].as_str() {
        Some("admin1") => GuardDecision::Allow,
        Some("u1") => GuardDecision::Filter {
            filter: json!({"owner":"u1"}),
        },
        _ => GuardDecision::Deny {
            message: Some("members only".into()),
        },
    });
    r.open(1, "key_admin");
    r.open(2, "key_u1");
    r.open(3, "");
    assert_eq!(
        r.ask(1, json!({"type":"subscribe","resource":"rooms_data"}))["type"],
        "subscribed"
    );
    assert_eq!(
        r.ask(2, json!({"type":"subscribe","resource":"rooms_data"}))["type"],
        "subscribed"
    );
    let f = r.ask(3, json!({"type":"subscribe","resource":"rooms_data"}));
    assert_eq!(
        (f["code"].as_str(), f["message"].as_str()),
        (Some("FORBIDDEN"), Some("members only"))
    );
    let acts = r.send(
        1,
        json!({"type":"insert","resource":"rooms_data","data":{"owner":"u9"}}),
    );
    assert!(frames(&acts, 2).is_empty(), "host-forced filter ignored");
    assert_eq!(r.guard_calls.len(), 4);
    let snapshot = r.e.snapshot(ConnId(2)).unwrap();
    assert!(serde_json::to_string(&snapshot).unwrap().contains("forced"));
}

#[test]
fn guard_errors_fail_closed() {
    let mut r = R::new(json!({"notes": {"guards": {"get": "user.role == 'admin'"}}}));
    r.open(1, "");
    assert_eq!(
        r.ask(1, json!({"type":"get","resource":"notes","id":"x"}))["code"],
        "FORBIDDEN"
    );
    assert_eq!(r.e.metrics().guard_errors, 1);
}

#[test]
fn bad_guards_and_schemas_are_config_errors_with_paths() {
    let err = Config::from_value(
        json!({"resources":{"a":{"guards":{"list":"user.role =="}, "schema": {"type": 5}}}}),
    )
    .unwrap_err();
    let paths: Vec<_> = err.issues.iter().map(|i| i.path.as_str()).collect();
    assert!(paths.contains(&"resources.a.guards.list"), "{paths:?}");
    assert!(paths.contains(&"resources.a.schema"), "{paths:?}");
    let err = Config::from_value(json!({"resources":{"a":{"hostGuards":["read"]}}})).unwrap_err();
    assert_eq!(err.issues[0].path, "resources.a.hostGuards");
}

#[test]
fn host_guards_are_denied_by_the_engine_when_the_host_has_no_guard_callback() {
    let mut r = R::new(json!({"rooms_data": {"hostGuards": ["subscribe"]}}));
    r.e.set_host_capabilities(crate::HostCapabilities {
        guard: false,
        handlers: true,
    });
    r.open(1, "key_admin");
    let f = r.ask(1, json!({"type":"subscribe","resource":"rooms_data"}));
    assert_eq!(
        (f["code"].as_str(), f["message"].as_str()),
        (Some("FORBIDDEN"), Some(crate::hostcall::NO_HOST_GUARD))
    );
    assert_eq!(
        r.guard_calls.len(),
        0,
        "no guard call reaches a host without a callback"
    );
}

#[test]
fn a_guard_callbacks_loose_value_reads_as_a_decision_and_fails_closed() {
    let read = |v: serde_json::Value| GuardDecision::from_callback_value(&v);
    assert_eq!(read(json!(true)), GuardDecision::Allow);
    assert_eq!(read(json!(null)), GuardDecision::Allow);
    assert_eq!(read(json!(false)), GuardDecision::Deny { message: None });
    assert_eq!(read(json!("yes")), GuardDecision::Deny { message: None });
    assert_eq!(
        read(json!({"decision":"deny","message":"members only"})),
        GuardDecision::Deny {
            message: Some("members only".into())
        }
    );
    assert_eq!(
        read(json!({"filter":{"owner":"u1"}})),
        GuardDecision::Filter {
            filter: json!({"owner":"u1"})
        }
    );
    assert_eq!(
        read(json!({"decision":"maybe"})),
        GuardDecision::Deny { message: None }
    );
    assert_eq!(read(json!({})), GuardDecision::Deny { message: None });
}
