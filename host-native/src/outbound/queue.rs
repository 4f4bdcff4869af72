//! The frames waiting in one connection's outbound queue.

use std::collections::VecDeque;
use std::io::IoSlice;

use bytes::Bytes;

/// The queue capacity (in entries, after the first) a connection keeps once its queue
/// is written out: the least a `VecDeque` of `(Bytes, u32)` allocates (4 × 40 bytes).
/// A connection that often has two to five entries waiting at once does not allocate
/// its queue again for each; a burst's larger one is freed.
pub(super) const KEEP_ENTRIES: usize = 4;

/// The frames waiting for one connection, in order. The first entry is kept in place,
/// in the connection's own state (40 bytes there with the counts), and only the entries
/// behind it in a `VecDeque`: a connection that is sent one frame at a time (a paced
/// fan-out, replies, an idle subscription's welcome and acknowledgement) never allocates
/// a queue, and the write of its frame reads no second allocation (BENCHMARKS.md, "Issue 18: writes
/// without tokio's readiness check, the first frame kept in place").
///
/// An entry is one buffer of encoded frames: usually one frame, or several a fan-out
/// sent to the same recipients back to back (`crate::actor`'s batches). Each entry
/// keeps its frame count, so the queue's bound is in frames whatever the entries.
#[derive(Default)]
pub(super) struct Frames {
    /// The first entry; `None` only when the queue is empty.
    head: Option<Bytes>,
    /// Frames in `head`.
    head_frames: u32,
    /// Frames queued, in every entry.
    frames: u32,
    /// The entries after `head`, with their frame counts.
    rest: VecDeque<(Bytes, u32)>,
}

impl Frames {
    /// How many entries wait (buffers, each of one frame or more).
    pub(super) fn entries(&self) -> usize {
        usize::from(self.head.is_some()) + self.rest.len()
    }

    /// How many frames wait, in every entry.
    pub(super) fn frame_count(&self) -> usize {
        self.frames as usize
    }

    /// Whether nothing waits.
    pub(super) fn is_empty(&self) -> bool {
        self.head.is_none()
    }

    /// The entry waiting when it is the only one.
    pub(super) fn only(&self) -> Option<&Bytes> {
        self.head.as_ref().filter(|_| self.rest.is_empty())
    }

    /// The first entry.
    pub(super) fn front(&self) -> Option<&Bytes> {
        self.head.as_ref()
    }

    /// The entries in order.
    pub(super) fn iter(&self) -> impl Iterator<Item = &Bytes> {
        self.head.iter().chain(self.rest.iter().map(|(b, _)| b))
    }

    /// Fill `out` with the entries in order for one vectored write, the first from byte
    /// `skip` on: at most `out.len()` of them, the last being the one that brings them to
    /// at least `batch` bytes. Returns how many slices were filled.
    pub(super) fn fill<'a>(&'a self, skip: usize, out: &mut [IoSlice<'a>], batch: usize) -> usize {
        let (Some(head), Some(first)) = (&self.head, out.first_mut()) else {
            return 0;
        };
        *first = IoSlice::new(&head[skip..]);
        let mut bytes = first.len();
        let mut n = 1;
        for (f, _) in &self.rest {
            if n == out.len() || bytes >= batch {
                break;
            }
            out[n] = IoSlice::new(f);
            bytes += f.len();
            n += 1;
        }
        n
    }

    /// Queue an entry of `frames` frames last.
    pub(super) fn push_back(&mut self, bytes: Bytes, frames: u32) {
        self.frames += frames;
        if self.head.is_none() {
            self.head = Some(bytes);
            self.head_frames = frames;
        } else {
            self.rest.push_back((bytes, frames));
        }
    }

    /// Queue a one-frame entry at position `at` (last when `at` is past the end).
    pub(super) fn insert(&mut self, at: usize, frame: Bytes) {
        self.frames += 1;
        if at == 0 || self.head.is_none() {
            if let Some(old) = self.head.replace(frame) {
                self.rest.push_front((old, self.head_frames));
            }
            self.head_frames = 1;
        } else {
            self.rest.insert((at - 1).min(self.rest.len()), (frame, 1));
        }
    }

    /// Take the first entry off.
    pub(super) fn pop_front(&mut self) -> Option<Bytes> {
        let first = self.head.take();
        self.frames -= self.head_frames;
        (self.head, self.head_frames) = match self.rest.pop_front() {
            Some((b, n)) => (Some(b), n),
            None => (None, 0),
        };
        first
    }

    /// Keep the first `len` entries, drop the rest.
    pub(super) fn truncate(&mut self, len: usize) {
        if len == 0 {
            self.head = None;
            self.head_frames = 0;
            self.frames = 0;
            self.rest.clear();
        } else if len - 1 < self.rest.len() {
            let dropped: u32 = self.rest.drain(len - 1..).map(|(_, n)| n).sum();
            self.frames -= dropped;
        }
    }

    /// Drop every frame and the queue's allocation.
    pub(super) fn clear(&mut self) {
        *self = Self::default();
    }

    /// Once the queue is written out: give a burst's allocation back, keep a small one
    /// ([`KEEP_ENTRIES`]).
    pub(super) fn shrink_when_empty(&mut self) {
        if self.head.is_none() && self.rest.capacity() > KEEP_ENTRIES {
            self.rest = VecDeque::new();
        }
    }

    /// Entries the queue has room for behind the first without allocating.
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
        q.push_back(frame(3), 1);
        q.insert(1, frame(2));
        q.insert(0, frame(0));
        q.insert(99, frame(4)); // past the end: last
        assert_eq!(contents(&q), [0, 1, 2, 3, 4]);
        assert_eq!(q.entries(), 5);
        assert_eq!(q.front().map(|f| f[0]), Some(0));
        let mut out = Vec::new();
        while let Some(f) = q.pop_front() {
            out.push(f[0]);
        }
        assert_eq!(out, [0, 1, 2, 3, 4]);
        assert!(q.is_empty());
        assert_eq!(q.entries(), 0);
    }

    #[test]
    fn a_vectored_write_takes_the_frames_in_order_up_to_its_batch() {
        let mut q = Frames::default();
        assert_eq!(
            q.fill(0, &mut [IoSlice::new(&[])], 100),
            0,
            "nothing to write"
        );
        q.push_back(Bytes::from_static(b"abcd"), 1);
        q.push_back(Bytes::from_static(b"ef"), 1);
        q.push_back(Bytes::from_static(b"ghi"), 1);
        q.push_back(Bytes::from_static(b"j"), 1);
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
            q.push_back(frame(n), 1);
            assert!(q.only().is_some());
            assert_eq!(q.pop_front().map(|f| f[0]), Some(n));
            q.shrink_when_empty();
        }
        assert_eq!(q.spare(), 0);
    }

    #[test]
    fn truncating_keeps_the_first_frames_and_clearing_frees_the_queue() {
        let mut q = Frames::default();
        (0..10).for_each(|n| q.push_back(frame(n), 1));
        q.truncate(3);
        assert_eq!(contents(&q), [0, 1, 2]);
        q.truncate(1);
        assert_eq!(contents(&q), [0]);
        assert!(q.only().is_some());
        q.truncate(0);
        assert!(q.is_empty());
        (0..10).for_each(|n| q.push_back(frame(n), 1));
        q.clear();
        assert!(q.is_empty());
        assert_eq!(q.spare(), 0);
    }

    #[test]
    fn an_emptied_queue_keeps_a_small_allocation_and_gives_a_burst_back() {
        let mut q = Frames::default();
        (0..3).for_each(|n| q.push_back(frame(n), 1));
        while q.pop_front().is_some() {}
        q.shrink_when_empty();
        let kept = q.spare();
        assert!(kept > 0 && kept <= KEEP_ENTRIES, "kept {kept}");
        (0..100).for_each(|n| q.push_back(frame(n), 1));
        q.shrink_when_empty(); // not empty: nothing changes
        assert!(q.spare() > KEEP_ENTRIES);
        while q.pop_front().is_some() {}
        q.shrink_when_empty();
        assert_eq!(q.spare(), 0);
    }

    #[test]
    fn entries_of_several_frames_count_every_frame_until_written_or_dropped() {
        let mut q = Frames::default();
        q.push_back(frame(0), 3);
        q.insert(0, frame(9)); // a ping ahead: one frame
        q.push_back(frame(1), 5);
        q.push_back(frame(2), 1);
        assert_eq!((q.entries(), q.frame_count()), (4, 10));
        assert_eq!(q.pop_front().map(|f| f[0]), Some(9));
        assert_eq!((q.entries(), q.frame_count()), (3, 9));
        q.truncate(2);
        assert_eq!((q.entries(), q.frame_count()), (2, 8));
        assert_eq!(q.pop_front().map(|f| f[0]), Some(0));
        assert_eq!(q.frame_count(), 5);
        q.truncate(0);
        assert_eq!((q.entries(), q.frame_count()), (0, 0));
        q.push_back(frame(3), 2);
        assert_eq!(q.frame_count(), 2);
        q.clear();
        assert_eq!(q.frame_count(), 0);
    }
}
