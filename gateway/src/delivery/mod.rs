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

pub mod client;
pub mod flow;
pub mod retry;
pub mod signing;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::clock;
use crate::queue::{DeadLetter, DeadStage, Entry, Queue, Status, StatusKind, Task, now_ms};
use crate::store::{AttemptRecord, Store};
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
    permits: Arc<Semaphore>,
    tracker: TaskTracker,
}

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
            }),
            permits,
            tracker: TaskTracker::new(),
        }
    }

    /// Waits for in-flight deliveries up to `grace`, then abandons the rest
    /// (their tasks stay pending in Redis and are taken over later).
    pub async fn drain(&self, grace: Duration) {
        self.tracker.close();
        if tokio::time::timeout(grace, self.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                left = self.tracker.len(),
                "shutdown grace over; handing unfinished deliveries back to the queue"
            );
            self.inner.hard_stop.cancel();
            self.tracker.wait().await;
        }
    }
}

impl Stage for Deliverer {
    async fn handle(&self, p: u16, entries: Vec<Entry>) -> anyhow::Result<()> {
        for entry in entries {
            let permit = self
                .permits
                .clone()
                .acquire_owned()
                .await
                .context("delivery permits closed")?;
            let inner = self.inner.clone();
            self.tracker.spawn(async move {
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
        drop(self.permits.acquire().await);
        self.permits.available_permits().clamp(1, MAX_BATCH)
    }
}

impl Inner {
    async fn deliver(&self, p: u16, entry: &Entry) -> anyhow::Result<()> {
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
        let settings = &self.settings;
        let timeout = endpoint
            .timeout_ms
            .map_or(settings.default_timeout, Duration::from_millis)
            .min(settings.max_timeout);
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

        let timestamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or_default();
        let signature = signing::signature_header(
            &endpoint.live_secrets(now_ms()),
            &task.msg_id,
            timestamp,
            body.as_bytes(),
        );
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
        headers.insert("webhook-id", HeaderValue::try_from(task.msg_id.as_str())?);
        headers.insert("webhook-timestamp", HeaderValue::from(timestamp));
        headers.insert("webhook-signature", HeaderValue::try_from(signature)?);

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
        let kind = if task.attempt == 0 {
            StatusKind::Pending
        } else {
            StatusKind::Retrying
        };
        let mut status = Status::new(kind, task.attempt);
        status.last_error = Some(why.to_string());
        status.next_attempt_at = Some(clock::ms_to_rfc3339(until_ms));
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
        if let Some(mut endpoint) = self.store.endpoint(&task.tenant, &task.endpoint).await?
            && !endpoint.disabled
        {
            endpoint.disabled = true;
            endpoint.disabled_reason = Some("the endpoint answered 410 Gone".into());
            endpoint.updated_at = clock::now_rfc3339();
            self.store.put_endpoint(&task.tenant, &endpoint).await?;
            self.metrics.endpoints_disabled_gone.inc();
            tracing::info!(tenant = %task.tenant, endpoint = %task.endpoint, "endpoint answered 410 Gone; disabled");
        }
        Ok(())
    }
}

fn attempt_record(task: &Task, made: u32, attempt: &Attempt) -> AttemptRecord {
    AttemptRecord {
        id: String::new(),
        event_id: task.event.clone(),
        msg_id: task.msg_id.clone(),
        attempt: made,
        status_code: attempt.status,
        latency_ms: attempt.latency.as_millis() as u64,
        response: attempt.response.clone(),
        error: attempt.error.clone(),
        at: clock::now_rfc3339(),
    }
}
