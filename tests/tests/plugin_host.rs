//! The plugin host driven directly with the real guest components built by
//! `tests/build.rs`: uploads are validated, examples transform and filter,
//! and each hostile plugin is stopped by the bound it attacks.

use std::sync::Arc;
use std::time::{Duration, Instant};

use gateway::plugins::{Budget, PluginFailure, UploadError, Verdict};
use gateway_tests::plugins::{delivered, host_with, input, order_v1, plugin_config, run, wasm};
use serde_json::json;
use sha2::{Digest, Sha256};

/// Every component the build script makes, but `wrong_world`.
const PLUGINS: [&str; 8] = [
    "schema_upgrade",
    "json_filter",
    "pii_redactor",
    "infinite_loop",
    "memory_hog",
    "trap",
    "oversized_output",
    "log_flood",
];

/// Wall-clock slack allowed on top of a budget: this machine has 2 cores
/// shared with other builds.
const SLACK: Duration = Duration::from_millis(250);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_plugin_compiles_to_its_sha256() {
    let host = host_with(|_| {});
    for name in PLUGINS {
        let bytes = wasm(name);
        let sha = host
            .compile(bytes.clone())
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(sha, hex(&Sha256::digest(bytes.as_slice())), "{name}");
        assert!(host.is_cached(&sha), "{name}");
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_that_are_not_plugins_are_refused_with_a_reason() {
    let host = host_with(|_| {});
    let refuse = |bytes: Vec<u8>| {
        let host = host.clone();
        async move { host.compile(Arc::new(bytes)).await.unwrap_err() }
    };

    let err = refuse(wasm("wrong_world").to_vec()).await;
    assert!(matches!(err, UploadError::WrongWorld(_)), "{err:?}");
    assert!(
        err.to_string().contains("gateway:plugin/plugin@0.1.0"),
        "{err}"
    );

    let err = refuse(b"\0asm\x01\0\0\0".to_vec()).await;
    assert!(matches!(err, UploadError::CoreModule), "{err:?}");
    assert!(err.to_string().contains("--target wasm32-wasip2"), "{err}");

    let err = refuse(b"{\"not\": \"wasm\"}".to_vec()).await;
    assert!(matches!(err, UploadError::NotWasm), "{err:?}");

    let truncated = wasm("schema_upgrade")[..200].to_vec();
    let err = refuse(truncated).await;
    assert!(matches!(err, UploadError::Invalid(_)), "{err:?}");

    let too_large = vec![0; plugin_config().max_upload_bytes + 1];
    let err = refuse(too_large).await;
    assert!(matches!(err, UploadError::Invalid(_)), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_component_beyond_the_pool_limits_is_refused_at_compile_time() {
    // A Rust guest's memory starts at 17 pages (1.06 MiB): a 1 MiB slot
    // cannot hold it.
    let host = host_with(|c| {
        c.max_memory_bytes = 1 << 20;
        c.memory_bytes = 1 << 20;
    });
    let err = host.compile(wasm("schema_upgrade")).await.unwrap_err();
    let UploadError::Limits(reason) = &err else {
        panic!("expected a limits error, got {err:?}");
    };
    assert!(reason.contains("minimum byte size"), "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_examples_transform_filter_and_redact() {
    let host = host_with(|_| {});
    let budget = host.default_budget();

    let upgraded = run(&host, "schema_upgrade", &order_v1(), budget).await;
    let (event, data) = delivered(&upgraded);
    assert_eq!(event.schema_version, Some(2));
    assert_eq!(
        event.metadata,
        [("tenant-id".to_string(), "t1".to_string())]
    );
    assert_eq!(
        data["customer"],
        json!({"first_name": "Ada", "last_name": "Lovelace"})
    );
    assert_eq!(data["amount"], json!({"value": 1250, "currency": "EUR"}));
    assert!(upgraded.duration < Duration::from_millis(budget.deadline_ms));

    let filter = json!({"all": [{"pointer": "/amount", "op": "gt", "value": 100}]});
    let small = input("order.created", None, json!({"amount": 5}), filter.clone());
    let dropped = run(&host, "json_filter", &small, budget).await;
    assert!(matches!(&dropped.result, Ok(Verdict::Drop(r)) if r.contains("/amount")));
    let big = input("order.created", None, json!({"amount": 500}), filter);
    delivered(&run(&host, "json_filter", &big, budget).await);

    let pii = json!({"note": "mail ada@example.com", "card": "4111 1111 1111 1111"});
    let redacted = run(
        &host,
        "pii_redactor",
        &input("x", None, pii, json!({})),
        budget,
    )
    .await;
    let (_, data) = delivered(&redacted);
    assert!(!data.to_string().contains("ada@example.com"), "{data}");
    assert!(!data.to_string().contains("4111"), "{data}");

    let bad_config = input("order.created", Some(1), json!({}), json!({"currency": 1}));
    let failed = run(&host, "schema_upgrade", &bad_config, budget).await;
    assert!(
        matches!(&failed.result, Err(PluginFailure::PluginError { kind, .. }) if kind == "invalid-config"),
        "{:?}",
        failed.result
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_infinite_loop_is_stopped_by_its_cpu_budget_or_deadline() {
    let host = host_with(|_| {});
    let budget = Budget {
        cpu_ms: 20,
        deadline_ms: 10_000,
        memory_bytes: 16 << 20,
    };
    let started = Instant::now();
    let spun = run(&host, "infinite_loop", &order_v1(), budget).await;
    assert_eq!(spun.result.unwrap_err(), PluginFailure::CpuBudget);
    assert_eq!(spun.cpu_ticks, 20);
    assert!(
        spun.duration >= Duration::from_millis(15),
        "{:?}",
        spun.duration
    );
    assert!(
        spun.duration < Duration::from_millis(20) + SLACK,
        "{:?}",
        spun.duration
    );
    assert!(started.elapsed() < Duration::from_secs(5));

    let budget = Budget {
        cpu_ms: 10_000,
        deadline_ms: 30,
        ..budget
    };
    let late = run(&host, "infinite_loop", &order_v1(), budget).await;
    assert_eq!(late.result.unwrap_err(), PluginFailure::Deadline);
    assert!(
        late.duration < Duration::from_millis(30) + SLACK,
        "{:?}",
        late.duration
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_traps_and_oversized_output_are_reported() {
    let host = host_with(|_| {});
    let budget = Budget {
        memory_bytes: 16 << 20,
        ..host.default_budget()
    };

    let hog = run(&host, "memory_hog", &order_v1(), budget).await;
    assert_eq!(hog.result.unwrap_err(), PluginFailure::Memory);

    let trapped = run(&host, "trap", &order_v1(), budget).await;
    let Err(PluginFailure::Trap(reason)) = &trapped.result else {
        panic!("expected a trap, got {:?}", trapped.result);
    };
    assert!(reason.contains("unreachable"), "{reason}");
    assert_eq!(trapped.logs.len(), 1, "the line before the trap is kept");
    assert_eq!(trapped.logs[0].level, "error");
    assert!(trapped.logs[0].message.contains("evt_1"));

    let big = input("x", None, json!({}), json!({"bytes": 2 << 20}));
    let oversized = run(&host, "oversized_output", &big, budget).await;
    match oversized.result {
        Err(PluginFailure::OutputTooLarge { bytes, limit }) => {
            assert!(bytes > 2 << 20, "{bytes}");
            assert_eq!(limit, plugin_config().max_output_bytes);
        }
        other => panic!("expected OutputTooLarge, got {other:?}"),
    }

    // The same slots serve the next call as if nothing happened.
    delivered(&run(&host, "schema_upgrade", &order_v1(), budget).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_are_capped_by_lines_and_bytes() {
    let host = host_with(|_| {});
    let budget = host.default_budget();
    let (max_lines, max_bytes) = (plugin_config().max_log_lines, plugin_config().max_log_bytes);

    let many = input(
        "x",
        None,
        json!({}),
        json!({"lines": 1000, "line_bytes": 10}),
    );
    let flood = run(&host, "log_flood", &many, budget).await;
    delivered(&flood);
    assert_eq!(flood.logs.len(), max_lines as usize);
    assert_eq!(flood.logs_dropped, 1000 - max_lines);

    let long = input(
        "x",
        None,
        json!({}),
        json!({"lines": 50, "line_bytes": 1000}),
    );
    let flood = run(&host, "log_flood", &long, budget).await;
    let kept: usize = flood.logs.iter().map(|l| l.message.len()).sum();
    assert!(kept <= max_bytes && kept > max_bytes - 1100, "{kept}");
    assert_eq!(flood.logs.len() + flood.logs_dropped as usize, 50);
}
