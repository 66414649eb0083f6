//! Admission control: every limit, lease, circuit and breaker that decides
//! whether work may go now, in one place, reading tenants' limits through
//! one cache ([`TenantLimitsCache`]).
//!
//! - [`ingest`]: a tenant's ingest rate (a token bucket per process) and
//!   load shedding on its backlog; per-address limits of public routes.
//! - [`endpoint`]: an endpoint's delivery rate (GCRA in Redis), its cap on
//!   requests in flight (leases), its circuit breaker, and this process's
//!   share of the delivery permits per endpoint.
//! - [`lane`]: plugin calls on their own threads, a few at a time per tenant.
//! - [`breaker`]: a plugin that keeps exhausting its budget is not run for a while.
//!
//! What a refusal looks like over HTTP (`429`, `503`, the `RateLimit-*`
//! headers) is the API's business ([`crate::error`]).

pub mod breaker;
pub mod endpoint;
pub mod ingest;
pub mod lane;
mod limits;

pub use limits::{FRESH, TenantLimitsCache};
