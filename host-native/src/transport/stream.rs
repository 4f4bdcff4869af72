//! The upgraded stream as the transport keeps it.
//!
//! hyper hands an upgraded connection over as `Upgraded`: the server's stream boxed,
//! plus the bytes it read past the upgrade request. Kept like that, every connection
//! holds two boxes (hyper's and the transport's `Box<dyn Io>`, ~220 bytes). A plain TCP
//! connection is unwrapped instead: the transport boxes the `TcpStream` itself, with
//! the early bytes in front of it when the client sent frames right behind its
//! request ([`Prefixed`]). TLS streams keep hyper's wrapper.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::outbound::Io;

/// The stream of an upgraded connection, with as few allocations as its type allows.
pub fn unwrap(upgraded: Upgraded) -> Box<dyn Io> {
    match upgraded.downcast::<TokioIo<TcpStream>>() {
        Ok(parts) if parts.read_buf.is_empty() => Box::new(parts.io.into_inner()),
        Ok(parts) => Box::new(Prefixed {
            head: parts.read_buf,
            io: parts.io.into_inner(),
        }),
        Err(upgraded) => Box::new(TokioIo::new(upgraded)),
    }
}

/// A stream whose first bytes were already read by the HTTP server: they are read
/// again first.
struct Prefixed<T> {
    head: Bytes,
    io: T,
}

impl<T: AsyncRead + Unpin> AsyncRead for Prefixed<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.head.is_empty() {
            return Pin::new(&mut self.io).poll_read(cx, buf);
        }
        let n = self.head.len().min(buf.remaining());
        buf.put_slice(&self.head[..n]);
        self.head.advance(n);
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Prefixed<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn bytes_read_before_the_upgrade_come_first_then_the_stream() {
        let (near, mut far) = tokio::io::duplex(64);
        let mut s = Prefixed {
            head: Bytes::from_static(b"early"),
            io: near,
        };
        far.write_all(b" later").await.unwrap();
        let mut small = [0u8; 3];
        s.read_exact(&mut small).await.unwrap();
        assert_eq!(&small, b"ear");
        let mut rest = [0u8; 8];
        s.read_exact(&mut rest).await.unwrap();
        assert_eq!(&rest, b"ly later");
        s.write_all(b"reply").await.unwrap();
        let mut got = [0u8; 5];
        far.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"reply");
    }
}
