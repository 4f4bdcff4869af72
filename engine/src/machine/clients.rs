//! Connections by client id.
//!
//! The index keeps only slots: the id itself is the one the connection's state already
//! holds, hashed again on lookup. A map keyed by `String` kept a second copy of every
//! client id (an allocation per connection, for as long as it lives).

use std::hash::BuildHasher;

use hashbrown::HashTable;
use rustc_hash::FxBuildHasher;
use slab::Slab;

use crate::connection::Connection;

/// The engine's connections, one box per slot (see `Engine::conns`).
pub(crate) type Conns = Slab<Box<Connection>>;

/// Slots of the engine's connections, found by their client id.
#[derive(Debug, Default)]
pub(crate) struct ClientIndex {
    table: HashTable<usize>,
}

fn hash(client_id: &str) -> u64 {
    FxBuildHasher.hash_one(client_id)
}

/// The client id in `slot` ("" for a vacant slot, which the index never holds: a close
/// removes its entry before the slot is freed; no lookup panics if that were broken).
fn id_of(conns: &Conns, slot: usize) -> &str {
    conns.get(slot).map_or("", |c| &c.state.client_id)
}

impl ClientIndex {
    /// The slot of the connection with this client id.
    pub fn get(&self, conns: &Conns, client_id: &str) -> Option<usize> {
        self.table
            .find(hash(client_id), |&s| id_of(conns, s) == client_id)
            .copied()
    }

    /// Whether a connection has this client id.
    pub fn contains(&self, conns: &Conns, client_id: &str) -> bool {
        self.get(conns, client_id).is_some()
    }

    /// Index the connection in `slot` under its client id. The upgrade refuses an id
    /// that is taken; should two connections share one anyway (restored snapshots),
    /// both are indexed and a lookup finds either.
    pub fn insert(&mut self, conns: &Conns, slot: usize) {
        let h = hash(id_of(conns, slot));
        self.table
            .insert_unique(h, slot, |&s| hash(id_of(conns, s)));
    }

    /// Whether the connection in `slot` is indexed under its client id.
    pub fn holds(&self, conns: &Conns, slot: usize) -> bool {
        self.table
            .find(hash(id_of(conns, slot)), |&s| s == slot)
            .is_some()
    }

    /// Remove the connection in `slot` (while the slot still holds it); false if it
    /// was not indexed.
    pub fn remove(&mut self, conns: &Conns, slot: usize) -> bool {
        match self
            .table
            .find_entry(hash(id_of(conns, slot)), |&s| s == slot)
        {
            Ok(entry) => {
                entry.remove();
                true
            }
            Err(_) => false,
        }
    }

    /// How many connections are indexed.
    pub fn len(&self) -> usize {
        self.table.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connection::{ConnectionSnapshot, Heartbeat, SNAPSHOT_VERSION};

    fn connection_with_client_id(id: &str) -> Connection {
        let state = ConnectionSnapshot {
            version: SNAPSHOT_VERSION,
            client_id: id.to_string(),
            user: None,
            route: 0,
            codec: Default::default(),
            peer: "127.0.0.1".into(),
            connected_at: crate::types::Millis(0),
            subscriptions: Vec::new(),
            rooms: Vec::new(),
            rate: None,
            rate_violations: 0,
            heartbeat: Heartbeat::Off,
            next_subscription: 0,
            expiry: None,
            params: Default::default(),
            tenant: None,
            meta: None,
        };
        Connection::new(crate::types::ConnId(1), state, None)
    }

    #[test]
    fn connections_are_found_by_the_client_id_they_hold_until_removed() {
        let mut conns = Conns::new();
        let mut index = ClientIndex::default();
        let ids: Vec<String> = (0..200).map(|i| format!("client-{i}")).collect();
        for id in &ids {
            let slot = conns.insert(Box::new(connection_with_client_id(id)));
            index.insert(&conns, slot);
        }
        assert_eq!(index.len(), 200);
        for id in &ids {
            let slot = index.get(&conns, id).expect("indexed");
            assert_eq!(conns[slot].state.client_id, *id);
        }
        assert!(!index.contains(&conns, "client-200"));
        let slot = index.get(&conns, "client-7").expect("indexed");
        assert!(index.remove(&conns, slot));
        assert!(!index.remove(&conns, slot));
        conns.remove(slot);
        assert!(index.get(&conns, "client-7").is_none());
        assert_eq!(index.len(), 199);
        // The freed slot is reused by another id; the index finds the new one only.
        let slot2 = conns.insert(Box::new(connection_with_client_id("late")));
        index.insert(&conns, slot2);
        assert_eq!(index.get(&conns, "late"), Some(slot2));
        assert!(index.get(&conns, "client-7").is_none());
        assert_eq!(
            index
                .get(&conns, "client-8")
                .map(|s| &*conns[s].state.client_id),
            Some("client-8")
        );
    }

    #[test]
    fn two_connections_with_one_client_id_are_removed_each_by_its_own_slot() {
        let mut conns = Conns::new();
        let mut index = ClientIndex::default();
        let a = conns.insert(Box::new(connection_with_client_id("same")));
        index.insert(&conns, a);
        let b = conns.insert(Box::new(connection_with_client_id("same")));
        index.insert(&conns, b);
        assert!(index.holds(&conns, a) && index.holds(&conns, b));
        assert!(index.remove(&conns, a));
        assert!(!index.holds(&conns, a));
        conns.remove(a);
        assert_eq!(index.get(&conns, "same"), Some(b));
        assert_eq!(index.len(), 1);
    }
}
