//! The live runner's client side: plain HTTP/1.1 requests (JSON) and WebSocket
//! connections whose handshake the runner writes itself, so the vector's request goes
//! out exactly as given (its `Host` header, any subprotocol offer, a chosen source
//! address for its peer) and a refused upgrade's whole response is read.
//!
//! After the handshake, frames are handled by `fastwebsockets` with automatic pongs
//! off: a vector decides when (and whether) a client answers a ping. A task per
//! connection reads frames into a channel, so waiting for a frame with a deadline never
//! cancels a half-read frame.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _};
use fastwebsockets::{
    after_handshake_split, FragmentCollectorRead, Frame, OpCode, Payload, Role, WebSocketWrite,
};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _, BufReader, ReadHalf, WriteHalf};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{mpsc, Mutex};
use tokio::time::Instant;

/// What a connection received.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    /// A text message.
    Text(String),
    /// A binary message.
    Binary(Vec<u8>),
    /// A ping frame.
    Ping,
    /// A pong frame.
    Pong,
    /// A close frame (code, reason).
    Close(Option<u16>, String),
    /// The connection failed or ended without a close frame.
    End(String),
}

type Stream = BufReader<TcpStream>;
type Writer = Arc<Mutex<WebSocketWrite<WriteHalf<Stream>>>>;

/// An open WebSocket connection.
pub struct WsConn {
    writer: Writer,
    rx: mpsc::UnboundedReceiver<Item>,
    reader: tokio::task::JoinHandle<()>,
}

impl Drop for WsConn {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// How an upgrade ended.
pub enum Upgrade {
    /// `101`: the connection and the `Sec-WebSocket-Protocol` answered, if any.
    Accepted(WsConn, Option<String>),
    /// Refused: status and body.
    Refused(u16, Vec<u8>),
}

/// A request to send over a plain TCP connection.
async fn connect(addr: SocketAddr, source: Option<IpAddr>) -> anyhow::Result<TcpStream> {
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    if let Some(ip) = source {
        socket
            .bind(SocketAddr::new(ip, 0))
            .with_context(|| format!("binding the client socket to {ip}"))?;
    }
    let stream = socket
        .connect(addr)
        .await
        .with_context(|| format!("connecting to {addr}"))?;
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

/// Read an HTTP response head from `r`; returns (status, headers) and leaves the body
/// in `r`.
async fn read_head(r: &mut Stream) -> anyhow::Result<(u16, Vec<(String, String)>)> {
    use tokio::io::AsyncBufReadExt as _;
    let mut head = Vec::with_capacity(512);
    loop {
        let n = r.read_until(b'\n', &mut head).await?;
        if n == 0 {
            bail!("connection closed before a complete HTTP response head");
        }
        if head.ends_with(b"\r\n\r\n") {
            break;
        }
        if head.len() > 64 * 1024 {
            bail!("HTTP response head over 64 KiB");
        }
    }
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut resp = httparse::Response::new(&mut headers);
    resp.parse(&head)?;
    let status = resp.code.unwrap_or_default();
    let headers = resp
        .headers
        .iter()
        .map(|h| {
            (
                h.name.to_ascii_lowercase(),
                String::from_utf8_lossy(h.value).into_owned(),
            )
        })
        .collect();
    Ok((status, headers))
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Read a body: `Content-Length` bytes, or to the end of the stream.
async fn read_body(r: &mut Stream, headers: &[(String, String)]) -> anyhow::Result<Vec<u8>> {
    let mut body = Vec::new();
    match header(headers, "content-length").and_then(|v| v.trim().parse::<usize>().ok()) {
        Some(len) => {
            body.resize(len, 0);
            r.read_exact(&mut body).await?;
        }
        None => {
            r.read_to_end(&mut body).await?;
        }
    }
    Ok(body)
}

/// One HTTP request with an optional JSON body; `(status, body)`. Bounded by `wait`.
pub async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&serde_json::Value>,
    wait: Duration,
) -> anyhow::Result<(u16, Vec<u8>)> {
    let io = async {
        let stream = connect(addr, None).await?;
        let mut s = BufReader::new(stream);
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        s.get_mut().write_all(req.as_bytes()).await?;
        let (status, headers) = read_head(&mut s).await?;
        let body = read_body(&mut s, &headers).await?;
        anyhow::Ok((status, body))
    };
    tokio::time::timeout(wait, io)
        .await
        .map_err(|_| anyhow!("no answer to {method} {path} within {wait:?}"))?
}

/// Open a WebSocket: write the upgrade request (`path_and_query`, then `headers`;
/// a `Host` among them replaces the default), read the answer whole.
pub async fn upgrade(
    addr: SocketAddr,
    source: Option<IpAddr>,
    path_and_query: &str,
    headers: &[(String, String)],
    wait: Duration,
) -> anyhow::Result<Upgrade> {
    let io = async {
        let stream = connect(addr, source).await?;
        let mut s = BufReader::new(stream);
        let mut req = format!("GET {path_and_query} HTTP/1.1\r\n");
        if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
            req.push_str(&format!("Host: {addr}\r\n"));
        }
        req.push_str(
            "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
        );
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        s.get_mut().write_all(req.as_bytes()).await?;
        let (status, resp_headers) = read_head(&mut s).await?;
        if status != 101 {
            let body = read_body(&mut s, &resp_headers).await.unwrap_or_default();
            return anyhow::Ok(Upgrade::Refused(status, body));
        }
        let protocol = header(&resp_headers, "sec-websocket-protocol").map(str::to_string);
        Ok(Upgrade::Accepted(WsConn::start(s), protocol))
    };
    tokio::time::timeout(wait, io)
        .await
        .map_err(|_| anyhow!("no complete answer to the upgrade within {wait:?}"))?
}

impl WsConn {
    fn start(stream: Stream) -> WsConn {
        let (r, w) = tokio::io::split(stream);
        let (mut read, write) = after_handshake_split(r, w, Role::Client);
        read.set_auto_pong(false);
        // Closes are echoed by the reader, after reporting them (an echo that cannot be
        // written, because the server already dropped the socket, must not hide them).
        read.set_auto_close(false);
        read.set_max_message_size(256 * 1024 * 1024);
        let writer: Writer = Arc::new(Mutex::new(write));
        let (tx, rx) = mpsc::unbounded_channel();
        let reader = tokio::spawn(read_loop(
            FragmentCollectorRead::new(read),
            writer.clone(),
            tx,
        ));
        WsConn { writer, rx, reader }
    }

    /// The next item, or `None` when nothing arrived by `deadline`.
    pub async fn next(&mut self, deadline: Instant) -> Option<Item> {
        match tokio::time::timeout_at(deadline, self.rx.recv()).await {
            Ok(Some(item)) => Some(item),
            Ok(None) => Some(Item::End("connection ended".into())),
            Err(_) => None,
        }
    }

    async fn write(&self, frame: Frame<'_>) -> anyhow::Result<()> {
        self.writer
            .lock()
            .await
            .write_frame(frame)
            .await
            .map_err(|e| anyhow!("{e}"))
    }

    /// Send a text frame.
    pub async fn text(&self, text: &str) -> anyhow::Result<()> {
        self.write(Frame::text(Payload::Borrowed(text.as_bytes())))
            .await
    }

    /// Send a binary frame.
    pub async fn binary(&self, bytes: &[u8]) -> anyhow::Result<()> {
        self.write(Frame::binary(Payload::Borrowed(bytes))).await
    }

    /// Send a pong frame.
    pub async fn pong(&self) -> anyhow::Result<()> {
        self.write(Frame::pong(Payload::Borrowed(&[]))).await
    }

    /// Send a close frame (with a code, or empty).
    pub async fn close(&self, code: Option<u16>) -> anyhow::Result<()> {
        let frame = match code {
            Some(c) => Frame::close(c, b""),
            None => Frame::close_raw(Payload::Borrowed(&[])),
        };
        self.write(frame).await
    }
}

async fn read_loop(
    mut read: FragmentCollectorRead<ReadHalf<Stream>>,
    writer: Writer,
    tx: mpsc::UnboundedSender<Item>,
) {
    let mut send = |frame: Frame<'_>| {
        let writer = writer.clone();
        let frame = Frame::new(
            frame.fin,
            frame.opcode,
            None,
            Payload::Owned(frame.payload.to_vec()),
        );
        async move { writer.lock().await.write_frame(frame).await }
    };
    loop {
        let item = match read.read_frame(&mut send).await {
            Ok(frame) => match frame.opcode {
                OpCode::Text => Item::Text(String::from_utf8_lossy(&frame.payload).into_owned()),
                OpCode::Binary => Item::Binary(frame.payload.to_vec()),
                OpCode::Ping => Item::Ping,
                OpCode::Pong => Item::Pong,
                OpCode::Close => {
                    let p = &frame.payload;
                    let code = (p.len() >= 2).then(|| u16::from_be_bytes([p[0], p[1]]));
                    let reason = String::from_utf8_lossy(p.get(2..).unwrap_or_default());
                    let _ = tx.send(Item::Close(code, reason.into_owned()));
                    let echo = match code {
                        Some(c) => Frame::close(c, b""),
                        None => Frame::close_raw(Payload::Borrowed(&[])),
                    };
                    let _ = writer.lock().await.write_frame(echo).await;
                    return;
                }
                OpCode::Continuation => continue,
            },
            Err(e) => {
                let _ = tx.send(Item::End(e.to_string()));
                return;
            }
        };
        if tx.send(item).is_err() {
            return;
        }
    }
}
