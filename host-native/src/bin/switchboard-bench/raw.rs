//! A minimal WebSocket client for subscribers: reads whole socket buffers and splits
//! frames itself, so the load generator keeps up with the server's fan-out.

use std::net::SocketAddr;

use anyhow::{bail, Context};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A subscribed raw connection.
pub struct Sub {
    tcp: TcpStream,
    buf: Vec<u8>,
    start: usize,
}

/// A client frame masked with the all-zero key (valid, and the payload stays as is).
fn frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0x80 | opcode];
    match payload.len() {
        n if n < 126 => f.push(0x80 | n as u8),
        n if n <= 0xFFFF => {
            f.push(0x80 | 126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            f.push(0x80 | 127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    f.extend_from_slice(&[0, 0, 0, 0]);
    f.extend_from_slice(payload);
    f
}

/// Upgrade, read the welcome, subscribe to `channel`, wait for `subscribed`.
pub async fn subscribe(addr: SocketAddr, i: usize, channel: &str) -> anyhow::Result<Sub> {
    let ws = super::tcp_from(addr, i).await?;
    let mut sub = Sub {
        tcp: ws,
        buf: Vec::with_capacity(64 * 1024),
        start: 0,
    };
    let req = format!(
        "GET /?token=bench_key HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    sub.tcp.write_all(req.as_bytes()).await?;
    loop {
        if let Some(end) = sub.buf.windows(4).position(|w| w == b"\r\n\r\n") {
            if !sub.buf.starts_with(b"HTTP/1.1 101") {
                bail!(
                    "upgrade refused: {}",
                    String::from_utf8_lossy(&sub.buf[..end])
                );
            }
            sub.start = end + 4;
            break;
        }
        sub.fill().await?;
    }
    let msg = format!(r#"{{"type":"subscribe","channel":"{channel}","requestId":1}}"#);
    sub.tcp.write_all(&frame(1, msg.as_bytes())).await?;
    for _ in 0..10 {
        for text in sub.read_frames().await? {
            if text.contains("\"subscribed\"") {
                return Ok(sub);
            }
        }
    }
    bail!("no subscribed reply")
}

impl Sub {
    async fn fill(&mut self) -> anyhow::Result<()> {
        if self.start > 0 && self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        } else if self.start > 32 * 1024 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        let len = self.buf.len();
        self.buf.resize(len + 64 * 1024, 0);
        let n = self.tcp.read(&mut self.buf[len..]).await.context("read")?;
        self.buf.truncate(len + n);
        if n == 0 {
            bail!("connection closed");
        }
        Ok(())
    }

    /// Wait for data, then return every complete text frame in the buffer
    /// (answering pings; a close frame ends the connection).
    pub async fn read_frames(&mut self) -> anyhow::Result<Vec<String>> {
        self.fill().await?;
        let mut out = Vec::new();
        loop {
            let b = &self.buf[self.start..];
            if b.len() < 2 {
                break;
            }
            let opcode = b[0] & 0x0F;
            let (len, hdr) = match b[1] & 0x7F {
                126 if b.len() >= 4 => (u16::from_be_bytes([b[2], b[3]]) as usize, 4),
                127 if b.len() >= 10 => {
                    let mut l = [0u8; 8];
                    l.copy_from_slice(&b[2..10]);
                    (u64::from_be_bytes(l) as usize, 10)
                }
                126 | 127 => break,
                n => (n as usize, 2),
            };
            if b.len() < hdr + len {
                break;
            }
            let payload = &b[hdr..hdr + len];
            match opcode {
                1 => out.push(String::from_utf8_lossy(payload).into_owned()),
                8 => bail!("closed by the server"),
                9 => {
                    let pong = frame(0xA, payload);
                    self.start += hdr + len;
                    self.tcp.write_all(&pong).await?;
                    continue;
                }
                _ => {}
            }
            self.start += hdr + len;
        }
        Ok(out)
    }
}
