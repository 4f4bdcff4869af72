//! The frames waiting in one connection's outbound queue.

use std::collections::VecDeque;
use std::io::IoSlice;

use bytes::Bytes;

/// The queue capacity (in frames, after the first) a connection keeps once its queue is
/// written out: the least a `VecDeque` of `Bytes` allocates (4 × 32 bytes). A connection
/// that often has two to five frames waiting at once does not allocate its queue again
/// for each; a burst's larger one is freed.
pub(super) const KEEP_FRAMES: usize = 4;

/// The frames waiting for one connection, in order. The first is kept in place, in the
/// connection's own state (32 bytes there), and only the frames behind it in a
/// `VecDeque`: a connection that is sent one frame at a time (a paced fan-out, replies,
/// an idle subscription's welcome and acknowledgement) never allocates a queue, and the
/// write of its frame reads no second allocation (BENCHMARKS.md, "Issue 18: writes
/// without tokio's readiness check, the first frame kept in place").
#[derive(Default)]
pub(super) struct Frames {
    /// The first frame; `None` only when the queue is empty.
    head: Option<Bytes>,
    /// The frames after `head`.
    rest: VecDeque<Bytes>,
}

impl Frames {
    /// How many frames wait.
    pub(super) fn len(&self) -> usize {
        usize::from(self.head.is_some()) + self.rest.len()
    }

    /// Whether no frame waits.
    pub(super) fn is_empty(&self) -> bool {
        self.head.is_none()
    }

    /// The frame waiting when it is the only one.
    pub(super) fn only(&self) -> Option<&Bytes> {
        self.head.as_ref().filter(|_| self.rest.is_empty())
    }

    /// The first frame.
    pub(super) fn front(&self) -> Option<&Bytes> {
        self.head.as_ref()
    }

    /// The frames in order.
    pub(super) fn iter(&self) -> impl Iterator<Item = &Bytes> {
        self.head.iter().chain(self.rest.iter())
    }

    /// Fill `out` with the frames in order for one vectored write, the first from byte
    /// `skip` on: at most `out.len()` of them, the last being the one that brings them to
    /// at least `batch` bytes. Returns how many slices were filled.
    pub(super) fn fill<'a>(&'a self, skip: usize, out: &mut [IoSlice<'a>], batch: usize) -> usize {
        let (Some(head), Some(first)) = (&self.head, out.first_mut()) else {
            return 0;
        };
        *first = IoSlice::new(&head[skip..]);
        let mut bytes = first.len();
        let mut n = 1;
        for f in &self.rest {
            if n == out.len() || bytes >= batch {
                break;
            }
            out[n] = IoSlice::new(f);
            bytes += f.len();
            n += 1;
        }
        n
    }

    /// Queue a frame last.
    pub(super) fn push_back(&mut self, frame: Bytes) {
        if self.head.is_none() {
            self.head = Some(frame);
        } else {
            self.rest.push_back(frame);
        }
    }

    /// Queue a frame at position `at` (last when `at` is past the end).
    pub(super) fn insert(&mut self, at: usize, frame: Bytes) {
        if at == 0 {
            if let Some(old) = self.head.replace(frame) {
                self.rest.push_front(old);
            }
        } else if self.head.is_none() {
            self.head = Some(frame);
        } else {
            self.rest.insert((at - 1).min(self.rest.len()), frame);
        }
    }

    /// Take the first frame off.
    pub(super) fn pop_front(&mut self) -> Option<Bytes> {
        let first = self.head.take();
        self.head = self.rest.pop_front();
        first
    }

    /// Keep the first `len` frames, drop the rest.
    pub(super) fn truncate(&mut self, len: usize) {
        if len == 0 {
            self.head = None;
            self.rest.clear();
        } else {
            self.rest.truncate(len - 1);
        }
    }

    /// Drop every frame and the queue's allocation.
    pub(super) fn clear(&mut self) {
        *self = Self::default();
    }

    /// Once the queue is written out: give a burst's allocation back, keep a small one
    /// ([`KEEP_FRAMES`]).
    pub(super) fn shrink_when_empty(&mut self) {
        if self.head.is_none() && self.rest.capacity() > KEEP_FRAMES {
            self.rest = VecDeque::new();
        }
    }

    /// Frames the queue has room for behind the first without allocating.
    #[cfg(test)]
    pub(super) fn spare(&self) -> usize {
        self.rest.capacity()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(n: u8) -> Bytes {
        Bytes::from(vec![n])
    }

    fn contents(q: &Frames) -> Vec<u8> {
        q.iter().map(|f| f[0]).collect()
    }

    #[test]
    fn frames_come_out_in_the_order_queued_and_inserted() {
        let mut q = Frames::default();
        assert!(q.is_empty());
        q.insert(0, frame(1)); // into an empty queue
        q.push_back(frame(3));
        q.insert(1, frame(2));
        q.insert(0, frame(0));
        q.insert(99, frame(4)); // past the end: last
        assert_eq!(contents(&q), [0, 1, 2, 3, 4]);
        assert_eq!(q.len(), 5);
        assert_eq!(q.front().map(|f| f[0]), Some(0));
        let mut out = Vec::new();
        while let Some(f) = q.pop_front() {
            out.push(f[0]);
        }
        assert_eq!(out, [0, 1, 2, 3, 4]);
        assert!(q.is_empty());
        assert_eq!(q.len(), 0);
    }

    #[test]
    fn a_vectored_write_takes_the_frames_in_order_up_to_its_batch() {
        let mut q = Frames::default();
        assert_eq!(
            q.fill(0, &mut [IoSlice::new(&[])], 100),
            0,
            "nothing to write"
        );
        q.push_back(Bytes::from_static(b"abcd"));
        q.push_back(Bytes::from_static(b"ef"));
        q.push_back(Bytes::from_static(b"ghi"));
        q.push_back(Bytes::from_static(b"j"));
        let mut out = [IoSlice::new(&[]); 8];
        let n = q.fill(1, &mut out, 100);
        let parts: Vec<&[u8]> = out[..n].iter().map(|s| &s[..]).collect();
        assert_eq!(
            parts,
            [&b"bcd"[..], b"ef", b"ghi", b"j"],
            "the first from byte 1 on"
        );
        // The frame that reaches the batch is the last one taken.
        assert_eq!(q.fill(0, &mut out, 6), 2);
        assert_eq!(q.fill(0, &mut out, 7), 3);
        // At most as many frames as slices.
        assert_eq!(q.fill(0, &mut out[..2], 100), 2);
    }

    #[test]
    fn one_frame_at_a_time_allocates_no_queue() {
        let mut q = Frames::default();
        for n in 0..100 {
            q.push_back(frame(n));
            assert!(q.only().is_some());
            assert_eq!(q.pop_front().map(|f| f[0]), Some(n));
            q.shrink_when_empty();
        }
        assert_eq!(q.spare(), 0);
    }

    #[test]
    fn truncating_keeps_the_first_frames_and_clearing_frees_the_queue() {
        let mut q = Frames::default();
        (0..10).for_each(|n| q.push_back(frame(n)));
        q.truncate(3);
        assert_eq!(contents(&q), [0, 1, 2]);
        q.truncate(1);
        assert_eq!(contents(&q), [0]);
        assert!(q.only().is_some());
        q.truncate(0);
        assert!(q.is_empty());
        (0..10).for_each(|n| q.push_back(frame(n)));
        q.clear();
        assert!(q.is_empty());
        assert_eq!(q.spare(), 0);
    }

    #[test]
    fn an_emptied_queue_keeps_a_small_allocation_and_gives_a_burst_back() {
        let mut q = Frames::default();
        (0..3).for_each(|n| q.push_back(frame(n)));
        while q.pop_front().is_some() {}
        q.shrink_when_empty();
        let kept = q.spare();
        assert!(kept > 0 && kept <= KEEP_FRAMES, "kept {kept}");
        (0..100).for_each(|n| q.push_back(frame(n)));
        q.shrink_when_empty(); // not empty: nothing changes
        assert!(q.spare() > KEEP_FRAMES);
        while q.pop_front().is_some() {}
        q.shrink_when_empty();
        assert_eq!(q.spare(), 0);
    }
}
