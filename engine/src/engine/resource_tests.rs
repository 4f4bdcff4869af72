//! Resource tests: CRUD over a real (memory) store, guards per action and outcome,
//! protected fields, and regressions for the s3db.js bugs B3–B7.

use serde_json::{json, Value};

use super::*;
use crate::hostcall::{GuardDecision, StoreErrorKind};
use crate::store::{MemoryStore, RecordStore};

const T0: u64 = 1_700_000_000_000;

/// An engine whose storage calls are answered by a MemoryStore; guard calls are
/// answered by `host_guard`.
struct R {
    e: Engine,
    store: MemoryStore,
    host_guard: Box<dyn FnMut(&Value) -> GuardDecision>,
    guard_calls: usize,
}

impl R {
    fn new(resources: Value) -> R {
        let cfg = json!({
            "auth": {"apiKeys": {
                "key_admin": {"id": "admin1", "role": "admin", "tenantId": "t1"},
                "key_u1": {"id": "u1", "role": "user", "tenantId": "t1"},
                "key_u2": {"id": "u2", "role": "user", "tenantId": "t2"}
            }},
            "heartbeatInterval": 0,
            "resources": resources
        });
        R {
            e: Engine::with_seed(Config::from_value(cfg).unwrap(), 1).unwrap(),
            store: MemoryStore::new(),
            host_guard: Box::new(|_| GuardDecision::Allow),
            guard_calls: 0,
        }
    }

    /// Feed an input, answer host calls until none are left, return all actions.
    fn run(&mut self, input: Input<'_>) -> Vec<Action> {
        self.e.handle(Millis(T0), input).unwrap();
        let mut all = Vec::new();
        loop {
            let batch: Vec<Action> = self.e.drain_actions().collect();
            if batch.is_empty() {
                break;
            }
            for a in batch {
                if let Action::Call { op, request, .. } = &a {
                    let result = match request {
                        HostRequest::Store(r) => HostResult::Store(self.store.apply(r)),
                        HostRequest::Guard { context, .. } => {
                            self.guard_calls += 1;
                            let context = serde_json::to_value(context).unwrap();
                            HostResult::Guard((self.host_guard)(&context))
                        }
                        HostRequest::Fetch(_) => HostResult::Fetch(Default::default()),
                        HostRequest::Message(_)
                        | HostRequest::Hook(_)
                        | HostRequest::Intercept(_) => HostResult::Handler(Box::new(
                            crate::app::HandlerResponse::failed("no handlers in these tests"),
                        )),
                    };
                    self.e
                        .handle(Millis(T0), Input::Completed { op: *op, result })
                        .unwrap();
                }
                all.push(a);
            }
        }
        self.e.check_invariants().unwrap();
        all
    }

    fn open(&mut self, conn: u64, key: &str) {
        let request = UpgradeRequest {
            path: "/".into(),
            query: if key.is_empty() {
                String::new()
            } else {
                format!("token={key}")
            },
            peer: "127.0.0.1".into(),
            client_id: format!("c{conn}"),
            ..Default::default()
        };
        let acts = self.run(Input::Open {
            conn: ConnId(conn),
            request,
        });
        assert!(matches!(acts[0], Action::Accept { .. }), "{acts:?}");
    }

    fn send(&mut self, conn: u64, msg: Value) -> Vec<Action> {
        let text = msg.to_string();
        self.run(Input::Frame {
            conn: ConnId(conn),
            frame: InFrame::Text(&text),
        })
    }

    fn ask(&mut self, conn: u64, msg: Value) -> Value {
        let acts = self.send(conn, msg);
        frames(&acts, conn).pop().expect("an answer")
    }

    fn seed(&mut self, resource: &str, records: Vec<Value>) {
        self.store.seed(resource, records);
    }
}

fn frames(actions: &[Action], conn: u64) -> Vec<Value> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send { conn: c, frame } if c.0 == conn => Some(frame),
            Action::SendMany { conns, frame } if conns.contains(&ConnId(conn)) => Some(frame),
            _ => None,
        })
        .map(|f| serde_json::from_str(f.as_text().unwrap()).unwrap())
        .collect()
}

fn users_config() -> Value {
    let mut config = json!({
        "users": {
            "protected": ["password", "meta.internal"],
            "guards": {
                "list": "user != null && user.role == 'admin' ? true : {'id': user.id}",
                "get": "user != null && (user.role == 'admin' || id == user.id)",
                "update": "user != null && (user.role == 'admin' || id == user.id)",
                "create": "user != null && user.role == 'admin'",
                "delete": "user != null && user.role == 'admin'",
                "subscribe": "user != null && user.role == 'admin' ? true : {'id': user.id}"
            }
        },
        "messages": {
            "schema": {
                "type": "object",
                "properties": {"content": {"type": "string"}, "author": {"type": "string"}, "channel": {"type": "string"}},
                "required": ["content", "author", "channel"]
            }
        },
        "documents": {
            "guards": {
                "create": "{'tenantId': user.tenantId}",
                "update": "record.tenantId == user.tenantId",
                "delete": "record.tenantId == user.tenantId && user.role == 'admin'",
                "read": "user != null && record.tenantId == user.tenantId"
            }
        }
    });
    // A build without JSON Schema refuses `schema` (tested below); the rest still applies.
    if !cfg!(feature = "json-schema") {
        config["messages"].as_object_mut().unwrap().remove("schema");
    }
    config
}

fn seeded() -> R {
    let mut r = R::new(users_config());
    r.seed(
        "users",
        vec![
            json!({"id":"admin1","name":"Ada","password":"p0","meta":{"internal":1,"shown":2}}),
            json!({"id":"u1","name":"Uma","password":"p1","meta":{"internal":1}}),
            json!({"id":"u2","name":"Ugo","password":"p2"}),
        ],
    );
    r.open(1, "key_admin");
    r.open(2, "key_u1");
    r.open(3, "key_u2");
    r
}

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
fn b4_list_guard_filter_applies_without_client_filter() {
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
fn b7_list_cursor_advances_and_terminates() {
    let mut r = R::new(json!({"messages": {"maxListLimit": 2}}));
    r.seed(
        "messages",
        (0..5).map(|i| json!({"id": format!("m{i}")})).collect(),
    );
    r.open(1, "");
    let mut seen = vec![];
    let mut cursor = Value::Null;
    for _ in 0..10 {
        let mut msg = json!({"type":"list","resource":"messages","limit":50});
        if !cursor.is_null() {
            msg["cursor"] = cursor.clone();
        }
        let f = r.ask(1, msg);
        assert!(f["data"].as_array().unwrap().len() <= 2, "limit is clamped");
        seen.extend(
            f["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["id"].as_str().unwrap().to_string()),
        );
        cursor = f["cursor"].clone();
        if cursor.is_null() {
            break;
        }
    }
    assert_eq!(seen, vec!["m0", "m1", "m2", "m3", "m4"]);
    let f = r.ask(
        1,
        json!({"type":"list","resource":"messages","cursor":"@@bad"}),
    );
    assert_eq!(f["code"], "INVALID_MESSAGE");
}

#[test]
fn b6_crud_only_on_configured_resources() {
    let mut r = seeded();
    r.seed("internal", vec![json!({"id":"secret"})]);
    for msg in [
        json!({"type":"get","resource":"internal","id":"secret"}),
        json!({"type":"list","resource":"internal"}),
        json!({"type":"insert","resource":"internal","data":{}}),
        json!({"type":"update","resource":"internal","id":"secret","data":{}}),
        json!({"type":"delete","resource":"internal","id":"secret"}),
        json!({"type":"subscribe","resource":"internal"}),
    ] {
        assert_eq!(r.ask(1, msg.clone())["code"], "RESOURCE_NOT_FOUND", "{msg}");
    }
    assert_eq!(r.store.len("internal"), 1);
}

#[test]
#[cfg(feature = "json-schema")]
fn validation_errors_name_fields_and_missing_records_are_not_found() {
    let mut r = seeded();
    let f = r.ask(1, json!({"type":"insert","resource":"messages","data":{"content":5,"author":"a"},"requestId":2}));
    assert_eq!(f["code"], "VALIDATION_ERROR");
    let m = f["message"].as_str().unwrap();
    assert!(m.contains("content:") && m.contains("channel"), "{m}");
    let f = r.ask(
        1,
        json!({"type":"update","resource":"messages","id":"nope","data":{"content":"x"}}),
    );
    assert_eq!(f["code"], "NOT_FOUND");
    let f = r.ask(
        1,
        json!({"type":"update","resource":"messages","id":"nope","data":{"content":1}}),
    );
    assert_eq!(f["code"], "VALIDATION_ERROR");
    let f = r.ask(
        1,
        json!({"type":"delete","resource":"messages","id":"nope"}),
    );
    assert_eq!(f["code"], "NOT_FOUND");
    let f = r.ask(1, json!({"type":"insert","resource":"messages","data":{"id":"m1","content":"a","author":"b","channel":"c"}}));
    assert_eq!(f["type"], "inserted");
    let f = r.ask(1, json!({"type":"insert","resource":"messages","data":{"id":"m1","content":"a","author":"b","channel":"c"}}));
    assert_eq!(f["code"], "VALIDATION_ERROR");
    assert!(!f["message"].as_str().unwrap().contains("exists`"));
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
fn events_respect_subscribe_guards_read_guards_and_protected_fields_including_deletes() {
    let mut r = seeded();
    // u1's users subscription is narrowed to its own row by the subscribe guard.
    assert_eq!(
        r.ask(2, json!({"type":"subscribe","resource":"users"}))["type"],
        "subscribed"
    );
    assert_eq!(
        r.ask(1, json!({"type":"subscribe","resource":"users"}))["type"],
        "subscribed"
    );
    let acts = r.send(
        1,
        json!({"type":"update","resource":"users","id":"u2","data":{"name":"new","password":"np"}}),
    );
    assert!(frames(&acts, 2).is_empty(), "u1 saw u2's row");
    let ev = frames(&acts, 1)
        .into_iter()
        .find(|f| f["type"] == "event")
        .unwrap();
    assert!(!ev.to_string().contains("password"), "B3 leak: {ev}");
    let acts = r.send(1, json!({"type":"delete","resource":"users","id":"u2"}));
    assert!(
        frames(&acts, 2).is_empty(),
        "delete leaked to a subscriber outside the guard"
    );
    let ev = frames(&acts, 1)
        .into_iter()
        .find(|f| f["type"] == "event")
        .unwrap();
    assert_eq!(ev["event"], "delete");
    assert!(!ev.to_string().contains("password"));
    let acts = r.send(
        1,
        json!({"type":"update","resource":"users","id":"u1","data":{"name":"mine"}}),
    );
    assert_eq!(frames(&acts, 2)[0]["data"]["name"], "mine");
    // documents: read guard filters events per recipient (tenant t1 vs t2).
    r.ask(2, json!({"type":"subscribe","resource":"documents"}));
    r.ask(3, json!({"type":"subscribe","resource":"documents"}));
    let acts = r.send(
        1,
        json!({"type":"insert","resource":"documents","data":{"id":"d9","tenantId":"t1"}}),
    );
    assert_eq!(frames(&acts, 2)[0]["type"], "event");
    assert!(frames(&acts, 3).is_empty());
    let acts = r.send(1, json!({"type":"delete","resource":"documents","id":"d9"}));
    assert_eq!(frames(&acts, 2)[0]["event"], "delete");
    assert!(
        frames(&acts, 3).is_empty(),
        "deleted row leaked across tenants"
    );
}

#[test]
fn host_guards_are_consulted_through_host_calls() {
    let mut r = R::new(json!({"rooms_data": {"hostGuards": ["subscribe", "create"]}}));
    r.host_guard = Box::new(|ctx| match ctx["user"]["id"].as_str() {
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
    assert_eq!(r.guard_calls, 4);
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
#[cfg(not(feature = "json-schema"))]
fn a_build_without_json_schema_refuses_schemas_with_a_config_error() {
    let err =
        Config::from_value(json!({"resources":{"a":{"schema": {"type": "object"}}}})).unwrap_err();
    assert_eq!(err.issues[0].path, "resources.a.schema");
    assert_eq!(err.issues[0].problem, crate::validation::UNSUPPORTED);
    assert!(Config::from_value(json!({"resources":{"a":{}}})).is_ok());
}

#[test]
fn insert_and_update_ids_and_timestamps_are_deterministic() {
    let mut r = R::new(json!({"m": {}}));
    r.open(1, "");
    let f = r.ask(
        1,
        json!({"type":"insert","resource":"m","data":{"a":1,"createdAt":"forged"}}),
    );
    let id = f["data"]["id"].as_str().unwrap().to_string();
    assert_eq!(f["data"]["createdAt"], "2023-11-14T22:13:20.000Z");
    let mut r2 = R::new(json!({"m": {}}));
    r2.open(1, "");
    let f2 = r2.ask(1, json!({"type":"insert","resource":"m","data":{"a":1}}));
    assert_eq!(f2["data"]["id"], id.as_str(), "same seed, same id");
    let f = r.ask(
        1,
        json!({"type":"update","resource":"m","id":id,"data":{"a":2}}),
    );
    assert_eq!(f["data"]["a"], 2);
    assert_eq!(f["data"]["createdAt"], "2023-11-14T22:13:20.000Z");
}

#[test]
fn a_row_moving_into_a_forced_filter_does_not_reveal_its_old_state() {
    let mut r = R::new(json!({"docs": {"guards": {"subscribe": "{'tenantId': user.tenantId}"}}}));
    r.seed(
        "docs",
        vec![json!({"id":"d1","tenantId":"t2","title":"t2 secret"})],
    );
    r.open(1, "key_admin");
    r.open(2, "key_u1");
    r.open(3, "key_u2");
    r.ask(2, json!({"type":"subscribe","resource":"docs"}));
    r.ask(3, json!({"type":"subscribe","resource":"docs"}));
    let acts = r.send(1, json!({"type":"update","resource":"docs","id":"d1","data":{"tenantId":"t1","title":"moved"}}));
    let ev = &frames(&acts, 2)[0];
    assert_eq!(ev["event"], "update");
    assert_eq!(ev["data"]["$after"]["title"], "moved");
    assert_eq!(ev["data"]["$before"], Value::Null, "old state leaked: {ev}");
    assert!(!ev.to_string().contains("t2 secret"));
    // The t2 subscriber may not see the row after the move: nothing is sent.
    assert!(frames(&acts, 3).is_empty());
}

// ----- server writes (Command::Insert / Update / Delete) ------------------------------

impl R {
    /// Run a command (storage calls answered), return its actions and its result.
    fn cmd(&mut self, tag: u64, command: Value) -> (Vec<Action>, Result<Value, CommandError>) {
        let command: Command = serde_json::from_value(command).unwrap();
        let acts = self.run(Input::Command { tag, command });
        let results: Vec<_> = acts
            .iter()
            .filter_map(|a| match a {
                Action::CommandResult { tag: t, result } if *t == tag => Some(result.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(results.len(), 1, "one result per command: {acts:?}");
        (acts, results.into_iter().next().unwrap())
    }
}

fn calls(actions: &[Action]) -> usize {
    actions
        .iter()
        .filter(|a| matches!(a, Action::Call { .. }))
        .count()
}

#[test]
fn server_insert_shapes_stores_and_fans_out_with_protected_fields_stripped() {
    let mut r = seeded();
    r.send(1, json!({"type":"subscribe","resource":"users"}));
    r.send(2, json!({"type":"subscribe","resource":"users"}));
    let (acts, res) = r.cmd(
        7,
        json!({"command":"insert","resource":"users","data":{"name":"Neo","password":"pw","createdAt":"forged"}}),
    );
    let res = res.unwrap();
    let rec = &res["record"];
    let id = rec["id"].as_str().unwrap();
    assert_eq!(id.len(), 20, "id from the engine's generator");
    assert_eq!(rec["createdAt"], "2023-11-14T22:13:20.000Z");
    assert_eq!(rec["updatedAt"], rec["createdAt"]);
    assert_eq!(rec["password"], "pw", "the server sees protected fields");
    let keys: Vec<&String> = rec.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["id", "name", "password", "createdAt", "updatedAt"]);
    // The admin subscriber sees it (stripped); u1's forced filter {id: u1} does not match.
    assert_eq!(res["delivered"], 1);
    let ev = frames(&acts, 1).pop().unwrap();
    assert_eq!(
        (ev["type"].as_str(), ev["event"].as_str()),
        (Some("event"), Some("insert"))
    );
    assert_eq!(ev["data"]["name"], "Neo");
    assert!(ev["data"].get("password").is_none(), "{ev}");
    assert!(frames(&acts, 2).is_empty());
    // The store has it; the call was server-initiated (no connection).
    assert!(acts
        .iter()
        .any(|a| matches!(a, Action::Call { conn: None, .. })));
    let f = r.ask(1, json!({"type":"get","resource":"users","id":id}));
    assert_eq!(f["data"]["name"], "Neo");
    // Same seed, same id: the generator is the engine's, not the host's.
    let mut r2 = seeded();
    let (_, res2) = r2.cmd(
        1,
        json!({"command":"insert","resource":"users","data":{"name":"Neo"}}),
    );
    assert_eq!(res2.unwrap()["record"]["id"], id);
}

#[test]
fn server_writes_skip_write_guards_and_host_guards_but_events_keep_read_guards() {
    let mut r = R::new(json!({
        "docs": {
            "guards": {"create": "false", "update": "false", "delete": "false",
                       "read": "user != null && record.tenantId == user.tenantId"},
            "hostGuards": ["create", "update", "delete"]
        }
    }));
    r.host_guard = Box::new(|_| GuardDecision::Deny { message: None });
    r.open(1, "key_u1"); // tenant t1
    r.open(2, "key_u2"); // tenant t2
    r.send(1, json!({"type":"subscribe","resource":"docs"}));
    r.send(2, json!({"type":"subscribe","resource":"docs"}));
    let (acts, res) = r.cmd(
        1,
        json!({"command":"insert","resource":"docs","data":{"id":"d1","tenantId":"t1"}}),
    );
    assert_eq!(res.unwrap()["delivered"], 1);
    assert_eq!(frames(&acts, 1).len(), 1);
    assert!(frames(&acts, 2).is_empty(), "read guard applies to events");
    let (acts, res) = r.cmd(
        2,
        json!({"command":"update","resource":"docs","id":"d1","data":{"title":"x"}}),
    );
    let res = res.unwrap();
    assert_eq!(res["record"]["title"], "x");
    assert_eq!(frames(&acts, 1)[0]["data"]["$before"]["id"], "d1");
    let (_, res) = r.cmd(3, json!({"command":"delete","resource":"docs","id":"d1"}));
    assert_eq!(res.unwrap()["record"]["id"], "d1");
    assert_eq!(r.guard_calls, 0, "host guards are for clients");
    // A client is still refused by the same guards.
    let f = r.ask(
        1,
        json!({"type":"insert","resource":"docs","data":{"tenantId":"t1"}}),
    );
    assert_eq!(f["code"], "FORBIDDEN");
}

#[test]
fn server_write_errors_have_codes_and_no_storage_call_when_refused_early() {
    let mut r = seeded();
    let (acts, e) = r.cmd(1, json!({"command":"insert","resource":"nope","data":{}}));
    let e = e.unwrap_err();
    assert_eq!((e.code, e.store), (ErrorCode::ResourceNotFound, None));
    assert_eq!(calls(&acts), 0);
    #[cfg(feature = "json-schema")]
    {
        let (acts, e) = r.cmd(
            2,
            json!({"command":"insert","resource":"messages","data":{"content":5,"author":"a"}}),
        );
        let e = e.unwrap_err();
        assert_eq!(e.code, ErrorCode::ValidationError);
        assert!(
            e.message.contains("content:") && e.message.contains("channel"),
            "{}",
            e.message
        );
        assert_eq!(calls(&acts), 0);
        let (_, e) = r.cmd(
            3,
            json!({"command":"insert","resource":"messages","data":{"id":5}}),
        );
        assert_eq!(e.unwrap_err().code, ErrorCode::ValidationError);
        let (_, e) = r.cmd(
            4,
            json!({"command":"update","resource":"messages","id":"m","data":{"content":1}}),
        );
        assert_eq!(e.unwrap_err().code, ErrorCode::ValidationError);
    }
    let (_, e) = r.cmd(
        5,
        json!({"command":"update","resource":"users","id":"u1","data":{"id":"u9"}}),
    );
    let e = e.unwrap_err();
    assert_eq!(e.code, ErrorCode::ValidationError);
    assert!(e.message.starts_with("id:"), "{}", e.message);
    let (_, e) = r.cmd(6, json!({"command":"delete","resource":"users","id":""}));
    assert_eq!(e.unwrap_err().code, ErrorCode::InvalidMessage);
    // Errors from the store carry its classification.
    for (tag, c) in [
        (
            7,
            json!({"command":"update","resource":"users","id":"ghost","data":{"a":1}}),
        ),
        (
            8,
            json!({"command":"delete","resource":"users","id":"ghost"}),
        ),
    ] {
        let (acts, e) = r.cmd(tag, c);
        let e = e.unwrap_err();
        assert_eq!(
            (e.code, e.store),
            (ErrorCode::NotFound, Some(StoreErrorKind::NotFound))
        );
        assert_eq!(e.message, "Record `ghost` not found in `users`");
        assert_eq!(calls(&acts), 1);
    }
    let (_, e) = r.cmd(
        9,
        json!({"command":"insert","resource":"users","data":{"id":"u1"}}),
    );
    let e = e.unwrap_err();
    assert_eq!(
        (e.code, e.store),
        (ErrorCode::ValidationError, Some(StoreErrorKind::Conflict))
    );
    // Command errors are not error frames.
    assert_eq!(r.e.metrics().errors, 0);
}

#[test]
fn server_write_timeout_then_late_success_still_fans_out() {
    let mut r = R::new(json!({"m": {}}));
    r.open(1, "");
    r.send(1, json!({"type":"subscribe","resource":"m"}));
    let command: Command =
        serde_json::from_value(json!({"command":"insert","resource":"m","data":{"id":"x"}}))
            .unwrap();
    r.e.handle(Millis(T0), Input::Command { tag: 42, command })
        .unwrap();
    let acts: Vec<Action> = r.e.drain_actions().collect();
    let (op, deadline, request) = match &acts[..] {
        [Action::Call {
            op,
            conn: None,
            deadline,
            request: HostRequest::Store(req),
        }] => (*op, *deadline, req.clone()),
        other => panic!("{other:?}"),
    };
    assert_eq!(r.e.poll_timeout(), Some(deadline));
    assert_eq!(r.e.metrics().pending_calls, 1);
    r.e.handle(deadline, Input::Timeout).unwrap();
    let acts: Vec<Action> = r.e.drain_actions().collect();
    match &acts[..] {
        [Action::CommandResult {
            tag: 42,
            result: Err(e),
        }] => {
            assert_eq!((e.code, e.store), (ErrorCode::Timeout, None))
        }
        other => panic!("{other:?}"),
    }
    r.e.check_invariants().unwrap();
    // The write happened after all: subscribers still see it; no second result.
    let result = HostResult::Store(r.store.apply(&request));
    r.e.handle(deadline, Input::Completed { op, result })
        .unwrap();
    let acts: Vec<Action> = r.e.drain_actions().collect();
    assert_eq!(frames(&acts, 1)[0]["event"], "insert");
    assert!(!acts
        .iter()
        .any(|a| matches!(a, Action::CommandResult { .. })));
    assert_eq!(r.e.metrics().late_completions, 1);
}

#[test]
fn server_writes_are_bounded_by_max_pending_calls() {
    let cfg =
        json!({"heartbeatInterval": 0, "limits": {"maxPendingCalls": 1}, "resources": {"m": {}}});
    let mut e = Engine::with_seed(Config::from_value(cfg).unwrap(), 1).unwrap();
    for tag in [1, 2] {
        let command: Command =
            serde_json::from_value(json!({"command":"delete","resource":"m","id":"a"})).unwrap();
        e.handle(Millis(T0), Input::Command { tag, command })
            .unwrap();
    }
    let acts: Vec<Action> = e.drain_actions().collect();
    assert!(matches!(acts[0], Action::Call { .. }), "{acts:?}");
    match &acts[1] {
        Action::CommandResult {
            tag: 2,
            result: Err(err),
        } => {
            assert_eq!(err.code, ErrorCode::Unavailable)
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn sent_frames_are_counted_by_type() {
    let mut r = seeded();
    r.send(1, json!({"type":"subscribe","resource":"users"}));
    r.send(1, json!({"type":"ping"}));
    r.send(1, json!({"type":"nope"}));
    r.cmd(1, json!({"command":"broadcast","message":{"hi":1}}))
        .1
        .unwrap();
    r.cmd(
        2,
        json!({"command":"insert","resource":"users","data":{"name":"x"}}),
    )
    .1
    .unwrap();
    let m = r.e.metrics();
    let by_type = &m.messages_sent_by_type;
    assert_eq!(by_type.get("connected"), Some(&3));
    assert_eq!(by_type.get("subscribed"), Some(&1));
    assert_eq!(by_type.get("pong"), Some(&1));
    assert_eq!(by_type.get("error"), Some(&1));
    assert_eq!(by_type.get("raw"), Some(&3));
    assert_eq!(by_type.get("event"), Some(&1));
    assert_eq!(by_type.values().sum::<u64>(), m.messages_sent);
}

#[test]
fn read_guards_decide_per_user_and_record_and_count_every_failed_recipient() {
    let mut r = R::new(json!({
        "docs": {"guards": {"read": "record.tenantId == user.tenantId"}},
        "notes": {"guards": {"read": "user.role == 'admin' ? true : {'tenantId': user.tenantId}"}}
    }));
    r.open(1, "key_admin"); // t1
    r.open(2, "key_u1"); // t1
    r.open(3, "key_u2"); // t2
    r.open(4, ""); // anonymous: `user.tenantId` is an error, which denies
    r.open(5, "key_u1"); // the same user as 2
    r.open(6, "");
    // Connections of the same user share one view of it.
    assert_eq!(r.e.user_views.len(), 3);
    assert!(Arc::ptr_eq(
        r.e.conns[1].user_view.as_ref().unwrap(),
        r.e.conns[4].user_view.as_ref().unwrap()
    ));
    for conn in 1..=6 {
        for res in ["docs", "notes"] {
            r.ask(conn, json!({"type":"subscribe","resource":res}));
        }
    }
    let got = |acts: &[Action]| -> Vec<(u64, Value)> {
        (1..=6)
            .flat_map(|c| {
                frames(acts, c)
                    .into_iter()
                    .filter(|f| f["type"] == "event")
                    .map(move |f| (c, f))
            })
            .collect()
    };
    let errors = r.e.metrics().guard_errors;
    let acts = r.send(
        1,
        json!({"type":"insert","resource":"docs","data":{"id":"d1","tenantId":"t1"}}),
    );
    let to: Vec<u64> = got(&acts).iter().map(|(c, _)| *c).collect();
    assert_eq!(to, vec![1, 2, 5]);
    assert_eq!(
        r.e.metrics().guard_errors,
        errors + 2,
        "one per anonymous recipient"
    );
    // Moving the row to t2: only t2 sees it, without its t1 state.
    let acts = r.send(
        1,
        json!({"type":"update","resource":"docs","id":"d1","data":{"tenantId":"t2"}}),
    );
    let ev = got(&acts);
    assert_eq!(ev.len(), 1, "{ev:?}");
    assert_eq!(ev[0].0, 3);
    assert_eq!(ev[0].1["data"]["$before"], Value::Null);
    assert_eq!(r.e.metrics().guard_errors, errors + 4);
    // A filter outcome is matched against each record: admins see everything, users
    // their tenant's rows, anonymous connections nothing (an error each).
    let acts = r.send(
        1,
        json!({"type":"insert","resource":"notes","data":{"id":"n1","tenantId":"t2"}}),
    );
    let to: Vec<u64> = got(&acts).iter().map(|(c, _)| *c).collect();
    assert_eq!(to, vec![1, 3]);
    assert_eq!(r.e.metrics().guard_errors, errors + 6);
    let acts = r.send(1, json!({"type":"delete","resource":"notes","id":"n1"}));
    let to: Vec<u64> = got(&acts).iter().map(|(c, _)| *c).collect();
    assert_eq!(
        to,
        vec![1, 3],
        "deletes are checked against the removed row"
    );
    // Views go with the last connection of their user.
    r.run(Input::Closed {
        conn: ConnId(5),
        code: None,
    });
    assert_eq!(r.e.user_views.len(), 3);
    r.run(Input::Closed {
        conn: ConnId(2),
        code: None,
    });
    assert_eq!(r.e.user_views.len(), 2);
}

#[test]
fn equal_numbers_written_differently_share_the_index_bucket() {
    // The subscription index keys numbers canonically; a filter value and a record value
    // that are equal as numbers must meet in the same bucket whatever their spelling.
    let mut r = R::new(json!({"m": {}}));
    r.open(1, "key_u1");
    r.open(2, "key_u1");
    r.open(3, "key_u1");
    let sub = |r: &mut R, conn, n: &str| {
        let text = format!(r#"{{"type":"subscribe","resource":"m","filter":{{"n":{n}}}}}"#);
        let acts = r.run(Input::Frame {
            conn: ConnId(conn),
            frame: InFrame::Text(&text),
        });
        assert_eq!(frames(&acts, conn)[0]["type"], "subscribed", "{acts:?}");
    };
    sub(&mut r, 1, "1e16");
    sub(&mut r, 2, "10000000000000000.0");
    sub(&mut r, 3, "9007199254740993");
    let text = r#"{"type":"insert","resource":"m","data":{"n":10000000000000000}}"#;
    let acts = r.run(Input::Frame {
        conn: ConnId(1),
        frame: InFrame::Text(text),
    });
    let events = |c| {
        frames(&acts, c)
            .into_iter()
            .filter(|f| f["type"] == "event")
            .count()
    };
    assert_eq!((events(1), events(2), events(3)), (1, 1, 0), "{acts:?}");
    // 2^53 + 1 is not 2^53 (no lossy f64 comparison).
    let text = r#"{"type":"insert","resource":"m","data":{"n":9007199254740992.0}}"#;
    let acts = r.run(Input::Frame {
        conn: ConnId(1),
        frame: InFrame::Text(text),
    });
    assert!(frames(&acts, 3).is_empty(), "{acts:?}");
}
