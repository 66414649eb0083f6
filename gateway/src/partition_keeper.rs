//! Serving partitions beyond this instance's own, so that `partitions` can
//! change on a running deployment without stranding events.
//!
//! Every [`TICK`] the keeper records the count this instance writes with
//! (`Queue::announce`, before the first request too) and reads every
//! instance's. An instance always serves its own partitions. It also serves
//! each higher partition that some instance wrote with within
//! [`GONE_AFTER`] (instances with more partitions are running), and each
//! that still holds work (`Queue::drained`): what instances with more
//! partitions left is delivered before those partitions are let go. A
//! partition written to again (a replay or a redelivered dead letter of an
//! event stored there) holds work again and is served again within a tick.
//! The registry's view also tells lookups which partitions may hold events
//! and ingest where an idempotency record may be ([`Partitions::learn`]).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::keys::Partitions;
use crate::model::clock::now_ms;
use crate::queue::{Queue, Writer};
use crate::workers::Liveness;

/// How often the keeper announces and looks.
pub const TICK: Duration = Duration::from_secs(1);
/// A count no instance has announced for this long is no longer written
/// with: its partitions above the live counts are served only while they
/// hold work.
pub const GONE_AFTER: Duration = Duration::from_secs(10);

/// A worker loop, by name.
pub type Loop = (String, Pin<Box<dyn Future<Output = ()> + Send>>);
/// Makes partition `p`'s stage loops, which stop when the token fires.
pub type StageLoops = Arc<dyn Fn(u16, CancellationToken) -> Vec<Loop> + Send + Sync>;

/// What every instance's counts say about the partitions, at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct View {
    /// One past the highest partition any instance has written to.
    pub stored: u16,
    /// One past the highest partition an instance writes to now.
    pub live: u16,
    /// The counts written with within the idempotency window.
    pub recent: Vec<u16>,
}

impl View {
    /// From the registry's `writers` at `now_ms`, for an instance writing
    /// with `own` partitions whose idempotency records last `idempotency_ms`.
    pub fn of(writers: &[Writer], own: u16, now_ms: u64, idempotency_ms: u64) -> View {
        let within = |w: &&Writer, ms: u64| now_ms.saturating_sub(w.seen_ms) < ms;
        let gone_ms = GONE_AFTER.as_millis() as u64;
        let max = |ws: Vec<&Writer>| ws.iter().map(|w| w.partitions).max().unwrap_or(0).max(own);
        View {
            stored: max(writers.iter().collect()),
            live: max(writers.iter().filter(|w| within(w, gone_ms)).collect()),
            recent: writers
                .iter()
                .filter(|w| within(w, idempotency_ms))
                .map(|w| w.partitions)
                .collect(),
        }
    }
}

/// Announces this instance's count, reads every instance's and records
/// what they say ([`Partitions::learn`]). Called once before the gateway
/// takes its first request, then every tick.
pub async fn look(queue: &Queue) -> redis::RedisResult<View> {
    queue.announce().await?;
    let writers = queue.writers().await?;
    let own = queue.partitions().count();
    let view = View::of(&writers, own, now_ms(), queue.idempotency_ms());
    Partitions::learn(view.stored, view.recent.clone());
    Ok(view)
}

/// Loops serving one partition beyond this instance's own.
struct Served {
    stop: CancellationToken,
    tasks: Vec<tokio::task::Id>,
}

pub struct Keeper {
    queue: Queue,
    loops: StageLoops,
    liveness: Liveness,
    served: HashMap<u16, Served>,
    tasks: JoinSet<()>,
    names: HashMap<tokio::task::Id, String>,
}

impl Keeper {
    pub fn new(queue: Queue, loops: StageLoops, liveness: Liveness) -> Keeper {
        Keeper {
            queue,
            loops,
            liveness,
            served: HashMap::new(),
            tasks: JoinSet::new(),
            names: HashMap::new(),
        }
    }

    /// Looks every [`TICK`] until `shutdown`, then waits for the loops it
    /// started (they stop with it).
    pub async fn run(mut self, shutdown: CancellationToken) {
        let mut interval = tokio::time::interval(TICK);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = interval.tick() => {}
                () = shutdown.cancelled() => break,
            }
            self.liveness.beat("partitions");
            // Loops stopped a tick ago have ended by now: forgotten before
            // their partition may be served again under the same names.
            while let Some(ended) = self.tasks.try_join_next_with_id() {
                self.ended(ended);
            }
            if let Err(e) = self.tick(&shutdown).await {
                tracing::warn!(error = format!("{e:#}"), "partition registry check failed");
            }
        }
        while let Some(ended) = self.tasks.join_next_with_id().await {
            self.names
                .remove(&ended.map_or_else(|e| e.id(), |(id, ())| id));
        }
    }

    async fn tick(&mut self, shutdown: &CancellationToken) -> redis::RedisResult<()> {
        let view = look(&self.queue).await?;
        for p in self.queue.partitions().count()..view.stored {
            let serve = p < view.live || !self.queue.drained(p).await?;
            match (serve, self.served.contains_key(&p)) {
                (true, false) => self.start(p, shutdown.child_token()),
                (false, true) => self.stop(p),
                _ => {}
            }
        }
        Ok(())
    }

    fn start(&mut self, p: u16, stop: CancellationToken) {
        tracing::info!(
            partition = p,
            "serving a partition beyond this instance's own: another instance writes to it, or it holds work"
        );
        let mut tasks = Vec::new();
        for (name, work) in (self.loops)(p, stop.clone()) {
            self.liveness.register(&name, crate::queue::READ_BLOCK);
            let id = self.tasks.spawn(work).id();
            self.names.insert(id, name);
            tasks.push(id);
        }
        self.served.insert(p, Served { stop, tasks });
    }

    fn stop(&mut self, p: u16) {
        if let Some(served) = self.served.remove(&p) {
            tracing::info!(
                partition = p,
                "partition drained and no longer written to: its loops stop here"
            );
            served.stop.cancel();
        }
    }

    /// A loop that ended: forgotten by `/readyz` once stopped, otherwise
    /// reported dead.
    fn ended(&mut self, ended: Result<(tokio::task::Id, ()), tokio::task::JoinError>) {
        let (id, panic) = match ended {
            Ok((id, ())) => (id, None),
            Err(e) => (e.id(), Some(e)),
        };
        let Some(name) = self.names.remove(&id) else {
            return;
        };
        let stopped = !self.served.values().any(|s| s.tasks.contains(&id));
        match (stopped, panic) {
            (true, None) => self.liveness.forget(&name),
            (_, Some(e)) => {
                tracing::error!(worker = %name, error = %e, "a worker loop panicked");
                self.liveness.died(&name);
            }
            (false, None) => {
                tracing::error!(worker = %name, "a worker loop ended before the shutdown");
                self.liveness.died(&name);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_000_000_000;
    const DAY_MS: u64 = 86_400_000;

    fn writer(partitions: u16, ago_ms: u64) -> Writer {
        Writer {
            partitions,
            seen_ms: NOW - ago_ms,
        }
    }

    #[test]
    fn a_lone_instance_sees_only_its_own_partitions() {
        let view = View::of(&[writer(4, 500)], 4, NOW, DAY_MS);
        assert_eq!(
            view,
            View {
                stored: 4,
                live: 4,
                recent: vec![4]
            }
        );
        assert_eq!(View::of(&[], 4, NOW, DAY_MS).stored, 4);
    }

    #[test]
    fn more_partitions_written_lately_are_live_then_only_stored() {
        // An instance with 8 announced 2 s ago: 4..8 are written to now.
        let view = View::of(&[writer(4, 0), writer(8, 2_000)], 4, NOW, DAY_MS);
        assert_eq!((view.stored, view.live), (8, 8));
        // It has been gone past GONE_AFTER: 4..8 hold events, none written.
        let gone = GONE_AFTER.as_millis() as u64 + 1;
        let view = View::of(&[writer(4, 0), writer(8, gone)], 4, NOW, DAY_MS);
        assert_eq!((view.stored, view.live), (8, 4));
        assert_eq!(view.recent, [4, 8]);
        // Past the idempotency window its records are gone too.
        let view = View::of(&[writer(4, 0), writer(8, DAY_MS)], 4, NOW, DAY_MS);
        assert_eq!(view.recent, [4]);
        assert_eq!(view.stored, 8);
    }

    #[test]
    fn an_instance_with_more_partitions_serves_its_own_whatever_others_say() {
        let view = View::of(&[writer(4, 0)], 8, NOW, DAY_MS);
        assert_eq!((view.stored, view.live), (8, 8));
    }
}
