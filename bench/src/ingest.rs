//! Phases 1 to 3: the Redis ceiling (pipelined `XADD`), the HTTP ceiling
//! (a bare axum handler doing one `XADD` per request), and the gateway's
//! own ingest, with their ratios to each other.

use crate::harness::RunningGateway;
use crate::paired::Phase;
use crate::report::Row;
use crate::stats::{per_second, thousands};
use crate::usage::Meter;
use crate::{Bench, TARGET_INGEST_RATIO, baseline};

impl Bench {
    /// Phase 1: pipelined `XADD`s straight to Redis; returns events/s.
    pub async fn raw(&mut self) -> anyhow::Result<f64> {
        let meter = Meter::start(&mut self.conn).await?;
        let raw =
            baseline::raw_xadd(&mut self.conn, &self.payload, self.clock, self.measure).await?;
        let rate = per_second(raw.events, raw.elapsed);
        self.report.row(Row {
            label: format!(
                "1 raw XADD, pipelined x{} (1 connection)",
                baseline::RAW_BATCH
            ),
            rate: format!("{} ev/s", thousands(rate)),
            p50: "-".into(),
            p99: "-".into(),
            usage: meter.stop(&mut self.conn).await?,
            events: raw.events,
            note: format!("{} events", thousands(raw.events as f64)),
        });
        Ok(rate)
    }

    /// Phases 2 and 3, paired (2, 3, 3, 2), and their ratios to each other
    /// and to phase 1's `raw_rate`, judged against the target; answers
    /// phase 3's rate.
    pub async fn ingest(
        &mut self,
        gateway: &RunningGateway,
        redis_url: &str,
        raw_rate: f64,
    ) -> anyhow::Result<f64> {
        let bare = baseline::BareHandler::start(redis_url).await?;
        let key = gateway.create_tenant("bench-ingest").await?;
        let phases = [
            Phase::new(
                2,
                "bare axum handler + 1 XADD",
                "req/s",
                self.target(&bare.url, None)?,
            ),
            Phase::new(
                3,
                "gateway POST /v1/events",
                "ev/s",
                self.target(&gateway.events_url(), Some(key))?,
            ),
        ];
        let payload = self.payload.clone();
        let [bare_rate, ingest_rate] = self.paired(phases, &payload, gateway).await?;
        bare.stop().await?;
        let r = &mut self.report;
        r.ratio("bare handler / raw XADD", bare_rate, raw_rate);
        r.ratio("gateway ingest / raw XADD", ingest_rate, raw_rate);
        let ratio = r.ratio("gateway ingest / bare handler", ingest_rate, bare_rate);
        r.verdict(
            &format!("gateway ingest / bare handler >= {TARGET_INGEST_RATIO:.2}x"),
            format!("{ratio:.2}x"),
            ratio >= TARGET_INGEST_RATIO,
        );
        Ok(ingest_rate)
    }
}
