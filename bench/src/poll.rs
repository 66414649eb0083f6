//! Phases 14 to 16: the pull channel beside push delivery, in the same
//! gateway. A tenant with one poll-mode endpoint gets [`FETCHED`] events
//! (batch ingest), and once they are all in its channel they are read back
//! one page of `limit=100` after another on one client: events fetched per
//! second (14). Then [`WAKES`] times a long poll (`wait_ms=5000`) waits at
//! the end of the channel while one event is posted: from the post's send
//! to the poll's answer (15). Phase 16 is the same single events pushed to
//! an endpoint of another tenant at the benchmark's receiver: from the
//! post's send to the arrival (the receiver's clock).

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::Bench;
use crate::harness::RunningGateway;
use crate::receiver::Receiver;
use crate::report::Row;
use crate::stats::{Latencies, millis, per_second, thousands};
use crate::usage::Meter;

/// Events read back in phase 14.
const FETCHED: u64 = 20_000;
/// Events per batch ingest request while loading phase 14.
const BATCH: u64 = 1_000;
/// Single events timed in phases 15 and 16.
const WAKES: u64 = 100;
/// Longest wait for the channel to hold every event.
const FILL_TIMEOUT: Duration = Duration::from_secs(120);

impl Bench {
    /// Phases 14, 15 and 16, and the ratio of long-poll wake-up to push.
    pub async fn poll(
        &mut self,
        gateway: &RunningGateway,
        receiver: &Receiver,
    ) -> anyhow::Result<()> {
        let key = gateway.create_tenant("bench-poll").await?;
        let endpoint = self.create(gateway, &key, json!({"mode": "poll"})).await?;
        self.fill(gateway, &key, &endpoint).await?;
        self.fetch(gateway, &key, &endpoint).await?;
        let wake = self.wake(gateway, &key, &endpoint).await?;
        let push_key = gateway.create_tenant("bench-push-single").await?;
        self.create(gateway, &push_key, json!({"url": receiver.url}))
            .await?;
        let push = self.push(gateway, &push_key, receiver).await?;
        self.report
            .ratio("long-poll wake-up / push delivery (p50)", wake, push);
        Ok(())
    }

    async fn create(
        &self,
        gateway: &RunningGateway,
        key: &str,
        spec: Value,
    ) -> anyhow::Result<String> {
        let created: Value = self
            .http
            .post(format!("{}/v1/endpoints", gateway.base))
            .bearer_auth(key)
            .json(&spec)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        created["id"]
            .as_str()
            .map(str::to_string)
            .context("no endpoint id")
    }

    async fn post_batch(
        &self,
        gateway: &RunningGateway,
        key: &str,
        from: u64,
        n: u64,
    ) -> anyhow::Result<()> {
        let events: Vec<Value> = (from..from + n)
            .map(|seq| json!({"type": "bench.poll", "data": {"seq": seq, "sent_ns": self.clock.now_ns(), "pad": "x".repeat(800)}}))
            .collect();
        self.http
            .post(format!("{}/v1/events/batch", gateway.base))
            .bearer_auth(key)
            .json(&json!({"events": events}))
            .send()
            .await?
            .error_for_status()?;
        Ok(())
    }

    async fn page(
        &self,
        gateway: &RunningGateway,
        key: &str,
        endpoint: &str,
        query: &str,
    ) -> anyhow::Result<Value> {
        let url = format!("{}/v1/endpoints/{endpoint}/poll{query}", gateway.base);
        Ok(self
            .http
            .get(url)
            .bearer_auth(key)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?)
    }

    /// Loads [`FETCHED`] events and waits until the channel holds them all.
    async fn fill(
        &mut self,
        gateway: &RunningGateway,
        key: &str,
        endpoint: &str,
    ) -> anyhow::Result<()> {
        for from in (0..FETCHED).step_by(BATCH as usize) {
            self.post_batch(gateway, key, from, BATCH).await?;
        }
        let started = Instant::now();
        let mut held = 0;
        let mut cursor = "0".to_string();
        while held < FETCHED {
            if started.elapsed() > FILL_TIMEOUT {
                bail!("the poll channel held {held} of {FETCHED} events after {FILL_TIMEOUT:?}");
            }
            let page = self
                .page(
                    gateway,
                    key,
                    endpoint,
                    &format!("?cursor={cursor}&limit=1000"),
                )
                .await?;
            let n = page["data"].as_array().map_or(0, Vec::len) as u64;
            held += n;
            cursor = page["next_cursor"].as_str().unwrap_or("0").to_string();
            if n == 0 {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        Ok(())
    }

    /// Phase 14: every event read back, `limit=100` per page, one client.
    async fn fetch(
        &mut self,
        gateway: &RunningGateway,
        key: &str,
        endpoint: &str,
    ) -> anyhow::Result<()> {
        let meter = Meter::start(&mut self.conn).await?;
        let mut pages = Latencies::default();
        let mut cursor = "0".to_string();
        let mut fetched = 0;
        let started = Instant::now();
        loop {
            let at = Instant::now();
            let page = self
                .page(
                    gateway,
                    key,
                    endpoint,
                    &format!("?cursor={cursor}&limit=100"),
                )
                .await?;
            pages.record(at.elapsed());
            let n = page["data"].as_array().map_or(0, Vec::len) as u64;
            if n == 0 {
                break;
            }
            fetched += n;
            cursor = page["next_cursor"]
                .as_str()
                .context("no next_cursor")?
                .to_string();
        }
        let elapsed = started.elapsed();
        if fetched != FETCHED {
            bail!("phase 14 fetched {fetched} events, not {FETCHED}");
        }
        self.report.row(Row {
            label: "14 poll channel fetch, limit=100".into(),
            rate: format!("{} ev/s", thousands(per_second(fetched, elapsed))),
            p50: millis(pages.quantile(0.50)),
            p99: millis(pages.quantile(0.99)),
            usage: meter.stop(&mut self.conn).await?,
            events: fetched,
            note: format!(
                "{} pages of 100, one client; latency per page",
                fetched / 100
            ),
        });
        Ok(())
    }

    /// Phase 15: a long poll at the channel's end, woken by one new event;
    /// the median wake-up, in seconds.
    async fn wake(
        &mut self,
        gateway: &RunningGateway,
        key: &str,
        endpoint: &str,
    ) -> anyhow::Result<f64> {
        let end = self
            .page(gateway, key, endpoint, "?cursor=0&limit=1")
            .await?;
        let mut cursor = end["next_cursor"]
            .as_str()
            .context("no cursor")?
            .to_string();
        loop {
            let page = self
                .page(
                    gateway,
                    key,
                    endpoint,
                    &format!("?cursor={cursor}&limit=1000"),
                )
                .await?;
            match page["data"].as_array().map_or(0, Vec::len) {
                0 => break,
                _ => {
                    cursor = page["next_cursor"]
                        .as_str()
                        .context("no cursor")?
                        .to_string()
                }
            }
        }
        let meter = Meter::start(&mut self.conn).await?;
        let mut wakes = Latencies::default();
        for seq in 0..WAKES {
            let url = format!(
                "{}/v1/endpoints/{endpoint}/poll?cursor={cursor}&wait_ms=5000",
                gateway.base
            );
            let waiting = tokio::spawn(self.http.get(url).bearer_auth(key).send());
            tokio::time::sleep(Duration::from_millis(30)).await;
            let sent = Instant::now();
            self.post_batch(gateway, key, FETCHED + seq, 1).await?;
            let page: Value = waiting.await??.error_for_status()?.json().await?;
            wakes.record(sent.elapsed());
            if page["data"].as_array().map_or(0, Vec::len) != 1 {
                bail!("phase 15: the long poll answered {page}");
            }
            cursor = page["next_cursor"]
                .as_str()
                .context("no cursor")?
                .to_string();
        }
        let p50 = wakes.quantile(0.50);
        self.report.row(Row {
            label: "15 long-poll wake-up".into(),
            rate: format!("{WAKES} events"),
            p50: millis(p50),
            p99: millis(wakes.quantile(0.99)),
            usage: meter.stop(&mut self.conn).await?,
            events: WAKES,
            note: "from the event's post to the waiting poll's answer".into(),
        });
        Ok(p50.map_or(0.0, |d| d.as_secs_f64()))
    }

    /// Phase 16: the same single events pushed; the median latency, in seconds.
    async fn push(
        &mut self,
        gateway: &RunningGateway,
        key: &str,
        receiver: &Receiver,
    ) -> anyhow::Result<f64> {
        receiver.take();
        let meter = Meter::start(&mut self.conn).await?;
        for seq in 0..WAKES {
            self.post_batch(gateway, key, seq, 1).await?;
            if !receiver.wait_for(seq + 1, Duration::from_secs(10)).await {
                bail!("phase 16: event {seq} was not pushed within 10 s");
            }
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
        let mut recorded = receiver.take();
        let p50 = recorded.latencies.quantile(0.50);
        self.report.row(Row {
            label: "16 push delivery, one at a time".into(),
            rate: format!("{WAKES} events"),
            p50: millis(p50),
            p99: millis(recorded.latencies.quantile(0.99)),
            usage: meter.stop(&mut self.conn).await?,
            events: WAKES,
            note: "from the event's post to its arrival at the receiver".into(),
        });
        Ok(p50.map_or(0.0, |d| d.as_secs_f64()))
    }
}
