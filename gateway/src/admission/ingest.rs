//! Edge flow control: what the API refuses before it stores anything.
//!
//! - **Ingest rate per tenant** (`ingest_per_second`, `ingest_burst` in the
//!   tenant's limits; `null` rate = unlimited, `null` burst = one second's
//!   worth). A GCRA bucket from the `governor` crate. governor's keyed limiter
//!   gives every key the same quota, while tenants have their own quotas that
//!   operators change at run time; so each tenant gets its own direct limiter,
//!   kept while its quota stays the same and replaced (with a full burst) when
//!   it changes. The bucket is per process: behind a load balancer spreading a
//!   tenant over N instances, the tenant may reach up to N times its rate.
//! - **Propagation**: an instance re-reads a tenant's limits from Redis at
//!   most once per [`REFRESH`], on that tenant's next request, so an operator's
//!   change applies on every instance within about a second, with no restart
//!   and no message to lose.
//! - **Load shedding** (`max_backlog`): the tenant's backlog is the sum of its
//!   per-partition counters `gw:{pN}:backlog:<tenant>` (kept exact by the queue
//!   scripts), read in one pipelined round trip and cached for at most
//!   [`REFRESH`]; at or above the limit, ingest answers 503 with `Retry-After`.
//! - **Per client address** (`[limits]` in the config): unauthenticated routes
//!   and requests that fail authentication share a keyed governor limiter per
//!   peer IP address (the proxy's address when behind one).

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;

use parking_lot::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use governor::clock::Clock;
use governor::middleware::StateInformationMiddleware;
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota};

use super::TenantLimitsCache;
use crate::config::LimitsConfig;
use crate::error::{ApiError, RateHeaders};
use crate::queue::Queue;

/// Longest a tenant's limits (and its backlog) are used without asking Redis.
pub const REFRESH: Duration = Duration::from_secs(1);
/// What a shed request is told to wait.
const SHED_RETRY_AFTER_SECS: u64 = 5;
/// Tenants tracked at once; past it, entries not used for [`REFRESH`] go.
const MAX_TENANTS: usize = 10_000;
/// Client addresses tracked at once; past it, addresses with a full bucket go.
const MAX_ADDRESSES: usize = 100_000;

type TenantLimiter = DefaultDirectRateLimiter<StateInformationMiddleware>;

/// A tenant's ingest quota and its bucket.
#[derive(Clone)]
pub struct Rate {
    per_second: u32,
    burst: u32,
    limiter: Arc<TenantLimiter>,
}

impl Rate {
    pub fn new(per_second: u32, burst: u32) -> Rate {
        let nonzero = |n: u32| NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::per_second(nonzero(per_second)).allow_burst(nonzero(burst));
        Rate {
            per_second,
            burst,
            limiter: Arc::new(
                DefaultDirectRateLimiter::direct(quota)
                    .with_middleware::<StateInformationMiddleware>(),
            ),
        }
    }

    /// Takes `n` events from the bucket, or says how long to wait.
    pub fn take(&self, n: NonZeroU32) -> Result<RateHeaders, ApiError> {
        match self.limiter.check_n(n) {
            Ok(Ok(snapshot)) => {
                let remaining = snapshot.remaining_burst_capacity();
                let refill = f64::from(self.burst - remaining) / f64::from(self.per_second);
                Ok(RateHeaders {
                    limit: self.burst,
                    remaining,
                    reset_secs: refill.ceil() as u64,
                })
            }
            Ok(Err(not_until)) => {
                let wait = not_until.wait_time_from(self.limiter.clock().now());
                Err(rate_limited(self.burst, wait))
            }
            Err(_) => Err(ApiError::invalid(
                "/events",
                format!(
                    "more events than the tenant's ingest burst ({}) allows at once; send smaller batches",
                    self.burst
                ),
            )),
        }
    }
}

/// A 429 telling the client to wait `wait` (at least a second).
fn rate_limited(limit: u32, wait: Duration) -> ApiError {
    let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
    ApiError::RateLimited {
        retry_after_secs: secs,
        headers: RateHeaders {
            limit,
            remaining: 0,
            reset_secs: secs,
        },
    }
}

struct TenantEntry {
    checked: Instant,
    rate: Option<Rate>,
    max_backlog: Option<u64>,
    backlog: Option<(u64, Instant)>,
}

/// The edge limits of this process; cheap to clone.
#[derive(Clone)]
pub struct Edge {
    inner: Arc<Inner>,
}

struct Inner {
    // A blocking (parking_lot) mutex: held only to read or replace an entry, never across an
    // await; Redis is asked with the lock released.
    tenants: Mutex<HashMap<String, TenantEntry>>,
    addresses: AddressLimits,
    limits: TenantLimitsCache,
}

/// The per-address limits of public routes (and of failed authentication).
struct AddressLimits {
    buckets: DefaultKeyedRateLimiter<IpAddr>,
    burst: u32,
}

impl AddressLimits {
    fn new(config: &LimitsConfig) -> AddressLimits {
        let nonzero = |n: u32| NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::per_second(nonzero(config.public_per_second))
            .allow_burst(nonzero(config.public_burst));
        AddressLimits {
            buckets: DefaultKeyedRateLimiter::keyed(quota),
            burst: config.public_burst,
        }
    }

    fn check(&self, address: IpAddr) -> Result<(), ApiError> {
        if self.buckets.len() >= MAX_ADDRESSES {
            self.buckets.retain_recent();
        }
        self.buckets.check_key(&address).map_err(|not_until| {
            let wait = not_until.wait_time_from(self.buckets.clock().now());
            rate_limited(self.burst, wait)
        })
    }
}

impl Edge {
    pub fn new(config: &LimitsConfig, limits: TenantLimitsCache) -> Edge {
        Edge {
            inner: Arc::new(Inner {
                tenants: Mutex::new(HashMap::new()),
                addresses: AddressLimits::new(config),
                limits,
            }),
        }
    }

    fn tenants(&self) -> MutexGuard<'_, HashMap<String, TenantEntry>> {
        self.inner.tenants.lock()
    }

    /// Lets `events` events of `tenant` in, or refuses them: 503 when its
    /// backlog is full (checked first, so a shed request costs no quota),
    /// 429 when over its rate. Answers the headers to send when a rate is set.
    pub async fn admit(
        &self,
        queue: &Queue,
        tenant: &str,
        events: NonZeroU32,
    ) -> Result<Option<RateHeaders>, ApiError> {
        let (rate, max_backlog) = self.limits(tenant).await?;
        if let Some(max) = max_backlog
            && self.backlog(queue, tenant).await? >= max
        {
            return Err(ApiError::Overloaded {
                retry_after_secs: SHED_RETRY_AFTER_SECS,
            });
        }
        rate.map(|rate| rate.take(events)).transpose()
    }

    /// The tenant's rate and backlog limit, from Redis at most once per [`REFRESH`].
    async fn limits(&self, tenant: &str) -> Result<(Option<Rate>, Option<u64>), ApiError> {
        if let Some(entry) = self.tenants().get(tenant)
            && entry.checked.elapsed() < REFRESH
        {
            return Ok((entry.rate.clone(), entry.max_backlog));
        }
        let limits = self.inner.limits.of(tenant).await?;
        let clamp = |n: u64| u32::try_from(n).unwrap_or(u32::MAX);
        let wanted = limits
            .ingest_per_second
            .map(|rate| (clamp(rate), limits.ingest_burst.map_or(clamp(rate), clamp)));
        let mut tenants = self.tenants();
        if tenants.len() >= MAX_TENANTS && !tenants.contains_key(tenant) {
            tenants.retain(|_, e| e.checked.elapsed() < REFRESH);
        }
        let entry = tenants
            .entry(tenant.to_string())
            .or_insert_with(|| TenantEntry {
                checked: Instant::now(),
                rate: None,
                max_backlog: None,
                backlog: None,
            });
        let unchanged = match (&entry.rate, wanted) {
            (Some(rate), Some((per_second, burst))) => {
                rate.per_second == per_second && rate.burst == burst
            }
            (None, None) => true,
            _ => false,
        };
        if !unchanged {
            entry.rate = wanted.map(|(per_second, burst)| Rate::new(per_second, burst));
        }
        entry.checked = Instant::now();
        entry.max_backlog = limits.max_backlog;
        Ok((entry.rate.clone(), entry.max_backlog))
    }

    /// The tenant's backlog, from Redis at most once per [`REFRESH`].
    async fn backlog(&self, queue: &Queue, tenant: &str) -> Result<u64, ApiError> {
        if let Some((n, at)) = self.tenants().get(tenant).and_then(|e| e.backlog)
            && at.elapsed() < REFRESH
        {
            return Ok(n);
        }
        let n = queue.backlog(tenant).await?;
        if let Some(entry) = self.tenants().get_mut(tenant) {
            entry.backlog = Some((n, Instant::now()));
        }
        Ok(n)
    }

    /// One request from `address` to an unauthenticated route (or one that
    /// failed authentication): allowed, or a 429.
    pub fn check_address(&self, address: IpAddr) -> Result<(), ApiError> {
        self.inner.addresses.check(address)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nz(n: u32) -> NonZeroU32 {
        NonZeroU32::new(n).unwrap()
    }

    #[test]
    fn a_bucket_allows_its_burst_then_refuses_with_a_wait() {
        let rate = Rate::new(1, 3);
        let first = rate.take(nz(1)).unwrap();
        assert_eq!((first.limit, first.remaining), (3, 2));
        assert_eq!(rate.take(nz(2)).unwrap().remaining, 0);
        match rate.take(nz(1)).unwrap_err() {
            ApiError::RateLimited {
                retry_after_secs,
                headers,
            } => {
                assert_eq!(retry_after_secs, 1);
                assert_eq!(headers.remaining, 0);
            }
            other => panic!("expected 429, got {other:?}"),
        }
    }

    #[test]
    fn more_than_the_burst_at_once_is_invalid() {
        let rate = Rate::new(10, 5);
        assert!(matches!(rate.take(nz(6)), Err(ApiError::Invalid(_))));
        assert_eq!(rate.take(nz(5)).unwrap().remaining, 0);
    }

    #[test]
    fn addresses_have_their_own_buckets() {
        let edge = AddressLimits::new(&LimitsConfig {
            public_per_second: 1,
            public_burst: 2,
        });
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        assert!(edge.check(a).is_ok());
        assert!(edge.check(a).is_ok());
        assert!(matches!(edge.check(a), Err(ApiError::RateLimited { .. })));
        assert!(edge.check(b).is_ok());
    }
}
