//! The one in-process cache type: a bounded map whose entries are trusted
//! for a fixed time. Every value the gateway keeps from Redis on a hot path
//! goes through it (API keys, a tenant's limits, endpoints and contracts, a
//! plugin's record, an endpoint's clear circuit), so a change made on
//! another instance is seen within that time, or at once where the user of
//! the cache checks a version first.
//!
//! The compiled plugins are the one exception: they live in an LRU bounded
//! by count ([`crate::plugins`]), because they are dear to rebuild and never
//! go stale (a component's bytes are named by their hash).

use parking_lot::Mutex;
use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

/// Entries kept at most: past it, expired entries go first, then all.
const MAX_ENTRIES: usize = 10_000;

pub struct Cache<K, V> {
    ttl: Duration,
    // A blocking (parking_lot) mutex: one lookup or insert at a time, never held across an await.
    entries: Mutex<HashMap<K, (V, Instant)>>,
}

/// A cached value and whether it is still within the cache's time.
pub struct Aged<V> {
    pub value: V,
    pub fresh: bool,
}

impl<K: Hash + Eq, V: Clone> Cache<K, V> {
    /// Entries trusted for `ttl`; `Duration::MAX` keeps them until replaced
    /// (for values checked against a version at every use).
    pub fn new(ttl: Duration) -> Self {
        Cache {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The value under `key`, if it is within the cache's time.
    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.get_aged(key).filter(|a| a.fresh).map(|a| a.value)
    }

    /// The value under `key` however old it is, and whether it is fresh.
    pub fn get_aged<Q>(&self, key: &Q) -> Option<Aged<V>>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let entries = self.entries.lock();
        entries.get(key).map(|(value, at)| Aged {
            value: value.clone(),
            fresh: at.elapsed() < self.ttl,
        })
    }

    /// Keeps `value` under `key` from now on.
    pub fn put(&self, key: K, value: V) {
        let mut entries = self.entries.lock();
        if entries.len() >= MAX_ENTRIES && !entries.contains_key(&key) {
            entries.retain(|_, (_, at)| at.elapsed() < self.ttl);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(key, (value, Instant::now()));
    }

    /// Forgets `key`.
    pub fn remove<Q>(&self, key: &Q)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.entries.lock().remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_but_stay_readable_as_stale() {
        let map = Cache::new(Duration::from_millis(20));
        map.put("a", 1);
        assert_eq!(map.get("a"), Some(1));
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(map.get("a"), None);
        let stale = map.get_aged("a").expect("kept");
        assert_eq!((stale.value, stale.fresh), (1, false));
        map.remove("a");
        assert!(map.get_aged("a").is_none());
    }

    #[test]
    fn a_full_cache_drops_expired_entries_first() {
        let map = Cache::new(Duration::from_millis(20));
        for i in 0..MAX_ENTRIES - 1 {
            map.put(i, i);
        }
        std::thread::sleep(Duration::from_millis(30));
        map.put(MAX_ENTRIES - 1, 0);
        map.put(MAX_ENTRIES, 0);
        assert_eq!(map.entries.lock().len(), 2);
        assert_eq!(map.get(&MAX_ENTRIES), Some(0));
    }

    #[test]
    fn a_full_cache_of_fresh_entries_starts_over() {
        let map = Cache::new(Duration::MAX);
        for i in 0..MAX_ENTRIES {
            map.put(i, i);
        }
        map.put(0, 7);
        assert_eq!(
            map.entries.lock().len(),
            MAX_ENTRIES,
            "replacing is not growing"
        );
        map.put(MAX_ENTRIES, 0);
        assert_eq!(map.entries.lock().len(), 1);
    }
}
