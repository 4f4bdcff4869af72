//! RFC 6455 framing, server side, without I/O.
//!
//! Outbound frames are encoded once into shared [`Bytes`] (header and payload together),
//! so a fan-out writes the same bytes to every recipient. Inbound, the [`Decoder`] takes
//! whatever the socket returned, unmasks and reassembles client frames, and refuses what
//! the RFC forbids with the close code it names: 1002 for framing violations, 1007 for a
//! text message that is not UTF-8, 1009 (decided from the header, before the payload is
//! buffered) for a frame or message over the payload limit.
//!
//! A leaf module: the [`crate::transport`] decodes with it, the actor and the
//! [`crate::outbound`] queues encode with it.

use bytes::{BufMut, Bytes, BytesMut};

/// Continuation frame opcode.
pub const OP_CONTINUATION: u8 = 0x0;
/// Text frame opcode.
pub const OP_TEXT: u8 = 0x1;
/// Binary frame opcode.
pub const OP_BINARY: u8 = 0x2;
/// Close frame opcode.
pub const OP_CLOSE: u8 = 0x8;
/// Ping frame opcode.
pub const OP_PING: u8 = 0x9;
/// Pong frame opcode.
pub const OP_PONG: u8 = 0xA;

/// The largest header a server frame has (2 + 8 bytes; servers never mask).
pub const MAX_HEADER: usize = 10;

/// Write the header of an unmasked, final frame with `opcode` and a payload of `len` bytes.
pub fn put_header(out: &mut impl BufMut, opcode: u8, len: usize) {
    out.put_u8(0x80 | (opcode & 0x0f));
    if len < 126 {
        out.put_u8(len as u8);
    } else if let Ok(short) = u16::try_from(len) {
        out.put_u8(126);
        out.put_u16(short);
    } else {
        out.put_u8(127);
        out.put_u64(len as u64);
    }
}

/// One final, unmasked frame: header and payload in one buffer.
pub fn encode(opcode: u8, payload: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(MAX_HEADER + payload.len());
    put_header(&mut out, opcode, payload.len());
    out.extend_from_slice(payload);
    out.freeze()
}

/// An engine frame, encoded once (recipients share the bytes).
pub fn encode_frame(frame: &engine::Frame) -> Bytes {
    match frame {
        engine::Frame::Text(t) => encode(OP_TEXT, t.as_bytes()),
        engine::Frame::Binary(b) => encode(OP_BINARY, b),
    }
}

/// A close frame with `code` and `reason` (cut at a character boundary to fit the 125-byte
/// control payload).
pub fn encode_close(code: u16, reason: &str) -> Bytes {
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let mut payload = Vec::with_capacity(2 + end);
    payload.extend_from_slice(&code.to_be_bytes());
    payload.extend_from_slice(&reason.as_bytes()[..end]);
    encode(OP_CLOSE, &payload)
}

/// An empty ping.
pub fn ping() -> Bytes {
    Bytes::from_static(&[0x80 | OP_PING, 0])
}

/// What a client sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A complete text message (valid UTF-8).
    Text(String),
    /// A complete binary message.
    Binary(Vec<u8>),
    /// A ping with this payload (answer with a pong carrying it).
    Ping(Vec<u8>),
    /// A pong.
    Pong,
    /// A close frame: its code and reason, if it had a payload.
    Close(Option<(u16, String)>),
}

/// Why the client's input was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// A frame or message over the payload limit: its size (frame length, or the
    /// message's total so far).
    TooBig(usize),
    /// A framing violation (close 1002) with a reason for the close frame.
    Protocol(&'static str),
    /// A text message or close reason that is not UTF-8 (close 1007).
    InvalidUtf8,
}

impl DecodeError {
    /// The close code RFC 6455 names for this error.
    pub fn close_code(self) -> u16 {
        match self {
            DecodeError::TooBig(_) => engine::close::MESSAGE_TOO_BIG,
            DecodeError::Protocol(_) => engine::close::PROTOCOL_ERROR,
            DecodeError::InvalidUtf8 => engine::close::INVALID_PAYLOAD,
        }
    }

    /// The reason to put in the close frame.
    pub fn reason(self) -> &'static str {
        match self {
            DecodeError::TooBig(_) => "message too big",
            DecodeError::Protocol(r) => r,
            DecodeError::InvalidUtf8 => "invalid UTF-8 in a text frame",
        }
    }
}

/// Whether a received close code may appear on the wire (RFC 6455 §7.4).
pub fn close_code_allowed(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

/// Reassembles client frames. Holds nothing between messages unless a frame arrived in
/// pieces (then only that frame's bytes) or a message is fragmented.
#[derive(Debug, Default)]
pub struct Decoder {
    max_payload: usize,
    /// Bytes of a frame that has not fully arrived.
    pending: Vec<u8>,
    /// A fragmented message: whether it is text, and its payload so far.
    message: Option<(bool, Vec<u8>)>,
}

/// A parsed frame header.
struct Header {
    fin: bool,
    opcode: u8,
    mask: [u8; 4],
    header_len: usize,
    len: usize,
}

impl Decoder {
    /// A decoder refusing frames and messages over `max_payload` bytes.
    pub fn new(max_payload: usize) -> Self {
        Self {
            max_payload,
            pending: Vec::new(),
            message: None,
        }
    }

    /// Whether a frame or message is partly received.
    pub fn is_idle(&self) -> bool {
        self.pending.is_empty() && self.message.is_none()
    }

    /// Decode what `chunk` completes: events go to `events` in order. On an error the
    /// events before it are still in `events`; the connection must then be closed.
    pub fn feed(&mut self, chunk: &[u8], events: &mut Vec<Event>) -> Result<(), DecodeError> {
        if self.pending.is_empty() {
            let used = self.decode_all(chunk, events)?;
            if used < chunk.len() {
                self.pending.extend_from_slice(&chunk[used..]);
            }
        } else {
            let mut pending = std::mem::take(&mut self.pending);
            pending.extend_from_slice(chunk);
            let used = self.decode_all(&pending, events)?;
            pending.drain(..used);
            self.pending = pending;
        }
        if self.pending.is_empty() && self.pending.capacity() > 0 {
            // An idle connection keeps no buffer.
            self.pending = Vec::new();
        }
        Ok(())
    }

    /// Decode every complete frame at the start of `buf`; returns the bytes used.
    fn decode_all(&mut self, buf: &[u8], events: &mut Vec<Event>) -> Result<usize, DecodeError> {
        let mut at = 0;
        while let Some(header) = self.header(&buf[at..])? {
            let start = at + header.header_len;
            if buf.len() - start < header.len {
                break;
            }
            let mut payload = buf[start..start + header.len].to_vec();
            unmask(&mut payload, header.mask);
            at = start + header.len;
            if let Some(event) = self.frame(header.fin, header.opcode, payload)? {
                events.push(event);
            }
        }
        Ok(at)
    }

    /// Parse and check the header at the start of `buf` (`None`: not all there yet).
    fn header(&self, buf: &[u8]) -> Result<Option<Header>, DecodeError> {
        let [b0, b1, ..] = *buf else { return Ok(None) };
        let fin = b0 & 0x80 != 0;
        let opcode = b0 & 0x0f;
        if b0 & 0x70 != 0 {
            return Err(DecodeError::Protocol(
                "reserved bits set without a negotiated extension",
            ));
        }
        let control = opcode & 0x08 != 0;
        if !matches!(
            opcode,
            OP_CONTINUATION | OP_TEXT | OP_BINARY | OP_CLOSE | OP_PING | OP_PONG
        ) {
            return Err(DecodeError::Protocol("unknown opcode"));
        }
        if b1 & 0x80 == 0 {
            return Err(DecodeError::Protocol("client frames must be masked"));
        }
        let (len, mut header_len) = match b1 & 0x7f {
            126 => match buf.get(2..4) {
                Some(b) => (u64::from(u16::from_be_bytes([b[0], b[1]])), 4),
                None => return Ok(None),
            },
            127 => match buf.get(2..10) {
                Some(b) => {
                    let mut n = [0u8; 8];
                    n.copy_from_slice(b);
                    let len = u64::from_be_bytes(n);
                    if len >> 63 != 0 {
                        return Err(DecodeError::Protocol("frame length with the top bit set"));
                    }
                    (len, 10)
                }
                None => return Ok(None),
            },
            n => (u64::from(n), 2),
        };
        if control {
            if !fin {
                return Err(DecodeError::Protocol("fragmented control frame"));
            }
            if len > 125 {
                return Err(DecodeError::Protocol(
                    "control frame payload over 125 bytes",
                ));
            }
        } else {
            match (opcode, &self.message) {
                (OP_CONTINUATION, None) => {
                    return Err(DecodeError::Protocol(
                        "bad fragmentation: continuation without a start",
                    ))
                }
                (OP_TEXT | OP_BINARY, Some(_)) => {
                    return Err(DecodeError::Protocol(
                        "bad fragmentation: new message before the last one ended",
                    ))
                }
                _ => {}
            }
            let so_far = self.message.as_ref().map_or(0, |(_, m)| m.len());
            let total = usize::try_from(len)
                .unwrap_or(usize::MAX)
                .saturating_add(so_far);
            if total > self.max_payload {
                return Err(DecodeError::TooBig(total));
            }
        }
        let Some(mask) = buf.get(header_len..header_len + 4) else {
            return Ok(None);
        };
        let mask = [mask[0], mask[1], mask[2], mask[3]];
        header_len += 4;
        Ok(Some(Header {
            fin,
            opcode,
            mask,
            header_len,
            // Checked above: data frames fit the payload limit, control frames 125 bytes.
            len: usize::try_from(len).unwrap_or(usize::MAX),
        }))
    }

    /// One complete (unmasked) frame; returns the event it completes, if any.
    fn frame(
        &mut self,
        fin: bool,
        opcode: u8,
        payload: Vec<u8>,
    ) -> Result<Option<Event>, DecodeError> {
        match opcode {
            OP_PING => Ok(Some(Event::Ping(payload))),
            OP_PONG => Ok(Some(Event::Pong)),
            OP_CLOSE => close_event(&payload).map(Some),
            OP_TEXT | OP_BINARY if fin => message_event(opcode == OP_TEXT, payload).map(Some),
            OP_TEXT | OP_BINARY => {
                self.message = Some((opcode == OP_TEXT, payload));
                Ok(None)
            }
            _ => {
                // Continuation: `header` checked that a message is open.
                let Some((text, mut so_far)) = self.message.take() else {
                    return Err(DecodeError::Protocol(
                        "bad fragmentation: continuation without a start",
                    ));
                };
                so_far.extend_from_slice(&payload);
                if fin {
                    message_event(text, so_far).map(Some)
                } else {
                    self.message = Some((text, so_far));
                    Ok(None)
                }
            }
        }
    }
}

fn message_event(text: bool, payload: Vec<u8>) -> Result<Event, DecodeError> {
    if text {
        String::from_utf8(payload)
            .map(Event::Text)
            .map_err(|_| DecodeError::InvalidUtf8)
    } else {
        Ok(Event::Binary(payload))
    }
}

fn close_event(payload: &[u8]) -> Result<Event, DecodeError> {
    match payload {
        [] => Ok(Event::Close(None)),
        [_] => Err(DecodeError::Protocol(
            "invalid close frame: one-byte payload",
        )),
        [hi, lo, reason @ ..] => {
            let code = u16::from_be_bytes([*hi, *lo]);
            if !close_code_allowed(code) {
                return Err(DecodeError::Protocol(
                    "invalid close frame: code not allowed",
                ));
            }
            let reason = std::str::from_utf8(reason).map_err(|_| DecodeError::InvalidUtf8)?;
            Ok(Event::Close(Some((code, reason.to_string()))))
        }
    }
}

/// XOR `payload` with the client's masking key (RFC 6455 §5.3).
pub fn unmask(payload: &mut [u8], mask: [u8; 4]) {
    let word = u32::from_ne_bytes(mask);
    let mut chunks = payload.chunks_exact_mut(4);
    for c in &mut chunks {
        let v = u32::from_ne_bytes([c[0], c[1], c[2], c[3]]) ^ word;
        c.copy_from_slice(&v.to_ne_bytes());
    }
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= mask[i];
    }
}

#[cfg(test)]
#[path = "codec_tests.rs"]
mod tests;
