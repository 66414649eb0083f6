//! The delivery stage: for each task, load the endpoint and the event body,
//! sign, POST, and settle the task by the outcome.
//!
//! - 2xx: finished (`delivered`).
//! - any other answer, a timeout or a connection error: retried on the
//!   policy's schedule (`Retry-After` on 429/503 is a floor), and after the
//!   last attempt dead-lettered with the last error.
//! - 410 Gone: the endpoint is disabled and the task dead-lettered.
//! - endpoint disabled: dead-lettered (redeliver it once re-enabled);
//!   endpoint deleted or event expired: dropped.
//! - held back by the endpoint's flow control ([`flow`]: rate, in-flight
//!   cap, circuit, this process's share per endpoint): rescheduled to when
//!   it may go, with its attempt count unchanged and no attempt logged.
//!
//! Every HTTP attempt is written to the endpoint's attempt log first.
//!
//! Batching (an endpoint with `batch`): fresh tasks of that endpoint are
//! collected in this process per (partition, tenant, endpoint), their stream
//! entries left pending, until `max_events` are in or `max_wait_ms` has
//! passed since the first; then they go as one request with a JSON array
//! body, signed once, `webhook-id` the batch id. The batch passes flow
//! control as one request and is settled as one unit by
//! [`Queue::settle_batch`]: to the retry set as one task carrying its
//! members (one attempt counter), or finished with every member's status;
//! after the last attempt every member is dead-lettered on its own. Each
//! attempt is logged once per member event, with the batch id. Collecting per
//! partition keeps every batch's keys in one hash tag, so each settlement is
//! one script; a crash while collecting leaves the entries pending, to be
//! taken over. Keep `max_wait_ms` plus the request timeout below the
//! visibility timeout, or collected entries are taken over while they wait.

pub mod client;
pub mod flow;
pub mod retry;
pub mod signing;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::clock;
use crate::queue::{DeadLetter, DeadStage, Entry, Queue, Settle, Status, StatusKind, Task, now_ms};
use crate::store::{AttemptRecord, Batching, Endpoint, Store};
use crate::telemetry::Metrics;
use crate::workers::Stage;
use client::{Attempt, HttpClient};
use flow::{Admission, CircuitSettings, Flow};
use retry::RetryPolicy;

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
}

#[derive(Clone)]
pub struct Deliverer {
    inner: Arc<Inner>,
}

/// Tasks of one batched endpoint (in one partition) collected so far.
struct Collecting {
    /// Tells this collection from a later one of the same endpoint.
    seq: u64,
    /// Stream entry id and task of each member.
    entries: Vec<(String, Task)>,
}

/// (partition, tenant, endpoint).
type CollectKey = (u16, String, String);

struct Inner {
    queue: Queue,
    store: Store,
    http: HttpClient,
    flow: Flow,
    settings: DeliverySettings,
    metrics: Metrics,
    /// Fired when the shutdown grace ends: unfinished deliveries are abandoned
    /// and their tasks stay pending, to be taken over.
    hard_stop: CancellationToken,
    permits: Arc<Semaphore>,
    tracker: TaskTracker,
    // A std mutex: one map operation per collected task, never held across an await.
    collecting: Mutex<HashMap<CollectKey, Collecting>>,
    next_seq: AtomicU64,
}

impl Deliverer {
    pub fn new(
        queue: Queue,
        store: Store,
        http: HttpClient,
        settings: DeliverySettings,
        metrics: Metrics,
    ) -> Self {
        let permits = Arc::new(Semaphore::new(settings.concurrency));
        let flow = Flow::new(
            queue.conn(),
            store.clone(),
            settings.circuit,
            settings.endpoint_concurrency,
        );
        Deliverer {
            inner: Arc::new(Inner {
                queue,
                store,
                http,
                flow,
                settings,
                metrics,
                hard_stop: CancellationToken::new(),
                permits,
                tracker: TaskTracker::new(),
                collecting: Mutex::default(),
                next_seq: AtomicU64::new(0),
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
        for entry in entries {
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
                if let Err(e) = inner.deliver(p, &entry).await {
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
    async fn deliver(self: &Arc<Self>, p: u16, entry: &Entry) -> anyhow::Result<()> {
        let task: Task = match serde_json::from_str(&entry.json) {
            Ok(t) => t,
            Err(e) => {
                tracing::error!(partition = p, entry = %entry.id, error = %e, "unreadable delivery task; dropping it");
                let placeholder = Task::new("", "", "");
                self.queue
                    .complete(
                        p,
                        &entry.id,
                        &placeholder,
                        &Status::new(StatusKind::Dropped, 0),
                    )
                    .await?;
                return Ok(());
            }
        };
        if !task.members.is_empty() {
            return self
                .deliver_batch(p, std::slice::from_ref(&entry.id), task)
                .await;
        }
        let (endpoint, body) = match &task.body {
            Some(body) => (
                self.store.endpoint(&task.tenant, &task.endpoint).await?,
                Some(body.clone()),
            ),
            None => tokio::try_join!(
                self.store.endpoint(&task.tenant, &task.endpoint),
                self.store.event_body(p, &task.tenant, &task.event),
            )?,
        };
        let (Some(endpoint), Some(body)) = (endpoint, body) else {
            self.metrics.deliveries_dropped.inc();
            let mut status = Status::new(StatusKind::Dropped, task.attempt);
            status.last_error = Some("the endpoint was deleted or the event expired".into());
            self.queue.complete(p, &entry.id, &task, &status).await?;
            return Ok(());
        };
        if endpoint.disabled {
            let reason = endpoint
                .disabled_reason
                .as_deref()
                .unwrap_or("disabled by the tenant");
            let task = Task {
                reserved: None,
                ..task
            };
            return self
                .dead_letter(
                    p,
                    entry,
                    &task,
                    format!("endpoint disabled: {reason}"),
                    None,
                )
                .await;
        }
        if let Some(batching) = endpoint.batch {
            return self.collect(p, entry, task, batching).await;
        }
        let settings = &self.settings;
        let timeout = self.timeout(&endpoint);
        let lease = match self.flow.admit(&task, &endpoint, timeout).await? {
            Admission::Go(lease) => lease,
            Admission::Wait {
                until_ms,
                why,
                reserved,
            } => {
                return self
                    .hold_back(p, entry, task, until_ms, why, reserved)
                    .await;
            }
        };

        let headers = request_headers(&endpoint, &task.msg_id, body.as_bytes())?;
        let attempt = tokio::select! {
            a = self.http.post(&endpoint.url, headers, body.into_bytes(), timeout) => a,
            () = self.hard_stop.cancelled() => return Ok(()),
        };
        self.flow.settle(&task, lease, attempt.succeeded()).await?;
        let made = task.attempt + 1;
        self.store
            .record_attempt(
                &task.tenant,
                &task.endpoint,
                &attempt_record(&task, made, &attempt),
            )
            .await?;

        if attempt.succeeded() {
            self.metrics.deliveries_succeeded.inc();
            let mut status = Status::new(StatusKind::Delivered, made);
            status.last_status_code = attempt.status;
            self.queue.complete(p, &entry.id, &task, &status).await?;
            return Ok(());
        }
        self.metrics.deliveries_failed.inc();
        let error = attempt
            .error
            .clone()
            .unwrap_or_else(|| "delivery failed".into());
        let done = Task {
            attempt: made,
            reserved: None,
            ..task.clone()
        };
        if attempt.gone() {
            self.disable_gone(&task).await?;
            return self
                .dead_letter(
                    p,
                    entry,
                    &done,
                    format!("{error}: endpoint disabled"),
                    attempt.status,
                )
                .await;
        }
        match settings.policy.next_delay(made, attempt.retry_after) {
            Some(delay) => {
                let due = now_ms() + delay.as_millis() as u64;
                let mut status = Status::new(StatusKind::Retrying, made);
                status.last_status_code = attempt.status;
                status.last_error = Some(error);
                status.next_attempt_at = Some(clock::ms_to_rfc3339(due));
                self.queue
                    .retry_at(p, &entry.id, &done, due, &status)
                    .await?;
                self.metrics.retries_scheduled.inc();
                Ok(())
            }
            None => {
                let error = format!("gave up after {made} attempts; last: {error}");
                self.dead_letter(p, entry, &done, error, attempt.status)
                    .await
            }
        }
    }

    fn timeout(&self, endpoint: &Endpoint) -> Duration {
        endpoint
            .timeout_ms
            .map_or(self.settings.default_timeout, Duration::from_millis)
            .min(self.settings.max_timeout)
    }

    /// Adds a fresh task to its endpoint's collection; sends the batch when
    /// it is full. The first task of a collection starts its `max_wait_ms` timer.
    async fn collect(
        self: &Arc<Self>,
        p: u16,
        entry: &Entry,
        task: Task,
        batching: Batching,
    ) -> anyhow::Result<()> {
        let key: CollectKey = (p, task.tenant.clone(), task.endpoint.clone());
        let (full, started) = {
            let mut collecting = self.collecting.lock().expect("batch lock poisoned");
            let c = collecting.entry(key.clone()).or_insert_with(|| Collecting {
                seq: self.next_seq.fetch_add(1, Ordering::Relaxed),
                entries: Vec::new(),
            });
            if c.entries.iter().any(|(id, _)| *id == entry.id) {
                return Ok(());
            }
            c.entries.push((entry.id.clone(), task));
            if c.entries.len() >= batching.max_events as usize {
                (collecting.remove(&key), None)
            } else {
                (None, (c.entries.len() == 1).then_some(c.seq))
            }
        };
        if let Some(seq) = started {
            let inner = self.clone();
            let wait = Duration::from_millis(batching.max_wait_ms);
            self.tracker
                .spawn(async move { inner.flush_after(key, seq, wait).await });
        }
        match full {
            Some(c) => self.send_collected(p, c).await,
            None => Ok(()),
        }
    }

    /// Sends collection `seq` of `key` after `wait`, unless it was sent full before.
    async fn flush_after(&self, key: CollectKey, seq: u64, wait: Duration) {
        let permit = tokio::select! {
            permit = async {
                tokio::time::sleep(wait).await;
                self.permits.clone().acquire_owned().await
            } => permit,
            () = self.hard_stop.cancelled() => return,
        };
        let Ok(_permit) = permit else { return };
        let taken = {
            let mut collecting = self.collecting.lock().expect("batch lock poisoned");
            match collecting.get(&key) {
                Some(c) if c.seq == seq => collecting.remove(&key),
                _ => None,
            }
        };
        if let Some(c) = taken
            && let Err(e) = self.send_collected(key.0, c).await
        {
            tracing::warn!(partition = key.0, tenant = %key.1, endpoint = %key.2, error = format!("{e:#}"),
                "could not settle a batch; its tasks stay pending and will be taken over");
        }
    }

    async fn send_collected(&self, p: u16, c: Collecting) -> anyhow::Result<()> {
        let (ids, members): (Vec<String>, Vec<Task>) = c.entries.into_iter().unzip();
        let Some(first) = members.first() else {
            return Ok(());
        };
        let (tenant, endpoint) = (first.tenant.clone(), first.endpoint.clone());
        let batch = Task::batch(&tenant, &endpoint, members);
        self.deliver_batch(p, &ids, batch).await
    }

    /// Sends a batch as one request and settles it as one unit; `entry_ids`
    /// are its stream entries.
    async fn deliver_batch(&self, p: u16, entry_ids: &[String], batch: Task) -> anyhow::Result<()> {
        let n = batch.members.len() as u64;
        let endpoint = self.store.endpoint(&batch.tenant, &batch.endpoint).await?;
        let bodies = self.member_bodies(p, &batch).await?;
        let Some(endpoint) = endpoint.filter(|_| !bodies.is_empty()) else {
            self.metrics.deliveries_dropped.add(n);
            let mut status = Status::new(StatusKind::Dropped, batch.attempt);
            status.last_error = Some("the endpoint was deleted or the events expired".into());
            self.queue
                .settle_batch(p, entry_ids, &batch, Settle::Finish, &status)
                .await?;
            return Ok(());
        };
        if endpoint.disabled {
            let reason = endpoint
                .disabled_reason
                .as_deref()
                .unwrap_or("disabled by the tenant");
            return self
                .dead_letter_batch(
                    p,
                    entry_ids,
                    &batch,
                    format!("endpoint disabled: {reason}"),
                    None,
                )
                .await;
        }
        let timeout = self.timeout(&endpoint);
        let lease = match self.flow.admit(&batch, &endpoint, timeout).await? {
            Admission::Go(lease) => lease,
            Admission::Wait {
                until_ms,
                why,
                reserved,
            } => {
                let status = held_status(batch.attempt, why, until_ms);
                let next = Task { reserved, ..batch };
                self.queue
                    .settle_batch(
                        p,
                        entry_ids,
                        &next,
                        Settle::Retry { due_ms: until_ms },
                        &status,
                    )
                    .await?;
                self.metrics.deliveries_held_back.inc();
                return Ok(());
            }
        };

        let body = format!("[{}]", bodies.join(","));
        let headers = request_headers(&endpoint, &batch.msg_id, body.as_bytes())?;
        let attempt = tokio::select! {
            a = self.http.post(&endpoint.url, headers, body.into_bytes(), timeout) => a,
            () = self.hard_stop.cancelled() => return Ok(()),
        };
        self.flow.settle(&batch, lease, attempt.succeeded()).await?;
        let made = batch.attempt + 1;
        for member in &batch.members {
            let mut record = attempt_record(member, made, &attempt);
            record.batch_id = Some(batch.msg_id.clone());
            self.store
                .record_attempt(&batch.tenant, &batch.endpoint, &record)
                .await?;
        }

        if attempt.succeeded() {
            self.metrics.deliveries_succeeded.add(n);
            let mut status = Status::new(StatusKind::Delivered, made);
            status.last_status_code = attempt.status;
            self.queue
                .settle_batch(p, entry_ids, &batch, Settle::Finish, &status)
                .await?;
            return Ok(());
        }
        self.metrics.deliveries_failed.add(n);
        let error = attempt
            .error
            .clone()
            .unwrap_or_else(|| "delivery failed".into());
        let done = Task {
            attempt: made,
            reserved: None,
            ..batch
        };
        if attempt.gone() {
            self.disable_gone(&done).await?;
            return self
                .dead_letter_batch(
                    p,
                    entry_ids,
                    &done,
                    format!("{error}: endpoint disabled"),
                    attempt.status,
                )
                .await;
        }
        match self.settings.policy.next_delay(made, attempt.retry_after) {
            Some(delay) => {
                let due = now_ms() + delay.as_millis() as u64;
                let mut status = Status::new(StatusKind::Retrying, made);
                status.last_status_code = attempt.status;
                status.last_error = Some(error);
                status.next_attempt_at = Some(clock::ms_to_rfc3339(due));
                self.queue
                    .settle_batch(p, entry_ids, &done, Settle::Retry { due_ms: due }, &status)
                    .await?;
                self.metrics.retries_scheduled.inc();
                Ok(())
            }
            None => {
                let error = format!("gave up after {made} attempts; last: {error}");
                self.dead_letter_batch(p, entry_ids, &done, error, attempt.status)
                    .await
            }
        }
    }

    /// The delivery bodies of a batch's members still kept, in member order.
    async fn member_bodies(&self, p: u16, batch: &Task) -> anyhow::Result<Vec<String>> {
        let mut bodies = Vec::with_capacity(batch.members.len());
        for member in &batch.members {
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

    /// One dead letter per member (each can be redelivered alone), then the
    /// batch is finished. The letters are written first, as in [`Self::dead_letter`].
    async fn dead_letter_batch(
        &self,
        p: u16,
        entry_ids: &[String],
        batch: &Task,
        error: String,
        code: Option<u16>,
    ) -> anyhow::Result<()> {
        for member in &batch.members {
            let letter = DeadLetter {
                task: Task {
                    attempt: batch.attempt,
                    reserved: None,
                    ..member.clone()
                },
                partition: p,
                stage: DeadStage::Delivery,
                error: error.clone(),
                last_status_code: code,
                dead_at: clock::now_rfc3339(),
            };
            self.queue.write_dead_letter(&letter).await?;
        }
        let mut status = Status::new(StatusKind::DeadLettered, batch.attempt);
        status.last_status_code = code;
        status.last_error = Some(error);
        self.queue
            .settle_batch(p, entry_ids, batch, Settle::Finish, &status)
            .await?;
        self.metrics
            .deliveries_dead_lettered
            .add(batch.members.len() as u64);
        Ok(())
    }

    /// Reschedules a task that flow control held back: not an attempt.
    async fn hold_back(
        &self,
        p: u16,
        entry: &Entry,
        task: Task,
        until_ms: u64,
        why: &str,
        reserved: Option<u64>,
    ) -> anyhow::Result<()> {
        let status = held_status(task.attempt, why, until_ms);
        let next = Task { reserved, ..task };
        self.queue
            .retry_at(p, &entry.id, &next, until_ms, &status)
            .await?;
        self.metrics.deliveries_held_back.inc();
        Ok(())
    }

    async fn dead_letter(
        &self,
        p: u16,
        entry: &Entry,
        task: &Task,
        error: String,
        code: Option<u16>,
    ) -> anyhow::Result<()> {
        let mut status = Status::new(StatusKind::DeadLettered, task.attempt);
        status.last_status_code = code;
        status.last_error = Some(error.clone());
        let letter = DeadLetter {
            task: task.clone(),
            partition: p,
            stage: DeadStage::Delivery,
            error,
            last_status_code: code,
            dead_at: clock::now_rfc3339(),
        };
        self.queue
            .dead_letter(p, &entry.id, &letter, &status)
            .await?;
        self.metrics.deliveries_dead_lettered.inc();
        Ok(())
    }

    async fn disable_gone(&self, task: &Task) -> anyhow::Result<()> {
        let reason = "the endpoint answered 410 Gone";
        if self
            .store
            .disable_endpoint(&task.tenant, &task.endpoint, reason)
            .await?
        {
            self.metrics.endpoints_disabled_gone.inc();
            tracing::info!(tenant = %task.tenant, endpoint = %task.endpoint, "endpoint answered 410 Gone; disabled");
        }
        Ok(())
    }
}

/// The request headers: the endpoint's own, then the Standard Webhooks ones
/// signed over `body` with every live secret.
fn request_headers(endpoint: &Endpoint, msg_id: &str, body: &[u8]) -> anyhow::Result<HeaderMap> {
    let timestamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default();
    let signature =
        signing::signature_header(&endpoint.live_secrets(now_ms()), msg_id, timestamp, body);
    let mut headers = HeaderMap::new();
    for (name, value) in &endpoint.headers {
        if let (Ok(n), Ok(v)) = (
            HeaderName::try_from(name.as_str()),
            HeaderValue::try_from(value.as_str()),
        ) {
            headers.insert(n, v);
        }
    }
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert("webhook-id", HeaderValue::try_from(msg_id)?);
    headers.insert("webhook-timestamp", HeaderValue::from(timestamp));
    headers.insert("webhook-signature", HeaderValue::try_from(signature)?);
    Ok(headers)
}

fn attempt_record(task: &Task, made: u32, attempt: &Attempt) -> AttemptRecord {
    AttemptRecord {
        id: String::new(),
        event_id: task.event.clone(),
        msg_id: task.msg_id.clone(),
        attempt: made,
        batch_id: None,
        status_code: attempt.status,
        latency_ms: attempt.latency.as_millis() as u64,
        response: attempt.response.clone(),
        error: attempt.error.clone(),
        at: clock::now_rfc3339(),
    }
}

/// The status of a task held back (throttled, over a cap, circuit open):
/// why, and when it is tried; its attempt count does not move.
fn held_status(attempts: u32, why: &str, until_ms: u64) -> Status {
    let kind = if attempts == 0 {
        StatusKind::Pending
    } else {
        StatusKind::Retrying
    };
    let mut status = Status::new(kind, attempts);
    status.last_error = Some(why.to_string());
    status.next_attempt_at = Some(clock::ms_to_rfc3339(until_ms));
    status
}
