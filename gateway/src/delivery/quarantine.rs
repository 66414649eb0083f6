//! Quarantine of an endpoint that keeps failing: after each failed attempt
//! its row of failures (as its circuit counts it) is weighed against
//! `quarantine.after` and `quarantine.failures`; past either, the endpoint
//! is quarantined (its events park from then on) and its first probe is
//! scheduled (`crate::readiness` runs it).

use super::Inner;
use crate::admission::endpoint::FailureRow;
use crate::config::QuarantineConfig;
use crate::model::Task;
use crate::model::clock::{now_ms, now_rfc3339};
use crate::store::{Endpoint, Quarantine};

/// Why a row of failures quarantines its endpoint, if it does.
pub(super) fn due(settings: &QuarantineConfig, row: FailureRow, now_ms: u64) -> Option<String> {
    if settings.failures > 0 && row.failures >= settings.failures {
        return Some(format!("{} failed attempts in a row", row.failures));
    }
    let failing_for = now_ms.saturating_sub(row.since_ms);
    (row.failures >= 2 && failing_for >= settings.after.as_millis() as u64).then(|| {
        format!(
            "every attempt failed for {} s ({} in a row)",
            failing_for / 1000,
            row.failures
        )
    })
}

impl Inner {
    /// Quarantines the task's endpoint when its row of failures is long enough.
    pub(super) async fn weigh_failures(
        &self,
        task: &Task,
        endpoint: &Endpoint,
        row: FailureRow,
    ) -> anyhow::Result<()> {
        let settings = &self.settings.quarantine;
        let Some(reason) = due(settings, row, now_ms()) else {
            return Ok(());
        };
        let quarantine = Quarantine {
            since: now_rfc3339(),
            reason: reason.clone(),
            by_tenant: false,
            probes: 0,
            last_probe_error: None,
        };
        let store = &self.store;
        if store
            .quarantine_endpoint(&task.tenant, &task.endpoint, quarantine)
            .await?
        {
            let probe_at = now_ms() + settings.probe_every.as_millis() as u64;
            store
                .schedule_handshake(&task.tenant, &task.endpoint, probe_at)
                .await?;
            self.metrics.endpoints_quarantined.inc();
            tracing::warn!(tenant = %task.tenant, endpoint = %task.endpoint, %reason,
                "endpoint quarantined; its events are parked until a probe passes");
            let kind = crate::notify::QUARANTINED;
            self.notify
                .endpoint(&task.tenant, kind, endpoint, Some(&reason))
                .await;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn settings(failures: u64) -> QuarantineConfig {
        QuarantineConfig {
            after: Duration::from_secs(3600),
            failures,
            probe_every: Duration::from_secs(60),
            probe_max: Duration::from_secs(3600),
        }
    }

    #[test]
    fn a_row_quarantines_by_its_length_or_by_how_long_it_lasts() {
        let hour = 3_600_000;
        let row = |failures, since_ms| FailureRow { failures, since_ms };
        assert_eq!(due(&settings(0), row(500, 0), hour - 1), None);
        assert!(
            due(&settings(0), row(2, 0), hour)
                .unwrap()
                .contains("3600 s")
        );
        assert_eq!(
            due(&settings(0), row(1, 0), 10 * hour),
            None,
            "one failure is no row"
        );
        assert_eq!(due(&settings(3), row(2, 0), 1), None);
        assert_eq!(
            due(&settings(3), row(3, 0), 1).unwrap(),
            "3 failed attempts in a row"
        );
    }
}
