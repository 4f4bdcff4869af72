//! Behaviour tests of the engine through its public inputs and actions.

use serde_json::{json, Value};

use super::*;
use crate::config::ChangeKind;
use crate::error::close;
use crate::hostcall::{StoreError, StoreErrorKind, StoreOutcome, StoreRequest};
use crate::testing::{close_of, frames, rejection, request, Harness, T0};

mod determinism;
mod frames;
mod heartbeat;
mod host_calls;
mod messaging;
mod server_api;
mod snapshot;
mod subscriptions;
mod upgrade;

/// The shared harness ([`crate::testing`]): calls come back to the test.
type H = Harness;

fn req(path: &str, query: &str, headers: &[(&str, &str)], client: &str) -> UpgradeRequest {
    request(path, query, headers, "10.0.0.1", client)
}

impl Harness {
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

fn insert_cmd(resource: &str, record: Value) -> Command {
    Command::ResourceChanged {
        resource: resource.into(),
        event: ChangeKind::Insert,
        record,
        previous: None,
    }
}
