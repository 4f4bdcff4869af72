//! The Socket.IO state a connection carries (namespaces, a binary packet waiting for its
//! attachments, acknowledgements the server waits for): plain data, so that
//! [`crate::connection`] can hold it without depending on the engine that drives it
//! (`machine/socketio.rs`, `machine/sio_acks.rs`).

use crate::protocol::socketio::SioPacket;
use crate::types::Millis;

/// Socket.IO state of one connection.
#[derive(Debug, Clone, Default)]
pub(crate) struct SioSession {
    /// Namespaces the client is connected to, in connect order.
    pub namespaces: Vec<String>,
    /// A binary packet waiting for its attachments.
    pub pending: Option<(SioPacket, Vec<Vec<u8>>)>,
    /// Acknowledgements the server asked for and still waits for.
    pub acks: PendingAcks,
}

/// One acknowledgement the server waits for.
#[derive(Debug, Clone)]
pub(crate) struct PendingAck {
    /// The Socket.IO ack id (unique on the connection).
    pub(crate) id: u64,
    /// The namespace the event went to (acks come back on it).
    pub(crate) nsp: String,
    /// The command's tag (its result is the ack).
    pub(crate) tag: u64,
    /// The event's name (for error messages).
    pub(crate) event: String,
    /// When it times out.
    pub(crate) deadline: Millis,
    /// The wait asked for (for error messages).
    pub(crate) timeout_ms: u64,
}

/// The acknowledgements a connection owes the server.
#[derive(Debug, Clone, Default)]
pub(crate) struct PendingAcks {
    pub(crate) next_id: u64,
    pub(crate) pending: Vec<PendingAck>,
}
