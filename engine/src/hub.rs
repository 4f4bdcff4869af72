//! The hub: who is subscribed to what, and who is in which room.
//!
//! Resource subscriptions are indexed by the first top-level scalar equality of their
//! filter (`{channel: "general"}` goes in bucket `channel = "general"`), so a change
//! only tests the subscriptions in the buckets its record hits plus the unindexed ones —
//! never every connection. Collections are insertion-ordered (`IndexSet`), so fan-out
//! order is deterministic for the same inputs.

use std::collections::BTreeMap;

use indexmap::{IndexMap, IndexSet};
use rustc_hash::{FxBuildHasher, FxHashMap};
use serde_json::Value;
use slab::Slab;

use crate::config::ChangeKind;
use crate::filter::{scalar_key, Filter};
use crate::types::ConnId;

type FxIndexSet<T> = IndexSet<T, FxBuildHasher>;

/// One resource subscription in the index. Its resource is not stored: the caller
/// names it when it unsubscribes (one entry per subscription of every idle connection:
/// kept small).
#[derive(Debug, Clone)]
struct SubEntry {
    slot: usize,
    conn: ConnId,
    filter: EntryFilter,
    /// The part of `filter` a guard forced: a security boundary, checked separately on
    /// the record before and after an update.
    forced: Option<Filter>,
    /// `filter` contains every condition of `forced`, so a record known to match
    /// `filter` needs no separate `forced` check.
    forced_implied: bool,
    events: u8,
}

/// What an entry keeps of its (effective) filter.
#[derive(Debug, Clone)]
enum EntryFilter {
    /// No filter: every record matches.
    All,
    /// The filter is exactly one indexed equality (`{"room": "a"}`, the common case):
    /// a bucket hit proves a match, so only the bucket's key is kept (to leave the
    /// bucket on unsubscribe), one small allocation instead of a parsed filter's five.
    Indexed(Box<str>),
    /// Any other filter; its first indexed equality, if any, is its bucket
    /// ([`Filter::index_key`], computed again on unsubscribe).
    Full(Filter),
}

/// How fan-out reached a subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hit {
    /// Through the bucket of the record's (after the change) indexed value.
    After,
    /// Through the bucket of the previous record's indexed value.
    Before,
    /// Through the unindexed set: nothing is known.
    Unindexed,
}

#[derive(Debug, Default, Clone)]
struct ResourceIndex {
    by_field: IndexMap<String, FxHashMap<String, FxIndexSet<usize>>, FxBuildHasher>,
    unindexed: FxIndexSet<usize>,
}

/// Subscription and membership index.
#[derive(Debug, Default, Clone)]
pub(crate) struct Hub {
    subs: Slab<SubEntry>,
    resources: FxHashMap<String, ResourceIndex>,
    channels: FxHashMap<String, IndexMap<usize, ConnId, FxBuildHasher>>,
    rooms: BTreeMap<String, FxIndexSet<usize>>,
    /// Per-slot stamp used to deliver at most once per connection per fan-out.
    stamps: Vec<u64>,
    seq: u64,
}

impl Hub {
    /// Add a resource subscription without a forced filter; returns its key.
    #[cfg(test)]
    pub fn subscribe_resource(
        &mut self,
        slot: usize,
        conn: ConnId,
        resource: &str,
        filter: Option<Filter>,
        events: &[ChangeKind],
    ) -> usize {
        self.subscribe_resource_forced(slot, conn, resource, filter, None, events)
    }

    /// Add a resource subscription; `filter` is the effective filter (client AND forced)
    /// and `forced` the guard-forced part alone. Returns its key.
    pub fn subscribe_resource_forced(
        &mut self,
        slot: usize,
        conn: ConnId,
        resource: &str,
        filter: Option<Filter>,
        forced: Option<Filter>,
        events: &[ChangeKind],
    ) -> usize {
        let index = filter.as_ref().and_then(Filter::index_key);
        let forced_implied = match (&filter, &forced) {
            (_, None) => true,
            (Some(f), Some(g)) => f.implies(g),
            (None, Some(_)) => false,
        };
        let filter = match (filter, &index) {
            (None, _) => EntryFilter::All,
            (Some(f), Some((_, value))) if f.is_single_equality() => {
                EntryFilter::Indexed(value.as_str().into())
            }
            (Some(f), _) => EntryFilter::Full(f),
        };
        let mask = events.iter().fold(0u8, |m, e| m | e.bit());
        let key = self.subs.insert(SubEntry {
            slot,
            conn,
            filter,
            forced,
            forced_implied,
            events: mask,
        });
        let ri = self.resources.entry(resource.to_string()).or_default();
        match index {
            Some((field, value)) => {
                ri.by_field
                    .entry(field)
                    .or_default()
                    .entry(value)
                    .or_default()
                    .insert(key);
            }
            None => {
                ri.unindexed.insert(key);
            }
        }
        key
    }

    /// Remove a resource subscription by key; `resource` is the one it was added with.
    pub fn unsubscribe_resource(&mut self, key: usize, resource: &str) {
        let Some(entry) = self.subs.try_remove(key) else {
            return;
        };
        let Some(ri) = self.resources.get_mut(resource) else {
            return;
        };
        let bucket = match &entry.filter {
            EntryFilter::All => None,
            EntryFilter::Indexed(value) => {
                // The field is the one whose bucket `value` holds this entry (a
                // resource is indexed by a few fields at most).
                ri.by_field
                    .iter()
                    .find(|(_, buckets)| buckets.get(&**value).is_some_and(|s| s.contains(&key)))
                    .map(|(field, _)| (field.clone(), value.to_string()))
            }
            EntryFilter::Full(f) => f.index_key(),
        };
        match bucket {
            Some((field, value)) => {
                if let Some(buckets) = ri.by_field.get_mut(&field) {
                    if let Some(set) = buckets.get_mut(&value) {
                        set.swap_remove(&key);
                        if set.is_empty() {
                            buckets.remove(&value);
                        }
                    }
                    if buckets.is_empty() {
                        ri.by_field.shift_remove(&field);
                    }
                }
            }
            None => {
                ri.unindexed.swap_remove(&key);
            }
        }
        if ri.by_field.is_empty() && ri.unindexed.is_empty() {
            self.resources.remove(resource);
        }
    }

    /// Subscribe a connection slot to a channel.
    pub fn join_channel(&mut self, slot: usize, conn: ConnId, channel: &str) {
        self.channels
            .entry(channel.to_string())
            .or_default()
            .insert(slot, conn);
    }

    /// Subscribers of a channel, in subscription order.
    pub fn channel_members(&self, channel: &str) -> impl Iterator<Item = (usize, ConnId)> + '_ {
        self.channels
            .get(channel)
            .into_iter()
            .flat_map(|m| m.iter().map(|(s, c)| (*s, *c)))
    }

    /// Remove a connection slot from a channel.
    pub fn leave_channel(&mut self, slot: usize, channel: &str) {
        if let Some(set) = self.channels.get_mut(channel) {
            set.swap_remove(&slot);
            if set.is_empty() {
                self.channels.remove(channel);
            }
        }
    }

    /// Recipients of a publish on the channel keyed `channel`, each once: the channel's
    /// subscribers in subscription order, then subscribers of `resource` (the resource
    /// of the same name, s3db.js compatibility), if given.
    pub fn publish_recipients(
        &mut self,
        channel: &str,
        resource: Option<&str>,
        max_slot: usize,
        out: &mut Vec<(usize, ConnId)>,
    ) {
        let seq = self.next_seq(max_slot);
        let members: Vec<(usize, ConnId)> = self
            .channels
            .get(channel)
            .map(|m| m.iter().map(|(s, c)| (*s, *c)).collect())
            .unwrap_or_default();
        for (slot, conn) in members {
            if self.stamp(slot, seq) {
                out.push((slot, conn));
            }
        }
        if let Some(resource) = resource {
            self.collect_resource_subscribers(resource, seq, out);
        }
    }

    /// Number of rooms.
    pub fn room_count(&self) -> usize {
        self.rooms.len()
    }

    /// Members of a room, in join order.
    pub fn room_members(&self, room: &str) -> Option<&FxIndexSet<usize>> {
        self.rooms.get(room)
    }

    /// All rooms, sorted by name, with member counts.
    pub fn rooms(&self) -> impl Iterator<Item = (&String, usize)> {
        self.rooms.iter().map(|(k, v)| (k, v.len()))
    }

    /// Add a slot to a room (creating it); returns the member count.
    pub fn join_room(&mut self, slot: usize, room: &str) -> usize {
        let set = self.rooms.entry(room.to_string()).or_default();
        set.insert(slot);
        set.len()
    }

    /// Remove a slot from a room (dropping it when empty).
    pub fn leave_room(&mut self, slot: usize, room: &str) {
        if let Some(set) = self.rooms.get_mut(room) {
            set.shift_remove(&slot);
            if set.is_empty() {
                self.rooms.remove(room);
            }
        }
    }

    fn next_seq(&mut self, max_slot: usize) -> u64 {
        if self.stamps.len() < max_slot {
            self.stamps.resize(max_slot, 0);
        }
        self.seq += 1;
        self.seq
    }

    /// Mark `slot` as reached in fan-out `seq`; false if it already was.
    fn stamp(&mut self, slot: usize, seq: u64) -> bool {
        if slot >= self.stamps.len() {
            self.stamps.resize(slot + 1, 0);
        }
        if self.stamps[slot] == seq {
            false
        } else {
            self.stamps[slot] = seq;
            true
        }
    }

    /// Connections with a subscription matching a change, each once (see
    /// [`Hub::change_recipients_visibility`]).
    #[cfg(test)]
    pub fn change_recipients(
        &mut self,
        resource: &str,
        kind: ChangeKind,
        record: &Value,
        previous: Option<&Value>,
        max_slot: usize,
        out: &mut Vec<(usize, ConnId)>,
    ) {
        let mut v = Vec::new();
        self.change_recipients_visibility(resource, kind, record, previous, max_slot, &mut v);
        out.extend(v.into_iter().map(|(s, c, _)| (s, c)));
    }

    /// Connections with a subscription matching a change, each once, in deterministic
    /// order. An update matches when the record after *or before* it matches the filter
    /// (so clients see rows leave their view), but only subscribers whose forced filter
    /// admits the record after the change get it; the flag says whether the forced
    /// filter also admits the record before (else `$before` must be withheld).
    /// `max_slot` bounds the stamp table.
    pub fn change_recipients_visibility(
        &mut self,
        resource: &str,
        kind: ChangeKind,
        record: &Value,
        previous: Option<&Value>,
        max_slot: usize,
        out: &mut Vec<(usize, ConnId, bool)>,
    ) {
        let seq = self.next_seq(max_slot);
        let Some(ri) = self.resources.get(resource) else {
            return;
        };
        let bit = kind.bit();
        // Disjoint borrows: the index is read while stamps are written.
        let subs = &self.subs;
        let stamps = &mut self.stamps;
        let mut visit = |key: usize, hit: Hit| {
            let Some(e) = subs.get(key) else {
                return;
            };
            if e.events & bit == 0 {
                return;
            }
            // Whether the filter is known to match the record after / before the change.
            // A bucket hit already proves a filter that is just the indexed equality.
            let (after_matches, before_matches) = match &e.filter {
                EntryFilter::All => (true, true),
                EntryFilter::Indexed(_) => match hit {
                    Hit::After => (true, false),
                    Hit::Before => (false, true),
                    // Indexed entries live in buckets only, never in the unindexed set.
                    Hit::Unindexed => return,
                },
                EntryFilter::Full(f) => {
                    if f.matches(record) {
                        (true, false)
                    } else if previous.is_some_and(|p| f.matches(p)) {
                        (false, true)
                    } else {
                        return;
                    }
                }
            };
            // The forced filter is part of the filter: where the filter is known to
            // match, so is the forced part (checked only where it is not known).
            let before_ok = match &e.forced {
                None => true,
                Some(f) => {
                    if !((e.forced_implied && after_matches) || f.matches(record)) {
                        return;
                    }
                    previous.is_none_or(|p| (e.forced_implied && before_matches) || f.matches(p))
                }
            };
            if e.slot >= stamps.len() {
                stamps.resize(e.slot + 1, 0);
            }
            if stamps[e.slot] != seq {
                stamps[e.slot] = seq;
                out.push((e.slot, e.conn, before_ok));
            }
        };
        for (field, buckets) in &ri.by_field {
            let after = record.get(field).and_then(scalar_key);
            let before = previous.and_then(|p| p.get(field)).and_then(scalar_key);
            let mut hit = |k: &Option<String>, which: Hit| {
                if let Some(set) = k.as_ref().and_then(|k| buckets.get(k)) {
                    for &key in set {
                        visit(key, which);
                    }
                }
            };
            hit(&after, Hit::After);
            if before != after {
                hit(&before, Hit::Before);
            }
        }
        for &key in &ri.unindexed {
            visit(key, Hit::Unindexed);
        }
    }

    /// Every connection with any subscription to `resource`, each once.
    pub fn resource_subscribers(
        &mut self,
        resource: &str,
        max_slot: usize,
        out: &mut Vec<(usize, ConnId)>,
    ) {
        let seq = self.next_seq(max_slot);
        self.collect_resource_subscribers(resource, seq, out);
    }

    fn collect_resource_subscribers(
        &mut self,
        resource: &str,
        seq: u64,
        out: &mut Vec<(usize, ConnId)>,
    ) {
        let Some(ri) = self.resources.get(resource) else {
            return;
        };
        let keys: Vec<usize> = ri
            .by_field
            .values()
            .flat_map(|b| b.values().flatten().copied())
            .chain(ri.unindexed.iter().copied())
            .collect();
        for key in keys {
            if let Some(e) = self.subs.get(key) {
                let (slot, conn) = (e.slot, e.conn);
                if self.stamp(slot, seq) {
                    out.push((slot, conn));
                }
            }
        }
    }

    /// Total resource subscriptions (for invariants and info).
    pub fn subscription_count(&self) -> usize {
        self.subs.len()
    }

    /// Total channel memberships.
    pub fn channel_membership_count(&self) -> usize {
        self.channels.values().map(|s| s.len()).sum()
    }

    /// Total room memberships.
    pub fn room_membership_count(&self) -> usize {
        self.rooms.values().map(|s| s.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guard::and_filters;
    use serde_json::json;

    fn f(v: Value) -> Option<Filter> {
        Some(Filter::parse(&v).unwrap())
    }

    #[test]
    fn indexed_and_unindexed_subscriptions_are_both_found_once() {
        let mut h = Hub::default();
        let all = ChangeKind::ALL;
        h.subscribe_resource(0, ConnId(10), "m", f(json!({"channel":"general"})), &all);
        h.subscribe_resource(0, ConnId(10), "m", None, &all); // same conn twice
        h.subscribe_resource(1, ConnId(11), "m", f(json!({"channel":"random"})), &all);
        h.subscribe_resource(2, ConnId(12), "m", f(json!({"n":{"$gt":1}})), &all);
        let mut out = vec![];
        h.change_recipients(
            "m",
            ChangeKind::Insert,
            &json!({"channel":"general","n":2}),
            None,
            3,
            &mut out,
        );
        assert_eq!(out, vec![(0, ConnId(10)), (2, ConnId(12))]);
    }

    #[test]
    fn events_mask_is_enforced() {
        let mut h = Hub::default();
        h.subscribe_resource(0, ConnId(1), "m", None, &[ChangeKind::Delete]);
        let mut out = vec![];
        h.change_recipients("m", ChangeKind::Insert, &json!({}), None, 1, &mut out);
        assert!(out.is_empty());
        h.change_recipients("m", ChangeKind::Delete, &json!({}), None, 1, &mut out);
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn update_matches_previous_record_too() {
        let mut h = Hub::default();
        h.subscribe_resource(
            0,
            ConnId(1),
            "m",
            f(json!({"channel":"a"})),
            &ChangeKind::ALL,
        );
        let mut out = vec![];
        h.change_recipients(
            "m",
            ChangeKind::Update,
            &json!({"channel":"b"}),
            Some(&json!({"channel":"a"})),
            1,
            &mut out,
        );
        assert_eq!(out, vec![(0, ConnId(1))]);
    }

    /// The fan-out's shortcuts (bucket proofs, forced filter implied by the filter) give
    /// exactly what checking every filter on both records gives.
    #[test]
    fn forced_filter_shortcuts_agree_with_checking_everything() {
        let forced_opts = [
            None,
            Some(json!({"t":"a"})),
            Some(json!({"t":{"$in":["a","b"]}})),
        ];
        let client_opts = [
            None,
            Some(json!({"c":1})),
            Some(json!({"c":{"$gte":1}})),
            Some(json!({"t":"a"})),
        ];
        let records = [
            json!({"t":"a","c":1}),
            json!({"t":"b","c":1}),
            json!({"t":"a","c":2}),
            json!({"t":"c","c":0}),
            json!({}),
        ];
        for forced in &forced_opts {
            for client in &client_opts {
                let effective = and_filters(client.as_ref(), forced.as_ref());
                let filter = effective.as_ref().map(|v| Filter::parse(v).unwrap());
                let forced_f = forced.as_ref().map(|v| Filter::parse(v).unwrap());
                let mut h = Hub::default();
                h.subscribe_resource_forced(
                    0,
                    ConnId(1),
                    "m",
                    filter.clone(),
                    forced_f.clone(),
                    &ChangeKind::ALL,
                );
                for rec in &records {
                    for prev in records.iter().map(Some).chain([None]) {
                        let kind = if prev.is_some() {
                            ChangeKind::Update
                        } else {
                            ChangeKind::Insert
                        };
                        let m =
                            |f: &Option<Filter>, r: &Value| f.as_ref().is_none_or(|f| f.matches(r));
                        let expected = (m(&filter, rec) || prev.is_some_and(|p| m(&filter, p)))
                            && m(&forced_f, rec);
                        let before_ok = prev.is_none_or(|p| m(&forced_f, p));
                        let mut out = vec![];
                        h.change_recipients_visibility("m", kind, rec, prev, 1, &mut out);
                        let want = if expected {
                            vec![(0, ConnId(1), before_ok)]
                        } else {
                            vec![]
                        };
                        assert_eq!(out, want, "{client:?} {forced:?} {rec} {prev:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn forced_filter_is_checked_when_the_filter_does_not_contain_it() {
        let mut h = Hub::default();
        // Not how the engine builds subscriptions, but the hub must stay safe.
        h.subscribe_resource_forced(
            0,
            ConnId(1),
            "m",
            f(json!({"c":"a"})),
            f(json!({"t":"x"})),
            &ChangeKind::ALL,
        );
        let mut out = vec![];
        h.change_recipients(
            "m",
            ChangeKind::Insert,
            &json!({"c":"a","t":"y"}),
            None,
            1,
            &mut out,
        );
        assert!(out.is_empty());
        h.change_recipients(
            "m",
            ChangeKind::Insert,
            &json!({"c":"a","t":"x"}),
            None,
            1,
            &mut out,
        );
        assert_eq!(out, vec![(0, ConnId(1))]);
    }

    #[test]
    fn unsubscribe_removes_exactly_one_and_cleans_up() {
        let mut h = Hub::default();
        let a = h.subscribe_resource(0, ConnId(1), "m", f(json!({"c":"a"})), &ChangeKind::ALL);
        let b = h.subscribe_resource(0, ConnId(1), "m", f(json!({"c":"b"})), &ChangeKind::ALL);
        h.unsubscribe_resource(a, "m");
        let mut out = vec![];
        h.change_recipients(
            "m",
            ChangeKind::Insert,
            &json!({"c":"a"}),
            None,
            1,
            &mut out,
        );
        assert!(out.is_empty());
        h.change_recipients(
            "m",
            ChangeKind::Insert,
            &json!({"c":"b"}),
            None,
            1,
            &mut out,
        );
        assert_eq!(out.len(), 1);
        h.unsubscribe_resource(b, "m");
        h.unsubscribe_resource(b, "m"); // idempotent
        assert_eq!(h.subscription_count(), 0);
        assert!(h.resources.is_empty());
    }

    /// An index-only entry keeps just its bucket's key: unsubscribing finds the field
    /// whose bucket holds the entry, also when another field has a bucket with that key.
    #[test]
    fn unsubscribe_leaves_the_right_field_when_two_fields_share_a_bucket_key() {
        let mut h = Hub::default();
        let all = ChangeKind::ALL;
        let x = h.subscribe_resource(0, ConnId(1), "m", f(json!({"x":"v"})), &all);
        let y = h.subscribe_resource(1, ConnId(2), "m", f(json!({"y":"v"})), &all);
        let y2 = h.subscribe_resource(2, ConnId(3), "m", f(json!({"y":"v"})), &all);
        h.unsubscribe_resource(y, "m");
        let recipients = |h: &mut Hub, record: Value| {
            let mut out = vec![];
            h.change_recipients("m", ChangeKind::Insert, &record, None, 3, &mut out);
            out
        };
        assert_eq!(recipients(&mut h, json!({"x":"v"})), vec![(0, ConnId(1))]);
        assert_eq!(recipients(&mut h, json!({"y":"v"})), vec![(2, ConnId(3))]);
        h.unsubscribe_resource(y2, "m");
        assert!(recipients(&mut h, json!({"y":"v"})).is_empty());
        assert_eq!(
            h.resources["m"].by_field.len(),
            1,
            "the emptied field is gone"
        );
        h.unsubscribe_resource(x, "m");
        assert!(h.resources.is_empty());
        assert_eq!(h.subscription_count(), 0);
    }

    #[test]
    fn rooms_keep_join_order_and_vanish_when_empty() {
        let mut h = Hub::default();
        assert_eq!(h.join_room(3, "r"), 1);
        assert_eq!(h.join_room(1, "r"), 2);
        assert_eq!(
            h.room_members("r")
                .unwrap()
                .iter()
                .copied()
                .collect::<Vec<_>>(),
            vec![3, 1]
        );
        h.leave_room(3, "r");
        h.leave_room(1, "r");
        assert_eq!(h.room_count(), 0);
    }
}
