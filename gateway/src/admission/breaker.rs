//! A circuit breaker per (tenant, plugin build): after a few calls in a row
//! that ran out of CPU, deadline or memory, the plugin is not run for a
//! cool-down and its events follow the endpoint's `on_plugin_error` at once
//! with that reason; then one call probes it again. A plugin that burns its
//! whole budget on every event would otherwise let one tenant's backlog hold
//! up every event behind it in the shared streams.
//!
//! The state is a protective cache of this process, not a record: losing it
//! (a restart) only means the plugin is tried again.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Calls in a row that must exhaust their budget to open the breaker.
pub const THRESHOLD: u32 = 3;
/// How long an open breaker refuses calls before it lets one probe through.
pub const COOL_DOWN: Duration = Duration::from_secs(10);

#[derive(Default)]
struct State {
    failures: u32,
    open_until: Option<Instant>,
}

#[derive(Default)]
pub struct Breakers {
    // A blocking (parking_lot) mutex: one lookup or update per plugin call, never held across an await.
    states: Mutex<HashMap<(String, String), State>>,
}

impl Breakers {
    /// `None` when the plugin may run; otherwise why not.
    pub fn refuse(&self, tenant: &str, sha256: &str, now: Instant) -> Option<String> {
        let mut states = self.states.lock();
        let state = states.get_mut(&(tenant.to_string(), sha256.to_string()))?;
        match state.open_until {
            Some(until) if now < until => Some(format!(
                "not run: its last {} calls ran out of their budget; it is tried again within {} s",
                state.failures,
                COOL_DOWN.as_secs()
            )),
            Some(_) => {
                // Half-open: this call is the probe; others wait for its result.
                state.open_until = Some(now + COOL_DOWN);
                None
            }
            None => None,
        }
    }

    /// Records a call's outcome: `exhausted` when it ran out of CPU, time or memory.
    pub fn record(&self, tenant: &str, sha256: &str, exhausted: bool, now: Instant) {
        let mut states = self.states.lock();
        let key = (tenant.to_string(), sha256.to_string());
        if !exhausted {
            states.remove(&key);
            return;
        }
        let state = states.entry(key).or_default();
        state.failures += 1;
        if state.failures >= THRESHOLD {
            state.open_until = Some(now + COOL_DOWN);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_the_threshold_probes_after_the_cool_down_and_closes_on_success() {
        let b = Breakers::default();
        let t0 = Instant::now();
        for _ in 0..THRESHOLD - 1 {
            b.record("t", "p", true, t0);
            assert!(b.refuse("t", "p", t0).is_none());
        }
        b.record("t", "p", true, t0);
        assert!(
            b.refuse("t", "p", t0)
                .unwrap()
                .contains("ran out of their budget")
        );
        assert!(b.refuse("other", "p", t0).is_none(), "per tenant");
        let later = t0 + COOL_DOWN;
        assert!(b.refuse("t", "p", later).is_none(), "one probe");
        assert!(b.refuse("t", "p", later).is_some(), "only one");
        b.record("t", "p", false, later);
        assert!(
            b.refuse("t", "p", later).is_none(),
            "closed after a good call"
        );
    }

    #[test]
    fn a_failed_probe_reopens() {
        let b = Breakers::default();
        let t0 = Instant::now();
        for _ in 0..THRESHOLD {
            b.record("t", "p", true, t0);
        }
        let later = t0 + COOL_DOWN;
        assert!(b.refuse("t", "p", later).is_none());
        b.record("t", "p", true, later);
        assert!(b.refuse("t", "p", later + Duration::from_secs(1)).is_some());
    }
}
