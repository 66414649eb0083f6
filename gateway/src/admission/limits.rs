//! One cache of every tenant's limits (the operator's overrides), for every
//! admission decision that needs them: ingest rate and backlog, the default
//! endpoint rate, plugin budgets. A change through the operator API is seen
//! by every instance within [`FRESH`].

use std::sync::Arc;
use std::time::Duration;

use crate::cache::Cache;
use crate::store::{Store, TenantLimits};

/// How long a tenant's limits are used before they are read again.
pub const FRESH: Duration = Duration::from_secs(1);

#[derive(Clone)]
pub struct TenantLimitsCache {
    store: Store,
    limits: Arc<Cache<String, TenantLimits>>,
}

impl TenantLimitsCache {
    pub fn new(store: Store) -> TenantLimitsCache {
        TenantLimitsCache {
            store,
            limits: Arc::new(Cache::new(FRESH)),
        }
    }

    /// The tenant's limits, read from Redis at most once per [`FRESH`].
    pub async fn of(&self, tenant: &str) -> redis::RedisResult<TenantLimits> {
        if let Some(limits) = self.limits.get(tenant) {
            return Ok(limits);
        }
        let limits = self.store.limits(tenant).await?;
        self.limits.put(tenant.to_string(), limits.clone());
        Ok(limits)
    }
}
