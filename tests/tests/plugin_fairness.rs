//! A hostile plugin hurts nobody: while one tenant's plugin loops forever on
//! every event, another tenant's deliveries go on at no less than half their
//! rate, and each hostile plugin's events end where the policy says, with
//! the reason (its CPU budget, or the breaker that stops running it after it
//! exhausted its budget several times in a row).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use gateway_tests::{Api, Gateway, Receiver, Redis, Tenant, wait_until};
use reqwest::Method;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);

fn wasm(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/{name}.wasm", env!("PLUGINS_WASM_DIR"))).expect("a built plugin")
}

async fn install(api: &Api, tenant: &Tenant, name: &str) {
    let response = api
        .request(Method::PUT, &format!("/v1/plugins/{name}"), &tenant.key)
        .body(wasm(name))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 201);
}

/// Posts `n` events from 4 producers and waits until `receiver` has `total`; returns events/s.
async fn delivery_rate(
    api: &Api,
    tenant: &Tenant,
    receiver: &Receiver,
    n: usize,
    total: usize,
) -> f64 {
    let started = Instant::now();
    let mut producers = Vec::new();
    for p in 0..4 {
        let (api, tenant) = (api.clone(), tenant.clone());
        producers.push(tokio::spawn(async move {
            for i in 0..n / 4 {
                api.post_event(&tenant, json!({"type": "a.b", "data": {"p": p, "i": i}}))
                    .await;
            }
        }));
    }
    for p in producers {
        p.await.unwrap();
    }
    receiver.wait_for(total, WAIT).await;
    n as f64 / started.elapsed().as_secs_f64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_looping_plugin_does_not_halve_another_tenants_delivery_rate() {
    let redis = Redis::ephemeral();
    let gateway = Gateway::spawn(&redis);
    let api = gateway.api();
    let (hostile, victim) = (
        api.create_tenant("hostile").await,
        api.create_tenant("victim").await,
    );
    install(&api, &hostile, "infinite_loop").await;
    let (sink, receiver) = (Receiver::start().await, Receiver::start().await);
    api.create_endpoint(
        &hostile,
        json!({"url": sink.url("/"), "plugins": [{"name": "infinite_loop"}]}),
    )
    .await;
    api.create_endpoint(&victim, json!({"url": receiver.url("/")}))
        .await;

    let alone = delivery_rate(&api, &victim, &receiver, 600, 600).await;

    let stop = Arc::new(AtomicBool::new(false));
    let mut attackers = Vec::new();
    for _ in 0..4 {
        let (api, tenant, stop) = (api.clone(), hostile.clone(), stop.clone());
        attackers.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            // 4 producers at about 25 events/s each: far more than the plugin
            // could burn through (each event asks for 50 ms of CPU).
            while !stop.load(Ordering::Relaxed) && ids.len() < 300 {
                ids.push(
                    api.post_event(&tenant, json!({"type": "a.b", "data": {}}))
                        .await,
                );
                tokio::time::sleep(Duration::from_millis(40)).await;
            }
            ids
        }));
    }
    let attacked = delivery_rate(&api, &victim, &receiver, 600, 1200).await;
    stop.store(true, Ordering::Relaxed);
    let mut hostile_ids = Vec::new();
    for a in attackers {
        hostile_ids.extend(a.await.unwrap());
    }
    println!(
        "victim delivery rate: alone {alone:.0}/s, beside the hostile plugin {attacked:.0}/s ({} hostile events)",
        hostile_ids.len()
    );
    assert!(
        attacked >= alone / 2.0,
        "rate fell from {alone:.0}/s to {attacked:.0}/s"
    );
    assert_eq!(sink.count(), 0);

    // Every hostile event ends dead-lettered with the reason.
    let last = hostile_ids
        .last()
        .expect("hostile events were posted")
        .clone();
    let status: Value = wait_until("the last hostile event to settle", WAIT, || async {
        let (_, e) = api.get(&format!("/v1/events/{last}"), &hostile.key).await;
        (e["deliveries"][0]["status"] == "dead_lettered").then(|| e["deliveries"][0].clone())
    })
    .await;
    let reason = status["last_error"].as_str().unwrap();
    assert!(
        reason.contains("CPU budget") || reason.contains("ran out of their budget"),
        "{status}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_hostile_plugin_ends_where_the_policy_says() {
    let redis = Redis::ephemeral();
    let gateway = Gateway::spawn(&redis);
    let api = gateway.api();
    let tenant = api.create_tenant("acme").await;
    let cases = [
        (
            "infinite_loop",
            "dead_letter",
            json!({}),
            "dead_lettered",
            "CPU budget",
        ),
        ("memory_hog", "drop", json!({}), "dropped", "memory"),
        ("trap", "dead_letter", json!({}), "dead_lettered", "trapped"),
        (
            "oversized_output",
            "drop",
            json!({"bytes": 2_000_000}),
            "dropped",
            "more than the limit",
        ),
        ("log_flood", "dead_letter", json!({}), "delivered", ""),
    ];
    let mut expected = Vec::new();
    for (plugin, policy, config, want, reason) in cases {
        install(&api, &tenant, plugin).await;
        let receiver = Receiver::start().await;
        let spec = json!({"url": receiver.url("/"), "event_types": [plugin], "on_plugin_error": policy,
                          "plugins": [{"name": plugin, "config": config}]});
        api.create_endpoint(&tenant, spec).await;
        let id = api
            .post_event(&tenant, json!({"type": plugin, "data": {"n": 1}}))
            .await;
        expected.push((plugin, id, want, reason, receiver));
    }
    for (plugin, id, want, reason, receiver) in expected {
        let status: Value = wait_until(&format!("{plugin}'s event to settle"), WAIT, || async {
            let (_, e) = api.get(&format!("/v1/events/{id}"), &tenant.key).await;
            let d = e["deliveries"][0].clone();
            (d["status"] != "pending" && !d.is_null()).then_some(d)
        })
        .await;
        assert_eq!(status["status"], want, "{plugin}: {status}");
        assert!(
            status["last_error"]
                .as_str()
                .unwrap_or_default()
                .contains(reason),
            "{plugin}: {status}"
        );
        let delivered = usize::from(want == "delivered");
        assert_eq!(receiver.count(), delivered, "{plugin}");
    }
    let (status, _) = api.get("/healthz", "").await;
    assert_eq!(status, 200, "the gateway is still up");
}
