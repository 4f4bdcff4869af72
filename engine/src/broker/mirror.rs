//! Cluster mode: a node's copy of the shared broker's streams.
//!
//! In a cluster the shared broker (Redis for the native host) orders the publications of
//! every stream; each node keeps, in its memory broker, a copy of the streams its
//! clients use, so recoveries and history reads are answered locally. A copy is
//! **synced** once filled from the shared broker ([`MemoryBroker::fill`]) and stays so
//! while the node takes every ordered publication in turn ([`MemoryBroker::take`]). A
//! gap, or an outage of the broker ([`MemoryBroker::unsync_all`]), makes the engine read
//! the stream again before it answers from the copy. Copies are never persisted: the
//! shared broker is the durable one.

use std::collections::VecDeque;
use std::sync::Arc;

use serde_json::value::RawValue;

use super::{Entry, MemoryBroker, Publication, Stream};
use crate::namespace::HistoryConfig;
use crate::types::Millis;

impl MemoryBroker {
    /// Whether the copy of `name` mirrors the shared broker's stream.
    pub fn is_synced(&self, name: &str) -> bool {
        self.streams.get(name).is_some_and(|s| s.synced)
    }

    /// The shared broker became unreachable: no copy can be trusted to be complete.
    pub fn unsync_all(&mut self) {
        for s in self.streams.values_mut() {
            s.synced = false;
        }
    }

    /// Take a publication the shared broker ordered (`offset` in `epoch`). Returns
    /// `false` for one this copy already holds (it must not be delivered again).
    #[allow(clippy::too_many_arguments)]
    pub fn take(
        &mut self,
        name: &str,
        cfg: HistoryConfig,
        now: Millis,
        offset: u64,
        epoch: &str,
        json: Box<RawValue>,
    ) -> bool {
        self.prune(name, now);
        let entry = Entry {
            offset,
            at: now,
            json: Publication(Arc::from(json)),
        };
        let (entries, synced) = match self.streams.get_mut(name) {
            Some(s) if *s.epoch == *epoch && offset <= s.top => return false,
            Some(s) if *s.epoch == *epoch && offset == s.top + 1 => {
                s.cfg = cfg;
                s.top = offset;
                s.last_publish = now;
                s.entries.push_back(entry);
                while s.entries.len() > s.cfg.size {
                    s.entries.pop_front();
                }
                self.reschedule(name);
                return true;
            }
            // A new epoch starting at 1 right after a synced copy: nothing is missing.
            Some(s) => (VecDeque::from([entry]), s.synced && offset == 1),
            None => (VecDeque::from([entry]), false),
        };
        self.replace(name, cfg, now, epoch, offset, entries, synced);
        true
    }

    /// Fill the copy of `name` from the shared broker's stream: `epoch`, latest offset
    /// `top` and its retained publications (`(offset, json)`, oldest first). The copy is
    /// then synced. Returns the offset this node had already delivered in that epoch:
    /// the filled publications after it are new to the node's subscribers (`None`: the
    /// node held no copy of this epoch, nothing is to be delivered).
    pub fn fill(
        &mut self,
        name: &str,
        cfg: HistoryConfig,
        now: Millis,
        epoch: &str,
        top: u64,
        entries: Vec<(u64, Box<RawValue>)>,
    ) -> Option<u64> {
        self.prune(name, now);
        let local = self.streams.get(name).filter(|s| *s.epoch == *epoch);
        let delivered = local.map(|s| s.top);
        // Publications that reached this node after the shared broker was read.
        let newer: Vec<Entry> = local
            .map(|s| {
                s.entries
                    .iter()
                    .filter(|e| e.offset > top)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        let mut list: VecDeque<Entry> = VecDeque::new();
        for (offset, json) in entries.into_iter().filter(|(o, _)| *o <= top) {
            if list.back().is_some_and(|e: &Entry| e.offset + 1 != offset) {
                list.clear();
            }
            list.push_back(Entry {
                offset,
                at: now,
                json: Publication(Arc::from(json)),
            });
        }
        if list.back().is_some_and(|e| e.offset != top) {
            list.clear();
        }
        let mut last = top;
        for e in newer {
            if e.offset != last + 1 {
                list.clear();
            }
            last = e.offset;
            list.push_back(e);
        }
        let top = last.max(delivered.unwrap_or(0));
        self.replace(name, cfg, now, epoch, top, list, true);
        delivered
    }

    /// Replace the copy of `name`.
    #[allow(clippy::too_many_arguments)]
    fn replace(
        &mut self,
        name: &str,
        cfg: HistoryConfig,
        now: Millis,
        epoch: &str,
        top: u64,
        mut entries: VecDeque<Entry>,
        synced: bool,
    ) {
        while entries.len() > cfg.size {
            entries.pop_front();
        }
        if let Some(old) = self.streams.remove(name) {
            self.deadlines.remove(&(old.deadline, name.to_string()));
        }
        let mut s = Stream {
            epoch: Arc::from(epoch),
            top,
            entries,
            cfg,
            last_publish: now,
            deadline: Millis(0),
            synced,
        };
        s.deadline = s.compute_deadline();
        self.deadlines.insert((s.deadline, name.to_string()));
        self.streams.insert(name.to_string(), s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> HistoryConfig {
        HistoryConfig {
            size: 3,
            ttl_ms: 1000,
            meta_ttl_ms: 10_000,
        }
    }

    fn raw(o: u64) -> Box<RawValue> {
        RawValue::from_string(format!("{{\"offset\":{o}}}")).unwrap()
    }

    fn offsets(b: &mut MemoryBroker) -> Vec<u64> {
        let q = super::super::HistoryQuery {
            limit: 10,
            since: None,
            reverse: false,
        };
        let (list, _) = b.history("s", cfg(), Millis(1), &q, String::new).unwrap();
        list.iter()
            .map(|p| {
                serde_json::from_str::<serde_json::Value>(p.0.get()).unwrap()["offset"]
                    .as_u64()
                    .unwrap()
            })
            .collect()
    }

    #[test]
    fn a_copy_takes_ordered_publications_once_and_is_synced_only_after_a_fill() {
        let mut b = MemoryBroker::default();
        assert!(b.take("s", cfg(), Millis(1), 4, "E", raw(4)));
        assert!(!b.is_synced("s"), "offsets 1..3 may be missing");
        assert!(!b.take("s", cfg(), Millis(1), 4, "E", raw(4)), "duplicate");
        assert!(b.take("s", cfg(), Millis(1), 5, "E", raw(5)));
        let delivered = b.fill(
            "s",
            cfg(),
            Millis(1),
            "E",
            4,
            vec![(3, raw(3)), (4, raw(4))],
        );
        assert_eq!(delivered, Some(5));
        assert!(b.is_synced("s"));
        assert_eq!(offsets(&mut b), vec![3, 4, 5]);
        assert!(b.take("s", cfg(), Millis(1), 6, "E", raw(6)));
        assert!(b.is_synced("s"));
        assert!(
            b.take("s", cfg(), Millis(1), 8, "E", raw(8)),
            "a gap is delivered"
        );
        assert!(!b.is_synced("s"), "but the copy is no longer complete");
    }

    #[test]
    fn a_fill_of_another_epoch_replaces_the_copy_and_delivers_nothing() {
        let mut b = MemoryBroker::default();
        b.take("s", cfg(), Millis(1), 9, "OLD", raw(9));
        let delivered = b.fill(
            "s",
            cfg(),
            Millis(1),
            "NEW",
            2,
            vec![(1, raw(1)), (2, raw(2))],
        );
        assert_eq!(delivered, None);
        assert_eq!(offsets(&mut b), vec![1, 2]);
        b.unsync_all();
        assert!(!b.is_synced("s"));
    }
}
