//! Failover: while an endpoint's circuit is open, or it is quarantined for
//! failing, its deliveries go to its `failover_urls` instead, in order,
//! each tried until one answers 2xx (each request its own line in the
//! attempt log, with its URL); the primary's circuit and quarantine are
//! left to its own probes, and once it recovers its traffic goes back.

use std::time::Duration;

use super::{Inner, Outcome};
use crate::model::Task;
use crate::store::Endpoint;

impl Inner {
    /// One attempt of `task` at the endpoint's failover URLs; `None` when
    /// the shutdown grace ran out mid-request.
    pub(super) async fn fail_over(
        &self,
        task: &Task,
        endpoint: &Endpoint,
        body: &str,
        timeout: Duration,
    ) -> anyhow::Result<Option<Outcome>> {
        let mut last = None;
        for url in &endpoint.failover_urls {
            let sent = self.send(task, endpoint, url, body.to_string(), timeout);
            let Some(attempt) = sent.await? else {
                return Ok(None);
            };
            self.record(task, &attempt, url).await?;
            self.metrics.deliveries_failed_over.inc();
            let answered = attempt.succeeded();
            last = Some(attempt);
            if answered {
                break;
            }
        }
        let Some(attempt) = last else {
            return Ok(None);
        };
        let outcome = self.outcome(task, endpoint, &attempt).await?;
        self.tell(task, endpoint, &outcome).await;
        Ok(Some(outcome))
    }
}
