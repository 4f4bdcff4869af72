//! Socket.IO acknowledgements requested by the server ([`Command::EmitWithAck`]): the
//! engine gives the event an ack id of the connection (`2<id>["event", ...]`), keeps
//! the pending ack with a deadline on the engine's timers, and answers the command
//! when the client acknowledges (`3<id>[...]`, or the binary ack `6`), when the
//! deadline passes (`TIMEOUT`), or when the client leaves the namespace or disconnects
//! first (`NOT_FOUND`). An ack that matches nothing pending is ignored and counted
//! (`sioUnknownAcks`), as the reference server ignores a "bad ack".
//!
//! [`Command::EmitWithAck`]: super::Command::EmitWithAck

use serde_json::{json, Value};

use super::server_api::{err, CommandError};
use super::{Action, Engine};
use crate::config::CodecKind;
use crate::error::ErrorCode;
use crate::protocol::socketio::{gather, packet_frames, spread, SioPacket};
use crate::sio_session::PendingAck;
use crate::timers::TimerKey;
use crate::types::{ConnId, Millis};

/// At most this many acknowledgements pending on one connection (`LIMIT_EXCEEDED`).
pub(crate) const MAX_PENDING_ACKS: usize = 256;

/// The longest wait an `emitWithAck` may ask for (one hour).
const MAX_ACK_TIMEOUT_MS: u64 = 3_600_000;

/// An `emitWithAck` command, unpacked.
#[derive(Debug)]
pub(super) struct Ask {
    /// The command's tag.
    pub tag: u64,
    /// The client asked.
    pub client_id: String,
    /// Event name.
    pub event: String,
    /// The event's argument(s).
    pub data: Option<Value>,
    /// Namespace.
    pub nsp: String,
    /// The wait asked for (None: the host-call timeout).
    pub timeout_ms: Option<u64>,
}

impl Engine {
    /// Emit an event asking the client for an ack; the command is answered later (Ok)
    /// or now (Err).
    pub(super) fn sio_emit_with_ack(&mut self, now: Millis, ask: Ask) -> Result<(), CommandError> {
        if ask.event.is_empty() {
            return Err(err(ErrorCode::InvalidMessage, "`event` must not be empty"));
        }
        let timeout_ms = ask
            .timeout_ms
            .unwrap_or(self.config.limits.host_call_timeout_ms);
        if timeout_ms == 0 || timeout_ms > MAX_ACK_TIMEOUT_MS {
            return Err(err(
                ErrorCode::InvalidMessage,
                format!("`timeoutMs` must be between 1 and {MAX_ACK_TIMEOUT_MS}"),
            ));
        }
        let slot = self
            .by_client
            .get(&self.conns, &ask.client_id)
            .filter(|s| !self.conns[*s].closing)
            .ok_or_else(|| {
                err(
                    ErrorCode::NotFound,
                    format!("no connected client `{}`", ask.client_id),
                )
            })?;
        if self.conns[slot].state.codec != CodecKind::SocketIo {
            return Err(err(
                ErrorCode::InvalidMessage,
                format!("client `{}` does not speak Socket.IO", ask.client_id),
            ));
        }
        if !self.sio_connected(slot, &ask.nsp) {
            return Err(err(
                ErrorCode::NotFound,
                format!(
                    "client `{}` is not connected to namespace `{}`",
                    ask.client_id, ask.nsp
                ),
            ));
        }
        let conn = self.conns[slot].id;
        let deadline = now.plus(timeout_ms);
        let Some(session) = self.conns[slot].sio.as_mut() else {
            return Err(err(ErrorCode::InternalError, "no Socket.IO session"));
        };
        if session.acks.pending.len() >= MAX_PENDING_ACKS {
            return Err(err(
                ErrorCode::LimitExceeded,
                format!(
                    "client `{}` already owes {MAX_PENDING_ACKS} acknowledgements",
                    ask.client_id
                ),
            ));
        }
        let id = session.acks.next_id;
        session.acks.next_id += 1;
        session.acks.pending.push(PendingAck {
            id,
            nsp: ask.nsp.clone(),
            tag: ask.tag,
            event: ask.event.clone(),
            deadline,
            timeout_ms,
        });
        self.timers
            .reschedule(TimerKey::SioAck(conn, id), None, Some(deadline));
        let args = ask.data.map(spread).unwrap_or_default();
        let frames = packet_frames(&ask.nsp, Some(id), Some(&ask.event), args);
        self.metrics.sio_acks_requested += 1;
        self.metrics.sent("sio:emitWithAck", 1);
        self.sio_send(slot, frames);
        Ok(())
    }

    /// An `ACK` (or binary ack) packet from the client.
    pub(super) fn sio_ack(&mut self, slot: usize, p: SioPacket) {
        let conn = self.conns[slot].id;
        let client_id = self.conns[slot].state.client_id.clone();
        let found = self.conns[slot].sio.as_mut().and_then(|s| {
            let i = s
                .acks
                .pending
                .iter()
                .position(|a| Some(a.id) == p.ack && a.nsp == p.nsp)?;
            Some(s.acks.pending.remove(i))
        });
        let Some(ack) = found else {
            self.metrics.sio_unknown_acks += 1;
            return;
        };
        self.timers
            .reschedule(TimerKey::SioAck(conn, ack.id), Some(ack.deadline), None);
        self.metrics.sio_acks_received += 1;
        let args = match p.payload {
            Some(Value::Array(a)) => a,
            _ => Vec::new(),
        };
        let result = Ok(json!({"clientId": client_id, "data": gather(args)}));
        self.actions.push_back(Action::CommandResult {
            tag: ack.tag,
            result,
        });
    }

    /// An ack's deadline passed.
    pub(super) fn sio_ack_timed_out(&mut self, conn: ConnId, id: u64) {
        let Some(&slot) = self.by_conn.get(&conn) else {
            return;
        };
        let client_id = self.conns[slot].state.client_id.clone();
        let found = self.conns[slot].sio.as_mut().and_then(|s| {
            let i = s.acks.pending.iter().position(|a| a.id == id)?;
            Some(s.acks.pending.remove(i))
        });
        let Some(ack) = found else {
            return;
        };
        self.metrics.sio_ack_timeouts += 1;
        self.metrics.error(ErrorCode::Timeout);
        let message = format!(
            "client `{client_id}` did not acknowledge `{}` within {} ms",
            ack.event, ack.timeout_ms
        );
        self.actions.push_back(Action::CommandResult {
            tag: ack.tag,
            result: Err(err(ErrorCode::Timeout, message)),
        });
    }

    /// Fail the acks pending on a connection (`nsp` None: all of them, as it goes
    /// away; else those of a namespace the client left).
    pub(super) fn sio_fail_acks(&mut self, slot: usize, nsp: Option<&str>) {
        let conn = self.conns[slot].id;
        let client_id = self.conns[slot].state.client_id.clone();
        let Some(s) = self.conns[slot].sio.as_mut() else {
            return;
        };
        if s.acks.pending.is_empty() {
            return;
        }
        let (failed, kept): (Vec<PendingAck>, Vec<PendingAck>) =
            std::mem::take(&mut s.acks.pending)
                .into_iter()
                .partition(|a| nsp.is_none_or(|n| a.nsp == n));
        s.acks.pending = kept;
        for ack in failed {
            self.timers
                .reschedule(TimerKey::SioAck(conn, ack.id), Some(ack.deadline), None);
            let message = match nsp {
                None => format!(
                    "client `{client_id}` disconnected before acknowledging `{}`",
                    ack.event
                ),
                Some(n) => format!(
                    "client `{client_id}` left namespace `{n}` before acknowledging `{}`",
                    ack.event
                ),
            };
            self.actions.push_back(Action::CommandResult {
                tag: ack.tag,
                result: Err(err(ErrorCode::NotFound, message)),
            });
        }
    }
}
