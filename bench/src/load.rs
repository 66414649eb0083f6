//! The load generator: ~1 KiB JSON events posted over one shared keep-alive
//! `reqwest::Client`, either closed-loop (N workers, each sending its next
//! request when the previous one is answered) or open-loop at a fixed rate
//! (requests start on schedule whatever the answers do, and latency counts
//! from the scheduled start, so a stall is not hidden).
//!
//! Every event carries its sequence number and its send time (nanoseconds
//! on the shared [`Clock`]) in `data`, for the receiver to measure against;
//! an event addressed to a consumer also names it ([`Payload::for_consumers`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::stats::{Clock, Latencies};

/// Size of one request body, in bytes (give or take a few digits).
pub const BODY_BYTES: usize = 1024;
/// Open-loop requests allowed in flight before the schedule waits.
const MAX_IN_FLIGHT: usize = 1024;
/// The event type of [`Payload::contract`] events.
pub const CONTRACT_EVENT_TYPE: &str = "order.placed";

/// Builds event bodies and numbers them.
pub struct Payload {
    event_type: &'static str,
    fields: &'static str,
    pad: String,
    /// Consumers the events are addressed to in turn, when they are.
    consumers: Option<u64>,
    next_seq: AtomicU64,
}

impl Payload {
    /// `bench.event` events: `data` holds the stamp and padding only.
    pub fn new() -> Payload {
        Payload::with("bench.event", "")
    }

    /// `order.created` events at schema version 1, the input of the
    /// `schema_upgrade` plugin: `data` also holds a v1 order.
    pub fn order_v1() -> Payload {
        Payload::with("order.created", ORDER_V1_FIELDS)
    }

    /// `order.placed` events whose `data` has the 20 fields of the schema in
    /// `crate::contracts`: 17 fields of an order (formatted strings, bounded
    /// integers, an enum, a nested object, an array of objects), then the
    /// stamp and the padding.
    pub fn contract() -> Payload {
        Payload::with(CONTRACT_EVENT_TYPE, CONTRACT_FIELDS)
    }

    /// `bench.event` events addressed to one of `n` consumers in turn:
    /// event `seq` has `"consumer": "c-<seq % n>"` (see [`consumer_uid`])
    /// beside `type`, and `data.to` is `seq % n`, for the receiver to check
    /// where it arrived. The padding keeps the body at about 1 KiB.
    pub fn for_consumers(n: u64) -> Payload {
        Payload {
            consumers: Some(n.max(1)),
            ..Payload::with("bench.event", "")
        }
        .padded()
    }

    /// Events of `event_type` whose `data` starts with `fields` (JSON
    /// members, each followed by a comma).
    fn with(event_type: &'static str, fields: &'static str) -> Payload {
        Payload {
            event_type,
            fields,
            pad: String::new(),
            consumers: None,
            next_seq: AtomicU64::new(0),
        }
        .padded()
    }

    /// The padding set for bodies of [`BODY_BYTES`] with the longest stamp
    /// and consumer.
    fn padded(mut self) -> Payload {
        let widest = self.consumers.map(|n| n - 1);
        let overhead = event_json(
            self.event_type,
            self.fields,
            widest,
            u64::MAX / 2,
            u64::MAX / 2,
            "",
        );
        self.pad = "x".repeat(BODY_BYTES.saturating_sub(overhead.len()));
        self
    }

    /// The next event, stamped with `sent_ns`.
    pub fn next(&self, sent_ns: u64) -> Vec<u8> {
        let seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
        let consumer = self.consumers.map(|n| seq % n);
        event_json(
            self.event_type,
            self.fields,
            consumer,
            seq,
            sent_ns,
            &self.pad,
        )
        .into_bytes()
    }
}

/// The uid of consumer `k` of [`Payload::for_consumers`] events.
pub fn consumer_uid(k: u64) -> String {
    format!("c-{k}")
}

/// The v1 order of [`Payload::order_v1`] events.
const ORDER_V1_FIELDS: &str = r#""order_id":"ord_1","customer_name":"Ada Lovelace","customer_email":"ada@example.com","amount_cents":1250,"#;

/// The order of [`Payload::contract`] events.
const CONTRACT_FIELDS: &str = concat!(
    r#""event_id":"3f1c9a52-7b4e-4d2a-9c61-0e8f5a7b2d14","occurred_at":"2026-01-31T12:00:00Z","#,
    r#""delivery_date":"2026-02-03","customer_email":"ada@example.com","#,
    r#""customer_name":"Ada Lovelace","status":"paid","amount_cents":1250,"quantity":3,"#,
    r#""currency":"EUR","discount_rate":0.1,"gift":false,"coupon":null,"#,
    r#""source_ip":"192.0.2.10","callback_url":"https://shop.example.com/orders/ord_1","#,
    r#""shipping_address":{"line1":"12 St James Square","city":"London","#,
    r#""postcode":"SW1Y 4JH","country":"GB"},"#,
    r#""lines":[{"sku":"SKU-0001","qty":1,"unit_cents":500},"#,
    r#"{"sku":"SKU-0002","qty":2,"unit_cents":375}],"tags":["bench","contracts"],"#,
);

/// One event; addressed to consumer `k` when `consumer` is `Some(k)`.
fn event_json(
    event_type: &str,
    fields: &str,
    consumer: Option<u64>,
    seq: u64,
    sent_ns: u64,
    pad: &str,
) -> String {
    let (audience, to) = match consumer {
        Some(k) => (
            format!(r#""consumer":"{}","#, consumer_uid(k)),
            format!(r#""to":{k},"#),
        ),
        None => (String::new(), String::new()),
    };
    format!(
        r#"{{"type":"{event_type}",{audience}"data":{{{fields}{to}"seq":{seq},"sent_ns":{sent_ns},"pad":"{pad}"}}}}"#
    )
}

/// Where requests go: a URL (parsed once, not per request) and, for the
/// gateway, an API key.
#[derive(Clone)]
pub struct Target {
    pub http: reqwest::Client,
    pub url: reqwest::Url,
    pub bearer: Option<String>,
}

impl Target {
    /// POSTs `body` as JSON; `Err` describes anything but a 2xx answer.
    async fn post(&self, body: Vec<u8>) -> Result<(), String> {
        let mut request = self
            .http
            .post(self.url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
        if let Some(token) = &self.bearer {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.map_err(|e| e.to_string())?;
        let status = response.status();
        let text = response.bytes().await.map_err(|e| e.to_string())?;
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("{status}: {}", String::from_utf8_lossy(&text)))
        }
    }
}

/// What a load run saw.
#[derive(Default)]
pub struct LoadReport {
    /// Requests answered 2xx (in the measured window).
    pub ok: u64,
    /// Requests answered 2xx, warm-up included.
    pub all_ok: u64,
    pub failed: u64,
    pub first_failure: Option<String>,
    /// Length of the measured window.
    pub elapsed: Duration,
    pub latencies: Latencies,
}

impl LoadReport {
    fn add(&mut self, outcome: Result<(), String>, took: Duration) {
        match outcome {
            Ok(()) => {
                self.ok += 1;
                self.all_ok += 1;
                self.latencies.record(took);
            }
            Err(e) => {
                self.failed += 1;
                self.first_failure.get_or_insert(e);
            }
        }
    }

    fn merge(&mut self, other: LoadReport) {
        self.ok += other.ok;
        self.all_ok += other.all_ok;
        self.failed += other.failed;
        if self.first_failure.is_none() {
            self.first_failure = other.first_failure;
        }
        self.latencies.merge(other.latencies);
    }
}

/// `concurrency` workers send back to back for `warmup + measure`; only
/// requests started after the warm-up count.
pub async fn closed_loop(
    target: &Target,
    payload: &Arc<Payload>,
    clock: Clock,
    concurrency: usize,
    warmup: Duration,
    measure: Duration,
) -> LoadReport {
    let counted_from = Instant::now() + warmup;
    let stop_at = counted_from + measure;
    let mut workers = JoinSet::new();
    for _ in 0..concurrency {
        let (target, payload) = (target.clone(), payload.clone());
        workers.spawn(async move {
            let mut report = LoadReport::default();
            loop {
                let started = Instant::now();
                if started >= stop_at {
                    break;
                }
                let outcome = target.post(payload.next(clock.ns_at(started))).await;
                if started >= counted_from {
                    report.add(outcome, started.elapsed());
                } else if outcome.is_ok() {
                    report.all_ok += 1;
                }
            }
            report
        });
    }
    let mut total = LoadReport::default();
    while let Some(done) = workers.join_next().await {
        total.merge(done.expect("a load worker panicked"));
    }
    total.elapsed = counted_from.elapsed();
    total
}

/// Starts `rate` requests per second for `duration`, open loop.
pub async fn fixed_rate(
    target: &Target,
    payload: &Arc<Payload>,
    clock: Clock,
    rate: u32,
    duration: Duration,
) -> LoadReport {
    let period = Duration::from_secs(1) / rate.max(1);
    let count = (duration.as_secs_f64() * f64::from(rate)).round() as u64;
    let permits = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let started = Instant::now();
    let mut requests = JoinSet::new();
    for _ in 0..count {
        let scheduled = ticks.tick().await.into_std();
        let permit = permits
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        let (target, payload) = (target.clone(), payload.clone());
        requests.spawn(async move {
            let outcome = target.post(payload.next(clock.ns_at(scheduled))).await;
            drop(permit);
            (outcome, scheduled.elapsed())
        });
    }
    let mut report = LoadReport::default();
    while let Some(done) = requests.join_next().await {
        let (outcome, took) = done.expect("a request task panicked");
        report.add(outcome, took);
    }
    report.elapsed = started.elapsed();
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_about_one_kib_of_valid_json() {
        let payload = Payload::new();
        let body = payload.next(123);
        assert!(
            (BODY_BYTES - 40..=BODY_BYTES).contains(&body.len()),
            "{}",
            body.len()
        );
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["type"], "bench.event");
        assert_eq!(v["data"]["seq"], 0);
        assert_eq!(v["data"]["sent_ns"], 123);
        let next: serde_json::Value = serde_json::from_slice(&payload.next(5)).unwrap();
        assert_eq!(next["data"]["seq"], 1);

        let order = Payload::order_v1().next(7);
        assert!((BODY_BYTES - 40..=BODY_BYTES).contains(&order.len()));
        let v: serde_json::Value = serde_json::from_slice(&order).unwrap();
        assert_eq!(v["type"], "order.created");
        assert_eq!(v["data"]["customer_name"], "Ada Lovelace");
        assert_eq!(v["data"]["sent_ns"], 7);

        let contract = Payload::contract();
        contract.next(1);
        let event = contract.next(9);
        assert!((BODY_BYTES - 40..=BODY_BYTES).contains(&event.len()));
        let v: serde_json::Value = serde_json::from_slice(&event).unwrap();
        assert_eq!(v["type"], CONTRACT_EVENT_TYPE);
        assert_eq!(v["data"].as_object().unwrap().len(), 20);
        assert_eq!(v["data"]["lines"][1]["qty"], 2);
        assert_eq!(v["data"]["seq"], 1);
        assert_eq!(v["data"]["sent_ns"], 9);

        let routed = Payload::for_consumers(1_000);
        for (seq, uid, to) in [(0, "c-0", 0), (1, "c-1", 1)] {
            let event = routed.next(3);
            assert!((BODY_BYTES - 40..=BODY_BYTES).contains(&event.len()));
            let v: serde_json::Value = serde_json::from_slice(&event).unwrap();
            assert_eq!(v["consumer"], uid);
            assert_eq!(v["data"]["to"], to);
            assert_eq!(v["data"]["seq"], seq);
        }
        for _ in 2..1_000 {
            routed.next(0);
        }
        let wrapped: serde_json::Value = serde_json::from_slice(&routed.next(0)).unwrap();
        assert_eq!(wrapped["consumer"], "c-0");
        assert!(serde_json::from_slice::<serde_json::Value>(&Payload::new().next(0)).unwrap()
            ["consumer"]
            .is_null());
    }
}
