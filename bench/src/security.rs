//! Phases 17 to 24 (issue 14): what encryption at rest and routing events
//! by consumer cost, each side by side with the gateway doing without.
//!
//! - 17 and 18: closed-loop ingest (as phase 3) for two tenants of the same
//!   shape (no endpoint), with encryption off (`sealed::install(&[])`) and
//!   on (one fixed key), paired 17, 18, 18, 17 with the key ring set before
//!   each run ([`Phase::before_each`]).
//! - 19 and 20: open-loop at [`SCHEDULE`] to one endpoint of a fresh tenant
//!   each, encryption off then on (the tenant and its endpoint made after
//!   the switch, so the "on" endpoint's secret is sealed too): deliveries
//!   per second and send-to-receive latency.
//! - 21 and 22: closed-loop ingest for two tenants whose every event makes
//!   exactly one delivery: one broadcasts (one endpoint, events naming no
//!   consumer), the other routes ([`CONSUMERS`] consumers, each owning one
//!   endpoint, every event naming one of them in turn); paired, each run
//!   followed by a wait for every delivery it made.
//! - 23 and 24: open-loop at [`SCHEDULE`] to the same two tenants.
//!
//! Consumer `k`'s endpoint is `/fanout/c<k>` at the [`FanoutReceiver`] and
//! its events carry `data.to = k`, so the receiver counts every routed
//! delivery that arrived elsewhere. Before measuring, an event stored with
//! the key installed must be sealed in Redis and one stored without it
//! must not be, and an event naming a consumer the tenant does not have
//! must be refused, or the run stops. Encryption is left off.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use gateway::model::sealed;
use redis::streams::StreamRangeReply;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::task::JoinSet;

use crate::fanout::{FanoutReceiver, Schedule};
use crate::harness::RunningGateway;
use crate::load::{Payload, consumer_uid};
use crate::paired::Phase;
use crate::stats::thousands;
use crate::{Bench, PHASES};

/// Targets: the share of throughput left with encryption on, and with
/// every event routed to one consumer rather than broadcast.
const TARGET_SEALED_RATIO: f64 = 0.90;
const TARGET_ROUTED_RATIO: f64 = 0.95;
/// The key of the encrypted runs: fixed, for this run's own Redis only.
const KEY: [u8; 32] = [0x5e; 32];
/// How a sealed value starts (`crate::model::sealed` in the gateway).
const SEALED_PREFIX: &str = "gwe1.";
/// Consumers of the routing tenant, each owning one endpoint.
const CONSUMERS: u64 = 1_000;
/// API calls in flight while making them.
const SETUP_PARALLEL: u64 = 16;
/// The open-loop load of phases 19, 20, 23 and 24.
const SCHEDULE: Schedule = Schedule {
    rate: 2_000,
    posting: Duration::from_secs(5),
    drain: Duration::from_secs(15),
};
/// Longest wait for every delivery after a run, before the next one.
const DELIVERED_TIMEOUT: Duration = Duration::from_secs(60);

/// A phase of 19 and 20: its number, what it measures, the key-ring
/// setting it runs with, and the name of its tenant and endpoint path.
type SealedSide = (u8, &'static str, fn(), &'static str);

fn encryption_off() {
    sealed::install(&[]);
}

fn encryption_on() {
    sealed::install(&[KEY]);
}

impl Bench {
    /// Phases 17 to 24 against `gateway`, their ratios and targets.
    pub async fn security(&mut self, gateway: &RunningGateway) -> anyhow::Result<()> {
        self.sealed_ingest(gateway).await?;
        let receiver = FanoutReceiver::start(self.clock).await?;
        let sealed = self.sealed_delivery(gateway, &receiver).await;
        encryption_off();
        sealed?;
        self.routing(gateway, &receiver).await?;
        receiver.stop().await
    }

    /// Phases 17 and 18.
    async fn sealed_ingest(&mut self, gateway: &RunningGateway) -> anyhow::Result<()> {
        let plain = gateway.create_tenant("bench-sealed-off").await?;
        let sealed = gateway.create_tenant("bench-sealed-on").await?;
        self.check_sealing(gateway, &plain, &sealed).await?;
        let url = gateway.events_url();
        let phases = [
            Phase::new(
                17,
                "ingest, encryption off",
                "ev/s",
                self.target(&url, Some(plain))?,
            )
            .before_each(encryption_off),
            Phase::new(
                18,
                "ingest, encrypted at rest",
                "ev/s",
                self.target(&url, Some(sealed))?,
            )
            .before_each(encryption_on),
        ];
        let payload = self.payload.clone();
        let [off, on] = self.paired(phases, &payload, gateway).await?;
        encryption_off();
        self.judge("ingest, encrypted / not", on, off, TARGET_SEALED_RATIO);
        Ok(())
    }

    /// An event stored with the key installed is sealed in Redis, and one
    /// stored without it is not; an error says which was wrong.
    async fn check_sealing(
        &mut self,
        gateway: &RunningGateway,
        plain: &str,
        sealed: &str,
    ) -> anyhow::Result<()> {
        let cases: [(fn(), &str, bool); 2] = [
            (encryption_on, sealed, true),
            (encryption_off, plain, false),
        ];
        for (setup, key, want_sealed) in cases {
            setup();
            let event = self.payload.next(self.clock.ns_at(Instant::now()));
            let (status, text) = self.post_event(&gateway.events_url(), key, event).await?;
            if status != StatusCode::ACCEPTED {
                bail!("an event was answered {status}, not 202 Accepted: {text}");
            }
            let answer: Value = serde_json::from_str(&text)?;
            let id = answer["id"].as_str().context("no id in the 202 answer")?;
            let stored = self.stored_body(id).await?;
            let is_sealed = stored.starts_with(SEALED_PREFIX) && !stored.contains("sent_ns");
            if is_sealed != want_sealed {
                let state = if want_sealed { "on" } else { "off" };
                bail!(
                    "with encryption {state}, event {id} was stored as {}...",
                    stored.chars().take(40).collect::<String>()
                );
            }
        }
        Ok(())
    }

    /// The body field of event `id`'s ingest entry, as Redis holds it.
    async fn stored_body(&mut self, id: &str) -> anyhow::Result<String> {
        let (p, entry) =
            gateway::model::entry_of_event(id).with_context(|| format!("event id {id}"))?;
        let reply: StreamRangeReply = redis::cmd("XRANGE")
            .arg(gateway::keys::ingest_stream(p))
            .arg(entry)
            .arg(entry)
            .query_async(&mut self.conn)
            .await?;
        reply
            .ids
            .first()
            .and_then(|e| e.get::<String>("b"))
            .with_context(|| format!("no stored body for event {id}"))
    }

    /// Phases 19 and 20.
    async fn sealed_delivery(
        &mut self,
        gateway: &RunningGateway,
        receiver: &FanoutReceiver,
    ) -> anyhow::Result<()> {
        let sides: [SealedSide; 2] = [
            (
                19,
                "end-to-end, encryption off",
                encryption_off,
                "sealed-off",
            ),
            (
                20,
                "end-to-end, encrypted at rest",
                encryption_on,
                "sealed-on",
            ),
        ];
        let mut runs = Vec::new();
        for (number, what, setup, name) in sides {
            setup();
            eprintln!(
                "[{number}/{PHASES}] {what}, {} ev/s to one endpoint",
                SCHEDULE.rate
            );
            let key = gateway.create_tenant(&format!("bench-{name}-e2e")).await?;
            let url = format!("{}/{name}", receiver.base);
            gateway
                .create_endpoint_with(&key, json!({"url": url}))
                .await?;
            let target = self.target(&gateway.events_url(), Some(key))?;
            let label = format!("{number} {what}");
            let payload = Arc::new(Payload::new());
            let run = self
                .deliveries_run(label, &target, payload, receiver, 1, &SCHEDULE)
                .await?;
            self.wait_delivered(gateway, &number.to_string(), DELIVERED_TIMEOUT)
                .await?;
            runs.push(run);
        }
        let secs = |p: Option<Duration>| p.map_or(0.0, |d| d.as_secs_f64());
        self.report.ratio(
            "end-to-end p99, encrypted / not",
            secs(runs[1].p99),
            secs(runs[0].p99),
        );
        self.judge(
            "end-to-end deliveries/s, encrypted / not",
            runs[1].rate,
            runs[0].rate,
            TARGET_SEALED_RATIO,
        );
        Ok(())
    }

    /// Phases 21 to 24.
    async fn routing(
        &mut self,
        gateway: &RunningGateway,
        receiver: &FanoutReceiver,
    ) -> anyhow::Result<()> {
        let broadcast = gateway.create_tenant("bench-broadcast").await?;
        let url = format!("{}/broadcast", receiver.base);
        gateway
            .create_endpoint_with(&broadcast, json!({"url": url}))
            .await?;
        let routed = gateway.create_tenant("bench-routed").await?;
        self.make_consumers(gateway, &routed, receiver).await?;
        let events = Arc::new(Payload::for_consumers(CONSUMERS));
        self.check_audience(gateway, &routed, &events).await?;

        let url = gateway.events_url();
        let phases = [
            Phase::new(
                21,
                "ingest, broadcast to 1 endpoint",
                "ev/s",
                self.target(&url, Some(broadcast.clone()))?,
            )
            .drained(DELIVERED_TIMEOUT),
            Phase::new(
                22,
                "ingest, routed to 1 of 1,000 consumers",
                "ev/s",
                self.target(&url, Some(routed.clone()))?,
            )
            .with_payload(events)
            .drained(DELIVERED_TIMEOUT),
        ];
        let payload = self.payload.clone();
        let [all, one] = self.paired(phases, &payload, gateway).await?;
        let got = receiver.take();
        self.note_misrouted("phases 21 and 22", got.checked, got.misrouted);
        self.judge("ingest, routed / broadcast", one, all, TARGET_ROUTED_RATIO);

        let sides = [
            (23, "end-to-end, broadcast to 1 endpoint", broadcast, None),
            (
                24,
                "end-to-end, routed to 1 of 1,000",
                routed,
                Some(CONSUMERS),
            ),
        ];
        let mut runs = Vec::new();
        for (number, what, key, consumers) in sides {
            eprintln!("[{number}/{PHASES}] {what}, {} ev/s", SCHEDULE.rate);
            let target = self.target(&gateway.events_url(), Some(key))?;
            let payload = Arc::new(consumers.map_or_else(Payload::new, Payload::for_consumers));
            let label = format!("{number} {what}");
            let run = self
                .deliveries_run(label, &target, payload, receiver, 1, &SCHEDULE)
                .await?;
            self.wait_delivered(gateway, &number.to_string(), DELIVERED_TIMEOUT)
                .await?;
            if consumers.is_some() {
                self.note_misrouted("phase 24", run.checked, run.misrouted);
            }
            runs.push(run);
        }
        let secs = |p: Option<Duration>| p.map_or(0.0, |d| d.as_secs_f64());
        self.report.ratio(
            "end-to-end p99, routed / broadcast",
            secs(runs[1].p99),
            secs(runs[0].p99),
        );
        self.judge(
            "end-to-end deliveries/s, routed / broadcast",
            runs[1].rate,
            runs[0].rate,
            TARGET_ROUTED_RATIO,
        );
        Ok(())
    }

    /// Makes the tenant's [`CONSUMERS`] consumers, each with one endpoint
    /// at `/fanout/c<k>`, [`SETUP_PARALLEL`] calls at a time; notes how
    /// long it took.
    async fn make_consumers(
        &mut self,
        gateway: &RunningGateway,
        key: &str,
        receiver: &FanoutReceiver,
    ) -> anyhow::Result<()> {
        let started = Instant::now();
        let mut lanes = JoinSet::new();
        for lane in 0..SETUP_PARALLEL {
            let (api, key, base) = (gateway.api(), key.to_string(), receiver.base.clone());
            lanes.spawn(async move {
                for k in (lane..CONSUMERS).step_by(SETUP_PARALLEL as usize) {
                    let uid = consumer_uid(k);
                    let name = format!("bench consumer {k}");
                    let made = api
                        .post("/v1/consumers", &key, json!({"uid": uid, "name": name}))
                        .await?;
                    let id = made["id"].as_str().context("no consumer id")?;
                    let spec = json!({"url": format!("{base}/c{k}"), "consumer_id": id});
                    api.post("/v1/endpoints", &key, spec).await?;
                }
                anyhow::Ok(())
            });
        }
        while let Some(done) = lanes.join_next().await {
            done??;
        }
        let took = started.elapsed().as_secs_f64();
        eprintln!(
            "made {CONSUMERS} consumers and their endpoints in {took:.1} s \
             ({SETUP_PARALLEL} calls at a time)"
        );
        self.report.note(format!(
            "phases 22 and 24: {} consumers and their endpoints were made in {took:.1} s, \
             {SETUP_PARALLEL} API calls at a time",
            thousands(CONSUMERS as f64)
        ));
        Ok(())
    }

    /// An event of `events` for the routing tenant is accepted, and one
    /// naming a consumer it does not have is refused.
    async fn check_audience(
        &self,
        gateway: &RunningGateway,
        key: &str,
        events: &Payload,
    ) -> anyhow::Result<()> {
        let url = gateway.events_url();
        let event = events.next(self.clock.ns_at(Instant::now()));
        let (status, text) = self.post_event(&url, key, event).await?;
        if status != StatusCode::ACCEPTED {
            bail!("an event for consumer c-0 was answered {status}, not 202 Accepted: {text}");
        }
        let stranger = json!({"type": "bench.event", "consumer": "c-nobody", "data": {}});
        let (status, text) = self
            .post_event(&url, key, serde_json::to_vec(&stranger)?)
            .await?;
        if status != StatusCode::UNPROCESSABLE_ENTITY {
            bail!(
                "an event for a consumer the tenant does not have was answered {status}, \
                 not 422 Unprocessable Entity: {text}"
            );
        }
        Ok(())
    }

    fn note_misrouted(&mut self, which: &str, checked: u64, misrouted: u64) {
        self.report.note(format!(
            "{which}: {} of {} deliveries routed to a consumer arrived at another \
             consumer's endpoint",
            thousands(misrouted as f64),
            thousands(checked as f64)
        ));
    }

    /// The ratio `numerator / denominator` as `name`, judged against `target`.
    fn judge(&mut self, name: &str, numerator: f64, denominator: f64, target: f64) {
        let r = &mut self.report;
        let ratio = r.ratio(name, numerator, denominator);
        r.verdict(
            &format!("{name} >= {target:.2}x"),
            format!("{ratio:.2}x"),
            ratio >= target,
        );
    }
}
