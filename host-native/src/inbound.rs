//! [`Inbound`]: a complete message from a client, as the transport hands it to the
//! actor. A leaf module shared by [`crate::transport`] (which decodes it),
//! [`crate::mailbox`] (which carries it) and [`crate::actor`] (which feeds it to the
//! engine).

/// A complete message from a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inbound {
    /// A text message (valid UTF-8).
    Text(String),
    /// A binary message.
    Binary(Vec<u8>),
}
