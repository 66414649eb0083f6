//! The plugin host under load and across cache misses: evicted plugins are
//! recompiled from lazily loaded bytes, hostile calls running at once do not
//! stall the tokio runtime, and (printed with `--nocapture`, not asserted)
//! the per-call cost of a fresh-instance transform against native Rust.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use gateway::plugins::{Budget, PluginFailure, PluginHost, PluginInput};
use gateway_tests::plugins::{delivered, host_with, input, order_v1, wasm};
use serde_json::{Map, Value, json};
use tokio::runtime::Handle;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_evicted_plugin_is_recompiled_from_its_loaded_bytes() {
    let host = host_with(|c| c.cache_entries = 1);
    let budget = host.default_budget();
    let upgrade = wasm("schema_upgrade");
    let sha = host.compile(upgrade.clone()).await.unwrap();
    host.compile(wasm("json_filter")).await.unwrap();
    assert!(
        !host.is_cached(&sha),
        "the one cache entry went to json_filter"
    );

    let loads = AtomicUsize::new(0);
    let load = || async {
        loads.fetch_add(1, Ordering::SeqCst);
        Ok::<_, String>(upgrade.clone())
    };
    delivered(&host.invoke("t", &sha, load, &order_v1(), budget).await);
    assert_eq!(loads.load(Ordering::SeqCst), 1);
    assert!(host.is_cached(&sha));

    let never = || async { Err::<Arc<Vec<u8>>, _>("must not be loaded: it is cached") };
    delivered(&host.invoke("t", &sha, never, &order_v1(), budget).await);

    host.compile(wasm("json_filter")).await.unwrap();
    let wrong = || async { Ok::<_, String>(wasm("json_filter")) };
    let call = host.invoke("t", &sha, wrong, &order_v1(), budget).await;
    assert!(
        matches!(&call.result, Err(PluginFailure::Unavailable(m)) if m.contains("does not hash")),
        "{:?}",
        call.result
    );

    let missing = || async { Err::<Arc<Vec<u8>>, _>("no such plugin in Redis") };
    let call = host
        .invoke("t", &"0".repeat(64), missing, &order_v1(), budget)
        .await;
    assert!(
        matches!(&call.result, Err(PluginFailure::Unavailable(m)) if m.contains("no such plugin")),
        "{:?}",
        call.result
    );
}

/// Runs 8 spinning plugins (200 ms of CPU each) and one transform, the
/// spinners polled on `spin_on`, while a 5 ms timer task runs on the test's
/// runtime. Returns the timer's worst gap between ticks and the transform's
/// wall time.
async fn beside_spinners(host: &PluginHost, spin_on: &Handle) -> (Duration, Duration) {
    let spin_sha = host.compile(wasm("infinite_loop")).await.unwrap();
    let upgrade_sha = host.compile(wasm("schema_upgrade")).await.unwrap();
    let hostile = Budget {
        cpu_ms: 200,
        deadline_ms: 10_000,
        memory_bytes: 16 << 20,
    };
    let spinners: Vec<_> = (0..8)
        .map(|_| {
            let (host, sha) = (host.clone(), spin_sha.clone());
            spin_on.spawn(async move {
                let load = || async { Err::<Arc<Vec<u8>>, _>("compiled above") };
                host.invoke("t", &sha, load, &order_v1(), hostile).await
            })
        })
        .collect();
    let timer = tokio::spawn(async {
        let mut interval = tokio::time::interval(Duration::from_millis(5));
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let (mut last, mut worst) = (Instant::now(), Duration::ZERO);
        for _ in 0..60 {
            interval.tick().await;
            worst = worst.max(last.elapsed());
            last = Instant::now();
        }
        worst
    });
    let started = Instant::now();
    let load = || async { Err::<Arc<Vec<u8>>, _>("compiled above") };
    let upgrade = host
        .invoke("t", &upgrade_sha, load, &order_v1(), host.default_budget())
        .await;
    let upgrade_wall = started.elapsed();
    delivered(&upgrade);
    let worst_gap = timer.await.unwrap();
    for spinner in spinners {
        let spun = spinner.await.unwrap();
        assert_eq!(spun.result.unwrap_err(), PluginFailure::CpuBudget);
        assert_eq!(spun.cpu_ticks, 200);
    }
    (worst_gap, upgrade_wall)
}

/// Polled on the runtime's own two workers, the spinners' 1.6 s of CPU
/// would hold both workers about 800 ms if calls did not yield; yielding
/// every tick, the timer still ticks, late only by tokio servicing timers
/// every few dozen polls (each a tick long here).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spinning_plugins_polled_in_place_yield_the_runtime() {
    let host = host_with(|_| {});
    let (gap, upgrade) = beside_spinners(&host, &Handle::current()).await;
    println!("8 spinners on the test runtime: timer worst gap {gap:?}, transform {upgrade:?}");
    assert!(gap < Duration::from_millis(400), "{gap:?}");
    assert!(upgrade < Duration::from_millis(250), "{upgrade:?}");
}

/// Polled on a runtime of their own, as the gateway does (`crate::lane`),
/// the spinners take one thread and the test's runtime keeps its pace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spinning_plugins_on_their_own_runtime_leave_the_gateway_alone() {
    let plugin_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_time()
        .build()
        .unwrap();
    let host = host_with(|_| {});
    let (gap, upgrade) = beside_spinners(&host, plugin_runtime.handle()).await;
    println!("8 spinners on a 1-thread runtime: timer worst gap {gap:?}, transform {upgrade:?}");
    assert!(gap < Duration::from_millis(50), "{gap:?}");
    assert!(upgrade < Duration::from_millis(50), "{upgrade:?}");
    plugin_runtime.shutdown_background();
}

/// An `order.created` v1 event of about 1 KiB.
fn order_v1_1kib() -> PluginInput {
    let items: Vec<Value> = (1..=11)
        .map(|n| json!({"sku": format!("SKU-{n:04}"), "name": format!("Widget number {n}"), "qty": n, "price_cents": 999}))
        .collect();
    let data = json!({
        "order_id": "ord_01hzy3k9m2", "customer_name": "Ada Lovelace",
        "customer_email": "ada@example.com", "amount_cents": 8991, "currency": "GBP",
        "items": items, "shipping": {"street": "12 St James's Square", "city": "London", "postcode": "SW1Y 4JH"},
    });
    input("order.created", Some(1), data, json!({}))
}

/// The same v1 → v2 rewrite as `plugins/examples/schema-upgrade`, natively.
fn native_upgrade(data: &[u8]) -> Vec<u8> {
    let mut order: Map<String, Value> = serde_json::from_slice(data).unwrap();
    let name = order.remove("customer_name").unwrap();
    let (first, last) = name.as_str().unwrap().split_once(' ').unwrap();
    let mut customer = json!({"first_name": first, "last_name": last});
    if let Some(email) = order.remove("customer_email") {
        customer["email"] = email;
    }
    let value = order.remove("amount_cents").unwrap();
    let currency = order.remove("currency").unwrap_or_else(|| json!("EUR"));
    order.insert("customer".into(), customer);
    order.insert(
        "amount".into(),
        json!({"value": value, "currency": currency}),
    );
    serde_json::to_vec(&order).unwrap()
}

fn percentiles(mut samples: Vec<Duration>) -> (Duration, Duration) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize];
    (at(0.50), at(0.99))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_call_cost_of_a_fresh_instance_transform() {
    const CALLS: usize = 2_000;
    let host = host_with(|_| {});
    let sha = host.compile(wasm("schema_upgrade")).await.unwrap();
    let input = order_v1_1kib();
    let budget = host.default_budget();
    let load = || async { Err::<Arc<Vec<u8>>, _>("compiled above") };

    // As the gateway runs calls: spawned onto a runtime of their own.
    let lane = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_time()
        .build()
        .unwrap();
    let mut wasm_samples = Vec::with_capacity(CALLS);
    let mut lane_samples = Vec::with_capacity(CALLS);
    let mut native_samples = Vec::with_capacity(CALLS);
    for i in 0..CALLS + 200 {
        let started = Instant::now();
        let call = host.invoke("t", &sha, load, &input, budget).await;
        let wasm_time = started.elapsed();
        let (lane_host, lane_sha, lane_input) = (host.clone(), sha.clone(), input.clone());
        let started = Instant::now();
        let on_lane = lane.spawn(async move {
            lane_host
                .invoke("t", &lane_sha, load, &lane_input, budget)
                .await
        });
        delivered(&on_lane.await.unwrap());
        let lane_time = started.elapsed();
        let started = Instant::now();
        let native = std::hint::black_box(native_upgrade(&input.event.data));
        let native_time = started.elapsed();
        if i == 0 {
            let (_, data) = delivered(&call);
            assert_eq!(data, serde_json::from_slice::<Value>(&native).unwrap());
        }
        if i >= 200 {
            wasm_samples.push(wasm_time);
            lane_samples.push(lane_time);
            native_samples.push(native_time);
        }
    }
    lane.shutdown_background();
    let total: Duration = wasm_samples.iter().sum();
    let (wasm_p50, wasm_p99) = percentiles(wasm_samples);
    let (lane_p50, lane_p99) = percentiles(lane_samples);
    let (native_p50, native_p99) = percentiles(native_samples);
    println!(
        "schema_upgrade on a {} B event, {CALLS} sequential calls: fresh instance p50 {wasm_p50:?} \
         p99 {wasm_p99:?} ({:.0} calls/s); native p50 {native_p50:?} p99 {native_p99:?}; \
         ratio at p50 {:.1}x; spawned on a 1-thread runtime p50 {lane_p50:?} p99 {lane_p99:?}",
        input.event.data.len(),
        CALLS as f64 / total.as_secs_f64(),
        wasm_p50.as_secs_f64() / native_p50.as_secs_f64(),
    );
}

/// Compiled code kept on disk: a second host (a restart) loads it without
/// compiling or loading the component's bytes; a damaged file is compiled
/// again and rewritten.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_host_loads_kept_code_instead_of_compiling() {
    let dir = gateway_tests::TempDir::create();
    let keeping = |c: &mut gateway::config::PluginConfig| {
        c.keep_artifacts = true;
        c.artifacts_dir = dir.path().to_string_lossy().into_owned();
    };
    let first = host_with(keeping);
    let budget = first.default_budget();
    let upgrade = wasm("schema_upgrade");
    let sha = first.compile(upgrade.clone()).await.unwrap();
    assert_eq!(first.counters().compiles.get(), 1);
    let kept: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert!(
        kept[0].to_string_lossy().contains(&sha),
        "named by the component's hash: {kept:?}"
    );

    let second = host_with(keeping);
    let never = || async { Err::<Arc<Vec<u8>>, _>("must not be loaded: the code is kept") };
    let started = Instant::now();
    delivered(&second.invoke("t", &sha, never, &order_v1(), budget).await);
    let took = started.elapsed();
    assert_eq!(second.counters().compiles.get(), 0, "nothing compiled");
    assert_eq!(second.counters().artifacts_loaded.get(), 1);
    println!("first call from kept code: {took:?}");

    // Flip one byte of the artifact: the next host compiles again.
    let mut bytes = std::fs::read(&kept[0]).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&kept[0], &bytes).unwrap();
    let third = host_with(keeping);
    let load = || async { Ok::<_, String>(upgrade.clone()) };
    delivered(&third.invoke("t", &sha, load, &order_v1(), budget).await);
    assert_eq!(third.counters().artifacts_loaded.get(), 0);
    assert_eq!(third.counters().compiles.get(), 1, "compiled again");
    let fourth = host_with(keeping);
    delivered(&fourth.invoke("t", &sha, never, &order_v1(), budget).await);
    assert_eq!(
        fourth.counters().artifacts_loaded.get(),
        1,
        "the file was rewritten whole"
    );
}

/// The cache of compiled code is bounded in bytes: with room for about
/// one component, compiling a second evicts the first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_compiled_cache_is_bounded_in_bytes() {
    let roomy = host_with(|_| {});
    let upgrade = roomy.compile(wasm("schema_upgrade")).await.unwrap();
    let one = roomy.cached_code_bytes();
    assert!(one > 0, "compiled code has a size");
    let filter = roomy.compile(wasm("json_filter")).await.unwrap();
    assert!(roomy.is_cached(&upgrade) && roomy.is_cached(&filter));

    let tight = host_with(|c| c.cache_bytes = one + one / 2);
    let upgrade = tight.compile(wasm("schema_upgrade")).await.unwrap();
    let filter = tight.compile(wasm("json_filter")).await.unwrap();
    assert!(!tight.is_cached(&upgrade), "evicted to make room");
    assert!(tight.is_cached(&filter));
    assert!(tight.cached_code_bytes() <= one + one / 2);
}
