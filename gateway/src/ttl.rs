//! A small map whose entries are trusted for a fixed time, for values read
//! from Redis on hot paths (a tenant's limits, a plugin's record) where a
//! change may take that long to be seen.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

/// Entries kept at most; past it, the map is cleared.
const MAX_ENTRIES: usize = 10_000;

pub struct TtlMap<K, V> {
    ttl: Duration,
    // A blocking (parking_lot) mutex: one lookup or insert at a time, never held across an await.
    entries: Mutex<HashMap<K, (V, Instant)>>,
}

impl<K: Hash + Eq, V: Clone> TtlMap<K, V> {
    pub fn new(ttl: Duration) -> Self {
        TtlMap {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    pub fn get(&self, key: &K) -> Option<V> {
        let entries = self.entries.lock();
        entries
            .get(key)
            .filter(|(_, at)| at.elapsed() < self.ttl)
            .map(|(v, _)| v.clone())
    }

    pub fn put(&self, key: K, value: V) {
        let mut entries = self.entries.lock();
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(key, (value, Instant::now()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire() {
        let map = TtlMap::new(Duration::from_millis(20));
        map.put("a", 1);
        assert_eq!(map.get(&"a"), Some(1));
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(map.get(&"a"), None);
    }
}
