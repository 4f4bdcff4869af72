//! A fan-out's frames to the same recipients back to back, queued as one buffer per
//! recipient.
//!
//! A burst of publications to one channel makes the engine send frame after frame to
//! the same list of connections (`Action::SendMany`). Queued one by one, each frame
//! costs every recipient a queue entry, a lock, a reference count taken and dropped, and
//! a slice of its vectored write. Within one turn of the actor, consecutive `SendMany`
//! actions to exactly the same connections are collected here instead, their encoded
//! frames copied into one buffer, and each recipient is given that buffer once, when
//! something else needs the order kept or the turn ends (`Actor::release_batch`). This
//! is what uWebSockets' topic tree does when it drains a topic's messages to its
//! subscribers (BENCHMARKS.md, "Issue 18: a burst's frames to the same recipients
//! queued as one buffer").
//!
//! What a recipient receives, and in which order, does not change: only consecutive
//! sends to the same recipients are merged, a send or ping to one of them in between and
//! any other action but an accept release the batch first, and the frames stay whole
//! WebSocket frames one after the other in the buffer. A queue whose frames must be
//! written apart (`Outbound::spaced`) is given the frames one by one, as before; so is a
//! queue that has not room for all of them, up to the first it refuses (the engine is
//! told then, and the rest refused with it).

use bytes::Bytes;
use engine::ConnId;

/// The most bytes one batch collects. A recipient's queue is told about its size (and
/// the engine about a queue over its limit) when the batch is released, at most this
/// much later than frame by frame.
pub(super) const BATCH_BYTES: usize = 16 * 1024;

/// Frames to the same recipients, not yet queued.
#[derive(Default)]
pub(super) struct SendBatch {
    /// The recipients, as the engine listed them.
    conns: Vec<ConnId>,
    /// Whether `conns` is in ascending order (the engine's lists usually are): looked up
    /// by bisection then.
    sorted: bool,
    /// The first frame, as encoded (given as is when it stays alone).
    first: Option<Bytes>,
    /// The frames one after the other, once there are two or more (kept allocated
    /// between batches).
    merged: Vec<u8>,
    /// Where each frame of `merged` ends.
    ends: Vec<usize>,
}

/// A batch taken to be queued.
pub(super) struct Released {
    /// The recipients.
    pub(super) conns: Vec<ConnId>,
    /// The frames, one after the other.
    pub(super) bytes: Bytes,
    /// Where each frame of `bytes` ends; empty for a frame left alone (no allocation
    /// for a fan-out of one publication per turn).
    pub(super) ends: Vec<usize>,
}

impl Released {
    /// How many frames `bytes` holds.
    pub(super) fn count(&self) -> u32 {
        u32::try_from(self.ends.len().max(1)).expect("a batch is at most BATCH_BYTES")
    }

    /// The frames one by one (slices of the same buffer).
    pub(super) fn frames(&self) -> impl Iterator<Item = Bytes> + '_ {
        let alone = self.ends.is_empty().then(|| self.bytes.clone());
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        alone.into_iter().chain(
            starts
                .zip(self.ends.iter().copied())
                .map(|(a, b)| self.bytes.slice(a..b)),
        )
    }
}

impl SendBatch {
    /// Whether no frame waits.
    pub(super) fn is_empty(&self) -> bool {
        self.first.is_none()
    }

    /// Whether `conn` is one of the waiting frames' recipients.
    pub(super) fn addresses(&self, conn: ConnId) -> bool {
        !self.is_empty()
            && if self.sorted {
                self.conns.binary_search(&conn).is_ok()
            } else {
                self.conns.contains(&conn)
            }
    }

    /// Add `frame` for `conns` when it extends the batch: the same recipients and room
    /// left. Returns whether it was added; if not, release the batch and
    /// [`SendBatch::start`] a new one.
    pub(super) fn extend(&mut self, conns: &[ConnId], frame: &Bytes) -> bool {
        let Some(first) = &self.first else {
            return false;
        };
        let len = if self.merged.is_empty() {
            first.len()
        } else {
            self.merged.len()
        };
        if len + frame.len() > BATCH_BYTES || conns != self.conns.as_slice() {
            return false;
        }
        if self.merged.is_empty() {
            self.merged.extend_from_slice(first);
            self.ends.push(first.len());
        }
        self.merged.extend_from_slice(frame);
        self.ends.push(self.merged.len());
        true
    }

    /// Start a batch with `frame` for `conns` (the batch must be empty).
    pub(super) fn start(&mut self, conns: Vec<ConnId>, frame: Bytes) {
        debug_assert!(self.is_empty(), "a batch started over another");
        self.sorted = conns.is_sorted();
        self.conns = conns;
        self.first = Some(frame);
    }

    /// Take the waiting frames to queue them, if any.
    pub(super) fn take(&mut self) -> Option<Released> {
        let first = self.first.take()?;
        let conns = std::mem::take(&mut self.conns);
        if self.merged.is_empty() {
            return Some(Released {
                conns,
                bytes: first,
                ends: Vec::new(),
            });
        }
        // One allocation of the exact size, shared by every recipient; `merged` keeps its
        // capacity for the next batch.
        let bytes = Bytes::copy_from_slice(&self.merged);
        self.merged.clear();
        Some(Released {
            conns,
            bytes,
            ends: std::mem::take(&mut self.ends),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(ids: &[u64]) -> Vec<ConnId> {
        ids.iter().map(|&i| ConnId(i)).collect()
    }

    #[test]
    fn frames_to_the_same_recipients_are_joined_in_order_and_split_back() {
        let mut b = SendBatch::default();
        assert!(!b.extend(&ids(&[1, 2]), &Bytes::from_static(b"x")), "empty");
        b.start(ids(&[1, 2]), Bytes::from_static(b"ab"));
        assert!(b.addresses(ConnId(2)) && !b.addresses(ConnId(3)));
        assert!(b.extend(&ids(&[1, 2]), &Bytes::from_static(b"cde")));
        assert!(b.extend(&ids(&[1, 2]), &Bytes::from_static(b"f")));
        let r = b.take().expect("three frames wait");
        assert_eq!(r.conns, ids(&[1, 2]));
        assert_eq!(&r.bytes[..], b"abcdef");
        let frames: Vec<Bytes> = r.frames().collect();
        assert_eq!(frames, [&b"ab"[..], b"cde", b"f"]);
        assert!(b.is_empty() && b.take().is_none() && !b.addresses(ConnId(1)));
    }

    #[test]
    fn other_recipients_or_a_full_batch_start_a_new_one() {
        let mut b = SendBatch::default();
        b.start(ids(&[1, 2]), Bytes::from_static(b"ab"));
        assert!(!b.extend(&ids(&[2, 1]), &Bytes::from_static(b"c")), "order");
        assert!(!b.extend(&ids(&[1]), &Bytes::from_static(b"c")), "fewer");
        let big = Bytes::from(vec![7u8; BATCH_BYTES - 2]);
        assert!(b.extend(&ids(&[1, 2]), &big), "exactly full");
        assert!(
            !b.extend(&ids(&[1, 2]), &Bytes::from_static(b"c")),
            "past full"
        );
        let r = b.take().expect("two frames wait");
        assert_eq!(r.bytes.len(), BATCH_BYTES);
        assert_eq!(r.ends, [2, BATCH_BYTES]);
    }

    #[test]
    fn recipients_are_found_in_sorted_and_unsorted_lists() {
        for list in [[1, 4, 9], [9, 1, 4]] {
            let mut b = SendBatch::default();
            b.start(ids(&list), Bytes::from_static(b"x"));
            assert!(list.iter().all(|&i| b.addresses(ConnId(i))), "{list:?}");
            assert!(
                !b.addresses(ConnId(5)) && !b.addresses(ConnId(10)),
                "{list:?}"
            );
        }
    }

    #[test]
    fn a_frame_left_alone_is_given_as_encoded() {
        let mut b = SendBatch::default();
        let frame = Bytes::from(vec![1u8, 2, 3]);
        b.start(ids(&[5]), frame.clone());
        let r = b.take().expect("one frame waits");
        assert_eq!(r.bytes.as_ptr(), frame.as_ptr(), "not copied");
        assert_eq!(r.frames().collect::<Vec<_>>(), [frame]);
    }
}
