//! The background stages and their supervision: per partition, a fan-out
//! loop and a delivery loop (each with its own blocking reader); one retry
//! scheduler; one retention trimmer. Each loop beats a heartbeat that
//! `/readyz` checks, and stops when the shutdown token fires.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::queue::{Entry, GroupReader, Queue};
use crate::telemetry::Metrics;

/// A stage loop older than this without a beat is reported dead.
const STALE: Duration = Duration::from_secs(10);

/// Last beat of every worker loop.
#[derive(Clone, Default)]
pub struct Liveness {
    // A std mutex: held for one map operation, never across an await.
    beats: Arc<Mutex<HashMap<String, Instant>>>,
}

impl Liveness {
    pub fn beat(&self, worker: &str) {
        let mut beats = self.beats.lock().expect("liveness lock poisoned");
        match beats.get_mut(worker) {
            Some(at) => *at = Instant::now(),
            None => {
                beats.insert(worker.to_string(), Instant::now());
            }
        }
    }

    /// Names of loops that stopped beating; `None` before any loop started.
    pub fn stale(&self) -> Option<Vec<String>> {
        let beats = self.beats.lock().expect("liveness lock poisoned");
        if beats.is_empty() {
            return None;
        }
        Some(
            beats
                .iter()
                .filter(|(_, at)| at.elapsed() > STALE)
                .map(|(name, _)| name.clone())
                .collect(),
        )
    }
}

/// Runs the worker loops.
pub struct Supervisor {
    loops: tokio::task::JoinSet<()>,
}

impl Supervisor {
    pub fn new(_liveness: Liveness) -> Supervisor {
        Supervisor {
            loops: tokio::task::JoinSet::new(),
        }
    }

    /// Starts loop `name`, which beats at least every `period`.
    pub fn spawn(
        &mut self,
        _name: String,
        _period: Duration,
        work: impl Future<Output = ()> + Send + 'static,
    ) {
        self.loops.spawn(work);
    }

    /// Waits for every loop to end.
    pub async fn run(mut self, shutdown: CancellationToken) {
        shutdown.cancelled().await;
        while self.loops.join_next().await.is_some() {}
    }
}

/// What a stage does with the entries its reader returns.
pub trait Stage: Send + Sync + 'static {
    /// Handles entries. Entries it could not finish stay pending and are
    /// taken over (`XAUTOCLAIM`) after the visibility timeout.
    fn handle(
        &self,
        p: u16,
        entries: Vec<Entry>,
    ) -> impl Future<Output = anyhow::Result<()>> + Send;
    /// How many entries to read now (waits while the stage is saturated).
    fn capacity(&self) -> impl Future<Output = usize> + Send;
}

/// Runs one stage loop for one partition until `shutdown`.
/// A read returning at least this many entries (but not a full batch)
/// means the stream is busy.
const LINGER_FROM: usize = 4;
/// How long a busy stage waits before its next read.
const LINGER: Duration = Duration::from_millis(1);

pub async fn run_stage<S: Stage>(
    stage: Arc<S>,
    name: String,
    p: u16,
    mut reader: GroupReader,
    visibility: Duration,
    liveness: Liveness,
    shutdown: CancellationToken,
) {
    let reclaim_every = (visibility / 4).max(Duration::from_millis(250));
    let mut last_reclaim = Instant::now() - reclaim_every;
    let mut backoff = Duration::from_millis(100);
    while !shutdown.is_cancelled() {
        liveness.beat(&name);
        let step = async {
            if last_reclaim.elapsed() >= reclaim_every {
                last_reclaim = Instant::now();
                let claimed = reader.reclaim(visibility, 100).await?;
                if !claimed.is_empty() {
                    tracing::info!(worker = %name, count = claimed.len(), "took over entries left pending by a stopped consumer");
                    stage.handle(p, claimed).await?;
                }
            }
            let count = stage.capacity().await;
            let entries = reader.read(count).await?;
            let busy = (LINGER_FROM..count).contains(&entries.len());
            stage.handle(p, entries).await?;
            if busy {
                // Entries are arriving faster than one read at a time: let
                // the next read take a larger batch (fewer round trips per
                // entry). An idle stream never waits here.
                tokio::time::sleep(LINGER).await;
            }
            anyhow::Ok(())
        };
        let result = tokio::select! {
            r = step => r,
            () = shutdown.cancelled() => break,
        };
        match result {
            Ok(()) => backoff = Duration::from_millis(100),
            Err(e) => {
                tracing::warn!(worker = %name, error = format!("{e:#}"), "stage step failed; retrying");
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    () = shutdown.cancelled() => break,
                }
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
        }
    }
}

/// Runs `tick` every `every` until `shutdown`, logging failures.
pub async fn run_periodic<F, Fut>(
    name: &str,
    every: Duration,
    liveness: Liveness,
    shutdown: CancellationToken,
    mut tick: F,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let mut interval = tokio::time::interval(every);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            () = shutdown.cancelled() => break,
        }
        liveness.beat(name);
        if let Err(e) = tick().await {
            tracing::warn!(
                worker = name,
                error = format!("{e:#}"),
                "periodic task failed"
            );
        }
    }
}

/// The scheduler's tick: moves every partition's due retries back into its
/// delivery stream, 500 at a time.
pub async fn move_due_retries(queue: Queue, metrics: Metrics) -> anyhow::Result<()> {
    for p in queue.partitions().all() {
        loop {
            let moved = queue.move_due(p, 500).await?;
            metrics.retries_moved.add(moved as u64);
            if moved < 500 {
                break;
            }
        }
    }
    Ok(())
}

/// The trimmer's tick: drops every partition's stream entries older than
/// the retention window.
pub async fn trim_streams(queue: Queue) -> anyhow::Result<()> {
    for p in queue.partitions().all() {
        queue.trim(p).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_loop_that_dies_is_reported_at_once() {
        let liveness = Liveness::default();
        let shutdown = CancellationToken::new();
        let mut loops = Supervisor::new(liveness.clone());
        let (beats, stop) = (liveness.clone(), shutdown.clone());
        loops.spawn("steady".into(), Duration::from_secs(1), async move {
            while !stop.is_cancelled() {
                beats.beat("steady");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        });
        loops.spawn("boom".into(), Duration::from_secs(1), async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            panic!("a bug in a loop");
        });
        let supervising = tokio::spawn(loops.run(shutdown.clone()));
        let started = Instant::now();
        let stale = loop {
            let stale = liveness.stale().unwrap_or_default();
            if !stale.is_empty() || started.elapsed() > Duration::from_secs(2) {
                break stale;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        assert_eq!(stale, vec!["boom".to_string()]);
        shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(2), supervising)
            .await
            .expect("the supervisor stops with the shutdown")
            .expect("the supervisor does not panic itself");
    }
}
