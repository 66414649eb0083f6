//! Every endpoint of a tenant, read once and kept in this process while the
//! tenant's endpoint version (bumped by every change of an endpoint) stays
//! the same: each use costs one `GET` of the version instead of reading the
//! endpoints. Both stages read through it, once per tenant per read batch.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;

use super::{Endpoint, Store};

/// A tenant's endpoints and the endpoint version they were read at.
type Versioned = (u64, Arc<Vec<Endpoint>>);

/// Tenants kept at most; past it the map is cleared (each tenant then
/// costs one read again).
const MAX_TENANTS: usize = 10_000;

#[derive(Clone)]
pub struct EndpointLists {
    store: Store,
    // A blocking (parking_lot) mutex: one lookup or insert per call, never held across an await.
    lists: Arc<Mutex<HashMap<String, Versioned>>>,
}

impl EndpointLists {
    pub fn new(store: Store) -> EndpointLists {
        EndpointLists {
            store,
            lists: Arc::default(),
        }
    }

    fn lock(&self) -> parking_lot::MutexGuard<'_, HashMap<String, Versioned>> {
        self.lists.lock()
    }

    /// The tenant's endpoints as of now (their version is checked first).
    pub async fn of(&self, tenant: &str) -> redis::RedisResult<Arc<Vec<Endpoint>>> {
        let version = self.store.endpoints_version(tenant).await?;
        if let Some((v, eps)) = self.lock().get(tenant)
            && *v == version
        {
            return Ok(eps.clone());
        }
        let (version, eps) = self.store.all_endpoints(tenant).await?;
        let eps = Arc::new(eps);
        let mut lists = self.lock();
        if lists.len() >= MAX_TENANTS {
            lists.clear();
        }
        lists.insert(tenant.to_string(), (version, eps.clone()));
        Ok(eps)
    }
}
