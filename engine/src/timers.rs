//! Deadlines of every connection and host call in one ordered set.
//!
//! Each connection has at most two deadlines (its heartbeat and its token expiry), each
//! host call and each remote key source one.
//! Insert, remove and "earliest" are O(log n); [`crate::Engine::poll_timeout`] reads
//! the first entry.

use std::collections::BTreeSet;

use crate::types::{ConnId, Millis, OpId};

/// What a deadline belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum TimerKey {
    /// A connection's heartbeat.
    Conn(ConnId),
    /// A host call.
    Op(OpId),
    /// A connection's token expiry (the `token:expiring` notice, then the close).
    Expiry(ConnId),
    /// A remote key source (index in `auth.sources`): its next fetch or its fetch's deadline.
    KeySource(usize),
    /// A polling session's `GET` held during its upgrade: released with a noop.
    Noop(ConnId),
    /// A Socket.IO acknowledgement the server asked a connection for (its ack id).
    SioAck(ConnId, u64),
}

/// Ordered deadlines.
#[derive(Debug, Default, Clone)]
pub(crate) struct Timers {
    set: BTreeSet<(Millis, TimerKey)>,
}

impl Timers {
    /// Replace `key`'s deadline `old` (if any) with `new` (if any).
    pub fn reschedule(&mut self, key: TimerKey, old: Option<Millis>, new: Option<Millis>) {
        if old == new {
            return;
        }
        if let Some(o) = old {
            self.set.remove(&(o, key));
        }
        if let Some(n) = new {
            self.set.insert((n, key));
        }
    }

    /// The earliest deadline.
    pub fn next(&self) -> Option<Millis> {
        self.set.first().map(|(t, _)| *t)
    }

    /// Remove and return the earliest entry if it is due at `now`.
    pub fn pop_due(&mut self, now: Millis) -> Option<(Millis, TimerKey)> {
        match self.set.first() {
            Some(&(t, _)) if t <= now => self.set.pop_first(),
            _ => None,
        }
    }

    /// Number of deadlines.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.set.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn earliest_first_and_reschedule_replaces() {
        let mut t = Timers::default();
        t.reschedule(TimerKey::Conn(ConnId(1)), None, Some(Millis(50)));
        t.reschedule(TimerKey::Op(OpId(1)), None, Some(Millis(20)));
        assert_eq!(t.next(), Some(Millis(20)));
        t.reschedule(TimerKey::Op(OpId(1)), Some(Millis(20)), Some(Millis(70)));
        assert_eq!(t.next(), Some(Millis(50)));
        assert_eq!(t.pop_due(Millis(49)), None);
        assert_eq!(
            t.pop_due(Millis(50)),
            Some((Millis(50), TimerKey::Conn(ConnId(1))))
        );
        t.reschedule(TimerKey::Op(OpId(1)), Some(Millis(70)), None);
        assert_eq!(t.len(), 0);
    }
}
