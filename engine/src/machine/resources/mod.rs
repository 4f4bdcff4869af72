//! Resources: access checks, validation, guards (CEL and host callbacks), CRUD as host
//! calls, their completions, and change events fanned out to subscribers.
//!
//! Every resource request runs the same pipeline ([`ResourceOp`]): access (configured,
//! roles) → validation → fetch the stored record if a guard needs it → CEL guard →
//! host guard → forced-filter checks → execute (register the subscription or call the
//! store). Completions resume the pipeline; `read` guards and protected-field stripping
//! apply to every record that leaves: replies and events alike.

mod access;
mod compile;
mod completion;
mod crud;
mod fanout;
mod pipeline;
mod server_writes;
mod visibility;

use serde_json::Value;

use crate::filter::Filter;
use crate::hostcall::StoreRequest;

pub(crate) use fanout::event_data;
pub(crate) use pipeline::ResourceOp;

type Rid = Option<Value>;

/// What to do when a host call completes.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Continuation {
    /// A storage operation: answer the client and fan out the change.
    Store {
        /// What was asked.
        request: StoreRequest,
        /// A forced filter the record must match (get), parsed.
        forced: Option<Filter>,
    },
    /// The stored record was fetched for a guard; resume the pipeline.
    Prefetch(Box<ResourceOp>),
    /// The host guard answered; resume the pipeline.
    HostGuard(Box<ResourceOp>),
    /// An application handler, hook or interceptor answered (see `super::handlers`).
    Handler(super::handlers::HandlerThen),
}

/// At most 128 bytes of `s`, for messages.
pub(crate) fn clip(s: &str) -> String {
    if s.len() <= 128 {
        return s.to_string();
    }
    let mut end = 128;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}
