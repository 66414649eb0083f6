//! Replay: queues again, for one endpoint, every kept event of its types
//! accepted since a time, as a background job. The request that starts it
//! answers at once with the job ([`crate::store::ReplayJob`]); the job scans
//! each partition's ingest stream from that time, queues a fresh task per
//! matching event (its `webhook-id` is the same as before, so consumers can
//! deduplicate), and writes its progress at least every `PROGRESS_EVERY`
//! entries. A job whose instance stops is seen as `interrupted` once its
//! progress is `STALE` old; replaying again is safe (deliveries repeat with
//! the same `webhook-id`).

use std::time::{Duration, Instant};

use crate::model::clock;
use crate::model::{IngestEntry, Task};
use crate::queue::Queue;
use crate::store::{Endpoint, ReplayJob, ReplayState, Store};

/// Most events one replay queues.
pub const REPLAY_MAX: usize = 10_000;
/// Ingest entries read per round trip.
const SCAN: usize = 500;
/// The job's record is rewritten at least this often while it runs.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);
/// A running job whose progress is older than this has lost its instance.
pub const STALE: Duration = Duration::from_secs(30);

/// The job as a reader should see it: a `running` job whose progress
/// stopped moving is `interrupted`.
pub fn observed(mut job: ReplayJob, now: time::OffsetDateTime) -> ReplayJob {
    let stale = clock::parse_rfc3339(&job.updated_at)
        .is_some_and(|at| now - at > time::Duration::try_from(STALE).unwrap_or_default());
    if job.state == ReplayState::Running && stale {
        job.state = ReplayState::Interrupted;
    }
    job
}

/// Runs the job to its end, recording its progress and outcome.
pub async fn run(
    queue: Queue,
    store: Store,
    tenant: String,
    endpoint: Endpoint,
    mut job: ReplayJob,
) {
    let since_ms = clock::parse_rfc3339_ms(&job.since).unwrap_or(0);
    let result = scan(&queue, &store, &tenant, &endpoint, since_ms, &mut job).await;
    job.state = match &result {
        Ok(()) => ReplayState::Done,
        Err(e) => {
            tracing::warn!(tenant = %tenant, replay = %job.id, error = %e, "a replay failed");
            job.error = Some(format!("Redis failed while replaying: {e}"));
            ReplayState::Failed
        }
    };
    job.updated_at = clock::now_rfc3339();
    if let Err(e) = store.put_replay(&tenant, &job).await {
        tracing::warn!(tenant = %tenant, replay = %job.id, error = %e,
            "could not record the end of a replay; it will read as interrupted");
    }
}

async fn scan(
    queue: &Queue,
    store: &Store,
    tenant: &str,
    endpoint: &Endpoint,
    since_ms: u64,
    job: &mut ReplayJob,
) -> redis::RedisResult<()> {
    let mut reported = Instant::now();
    for p in queue.partitions().stored() {
        let mut from = since_ms.to_string();
        loop {
            let entries = queue.scan_ingest(p, &from, SCAN).await?;
            let Some(last) = entries.last() else { break };
            from = format!("({}", last.id);
            for entry in &entries {
                let Ok(parsed) = IngestEntry::parse(p, &entry.id, &entry.json) else {
                    continue;
                };
                if parsed.tenant != tenant || !endpoint.subscribes_to(&parsed.event_type) {
                    continue;
                }
                if job.replayed == REPLAY_MAX {
                    job.truncated = true;
                    return Ok(());
                }
                if queue.keep_event(p, entry, &parsed).await? {
                    let task = Task::new(&parsed.tenant, &parsed.event, &endpoint.id);
                    queue.enqueue(p, &task).await?;
                    job.replayed += 1;
                }
            }
            if reported.elapsed() >= PROGRESS_EVERY {
                job.updated_at = clock::now_rfc3339();
                store.put_replay(tenant, job).await?;
                reported = Instant::now();
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(state: ReplayState, updated_at: &str) -> ReplayJob {
        ReplayJob {
            id: "rpl_1".into(),
            endpoint_id: "ep_1".into(),
            since: "2026-01-01T00:00:00Z".into(),
            state,
            replayed: 3,
            truncated: false,
            error: None,
            created_at: "2026-01-01T00:00:00Z".into(),
            updated_at: updated_at.into(),
        }
    }

    #[test]
    fn a_running_job_whose_progress_stopped_reads_as_interrupted() {
        let now = clock::parse_rfc3339("2026-01-01T00:01:00Z").unwrap();
        let fresh = observed(job(ReplayState::Running, "2026-01-01T00:00:45Z"), now);
        assert_eq!(fresh.state, ReplayState::Running);
        let stale = observed(job(ReplayState::Running, "2026-01-01T00:00:10Z"), now);
        assert_eq!(stale.state, ReplayState::Interrupted);
        let done = observed(job(ReplayState::Done, "2026-01-01T00:00:10Z"), now);
        assert_eq!(done.state, ReplayState::Done);
    }
}
