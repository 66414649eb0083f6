//! Phases 10 and 11: fan-out of every event to [`ENDPOINTS`] endpoints of
//! one tenant, all at one in-process receiver under distinct paths, at the
//! same open-loop load, without and then with batching on every endpoint.
//!
//! The receiver takes a single event or a JSON array of them (a batch) and
//! counts each element as one delivery, keyed by path and sequence number;
//! latency runs from the send time stamped in the event to its arrival.
//! The encryption and routing phases (`crate::security`) reuse the
//! receiver and the measured run ([`Bench::deliveries_run`]); an event
//! addressed to consumer `k` (`data.to`) must arrive under a path ending
//! `/c<k>`, or it counts as misrouted.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::harness::RunningGateway;
use crate::load::{self, Payload, Target};
use crate::report::Row;
use crate::stats::{Clock, Latencies, millis, per_second, thousands};
use crate::usage::Meter;
use crate::{Bench, PHASES};

/// Endpoints every event fans out to.
pub const ENDPOINTS: usize = 100;
/// Events per second posted, open loop.
pub const RATE: u32 = 50;
/// How long events are posted.
const POSTING: Duration = Duration::from_secs(5);
/// Longest wait for every delivery after posting stops.
const DRAIN: Duration = Duration::from_secs(8);
/// The batching of every endpoint in phase 11.
const BATCH_EVENTS: u64 = 50;
const BATCH_WAIT_MS: u64 = 20;

/// An open-loop load: events per second, for how long, and the longest
/// wait for every delivery after posting stops.
pub(crate) struct Schedule {
    pub rate: u32,
    pub posting: Duration,
    pub drain: Duration,
}

/// What one delivery run measured.
pub(crate) struct Run {
    /// Deliveries (events at endpoints) per second, first send to last arrival.
    pub rate: f64,
    pub p99: Option<Duration>,
    /// Deliveries of events addressed to a consumer (`data.to`), and those
    /// of them that arrived at another consumer's endpoint.
    pub checked: u64,
    pub misrouted: u64,
}

impl Bench {
    /// Phases 10 and 11 against `gateway`; prints the ratios between them.
    pub async fn fan_out(&mut self, gateway: &RunningGateway) -> anyhow::Result<()> {
        let receiver = FanoutReceiver::start(self.clock).await?;
        eprintln!("[10/{PHASES}] fan-out to {ENDPOINTS} endpoints, no batching");
        let plain = self
            .fan_out_run(gateway, &receiver, "bench-fanout", None)
            .await?;
        eprintln!("[11/{PHASES}] fan-out to {ENDPOINTS} endpoints, batched");
        let batch = json!({"max_events": BATCH_EVENTS, "max_wait_ms": BATCH_WAIT_MS});
        let batched = self
            .fan_out_run(gateway, &receiver, "bench-fanout-batched", Some(batch))
            .await?;
        receiver.stop().await?;
        let r = &mut self.report;
        r.ratio(
            "fan-out deliveries/s, batched / unbatched",
            batched.rate,
            plain.rate,
        );
        let secs = |p: Option<Duration>| p.map_or(0.0, |d| d.as_secs_f64());
        r.ratio(
            "fan-out p99 latency, batched / unbatched",
            secs(batched.p99),
            secs(plain.p99),
        );
        Ok(())
    }

    /// One tenant with [`ENDPOINTS`] endpoints (each with `batch`, when
    /// given), [`RATE`] events/s for [`POSTING`], then a wait for every delivery.
    async fn fan_out_run(
        &mut self,
        gateway: &RunningGateway,
        receiver: &FanoutReceiver,
        tenant: &str,
        batch: Option<Value>,
    ) -> anyhow::Result<Run> {
        let key = gateway.create_tenant(tenant).await?;
        for n in 0..ENDPOINTS {
            let mut spec = json!({"url": format!("{}/{n}", receiver.base)});
            if let Some(batch) = &batch {
                spec["batch"] = batch.clone();
            }
            gateway.create_endpoint_with(&key, spec).await?;
        }
        let target = self.target(&gateway.events_url(), Some(key))?;
        let label = match batch {
            None => format!("10 fan-out x{ENDPOINTS}, no batching"),
            Some(_) => format!("11 fan-out x{ENDPOINTS}, batch {BATCH_EVENTS}/{BATCH_WAIT_MS} ms"),
        };
        let schedule = Schedule {
            rate: RATE,
            posting: POSTING,
            drain: DRAIN,
        };
        let payload = Arc::new(Payload::new());
        self.deliveries_run(
            label,
            &target,
            payload,
            receiver,
            ENDPOINTS as u64,
            &schedule,
        )
        .await
    }

    /// Posts `payload` events to `target` on `schedule`, each to make
    /// `per_event` deliveries at `receiver`, then waits for them all: one
    /// row labelled `label`, with notes for failures, missing, duplicate,
    /// malformed and surplus deliveries.
    pub(crate) async fn deliveries_run(
        &mut self,
        label: String,
        target: &Target,
        payload: Arc<Payload>,
        receiver: &FanoutReceiver,
        per_event: u64,
        schedule: &Schedule,
    ) -> anyhow::Result<Run> {
        let meter = Meter::start(&mut self.conn).await?;
        receiver.take();
        let started = Instant::now();
        let load = load::fixed_rate(
            target,
            &payload,
            self.clock,
            schedule.rate,
            schedule.posting,
        )
        .await;
        let expected = load.ok * per_event;
        let complete = receiver.wait_for(expected, schedule.drain).await;
        let mut got = receiver.take();
        let span = got.last_at.map_or(Duration::ZERO, |at| at - started);
        let delivered = got.seen.len() as u64;
        let rate = per_second(delivered, span);
        let p99 = got.latencies.quantile(0.99);
        self.report.row(Row {
            label: label.clone(),
            rate: format!("{} del/s", thousands(rate)),
            p50: millis(got.latencies.quantile(0.50)),
            p99: millis(p99),
            usage: meter.stop(&mut self.conn).await?,
            events: delivered,
            note: format!(
                "send->receive; {} of {} deliveries in {} requests ({:.1} per request), \
                 {} ev/s posted",
                thousands(delivered as f64),
                thousands(expected as f64),
                thousands(got.requests as f64),
                delivered as f64 / got.requests.max(1) as f64,
                thousands(per_second(load.ok, load.elapsed)),
            ),
        });
        self.note_failures(&label, &load);
        if !complete {
            self.report.note(format!(
                "{label}: only {} of {} deliveries arrived within {:?} after posting",
                thousands(delivered as f64),
                thousands(expected as f64),
                schedule.drain,
            ));
        } else if delivered > expected {
            self.report.note(format!(
                "{label}: {} deliveries arrived, {} expected",
                thousands(delivered as f64),
                thousands(expected as f64),
            ));
        }
        if got.duplicates > 0 || got.malformed > 0 {
            self.report.note(format!(
                "{label}: {} duplicate and {} malformed deliveries",
                got.duplicates, got.malformed
            ));
        }
        Ok(Run {
            rate,
            p99,
            checked: got.checked,
            misrouted: got.misrouted,
        })
    }
}

/// What arrived since the last [`FanoutReceiver::take`].
#[derive(Default)]
pub(crate) struct Arrivals {
    latencies: Latencies,
    requests: u64,
    duplicates: u64,
    malformed: u64,
    /// Deliveries of events addressed to consumer `k` (`data.to`), and
    /// those of them not at a path ending `/c<k>`.
    pub checked: u64,
    pub misrouted: u64,
    last_at: Option<Instant>,
    /// Path and sequence number of every delivery seen.
    seen: HashSet<(String, u64)>,
}

struct Inner {
    clock: Clock,
    // A std mutex: held for a few inserts per request, never across an await.
    arrivals: Mutex<Arrivals>,
    /// Distinct deliveries since the last take, readable without the lock.
    unique: AtomicU64,
}

#[derive(Deserialize)]
struct Delivery {
    data: Stamp,
}

#[derive(Deserialize)]
struct Stamp {
    seq: u64,
    sent_ns: u64,
    /// The consumer it is for ([`Payload::for_consumers`]).
    #[serde(default)]
    to: Option<u64>,
}

/// A request body: one event, or a batch of them.
#[derive(Deserialize)]
#[serde(untagged)]
enum Body {
    One(Delivery),
    Batch(Vec<Delivery>),
}

/// Answers `200` to every well-formed `POST` under `/fanout/`.
pub(crate) struct FanoutReceiver {
    /// `http://127.0.0.1:<port>/fanout`, the prefix of every endpoint URL.
    pub base: String,
    inner: Arc<Inner>,
    shutdown: CancellationToken,
    server: JoinHandle<std::io::Result<()>>,
}

impl FanoutReceiver {
    pub(crate) async fn start(clock: Clock) -> anyhow::Result<FanoutReceiver> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}/fanout", listener.local_addr()?);
        let inner = Arc::new(Inner {
            clock,
            arrivals: Mutex::default(),
            unique: AtomicU64::new(0),
        });
        let app = Router::new().fallback(hook).with_state(inner.clone());
        let shutdown = CancellationToken::new();
        let server = tokio::spawn(
            axum::serve(listener, app)
                .with_graceful_shutdown(shutdown.clone().cancelled_owned())
                .into_future(),
        );
        Ok(FanoutReceiver {
            base,
            inner,
            shutdown,
            server,
        })
    }

    /// Polls until `count` distinct deliveries arrived since the last take;
    /// `false` when `timeout` passed first.
    async fn wait_for(&self, count: u64, timeout: Duration) -> bool {
        let started = Instant::now();
        while self.inner.unique.load(Ordering::Relaxed) < count {
            if started.elapsed() > timeout {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        true
    }

    /// Everything recorded so far; the receiver starts over empty.
    pub(crate) fn take(&self) -> Arrivals {
        let mut arrivals = self.inner.arrivals.lock().expect("receiver lock poisoned");
        self.inner.unique.store(0, Ordering::Relaxed);
        std::mem::take(&mut *arrivals)
    }

    pub(crate) async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        self.server.await??;
        Ok(())
    }
}

async fn hook(State(inner): State<Arc<Inner>>, uri: Uri, body: Bytes) -> StatusCode {
    let now = Instant::now();
    let arrived_ns = inner.clock.ns_at(now);
    let parsed = serde_json::from_slice::<Body>(&body);
    let mut arrivals = inner.arrivals.lock().expect("receiver lock poisoned");
    arrivals.requests += 1;
    let events = match parsed {
        Ok(Body::One(one)) => vec![one],
        Ok(Body::Batch(batch)) => batch,
        Err(_) => {
            arrivals.malformed += 1;
            return StatusCode::BAD_REQUEST;
        }
    };
    for Delivery { data } in events {
        if let Some(k) = data.to {
            arrivals.checked += 1;
            let at = uri.path().rsplit_once("/c").map(|(_, k)| k.parse::<u64>());
            if !matches!(at, Some(Ok(at)) if at == k) {
                arrivals.misrouted += 1;
            }
        }
        if arrivals.seen.insert((uri.path().to_string(), data.seq)) {
            arrivals
                .latencies
                .record_ns(arrived_ns.saturating_sub(data.sent_ns));
            arrivals.last_at = Some(now);
            inner.unique.fetch_add(1, Ordering::Relaxed);
        } else {
            arrivals.duplicates += 1;
        }
    }
    StatusCode::OK
}
