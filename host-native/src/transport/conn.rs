//! The task of one upgraded connection: reads and decodes client frames, hands them to
//! the actor, drives writes the actor could not finish, and closes.

use std::cell::RefCell;
use std::future::poll_fn;
use std::sync::Arc;
use std::task::{Context, Poll};

use engine::ConnId;
use tokio::io::ReadBuf;

use super::{Stream, CLOSE_GRACE};
use crate::codec::{self, DecodeError, Decoder, Event};
use crate::inbound::Inbound;
use crate::mailbox::ToActor;
use crate::outbound::Outbound;
use crate::state::AppState;

thread_local! {
    /// The read buffer of every connection polled on this thread: an idle connection
    /// holds no read buffer at all (a frame that arrives in pieces keeps only its own
    /// bytes in its decoder until complete).
    static READ_BUF: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// How a connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// The client sent a close frame (with this code, if any): answer it.
    PeerClosed(Option<u16>),
    /// The stream ended or failed without a closing handshake.
    Lost,
    /// A frame or message exceeded `maxPayloadSize` (its size).
    TooBig(usize),
    /// The client broke the WebSocket protocol: close with this code and reason.
    Violation(u16, &'static str),
    /// The engine closed it: the rest of the queue and the close frame go out.
    Server,
    /// The server is going away without ceremony (actor gone, hard stop).
    Abort,
}

/// What one read produced.
enum Read {
    /// Bytes were decoded (events, if any, are in the events buffer).
    Data(Result<(), DecodeError>),
    /// End of stream or a read error.
    Eof,
}

/// Drive one upgraded connection to its end, then report `Closed` to the actor.
pub async fn serve(state: Arc<AppState>, conn: ConnId, io: Stream, out: Arc<Outbound>) {
    state.metrics.sockets_open.inc();
    let mut decoder = Decoder::new(state.ws.max_payload);
    let drained = out.attach(io);
    let end = match report_drained(&state, conn, drained).await {
        Some(end) => end,
        None => drive(&state, conn, &out, &mut decoder).await,
    };
    if end != End::Server {
        out.end();
    }
    // Boxed: the closing handshake is a rare path; keep it out of the task's size.
    Box::pin(finish(&state, conn, end, &out, &mut decoder)).await;
    out.detach();
    state.metrics.sockets_open.dec();
}

/// Report the end to the actor (ignored when the engine closed the connection itself).
/// Sent before the last frames go out, so a client that saw the close frame can count
/// on the engine knowing the connection is gone.
async fn report_closed(state: &AppState, conn: ConnId, code: Option<u16>) {
    let _ = state.actor.send(ToActor::Closed { conn, code }).await;
}

async fn drive(state: &AppState, conn: ConnId, out: &Outbound, decoder: &mut Decoder) -> End {
    let read_size = state.ws.read_buffer;
    let mut events = Vec::new();
    loop {
        if out.closing() {
            return End::Server;
        }
        if out.failed() {
            return End::Lost;
        }
        let blocked = out.blocked();
        // A spaced queue written too recently waits (reading meanwhile).
        let wait = if blocked { out.next_write_at() } else { None };
        tokio::select! {
            biased;
            () = state.hard_stop.cancelled() => return End::Abort,
            () = sleep_until(wait), if wait.is_some() => {}
            r = poll_fn(|cx| out.poll_write_queue(cx)), if blocked && wait.is_none() => {
                if r.is_err() {
                    return End::Lost;
                }
                if let Some(end) = report_drained(state, conn, out.take_drained()).await {
                    return end;
                }
            }
            r = poll_fn(|cx| poll_read_events(cx, out, decoder, &mut events, read_size)) => {
                let decoded = match r {
                    Read::Eof => return End::Lost,
                    Read::Data(d) => d,
                };
                out.heard_from_client();
                if let Some(end) = deliver(state, conn, out, &mut events).await {
                    return end;
                }
                match decoded {
                    Ok(()) => {}
                    Err(DecodeError::TooBig(size)) => return End::TooBig(size),
                    Err(e) => return End::Violation(e.close_code(), e.reason()),
                }
            }
            () = out.changed() => {}
        }
    }
}

/// Sleep until `at` (`None`: never resolves; the branch is disabled then). The timer
/// is boxed: only a spaced queue (Engine.IO) waits, and tokio's `Sleep` (~130 bytes)
/// would otherwise sit in every connection's task.
async fn sleep_until(at: Option<std::time::Instant>) {
    match at {
        Some(at) => Box::pin(tokio::time::sleep_until(at.into())).await,
        None => std::future::pending().await,
    }
}

/// Hand decoded events to the actor (pings are answered here); `Some` when the
/// connection ends.
async fn deliver(
    state: &AppState,
    conn: ConnId,
    out: &Outbound,
    events: &mut Vec<Event>,
) -> Option<End> {
    let mut pong = false;
    let mut end = None;
    // Taken: an idle connection keeps no event buffer.
    for event in std::mem::take(events) {
        let msg = match event {
            Event::Text(t) => ToActor::Frame {
                conn,
                message: Inbound::Text(t),
            },
            Event::Binary(b) => ToActor::Frame {
                conn,
                message: Inbound::Binary(b),
            },
            Event::Pong => ToActor::Pong { conn },
            Event::Ping(payload) => {
                out.push_control(codec::encode(codec::OP_PONG, &payload));
                pong = true;
                continue;
            }
            Event::Close(frame) => {
                end = Some(End::PeerClosed(frame.map(|(code, _)| code)));
                break;
            }
        };
        if state.actor.send(msg).await.is_err() {
            end = Some(End::Abort);
            break;
        }
    }
    if pong {
        let drained = out.flush_now();
        if end.is_none() {
            end = report_drained(state, conn, drained).await;
        }
    }
    end
}

/// Tell the actor that the connection drained back under its limit (from a write the
/// task made); `Some` when the actor is gone.
async fn report_drained(state: &AppState, conn: ConnId, drained: Option<u64>) -> Option<End> {
    let buffered = drained?;
    let sent = state.actor.send(ToActor::Drained { conn, buffered }).await;
    sent.is_err().then_some(End::Abort)
}

/// One read into the thread's shared buffer, decoded right away.
fn poll_read_events(
    cx: &mut Context<'_>,
    out: &Outbound,
    decoder: &mut Decoder,
    events: &mut Vec<Event>,
    size: usize,
) -> Poll<Read> {
    poll_read_shared(cx, out, size, |read| match read {
        Ok(bytes) if !bytes.is_empty() => Read::Data(decoder.feed(bytes, events)),
        _ => Read::Eof,
    })
}

/// One read of up to `size` bytes into the thread's shared buffer; `f` gets the bytes
/// read (none at the end of the stream) or the error.
fn poll_read_shared<R>(
    cx: &mut Context<'_>,
    out: &Outbound,
    size: usize,
    f: impl FnOnce(std::io::Result<&[u8]>) -> R,
) -> Poll<R> {
    READ_BUF.with(|cell| {
        let mut buf = cell.borrow_mut();
        if buf.len() < size {
            buf.resize(size, 0);
        }
        let mut rb = ReadBuf::new(&mut buf[..]);
        match out.poll_read(cx, &mut rb) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(read) => Poll::Ready(f(read.map(|()| rb.filled()))),
        }
    })
}

/// Write what is queued, within CLOSE_GRACE (or until the hard stop).
async fn drain(state: &AppState, out: &Outbound) {
    let _ = tokio::time::timeout(CLOSE_GRACE, async {
        tokio::select! {
            _ = out.write_all() => {}
            () = state.hard_stop.cancelled() => {}
        }
    })
    .await;
}

/// After the client's input was refused mid-stream (a frame over the limit, a framing
/// violation): read and drop whatever it still sends, until it closes the stream, goes
/// quiet for [`LINGER_QUIET`], or [`DISCARD_LIMIT`] passes. A socket closed with unread
/// input makes the kernel answer with a TCP reset, and a client still writing the
/// refused frame would then see "connection reset" instead of the error and close frames
/// already sent to it. The engine was told of the close before: the socket alone
/// lingers, at most [`DISCARD_LIMIT`].
async fn discard_input(state: &AppState, out: &Outbound) {
    let size = state.ws.read_buffer;
    let _ = tokio::time::timeout(DISCARD_LIMIT, async {
        loop {
            let read =
                tokio::time::timeout(LINGER_QUIET, poll_fn(|cx| poll_discard(cx, out, size)));
            tokio::select! {
                r = read => match r {
                    Ok(n) if n > 0 => {}
                    // End of stream, an error, or nothing more for a while.
                    _ => break,
                },
                () = state.hard_stop.cancelled() => break,
            }
        }
    })
    .await;
}

/// How long [`discard_input`] waits for more input before it closes the socket. A client
/// that answers the close frame and waits for the server to close the TCP connection
/// (RFC 6455 §7.1.1) sees it closed this much later.
const LINGER_QUIET: std::time::Duration = std::time::Duration::from_millis(250);

/// The longest [`discard_input`] reads, however the client trickles.
const DISCARD_LIMIT: std::time::Duration = std::time::Duration::from_secs(1);

/// One read into the thread's shared buffer, dropped: the bytes read (0 at the end of
/// the stream or on an error).
fn poll_discard(cx: &mut Context<'_>, out: &Outbound, size: usize) -> Poll<usize> {
    poll_read_shared(cx, out, size, |read| read.map_or(0, <[u8]>::len))
}

/// The closing handshake for each way a connection can end, reporting `Closed` (with
/// the close code) to the actor.
async fn finish(state: &AppState, conn: ConnId, end: End, out: &Outbound, decoder: &mut Decoder) {
    match end {
        End::PeerClosed(code) => {
            // Echo the client's code (RFC 6455 §5.5.1); an empty close gets an empty one.
            let reply = match code {
                Some(c) => codec::encode_close(c, ""),
                None => codec::encode(codec::OP_CLOSE, &[]),
            };
            out.push_final(reply);
            report_closed(state, conn, code).await;
            drain(state, out).await;
        }
        End::Lost | End::Abort => report_closed(state, conn, None).await,
        End::TooBig(size) => {
            state.metrics.oversize_closes.inc();
            // The engine words the error frame; the transport already refused the bytes.
            let (reply, answer) = tokio::sync::oneshot::channel();
            let asked = ToActor::Oversize {
                conn,
                size: Some(size),
                reply,
            };
            if state.actor.send(asked).await.is_ok() {
                if let Ok(Some(frame)) = answer.await {
                    out.push_final(codec::encode_frame(&frame));
                }
            }
            let code = engine::close::MESSAGE_TOO_BIG;
            out.push_final(codec::encode_close(code, "message too big"));
            report_closed(state, conn, Some(code)).await;
            drain(state, out).await;
            // The refused frame's payload may still be arriving.
            discard_input(state, out).await;
        }
        End::Violation(code, reason) => {
            // The input cannot be trusted any further: send the close frame (RFC 6455
            // §7.1.7, "fail the WebSocket connection") and drop the connection.
            state.metrics.protocol_violation_closes.inc();
            out.push_final(codec::encode_close(code, reason));
            report_closed(state, conn, Some(code)).await;
            drain(state, out).await;
            discard_input(state, out).await;
        }
        End::Server => {
            // The frames queued before the close, then the close; then wait (briefly)
            // for the client's close reply so it sees a clean close.
            drain(state, out).await;
            let mut events = Vec::new();
            let _ = tokio::time::timeout(CLOSE_GRACE, async {
                loop {
                    tokio::select! {
                        r = poll_fn(|cx| poll_read_events(cx, out, decoder, &mut events, state.ws.read_buffer)) => {
                            match r {
                                Read::Data(Ok(())) if !events.iter().any(|e| matches!(e, Event::Close(_))) => events.clear(),
                                _ => break,
                            }
                        }
                        () = state.hard_stop.cancelled() => break,
                    }
                }
            })
            .await;
            report_closed(state, conn, None).await;
        }
    }
}
