//! A multi-tenant webhook gateway on Redis Streams.
//!
//! ```text
//! producer ─POST /v1/events─▶ api::events ─ingest.lua─▶ gw:{pN}:ingest
//!                                                        │ group "fanout"
//!            fanout (match endpoints, run plugins) ◀┘
//!                                 │ fanout.lua: one task per endpoint
//!                                 ▼
//!                          gw:{pN}:delivery ─ group "delivery" ─▶ delivery: load ▶ admit ▶
//!                                 ▲                          send ▶ record ▶ settle.lua
//!                 move_due.lua    │                                 │ retry or held back
//!                          gw:{pN}:retry ◀──────────────────────────┘ (else finished)
//! ```
//!
//! Layers, bottom up; a module imports only from the layers below it (and
//! the leaf helpers `config`, `telemetry`, `error`):
//!
//! ```text
//! model                  ids, times, tasks, statuses, dead letters, secrets, scopes,
//!                        sealing at rest, field errors
//! keys                   the Redis key layout
//! queue · store          streams and scripts · tenants, keys, consumers, endpoints,
//!                        contracts, the audit log, read models
//! contracts · plugins    schemas and compatibility · the wasmtime host
//! admission              ingest limits and shedding, endpoint flow control, plugin
//!                        lanes and breakers, one cache of tenant limits
//! chain                  an endpoint's plugin chain
//! workers                stage loops, supervision, liveness
//! fanout · delivery      the two stages (delivery: one pipeline, load ▶ admit ▶ send ▶ record ▶ settle)
//! state · api            the router and its handlers
//! dev · cli              `gateway dev`, the command line (with `run`, `serve_with` here)
//! ```

pub mod admission;
pub mod api;
pub mod cache;
pub mod chain;
pub mod cli;
pub mod config;
pub mod contracts;
pub mod delivery;
pub mod dev;
pub mod error;
pub mod fanout;
pub mod keys;
pub mod model;
pub mod notify;
pub mod partition_keeper;
pub mod plugins;
pub mod queue;
pub mod readiness;
pub mod redis_conn;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod workers;

/// mimalloc for every binary built on this crate (the gateway, the tests'
/// copy of it, the benchmark): requests and fan-out allocate from many
/// threads at once, and glibc's allocator spent a tenth of the ingest CPU
/// waiting on its arena locks (`perf`, bench phase 12).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use redis_conn::{Conn, RedisClient};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use config::{Config, ConfigError};
use delivery::retry::RetryPolicy;
use delivery::{Deliverer, DeliverySettings};
use keys::{DELIVERY_GROUP, FANOUT_GROUP, Partitions};
use queue::{GroupReader, Queue};
use state::{AppState, KeyCache};
use store::Store;
use telemetry::Metrics;
use workers::Liveness;

/// How often due retries are moved back into the delivery streams.
const SCHEDULER_TICK: Duration = Duration::from_millis(100);
/// How often streams are trimmed to the retention window.
const TRIM_TICK: Duration = Duration::from_secs(60);
/// How often due handshakes are looked for.
const VERIFY_TICK: Duration = Duration::from_millis(500);
/// How often endpoints with parked tasks are looked at for release.
const RELEASE_TICK: Duration = Duration::from_secs(1);

/// Connects to Redis (one server, or a cluster by its seed list: see
/// [`redis_conn`]) with the settings every shared connection uses: a
/// response timeout well above a slow `appendfsync always` write, and
/// reconnection when Redis restarts or a master fails over. A `rediss://`
/// URL is TLS (rustls, trusting the web roots).
pub async fn connect(url: &str) -> anyhow::Result<(RedisClient, Conn)> {
    connect_with(url, None).await
}

/// As [`connect`]; with `ca_pem` (`redis_ca_file`), a `rediss://` server's
/// certificate must chain to those CAs instead of the web roots. The client
/// keeps them, so every connection made from it (the stage readers' too)
/// checks the same.
pub async fn connect_with(url: &str, ca_pem: Option<&[u8]>) -> anyhow::Result<(RedisClient, Conn)> {
    let client = RedisClient::open(url, ca_pem)?;
    let conn = client
        .shared()
        .await
        .with_context(|| format!("cannot reach Redis at {url}"))?;
    Ok((client, conn))
}

/// Runs the gateway on `listener` until `shutdown` fires, then stops
/// accepting, drains in-flight deliveries (bounded by the shutdown grace)
/// and returns.
pub async fn run(
    config: Arc<Config>,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    keys::install_prefix(&config.redis_prefix).map_err(anyhow::Error::msg)?;
    match model::sealed::install(&config.security.encryption_keys) {
        Some(key) => {
            tracing::info!(%key, "endpoint secrets and event payloads are encrypted at rest")
        }
        None => tracing::warn!(
            "security.encryption_key is not set: endpoint secrets, client keys and event \
             payloads are stored in Redis in clear"
        ),
    }
    let (client, mut conn) =
        connect_with(&config.redis_url, config.redis_ca_pem.as_deref()).await?;
    report_durability(&mut conn).await;

    let partitions = Partitions::new(config.partitions);
    let queue = Queue::new(
        conn.clone(),
        partitions,
        config.ingest.retention,
        config.ingest.idempotency_window,
    )
    .with_replica_acks(
        config.ingest.replica_acks,
        config.ingest.replica_ack_timeout,
    );
    partition_keeper::look(&queue)
        .await
        .context("cannot record this instance's partition count in Redis")?;
    let store = Store::new(conn.clone(), partitions);
    let (host, metrics) = plugin_host(&config.plugins)?;
    let liveness = Liveness::default();
    let endpoint_lists = store::EndpointLists::new(store.clone());
    let limits = admission::TenantLimitsCache::new(store.clone());
    let contracts = contracts::Contracts::new(store.clone());
    let lookups = delivery::Lookups {
        endpoints: endpoint_lists.clone(),
        limits: limits.clone(),
        contracts: contracts.clone(),
    };
    let deliverer = deliverer(&config, &queue, &store, lookups, &metrics)?;
    let verifier = readiness::Verifier::new(
        store.clone(),
        delivery::client::HttpClient::new(config.delivery.allow_private_destinations)?,
        (config.verification.clone(), config.quarantine),
        metrics.clone(),
        notify::Notifier::new(queue.clone()),
    );
    let chain = chain::Chain::new(
        host,
        admission::lane::Lane::new(config.plugins.threads)?,
        store.clone(),
        limits.clone(),
        contracts.clone(),
        metrics.clone(),
    );
    let fanout = fanout::Fanout::new(
        queue.clone(),
        store.clone(),
        endpoint_lists.clone(),
        chain.clone(),
        metrics.clone(),
    );
    tokio::spawn({
        let chain = chain.clone();
        async move { chain.settle_unsettled().await }
    });
    let fanout_stage = Arc::new(fanout.clone());
    let deliverer_stage = Arc::new(deliverer.clone());

    let consumer = format!("gw-{}", ulid::Ulid::new().to_string().to_ascii_lowercase());
    tracing::info!(%consumer, partitions = partitions.count(), "starting workers");
    let mut loops = workers::Supervisor::new(liveness.clone());
    let shared = Shared {
        client: client.clone(),
        consumer,
        metrics: metrics.clone(),
        liveness: liveness.clone(),
        visibility: config.delivery.visibility_timeout,
        fanout: fanout_stage,
        deliverer: deliverer_stage,
    };
    for p in partitions.all() {
        for (name, work) in shared.stage_loops(p, shutdown.clone()) {
            loops.spawn(name, queue::READ_BLOCK, work);
        }
    }
    shared.spawn_periodic(&mut loops, &queue, &shutdown);
    let keeper = partition_keeper::Keeper::new(
        queue.clone(),
        Arc::new({
            let shared = shared.clone();
            move |p, stop| shared.stage_loops(p, stop)
        }),
        liveness.clone(),
    );
    loops.spawn(
        "partitions".into(),
        partition_keeper::TICK,
        keeper.run(shutdown.clone()),
    );
    shared.spawn_readiness(&mut loops, &queue, &endpoint_lists, &verifier, &shutdown);
    let supervising = tokio::spawn(loops.run(shutdown.clone()));

    let state = AppState::new(state::Handles {
        config: config.clone(),
        store,
        queue,
        metrics,
        liveness,
        keys: KeyCache::default(),
        consumers: state::KnownConsumers::default(),
        chain,
        contracts,
        verifier,
        edge: admission::ingest::Edge::new(&config.limits, limits.clone()),
    });
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "listening");
    // The peer address keys the per-address limits of `edge`.
    let app = api::router(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.clone().cancelled_owned())
        .await
        .context("HTTP server failed")?;

    tracing::info!("shutting down: stopping workers and draining deliveries");
    if let Err(e) = supervising.await {
        tracing::error!(error = %e, "the worker supervisor failed");
    }
    fanout.drain().await;
    deliverer.drain(config.delivery.shutdown_grace).await;
    tracing::info!("stopped");
    Ok(())
}

/// The plugin host, and the gateway's metrics with the host's counters.
fn plugin_host(config: &config::PluginConfig) -> anyhow::Result<(plugins::PluginHost, Metrics)> {
    let host = plugins::PluginHost::new(config)?;
    if let Some(dir) = host.artifacts_dir() {
        tracing::info!(dir = %dir.display(), "compiled plugins are kept on disk");
    }
    let metrics = Metrics {
        plugin_compiles: host.counters().compiles.clone(),
        plugin_artifacts_loaded: host.counters().artifacts_loaded.clone(),
        ..Metrics::default()
    };
    Ok((host, metrics))
}

/// The delivery stage, from the config.
fn deliverer(
    config: &Config,
    queue: &Queue,
    store: &Store,
    lookups: delivery::Lookups,
    metrics: &Metrics,
) -> anyhow::Result<Deliverer> {
    let d = &config.delivery;
    let transport = delivery::client::HttpClient::new(d.allow_private_destinations)?;
    let settings = DeliverySettings {
        policy: RetryPolicy::new(d.retry_schedule.clone(), d.jitter, d.max_retry_after),
        default_timeout: Duration::from_millis(d.default_timeout_ms),
        max_timeout: Duration::from_millis(d.max_timeout_ms),
        concurrency: d.concurrency,
        endpoint_concurrency: d.endpoint_concurrency,
        circuit: admission::endpoint::CircuitSettings {
            failures: config.circuit.failures,
            open_for: config.circuit.open_for,
        },
        verification_required: config.verification.required,
        quarantine: config.quarantine,
        failing_after: config.operational.failing_after,
    };
    Ok(Deliverer::new(
        queue.clone(),
        store.clone(),
        lookups,
        Arc::new(transport),
        settings,
        metrics.clone(),
    ))
}

/// What every worker loop is started with.
#[derive(Clone)]
struct Shared {
    client: RedisClient,
    consumer: String,
    metrics: Metrics,
    liveness: Liveness,
    visibility: Duration,
    fanout: Arc<fanout::Fanout>,
    deliverer: Arc<Deliverer>,
}

impl Shared {
    fn reader(&self, stream: String, group: &'static str) -> GroupReader {
        GroupReader::new(
            self.client.clone(),
            stream,
            group,
            self.consumer.clone(),
            self.metrics.clone(),
        )
    }

    /// Partition `p`'s fan-out and delivery loops, each on its own reader,
    /// until `stop` fires.
    fn stage_loops(&self, p: u16, stop: CancellationToken) -> Vec<partition_keeper::Loop> {
        let ingest = self.reader(keys::ingest_stream(p), FANOUT_GROUP);
        let delivery = self.reader(keys::delivery_stream(p), DELIVERY_GROUP);
        vec![
            self.stage_loop(format!("fanout-{p}"), p, ingest, self.fanout.clone(), &stop),
            self.stage_loop(
                format!("delivery-{p}"),
                p,
                delivery,
                self.deliverer.clone(),
                &stop,
            ),
        ]
    }

    fn stage_loop<S: workers::Stage>(
        &self,
        name: String,
        p: u16,
        reader: GroupReader,
        stage: Arc<S>,
        stop: &CancellationToken,
    ) -> partition_keeper::Loop {
        let run = workers::run_stage(
            stage,
            name.clone(),
            p,
            reader,
            self.visibility,
            self.liveness.clone(),
            stop.clone(),
        );
        (name, Box::pin(run))
    }

    /// The handshake runner and the release of parked tasks.
    fn spawn_readiness(
        &self,
        loops: &mut workers::Supervisor,
        queue: &Queue,
        endpoints: &store::EndpointLists,
        verifier: &readiness::Verifier,
        shutdown: &CancellationToken,
    ) {
        let v = verifier.clone();
        let handshakes = workers::run_periodic(
            "verifier",
            VERIFY_TICK,
            self.liveness.clone(),
            shutdown.clone(),
            move || {
                let v = v.clone();
                async move { v.run_due().await }
            },
        );
        let timeout = verifier.timeout();
        loops.spawn("verifier".into(), VERIFY_TICK + timeout, handshakes);
        let (q, e, m) = (queue.clone(), endpoints.clone(), self.metrics.clone());
        let required = verifier.required();
        let releaser = workers::run_periodic(
            "releaser",
            RELEASE_TICK,
            self.liveness.clone(),
            shutdown.clone(),
            move || {
                let (q, e, m) = (q.clone(), e.clone(), m.clone());
                async move { readiness::release_ready(&q, &e, required, &m).await }
            },
        );
        loops.spawn("releaser".into(), RELEASE_TICK, releaser);
    }

    /// The retry scheduler and the retention trimmer.
    fn spawn_periodic(
        &self,
        loops: &mut workers::Supervisor,
        queue: &Queue,
        shutdown: &CancellationToken,
    ) {
        let (q, m) = (queue.clone(), self.metrics.clone());
        let scheduler = workers::run_periodic(
            "scheduler",
            SCHEDULER_TICK,
            self.liveness.clone(),
            shutdown.clone(),
            move || workers::move_due_retries(q.clone(), m.clone()),
        );
        loops.spawn("scheduler".into(), SCHEDULER_TICK, scheduler);
        let q = queue.clone();
        let trimmer = workers::run_periodic(
            "trimmer",
            TRIM_TICK,
            self.liveness.clone(),
            shutdown.clone(),
            move || workers::trim_streams(q.clone()),
        );
        loops.spawn("trimmer".into(), TRIM_TICK, trimmer);
    }
}

/// Loads the config from defaults, file and environment.
pub fn load_config(file: Option<&std::path::Path>) -> Result<Config, ConfigError> {
    Config::load(file, std::env::vars())
}

/// Binds, announces the address on stdout, and runs until shutdown.
pub async fn serve_with(config: Arc<Config>, shutdown: CancellationToken) -> ExitCode {
    let listener = match tokio::net::TcpListener::bind(config.listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: cannot listen on {}: {e}", config.listen);
            return ExitCode::FAILURE;
        }
    };
    if let Ok(addr) = listener.local_addr() {
        println!("gateway listening on http://{addr}");
    }
    match crate::run(config, listener, shutdown).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Logs what a `202` promises with this Redis's persistence settings, and
/// warns when its eviction policy could drop queue keys.
async fn report_durability(conn: &mut Conn) {
    async fn get(conn: &mut Conn, name: &str) -> Option<String> {
        let reply: Vec<String> = redis::cmd("CONFIG")
            .arg("GET")
            .arg(name)
            .query_async(conn)
            .await
            .ok()?;
        reply.into_iter().nth(1)
    }
    let appendonly = get(conn, "appendonly").await;
    let fsync = get(conn, "appendfsync").await;
    let eviction = get(conn, "maxmemory-policy").await;
    match (appendonly.as_deref(), fsync.as_deref()) {
        (Some("yes"), Some("always")) => {
            tracing::info!(
                "durability: AOF with appendfsync always; a 202 means the event is on disk"
            )
        }
        (Some("yes"), Some("everysec")) => tracing::warn!(
            "durability: AOF with appendfsync everysec; a 202 may lose about 1 s of events if Redis's host crashes"
        ),
        (Some("yes"), _) => tracing::warn!(
            "durability: AOF without regular fsync; a 202 may lose recent events if Redis's host crashes"
        ),
        (Some(_), _) => tracing::warn!(
            "durability: AOF is off; a 202 means the event is in Redis's memory only and a Redis restart may lose it"
        ),
        (None, _) => tracing::warn!(
            "durability: could not read Redis's persistence settings (CONFIG GET refused)"
        ),
    }
    if let Some(policy) = eviction
        && policy != "noeviction"
    {
        tracing::warn!(
            %policy,
            "Redis may evict keys under memory pressure, including queued events: set maxmemory-policy noeviction"
        );
    }
}
