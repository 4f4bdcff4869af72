//! One connection's outbound side: a bounded queue of pre-framed WebSocket frames plus
//! the socket itself, shared by the actor (producer) and the connection's task.
//!
//! Frames are queued as encoded bytes ([`crate::codec`]): a fan-out encodes
//! once and queues the same [`Bytes`] for every recipient, and the frames a turn sends
//! to the same recipients back to back go as one buffer of several frames
//! ([`Outbound::push_frames`]; the actor's batches). The actor queues during its
//! turn and, at the end of the turn, writes every touched connection's queue with one
//! vectored write each ([`Outbound::flush_now`], "corking"): no wake-up of the
//! connection task on the fast path. When the socket cannot take everything, the
//! connection is marked blocked and its task, woken, keeps writing as the socket drains.
//! The first entry waiting (a frame, or a batch of frames in one buffer) is kept in the
//! connection's own state, the entries behind it in a queue allocated only when more
//! than one waits (`queue::Frames`): once written out, a queue that never grew past its
//! first allocation (4 entries) is kept for the next time, and a burst's larger one is
//! freed. Frames (not entries) are bounded by
//! `server.outboundQueue`; bytes are counted so the engine can be told
//! (`Input::Backpressure`) when a client falls behind; pings, pongs and the close never
//! need room.

mod queue;

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;

use crate::transport::Stream;

/// A byte stream a connection is served on after the HTTP upgrade: what
/// [`Stream::Boxed`] holds (TLS, plain TCP with early bytes in front, a test's stream;
/// plain TCP alone is [`Stream::Tcp`]).
pub trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

/// Why a frame was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushError {
    /// The queue holds `server.outboundQueue` frames, or has room for fewer than the
    /// frames given together ([`Outbound::push_frames`]).
    Full,
    /// The connection is closing or gone.
    Gone,
}

#[derive(Default)]
struct Inner {
    /// Encoded frames in entries of one or more; the first entry may be partly written
    /// (`head_written` bytes).
    frames: queue::Frames,
    head_written: usize,
    io: Option<Stream>,
    /// The socket refused bytes: the connection task writes until the queue is empty
    /// (the actor does not touch the socket meanwhile).
    blocked: bool,
    /// The actor has this connection on its list to flush this turn.
    scheduled: bool,
    /// A close frame is queued last; nothing more is accepted.
    closing: bool,
    /// The connection task has ended (or is ending): nothing more is accepted.
    gone: bool,
    /// A write failed: the connection is dead.
    failed: bool,
    /// A spaced queue: when it last wrote with nothing heard from the client since (the
    /// next write waits until [`FRAME_GAP`] after it). `None`: the next frame goes now.
    last_write: Option<Instant>,
}

/// The shared outbound state of one connection.
pub struct Outbound {
    inner: Mutex<Inner>,
    notify: Notify,
    capacity: usize,
    write_batch: usize,
    /// Bytes queued and not yet written.
    pub queued: AtomicU64,
    /// Whether the engine was last told that this connection is over the limit.
    pub reported_over: AtomicBool,
    /// When the engine hears about this queue (from `limits.maxBufferedBytes`).
    pub pressure: engine::backpressure::Thresholds,
    /// Writes [`FRAME_GAP`] apart ([`Outbound::spaced`]).
    spaced: bool,
}

impl std::fmt::Debug for Outbound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbound")
            .field("queued", &self.queued)
            .field("pressure", &self.pressure)
            .finish_non_exhaustive()
    }
}

/// Queue entries handed to one vectored write.
const IOV: usize = 64;

/// The least time between two writes of a spaced queue while the client says nothing
/// ([`Outbound::spaced`]). A client that is waiting for a message wakes up and reads
/// well within it, even on a busy machine; the JS hosts space Engine.IO frames by a
/// `setTimeout(0)`, a millisecond on Node, the same order.
pub const FRAME_GAP: Duration = Duration::from_millis(1);

impl Outbound {
    /// A queue of at most `capacity` frames, reporting to the engine at the thresholds of
    /// `limit` (`limits.maxBufferedBytes`), writing at most about `write_batch` bytes per
    /// write call.
    pub fn new(capacity: usize, limit: u64, write_batch: usize) -> Self {
        Self {
            inner: Mutex::new(Inner::default()),
            notify: Notify::new(),
            capacity: capacity.max(1),
            write_batch: write_batch.max(1),
            queued: AtomicU64::new(0),
            reported_over: AtomicBool::new(false),
            pressure: engine::backpressure::Thresholds::for_limit(limit),
            spaced: false,
        }
    }

    /// Entries (buffers) and frames waiting in the queue; for the actor's tests.
    #[cfg(test)]
    pub(crate) fn waiting(&self) -> (usize, usize) {
        let inner = self.lock();
        (inner.frames.entries(), inner.frames.frame_count())
    }

    /// Keep consecutive frames apart in time so that the client reads them one by one:
    /// the actor's flush writes only the first frame queued, and while the client sends
    /// nothing, the next write (by the connection task: everything queued by then) waits
    /// until [`FRAME_GAP`] after the previous one. A frame from the client lifts the wait
    /// (request/response traffic is not slowed down); a burst costs one gap, not one per
    /// frame.
    ///
    /// For Engine.IO routes: Socket.IO's compliance suite (and clients written like it)
    /// handles one message per socket read and loses a second frame that arrives in the
    /// same read, e.g. the `auth` event a connect handler emits right after the CONNECT
    /// reply. Writing the frames with separate write calls is not enough (the socket.io
    /// npm server does that, and on a loaded machine both land in one read of the
    /// client); time between them is. The JS hosts space Engine.IO frames by a
    /// `setTimeout(0)` each (`spacedSender` in host-js/js/http.js).
    pub fn spaced(mut self) -> Self {
        self.spaced = true;
        self
    }

    /// Whether writes are kept apart ([`Outbound::spaced`]).
    pub fn is_spaced(&self) -> bool {
        self.spaced
    }

    /// The client sent something: the next frame of a spaced queue need not wait.
    pub(crate) fn heard_from_client(&self) {
        if self.spaced {
            self.lock().last_write = None;
        }
    }

    /// When the connection task may write a spaced queue next (`None`: now, or not spaced).
    pub(crate) fn next_write_at(&self) -> Option<Instant> {
        if !self.spaced {
            return None;
        }
        Self::gap_until(&self.lock())
    }

    fn gap_until(g: &Inner) -> Option<Instant> {
        let at = g.last_write? + FRAME_GAP;
        (at > Instant::now()).then_some(at)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queue an encoded data frame. Returns the bytes queued afterwards and whether the
    /// caller must put this connection on its flush list (see [`Outbound::flush_now`]).
    pub fn push(&self, frame: Bytes) -> Result<(u64, bool), PushError> {
        self.push_frames(frame, 1)
    }

    /// Queue `frames` encoded data frames that follow each other in `bytes` (a fan-out's
    /// batch, `crate::actor`): all of them or none, [`PushError::Full`] when the queue
    /// has room for fewer. Returns what [`Outbound::push`] returns.
    pub fn push_frames(&self, bytes: Bytes, frames: u32) -> Result<(u64, bool), PushError> {
        debug_assert!(
            frames == 1 || !self.spaced,
            "a spaced queue writes its frames apart: given one by one"
        );
        let len = bytes.len() as u64;
        let mut g = self.lock();
        if g.gone || g.closing {
            return Err(PushError::Gone);
        }
        if g.frames.frame_count() + frames as usize > self.capacity {
            return Err(PushError::Full);
        }
        let queued = self.queued.fetch_add(len, Ordering::AcqRel) + len;
        g.frames.push_back(bytes, frames);
        let schedule = !g.scheduled;
        g.scheduled = true;
        Ok((queued, schedule))
    }

    /// Queue a ping or pong ahead of the data frames not yet started (behind an entry
    /// partly written, all of whose frames go first). Returns whether the caller must
    /// put this connection on its flush list.
    pub fn push_control(&self, frame: Bytes) -> bool {
        let mut g = self.lock();
        if g.gone || g.closing {
            return false;
        }
        self.queued.fetch_add(frame.len() as u64, Ordering::AcqRel);
        let at = usize::from(g.head_written > 0).min(g.frames.entries());
        g.frames.insert(at, frame);
        let schedule = !g.scheduled;
        g.scheduled = true;
        schedule
    }

    /// Queue the close frame after everything queued; the connection task writes the
    /// rest and the close, then waits for the client's reply.
    pub fn close(&self, code: u16, reason: &str) {
        {
            let mut g = self.lock();
            if g.gone || g.closing {
                return;
            }
            let frame = crate::codec::encode_close(code, reason);
            self.queued.fetch_add(frame.len() as u64, Ordering::AcqRel);
            g.frames.push_back(frame, 1);
            g.closing = true;
        }
        self.notify.notify_one();
    }

    /// Queue a frame while the connection ends (the task's own closing handshake):
    /// accepted even when closing or gone, as long as the socket is there.
    pub(crate) fn push_final(&self, frame: Bytes) {
        let mut g = self.lock();
        if g.io.is_some() {
            self.queued.fetch_add(frame.len() as u64, Ordering::AcqRel);
            g.frames.push_back(frame, 1);
        }
    }

    /// Hand the socket over (after the upgrade) and write what was queued before;
    /// returns what [`Outbound::flush_now`] returns.
    pub(crate) fn attach(&self, io: Stream) -> Option<u64> {
        self.lock().io = Some(io);
        self.flush_now()
    }

    /// The connection is ending: refuse further frames and drop the ones not started (a
    /// partly written entry is kept whole, so the stream stays well-formed).
    pub(crate) fn end(&self) {
        let mut g = self.lock();
        g.gone = true;
        let keep = usize::from(g.head_written > 0);
        let dropped: u64 = g.frames.iter().skip(keep).map(|f| f.len() as u64).sum();
        g.frames.truncate(keep);
        self.queued.fetch_sub(dropped, Ordering::AcqRel);
    }

    /// Drop the socket and everything queued.
    pub(crate) fn detach(&self) {
        let mut g = self.lock();
        g.gone = true;
        g.io = None;
        g.frames.clear();
        g.head_written = 0;
    }

    /// Whether a close was requested.
    pub fn closing(&self) -> bool {
        self.lock().closing
    }

    /// Whether the connection task has to drive the writes (the socket refused bytes).
    pub(crate) fn blocked(&self) -> bool {
        self.lock().blocked
    }

    /// Whether a write failed.
    pub(crate) fn failed(&self) -> bool {
        self.lock().failed
    }

    /// Whether nothing is left to write.
    pub fn is_empty(&self) -> bool {
        self.lock().frames.is_empty()
    }

    /// Wait until the actor asks the task for something (close, blocked socket, failed
    /// write). May wake spuriously.
    pub async fn changed(&self) {
        self.notify.notified().await;
    }

    /// Write what is queued without waiting (the actor's end-of-turn flush). When the
    /// socket cannot take it all, the connection task is woken to finish the job. Returns
    /// `Some(bytes still queued)` when the engine should hear that the connection drained
    /// back under half its limit.
    pub fn flush_now(&self) -> Option<u64> {
        let mut g = self.lock();
        g.scheduled = false;
        if g.blocked || g.failed || g.io.is_none() || g.frames.is_empty() {
            return None;
        }
        if self.spaced && Self::gap_until(&g).is_some() {
            // Too soon after the previous write: the connection task writes after the gap.
            g.blocked = true;
            drop(g);
            self.notify.notify_one();
            return None;
        }
        let mut cx = Context::from_waker(Waker::noop());
        // A spaced queue: the first frame now, the rest after the gap (by the task).
        let max = if self.spaced { 1 } else { usize::MAX };
        match self.write_queue(&mut g, &mut cx, max) {
            Poll::Ready(Ok(())) if self.spaced && !g.frames.is_empty() => {
                g.blocked = true;
                drop(g);
                self.notify.notify_one();
                return None;
            }
            Poll::Ready(Ok(())) => {}
            Poll::Pending => {
                // The no-op waker is registered now; the task re-registers its own.
                g.blocked = true;
                drop(g);
                self.notify.notify_one();
                return None;
            }
            Poll::Ready(Err(_)) => {
                g.failed = true;
                drop(g);
                self.notify.notify_one();
                return None;
            }
        }
        drop(g);
        self.take_drained()
    }

    /// Write until the queue is empty (Ready) or the socket is full (Pending, the task
    /// is woken when it drains). For the connection task, which waits for
    /// [`Outbound::next_write_at`] first.
    pub(crate) fn poll_write_queue(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut g = self.lock();
        if g.failed {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        match self.write_queue(&mut g, cx, usize::MAX) {
            Poll::Pending => {
                g.blocked = true;
                Poll::Pending
            }
            Poll::Ready(r) => {
                g.blocked = false;
                if r.is_err() {
                    g.failed = true;
                }
                Poll::Ready(r)
            }
        }
    }

    /// Write until the queue is empty, after the gap of a spaced queue. For the
    /// connection task.
    pub(crate) async fn write_all(&self) -> io::Result<()> {
        if let Some(at) = self.next_write_at() {
            tokio::time::sleep_until(at.into()).await;
        }
        std::future::poll_fn(|cx| self.poll_write_queue(cx)).await
    }

    /// Read from the socket into `buf` (for the connection task).
    pub(crate) fn poll_read(
        &self,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let mut g = self.lock();
        match g.io.as_mut() {
            Some(io) => Pin::new(io).poll_read(cx, buf),
            None => Poll::Ready(Err(io::ErrorKind::NotConnected.into())),
        }
    }

    /// `Some(bytes still queued)` once after the connection drained back to the engine's
    /// `under` threshold while the engine believed it over.
    pub fn take_drained(&self) -> Option<u64> {
        let left = self.queued.load(Ordering::Acquire);
        (self.pressure.crossing(true, left) == Some(false)
            && self.reported_over.swap(false, Ordering::AcqRel))
        .then_some(left)
    }

    /// Whether a drained report taken with [`Outbound::take_drained`] still holds when the
    /// actor reads it: not if the queue was reported over its limit again meanwhile (the
    /// report travels through the actor's mailbox from a connection task or a write
    /// thread; the newer over report must win, or the engine would believe the
    /// connection under its limit while it is not).
    pub fn drained_still_current(&self) -> bool {
        !self.reported_over.load(Ordering::Acquire)
    }

    /// Write the queue, or its first `max` entries (a spaced queue's entries are single
    /// frames); a spaced queue notes the time.
    fn write_queue(&self, g: &mut Inner, cx: &mut Context<'_>, max: usize) -> Poll<io::Result<()>> {
        let Inner {
            frames,
            head_written,
            io,
            last_write,
            ..
        } = g;
        let Some(io) = io.as_mut() else {
            return Poll::Ready(Err(io::ErrorKind::NotConnected.into()));
        };
        let mut left = max;
        while !frames.is_empty() && left > 0 {
            let polled = if let Some(f) = frames.only() {
                // One frame (a paced fan-out's every write): no vector of IOV slices to fill.
                let one = [IoSlice::new(&f[*head_written..])];
                Pin::new(&mut *io).poll_write_vectored(cx, &one)
            } else {
                let mut slices = [IoSlice::new(&[]); IOV];
                let n = frames.fill(
                    *head_written,
                    &mut slices[..IOV.min(left)],
                    self.write_batch,
                );
                Pin::new(&mut *io).poll_write_vectored(cx, &slices[..n])
            };
            let mut written = match polled {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(w)) => w,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            };
            self.queued.fetch_sub(written as u64, Ordering::AcqRel);
            if self.spaced {
                *last_write = Some(Instant::now());
            }
            while written > 0 {
                let rest = frames.front().expect("bytes written were queued").len() - *head_written;
                if written >= rest {
                    written -= rest;
                    *head_written = 0;
                    frames.pop_front();
                    left -= 1;
                } else {
                    *head_written += written;
                    written = 0;
                }
            }
        }
        frames.shrink_when_empty();
        Pin::new(&mut *io).poll_flush(cx)
    }
}

/// Write `q` out as its connection task does (a spaced queue one gap after another),
/// while `client` reads everything sent (bounded by a timeout); the queue is then empty,
/// and its socket dropped. For tests of the queue and of the actor.
#[cfg(test)]
pub(crate) async fn write_out_and_read(
    q: &Outbound,
    client: &mut tokio::io::DuplexStream,
) -> Vec<u8> {
    let task = async {
        while !q.is_empty() {
            q.write_all().await.unwrap();
        }
        assert_eq!(q.lock().frames.frame_count(), 0);
        q.detach(); // the client then reads to the end
    };
    let mut got = vec![];
    let read = tokio::io::AsyncReadExt::read_to_end(client, &mut got);
    let both = async { tokio::join!(task, read).1 };
    tokio::time::timeout(std::time::Duration::from_secs(10), both)
        .await
        .expect("the queue was not written out")
        .unwrap();
    got
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(s: &str) -> Bytes {
        crate::codec::encode(crate::codec::OP_TEXT, s.as_bytes())
    }

    #[tokio::test]
    async fn frames_are_bounded_counted_and_written_in_order_with_pings_first() {
        let q = Outbound::new(2, 10, 1 << 16);
        assert_eq!(q.push(frame("ab")), Ok((4, true)));
        assert_eq!(q.push(frame("cde")), Ok((9, false)));
        assert_eq!(q.push(frame("x")), Err(PushError::Full));
        assert!(!q.push_control(crate::codec::ping()));
        let (client, server) = tokio::io::duplex(1024);
        q.attach(Stream::boxed(server));
        assert!(q.is_empty());
        assert_eq!(q.queued.load(Ordering::Acquire), 0);
        let mut got = vec![0u8; 11];
        tokio::io::AsyncReadExt::read_exact(&mut { client }, &mut got)
            .await
            .unwrap();
        assert_eq!(
            got,
            [0x89, 0, 0x81, 2, b'a', b'b', 0x81, 3, b'c', b'd', b'e']
        );
    }

    #[tokio::test]
    async fn an_idle_queue_keeps_room_for_a_few_frames_and_gives_a_burst_back() {
        let q = Outbound::new(1000, 1 << 20, 1 << 16);
        let (mut client, server) = tokio::io::duplex(1 << 16);
        q.attach(Stream::boxed(server));
        q.push(frame("one")).unwrap();
        assert_eq!(
            q.lock().frames.spare(),
            0,
            "one frame waiting allocates nothing"
        );
        assert_eq!(q.flush_now(), None);
        assert_eq!(read_frame(&mut client, 5).await, b"one");
        q.push(frame("two")).unwrap();
        q.push(frame("three")).unwrap();
        assert_eq!(q.flush_now(), None);
        assert_eq!(read_frame(&mut client, 5).await, b"two");
        assert_eq!(read_frame(&mut client, 7).await, b"three");
        let kept = q.lock().frames.spare();
        assert!((1..=queue::KEEP_ENTRIES).contains(&kept), "kept {kept}");
        for _ in 0..100 {
            q.push(frame("x")).unwrap();
        }
        assert!(q.lock().frames.spare() > queue::KEEP_ENTRIES);
        assert_eq!(q.flush_now(), None);
        assert!(q.is_empty());
        assert_eq!(q.lock().frames.spare(), 0, "a burst's queue is given back");
    }

    async fn read_frame(client: &mut tokio::io::DuplexStream, len: usize) -> Vec<u8> {
        let mut got = vec![0u8; len];
        tokio::io::AsyncReadExt::read_exact(client, &mut got)
            .await
            .unwrap();
        got.split_off(2)
    }

    #[tokio::test]
    async fn a_spaced_queue_writes_the_first_frame_now_and_the_rest_after_the_gap() {
        let q = Outbound::new(16, 1000, 1 << 16).spaced();
        let (mut client, server) = tokio::io::duplex(1024);
        q.attach(Stream::boxed(server));
        q.push(frame("one")).unwrap();
        q.push(frame("two")).unwrap();
        q.push(frame("six")).unwrap();
        // The actor's flush writes the first frame and hands the rest to the task.
        assert_eq!(q.flush_now(), None);
        assert!(q.blocked());
        assert_eq!(q.queued.load(Ordering::Acquire), 10);
        assert_eq!(read_frame(&mut client, 5).await, b"one");
        let at = q.next_write_at().expect("the rest waits for the gap");
        assert!(at <= Instant::now() + FRAME_GAP);
        // The task writes everything left, once the gap has passed.
        q.write_all().await.unwrap();
        assert!(Instant::now() >= at);
        assert!(!q.blocked());
        assert!(q.is_empty());
        assert_eq!(read_frame(&mut client, 10).await, b"two\x81\x03six");
        // A frame queued right after a write waits too: the actor leaves it to the task.
        q.push(frame("ten")).unwrap();
        assert_eq!(q.flush_now(), None);
        assert!(q.blocked());
        assert!(q.next_write_at().is_some());
    }

    #[tokio::test]
    async fn a_frame_from_the_client_lifts_the_gap_of_a_spaced_queue() {
        let q = Outbound::new(16, 1000, 1 << 16).spaced();
        let (mut client, server) = tokio::io::duplex(1024);
        q.attach(Stream::boxed(server));
        q.push(frame("ask")).unwrap();
        q.flush_now();
        assert!(q.next_write_at().is_some());
        q.heard_from_client();
        assert_eq!(q.next_write_at(), None);
        // The answer to the client goes out at once, from the actor's flush.
        q.push(frame("ack")).unwrap();
        q.flush_now();
        assert!(!q.blocked());
        assert!(q.is_empty());
        assert_eq!(read_frame(&mut client, 10).await, b"ask\x81\x03ack");
    }

    #[test]
    fn a_drained_report_overtaken_by_a_newer_over_report_no_longer_holds() {
        let q = Outbound::new(16, 100, 1 << 16);
        q.reported_over.store(true, Ordering::Release);
        // Drained back under the limit: reported once.
        assert_eq!(q.take_drained(), Some(0));
        assert!(q.drained_still_current());
        // Before the actor reads that report, the queue goes over again and says so.
        q.reported_over.store(true, Ordering::Release);
        assert!(!q.drained_still_current());
    }

    #[test]
    fn a_queue_that_is_not_spaced_never_waits() {
        let q = Outbound::new(16, 1000, 1 << 16);
        q.heard_from_client();
        assert_eq!(q.next_write_at(), None);
    }

    #[tokio::test]
    async fn a_full_socket_blocks_and_the_task_finishes_the_write() {
        let q = Outbound::new(16, 4, 1 << 16);
        let (mut client, server) = tokio::io::duplex(8);
        q.attach(Stream::boxed(server));
        q.push(frame("0123456789")).unwrap();
        q.reported_over.store(true, Ordering::Release);
        assert_eq!(q.flush_now(), None);
        assert!(q.blocked());
        assert_eq!(q.queued.load(Ordering::Acquire), 4);
        let reader = tokio::spawn(async move {
            let mut got = vec![0u8; 12];
            tokio::io::AsyncReadExt::read_exact(&mut client, &mut got)
                .await
                .unwrap();
            got
        });
        std::future::poll_fn(|cx| q.poll_write_queue(cx))
            .await
            .unwrap();
        assert!(!q.blocked());
        assert_eq!(&reader.await.unwrap()[2..], b"0123456789");
        assert_eq!(q.take_drained(), Some(0));
        assert_eq!(q.take_drained(), None);
    }

    #[tokio::test]
    async fn closing_refuses_frames_and_end_keeps_a_partly_written_frame() {
        let q = Outbound::new(16, 1000, 1 << 16);
        let (_client, server) = tokio::io::duplex(4);
        q.attach(Stream::boxed(server));
        q.push(frame("abcdef")).unwrap();
        q.flush_now();
        q.push(frame("gh")).unwrap();
        q.close(1000, "bye");
        assert!(q.closing());
        assert_eq!(q.push(frame("late")), Err(PushError::Gone));
        q.end();
        // 4 of 8 bytes of the first frame went out; the rest of it stays.
        assert_eq!(q.queued.load(Ordering::Acquire), 4);
        q.detach();
        assert!(q.is_empty());
    }

    #[tokio::test]
    async fn a_ping_queued_behind_a_partly_written_frame_goes_out_after_it() {
        let q = Outbound::new(16, 1 << 20, 1 << 16);
        let (mut client, server) = tokio::io::duplex(4);
        q.attach(Stream::boxed(server));
        q.push(frame("abcdef")).unwrap();
        q.push(frame("gh")).unwrap();
        assert_eq!(q.flush_now(), None);
        assert!(q.blocked(), "4 of the first frame's 8 bytes went out");
        q.push_control(crate::codec::ping());
        let got = write_out_and_read(&q, &mut client).await;
        assert_eq!(
            got,
            [0x81, 6, b'a', b'b', b'c', b'd', b'e', b'f', 0x89, 0, 0x81, 2, b'g', b'h'],
            "the first frame whole, then the ping, then the rest"
        );
    }

    /// Two encoded frames in one buffer, as the actor's batches give them.
    fn two(a: &str, b: &str) -> Bytes {
        [frame(a), frame(b)].concat().into()
    }

    #[test]
    fn frames_given_together_count_as_frames_and_are_refused_whole() {
        let q = Outbound::new(4, 1 << 20, 1 << 16);
        assert_eq!(q.push_frames(two("ab", "c"), 2), Ok((7, true)));
        let three: Bytes = [frame("d"), frame("e"), frame("f")].concat().into();
        assert_eq!(q.push_frames(three, 3), Err(PushError::Full), "room for 2");
        assert_eq!(q.queued.load(Ordering::Acquire), 7, "nothing of it queued");
        assert_eq!(q.push(frame("d")), Ok((10, false)));
        assert_eq!(q.push(frame("e")), Ok((13, false)));
        assert_eq!(q.push(frame("f")), Err(PushError::Full));
        let g = q.lock();
        assert_eq!((g.frames.entries(), g.frames.frame_count()), (3, 4));
    }

    #[tokio::test]
    async fn a_ping_behind_a_partly_written_batch_waits_for_all_of_its_frames() {
        let q = Outbound::new(16, 1 << 20, 1 << 16);
        let (mut client, server) = tokio::io::duplex(4);
        q.attach(Stream::boxed(server));
        q.push_frames(two("abc", "de"), 2).unwrap();
        q.push(frame("f")).unwrap();
        assert_eq!(q.flush_now(), None);
        assert!(q.blocked(), "4 of the batch's 9 bytes went out");
        q.push_control(crate::codec::ping());
        assert_eq!(q.lock().frames.frame_count(), 4);
        let got = write_out_and_read(&q, &mut client).await;
        assert_eq!(
            got,
            [0x81, 3, b'a', b'b', b'c', 0x81, 2, b'd', b'e', 0x89, 0, 0x81, 1, b'f'],
            "the batch whole, then the ping, then the rest"
        );
    }

    #[tokio::test]
    async fn end_keeps_a_partly_written_batch_whole_and_drops_the_rest() {
        let q = Outbound::new(16, 1 << 20, 1 << 16);
        let (_client, server) = tokio::io::duplex(4);
        q.attach(Stream::boxed(server));
        q.push_frames(two("abc", "de"), 2).unwrap();
        q.push_frames(two("f", "g"), 2).unwrap();
        q.flush_now();
        q.end();
        // 4 of the first batch's 9 bytes went out; its 5 others stay, the second goes.
        assert_eq!(q.queued.load(Ordering::Acquire), 5);
        let g = q.lock();
        assert_eq!((g.frames.entries(), g.frames.frame_count()), (1, 2));
    }
}
