//! Collecting tasks for batching endpoints: fresh tasks of one endpoint (in
//! one partition) wait here, their stream entries left pending, until
//! `max_events` are in or the first has waited `max_wait_ms`; then they go
//! as one batch task through the same pipeline as a single delivery.
//! Collecting per partition keeps a batch's keys under one hash tag, so its
//! settlement is one script; a crash while collecting leaves the entries
//! pending, to be taken over.

use crate::model::{EndpointId, Task, TenantId};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::collections::hash_map::Entry;

/// (partition, tenant, endpoint).
pub type CollectKey = (u16, TenantId, EndpointId);

/// Tasks of one endpoint collected so far.
pub struct Collected {
    /// Tells this collection from a later one of the same endpoint.
    pub seq: u64,
    /// Stream entry id and task of each member.
    pub entries: Vec<(String, Task)>,
}

impl Collected {
    /// The batch task and its stream entries.
    pub fn into_batch(self) -> Option<(Vec<String>, Task)> {
        let (ids, members): (Vec<String>, Vec<Task>) = self.entries.into_iter().unzip();
        let first = members.first()?;
        let (tenant, endpoint) = (first.tenant.clone(), first.endpoint.clone());
        Some((ids, Task::batch(&tenant, &endpoint, members)))
    }
}

/// What adding a task did.
pub enum Added {
    /// The collection is full: send it now.
    Full(Collected),
    /// It started collection `seq`: send that after `max_wait_ms`.
    Started(u64),
    /// It joined a collection under way, or was in it already (an entry
    /// read again after a takeover).
    Joined,
}

#[derive(Default)]
pub struct Collector {
    // A blocking (parking_lot) mutex: one map operation per task, never held across an await.
    collecting: Mutex<HashMap<CollectKey, Collected>>,
    next_seq: std::sync::atomic::AtomicU64,
}

impl Collector {
    fn lock(&self) -> parking_lot::MutexGuard<'_, HashMap<CollectKey, Collected>> {
        self.collecting.lock()
    }

    pub fn add(&self, key: CollectKey, entry_id: &str, task: Task, max_events: u32) -> Added {
        let mut collecting = self.lock();
        let c = match collecting.entry(key.clone()) {
            Entry::Occupied(c) => c.into_mut(),
            Entry::Vacant(v) => v.insert(Collected {
                seq: self
                    .next_seq
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed),
                entries: Vec::new(),
            }),
        };
        if c.entries.iter().any(|(id, _)| id == entry_id) {
            return Added::Joined;
        }
        c.entries.push((entry_id.to_string(), task));
        match c.entries.len() {
            n if n >= max_events as usize => match collecting.remove(&key) {
                Some(full) => Added::Full(full),
                None => Added::Joined,
            },
            1 => Added::Started(c.seq),
            _ => Added::Joined,
        }
    }

    /// Takes collection `seq` of `key`, unless it was sent full before.
    pub fn take(&self, key: &CollectKey, seq: u64) -> Option<Collected> {
        let mut collecting = self.lock();
        match collecting.get(key) {
            Some(c) if c.seq == seq => collecting.remove(key),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(event: &str) -> Task {
        Task::new(&"ten_a".into(), &event.into(), &"ep_a".into())
    }

    #[test]
    fn a_collection_starts_fills_and_is_taken_once() {
        let collector = Collector::default();
        let key: CollectKey = (0, "ten_a".into(), "ep_a".into());
        let Added::Started(seq) = collector.add(key.clone(), "1-0", task("e1"), 3) else {
            panic!("the first task starts a collection");
        };
        assert!(matches!(
            collector.add(key.clone(), "1-0", task("e1"), 3),
            Added::Joined
        ));
        assert!(matches!(
            collector.add(key.clone(), "2-0", task("e2"), 3),
            Added::Joined
        ));
        let Added::Full(full) = collector.add(key.clone(), "3-0", task("e3"), 3) else {
            panic!("the third task fills it");
        };
        assert_eq!(full.seq, seq);
        assert!(
            collector.take(&key, seq).is_none(),
            "a full collection is gone"
        );
        let (ids, batch) = full.into_batch().unwrap();
        assert_eq!(ids, ["1-0", "2-0", "3-0"]);
        assert_eq!(batch.members().len(), 3);
        assert!(batch.msg_id.starts_with("batch_"));
    }

    #[test]
    fn a_later_collection_is_not_taken_by_an_earlier_timer() {
        let collector = Collector::default();
        let key: CollectKey = (0, "ten_a".into(), "ep_a".into());
        let Added::Started(first) = collector.add(key.clone(), "1-0", task("e1"), 10) else {
            panic!("started");
        };
        assert!(collector.take(&key, first).is_some());
        let Added::Started(second) = collector.add(key.clone(), "2-0", task("e2"), 10) else {
            panic!("started again");
        };
        assert!(collector.take(&key, first).is_none());
        assert_eq!(collector.take(&key, second).unwrap().entries.len(), 1);
    }
}
