//! What the engine remembers about a host call in flight, and the op-id counter. The
//! calls themselves are wire types ([`crate::hostcall`]).

use serde_json::Value;

use super::Continuation;
use crate::types::{ConnId, Millis, OpId};

/// What the engine remembers about a call in flight.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PendingCall {
    /// The connection that asked (None for server-initiated calls).
    pub conn: Option<ConnId>,
    /// Its client id: connection ids may be reused, client ids are not.
    pub client_id: String,
    /// The request id to echo.
    pub request_id: Option<Value>,
    /// Deadline.
    pub deadline: Millis,
    /// What was asked and how to continue when the answer arrives.
    pub then: Continuation,
    /// For calls made by a server-API command: the command's tag (its result goes to
    /// [`crate::Action::CommandResult`], not to a connection).
    pub command: Option<u64>,
}

/// Allocates op ids from a counter, so transcripts are stable.
#[derive(Debug, Clone, Default)]
pub(in crate::machine) struct OpCounter(u64);

impl OpCounter {
    pub fn next(&mut self) -> OpId {
        self.0 += 1;
        OpId(self.0)
    }
}
