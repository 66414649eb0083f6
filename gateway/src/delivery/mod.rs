//! The delivery stage: one pipeline for every task, a single delivery or a
//! batch alike (a single delivery is a batch of one):
//!
//! ```text
//! load ─▶ admit ─▶ send ─▶ record ─▶ settle
//! ```
//!
//! - **load** the endpoint and the bodies. Deleted endpoint or expired
//!   events: dropped. Disabled endpoint: dead-lettered (redeliver it once
//!   re-enabled). An endpoint that has not passed its ownership handshake
//!   (`crate::readiness`), or is quarantined: parked, not an attempt, until
//!   it may take events. A fresh task of a batching endpoint is collected
//!   instead ([`batch`]) and comes back as part of a batch task.
//! - **admit** through the endpoint's flow control ([`flow`]: rate,
//!   in-flight cap, circuit, this process's share of the permits); held
//!   back: rescheduled to when it may go, its attempt count unchanged and no
//!   attempt logged. A failure may quarantine the endpoint
//!   ([`quarantine`]).
//! - **send** one signed request through the [`Transport`] (a batch: one
//!   JSON array, `webhook-id` the batch id), with the endpoint's client
//!   certificate and CAs when it has them ([`tls`]); to the endpoint's failover
//!   URLs instead while its circuit is open or it is quarantined
//!   ([`failover`]). A poll-mode endpoint's task is appended to its poll
//!   channel instead ([`poll`]).
//! - **record** the attempt in the endpoint's attempt log (once per member
//!   event, with the batch id) and give the flow-control lease back.
//! - **settle** by the [`Outcome`]: 2xx delivered; any other answer, a
//!   timeout or a connection error retried on the policy's schedule
//!   (`Retry-After` on 429/503 is a floor), and after the last attempt
//!   dead-lettered with the last error; 410 Gone disables the endpoint and
//!   dead-letters. One script ([`Queue::settle`]) applies it; dead letters
//!   (one per member, each redeliverable alone) are written just before, so
//!   a crash between the two repeats a dead letter and never loses a task.
//!
//! Keep a batching endpoint's `max_wait_ms` plus the request timeout below
//! the visibility timeout, or collected entries are taken over while they wait.

pub mod batch;
pub mod client;
mod collect;
mod failover;
mod notices;
pub mod outcome;
mod poll;
mod quarantine;
pub mod redeliver;
pub mod replay;
mod request;
pub mod retry;
mod settle;
pub mod signing;
pub mod tls;
pub mod transport;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::admission::TenantLimitsCache;
use crate::admission::endpoint::{Admission, CircuitSettings, Flow};
use crate::contracts::Contracts;
use crate::model::clock::now_ms;
use crate::model::{Task, TenantId};
use crate::notify::Notifier;
use crate::queue::{Entry, Queue, Stage as QueueStage};
use crate::store::{AttemptRecord, Endpoint, EndpointLists, Store, TenantEndpoints};
use crate::telemetry::Metrics;
use crate::workers::Stage;
use batch::Collector;
use client::Attempt;
pub use outcome::Outcome;
use request::attempt_record;
pub use request::request_headers;
use retry::RetryPolicy;
pub use transport::{Request, Transport};

/// Entries read per step at most.
const MAX_BATCH: usize = 128;

pub struct DeliverySettings {
    pub policy: RetryPolicy,
    pub default_timeout: Duration,
    pub max_timeout: Duration,
    pub concurrency: usize,
    /// Permits of `concurrency` one endpoint may hold.
    pub endpoint_concurrency: usize,
    pub circuit: CircuitSettings,
    /// Whether an endpoint must pass its handshake before it gets events.
    pub verification_required: bool,
    pub quarantine: crate::config::QuarantineConfig,
    /// Failed attempts of one event after which `message.attempt.failing` goes.
    pub failing_after: u32,
}

#[derive(Clone)]
pub struct Deliverer {
    inner: Arc<Inner>,
}

/// What the delivery stage reads of its tenants' setup, each through its
/// own cache: endpoints, limits (rates), settings (a default retry schedule).
pub struct Lookups {
    pub endpoints: EndpointLists,
    pub limits: TenantLimitsCache,
    pub contracts: Contracts,
}

struct Inner {
    queue: Queue,
    store: Store,
    endpoints: EndpointLists,
    contracts: Contracts,
    transport: Arc<dyn Transport>,
    flow: Flow,
    settings: DeliverySettings,
    metrics: Metrics,
    /// Fired when the shutdown grace ends: unfinished deliveries are abandoned
    /// and their tasks stay pending, to be taken over.
    hard_stop: CancellationToken,
    permits: Arc<Semaphore>,
    tracker: TaskTracker,
    collector: Collector,
    notify: Notifier,
}

/// A task on its way through the pipeline, with the stream entries it
/// settles: its own, or a just-collected batch's members'.
struct Unit {
    entries: Vec<String>,
    task: Task,
}

/// What the load step found.
enum Loaded {
    /// Go on: the endpoint and the bodies still kept, in member order.
    Ready(Box<Endpoint>, Vec<String>),
    /// Settle at once.
    Done(Outcome),
}

impl Deliverer {
    pub fn new(
        queue: Queue,
        store: Store,
        lookups: Lookups,
        transport: Arc<dyn Transport>,
        settings: DeliverySettings,
        metrics: Metrics,
    ) -> Self {
        let Lookups {
            endpoints,
            limits,
            contracts,
        } = lookups;
        let notify = Notifier::new(queue.clone());
        let permits = Arc::new(Semaphore::new(settings.concurrency));
        let flow = Flow::new(
            queue.conn(),
            limits,
            settings.circuit,
            settings.endpoint_concurrency,
        );
        Deliverer {
            inner: Arc::new(Inner {
                queue,
                store,
                endpoints,
                contracts,
                transport,
                flow,
                settings,
                metrics,
                hard_stop: CancellationToken::new(),
                permits,
                tracker: TaskTracker::new(),
                collector: Collector::default(),
                notify,
            }),
        }
    }

    /// Waits for in-flight deliveries up to `grace`, then abandons the rest
    /// (their tasks stay pending in Redis and are taken over later).
    pub async fn drain(&self, grace: Duration) {
        let tracker = &self.inner.tracker;
        tracker.close();
        if tokio::time::timeout(grace, tracker.wait()).await.is_err() {
            tracing::warn!(
                left = tracker.len(),
                "shutdown grace over; handing unfinished deliveries back to the queue"
            );
            self.inner.hard_stop.cancel();
            tracker.wait().await;
        }
    }
}

impl Stage for Deliverer {
    async fn handle(&self, p: u16, entries: Vec<Entry>) -> anyhow::Result<()> {
        // Each tenant's endpoints are looked up once per read batch.
        let mut lists: HashMap<TenantId, Arc<TenantEndpoints>> = HashMap::new();
        for entry in entries {
            let task: Task = match serde_json::from_str(&entry.json) {
                Ok(t) => t,
                Err(e) => {
                    tracing::error!(partition = p, entry = %entry.id, error = %e,
                        "unreadable delivery task: it names no event to deliver; moving it to the partition's quarantine stream");
                    self.inner.metrics.entries_quarantined.inc();
                    self.inner
                        .queue
                        .quarantine(p, QueueStage::Delivery, &entry, &e.to_string())
                        .await?;
                    continue;
                }
            };
            let endpoints = match lists.get(&task.tenant) {
                Some(eps) => eps.clone(),
                None => {
                    let eps = self.inner.endpoints.of(&task.tenant).await?;
                    lists.insert(task.tenant.clone(), eps.clone());
                    eps
                }
            };
            let permit = self
                .inner
                .permits
                .clone()
                .acquire_owned()
                .await
                .context("delivery permits closed")?;
            let inner = self.inner.clone();
            self.inner.tracker.spawn(async move {
                let _permit = permit;
                inner.metrics.deliveries_in_flight.add(1);
                if let Err(e) = inner.deliver(p, &entry, task, &endpoints).await {
                    tracing::warn!(partition = p, entry = %entry.id, error = format!("{e:#}"),
                        "could not settle a delivery; its task stays pending and will be taken over");
                }
                inner.metrics.deliveries_in_flight.add(-1);
            });
        }
        Ok(())
    }

    async fn capacity(&self) -> usize {
        // Wait for room before reading more, so read tasks never sit waiting.
        drop(self.inner.permits.acquire().await);
        self.inner.permits.available_permits().clamp(1, MAX_BATCH)
    }
}

impl Inner {
    /// One stream entry's task (`endpoints`: its tenant's): run through
    /// the pipeline, or collected.
    async fn deliver(
        self: &Arc<Self>,
        p: u16,
        entry: &Entry,
        task: Task,
        endpoints: &TenantEndpoints,
    ) -> anyhow::Result<()> {
        let unit = Unit {
            entries: vec![entry.id.clone()],
            task,
        };
        let loaded = self.load(p, &unit.task, endpoints).await?;
        if let Loaded::Ready(endpoint, _) = &loaded
            && let Some(batching) = endpoint.batching()
            && unit.task.members.is_empty()
        {
            return self.collect(p, entry, unit.task, batching).await;
        }
        self.run(p, unit, loaded).await
    }

    /// The pipeline after the load step.
    async fn run(&self, p: u16, unit: Unit, loaded: Loaded) -> anyhow::Result<()> {
        let outcome = match loaded {
            Loaded::Done(outcome) => outcome,
            Loaded::Ready(endpoint, bodies) => {
                match self.attempt(&unit.task, endpoint, bodies).await? {
                    Some(outcome) => outcome,
                    None => return Ok(()),
                }
            }
        };
        self.settle(p, &unit, outcome).await
    }

    /// Load: the endpoint (from its tenant's `endpoints`), and the body of
    /// every member still kept.
    async fn load(
        &self,
        p: u16,
        task: &Task,
        endpoints: &TenantEndpoints,
    ) -> anyhow::Result<Loaded> {
        let endpoint = endpoints.get(&task.endpoint);
        let bodies = match endpoint {
            Some(_) => self.bodies(p, task).await?,
            None => Vec::new(),
        };
        let Some(endpoint) = endpoint.filter(|_| !bodies.is_empty()) else {
            return Ok(Loaded::Done(Outcome::Dropped {
                reason: "the endpoint was deleted or the event expired",
            }));
        };
        if endpoint.disabled {
            let reason = endpoint
                .disabled_reason
                .as_deref()
                .unwrap_or("disabled by the tenant");
            return Ok(Loaded::Done(Outcome::DeadLetter {
                attempts: task.attempt,
                reason: format!("endpoint disabled: {reason}"),
                code: None,
            }));
        }
        let required = self.settings.verification_required;
        if let Some(why) = endpoint
            .held(required)
            .filter(|_| !endpoint.fails_over(required))
        {
            return Ok(Loaded::Done(Outcome::Parked { why }));
        }
        Ok(Loaded::Ready(Box::new(endpoint.clone()), bodies))
    }

    /// The delivery bodies of a task's members still kept, in member order.
    async fn bodies(&self, p: u16, task: &Task) -> redis::RedisResult<Vec<String>> {
        let mut bodies = Vec::with_capacity(task.members().len());
        for member in task.members() {
            let body = match &member.body {
                Some(body) => Some(body.clone()),
                None => {
                    self.store
                        .event_body(p, &member.tenant, &member.event)
                        .await?
                }
            };
            bodies.extend(body);
        }
        Ok(bodies)
    }

    /// Admit, send and record; `None` when the shutdown grace ran out
    /// mid-request (the task stays pending, to be taken over).
    async fn attempt(
        &self,
        task: &Task,
        endpoint: Box<Endpoint>,
        bodies: Vec<String>,
    ) -> anyhow::Result<Option<Outcome>> {
        let timeout = self.timeout(&endpoint);
        let body = joined(task, bodies);
        if !endpoint.mode.is_push() {
            return Ok(Some(self.hand_to_poll(task, &endpoint, &body).await?));
        }
        if endpoint.quarantine.is_some() {
            // Only an endpoint that fails over gets this far quarantined.
            return self.fail_over(task, &endpoint, &body, timeout).await;
        }
        let lease = match self.flow.admit(task, &endpoint, timeout).await? {
            Admission::Go(lease) => lease,
            Admission::Wait {
                circuit_open: true, ..
            } if !endpoint.failover_urls.is_empty() => {
                return self.fail_over(task, &endpoint, &body, timeout).await;
            }
            Admission::Wait {
                until_ms,
                why,
                reserved,
                ..
            } => {
                return Ok(Some(Outcome::HeldBack {
                    until_ms,
                    why,
                    reserved,
                }));
            }
        };
        let Some(attempt) = self
            .send(task, &endpoint, &endpoint.url, body, timeout)
            .await?
        else {
            return Ok(None);
        };
        if let Some(row) = self.flow.settle(task, lease, attempt.succeeded()).await? {
            self.weigh_failures(task, &endpoint, row).await?;
        }
        self.record(task, &attempt, &endpoint.url).await?;
        let outcome = self.outcome(task, &endpoint, &attempt).await?;
        self.tell(task, &endpoint, &outcome).await;
        Ok(Some(outcome))
    }

    /// Sends one signed request of `body` to `url`; `None` when the
    /// shutdown grace ran out first.
    async fn send(
        &self,
        task: &Task,
        endpoint: &Endpoint,
        url: &str,
        body: String,
        timeout: Duration,
    ) -> anyhow::Result<Option<Attempt>> {
        let headers = request_headers(endpoint, &task.msg_id, body.as_bytes())?;
        let request = Request {
            url: url.to_string(),
            tls: tls::ClientTls::of(endpoint),
            headers,
            body: body.into_bytes(),
            timeout,
        };
        let attempt = tokio::select! {
            a = self.transport.send(request) => a,
            () = self.hard_stop.cancelled() => return Ok(None),
        };
        let n = task.members().len() as u64;
        match attempt.succeeded() {
            true => self.metrics.deliveries_succeeded.add(n),
            false => self.metrics.deliveries_failed.add(n),
        }
        Ok(Some(attempt))
    }

    /// What an attempt comes to, on the endpoint's own retry schedule, else
    /// its tenant's default one, else the gateway's.
    async fn outcome(
        &self,
        task: &Task,
        endpoint: &Endpoint,
        attempt: &Attempt,
    ) -> anyhow::Result<Outcome> {
        let schedule = match &endpoint.retry_schedule {
            Some(own) => Some(own.clone()),
            None if !attempt.succeeded() => {
                let tenant = self.contracts.get(&task.tenant).await?;
                tenant.settings.retry_schedule.clone()
            }
            None => None,
        };
        let chosen = schedule.and_then(|s| self.settings.policy.with_schedule(&s));
        let policy = chosen.as_ref().unwrap_or(&self.settings.policy);
        Ok(Outcome::of_attempt(policy, task.attempt, attempt, now_ms()))
    }

    /// Record: one attempt record per member (sent to `url`), with the
    /// batch id for a batch.
    async fn record(&self, task: &Task, attempt: &Attempt, url: &str) -> anyhow::Result<()> {
        let batch_id = (!task.members.is_empty()).then(|| task.msg_id.clone());
        let records: Vec<AttemptRecord> = task
            .members()
            .iter()
            .map(|member| AttemptRecord {
                batch_id: batch_id.clone(),
                url: Some(url.to_string()),
                ..attempt_record(member, task.attempt + 1, attempt)
            })
            .collect();
        self.store
            .record_attempts(&task.tenant, &task.endpoint, &records)
            .await?;
        Ok(())
    }

    fn timeout(&self, endpoint: &Endpoint) -> Duration {
        endpoint
            .timeout_ms
            .map_or(self.settings.default_timeout, Duration::from_millis)
            .min(self.settings.max_timeout)
    }
}

/// The request body of a task: its one event's body, or a batch's as a
/// JSON array.
fn joined(task: &Task, mut bodies: Vec<String>) -> String {
    match (task.members.is_empty(), bodies.pop()) {
        (true, Some(body)) => body,
        (_, last) => {
            bodies.extend(last);
            format!("[{}]", bodies.join(","))
        }
    }
}
