//! The fan-out stage: reads accepted events from a partition's ingest
//! stream, matches them against the tenant's endpoints, and replaces each
//! ingest entry by one delivery task per subscribed endpoint (one Lua
//! script: tasks added and entry acknowledged together).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use anyhow::Context;

use crate::queue::{Entry, IngestEntry, Queue, Task};
use crate::store::{Endpoint, Store};
use crate::telemetry::Metrics;
use crate::workers::Stage;

/// Entries read per step.
const BATCH: usize = 128;

/// A tenant's endpoints and the endpoint version they were read at.
type Versioned = (u64, Arc<Vec<Endpoint>>);

pub struct Fanout {
    queue: Queue,
    store: Store,
    metrics: Metrics,
    // A std mutex: one lookup or insert per tenant per batch, never held across an await.
    cache: Mutex<HashMap<String, Versioned>>,
}

impl Fanout {
    pub fn new(queue: Queue, store: Store, metrics: Metrics) -> Self {
        Fanout {
            queue,
            store,
            metrics,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The tenant's endpoints, from the cache while its version is current.
    async fn endpoints(&self, tenant: &str) -> anyhow::Result<Arc<Vec<Endpoint>>> {
        let version = self.store.endpoints_version(tenant).await?;
        if let Some((v, eps)) = self
            .cache
            .lock()
            .expect("fan-out cache poisoned")
            .get(tenant)
            && *v == version
        {
            return Ok(eps.clone());
        }
        let (version, eps) = self.store.all_endpoints(tenant).await?;
        let eps = Arc::new(eps);
        self.cache
            .lock()
            .expect("fan-out cache poisoned")
            .insert(tenant.to_string(), (version, eps.clone()));
        Ok(eps)
    }
}

/// Delivery tasks for one event: one per enabled endpoint subscribed to its type.
pub fn tasks_for(entry: &IngestEntry, endpoints: &[Endpoint]) -> Vec<Task> {
    endpoints
        .iter()
        .filter(|ep| !ep.disabled && ep.subscribes_to(&entry.event_type))
        .map(|ep| Task::new(&entry.tenant, &entry.event, &ep.id))
        .collect()
}

impl Stage for Fanout {
    async fn handle(&self, p: u16, entries: Vec<Entry>) -> anyhow::Result<()> {
        let mut by_tenant: HashMap<String, Arc<Vec<Endpoint>>> = HashMap::new();
        for entry in entries {
            let parsed: IngestEntry = match serde_json::from_str(&entry.json) {
                Ok(e) => e,
                Err(e) => {
                    tracing::error!(partition = p, entry = %entry.id, error = %e, "unreadable ingest entry; skipping it");
                    self.queue
                        .fan_out(p, &entry.id, &unknown_entry(), &[])
                        .await?;
                    continue;
                }
            };
            let endpoints = match by_tenant.get(&parsed.tenant) {
                Some(eps) => eps.clone(),
                None => {
                    let eps = self.endpoints(&parsed.tenant).await?;
                    by_tenant.insert(parsed.tenant.clone(), eps.clone());
                    eps
                }
            };
            let tasks = tasks_for(&parsed, &endpoints);
            let added = self
                .queue
                .fan_out(p, &entry.id, &parsed, &tasks)
                .await
                .with_context(|| format!("fanning out event {}", parsed.event))?;
            self.metrics.tasks_fanned_out.add(added as u64);
        }
        Ok(())
    }

    async fn capacity(&self) -> usize {
        BATCH
    }
}

fn unknown_entry() -> IngestEntry {
    IngestEntry {
        tenant: String::new(),
        event: String::new(),
        event_type: String::new(),
    }
}
