//! Behaviour tests of the engine through its public inputs and actions.

use serde_json::{json, Value};

use super::*;
use crate::config::ChangeKind;
use crate::error::close;
use crate::hostcall::{StoreError, StoreErrorKind, StoreOutcome, StoreRequest};

mod determinism;
mod frames;
mod heartbeat;
mod host_calls;
mod messaging;
mod server_api;
mod snapshot;
mod subscriptions;
mod upgrade;

const T0: u64 = 1_700_000_000_000;

struct H {
    e: Engine,
    now: u64,
}

fn req(path: &str, query: &str, headers: &[(&str, &str)], client: &str) -> UpgradeRequest {
    UpgradeRequest {
        path: path.into(),
        query: query.into(),
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        peer: "10.0.0.1".into(),
        client_id: client.into(),
    }
}

impl H {
    fn new(cfg: Value) -> H {
        let config = Config::from_value(cfg).expect("valid test config");
        H {
            e: Engine::with_seed(config, 7).unwrap(),
            now: T0,
        }
    }

    fn default_cfg() -> Value {
        json!({
            "auth": {"apiKeys": {
                "key_admin": {"id": "admin1", "role": "admin"},
                "key_user": {"id": "u1", "role": "user", "scopes": ["read"]}
            }},
            "resources": {
                "messages": {},
                "users": {"protected": ["password"], "auth": ["admin", "user"]},
                "notifications": {"events": ["insert"]}
            },
            "rooms": {"overrides": {"duo": {"maxConnections": 2}}}
        })
    }

    fn std() -> H {
        H::new(Self::default_cfg())
    }

    fn input(&mut self, input: Input<'_>) -> Vec<Action> {
        self.e.handle(Millis(self.now), input).unwrap();
        let out: Vec<Action> = self.e.drain_actions().collect();
        self.e.check_invariants().unwrap();
        out
    }

    fn open_req(&mut self, conn: u64, r: UpgradeRequest) -> Vec<Action> {
        self.input(Input::Open {
            conn: ConnId(conn),
            request: r,
        })
    }

    /// Open and assert accepted; returns the welcome frame.
    fn open(&mut self, conn: u64, query: &str) -> Value {
        let acts = self.open_req(conn, req("/", query, &[], &format!("c{conn}")));
        assert!(
            matches!(acts[0], Action::Accept { .. }),
            "expected accept, got {acts:?}"
        );
        frames_for(&acts, conn).remove(0)
    }

    fn send(&mut self, conn: u64, msg: Value) -> Vec<Action> {
        let text = msg.to_string();
        self.input(Input::Frame {
            conn: ConnId(conn),
            frame: InFrame::Text(&text),
        })
    }

    /// Send and return the frames the sender got.
    fn ask(&mut self, conn: u64, msg: Value) -> Vec<Value> {
        let acts = self.send(conn, msg);
        frames_for(&acts, conn)
    }

    fn cmd(&mut self, command: Command) -> (Result<Value, CommandError>, Vec<Action>) {
        let acts = self.input(Input::Command { tag: 9, command });
        let result = acts
            .iter()
            .find_map(|a| match a {
                Action::CommandResult { tag: 9, result } => Some(result.clone()),
                _ => None,
            })
            .expect("command result");
        (result, acts)
    }

    fn advance_to(&mut self, t: u64) -> Vec<Action> {
        self.now = t;
        self.input(Input::Timeout)
    }
}

/// Frames sent to `conn` (directly or via SendMany), parsed.
fn frames_for(actions: &[Action], conn: u64) -> Vec<Value> {
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

fn rejection(actions: &[Action]) -> (u16, Value) {
    match &actions[0] {
        Action::Reject { status, body, .. } => (*status, serde_json::from_str(body).unwrap()),
        other => panic!("expected rejection, got {other:?}"),
    }
}

fn call_of(actions: &[Action]) -> (OpId, StoreRequest) {
    actions
        .iter()
        .find_map(|a| match a {
            Action::Call {
                op,
                request: HostRequest::Store(r),
                ..
            } => Some((*op, r.clone())),
            _ => None,
        })
        .expect("a host call")
}

fn close_of(actions: &[Action], conn: u64) -> Option<(u16, String)> {
    actions.iter().find_map(|a| match a {
        Action::Close {
            conn: c,
            code,
            reason,
        } if c.0 == conn => Some((*code, reason.clone())),
        _ => None,
    })
}

fn insert_cmd(resource: &str, record: Value) -> Command {
    Command::ResourceChanged {
        resource: resource.into(),
        event: ChangeKind::Insert,
        record,
        previous: None,
    }
}
