//! A small bounded least-recently-used map, the in-memory cache of compiled
//! plugins: bounded by count and by the weight of its entries (the bytes of
//! compiled code each holds).
//!
//! Reads are O(1) and stamp the entry; inserting into a full cache scans for
//! the oldest stamp (O(n)) per eviction. Inserts follow a compile (about
//! 100 ms each), so the scan over a few hundred entries is noise, and no
//! linked list is needed.

use std::collections::HashMap;
use std::hash::Hash;

/// A map holding at most `capacity` entries of at most `max_weight` in
/// all, evicting the least recently used ones to make room.
pub struct Lru<K, V> {
    capacity: usize,
    max_weight: usize,
    weight: usize,
    clock: u64,
    entries: HashMap<K, Entry<V>>,
}

struct Entry<V> {
    value: V,
    used: u64,
    weight: usize,
}

impl<K: Eq + Hash + Clone, V: Clone> Lru<K, V> {
    /// An empty cache for `capacity` entries (at least one) weighing
    /// `max_weight` in all (an entry heavier than that alone is still kept,
    /// alone).
    pub fn new(capacity: usize, max_weight: usize) -> Lru<K, V> {
        Lru {
            capacity: capacity.max(1),
            max_weight,
            weight: 0,
            clock: 0,
            entries: HashMap::new(),
        }
    }

    /// The value under `key`, marked as just used.
    pub fn get(&mut self, key: &K) -> Option<V> {
        self.clock += 1;
        let stamp = self.clock;
        self.entries.get_mut(key).map(|entry| {
            entry.used = stamp;
            entry.value.clone()
        })
    }

    /// Whether `key` is cached, without marking it used.
    pub fn contains(&self, key: &K) -> bool {
        self.entries.contains_key(key)
    }

    /// The weight of every entry together.
    pub fn weight(&self) -> usize {
        self.weight
    }

    /// Stores `value` of `weight` under `key` (replacing any value there),
    /// evicting the least recently used entries while the cache would be
    /// over its count or its weight.
    pub fn insert(&mut self, key: K, value: V, weight: usize) {
        self.clock += 1;
        if let Some(old) = self.entries.remove(&key) {
            self.weight -= old.weight;
        }
        while !self.entries.is_empty()
            && (self.entries.len() >= self.capacity || self.weight + weight > self.max_weight)
        {
            let oldest = self
                .entries
                .iter()
                .min_by_key(|(_, entry)| entry.used)
                .map(|(k, _)| k.clone());
            if let Some(entry) = oldest.and_then(|k| self.entries.remove(&k)) {
                self.weight -= entry.weight;
            }
        }
        self.weight += weight;
        let used = self.clock;
        self.entries.insert(
            key,
            Entry {
                value,
                used,
                weight,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_the_least_recently_used_entry() {
        let mut lru = Lru::new(2, usize::MAX);
        lru.insert("a", 1, 1);
        lru.insert("b", 2, 1);
        assert_eq!(lru.get(&"a"), Some(1));
        lru.insert("c", 3, 1);
        assert!(lru.contains(&"a"));
        assert!(!lru.contains(&"b"), "b was used least recently");
        assert!(lru.contains(&"c"));
    }

    #[test]
    fn replacing_a_key_does_not_evict() {
        let mut lru = Lru::new(2, usize::MAX);
        lru.insert("a", 1, 1);
        lru.insert("b", 2, 1);
        lru.insert("a", 10, 1);
        assert_eq!(lru.get(&"a"), Some(10));
        assert_eq!(lru.get(&"b"), Some(2));
    }

    #[test]
    fn contains_does_not_refresh() {
        let mut lru = Lru::new(2, usize::MAX);
        lru.insert("a", 1, 1);
        lru.insert("b", 2, 1);
        assert!(lru.contains(&"a"));
        lru.insert("c", 3, 1);
        assert!(!lru.contains(&"a"));
        assert_eq!(lru.get(&"missing"), None);
    }

    #[test]
    fn evicts_by_weight_oldest_first() {
        let mut lru = Lru::new(10, 100);
        lru.insert("a", 1, 40);
        lru.insert("b", 2, 40);
        assert_eq!(lru.get(&"a"), Some(1));
        lru.insert("c", 3, 50);
        assert!(!lru.contains(&"b"), "b was used least recently");
        assert!(lru.contains(&"a") && lru.contains(&"c"));
        assert_eq!(lru.weight(), 90);
        lru.insert("a", 1, 10);
        assert_eq!(lru.weight(), 60, "a replaced, not added");
        lru.insert("huge", 4, 500);
        assert_eq!(lru.weight(), 500, "kept alone");
        assert!(!lru.contains(&"c") && !lru.contains(&"a"));
    }

    #[test]
    fn a_zero_capacity_still_holds_one() {
        let mut lru = Lru::new(0, usize::MAX);
        lru.insert(1, "x", 1);
        lru.insert(2, "y", 1);
        assert!(!lru.contains(&1));
        assert_eq!(lru.get(&2), Some("y"));
    }
}
