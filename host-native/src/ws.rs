//! WebSocket upgrades and the per-connection task.
//!
//! The upgrade request goes to the engine as `Input::Open`; the engine's `Accept`
//! becomes a `101 Switching Protocols` (with `Sec-WebSocket-Protocol` when it picked
//! one), its `Reject` the HTTP status and JSON body it chose. After the 101 the
//! upgraded socket is wrapped in tokio-tungstenite with the engine's payload limit as
//! `max_message_size`/`max_frame_size`, so an oversize frame is refused from its header
//! before it is buffered (close 1009).
//!
//! One task per connection drives two futures over the split socket: the reader feeds
//! frames to the actor; the writer drains the bounded outbound queue (coalescing
//! writes) and executes pings and the close, which it sends only after the frames
//! queued before it.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use engine::{ConnId, ErrorCode, UpgradeRequest};
use futures_util::{SinkExt, StreamExt};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONNECTION, UPGRADE};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::WebSocketStream;

use crate::actor::{OpenOutcome, ToActor};
use crate::http::{json_error, json_response, Body};
use crate::outbound::{Next, Outbound};
use crate::state::AppState;

/// How long a closing connection may take to flush its queue and exchange close
/// frames before the socket is dropped.
pub const CLOSE_GRACE: Duration = Duration::from_secs(3);

/// Frames or bytes written per batch before flushing.
const BATCH_FRAMES: usize = 64;
const BATCH_BYTES: usize = 64 * 1024;

/// The tungstenite config for a deployment: payload limits from the engine, buffer
/// sizes from `[server]`.
pub fn ws_config(max_payload: usize, read_buffer: usize, write_buffer: usize) -> WebSocketConfig {
    WebSocketConfig::default()
        .max_message_size(Some(max_payload))
        .max_frame_size(Some(max_payload))
        .read_buffer_size(read_buffer)
        .write_buffer_size(write_buffer)
        // Bounded: the outbound queue holds the backlog, not tungstenite.
        .max_write_buffer_size(write_buffer.saturating_mul(2).max(max_payload) + 1024 * 1024)
}

/// Whether a request asks for a WebSocket upgrade.
pub fn is_upgrade(req: &Request<Incoming>) -> bool {
    let has = |name, token: &str| {
        req.headers().get_all(name).iter().any(|v| {
            v.to_str()
                .map(|s| s.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
                .unwrap_or(false)
        })
    };
    has(UPGRADE, "websocket") && has(CONNECTION, "upgrade")
}

/// Answer an upgrade request: ask the engine, then switch protocols or refuse.
pub async fn upgrade(
    state: Arc<AppState>,
    mut req: Request<Incoming>,
    peer: SocketAddr,
) -> Response<Body> {
    let headers = req.headers();
    let Some(key) = headers.get("sec-websocket-key").cloned() else {
        return json_error(
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidMessage,
            "missing Sec-WebSocket-Key",
        );
    };
    if headers
        .get("sec-websocket-version")
        .map(HeaderValue::as_bytes)
        != Some(b"13")
    {
        let mut r = json_error(
            StatusCode::UPGRADE_REQUIRED,
            ErrorCode::InvalidMessage,
            "only WebSocket version 13 is supported",
        );
        r.headers_mut()
            .insert("sec-websocket-version", HeaderValue::from_static("13"));
        return r;
    }
    if req.method() != hyper::Method::GET {
        return json_error(
            StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::InvalidMessage,
            "upgrades must use GET",
        );
    }
    let conn = ConnId(state.next_conn.fetch_add(1, Ordering::Relaxed));
    let request = UpgradeRequest {
        path: req.uri().path().to_string(),
        query: req.uri().query().unwrap_or("").to_string(),
        headers: headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        peer: peer.ip().to_string(),
        client_id: crate::ids::client_id(),
    };
    let out = Arc::new(Outbound::new(
        state.ws.outbound_queue,
        state.ws.max_buffered,
    ));
    let (reply, answer) = oneshot::channel();
    let open = ToActor::Open {
        conn,
        request,
        out: out.clone(),
        reply,
    };
    if state.actor.send(open).await.is_err() {
        return json_error(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Unavailable,
            "server is stopping",
        );
    }
    match answer.await {
        Err(_) => json_error(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Unavailable,
            "server is stopping",
        ),
        Ok(OpenOutcome::Reject { status, body }) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
            json_response(status, body)
        }
        Ok(OpenOutcome::Accept { protocol }) => {
            let on_upgrade = hyper::upgrade::on(&mut req);
            let task_state = state.clone();
            state.ws_tasks.spawn(async move {
                match on_upgrade.await {
                    Ok(upgraded) => run_socket(task_state, conn, TokioIo::new(upgraded), out).await,
                    Err(_) => {
                        let _ = task_state
                            .actor
                            .send(ToActor::Closed { conn, code: None })
                            .await;
                    }
                }
            });
            let mut resp = Response::new(Body::default());
            *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
            let h = resp.headers_mut();
            h.insert(UPGRADE, HeaderValue::from_static("websocket"));
            h.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
            if let Ok(v) = HeaderValue::from_str(&derive_accept_key(key.as_bytes())) {
                h.insert("sec-websocket-accept", v);
            }
            if let Some(p) = protocol.and_then(|p| HeaderValue::from_str(&p).ok()) {
                h.insert("sec-websocket-protocol", p);
            }
            resp
        }
    }
}

/// How a connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// The client closed (with this code) or the stream ended.
    Peer(Option<u16>),
    /// A frame exceeded `maxPayloadSize` (its size, when the transport said).
    TooBig(Option<usize>),
    /// The client broke the WebSocket protocol: close with this code (1002 or 1007)
    /// and reason.
    Violation(u16, &'static str),
    /// The engine closed it; the close frame was sent (or the grace expired).
    Server,
    /// The server is going away without ceremony (actor gone, hard stop).
    Abort,
}

/// Drive one upgraded connection to its end, then report `Closed` to the actor.
pub async fn run_socket<S>(state: Arc<AppState>, conn: ConnId, io: S, out: Arc<Outbound>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    state.metrics.sockets_open.inc();
    let ws = WebSocketStream::from_raw_socket(io, Role::Server, Some(state.ws.config)).await;
    let (mut sink, mut stream) = ws.split();
    let end = {
        let reader = read_loop(&state, conn, &mut stream);
        let writer = write_loop(&state, conn, &mut sink, &out);
        tokio::pin!(reader, writer);
        tokio::select! {
            end = &mut reader => end,
            end = &mut writer => end,
            () = state.hard_stop.cancelled() => End::Abort,
        }
    };
    out.writer_gone();
    // Boxed: the closing handshake is a rare path; keep it out of the task's size.
    let code = Box::pin(finish(&state, conn, end, &mut sink, &mut stream)).await;
    state.metrics.sockets_open.dec();
    // Ignored by the actor when the engine closed the connection itself.
    let _ = state.actor.send(ToActor::Closed { conn, code }).await;
}

/// The closing handshake for each way a connection can end; returns the close code to
/// report.
async fn finish<Si, St>(
    state: &AppState,
    conn: ConnId,
    end: End,
    sink: &mut Si,
    stream: &mut St,
) -> Option<u16>
where
    Si: futures_util::Sink<Message, Error = WsError> + Unpin,
    St: futures_util::Stream<Item = Result<Message, WsError>> + Unpin,
{
    match end {
        End::Peer(code) => {
            // tungstenite queued the close reply; push it out.
            let _ = tokio::time::timeout(CLOSE_GRACE, sink.close()).await;
            code
        }
        End::TooBig(size) => {
            state.metrics.oversize_closes.inc();
            // The engine words the error frame; the transport already refused the bytes.
            let (reply, answer) = tokio::sync::oneshot::channel();
            if state
                .actor
                .send(crate::actor::ToActor::Oversize { conn, size, reply })
                .await
                .is_ok()
            {
                if let Ok(Some(frame)) = answer.await {
                    let msg = crate::actor::to_message(&frame);
                    let _ = tokio::time::timeout(CLOSE_GRACE, sink.send(msg)).await;
                }
            }
            let frame = CloseFrame {
                code: CloseCode::from(engine::close::MESSAGE_TOO_BIG),
                reason: "message too big".into(),
            };
            let _ = tokio::time::timeout(CLOSE_GRACE, sink.send(Message::Close(Some(frame)))).await;
            Some(engine::close::MESSAGE_TOO_BIG)
        }
        End::Violation(code, reason) => {
            // The input cannot be trusted any further: send the close frame (RFC 6455
            // §7.1.7, "fail the WebSocket connection") and drop the connection.
            state.metrics.protocol_violation_closes.inc();
            let frame = CloseFrame {
                code: CloseCode::from(code),
                reason: reason.into(),
            };
            let _ = tokio::time::timeout(CLOSE_GRACE, sink.send(Message::Close(Some(frame)))).await;
            Some(code)
        }
        End::Server => {
            // Wait (briefly) for the client's close reply so it sees a clean close.
            let _ = tokio::time::timeout(CLOSE_GRACE, async {
                tokio::select! {
                    () = async { while let Some(Ok(_)) = stream.next().await {} } => {}
                    () = state.hard_stop.cancelled() => {}
                }
            })
            .await;
            None
        }
        End::Abort => None,
    }
}

async fn read_loop<St>(state: &AppState, conn: ConnId, stream: &mut St) -> End
where
    St: futures_util::Stream<Item = Result<Message, WsError>> + Unpin,
{
    let mut code = None;
    while let Some(item) = stream.next().await {
        let msg = match item {
            Ok(m @ (Message::Text(_) | Message::Binary(_))) => ToActor::Frame { conn, message: m },
            Ok(Message::Pong(_)) => ToActor::Pong { conn },
            Ok(Message::Close(frame)) => {
                code = frame.map(|f| u16::from(f.code));
                continue;
            }
            Ok(_) => continue,
            Err(WsError::Capacity(e)) => {
                let size = match e {
                    tokio_tungstenite::tungstenite::error::CapacityError::MessageTooLong {
                        size,
                        ..
                    } => Some(size),
                    _ => None,
                };
                return End::TooBig(size);
            }
            Err(e) => return violation(&e).map_or(End::Peer(code), |(c, r)| End::Violation(c, r)),
        };
        if state.actor.send(msg).await.is_err() {
            return End::Abort;
        }
    }
    End::Peer(code)
}

/// The close code and reason for a read error that is the client's protocol violation
/// (`None`: the connection just ended, e.g. reset without a closing handshake).
fn violation(e: &WsError) -> Option<(u16, &'static str)> {
    use tokio_tungstenite::tungstenite::error::ProtocolError as P;
    let reason = match e {
        WsError::Utf8(_) => {
            return Some((
                engine::close::INVALID_PAYLOAD,
                "invalid UTF-8 in a text frame",
            ))
        }
        WsError::Protocol(p) => match p {
            P::NonZeroReservedBits => "reserved bits set without a negotiated extension",
            P::UnmaskedFrameFromClient => "client frames must be masked",
            P::UnknownControlFrameType(_) | P::UnknownDataFrameType(_) | P::InvalidOpcode(_) => {
                "unknown opcode"
            }
            P::ControlFrameTooBig => "control frame payload over 125 bytes",
            P::FragmentedControlFrame => "fragmented control frame",
            P::UnexpectedContinueFrame | P::ExpectedFragment(_) => "bad fragmentation",
            P::InvalidCloseSequence => "invalid close frame",
            _ => return None,
        },
        _ => return None,
    };
    Some((engine::close::PROTOCOL_ERROR, reason))
}

async fn write_loop<Si>(state: &AppState, conn: ConnId, sink: &mut Si, out: &Outbound) -> End
where
    Si: futures_util::Sink<Message, Error = WsError> + Unpin,
{
    loop {
        let first = match out.next().await {
            Next::Ping => {
                if sink.send(Message::Ping(Bytes::new())).await.is_err() {
                    return End::Peer(None);
                }
                continue;
            }
            // Boxed: the close path is rare and should not grow every connection's task.
            Next::Close(code, reason) => {
                return Box::pin(close_after_queued(sink, out, code, reason)).await
            }
            Next::Frame(m) => m,
        };
        // Write a batch; keep watching for a close meanwhile so a stuck client cannot
        // hold it back for more than CLOSE_GRACE.
        let written = {
            let batch = write_batch(sink, out, first);
            tokio::pin!(batch);
            let mut deadline: Option<tokio::time::Instant> = None;
            loop {
                let grace = async {
                    match deadline {
                        Some(d) => tokio::time::sleep_until(d).await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    r = &mut batch => break r,
                    () = out.changed(), if deadline.is_none() => {
                        if out.close_requested() {
                            deadline = Some(tokio::time::Instant::now() + CLOSE_GRACE);
                        }
                    }
                    () = grace => return End::Server,
                }
            }
        };
        let Ok(bytes) = written else {
            return End::Peer(None);
        };
        let left = out.written(bytes);
        if left <= out.limit / 2 && out.reported_over.swap(false, Ordering::AcqRel) {
            let _ = state
                .actor
                .send(ToActor::Drained {
                    conn,
                    buffered: left,
                })
                .await;
        }
    }
}

/// Feed `first` and whatever else is queued (bounded), then flush. Returns bytes written.
async fn write_batch<Si>(sink: &mut Si, out: &Outbound, first: Message) -> Result<u64, WsError>
where
    Si: futures_util::Sink<Message, Error = WsError> + Unpin,
{
    let mut bytes = first.len();
    sink.feed(first).await?;
    let mut frames = 1;
    while frames < BATCH_FRAMES && bytes < BATCH_BYTES {
        let Some(m) = out.try_pop() else { break };
        bytes += m.len();
        frames += 1;
        sink.feed(m).await?;
    }
    sink.flush().await?;
    Ok(bytes as u64)
}

/// Write the frames queued before the close, then the close frame; within CLOSE_GRACE.
async fn close_after_queued<Si>(sink: &mut Si, out: &Outbound, code: u16, reason: String) -> End
where
    Si: futures_util::Sink<Message, Error = WsError> + Unpin,
{
    let _ = tokio::time::timeout(CLOSE_GRACE, async {
        while let Some(m) = out.try_pop() {
            sink.feed(m).await?;
        }
        let frame = CloseFrame {
            code: CloseCode::from(code),
            reason: reason.into(),
        };
        sink.send(Message::Close(Some(frame))).await
    })
    .await;
    End::Server
}
