//! Every endpoint of a tenant, read once and kept in this process while the
//! tenant's endpoint version (bumped by every change of an endpoint) stays
//! the same: each use costs one `GET` of the version instead of reading the
//! endpoints. Both stages read through it, once per tenant per read batch.

use std::sync::Arc;
use std::time::Duration;

use super::{Endpoint, Store};
use crate::cache::Cache;

/// A tenant's endpoints and the endpoint version they were read at.
type Versioned = (u64, Arc<Vec<Endpoint>>);

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
    pub async fn of(&self, tenant: &str) -> redis::RedisResult<Arc<Vec<Endpoint>>> {
        let version = self.store.endpoints_version(tenant).await?;
        if let Some((v, eps)) = self.lists.get(tenant)
            && v == version
        {
            return Ok(eps);
        }
        let (version, eps) = self.store.all_endpoints(tenant).await?;
        let eps = Arc::new(eps);
        self.lists.put(tenant.to_string(), (version, eps.clone()));
        Ok(eps)
    }
}
