//! Per-endpoint batching, end to end: one signed POST with a JSON array per
//! batch, a failed batch retried as a unit, `max_wait_ms` flushing a partial
//! batch, and the tenant's backlog counted exactly once per event.
//!
//! The gateways run one partition, so every event of a test is collected
//! into the same batches (batches are collected per partition).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use gateway_tests::{
    Api, Gateway, GatewayOptions, Receiver, Recorded, Redis, Reply, Tenant, verify_signature,
    wait_until,
};
use redis::AsyncCommands;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(20);

async fn setup() -> (Redis, Gateway, Api, Tenant, Receiver) {
    let redis = Redis::ephemeral();
    let gateway = Gateway::spawn_with(
        &redis,
        GatewayOptions {
            partitions: 1,
            ..GatewayOptions::default()
        },
    );
    let api = gateway.api();
    let tenant = api.create_tenant("acme").await;
    let receiver = Receiver::start().await;
    (redis, gateway, api, tenant, receiver)
}

async fn post_events(api: &Api, tenant: &Tenant, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..n {
        ids.push(
            api.post_event(tenant, json!({"type": "a.b", "data": {"n": i}}))
                .await,
        );
    }
    ids
}

/// The `data.n` of every event in a batch request, in order.
fn members(request: &Recorded) -> Vec<u64> {
    let body = request.json();
    let events = body.as_array().expect("a batch body is a JSON array");
    events
        .iter()
        .map(|e| {
            assert_eq!(e["type"], "a.b");
            assert!(e["timestamp"].is_string());
            e["data"]["n"].as_u64().expect("data.n")
        })
        .collect()
}

async fn delivery(api: &Api, tenant: &Tenant, id: &str) -> Value {
    let (status, event) = api.get(&format!("/v1/events/{id}"), &tenant.key).await;
    assert_eq!(status, 200, "{event}");
    event["deliveries"][0].clone()
}

async fn wait_all_delivered(api: &Api, tenant: &Tenant, ids: &[String]) -> Vec<Value> {
    let mut statuses = Vec::new();
    for id in ids {
        statuses.push(
            wait_until(&format!("event {id} delivered"), WAIT, || async {
                let d = delivery(api, tenant, id).await;
                (d["status"] == "delivered").then_some(d)
            })
            .await,
        );
    }
    statuses
}

async fn attempts(api: &Api, tenant: &Tenant, endpoint: &str) -> Vec<Value> {
    let path = format!("/v1/endpoints/{endpoint}/attempts?limit=250");
    let (status, page) = api.get(&path, &tenant.key).await;
    assert_eq!(status, 200, "{page}");
    page["data"].as_array().unwrap().clone()
}

/// The tenant's backlog counter goes back to zero: each event counted once.
async fn wait_backlog_empty(redis: &Redis, tenant: &Tenant) {
    let mut conn = redis.conn().await;
    let key = format!("gw:{{p0}}:backlog:{}", tenant.id);
    wait_until("the backlog to drain", WAIT, || {
        let (mut conn, key) = (conn.clone(), key.clone());
        async move {
            let n: Option<i64> = conn.get(&key).await.unwrap();
            n.is_none().then_some(())
        }
    })
    .await;
    let n: Option<i64> = conn.get(&key).await.unwrap();
    assert_eq!(n, None, "the backlog counter is gone, not negative");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batched_endpoint_gets_signed_arrays_of_at_most_max_events() {
    let (redis, _gw, api, tenant, receiver) = setup().await;
    let endpoint = api
        .create_endpoint(
            &tenant,
            json!({"url": receiver.url("/"), "batch": {"max_events": 5, "max_wait_ms": 1000}}),
        )
        .await;
    let (status, shown) = api
        .get(&format!("/v1/endpoints/{}", endpoint.id), &tenant.key)
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        shown["batch"],
        json!({"max_events": 5, "max_wait_ms": 1000})
    );

    const N: usize = 20;
    let ids = post_events(&api, &tenant, N).await;
    wait_all_delivered(&api, &tenant, &ids).await;

    let requests = receiver.requests();
    let mut seen = BTreeSet::new();
    for request in &requests {
        verify_signature(&endpoint.secret, request).expect("the array body verifies");
        assert!(request.header("webhook-id").unwrap().starts_with("batch_"));
        let got = members(request);
        assert!(
            (1..=5).contains(&got.len()),
            "{} events in a batch",
            got.len()
        );
        seen.extend(got);
    }
    assert_eq!(seen, (0..N as u64).collect(), "every event arrived");
    assert!(
        requests.len() < N,
        "events went together: {} requests",
        requests.len()
    );
    assert!(
        requests.iter().any(|r| members(r).len() == 5),
        "full batches"
    );

    let rows = attempts(&api, &tenant, &endpoint.id).await;
    assert_eq!(rows.len(), N, "one attempt row per event");
    for row in &rows {
        assert!(row["batch_id"].as_str().unwrap().starts_with("batch_"));
        assert_eq!(row["status_code"], 200);
    }
    wait_backlog_empty(&redis, &tenant).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_batch_is_retried_as_a_unit_and_every_event_is_delivered() {
    let (redis, _gw, api, tenant, receiver) = setup().await;
    receiver.script([Reply::status(500)]);
    receiver.set_default(Reply::ok());
    let endpoint = api
        .create_endpoint(
            &tenant,
            json!({"url": receiver.url("/"), "batch": {"max_events": 5, "max_wait_ms": 2000}}),
        )
        .await;
    let ids = post_events(&api, &tenant, 5).await;

    let statuses = wait_all_delivered(&api, &tenant, &ids).await;
    for status in &statuses {
        assert_eq!(status["attempts"], 2, "{status}");
    }
    let requests = receiver.requests();
    assert_eq!(requests.len(), 2, "one failed request, one retry");
    let (first, retry) = (&requests[0], &requests[1]);
    assert_eq!(
        first.header("webhook-id"),
        retry.header("webhook-id"),
        "the same batch id"
    );
    assert_eq!(members(first), members(retry), "the same members");
    let mut all = members(first);
    all.sort_unstable();
    assert_eq!(all, vec![0, 1, 2, 3, 4], "every event in the one batch");
    for request in &requests {
        verify_signature(&endpoint.secret, request).expect("each attempt verifies");
    }

    let batch_id = first.header("webhook-id").unwrap();
    let rows = attempts(&api, &tenant, &endpoint.id).await;
    assert_eq!(rows.len(), 10, "one row per event per attempt");
    for id in &ids {
        let mut codes: Vec<(u64, u64)> = rows
            .iter()
            .filter(|r| r["event_id"] == id.as_str())
            .map(|r| {
                assert_eq!(r["batch_id"], batch_id);
                (
                    r["attempt"].as_u64().unwrap(),
                    r["status_code"].as_u64().unwrap(),
                )
            })
            .collect();
        codes.sort_unstable();
        assert_eq!(codes, vec![(1, 500), (2, 200)], "attempts of {id}");
    }
    wait_backlog_empty(&redis, &tenant).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_wait_flushes_a_partial_batch() {
    let (_redis, _gw, api, tenant, receiver) = setup().await;
    let endpoint = api
        .create_endpoint(
            &tenant,
            json!({"url": receiver.url("/"), "batch": {"max_events": 10, "max_wait_ms": 500}}),
        )
        .await;
    let posted = Instant::now();
    let ids = post_events(&api, &tenant, 3).await;
    let got = receiver.wait_for(1, WAIT).await;
    let waited = got[0].at - posted;
    assert!(
        waited >= Duration::from_millis(450),
        "sent after {waited:?}, before max_wait_ms"
    );
    verify_signature(&endpoint.secret, &got[0]).expect("the partial batch verifies");
    let mut all = members(&got[0]);
    all.sort_unstable();
    assert_eq!(all, vec![0, 1, 2]);
    wait_all_delivered(&api, &tenant, &ids).await;
    assert_eq!(receiver.count(), 1, "one request for the partial batch");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_settings_are_validated_and_can_be_turned_off() {
    let (_redis, _gw, api, tenant, receiver) = setup().await;
    for bad in [
        json!({"max_events": 1, "max_wait_ms": 100}),
        json!({"max_events": 101, "max_wait_ms": 100}),
        json!({"max_events": 5, "max_wait_ms": 0}),
        json!({"max_events": 5, "max_wait_ms": 10_001}),
    ] {
        let (status, body) = api
            .call(
                reqwest::Method::POST,
                "/v1/endpoints",
                &tenant.key,
                Some(json!({"url": receiver.url("/"), "batch": bad})),
            )
            .await;
        assert_eq!(status, 422, "{bad} -> {body}");
    }
    let endpoint = api
        .create_endpoint(
            &tenant,
            json!({"url": receiver.url("/"), "batch": {"max_events": 2, "max_wait_ms": 1}}),
        )
        .await;
    let path = format!("/v1/endpoints/{}", endpoint.id);
    let (status, body) = api
        .call(
            reqwest::Method::PATCH,
            &path,
            &tenant.key,
            Some(json!({"batch": null})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("batch").is_none(), "{body}");
    let id = api
        .post_event(&tenant, json!({"type": "a.b", "data": {"n": 7}}))
        .await;
    wait_all_delivered(&api, &tenant, &[id]).await;
    let got = receiver.requests();
    assert_eq!(
        got[0].json()["data"]["n"],
        7,
        "a single event, not an array"
    );
}
