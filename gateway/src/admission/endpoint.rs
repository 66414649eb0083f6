//! Per-endpoint flow control of the delivery stage: whether a task may be
//! sent now, and what its outcome does to the endpoint.
//!
//! Shared by every instance through Redis (`scripts/gate.lua`,
//! `scripts/settle.lua`, keys in [`crate::keys`]):
//! - the endpoint's **rate** (its `rate_per_second`, else its tenant's
//!   `endpoint_per_second`, else unlimited; never above the
//!   `max_rate_per_second` its consumer declared) as GCRA on Redis's clock. A task
//!   over the rate reserves the next free slot and is rescheduled to it, so
//!   waiting tasks come back one slot apart, not all at once;
//! - its **cap on requests in flight** (`max_in_flight`, never above the
//!   consumer's declared one), as leases that
//!   expire on their own if an instance dies mid-request;
//! - its **circuit**: `circuit.failures` failed attempts in a row open it for
//!   `circuit.open_for`; then one probe (a lease taken with `SET NX`) goes
//!   through: success closes it, failure re-opens it.
//!
//! An endpoint with no rate and no cap whose circuit the gate found closed
//! and without failures is sent to without asking Redis (a success there
//! changes nothing in Redis either) for as long as its tenant's flow epoch
//! stays what the gate saw, up to [`CLEAR_KEEP`]. Every failed attempt
//! bumps the epoch, and each instance reads it at most [`EPOCH_FRESH`]
//! apart (one `GET` per tenant, however many endpoints it has), so a
//! circuit another instance opens holds this one back within that time;
//! a failure here always asks again.
//!
//! Per process, an endpoint holds at most `delivery.endpoint_concurrency` of
//! the delivery permits, so a slow endpoint cannot take every permit and hold
//! up the others. A task held back by any of these is rescheduled without
//! counting as an attempt.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use std::time::Duration;

use crate::redis_conn::Conn;
use rand::Rng;
use redis::Script;

use crate::cache::Cache;
use crate::keys;
use crate::model::Task;
use crate::model::clock::now_ms;

use super::TenantLimitsCache;
use crate::store::Endpoint;

/// A lease outlives its request's timeout by this much.
const LEASE_MARGIN: Duration = Duration::from_secs(5);
/// How long tasks wait while another task probes a half-open circuit.
const PROBE_WAIT_MS: u64 = 1_000;
/// An endpoint at its in-flight cap is tried again after this, plus up to as
/// much again at random so waiting tasks do not come back together.
const BUSY_WAIT_MS: u64 = 250;
/// How long an endpoint found clear (no rate, no cap, a closed circuit
/// without failures) is admitted without the gate script at most, while
/// its tenant's flow epoch stays the same.
const CLEAR_KEEP: Duration = Duration::from_secs(60);
/// How stale this instance's copy of a tenant's flow epoch may be.
pub const EPOCH_FRESH: Duration = Duration::from_secs(1);

/// Thresholds of the per-endpoint circuit breaker.
#[derive(Debug, Clone, Copy)]
pub struct CircuitSettings {
    /// Failed attempts in a row that open the circuit.
    pub failures: u32,
    /// How long an open circuit holds tasks back before a probe.
    pub open_for: Duration,
}

/// An endpoint's current row of failed attempts, as its circuit counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureRow {
    pub failures: u64,
    /// When the row's first failure was (ms).
    pub since_ms: u64,
}

/// What the gate decided for one task.
pub enum Admission {
    /// Send it; the lease is given back by [`Flow::settle`].
    Go(Lease),
    /// Hold it back until `until_ms`, not as an attempt.
    Wait {
        until_ms: u64,
        why: &'static str,
        /// The rate slot reserved for it, when the rate held it back.
        reserved: Option<u64>,
        /// Held back by the endpoint's open circuit (or another task's probe).
        circuit_open: bool,
    },
}

/// The right to send one request: an in-flight lease in Redis (when the
/// endpoint has a cap), maybe the half-open probe, and a local slot.
pub struct Lease {
    token: String,
    probe: bool,
    /// No lease in Redis to give back and a closed circuit without failures:
    /// a success then changes nothing there, and settling it is skipped.
    clean: bool,
    /// The endpoint's `tenant\0endpoint`, for this process's maps.
    local_key: String,
    _slot: LocalSlot,
}

/// One of an endpoint's local slots, given back on drop.
struct LocalSlot {
    key: String,
    counts: Arc<Mutex<HashMap<String, usize>>>,
}

impl Drop for LocalSlot {
    fn drop(&mut self) {
        let mut counts = self.counts.lock();
        if let Some(n) = counts.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                counts.remove(&self.key);
            }
        }
    }
}

pub struct Flow {
    conn: Conn,
    limits: TenantLimitsCache,
    circuit: CircuitSettings,
    endpoint_concurrency: usize,
    gate: Script,
    settle: Script,
    // A blocking (parking_lot) mutex: one map operation per delivery, never held across an await.
    local: Arc<Mutex<HashMap<String, usize>>>,
    /// Endpoints found clear by the gate lately (by `tenant\0endpoint`),
    /// with their tenant's flow epoch then.
    clear: Cache<String, u64>,
    /// Tenants' flow epochs, as last read.
    epochs: Cache<String, u64>,
}

impl Flow {
    pub fn new(
        conn: Conn,
        limits: TenantLimitsCache,
        circuit: CircuitSettings,
        endpoint_concurrency: usize,
    ) -> Flow {
        Flow {
            conn,
            limits,
            circuit,
            endpoint_concurrency,
            gate: Script::new(include_str!("scripts/gate.lua")),
            settle: Script::new(include_str!("scripts/settle.lua")),
            local: Arc::default(),
            clear: Cache::new(CLEAR_KEEP),
            epochs: Cache::new(EPOCH_FRESH),
        }
    }

    /// Asks whether `task` may go to `endpoint` now (`timeout` is its request timeout).
    pub async fn admit(
        &self,
        task: &Task,
        endpoint: &Endpoint,
        timeout: Duration,
    ) -> redis::RedisResult<Admission> {
        let local_key = format!("{}\0{}", task.tenant, endpoint.id);
        let Some(slot) = self.local_slot(&local_key) else {
            return Ok(busy(
                "endpoint busy: its share of this instance's delivery permits is in use",
            ));
        };
        let configured = match endpoint.rate_per_second {
            Some(r) => Some(r),
            None => self.limits.of(&task.tenant).await?.endpoint_per_second,
        };
        let rate = endpoint.rate_limit(configured);
        let cap = endpoint.in_flight_cap();
        let unpaced = rate.is_none() && cap.is_none();
        if unpaced && self.still_clear(&task.tenant, &local_key).await? {
            return Ok(Admission::Go(Lease {
                token: String::new(),
                probe: false,
                clean: true,
                local_key,
                _slot: slot,
            }));
        }
        let token = format!("{}:{}", task.msg_id, ulid::Ulid::new());
        let lease = (timeout + LEASE_MARGIN).as_millis() as u64;
        let key = |what| keys::endpoint_flow(&task.tenant, &endpoint.id, what);
        let (verdict, at, probe, failures, epoch): (u8, u64, u8, u64, u64) = self
            .gate
            .key(key("circuit"))
            .key(key("probe"))
            .key(key("inflight"))
            .key(key("rate"))
            .key(keys::flow_epoch(&task.tenant))
            .arg(rate.unwrap_or(0))
            .arg(cap.unwrap_or(0))
            .arg(lease)
            .arg(&token)
            .arg(task.reserved.unwrap_or(0))
            .arg(PROBE_WAIT_MS)
            .invoke_async(&mut self.conn.clone())
            .await?;
        let gate = Gate::decode(verdict, at, probe).map_err(|unknown| {
            redis::RedisError::from((redis::ErrorKind::Client, "gate.lua", unknown))
        })?;
        self.epochs.put(task.tenant.to_string(), epoch);
        let clean = gate == Gate::Go { probe: false } && failures == 0 && cap.is_none();
        if clean && unpaced {
            self.clear.put(local_key.clone(), epoch);
        }
        Ok(match gate {
            Gate::Go { probe } => Admission::Go(Lease {
                token,
                probe,
                clean,
                local_key,
                _slot: slot,
            }),
            Gate::Open { until_ms } => Admission::Wait {
                until_ms,
                why: "circuit open: the endpoint kept failing; waiting for its probe",
                reserved: None,
                circuit_open: true,
            },
            Gate::Busy => busy("endpoint busy: max_in_flight requests are under way"),
            Gate::Throttled { slot_ms } => Admission::Wait {
                until_ms: slot_ms,
                why: "throttled: over the endpoint's delivery rate",
                reserved: Some(slot_ms),
                circuit_open: false,
            },
        })
    }

    /// Gives the lease back and moves the endpoint's circuit by the
    /// outcome; after a failure, the row of failures it is part of.
    pub async fn settle(
        &self,
        task: &Task,
        lease: Lease,
        succeeded: bool,
    ) -> redis::RedisResult<Option<FailureRow>> {
        if succeeded && lease.clean {
            return Ok(None);
        }
        if !succeeded {
            self.clear.remove(&lease.local_key);
        }
        let key = |what| keys::endpoint_flow(&task.tenant, &task.endpoint, what);
        let (opened, failures, since_ms): (u64, u64, u64) = self
            .settle
            .key(key("circuit"))
            .key(key("probe"))
            .key(key("inflight"))
            .key(keys::flow_epoch(&task.tenant))
            .arg(&lease.token)
            .arg(u8::from(succeeded))
            .arg(self.circuit.failures)
            .arg(self.circuit.open_for.as_millis() as u64)
            .invoke_async(&mut self.conn.clone())
            .await?;
        if opened > 0 {
            tracing::warn!(tenant = %task.tenant, endpoint = %task.endpoint, probe = lease.probe,
                open_until = %crate::model::clock::ms_to_rfc3339(opened), "circuit opened");
        } else if succeeded && lease.probe {
            tracing::info!(tenant = %task.tenant, endpoint = %task.endpoint, "circuit closed by a successful probe");
        }
        Ok((!succeeded).then_some(FailureRow { failures, since_ms }))
    }

    /// Whether the gate found the endpoint of `local_key` clear lately and
    /// no endpoint of `tenant` has failed since.
    async fn still_clear(&self, tenant: &str, local_key: &str) -> redis::RedisResult<bool> {
        let Some(seen) = self.clear.get(local_key) else {
            return Ok(false);
        };
        let epoch = match self.epochs.get(tenant) {
            Some(epoch) => epoch,
            None => {
                let epoch: Option<u64> = redis::cmd("GET")
                    .arg(keys::flow_epoch(tenant))
                    .query_async(&mut self.conn.clone())
                    .await?;
                let epoch = epoch.unwrap_or(0);
                self.epochs.put(tenant.to_string(), epoch);
                epoch
            }
        };
        Ok(epoch == seen)
    }

    fn local_slot(&self, key: &str) -> Option<LocalSlot> {
        let mut counts = self.local.lock();
        let n = counts.entry(key.to_string()).or_default();
        if *n >= self.endpoint_concurrency {
            return None;
        }
        *n += 1;
        Some(LocalSlot {
            key: key.to_string(),
            counts: self.local.clone(),
        })
    }
}

/// `gate.lua`'s verdict, decoded.
#[derive(Debug, PartialEq, Eq)]
enum Gate {
    Go { probe: bool },
    Open { until_ms: u64 },
    Busy,
    Throttled { slot_ms: u64 },
}

impl Gate {
    /// From the script's `{verdict, at, probe}`.
    fn decode(verdict: u8, at: u64, probe: u8) -> Result<Gate, String> {
        Ok(match verdict {
            0 => Gate::Go { probe: probe == 1 },
            1 => Gate::Open { until_ms: at },
            2 => Gate::Busy,
            3 => Gate::Throttled { slot_ms: at },
            other => return Err(format!("unknown verdict {other}")),
        })
    }
}

fn busy(why: &'static str) -> Admission {
    let jitter = rand::rng().random_range(0..=BUSY_WAIT_MS);
    Admission::Wait {
        until_ms: now_ms() + BUSY_WAIT_MS + jitter,
        why,
        reserved: None,
        circuit_open: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_verdict_of_the_gate_is_decoded_and_an_unknown_one_is_an_error() {
        assert_eq!(Gate::decode(0, 5, 1), Ok(Gate::Go { probe: true }));
        assert_eq!(Gate::decode(0, 5, 0), Ok(Gate::Go { probe: false }));
        assert_eq!(Gate::decode(1, 5, 0), Ok(Gate::Open { until_ms: 5 }));
        assert_eq!(Gate::decode(2, 5, 0), Ok(Gate::Busy));
        assert_eq!(Gate::decode(3, 5, 0), Ok(Gate::Throttled { slot_ms: 5 }));
        for unknown in [4, 9, 255] {
            assert!(Gate::decode(unknown, 5, 0).is_err(), "verdict {unknown}");
        }
    }
}
