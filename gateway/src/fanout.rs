//! The fan-out stage: reads accepted events from a partition's ingest
//! stream, matches them against the tenant's endpoints, runs each
//! endpoint's plugin chain, and replaces the ingest entry by what was
//! decided per endpoint (one Lua script: tasks and statuses written and the
//! entry acknowledged together).
//!
//! Entries are handled concurrently (bounded by `FANOUT_CONCURRENCY` per
//! process), so one slow plugin never holds up the events behind it.
//! Entries no endpoint subscribes to are acknowledged together, in one
//! command per batch.

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::Context;
use tokio::sync::Semaphore;
use tokio_util::task::TaskTracker;

use crate::chain::{Chain, Outcome};
use crate::model::{
    DeadLetter, DeadStage, Decision, IngestEntry, Status, StatusKind, Task, TenantId, Time,
};
use crate::queue::{Entry, Queue, Stage as QueueStage};
use crate::store::{EndpointLists, Store, TenantEndpoints};
use crate::telemetry::Metrics;
use crate::workers::Stage;

/// Entries under way at once in this process.
const FANOUT_CONCURRENCY: usize = 64;
/// An event going to at most this many endpoints, with a body of at most
/// [`INLINE_BODY_BYTES`], has its body copied into each task, so delivery
/// sends it without reading the event's hash (one command less each). Past
/// either, the copies would cost more memory than the reads cost time.
const INLINE_BODY_ENDPOINTS: usize = 4;
const INLINE_BODY_BYTES: usize = 16 * 1024;

#[derive(Clone)]
pub struct Fanout {
    inner: Arc<Inner>,
    permits: Arc<Semaphore>,
    tracker: TaskTracker,
}

struct Inner {
    queue: Queue,
    store: Store,
    chain: Chain,
    metrics: Metrics,
    endpoints: EndpointLists,
}

impl Fanout {
    pub fn new(
        queue: Queue,
        store: Store,
        endpoints: EndpointLists,
        chain: Chain,
        metrics: Metrics,
    ) -> Self {
        Fanout {
            inner: Arc::new(Inner {
                queue,
                store,
                chain,
                metrics,
                endpoints,
            }),
            permits: Arc::new(Semaphore::new(FANOUT_CONCURRENCY)),
            tracker: TaskTracker::new(),
        }
    }

    /// Waits for entries under way (their plugin calls are bounded by their deadlines).
    pub async fn drain(&self) {
        self.tracker.close();
        self.tracker.wait().await;
    }
}

impl Inner {
    async fn fan_out(
        &self,
        p: u16,
        raw: &Entry,
        entry: &IngestEntry,
        endpoints: &TenantEndpoints,
    ) -> anyhow::Result<()> {
        let targets = endpoints.taking(entry);
        let needs_body = targets
            .iter()
            .any(|ep| Chain::needs_event(ep, &entry.event_type, entry.version));
        // The entry carries the body; entries written before it did have it
        // in the event's hash only.
        let copies = targets.len() <= INLINE_BODY_ENDPOINTS;
        let plain = match needs_body || copies {
            true => raw.body.clone().map(crate::queue::opened),
            false => None,
        };
        let body = match (needs_body, &plain) {
            (false, _) => None,
            (true, Some(body)) => Some(body.clone()),
            (true, None) => {
                self.store
                    .event_body(p, &entry.tenant, &entry.event)
                    .await?
            }
        };
        let inline = plain
            .as_deref()
            .filter(|b| copies && b.len() <= INLINE_BODY_BYTES);
        let mut decisions = Vec::with_capacity(targets.len());
        for endpoint in targets {
            let task = Task::new(&entry.tenant, &entry.event, &endpoint.id);
            let outcome = match &body {
                Some(body) => {
                    self.chain
                        .run(&entry.tenant, endpoint, &entry.event, body)
                        .await?
                }
                None => Outcome::Deliver {
                    body: None,
                    skipped: None,
                },
            };
            decisions.push(self.decide(p, task, outcome, inline).await?);
        }
        let added = self
            .queue
            .fan_out(p, raw, entry, &decisions)
            .await
            .with_context(|| format!("fanning out event {}", entry.event))?;
        self.metrics.tasks_fanned_out.add(added as u64);
        Ok(())
    }

    /// Turns a chain outcome into a decision; a failure is dead-lettered
    /// first (a crash before the entry is acknowledged repeats it: a
    /// duplicate dead letter, never a lost one). A task to deliver carries
    /// the chain's body, else the event's `inline` one when it has it.
    async fn decide(
        &self,
        p: u16,
        mut task: Task,
        outcome: Outcome,
        inline: Option<&str>,
    ) -> anyhow::Result<Decision> {
        Ok(match outcome {
            Outcome::Deliver { body, skipped } => {
                task.body = body.or_else(|| inline.map(str::to_string));
                Decision::Deliver {
                    task,
                    note: skipped,
                }
            }
            Outcome::Dropped(reason) => {
                self.metrics.events_dropped_by_plugins.inc();
                let mut status = Status::new(StatusKind::Dropped, 0);
                status.last_error = Some(reason);
                Decision::Settled {
                    endpoint: task.endpoint,
                    status,
                }
            }
            Outcome::Failed(reason) => {
                let mut status = Status::new(StatusKind::DeadLettered, 0);
                status.last_error = Some(reason.clone());
                let letter = DeadLetter {
                    task: task.clone(),
                    partition: p,
                    stage: DeadStage::Plugin,
                    error: reason,
                    last_status_code: None,
                    dead_at: Time::now(),
                };
                self.queue.write_dead_letter(&letter).await?;
                self.metrics.deliveries_dead_lettered.inc();
                Decision::Settled {
                    endpoint: task.endpoint,
                    status,
                }
            }
        })
    }
}

impl Stage for Fanout {
    async fn handle(&self, p: u16, entries: Vec<Entry>) -> anyhow::Result<()> {
        let mut by_tenant: HashMap<TenantId, Arc<TenantEndpoints>> = HashMap::new();
        let mut unsubscribed = Vec::new();
        for entry in entries {
            let parsed = match IngestEntry::parse(p, &entry.id, &entry.json) {
                Ok(e) => e,
                Err(e) => {
                    tracing::error!(partition = p, entry = %entry.id, error = %e,
                        "unreadable ingest entry: it names no tenant or event; moving it to the partition's quarantine stream");
                    self.inner.metrics.entries_quarantined.inc();
                    self.inner
                        .queue
                        .quarantine(p, QueueStage::Fanout, &entry, &e.to_string())
                        .await?;
                    continue;
                }
            };
            let endpoints = match by_tenant.get(&parsed.tenant) {
                Some(eps) => eps.clone(),
                None => {
                    let eps = self.inner.endpoints.of(&parsed.tenant).await?;
                    by_tenant.insert(parsed.tenant.clone(), eps.clone());
                    eps
                }
            };
            if !endpoints.takes_any(&parsed) {
                unsubscribed.push(entry.id);
                continue;
            }
            let permit = self
                .permits
                .clone()
                .acquire_owned()
                .await
                .context("fan-out permits closed")?;
            let inner = self.inner.clone();
            self.tracker.spawn(async move {
                let _permit = permit;
                if let Err(e) = inner.fan_out(p, &entry, &parsed, &endpoints).await {
                    tracing::warn!(partition = p, entry = %entry.id, error = format!("{e:#}"),
                        "could not fan out an event; it stays pending and will be taken over");
                }
            });
        }
        if !unsubscribed.is_empty() {
            self.inner.queue.ack_unsubscribed(p, &unsubscribed).await?;
        }
        Ok(())
    }

    async fn capacity(&self) -> usize {
        // Wait for room before reading more, so read entries never sit waiting.
        drop(self.permits.acquire().await);
        self.permits.available_permits().clamp(1, 128)
    }
}
