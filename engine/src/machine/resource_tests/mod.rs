//! Resource tests: CRUD over a real (memory) store, guards per action and outcome,
//! protected fields, and regressions for the s3db.js bugs B3–B7.

use serde_json::{json, Value};

use super::*;
use crate::hostcall::{GuardDecision, StoreErrorKind};
use crate::store::RecordStore;
use crate::testing::{calls, frames, request, Harness, T0};

mod crud;
mod events;
mod guards;
mod server_writes;

/// The shared harness ([`crate::testing`]) answering storage calls from its
/// MemoryStore and guard calls with `guard` (recorded in `guard_calls`).
struct R(Harness);

crate::deref_harness!(R);

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
        let mut h = Harness::with_seed(cfg, 1);
        h.answer_calls = true;
        R(h)
    }

    /// Feed an input, answer host calls until none are left, return all actions.
    fn run(&mut self, input: Input<'_>) -> Vec<Action> {
        self.input(input)
    }

    fn open(&mut self, conn: u64, key: &str) {
        let query = if key.is_empty() {
            String::new()
        } else {
            format!("token={key}")
        };
        let acts = self.open_req(
            conn,
            request("/", &query, &[], "127.0.0.1", &format!("c{conn}")),
        );
        assert!(matches!(acts[0], Action::Accept { .. }), "{acts:?}");
    }

    fn ask(&mut self, conn: u64, msg: Value) -> Value {
        let acts = self.send(conn, msg);
        frames(&acts, conn).pop().expect("an answer")
    }

    fn seed(&mut self, resource: &str, records: Vec<Value>) {
        self.store.seed(resource, records);
    }
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
