//! The end-to-end phases: events posted to the gateway, fanned out and
//! delivered to the in-process [`Receiver`], timed from the send time
//! stamped in each event to its first arrival.
//!
//! - Phase 4 posts closed-loop for the measured time and then waits for
//!   every accepted event; its rate is first arrivals over the time from
//!   the first send to the last arrival, so a backlog left when ingest
//!   stops counts against it. Phases 8 and 9 (`crate::plugins`) run the
//!   same measurement without and with a plugin chain.
//! - Phase 5 posts open-loop at a fixed rate, well under capacity: the
//!   latency a producer sees on a healthy gateway.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::harness::{self, RunningGateway};
use crate::load::{self, LoadReport, Payload, Target};
use crate::receiver::{Receiver, Recorded};
use crate::report::Row;
use crate::stats::{millis, per_second, thousands};
use crate::usage::Meter;
use crate::{Bench, DRAIN_TIMEOUT, FIXED_RATE, TARGET_DELIVERED_PER_S, TARGET_FIXED_RATE_P99};

/// What a saturated run delivered.
pub struct Saturated {
    /// First arrivals per second, from the first send to the last arrival.
    pub delivered: f64,
    /// Whether every accepted event arrived within [`DRAIN_TIMEOUT`].
    pub complete: bool,
}

impl Bench {
    /// Phase 4: closed-loop ingest for the measured time, then waits for
    /// every accepted event at the receiver; judged against the delivered
    /// rate target.
    pub async fn end_to_end(
        &mut self,
        target: &Target,
        receiver: &Receiver,
        gateway: &RunningGateway,
        ingest_rate: f64,
    ) -> anyhow::Result<()> {
        let payload = self.payload.clone();
        let run = self
            .saturated(
                "4 end-to-end, ingest + delivery",
                target,
                &payload,
                receiver,
                gateway,
            )
            .await?;
        let r = &mut self.report;
        r.ratio(
            "end-to-end delivered / gateway ingest alone",
            run.delivered,
            ingest_rate,
        );
        r.verdict(
            &format!(
                "delivered events/s >= {}",
                thousands(TARGET_DELIVERED_PER_S)
            ),
            thousands(run.delivered),
            run.complete && run.delivered >= TARGET_DELIVERED_PER_S,
        );
        Ok(())
    }

    /// A saturated end-to-end run of `payload` events (phases 4, 8 and 9):
    /// closed-loop ingest for the measured time, then a wait for every
    /// accepted event at the receiver. The delivered rate is first arrivals
    /// over the time from the first send to the last arrival.
    pub async fn saturated(
        &mut self,
        label: &str,
        target: &Target,
        payload: &Arc<Payload>,
        receiver: &Receiver,
        gateway: &RunningGateway,
    ) -> anyhow::Result<Saturated> {
        let meter = Meter::start(&mut self.conn).await?;
        let started = Instant::now();
        let mut load = load::closed_loop(
            target,
            payload,
            self.clock,
            self.concurrency,
            Duration::ZERO,
            self.measure,
        )
        .await;
        let during = receiver.arrived();
        let backlog = harness::backlog(&mut self.conn, gateway.partitions).await?;
        self.report.note(format!(
            "{label}: while ingest ran ({:.1} s), {} events arrived ({} ev/s); \
             then {} events waited for fan-out and {} tasks for delivery",
            load.elapsed.as_secs_f64(),
            thousands(during as f64),
            thousands(per_second(during, load.elapsed)),
            thousands(backlog.fanout as f64),
            thousands(backlog.delivery as f64),
        ));
        let complete = receiver.wait_for(load.ok, DRAIN_TIMEOUT).await;
        let mut got = receiver.take();
        let span = got.last_at.map_or(Duration::ZERO, |at| at - started);
        let delivered = per_second(got.unique(), span);
        self.report.row(Row {
            label: label.to_string(),
            rate: format!("{} ev/s", thousands(delivered)),
            p50: millis(got.latencies.quantile(0.50)),
            p99: millis(got.latencies.quantile(0.99)),
            usage: meter.stop(&mut self.conn).await?,
            events: got.unique(),
            note: format!(
                "send->receive; {} delivered, ingest {} ev/s (p99 {})",
                thousands(got.unique() as f64),
                thousands(per_second(load.ok, load.elapsed)),
                millis(load.latencies.quantile(0.99))
            ),
        });
        self.note_outcome(label, &load, &got, complete);
        Ok(Saturated {
            delivered,
            complete,
        })
    }

    /// Phase 5: an open-loop 1,000 events/s; p99 from scheduled send to arrival.
    pub async fn fixed_rate(&mut self, target: &Target, receiver: &Receiver) -> anyhow::Result<()> {
        let meter = Meter::start(&mut self.conn).await?;
        let mut load =
            load::fixed_rate(target, &self.payload, self.clock, FIXED_RATE, self.measure).await;
        let complete = receiver.wait_for(load.ok, DRAIN_TIMEOUT).await;
        let mut got = receiver.take();
        let label = format!("5 end-to-end at {} ev/s", thousands(f64::from(FIXED_RATE)));
        let p99 = got.latencies.quantile(0.99);
        self.report.row(Row {
            label: label.clone(),
            rate: format!("{} ev/s", thousands(per_second(load.ok, load.elapsed))),
            p50: millis(got.latencies.quantile(0.50)),
            p99: millis(p99),
            usage: meter.stop(&mut self.conn).await?,
            events: got.unique(),
            note: format!(
                "send->receive; {} delivered, max {}; ingest p99 {}",
                thousands(got.unique() as f64),
                millis(got.latencies.quantile(1.0)),
                millis(load.latencies.quantile(0.99))
            ),
        });
        self.report.verdict(
            &format!(
                "end-to-end p99 at {} ev/s < {} ms",
                thousands(f64::from(FIXED_RATE)),
                TARGET_FIXED_RATE_P99.as_millis()
            ),
            millis(p99),
            complete && p99.is_some_and(|p| p < TARGET_FIXED_RATE_P99),
        );
        self.note_outcome(&label, &load, &got, complete);
        Ok(())
    }

    fn note_outcome(&mut self, label: &str, load: &LoadReport, got: &Recorded, complete: bool) {
        self.note_failures(label, load);
        if !complete {
            self.report.note(format!(
                "{label}: only {} of {} accepted events arrived within {DRAIN_TIMEOUT:?}",
                got.unique(),
                load.ok
            ));
        }
        if got.duplicates > 0 || got.malformed > 0 {
            self.report.note(format!(
                "{label}: {} duplicate and {} malformed deliveries",
                got.duplicates, got.malformed
            ));
        }
    }
}
