//! One connection's outbound side: a bounded frame queue plus the socket controls
//! (ping, close), shared by the actor (producer) and the connection's writer.
//!
//! A hand-rolled queue instead of two tokio channels: it allocates nothing until a
//! frame is queued and gives memory back after a burst, which matters at tens of
//! thousands of mostly idle connections. Frames are bounded by `server.outboundQueue`;
//! bytes are counted so the engine can be told (`Input::Backpressure`) when a client
//! falls behind; pings and the close never need room.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::Message;

/// Why a frame was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushError {
    /// The queue holds `server.outboundQueue` frames.
    Full,
    /// The writer has ended.
    Gone,
}

/// What the writer should do next.
#[derive(Debug)]
pub enum Next {
    /// Send a ping.
    Ping,
    /// Write the frames still queued, then this close frame.
    Close(u16, String),
    /// Write this frame.
    Frame(Message),
}

#[derive(Debug, Default)]
struct Inner {
    frames: VecDeque<Message>,
    ping: bool,
    close: Option<(u16, String)>,
    gone: bool,
}

/// The shared outbound state of one connection.
#[derive(Debug)]
pub struct Outbound {
    inner: Mutex<Inner>,
    notify: Notify,
    capacity: usize,
    /// Bytes queued and not yet written.
    pub queued: AtomicU64,
    /// Whether the engine was last told that this connection is over the limit.
    pub reported_over: AtomicBool,
    /// The engine's `limits.maxBufferedBytes`.
    pub limit: u64,
}

/// Frames kept allocated in an empty queue after a burst.
const KEEP: usize = 8;

impl Outbound {
    /// A queue of at most `capacity` frames, reporting past `limit` bytes.
    pub fn new(capacity: usize, limit: u64) -> Self {
        Self {
            inner: Mutex::new(Inner::default()),
            notify: Notify::new(),
            capacity: capacity.max(1),
            queued: AtomicU64::new(0),
            reported_over: AtomicBool::new(false),
            limit,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queue a frame; returns the bytes queued afterwards.
    pub fn push(&self, msg: Message) -> Result<u64, PushError> {
        let len = msg.len() as u64;
        let queued = {
            let mut g = self.lock();
            if g.gone {
                return Err(PushError::Gone);
            }
            if g.frames.len() >= self.capacity {
                return Err(PushError::Full);
            }
            // Count before the frame becomes visible to the writer, which subtracts
            // after popping it: counting afterwards let the counter wrap below zero.
            let queued = self.queued.fetch_add(len, Ordering::AcqRel) + len;
            g.frames.push_back(msg);
            queued
        };
        self.notify.notify_one();
        Ok(queued)
    }

    /// Ask for a ping.
    pub fn ping(&self) {
        self.lock().ping = true;
        self.notify.notify_one();
    }

    /// Ask for the close (after the frames already queued).
    pub fn close(&self, code: u16, reason: String) {
        self.lock().close = Some((code, reason));
        self.notify.notify_one();
    }

    /// Whether a close was requested and not yet taken.
    pub fn close_requested(&self) -> bool {
        self.lock().close.is_some()
    }

    /// The writer has ended: refuse further frames and free the queue.
    pub fn writer_gone(&self) {
        let mut g = self.lock();
        g.gone = true;
        g.frames = VecDeque::new();
    }

    /// The next queued frame without waiting (used to drain before a close or to batch).
    pub fn try_pop(&self) -> Option<Message> {
        let mut g = self.lock();
        let m = g.frames.pop_front();
        if g.frames.is_empty() && g.frames.capacity() > KEEP {
            g.frames.shrink_to(KEEP);
        }
        m
    }

    /// Wait for the next thing to do: a close wins, then a ping, then frames in order.
    pub async fn next(&self) -> Next {
        loop {
            {
                let mut g = self.lock();
                if let Some((code, reason)) = g.close.take() {
                    return Next::Close(code, reason);
                }
                if std::mem::take(&mut g.ping) {
                    return Next::Ping;
                }
                if let Some(m) = g.frames.pop_front() {
                    if g.frames.is_empty() && g.frames.capacity() > KEEP {
                        g.frames.shrink_to(KEEP);
                    }
                    return Next::Frame(m);
                }
            }
            self.notify.notified().await;
        }
    }

    /// Wait until something is pushed or requested (may wake spuriously).
    pub async fn changed(&self) {
        self.notify.notified().await;
    }

    /// Record `bytes` written; returns the bytes still queued.
    pub fn written(&self, bytes: u64) -> u64 {
        self.queued
            .fetch_sub(bytes, Ordering::AcqRel)
            .saturating_sub(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn order_capacity_and_controls() {
        let q = Outbound::new(2, 10);
        assert_eq!(q.push(Message::text("ab")), Ok(2));
        assert_eq!(q.push(Message::text("cde")), Ok(5));
        assert_eq!(q.push(Message::text("x")), Err(PushError::Full));
        q.ping();
        assert!(matches!(q.next().await, Next::Ping));
        assert!(matches!(q.next().await, Next::Frame(m) if m.len() == 2));
        q.close(1000, "bye".into());
        assert!(q.close_requested());
        assert!(matches!(q.next().await, Next::Close(1000, _)));
        assert!(q.try_pop().is_some());
        assert_eq!(q.written(5), 0);
        q.writer_gone();
        assert_eq!(q.push(Message::text("y")), Err(PushError::Gone));
    }

    #[tokio::test]
    async fn next_waits_for_a_push() {
        let q = std::sync::Arc::new(Outbound::new(4, 10));
        let q2 = q.clone();
        let t = tokio::spawn(async move { matches!(q2.next().await, Next::Frame(_)) });
        tokio::task::yield_now().await;
        q.push(Message::text("z")).unwrap();
        assert!(t.await.unwrap());
    }
}
