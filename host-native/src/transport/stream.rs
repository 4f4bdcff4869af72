//! The upgraded stream as the transport keeps it.
//!
//! hyper hands an upgraded connection over as `Upgraded`: the server's stream boxed,
//! plus the bytes it read past the upgrade request. Kept like that, every connection
//! holds two boxes (hyper's and a box of the transport's, ~220 bytes). A plain TCP
//! connection is unwrapped instead: its `TcpStream` is kept in place, in the
//! connection's state ([`Stream::Tcp`]), and written straight to the socket with
//! `send` or `sendmsg` ([`Tcp`]). When the client sent frames right behind its request,
//! the stream is boxed with those bytes in front of it ([`Prefixed`]); TLS streams keep
//! hyper's wrapper, boxed.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use socket2::SockRef;
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::TcpStream;

use crate::outbound::Io;

/// The stream of an upgraded connection, with as few allocations as its type allows.
pub fn unwrap(upgraded: Upgraded) -> Stream {
    match upgraded.downcast::<TokioIo<TcpStream>>() {
        Ok(parts) if parts.read_buf.is_empty() => Stream::Tcp(Tcp(parts.io.into_inner())),
        Ok(parts) => Stream::boxed(Prefixed {
            head: parts.read_buf,
            io: Tcp(parts.io.into_inner()),
        }),
        Err(upgraded) => Stream::boxed(TokioIo::new(upgraded)),
    }
}

/// A connection's byte stream after the upgrade. Plain TCP, nearly every connection, is
/// kept in place: a write then reads no allocation of its own to find the socket (one
/// cache miss per write less in a fan-out to many sockets; BENCHMARKS.md, "Issue 18:
/// the socket kept in place").
pub enum Stream {
    /// A plain TCP connection.
    Tcp(Tcp),
    /// Anything else: TLS, a TCP stream with early bytes in front, a test's stream.
    Boxed(Box<dyn Io>),
}

impl Stream {
    /// Box a stream of another kind.
    pub fn boxed(io: impl Io + 'static) -> Self {
        Self::Boxed(Box::new(io))
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Tcp(t) => Pin::new(t).poll_read(cx, buf),
            Self::Boxed(b) => Pin::new(b).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Tcp(t) => Pin::new(t).poll_write(cx, buf),
            Self::Boxed(b) => Pin::new(b).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Tcp(t) => Pin::new(t).poll_write_vectored(cx, bufs),
            Self::Boxed(b) => Pin::new(b).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Self::Tcp(t) => t.is_write_vectored(),
            Self::Boxed(b) => b.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Tcp(t) => Pin::new(t).poll_flush(cx),
            Self::Boxed(b) => Pin::new(b).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Tcp(t) => Pin::new(t).poll_shutdown(cx),
            Self::Boxed(b) => Pin::new(b).poll_shutdown(cx),
        }
    }
}

/// A plain TCP stream whose vectored writes are `send` calls (one buffer) or `sendmsg`
/// calls (several), tried before asking tokio whether the socket is writable. tokio's
/// are `writev`, which goes through the file layer (`vfs_writev`, `sock_write_iter`)
/// before the socket's; `send` and `sendmsg` go to the socket directly, as Bun's `send`
/// does: about 5 % of the native server's CPU in the paced fan-out (BENCHMARKS.md,
/// "Issue 18: writes with sendmsg, and a small queue kept"), and tokio's readiness
/// check before each write about as much again ("Issue 18: writes without tokio's
/// readiness check, the first frame kept in place"). Reads, waiting for readiness and
/// everything else are tokio's. Like tokio's `writev`, the writes pass no
/// `MSG_NOSIGNAL`: a write to a socket the peer reset gets `EPIPE` because Rust
/// programs ignore `SIGPIPE`.
pub struct Tcp(TcpStream);

impl AsyncRead for Tcp {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for Tcp {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        // The fast path writes without asking tokio: its readiness record is a separate
        // allocation per socket, a cache miss per write in a fan-out to many sockets. A
        // would-block leaves that record as it was; the loop below then finds out the
        // same way (try_io clears the readiness, poll_write_ready registers the waker).
        // A full socket that tokio still believes writable costs a second failed send
        // there; clearing tokio's record here instead would need the event's tick from
        // before this send, or could swallow a writable event that came in between.
        match send(&self.0, bufs) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            r => return Poll::Ready(r),
        }
        loop {
            // try_io writes when tokio last saw the socket writable; a would-block, its own
            // or the socket's, clears that, and poll_write_ready then registers the waker,
            // or finds it writable again.
            match self.0.try_io(Interest::WRITABLE, || send(&self.0, bufs)) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                r => return Poll::Ready(r),
            }
            std::task::ready!(self.0.poll_write_ready(cx))?;
        }
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

/// One `send` for a single buffer (the kernel's `sendto` path, lighter than `sendmsg`'s
/// copy of the message header and vector), `sendmsg` for several.
fn send(stream: &TcpStream, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
    let sock = SockRef::from(stream);
    match bufs {
        [one] => sock.send(one),
        _ => sock.send_vectored(bufs),
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

    /// A server-side `Tcp` on loopback, and a client task that reads it to the end.
    async fn tcp_with_reader() -> (Tcp, tokio::task::JoinHandle<Vec<u8>>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let client = tokio::spawn(async move {
            let mut c = TcpStream::connect(addr).await.unwrap();
            let mut got = Vec::new();
            c.read_to_end(&mut got).await.unwrap();
            got
        });
        (Tcp(listener.accept().await.unwrap().0), client)
    }

    #[tokio::test]
    async fn vectored_writes_on_plain_tcp_arrive_whole_and_in_order_past_a_full_socket() {
        let (mut s, client) = tcp_with_reader().await;
        assert!(s.is_write_vectored());
        // 16 MiB: more than the socket buffers hold, so writes wait for the reader.
        let (a, b) = (vec![b'a'; 1000], vec![b'b'; 24]);
        let mut sent = Vec::new();
        for _ in 0..(16 << 20) / 1024 {
            let mut slices = [io::IoSlice::new(&a), io::IoSlice::new(&b)];
            let mut rest = &mut slices[..];
            let mut left = 1024;
            while left > 0 {
                let n = s.write_vectored(rest).await.unwrap();
                left -= n;
                io::IoSlice::advance_slices(&mut rest, n);
            }
            sent.extend_from_slice(&a);
            sent.extend_from_slice(&b);
        }
        s.shutdown().await.unwrap();
        drop(s);
        assert!(client.await.unwrap() == sent, "the bytes differ");
    }

    #[tokio::test]
    async fn single_buffer_writes_on_plain_tcp_wait_for_a_full_socket_and_arrive_whole() {
        // One runtime thread: the client reads only while the writer waits, so the
        // socket fills and the writes must be woken when it drains.
        let (mut s, client) = tcp_with_reader().await;
        let sent: Vec<u8> = (0..16u32 << 20).map(|i| (i % 251) as u8).collect();
        let write = async {
            let mut rest = &sent[..];
            while !rest.is_empty() {
                // One slice: the `send` path, and the fallback after a would-block.
                let n = s.write_vectored(&[io::IoSlice::new(rest)]).await.unwrap();
                rest = &rest[n..];
            }
            s.shutdown().await.unwrap();
        };
        // A lost wake-up would hang here, or end only when the timer polls the write
        // again: fail on either.
        let started = std::time::Instant::now();
        tokio::time::timeout(std::time::Duration::from_secs(30), write)
            .await
            .expect("the writes were not woken when the socket drained");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "the writes took {:?}: a wake-up was lost",
            started.elapsed()
        );
        drop(s);
        assert!(client.await.unwrap() == sent, "the bytes differ");
    }

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
