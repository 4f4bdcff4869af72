//! The broker: what orders a stream. It assigns each publication of a stream its
//! `offset` (1, 2, 3, … within one `epoch`), keeps the stream's bounded history and
//! answers history reads and recovery.
//!
//! # The contract
//!
//! The engine talks to its broker through four operations on a named stream:
//! [`MemoryBroker::position`] (current offset and epoch, creating the stream),
//! [`MemoryBroker::publish`] (append: the broker picks the offset),
//! [`MemoryBroker::recover`] (the publications after a client's `since` position, or
//! "not recoverable") and [`MemoryBroker::history`] (a bounded read). Fan-out happens
//! only after the broker has ordered a publication, with the offset it assigned, so a
//! broker shared by several nodes (Redis Streams: `XADD` assigns the order, the epoch is
//! a per-stream key) slots in behind the same four operations as host calls, with
//! deliveries coming back as inputs: nothing in the engine assumes the offsets are its
//! own.
//!
//! The [`MemoryBroker`] is the default on every host: one process orders its streams
//! itself, in the same call that fans the publication out, so history costs one
//! serialization of the publication and a ring-buffer push. A stream's history is
//! bounded by size and TTL; its position (offset, epoch) outlives its entries by the
//! namespace's `metaTtlMs`, after which a new epoch starts (clients holding the old one
//! get `recovered: false`).
//!
//! # A shared broker (a cluster, PROTOCOL.md §22.1)
//!
//! In cluster mode a stream's order comes from the shared broker (Redis for the native
//! host), through host requests rather than these calls: a publication becomes
//! [`crate::cluster::ClusterMessage::Append`] (the host appends it atomically and every
//! node, the publisher's too, gets it back ordered as
//! [`crate::cluster::ClusterMessage::Sequenced`], which runs the same fan-out with the
//! broker's offset and epoch), and a stream a node holds no synced copy of is read with
//! [`crate::cluster::ClusterMessage::Fetch`] before a `subscribe` or `history` is
//! answered. Each node's memory broker keeps a copy of the shared streams its clients
//! use ([`mirror`]), from which recoveries and history reads are answered with the four
//! operations above; the copy is filled and then advanced by offset, so a publication
//! racing a recovery is either in `publications` or a later `message`, never both.
//! Presence is shared separately (`crate::cluster`).
//!
//! # Persistence (Cloudflare, native SQLite)
//!
//! With [`MemoryBroker::set_persistent`] the broker records every change as key/value
//! operations ([`KvOp`]) a host with durable storage applies in order (Durable Object
//! storage on Cloudflare; `DATA_DIR/streams.db` on the native host, which sends the
//! frames of a step only once that step's operations are committed);
//! [`MemoryBroker::restore`] rebuilds the streams from the stored pairs after an
//! eviction or a restart. The layout is the broker's: `stream:<name>` holds the position,
//! `stream:<name>#<offset, 20 digits>` one publication.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::namespace::HistoryConfig;
use crate::types::Millis;

pub mod mirror;

/// A stream's position: the offset of its latest publication and its epoch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamPosition {
    /// Offset of the latest publication (0: none yet).
    pub offset: u64,
    /// Identifies this incarnation of the stream; offsets only compare within one epoch.
    pub epoch: Arc<str>,
}

/// A client's position in a stream, as sent in `since`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Since {
    /// The last offset the client saw.
    pub offset: u64,
    /// The epoch that offset belongs to.
    pub epoch: String,
}

/// A publication's JSON (`{"offset","from","data","timestamp"}`), serialized once and
/// shared by the history, recoveries and history reads.
#[derive(Debug, Clone)]
pub struct Publication(pub Arc<RawValue>);

impl PartialEq for Publication {
    fn eq(&self, other: &Self) -> bool {
        self.0.get() == other.0.get()
    }
}

impl Serialize for Publication {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

/// One stored publication: its offset, when it was published and its JSON
/// (`{"offset","from","data","timestamp"}`), serialized once.
#[derive(Debug, Clone)]
struct Entry {
    offset: u64,
    at: Millis,
    json: Publication,
}

#[derive(Debug, Clone)]
struct Stream {
    epoch: Arc<str>,
    top: u64,
    entries: VecDeque<Entry>,
    cfg: HistoryConfig,
    last_publish: Millis,
    deadline: Millis,
    /// Cluster mode: this copy mirrors the shared broker's stream (see [`mirror`]).
    synced: bool,
}

impl Stream {
    fn compute_deadline(&self) -> Millis {
        // A stream nothing was ever published to (created by a subscribe or a read) is
        // only remembered for `ttlMs`, so reads of made-up names cannot pile up streams.
        let keep = if self.top == 0 {
            self.cfg.ttl_ms
        } else {
            self.cfg.meta_ttl_ms
        };
        let meta = self.last_publish.plus(keep);
        match self.entries.front() {
            Some(e) => e.at.plus(self.cfg.ttl_ms).min(meta),
            None => meta,
        }
    }
}

/// The answer to a recovery: the missed publications in order, or nothing when the
/// history no longer covers the gap (or the epoch changed).
#[derive(Debug, Clone)]
pub struct Recovery {
    /// Whether every missed publication is in `publications`.
    pub recovered: bool,
    /// Missed publications, oldest first (empty when not recovered).
    pub publications: Vec<Publication>,
    /// The stream's position now.
    pub position: StreamPosition,
}

/// Why a history read with `since` cannot be answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unrecoverable {
    /// The stream's position now.
    pub position: StreamPosition,
}

/// One change to apply to durable key/value storage (see the module docs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "camelCase")]
pub enum KvOp {
    /// Store `value` under `key`.
    Put {
        /// Key.
        key: String,
        /// JSON text.
        value: String,
    },
    /// Remove `key`.
    Delete {
        /// Key.
        key: String,
    },
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredMeta {
    epoch: String,
    top: u64,
    last_publish: u64,
    size: usize,
    ttl_ms: u64,
    meta_ttl_ms: u64,
}

#[derive(Serialize)]
struct StoredEntryOut<'a> {
    at: u64,
    json: &'a RawValue,
}

#[derive(Deserialize)]
struct StoredEntry {
    at: u64,
    json: Box<RawValue>,
}

/// The in-process broker (see the module docs).
#[derive(Debug, Default, Clone)]
pub struct MemoryBroker {
    streams: BTreeMap<String, Stream>,
    deadlines: BTreeSet<(Millis, String)>,
    persistent: bool,
    kv: Vec<KvOp>,
}

fn meta_key(name: &str) -> String {
    format!("stream:{name}")
}

fn entry_key(name: &str, offset: u64) -> String {
    format!("stream:{name}#{offset:020}")
}

impl MemoryBroker {
    /// Record changes as [`KvOp`]s for durable storage (Cloudflare).
    pub fn set_persistent(&mut self, on: bool) {
        self.persistent = on;
    }

    /// Take the storage operations recorded since the last call, in order.
    pub fn take_kv_ops(&mut self) -> Vec<KvOp> {
        std::mem::take(&mut self.kv)
    }

    /// Whether `name` exists.
    pub fn contains(&self, name: &str) -> bool {
        self.streams.contains_key(name)
    }

    /// Number of streams.
    pub fn stream_count(&self) -> usize {
        self.streams.len()
    }

    /// Publications stored over all streams.
    pub fn entry_count(&self) -> usize {
        self.streams.values().map(|s| s.entries.len()).sum()
    }

    /// The earliest instant a stream needs pruning.
    pub fn next_deadline(&self) -> Option<Millis> {
        self.deadlines.first().map(|(t, _)| *t)
    }

    /// Create `name` with `epoch` if absent (the caller draws the epoch), and return its
    /// position after dropping what expired.
    pub fn position(
        &mut self,
        name: &str,
        cfg: HistoryConfig,
        now: Millis,
        epoch: impl FnOnce() -> String,
    ) -> StreamPosition {
        self.prune(name, now);
        self.ensure(name, cfg, now, epoch);
        let s = &self.streams[name];
        StreamPosition {
            offset: s.top,
            epoch: Arc::clone(&s.epoch),
        }
    }

    fn ensure(
        &mut self,
        name: &str,
        cfg: HistoryConfig,
        now: Millis,
        epoch: impl FnOnce() -> String,
    ) {
        if let Some(s) = self.streams.get_mut(name) {
            s.cfg = cfg;
            return;
        }
        let mut s = Stream {
            epoch: Arc::from(epoch()),
            top: 0,
            entries: VecDeque::new(),
            cfg,
            last_publish: now,
            deadline: Millis(0),
            synced: false,
        };
        s.deadline = s.compute_deadline();
        self.deadlines.insert((s.deadline, name.to_string()));
        self.streams.insert(name.to_string(), s);
        self.persist_meta(name);
    }

    /// Append a publication; `build` gets the offset the broker assigned and returns the
    /// publication's JSON. Returns the new position.
    pub fn publish(
        &mut self,
        name: &str,
        cfg: HistoryConfig,
        now: Millis,
        epoch: impl FnOnce() -> String,
        build: impl FnOnce(u64) -> Box<RawValue>,
    ) -> StreamPosition {
        self.prune(name, now);
        self.ensure(name, cfg, now, epoch);
        let Some(s) = self.streams.get_mut(name) else {
            unreachable_stream();
            return StreamPosition {
                offset: 0,
                epoch: Arc::from(""),
            };
        };
        s.top += 1;
        let offset = s.top;
        let json = Publication(Arc::from(build(offset)));
        s.entries.push_back(Entry {
            offset,
            at: now,
            json: json.clone(),
        });
        s.last_publish = now;
        let mut dropped = Vec::new();
        while s.entries.len() > s.cfg.size {
            if let Some(e) = s.entries.pop_front() {
                dropped.push(e.offset);
            }
        }
        let position = StreamPosition {
            offset,
            epoch: Arc::clone(&s.epoch),
        };
        self.reschedule(name);
        if self.persistent {
            let stored = StoredEntryOut {
                at: now.0,
                json: &json.0,
            };
            self.kv.push(KvOp::Put {
                key: entry_key(name, offset),
                value: serde_json::to_string(&stored).unwrap_or_default(),
            });
            for o in dropped {
                self.kv.push(KvOp::Delete {
                    key: entry_key(name, o),
                });
            }
            self.persist_meta(name);
        }
        position
    }

    /// The publications after `since`, if the history still holds all of them.
    pub fn recover(
        &mut self,
        name: &str,
        cfg: HistoryConfig,
        now: Millis,
        since: &Since,
        epoch: impl FnOnce() -> String,
    ) -> Recovery {
        let position = self.position(name, cfg, now, epoch);
        let s = &self.streams[name];
        let publications = match Self::after(s, since) {
            Some(entries) => entries,
            None => {
                return Recovery {
                    recovered: false,
                    publications: Vec::new(),
                    position,
                }
            }
        };
        Recovery {
            recovered: true,
            publications,
            position,
        }
    }

    /// Entries after `since`, or None when they are not all retained.
    fn after(s: &Stream, since: &Since) -> Option<Vec<Publication>> {
        if *s.epoch != *since.epoch || since.offset > s.top {
            return None;
        }
        if since.offset == s.top {
            return Some(Vec::new());
        }
        let first = s.entries.front()?.offset;
        if since.offset + 1 < first {
            return None;
        }
        let skip = (since.offset + 1 - first) as usize;
        Some(
            s.entries
                .iter()
                .skip(skip)
                .map(|e| e.json.clone())
                .collect(),
        )
    }

    /// Read up to `limit` publications: the latest ones (`since` absent), or those after
    /// `since`; newest first when `reverse`.
    pub fn history(
        &mut self,
        name: &str,
        cfg: HistoryConfig,
        now: Millis,
        query: &HistoryQuery,
        epoch: impl FnOnce() -> String,
    ) -> Result<(Vec<Publication>, StreamPosition), Unrecoverable> {
        let position = self.position(name, cfg, now, epoch);
        let s = &self.streams[name];
        let limit = query.limit;
        let mut list: Vec<Publication> = match &query.since {
            Some(since) => match Self::after(s, since) {
                Some(list) => list,
                None => return Err(Unrecoverable { position }),
            },
            None => s.entries.iter().map(|e| e.json.clone()).collect(),
        };
        match (query.since.is_some(), query.reverse) {
            // After a position: the oldest `limit` (forward) or the newest `limit`
            // (reverse, newest first).
            (true, false) => list.truncate(limit),
            (_, true) => {
                list.reverse();
                list.truncate(limit);
            }
            // Latest `limit`, oldest first.
            (false, false) => {
                let cut = list.len().saturating_sub(limit);
                list.drain(..cut);
            }
        }
        Ok((list, position))
    }

    /// Drop expired publications and forgotten streams everywhere due by `now`.
    pub fn sweep(&mut self, now: Millis) {
        while let Some((t, name)) = self.deadlines.first().cloned() {
            if t > now {
                break;
            }
            self.prune(&name, now);
        }
    }

    /// Drop what expired in stream `name` by `now` (and the stream itself once its
    /// position is forgotten).
    pub fn prune(&mut self, name: &str, now: Millis) {
        let Some(s) = self.streams.get_mut(name) else {
            return;
        };
        if s.deadline > now {
            return;
        }
        let mut dropped = Vec::new();
        while let Some(e) = s.entries.front() {
            if e.at.plus(s.cfg.ttl_ms) <= now {
                dropped.push(e.offset);
                s.entries.pop_front();
            } else {
                break;
            }
        }
        let keep = if s.top == 0 {
            s.cfg.ttl_ms
        } else {
            s.cfg.meta_ttl_ms
        };
        let forget = s.entries.is_empty() && s.last_publish.plus(keep) <= now;
        if self.persistent {
            for o in dropped {
                self.kv.push(KvOp::Delete {
                    key: entry_key(name, o),
                });
            }
        }
        if forget {
            let deadline = s.deadline;
            self.deadlines.remove(&(deadline, name.to_string()));
            self.streams.remove(name);
            if self.persistent {
                self.kv.push(KvOp::Delete {
                    key: meta_key(name),
                });
            }
        } else {
            self.reschedule(name);
        }
    }

    fn reschedule(&mut self, name: &str) {
        let Some(s) = self.streams.get_mut(name) else {
            return;
        };
        let new = s.compute_deadline();
        if new != s.deadline {
            self.deadlines.remove(&(s.deadline, name.to_string()));
            s.deadline = new;
            self.deadlines.insert((new, name.to_string()));
        }
    }

    fn persist_meta(&mut self, name: &str) {
        if !self.persistent {
            return;
        }
        let Some(s) = self.streams.get(name) else {
            return;
        };
        let meta = StoredMeta {
            epoch: s.epoch.to_string(),
            top: s.top,
            last_publish: s.last_publish.0,
            size: s.cfg.size,
            ttl_ms: s.cfg.ttl_ms,
            meta_ttl_ms: s.cfg.meta_ttl_ms,
        };
        self.kv.push(KvOp::Put {
            key: meta_key(name),
            value: serde_json::to_string(&meta).unwrap_or_default(),
        });
    }

    /// Rebuild streams from stored pairs (any order); pairs that do not parse are
    /// skipped and reported by key. Replaces streams of the same name.
    pub fn restore(&mut self, pairs: &[(String, String)]) -> Vec<String> {
        let mut bad = Vec::new();
        let mut metas: BTreeMap<&str, StoredMeta> = BTreeMap::new();
        let mut entries: BTreeMap<&str, Vec<(u64, StoredEntry)>> = BTreeMap::new();
        for (key, value) in pairs {
            let Some(rest) = key.strip_prefix("stream:") else {
                bad.push(key.clone());
                continue;
            };
            match rest.rsplit_once('#') {
                Some((name, off)) if off.len() == 20 && off.bytes().all(|b| b.is_ascii_digit()) => {
                    match (
                        off.parse::<u64>(),
                        serde_json::from_str::<StoredEntry>(value),
                    ) {
                        (Ok(o), Ok(e)) => entries.entry(name).or_default().push((o, e)),
                        _ => bad.push(key.clone()),
                    }
                }
                _ => match serde_json::from_str::<StoredMeta>(value) {
                    Ok(m) => {
                        metas.insert(rest, m);
                    }
                    Err(_) => bad.push(key.clone()),
                },
            }
        }
        for (name, m) in metas {
            let cfg = HistoryConfig {
                size: m.size.max(1),
                ttl_ms: m.ttl_ms.max(1),
                meta_ttl_ms: m.meta_ttl_ms,
            };
            let mut list = entries.remove(name).unwrap_or_default();
            list.sort_by_key(|(o, _)| *o);
            list.retain(|(o, _)| *o <= m.top);
            let mut s = Stream {
                epoch: Arc::from(m.epoch),
                top: m.top,
                entries: list
                    .into_iter()
                    .map(|(offset, e)| Entry {
                        offset,
                        at: Millis(e.at),
                        json: Publication(Arc::from(e.json)),
                    })
                    .collect(),
                cfg,
                last_publish: Millis(m.last_publish),
                deadline: Millis(0),
                synced: false,
            };
            s.deadline = s.compute_deadline();
            if let Some(old) = self.streams.remove(name) {
                self.deadlines.remove(&(old.deadline, name.to_string()));
            }
            self.deadlines.insert((s.deadline, name.to_string()));
            self.streams.insert(name.to_string(), s);
        }
        for name in entries.keys() {
            bad.push(format!("stream:{name} (publications without a position)"));
        }
        bad
    }
}

/// A history read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryQuery {
    /// At most this many publications.
    pub limit: usize,
    /// Only those after this position.
    pub since: Option<Since>,
    /// Newest first.
    pub reverse: bool,
}

#[cold]
fn unreachable_stream() {
    log::error!("broker: a stream vanished between creation and use");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(size: usize, ttl: u64) -> HistoryConfig {
        HistoryConfig {
            size,
            ttl_ms: ttl,
            meta_ttl_ms: 10_000,
        }
    }

    fn raw(o: u64) -> Box<RawValue> {
        RawValue::from_string(format!("{{\"offset\":{o}}}")).unwrap()
    }

    fn ep() -> String {
        "E".into()
    }

    #[test]
    fn offsets_increase_and_history_is_bounded_by_size() {
        let mut b = MemoryBroker::default();
        for i in 1..=5 {
            let p = b.publish("s", cfg(3, 1000), Millis(i), ep, raw);
            assert_eq!(p.offset, i);
        }
        let q = HistoryQuery {
            limit: 10,
            since: None,
            reverse: false,
        };
        let (list, pos) = b.history("s", cfg(3, 1000), Millis(6), &q, ep).unwrap();
        assert_eq!(pos.offset, 5);
        let got: Vec<_> = list.iter().map(|r| r.0.get().to_string()).collect();
        assert_eq!(
            got,
            vec![r#"{"offset":3}"#, r#"{"offset":4}"#, r#"{"offset":5}"#]
        );
    }

    #[test]
    fn recovery_fails_when_the_gap_is_no_longer_covered() {
        let mut b = MemoryBroker::default();
        for i in 1..=5 {
            b.publish("s", cfg(3, 1000), Millis(i), ep, raw);
        }
        let since = |offset| Since {
            offset,
            epoch: "E".into(),
        };
        let r = b.recover("s", cfg(3, 1000), Millis(6), &since(2), ep);
        assert!(r.recovered);
        assert_eq!(r.publications.len(), 3);
        assert!(
            !b.recover("s", cfg(3, 1000), Millis(6), &since(1), ep)
                .recovered
        );
        assert!(
            !b.recover("s", cfg(3, 1000), Millis(6), &since(9), ep)
                .recovered
        );
        let other = Since {
            offset: 5,
            epoch: "X".into(),
        };
        assert!(
            !b.recover("s", cfg(3, 1000), Millis(6), &other, ep)
                .recovered
        );
        assert!(
            b.recover("s", cfg(3, 1000), Millis(6), &since(5), ep)
                .recovered
        );
    }

    #[test]
    fn ttl_drops_entries_but_keeps_the_position_until_meta_ttl() {
        let mut b = MemoryBroker::default();
        b.publish("s", cfg(10, 100), Millis(0), ep, raw);
        b.sweep(Millis(100));
        assert_eq!(b.entry_count(), 0);
        let p = b.position("s", cfg(10, 100), Millis(100), || "NEW".into());
        assert_eq!((p.offset, &*p.epoch), (1, "E"));
        b.sweep(Millis(10_000));
        assert_eq!(b.stream_count(), 0);
    }

    #[test]
    fn persisted_streams_restore_with_their_epoch_and_offsets() {
        let mut b = MemoryBroker::default();
        b.set_persistent(true);
        for i in 1..=4 {
            b.publish("chat:a", cfg(2, 1000), Millis(i), ep, raw);
        }
        let mut store: BTreeMap<String, String> = BTreeMap::new();
        for op in b.take_kv_ops() {
            match op {
                KvOp::Put { key, value } => {
                    store.insert(key, value);
                }
                KvOp::Delete { key } => {
                    store.remove(&key);
                }
            }
        }
        assert_eq!(store.len(), 3, "{store:?}");
        let pairs: Vec<_> = store.into_iter().collect();
        let mut fresh = MemoryBroker::default();
        assert!(fresh.restore(&pairs).is_empty());
        let since = Since {
            offset: 2,
            epoch: "E".into(),
        };
        let r = fresh.recover("chat:a", cfg(2, 1000), Millis(5), &since, || "NEW".into());
        assert!(r.recovered);
        assert_eq!(r.publications.len(), 2);
        assert_eq!(r.position.offset, 4);
    }
}
