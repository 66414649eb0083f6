//! A small bounded least-recently-used map, the in-memory cache of compiled
//! plugins.
//!
//! Reads are O(1) and stamp the entry; inserting into a full cache scans for
//! the oldest stamp (O(n)). Inserts follow a compile (about 100 ms each), so
//! the scan over a few hundred entries is noise, and no linked list is needed.

use std::collections::HashMap;
use std::hash::Hash;

/// A map holding at most `capacity` entries, evicting the least recently
/// used one to make room.
pub struct Lru<K, V> {
    capacity: usize,
    clock: u64,
    entries: HashMap<K, (V, u64)>,
}

impl<K: Eq + Hash + Clone, V: Clone> Lru<K, V> {
    /// An empty cache for `capacity` entries (at least one).
    pub fn new(capacity: usize) -> Lru<K, V> {
        Lru {
            capacity: capacity.max(1),
            clock: 0,
            entries: HashMap::new(),
        }
    }

    /// The value under `key`, marked as just used.
    pub fn get(&mut self, key: &K) -> Option<V> {
        self.clock += 1;
        let stamp = self.clock;
        self.entries.get_mut(key).map(|(value, used)| {
            *used = stamp;
            value.clone()
        })
    }

    /// Whether `key` is cached, without marking it used.
    pub fn contains(&self, key: &K) -> bool {
        self.entries.contains_key(key)
    }

    /// Stores `value` under `key` (replacing any value there), evicting the
    /// least recently used entry when the cache is full.
    pub fn insert(&mut self, key: K, value: V) {
        self.clock += 1;
        if !self.entries.contains_key(&key) && self.entries.len() >= self.capacity {
            let oldest = self
                .entries
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(k, _)| k.clone());
            if let Some(oldest) = oldest {
                self.entries.remove(&oldest);
            }
        }
        self.entries.insert(key, (value, self.clock));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_the_least_recently_used_entry() {
        let mut lru = Lru::new(2);
        lru.insert("a", 1);
        lru.insert("b", 2);
        assert_eq!(lru.get(&"a"), Some(1));
        lru.insert("c", 3);
        assert!(lru.contains(&"a"));
        assert!(!lru.contains(&"b"), "b was used least recently");
        assert!(lru.contains(&"c"));
    }

    #[test]
    fn replacing_a_key_does_not_evict() {
        let mut lru = Lru::new(2);
        lru.insert("a", 1);
        lru.insert("b", 2);
        lru.insert("a", 10);
        assert_eq!(lru.get(&"a"), Some(10));
        assert_eq!(lru.get(&"b"), Some(2));
    }

    #[test]
    fn contains_does_not_refresh() {
        let mut lru = Lru::new(2);
        lru.insert("a", 1);
        lru.insert("b", 2);
        assert!(lru.contains(&"a"));
        lru.insert("c", 3);
        assert!(!lru.contains(&"a"));
        assert_eq!(lru.get(&"missing"), None);
    }

    #[test]
    fn a_zero_capacity_still_holds_one() {
        let mut lru = Lru::new(0);
        lru.insert(1, "x");
        lru.insert(2, "y");
        assert!(!lru.contains(&1));
        assert_eq!(lru.get(&2), Some("y"));
    }
}
