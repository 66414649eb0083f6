//! Every endpoint of a tenant, read once and kept in this process while the
//! tenant's endpoint version (bumped by every change of an endpoint) stays
//! the same: each use costs one `GET` of the version instead of reading the
//! endpoints. Both stages read through it, once per tenant per read batch.
//!
//! The list is indexed by endpoint id and by consumer, so a delivery finds
//! its endpoint and an event for one consumer finds that consumer's
//! endpoints without going through every endpoint of the tenant.

use std::collections::HashMap;
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use super::{Endpoint, Store};
use crate::cache::Cache;
use crate::model::IngestEntry;

/// A tenant's endpoints and the endpoint version they were read at.
type Versioned = (u64, Arc<TenantEndpoints>);

/// A tenant's endpoints in their stored order, with two indexes.
#[derive(Debug, Default)]
pub struct TenantEndpoints {
    all: Vec<Endpoint>,
    by_id: HashMap<String, usize>,
    /// Positions of each consumer's endpoints, ascending.
    by_consumer: HashMap<String, Vec<usize>>,
}

impl TenantEndpoints {
    pub fn new(all: Vec<Endpoint>) -> TenantEndpoints {
        let mut by_id = HashMap::with_capacity(all.len());
        let mut by_consumer: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, endpoint) in all.iter().enumerate() {
            by_id.insert(endpoint.id.to_string(), i);
            if let Some(consumer) = &endpoint.consumer_id {
                by_consumer.entry(consumer.clone()).or_default().push(i);
            }
        }
        TenantEndpoints {
            all,
            by_id,
            by_consumer,
        }
    }

    /// The endpoint with id `id`.
    pub fn get(&self, id: &str) -> Option<&Endpoint> {
        self.by_id.get(id).map(|&i| &self.all[i])
    }

    /// The endpoints the event of `entry` goes to ([`Endpoint::takes_entry`]),
    /// in stored order. An event for some consumers looks only at theirs.
    pub fn taking(&self, entry: &IngestEntry) -> Vec<&Endpoint> {
        if entry.about.is_some() || entry.consumers.is_empty() {
            return self.all.iter().filter(|e| e.takes_entry(entry)).collect();
        }
        let mut at: Vec<usize> = entry
            .consumers
            .iter()
            .filter_map(|c| self.by_consumer.get(c))
            .flatten()
            .copied()
            .collect();
        if entry.consumers.len() > 1 {
            at.sort_unstable();
            at.dedup();
        }
        at.into_iter()
            .map(|i| &self.all[i])
            .filter(|e| e.takes_entry(entry))
            .collect()
    }
}

impl TenantEndpoints {
    /// Whether the event of `entry` goes to any endpoint: as
    /// [`TenantEndpoints::taking`] is not empty, without collecting them.
    pub fn takes_any(&self, entry: &IngestEntry) -> bool {
        if entry.about.is_some() || entry.consumers.is_empty() {
            return self.all.iter().any(|e| e.takes_entry(entry));
        }
        entry
            .consumers
            .iter()
            .filter_map(|c| self.by_consumer.get(c))
            .flatten()
            .any(|&i| self.all[i].takes_entry(entry))
    }
}

impl Deref for TenantEndpoints {
    type Target = [Endpoint];

    fn deref(&self) -> &[Endpoint] {
        &self.all
    }
}

#[derive(Clone)]
pub struct EndpointLists {
    store: Store,
    /// Kept until replaced: the version is checked at every use.
    lists: Arc<Cache<String, Versioned>>,
}

impl EndpointLists {
    pub fn new(store: Store) -> EndpointLists {
        EndpointLists {
            store,
            lists: Arc::new(Cache::new(Duration::MAX)),
        }
    }

    /// The tenant's endpoints as of now (their version is checked first).
    pub async fn of(&self, tenant: &str) -> redis::RedisResult<Arc<TenantEndpoints>> {
        let version = self.store.endpoints_version(tenant).await?;
        if let Some((v, eps)) = self.lists.get(tenant)
            && v == version
        {
            return Ok(eps);
        }
        let (version, eps) = self.store.all_endpoints(tenant).await?;
        let eps = Arc::new(TenantEndpoints::new(eps));
        self.lists.put(tenant.to_string(), (version, eps.clone()));
        Ok(eps)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn endpoint(id: &str, consumer: Option<&str>, types: &[&str]) -> Endpoint {
        serde_json::from_value(json!({
            "id": id, "url": "https://example.com/hook", "description": "",
            "consumer_id": consumer, "event_types": types, "disabled": false,
            "headers": {}, "timeout_ms": null, "created_at": "", "updated_at": "",
            "secrets": [],
        }))
        .unwrap()
    }

    fn entry(consumers: &[&str], about: Option<&str>) -> IngestEntry {
        IngestEntry {
            tenant: "tn_a".into(),
            event: "evt_1".into(),
            event_type: "order.created".into(),
            version: None,
            timestamp: String::new(),
            about: about.map(str::to_string),
            consumers: consumers.iter().map(|c| c.to_string()).collect(),
            channels: vec![],
        }
    }

    fn ids(taking: Vec<&Endpoint>) -> Vec<&str> {
        taking.into_iter().map(|e| e.id.as_str()).collect()
    }

    #[test]
    fn the_index_finds_what_a_scan_of_every_endpoint_finds() {
        let list = TenantEndpoints::new(vec![
            endpoint("ep_own", None, &[]),
            endpoint("ep_a1", Some("cs_a"), &[]),
            endpoint("ep_b", Some("cs_b"), &["order.created"]),
            endpoint("ep_a2", Some("cs_a"), &["order.paid"]),
            endpoint("ep_a3", Some("cs_a"), &[]),
        ]);
        let cases = [
            entry(&[], None),
            entry(&["cs_a"], None),
            entry(&["cs_b", "cs_a"], None),
            entry(&["cs_a", "cs_a"], None),
            entry(&["cs_unknown"], None),
            entry(&["cs_a"], Some("ep_b")),
        ];
        for case in &cases {
            let scanned: Vec<&Endpoint> = list.iter().filter(|e| e.takes_entry(case)).collect();
            assert_eq!(list.takes_any(case), !scanned.is_empty(), "{case:?}");
            assert_eq!(ids(list.taking(case)), ids(scanned), "{case:?}");
        }
        assert_eq!(ids(list.taking(&cases[2])), ["ep_a1", "ep_b", "ep_a3"]);
        assert_eq!(list.get("ep_a2").map(|e| e.id.as_str()), Some("ep_a2"));
        assert!(list.get("ep_gone").is_none());
    }
}
