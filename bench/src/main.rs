//! `cargo run -p bench`: one run that measures, against its own
//! `redis-server` child and everything else in this process on loopback,
//!
//! 1. raw pipelined `XADD` (the Redis ceiling);
//! 2. a bare axum handler doing one `XADD` per request (the HTTP ceiling);
//! 3. the gateway's `POST /v1/events` (and its ratio to 2);
//! 4. end-to-end delivery to a receiver with ingest running flat out;
//! 5. end-to-end latency at a fixed 1,000 events/s;
//! 6. one call of the `schema_upgrade` plugin in a fresh instance;
//! 7. the same transform as native Rust (and the ratio of 6 to 7);
//! 8. and 9. end-to-end delivery without, then with, a chain of that plugin;
//! 10. and 11. fan-out of every event to 100 endpoints, without and then with
//!     batching, at the same load (and the ratios of 11 to 10);
//! 12. and 13. ingest of events of a type the tenant did not register, then
//!     of a type registered with a 20-field schema that every event is
//!     validated against (and the ratio of 13 to 12);
//! 14. to 16. a poll-mode endpoint's channel read back with `limit=100`, a
//!     long poll woken by one new event, and the same single events pushed
//!     (and the ratio of 15 to 16);
//! 17. to 20. ingest, then end-to-end delivery, without and with encryption
//!     at rest (and the ratios of 18 to 17 and 20 to 19);
//! 21. to 24. ingest, then end-to-end delivery, of events broadcast to a
//!     tenant's one endpoint and of events each routed to one of 1,000
//!     consumers' endpoints (and the ratios of 22 to 21 and 24 to 23);
//!
//! (`--ingest-only` runs 1 to 3, `--plugins-only` 6 to 9, `--fanout-only`
//! 10 and 11, `--contracts-only` 12 and 13, `--poll-only` 14 to 16,
//! `--security-only` 17 to 24), then prints a table with PASS/MISS per
//! target. Every phase is bounded in time and count; the exit code is 0
//! only when every target was met.

mod baseline;
mod contracts;
mod e2e;
mod fanout;
mod harness;
mod ingest;
mod load;
mod paired;
mod plugins;
mod poll;
mod receiver;
mod redis_server;
mod report;
mod security;
mod stats;
mod usage;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{ArgGroup, Parser};
use redis::aio::MultiplexedConnection;

use harness::RunningGateway;
use load::{LoadReport, Payload, Target};
use receiver::Receiver;
use redis_server::{Persistence, RedisServer};
use report::{Report, Row};
use stats::{Clock, millis, per_second, thousands};
use usage::Meter;

/// Phases in a full run, for the progress lines.
const PHASES: u8 = 24;
/// Targets the run is judged against.
const TARGET_INGEST_RATIO: f64 = 0.60;
const TARGET_DELIVERED_PER_S: f64 = 5_000.0;
const TARGET_FIXED_RATE_P99: Duration = Duration::from_millis(25);
/// Events per second of the fixed-rate phase.
const FIXED_RATE: u32 = 1_000;
/// Closed-loop phases send this long before their figures count.
const WARMUP: Duration = Duration::from_secs(1);
/// Longest wait for the receiver to get every accepted event.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest wait for the fan-out stage to catch up between phases.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Per-request timeout of the load generator.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Parser)]
#[command(
    about = "Benchmarks the gateway against raw Redis and a bare axum handler",
    group(ArgGroup::new("only").args(["ingest_only", "plugins_only", "fanout_only", "contracts_only", "poll_only", "security_only"]))
)]
struct Args {
    /// Run Redis with an append-only file fsynced on every write
    /// (appendfsync always) instead of without persistence.
    #[arg(long)]
    aof: bool,
    /// Requests in flight in the closed-loop phases (1 to 256).
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u16).range(1..=256))]
    concurrency: u16,
    /// Measured seconds per phase, after the warm-up (1 to 20).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=20))]
    seconds: u64,
    /// Run only the ingest phases and their baselines (1 to 3).
    #[arg(long)]
    ingest_only: bool,
    /// Run only the plugin phases (6 to 9).
    #[arg(long)]
    plugins_only: bool,
    /// Run only the fan-out phases (10 and 11).
    #[arg(long)]
    fanout_only: bool,
    /// Run only the event-contract phases (12 and 13).
    #[arg(long)]
    contracts_only: bool,
    /// Run only the pull-channel phases and their push baseline (14 to 16).
    #[arg(long)]
    poll_only: bool,
    /// Run only the encryption and consumer-routing phases (17 to 24).
    #[arg(long)]
    security_only: bool,
}

/// What every phase shares.
struct Bench {
    clock: Clock,
    payload: Arc<Payload>,
    http: reqwest::Client,
    /// A connection of the benchmark's own, for probes.
    conn: MultiplexedConnection,
    concurrency: usize,
    measure: Duration,
    report: Report,
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> ExitCode {
    let args = Args::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    match run(args).await {
        Ok(report) => {
            println!("{}", report.render());
            if report.all_passed() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> anyhow::Result<Report> {
    let persistence = if args.aof {
        Persistence::AofAlways
    } else {
        Persistence::None
    };
    let concurrency = usize::from(args.concurrency);
    let run_started = Instant::now();
    let all = !(args.ingest_only
        || args.plugins_only
        || args.fanout_only
        || args.contracts_only
        || args.poll_only
        || args.security_only);
    let (poll_phases, security_phases) = (all || args.poll_only, all || args.security_only);
    let (ingest_phases, plugin_phases, fanout_phases, contract_phases) = (
        all || args.ingest_only,
        all || args.plugins_only,
        all || args.fanout_only,
        all || args.contracts_only,
    );
    let component = if plugin_phases {
        Some(plugins::component()?)
    } else {
        None
    };
    let redis = RedisServer::start(persistence).await?;
    eprintln!(
        "redis-server {} on port {}; persistence {}",
        redis.version,
        redis.port,
        persistence.describe()
    );
    let mut bench = Bench {
        clock: Clock::start(),
        payload: Arc::new(Payload::new()),
        http: reqwest::Client::builder()
            .pool_max_idle_per_host(concurrency * 2)
            .tcp_nodelay(true)
            .timeout(REQUEST_TIMEOUT)
            .build()?,
        conn: redis.connect().await?,
        concurrency,
        measure: Duration::from_secs(args.seconds),
        report: Report::default(),
    };
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    bench.report.header(format!(
        "redis-server {} on 127.0.0.1:{}; persistence {}",
        redis.version,
        redis.port,
        persistence.describe()
    ));
    bench.report.header(format!(
        "load: {} B JSON events (order.created v1 in phases 6-9, {} with 20 fields in \
         12-13), {concurrency} in flight (phases 2-4, 8-9, 12-13), {} s measured per phase \
         after {} s warm-up (phases 2-3, 12-13); {cores} CPU cores; one tokio runtime for \
         everything",
        load::BODY_BYTES,
        load::CONTRACT_EVENT_TYPE,
        args.seconds,
        WARMUP.as_secs()
    ));
    bench.report.header(
        "cpu: average cores used by this process (gateway, load generator and receiver), \
         by redis-server, and by everything else on the machine",
    );

    let raw_rate = match ingest_phases {
        true => {
            eprintln!("[1/{PHASES}] raw pipelined XADD");
            Some(bench.raw().await?)
        }
        false => None,
    };
    let gateway = RunningGateway::start(&redis.url(), bench.http.clone()).await?;
    let receiver = Receiver::start(bench.clock).await?;
    if let Some(raw_rate) = raw_rate {
        let ingest_rate = bench.ingest(&gateway, &redis.url(), raw_rate).await?;
        if all {
            bench
                .end_to_end_phases(&gateway, &receiver, ingest_rate)
                .await?;
        }
    }
    if let Some(component) = component {
        eprintln!(
            "[6/{PHASES}] plugin call and native transform, {} calls each",
            plugins::CALLS
        );
        bench.plugin_call(component.clone()).await?;
        bench.plugin_chain(component, &gateway, &receiver).await?;
    }
    if fanout_phases {
        bench.fan_out(&gateway).await?;
    }
    if contract_phases {
        bench.contracts(&gateway).await?;
    }
    if poll_phases {
        eprintln!("[14/{PHASES}] pull channel and push, one gateway");
        bench.poll(&gateway, &receiver).await?;
    }
    if security_phases {
        bench.security(&gateway).await?;
    }

    gateway.stop().await?;
    receiver.stop().await?;
    drop(redis);
    bench.report.note(format!(
        "the whole run took {:.1} s",
        run_started.elapsed().as_secs_f64()
    ));
    Ok(bench.report)
}

impl Bench {
    /// Phases 4 and 5; `ingest_rate` is phase 3's.
    async fn end_to_end_phases(
        &mut self,
        gateway: &RunningGateway,
        receiver: &Receiver,
        ingest_rate: f64,
    ) -> anyhow::Result<()> {
        let key = gateway.create_tenant("bench-e2e").await?;
        gateway.create_endpoint(&key, &receiver.url, &[]).await?;
        let target = self.target(&gateway.events_url(), Some(key))?;
        eprintln!("[4/{PHASES}] end-to-end: ingest and delivery together");
        self.end_to_end(&target, receiver, gateway, ingest_rate)
            .await?;
        eprintln!("[5/{PHASES}] end-to-end at {FIXED_RATE} events/s");
        self.fixed_rate(&target, receiver).await?;
        self.wait_idle(gateway, "5").await
    }

    /// Waits for the fan-out backlog left by `phase` to clear, or notes
    /// that it did not within [`IDLE_TIMEOUT`].
    async fn wait_idle(&mut self, gateway: &RunningGateway, phase: &str) -> anyhow::Result<()> {
        if !harness::wait_fanout_idle(&mut self.conn, gateway.partitions, IDLE_TIMEOUT).await? {
            self.report.note(format!(
                "the fan-out backlog of phase {phase} was not cleared within {IDLE_TIMEOUT:?}"
            ));
        }
        Ok(())
    }

    fn target(&self, url: &str, bearer: Option<String>) -> anyhow::Result<Target> {
        Ok(Target {
            http: self.http.clone(),
            url: url.parse()?,
            bearer,
        })
    }

    /// A closed-loop run of `payload` events against `target`: its rate
    /// and its row, for the caller to report (failures are noted here).
    async fn closed_row(
        &mut self,
        label: &str,
        unit: &str,
        target: &Target,
        payload: &Arc<Payload>,
    ) -> anyhow::Result<(f64, Row)> {
        let meter = Meter::start(&mut self.conn).await?;
        let mut load = load::closed_loop(
            target,
            payload,
            self.clock,
            self.concurrency,
            WARMUP,
            self.measure,
        )
        .await;
        let rate = per_second(load.ok, load.elapsed);
        let row = Row {
            label: label.to_string(),
            rate: format!("{} {unit}", thousands(rate)),
            p50: millis(load.latencies.quantile(0.50)),
            p99: millis(load.latencies.quantile(0.99)),
            usage: meter.stop(&mut self.conn).await?,
            events: load.all_ok,
            note: format!(
                "{} requests, c={}",
                thousands(load.ok as f64),
                self.concurrency
            ),
        };
        self.note_failures(label, &load);
        Ok((rate, row))
    }

    fn note_failures(&mut self, label: &str, load: &LoadReport) {
        if load.failed > 0 {
            self.report.note(format!(
                "{label}: {} requests failed; first: {}",
                load.failed,
                load.first_failure.as_deref().unwrap_or("?")
            ));
        }
    }
}
