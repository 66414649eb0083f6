//! `cargo run -p bench`: one run that measures, against its own
//! `redis-server` child and everything else in this process on loopback,
//!
//! 1. raw pipelined `XADD` (the Redis ceiling);
//! 2. a bare axum handler doing one `XADD` per request (the HTTP ceiling);
//! 3. the gateway's `POST /v1/events` (and its ratio to 2);
//! 4. end-to-end delivery to a receiver with ingest running flat out;
//! 5. end-to-end latency at a fixed 1,000 events/s;
//!
//! then prints a table with PASS/MISS per target. Every phase is bounded in
//! time and count; the exit code is 0 only when every target was met.

mod baseline;
mod e2e;
mod harness;
mod load;
mod receiver;
mod redis_server;
mod report;
mod stats;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use redis::aio::MultiplexedConnection;

use harness::RunningGateway;
use load::{LoadReport, Payload, Target};
use receiver::Receiver;
use redis_server::{Persistence, RedisServer};
use report::Report;
use stats::{Clock, millis, per_second, thousands};

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
#[command(about = "Benchmarks the gateway against raw Redis and a bare axum handler")]
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
    let redis = RedisServer::start(persistence).await?;
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
        "load: {} B JSON events, {concurrency} in flight (phases 2-4), {} s measured per phase \
         after {} s warm-up (phases 2-3); {cores} CPU cores; one tokio runtime for everything",
        load::BODY_BYTES,
        args.seconds,
        WARMUP.as_secs()
    ));
    eprintln!(
        "redis-server {} on port {}; persistence {}",
        redis.version,
        redis.port,
        persistence.describe()
    );

    eprintln!("[1/5] raw pipelined XADD");
    let raw =
        baseline::raw_xadd(&mut bench.conn, &bench.payload, bench.clock, bench.measure).await?;
    let raw_rate = per_second(raw.events, raw.elapsed);
    bench.report.row(
        &format!(
            "1 raw XADD, pipelined x{} (1 connection)",
            baseline::RAW_BATCH
        ),
        format!("{} ev/s", thousands(raw_rate)),
        "-".into(),
        "-".into(),
        format!("{} events", thousands(raw.events as f64)),
    );

    eprintln!("[2/5] bare axum handler, one XADD per request");
    let bare = baseline::BareHandler::start(&redis.url()).await?;
    let target = Target {
        http: bench.http.clone(),
        url: bare.url.parse()?,
        bearer: None,
    };
    let bare_load = load::closed_loop(
        &target,
        &bench.payload,
        bench.clock,
        concurrency,
        WARMUP,
        bench.measure,
    )
    .await;
    bare.stop().await?;
    let bare_rate = bench.closed_row("2 bare axum handler + 1 XADD", "req/s", bare_load);

    eprintln!("[3/5] gateway ingest");
    let gateway = RunningGateway::start(&redis.url(), bench.http.clone()).await?;
    let target = Target {
        http: bench.http.clone(),
        url: gateway.events_url().parse()?,
        bearer: Some(gateway.create_tenant("bench-ingest").await?),
    };
    let ingest_load = load::closed_loop(
        &target,
        &bench.payload,
        bench.clock,
        concurrency,
        WARMUP,
        bench.measure,
    )
    .await;
    let ingest_rate = bench.closed_row("3 gateway POST /v1/events", "ev/s", ingest_load);
    let r = &mut bench.report;
    r.ratio("bare handler / raw XADD", bare_rate, raw_rate);
    r.ratio("gateway ingest / raw XADD", ingest_rate, raw_rate);
    let ratio = r.ratio("gateway ingest / bare handler", ingest_rate, bare_rate);
    r.verdict(
        &format!("gateway ingest / bare handler >= {TARGET_INGEST_RATIO:.2}x"),
        format!("{ratio:.2}x"),
        ratio >= TARGET_INGEST_RATIO,
    );
    if !harness::wait_fanout_idle(&mut bench.conn, gateway.partitions, IDLE_TIMEOUT).await? {
        r.note(format!(
            "the fan-out backlog of phase 3 was not cleared within {IDLE_TIMEOUT:?}"
        ));
    }

    let receiver = Receiver::start(bench.clock).await?;
    let e2e_key = gateway.create_tenant("bench-e2e").await?;
    gateway.create_endpoint(&e2e_key, &receiver.url).await?;
    let target = Target {
        bearer: Some(e2e_key),
        ..target
    };
    eprintln!("[4/5] end-to-end: ingest and delivery together");
    bench
        .end_to_end(&target, &receiver, &gateway, ingest_rate)
        .await?;
    eprintln!("[5/5] end-to-end at {FIXED_RATE} events/s");
    bench.fixed_rate(&target, &receiver).await;

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
    /// Adds the row of a closed-loop phase; returns its rate.
    fn closed_row(&mut self, label: &str, unit: &str, mut load: LoadReport) -> f64 {
        let rate = per_second(load.ok, load.elapsed);
        self.report.row(
            label,
            format!("{} {unit}", thousands(rate)),
            millis(load.latencies.quantile(0.50)),
            millis(load.latencies.quantile(0.99)),
            format!(
                "{} requests, c={}",
                thousands(load.ok as f64),
                self.concurrency
            ),
        );
        self.note_failures(label, &load);
        rate
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
