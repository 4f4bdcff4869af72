//! The WebSocket transport: everything between an upgraded socket and the engine actor.
//!
//! A small internal interface so the implementation can change without touching the
//! actor or the HTTP side:
//! - [`serve`] drives one upgraded connection (plain TCP or TLS) to its end: it reads
//!   into a buffer shared by every connection of the worker thread, decodes client
//!   frames ([`codec::Decoder`]) and sends them to the actor as [`Inbound`] messages,
//!   answers pings, and runs the closing handshake with the close codes RFC 6455 names.
//! - [`crate::outbound::Outbound`] is the write side: the actor queues frames encoded
//!   once ([`codec::encode_frame`]) and flushes every connection it touched at the end
//!   of its turn with one vectored write each.
//!
//! tokio-tungstenite is no longer on the connection path: its per-connection read
//! buffer and per-recipient message encoding dominated memory per idle connection and
//! CPU per delivery (issue 18; numbers in BENCHMARKS.md). No extensions are negotiated
//! (no permessage-deflate), as before.

mod conn;
mod stream;

use std::time::Duration;

// The frame codec is a module of its own ([`crate::codec`]: the outbound queues encode
// with it too) and [`Inbound`] a leaf ([`crate::inbound`]: the actor's mailbox carries
// it). Re-exported so their old paths keep working.
pub use crate::codec;
pub use crate::inbound::Inbound;
pub use conn::serve;
pub use stream::{unwrap, Stream};

/// How long a closing connection may take to flush its queue and exchange close
/// frames before the socket is dropped.
pub const CLOSE_GRACE: Duration = Duration::from_secs(3);
