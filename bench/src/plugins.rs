//! The plugin phases: what a tenant transform costs, per call and end to
//! end, with the `schema_upgrade` guest component (`order.created` v1 to v2)
//! that `tests/build.rs` builds.
//!
//! - Phase 6 calls the component through [`PluginHost::invoke`] directly, a
//!   fresh instance per call, one call at a time on one task (one core),
//!   with a ~1 KiB `order.created` v1 event.
//! - Phases 6e and 6f start a host holding 20 plugins (20 variants of the
//!   component) and time until each has answered its first call, all 20
//!   asked for at once: compiling them all, then loading their kept code.
//! - Phases 6c and 6d call the same transform built in JavaScript and in
//!   Python (`plugins/toolchains/build`) the same way.
//! - Phases 6a and 6b time the first call of a new host (a restarted
//!   gateway): compiling the component, then loading its kept code.
//! - Phase 7 runs the same transform as native Rust on the same event:
//!   `serde_json` parse, rename and split fields, serialize.
//! - Phases 8 and 9 are saturated end-to-end runs of `order.created` v1
//!   events: to an endpoint without plugins, then to one with a chain of
//!   that one transform (uploaded with `PUT /v1/plugins/upgrade`).

use std::convert::Infallible;
use std::hint::black_box;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use gateway::config::Config;
use gateway::plugins::{
    Budget, PluginEvent, PluginHost, PluginInput, PluginTarget, Upload, Verdict,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::harness::RunningGateway;
use crate::load::Payload;
use crate::receiver::Receiver;
use crate::report::Row;
use crate::stats::{Latencies, micros, per_second, thousands};
use crate::usage::Meter;
use crate::{Bench, PHASES};

/// Target: median time of one fresh-instance call.
const TARGET_PLUGIN_P50: Duration = Duration::from_micros(50);
/// Target: median fresh-instance call of the JavaScript transform.
const TARGET_JS_P50: Duration = Duration::from_micros(400);
/// Target: median fresh-instance call of the Python transform.
const TARGET_PYTHON_P50: Duration = Duration::from_millis(2);
/// How long phases 6c and 6d wait for their component to compile.
const COMPILE_WAIT: Duration = Duration::from_secs(600);
/// Measured calls in phases 6c and 6d.
const LANGUAGE_CALLS: usize = 1_000;
/// Target: the largest share of delivered throughput a one-plugin chain may cost.
const TARGET_CHAIN_COST: f64 = 0.25;
/// Calls before the measured ones, in phases 6 and 7.
const WARMUP_CALLS: usize = 300;
/// Measured calls in phases 6 and 7.
pub const CALLS: usize = 3_000;
/// New hosts started in phases 6a and 6b.
const STARTS: usize = 10;
/// Plugins held by the host phases 6e and 6f start.
const HELD: u8 = 20;
/// New hosts started in phases 6e and 6f.
const HELD_STARTS: usize = 3;
/// The plugin's name in the tenant's registry.
const PLUGIN_NAME: &str = "upgrade";
/// The currency `schema_upgrade` gives orders without one (its default config).
const DEFAULT_CURRENCY: &str = "EUR";

/// Where `tests/build.rs` leaves the component.
fn component_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../plugins/target/wasm32-wasip2/release/schema_upgrade.wasm")
}

/// The bytes of the built `schema_upgrade` component, or an error telling
/// how to build it.
pub fn component() -> anyhow::Result<Vec<u8>> {
    let path = component_path();
    std::fs::read(&path).with_context(|| {
        format!(
            "cannot read the schema_upgrade plugin at {}: build the guest plugins first \
             with `scripts/test` or `cargo build -p gateway-tests` \
             (they need `rustup target add wasm32-wasip2`)",
            path.display()
        )
    })
}

impl Bench {
    /// Phases 6 and 7: one call of the plugin, then of the native transform;
    /// their ratio and the per-call target.
    pub async fn plugin_call(&mut self, component: Vec<u8>) -> anyhow::Result<()> {
        let host = PluginHost::new(&Config::load(None, Vec::new())?.plugins)?;
        let component = Arc::new(component);
        let sha256 = host
            .compile(component.clone())
            .await
            .map_err(|e| anyhow!("schema_upgrade does not compile: {e}"))?;
        let budget = host.default_budget();
        let input = order_input()?;
        let by_plugin = call(&host, &sha256, &component, &input, budget).await?;
        let by_plugin: Value = serde_json::from_slice(&by_plugin)?;
        let by_native: Value = serde_json::from_slice(&upgrade_native(&input.event.data)?)?;
        if by_plugin != by_native {
            bail!("the plugin and the native transform disagree:\n{by_plugin}\n{by_native}");
        }

        for _ in 0..WARMUP_CALLS {
            call(&host, &sha256, &component, &input, budget).await?;
        }
        let meter = Meter::start(&mut self.conn).await?;
        let mut latencies = Latencies::default();
        let started = Instant::now();
        for _ in 0..CALLS {
            let at = Instant::now();
            let answer = host
                .invoke("t", &sha256, load(&component), &input, budget)
                .await;
            latencies.record(at.elapsed());
            delivered(answer.result)?;
        }
        let elapsed = started.elapsed();
        let plugin_p50 = latencies.quantile(0.50);
        self.report.row(Row {
            label: "6 plugin schema_upgrade, fresh instance".into(),
            rate: format!("{} calls/s", thousands(per_second(CALLS as u64, elapsed))),
            p50: micros(plugin_p50),
            p99: micros(latencies.quantile(0.99)),
            usage: meter.stop(&mut self.conn).await?,
            events: CALLS as u64,
            note: format!(
                "PluginHost::invoke, {} B of data, {} sequential calls on one task",
                input.event.data.len(),
                thousands(CALLS as f64)
            ),
        });

        for _ in 0..WARMUP_CALLS {
            black_box(upgrade_native(black_box(&input.event.data))?);
        }
        let meter = Meter::start(&mut self.conn).await?;
        let mut native = Latencies::default();
        let started = Instant::now();
        for _ in 0..CALLS {
            let at = Instant::now();
            black_box(upgrade_native(black_box(&input.event.data))?);
            native.record(at.elapsed());
        }
        let elapsed = started.elapsed();
        let native_p50 = native.quantile(0.50);
        self.report.row(Row {
            label: "7 same transform, native Rust".into(),
            rate: format!("{} calls/s", thousands(per_second(CALLS as u64, elapsed))),
            p50: micros(native_p50),
            p99: micros(native.quantile(0.99)),
            usage: meter.stop(&mut self.conn).await?,
            events: CALLS as u64,
            note: "serde_json parse, rename and split fields, serialize".into(),
        });

        let seconds = |d: Option<Duration>| d.map_or(0.0, |d| d.as_secs_f64());
        let r = &mut self.report;
        r.ratio(
            "plugin call / native transform (p50)",
            seconds(plugin_p50),
            seconds(native_p50),
        );
        r.verdict(
            &format!("plugin p50 < {} us", TARGET_PLUGIN_P50.as_micros()),
            micros(plugin_p50),
            plugin_p50.is_some_and(|p| p < TARGET_PLUGIN_P50),
        );
        self.plugin_start(&component, &input).await?;
        self.held_start(&component, &input).await?;
        self.plugin_languages(&host, &input, &by_native, plugin_p50, native_p50)
            .await
    }

    /// Phases 6c and 6d: the same transform as a JavaScript and a Python
    /// component (`plugins/examples/schema-upgrade/{js,python}`), a fresh
    /// instance per call, beside the Rust plugin and native figures above.
    async fn plugin_languages(
        &mut self,
        host: &PluginHost,
        input: &PluginInput,
        by_native: &Value,
        rust_p50: Option<Duration>,
        native_p50: Option<Duration>,
    ) -> anyhow::Result<()> {
        let seconds = |d: Option<Duration>| d.map_or(0.0, |d| d.as_secs_f64());
        for (label, language, target) in [
            (
                "6c plugin schema-upgrade in JavaScript",
                "js",
                TARGET_JS_P50,
            ),
            (
                "6d plugin schema-upgrade in Python",
                "python",
                TARGET_PYTHON_P50,
            ),
        ] {
            let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join(format!("../plugins/target/{language}/schema-upgrade.wasm"));
            let component = Arc::new(std::fs::read(&path).with_context(|| {
                format!(
                    "cannot read {}: build it with plugins/toolchains/build",
                    path.display()
                )
            })?);
            let compiling = Instant::now();
            let sha256 = match host.upload("bench", component.clone(), COMPILE_WAIT).await {
                Ok(Upload::Ready { sha256 }) => sha256,
                Ok(Upload::Compiling { .. }) => bail!("{label}: not compiled in {COMPILE_WAIT:?}"),
                Err(e) => bail!("{label} does not compile: {e}"),
            };
            let compiled_in = compiling.elapsed();
            let budget = host.default_budget();
            let data = call(host, &sha256, &component, input, budget).await?;
            let answer: Value = serde_json::from_slice(&data)?;
            if &answer != by_native {
                bail!("{label} and the native transform disagree:\n{answer}\n{by_native}");
            }
            for _ in 0..LANGUAGE_CALLS / 10 {
                call(host, &sha256, &component, input, budget).await?;
            }
            let meter = Meter::start(&mut self.conn).await?;
            let mut latencies = Latencies::default();
            let started = Instant::now();
            for _ in 0..LANGUAGE_CALLS {
                let at = Instant::now();
                call(host, &sha256, &component, input, budget).await?;
                latencies.record(at.elapsed());
            }
            let elapsed = started.elapsed();
            let p50 = latencies.quantile(0.50);
            self.report.row(Row {
                label: label.into(),
                rate: format!(
                    "{} calls/s",
                    thousands(per_second(LANGUAGE_CALLS as u64, elapsed))
                ),
                p50: micros(p50),
                p99: micros(latencies.quantile(0.99)),
                usage: meter.stop(&mut self.conn).await?,
                events: LANGUAGE_CALLS as u64,
                note: format!(
                    "{} MB component (compiled in {:.1} s), {} sequential calls on one task",
                    component.len() >> 20,
                    compiled_in.as_secs_f64(),
                    thousands(LANGUAGE_CALLS as f64)
                ),
            });
            let r = &mut self.report;
            r.ratio(
                &format!("{language} plugin call / Rust plugin call (p50)"),
                seconds(p50),
                seconds(rust_p50),
            );
            r.ratio(
                &format!("{language} plugin call / native transform (p50)"),
                seconds(p50),
                seconds(native_p50),
            );
            r.verdict(
                &format!("{language} plugin p50 <= {} us", target.as_micros()),
                micros(p50),
                p50.is_some_and(|p| p <= target),
            );
        }
        Ok(())
    }

    /// Phases 6a and 6b: the first call of a new host (a restarted gateway)
    /// that must compile the component, then of one that finds its code
    /// kept on disk; [`STARTS`] new hosts each, in a directory of its own.
    async fn plugin_start(
        &mut self,
        component: &Arc<Vec<u8>>,
        input: &PluginInput,
    ) -> anyhow::Result<()> {
        let dir = std::env::temp_dir().join(format!("bench-artifacts-{}", std::process::id()));
        let mut config = Config::load(None, Vec::new())?.plugins;
        config.keep_artifacts = true;
        config.artifacts_dir = dir.to_string_lossy().into_owned();
        let sha256 = gateway::model::sha256_hex(component);
        let mut p50s = Vec::new();
        for (label, kept) in [
            ("6a first call of a new host, compiling", false),
            ("6b first call of a new host, kept code", true),
        ] {
            let meter = Meter::start(&mut self.conn).await?;
            let mut latencies = Latencies::default();
            let started = Instant::now();
            for _ in 0..STARTS {
                if !kept {
                    let _ = std::fs::remove_dir_all(&dir);
                }
                let host = PluginHost::new(&config)?;
                let at = Instant::now();
                let answer = host
                    .invoke("t", &sha256, load(component), input, host.default_budget())
                    .await;
                latencies.record(at.elapsed());
                delivered(answer.result)?;
                let from_kept = host.counters().artifacts_loaded.get() == 1;
                if from_kept != kept {
                    bail!("{label}: loaded from kept code: {from_kept}");
                }
            }
            p50s.push(latencies.quantile(0.50).map_or(0.0, |d| d.as_secs_f64()));
            self.report.row(Row {
                label: label.into(),
                rate: format!(
                    "{} starts/s",
                    thousands(per_second(STARTS as u64, started.elapsed()))
                ),
                p50: micros(latencies.quantile(0.50)),
                p99: micros(latencies.quantile(0.99)),
                usage: meter.stop(&mut self.conn).await?,
                events: STARTS as u64,
                note: format!("{STARTS} new PluginHosts, each one call"),
            });
        }
        let _ = std::fs::remove_dir_all(&dir);
        self.report
            .ratio("first call, compiling / kept code (p50)", p50s[0], p50s[1]);
        Ok(())
    }

    /// Phases 6e and 6f: a new host (a restarted gateway) holding [`HELD`]
    /// plugins, all asked for at once, until each has answered one call:
    /// compiling every one (on the host's compile slots), then loading the
    /// code the first start kept; [`HELD_STARTS`] starts each.
    async fn held_start(
        &mut self,
        component: &Arc<Vec<u8>>,
        input: &PluginInput,
    ) -> anyhow::Result<()> {
        let dir = std::env::temp_dir().join(format!("bench-held-{}", std::process::id()));
        let mut config = Config::load(None, Vec::new())?.plugins;
        config.keep_artifacts = true;
        config.artifacts_dir = dir.to_string_lossy().into_owned();
        let held: Vec<Arc<Vec<u8>>> = (0..HELD).map(|n| Arc::new(variant(component, n))).collect();
        let mut p50s = Vec::new();
        for (label, kept) in [
            ("6e start holding 20 plugins, compiling", false),
            ("6f start holding 20 plugins, kept code", true),
        ] {
            let meter = Meter::start(&mut self.conn).await?;
            let mut latencies = Latencies::default();
            for _ in 0..HELD_STARTS {
                if !kept {
                    let _ = std::fs::remove_dir_all(&dir);
                }
                let at = Instant::now();
                let host = PluginHost::new(&config)?;
                let calls = held.iter().map(|bytes| {
                    let (host, bytes, input) = (host.clone(), bytes.clone(), input.clone());
                    tokio::spawn(async move {
                        let sha256 = gateway::model::sha256_hex(&bytes);
                        let budget = host.default_budget();
                        let answer = host
                            .invoke("t", &sha256, load(&bytes), &input, budget)
                            .await;
                        delivered(answer.result)
                    })
                });
                for call in calls.collect::<Vec<_>>() {
                    call.await??;
                }
                latencies.record(at.elapsed());
                let loaded = host.counters().artifacts_loaded.get();
                let expected = if kept { u64::from(HELD) } else { 0 };
                if loaded != expected {
                    bail!("{label}: {loaded} plugins loaded from kept code, not {expected}");
                }
            }
            p50s.push(latencies.quantile(0.50).map_or(0.0, |d| d.as_secs_f64()));
            self.report.row(Row {
                label: label.into(),
                rate: format!("{HELD} plugins"),
                p50: micros(latencies.quantile(0.50)),
                p99: micros(latencies.quantile(0.99)),
                usage: meter.stop(&mut self.conn).await?,
                events: u64::from(HELD) * HELD_STARTS as u64,
                note: format!("{HELD_STARTS} new PluginHosts, each {HELD} first calls at once"),
            });
        }
        let _ = std::fs::remove_dir_all(&dir);
        self.report.ratio(
            "start holding 20 plugins, compiling / kept code (p50)",
            p50s[0],
            p50s[1],
        );
        Ok(())
    }

    /// Phases 8 and 9: saturated end to end without, then with, a chain of
    /// one `schema_upgrade` transform; the chain's cost in delivered events/s.
    pub async fn plugin_chain(
        &mut self,
        component: Vec<u8>,
        gateway: &RunningGateway,
        receiver: &Receiver,
    ) -> anyhow::Result<()> {
        let payload = Arc::new(Payload::order_v1());
        let plain = gateway.create_tenant("bench-no-plugin").await?;
        gateway.create_endpoint(&plain, &receiver.url, &[]).await?;
        let chained = gateway.create_tenant("bench-plugin").await?;
        gateway
            .upload_plugin(&chained, PLUGIN_NAME, component)
            .await?;
        gateway
            .create_endpoint(&chained, &receiver.url, &[PLUGIN_NAME])
            .await?;

        eprintln!("[8/{PHASES}] end-to-end, order.created, no plugin");
        let target = self.target(&gateway.events_url(), Some(plain))?;
        let without = self
            .saturated(
                "8 end-to-end, order.created, no plugin",
                &target,
                &payload,
                receiver,
                gateway,
            )
            .await?;
        self.wait_idle(gateway, "8").await?;
        eprintln!("[9/{PHASES}] end-to-end through a chain of one schema_upgrade plugin");
        let target = self.target(&gateway.events_url(), Some(chained))?;
        let with = self
            .saturated(
                "9 end-to-end, 1-plugin chain (upgrade)",
                &target,
                &payload,
                receiver,
                gateway,
            )
            .await?;

        let r = &mut self.report;
        let kept = r.ratio(
            "end-to-end with / without the plugin chain",
            with.delivered,
            without.delivered,
        );
        let cost = 1.0 - kept;
        r.verdict(
            &format!(
                "chain cost = 1 - with/without <= {:.0}%",
                TARGET_CHAIN_COST * 100.0
            ),
            format!("{:.1}%", cost * 100.0),
            without.complete && with.complete && cost <= TARGET_CHAIN_COST,
        );
        Ok(())
    }
}

/// `bytes` made another component (another sha256, the same code) by a
/// custom section named `variant` holding `n`, at its end.
fn variant(bytes: &[u8], n: u8) -> Vec<u8> {
    let name = b"variant";
    let mut out = bytes.to_vec();
    out.extend([0, 1 + name.len() as u8 + 1, name.len() as u8]);
    out.extend(name);
    out.push(n);
    out
}

/// The plugin's load callback: the bytes are at hand (only called when the
/// compiled component was evicted).
fn load(
    component: &Arc<Vec<u8>>,
) -> impl FnOnce() -> std::future::Ready<Result<Arc<Vec<u8>>, Infallible>> {
    let component = component.clone();
    move || std::future::ready(Ok(component))
}

/// One call; the delivered event's data.
async fn call(
    host: &PluginHost,
    sha256: &str,
    component: &Arc<Vec<u8>>,
    input: &PluginInput,
    budget: Budget,
) -> anyhow::Result<Vec<u8>> {
    let answer = host
        .invoke("t", sha256, load(component), input, budget)
        .await;
    delivered(answer.result)
}

/// The data of a `deliver` verdict, or an error describing the outcome.
fn delivered(result: Result<Verdict, gateway::plugins::PluginFailure>) -> anyhow::Result<Vec<u8>> {
    match result {
        Ok(Verdict::Deliver(event)) => Ok(event.data),
        other => bail!("schema_upgrade did not deliver: {other:?}"),
    }
}

/// A call input: the `data` of one [`Payload::order_v1`] event, for an
/// endpoint with the plugin's default config.
fn order_input() -> anyhow::Result<PluginInput> {
    let event: Value = serde_json::from_slice(&Payload::order_v1().next(0))?;
    Ok(PluginInput {
        event: PluginEvent {
            id: "evt_bench".into(),
            event_type: "order.created".into(),
            schema_version: Some(1),
            timestamp: "2026-01-31T12:00:00Z".into(),
            data: serde_json::to_vec(&event["data"])?,
            metadata: vec![("tenant-id".into(), "bench".into())],
        },
        target: PluginTarget {
            endpoint_id: "ep_bench".into(),
            schema_version: None,
            config: b"{}".to_vec(),
        },
    })
}

/// An `order.created` payload at schema version 1.
#[derive(Deserialize)]
struct OrderV1 {
    customer_name: String,
    #[serde(default)]
    customer_email: Option<String>,
    amount_cents: i64,
    #[serde(default)]
    currency: Option<String>,
    #[serde(flatten)]
    rest: Map<String, Value>,
}

/// An `order.created` payload at schema version 2.
#[derive(Serialize)]
struct OrderV2 {
    #[serde(flatten)]
    rest: Map<String, Value>,
    customer: Customer,
    amount: Amount,
}

#[derive(Serialize)]
struct Customer {
    first_name: String,
    last_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<String>,
}

#[derive(Serialize)]
struct Amount {
    value: i64,
    currency: String,
}

/// The v1 → v2 transform of `schema_upgrade`, natively: `customer_name`
/// split at its first space into `customer`, `amount_cents` and `currency`
/// into `amount`, every other field passed through.
fn upgrade_native(data: &[u8]) -> anyhow::Result<Vec<u8>> {
    let v1: OrderV1 = serde_json::from_slice(data)?;
    if let Some(field) = ["customer", "amount"]
        .iter()
        .find(|f| v1.rest.contains_key(**f))
    {
        bail!("data has the v2 field `{field}`; expected v1");
    }
    let full = v1.customer_name.trim();
    if full.is_empty() {
        bail!("data: `customer_name` is empty");
    }
    let (first, last) = full.split_once(char::is_whitespace).unwrap_or((full, ""));
    let v2 = OrderV2 {
        rest: v1.rest,
        customer: Customer {
            first_name: first.to_owned(),
            last_name: last.trim_start().to_owned(),
            email: v1.customer_email,
        },
        amount: Amount {
            value: v1.amount_cents,
            currency: v1.currency.unwrap_or_else(|| DEFAULT_CURRENCY.to_owned()),
        },
    };
    Ok(serde_json::to_vec(&v2)?)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_native_transform_upgrades_v1_to_v2() {
        let v1 = json!({
            "order_id": "ord_1",
            "customer_name": "  Vincent  van Gogh ",
            "amount_cents": 1250,
            "seq": 3,
        });
        let v2: Value =
            serde_json::from_slice(&upgrade_native(&serde_json::to_vec(&v1).unwrap()).unwrap())
                .unwrap();
        assert_eq!(
            v2,
            json!({
                "order_id": "ord_1",
                "seq": 3,
                "customer": {"first_name": "Vincent", "last_name": "van Gogh"},
                "amount": {"value": 1250, "currency": "EUR"},
            })
        );
        let v2_input = json!({"customer_name": "A B", "amount_cents": 1, "amount": 1});
        assert!(upgrade_native(&serde_json::to_vec(&v2_input).unwrap()).is_err());
    }

    #[test]
    fn the_bench_input_is_a_one_kib_v1_order() {
        let input = order_input().unwrap();
        assert!((900..=1024).contains(&input.event.data.len()));
        let v2: Value =
            serde_json::from_slice(&upgrade_native(&input.event.data).unwrap()).unwrap();
        assert_eq!(v2["customer"]["last_name"], "Lovelace");
        assert_eq!(v2["amount"]["currency"], "EUR");
        assert_eq!(v2["seq"], 0);
    }
}
