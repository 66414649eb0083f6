//! The background stages and their supervision: per partition, a fan-out
//! loop and a delivery loop (each with its own blocking reader); one retry
//! scheduler; one retention trimmer. Each loop beats a heartbeat that
//! `/readyz` checks, and stops when the shutdown token fires.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use parking_lot::Mutex;

use std::time::{Duration, Instant};
use tokio::task::JoinSet;

use tokio_util::sync::CancellationToken;

use crate::queue::{Entry, GroupReader, Queue};
use crate::telemetry::Metrics;

/// A loop is late when it has not beaten for its own period plus this.
const GRACE: Duration = Duration::from_secs(10);

/// What is known of one worker loop.
#[derive(Clone, Copy)]
struct Loop {
    /// The longest a healthy loop goes between two beats.
    period: Duration,
    last: Option<Instant>,
    dead: bool,
}

/// The worker loops' heartbeats, each judged against its own period (a
/// stage beats at least once a read block, the trimmer once a minute), and
/// the loops that ended while they should still run.
#[derive(Clone, Default)]
pub struct Liveness {
    // A blocking (parking_lot) mutex: held for one map operation, never across an await.
    loops: Arc<Mutex<HashMap<String, Loop>>>,
}

/// The loops' state as `/readyz` shows it.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Health {
    /// Loops that have not beaten yet since they started.
    pub starting: Vec<String>,
    /// Loops whose beat is late.
    pub stalled: Vec<String>,
    /// Loops that ended (returned or panicked) before the shutdown.
    pub dead: Vec<String>,
}

impl Liveness {
    fn lock(&self) -> parking_lot::MutexGuard<'_, HashMap<String, Loop>> {
        self.loops.lock()
    }

    /// Registers loop `name`, which beats at least every `period`.
    pub fn register(&self, name: &str, period: Duration) {
        self.lock().insert(
            name.to_string(),
            Loop {
                period,
                last: None,
                dead: false,
            },
        );
    }

    pub fn beat(&self, worker: &str) {
        let mut loops = self.lock();
        match loops.get_mut(worker) {
            Some(l) => l.last = Some(Instant::now()),
            None => {
                loops.insert(
                    worker.to_string(),
                    Loop {
                        period: Duration::ZERO,
                        last: Some(Instant::now()),
                        dead: false,
                    },
                );
            }
        }
    }

    /// Stops judging loop `name`: it was stopped on purpose.
    pub fn forget(&self, name: &str) {
        self.lock().remove(name);
    }

    /// Marks loop `name` as ended for good.
    pub fn died(&self, name: &str) {
        if let Some(l) = self.lock().get_mut(name) {
            l.dead = true;
        }
    }

    /// Every loop's state; `None` before any loop was registered.
    pub fn health(&self) -> Option<Health> {
        let loops = self.lock();
        if loops.is_empty() {
            return None;
        }
        let mut health = Health::default();
        for (name, l) in loops.iter() {
            let list = match l.last {
                _ if l.dead => &mut health.dead,
                None => &mut health.starting,
                Some(at) if at.elapsed() > l.period + GRACE => &mut health.stalled,
                Some(_) => continue,
            };
            list.push(name.clone());
        }
        for list in [&mut health.starting, &mut health.stalled, &mut health.dead] {
            list.sort();
        }
        Some(health)
    }
}

/// Runs the worker loops, and tells `/readyz` (through [`Liveness`]) and the
/// log when one ends before the shutdown, by a panic or otherwise.
pub struct Supervisor {
    liveness: Liveness,
    loops: JoinSet<()>,
    names: HashMap<tokio::task::Id, String>,
}

impl Supervisor {
    pub fn new(liveness: Liveness) -> Supervisor {
        Supervisor {
            liveness,
            loops: JoinSet::new(),
            names: HashMap::new(),
        }
    }

    /// Starts loop `name`, which beats at least every `period`.
    pub fn spawn(
        &mut self,
        name: String,
        period: Duration,
        work: impl Future<Output = ()> + Send + 'static,
    ) {
        self.liveness.register(&name, period);
        let id = self.loops.spawn(work).id();
        self.names.insert(id, name);
    }

    /// Watches the loops until `shutdown`, then waits for each to stop.
    pub async fn run(mut self, shutdown: CancellationToken) {
        loop {
            let ended = tokio::select! {
                ended = self.loops.join_next_with_id() => ended,
                () = shutdown.cancelled() => break,
            };
            let Some(ended) = ended else { return };
            let name = self.ended(ended, false);
            self.liveness.died(&name);
        }
        while let Some(ended) = self.loops.join_next_with_id().await {
            self.ended(ended, true);
        }
    }

    /// Logs how a loop ended; returns its name.
    fn ended(
        &mut self,
        ended: Result<(tokio::task::Id, ()), tokio::task::JoinError>,
        stopping: bool,
    ) -> String {
        let (id, outcome) = match ended {
            Ok((id, ())) => (id, None),
            Err(e) => (e.id(), Some(e)),
        };
        let name = self.names.remove(&id).unwrap_or_else(|| id.to_string());
        match (outcome, stopping) {
            (None, true) => {}
            (None, false) => {
                tracing::error!(worker = %name, "a worker loop ended before the shutdown")
            }
            (Some(e), _) => tracing::error!(worker = %name, error = %e, "a worker loop panicked"),
        }
        name
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
    for p in queue.partitions().stored() {
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
    for p in queue.partitions().stored() {
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
        let health = loop {
            let health = liveness.health().unwrap_or_default();
            if !health.dead.is_empty() || started.elapsed() > Duration::from_secs(2) {
                break health;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        assert_eq!(health.dead, vec!["boom".to_string()]);
        assert!(health.stalled.is_empty(), "{health:?}");
        shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(2), supervising)
            .await
            .expect("the supervisor stops with the shutdown")
            .expect("the supervisor does not panic itself");
    }
}

#[test]
fn each_loop_is_late_only_past_its_own_period() {
    let liveness = Liveness::default();
    assert_eq!(liveness.health(), None);
    liveness.register("stage", Duration::from_secs(1));
    liveness.register("trimmer", Duration::from_secs(60));
    assert_eq!(liveness.health().unwrap().starting, ["stage", "trimmer"]);
    let long_ago = Instant::now() - Duration::from_secs(30);
    for name in ["stage", "trimmer"] {
        liveness.lock().get_mut(name).unwrap().last = Some(long_ago);
    }
    let health = liveness.health().unwrap();
    assert_eq!(health.stalled, ["stage"]);
    assert!(health.starting.is_empty() && health.dead.is_empty());
}
