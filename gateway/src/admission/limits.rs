//! One cache of every tenant's limits (the operator's overrides), for every
//! admission decision that needs them: ingest rate and backlog, the default
//! endpoint rate, plugin budgets. A change through the operator API is seen
//! by every instance within [`FRESH`].

use std::sync::Arc;
use std::time::Duration;

use crate::store::{Store, TenantLimits};
use crate::ttl::TtlMap;

/// How long a tenant's limits are used before they are read again.
pub const FRESH: Duration = Duration::from_secs(1);

#[derive(Clone)]
pub struct TenantLimitsCache {
    store: Store,
    limits: Arc<TtlMap<String, TenantLimits>>,
}

impl TenantLimitsCache {
    pub fn new(store: Store) -> TenantLimitsCache {
        TenantLimitsCache {
            store,
            limits: Arc::new(TtlMap::new(FRESH)),
        }
    }

    /// The tenant's limits, read from Redis at most once per [`FRESH`].
    pub async fn of(&self, tenant: &str) -> redis::RedisResult<TenantLimits> {
        let key = tenant.to_string();
        if let Some(limits) = self.limits.get(&key) {
            return Ok(limits);
        }
        let limits = self.store.limits(tenant).await?;
        self.limits.put(key, limits.clone());
        Ok(limits)
    }
}
