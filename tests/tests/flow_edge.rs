//! Edge flow control against a real redis-server and real gateway processes:
//! tenant ingest limits changed live on two instances, 429 with
//! `Retry-After` and `RateLimit-*` that stores nothing, load shedding of one
//! tenant by its backlog, per-address limits, and batch ingest.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use gateway_tests::{
    Api, Gateway, GatewayOptions, OPERATOR_TOKEN, Receiver, Redis, Tenant, free_port, wait_until,
};
use redis::AsyncCommands;
use reqwest::Method;
use serde_json::{Value, json};

/// Entries in every ingest stream (fan-out acknowledges, never deletes).
async fn ingested(redis: &Redis) -> usize {
    let mut conn = redis.conn().await;
    let mut total = 0;
    for p in 0..4 {
        let len: usize = conn.xlen(format!("gw:{{p{p}}}:ingest")).await.unwrap();
        total += len;
    }
    total
}

/// The tenant's backlog counters, summed over the partitions.
async fn backlog(redis: &Redis, tenant: &Tenant) -> i64 {
    let mut conn = redis.conn().await;
    let mut total = 0;
    for p in 0..4 {
        let n: Option<i64> = conn
            .get(format!("gw:{{p{p}}}:backlog:{}", tenant.id))
            .await
            .unwrap();
        total += n.unwrap_or(0);
    }
    total
}

async fn set_limits(api: &Api, tenant: &Tenant, limits: Value) {
    let path = format!("/v1/admin/tenants/{}/limits", tenant.id);
    let (status, body) = api
        .call(Method::PUT, &path, OPERATOR_TOKEN, Some(limits))
        .await;
    assert_eq!(status, 200, "{body}");
}

/// Posts to `path`; returns the status, the headers and the parsed body.
async fn post(
    api: &Api,
    path: &str,
    tenant: &Tenant,
    body: Value,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let response = api
        .request(Method::POST, path, &tenant.key)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    (
        status,
        headers,
        serde_json::from_str(&text).unwrap_or(Value::Null),
    )
}

fn header(headers: &reqwest::header::HeaderMap, name: &str) -> Option<String> {
    headers.get(name).map(|v| v.to_str().unwrap().to_string())
}

fn event(n: usize) -> Value {
    json!({"type": "order.created", "data": {"n": n}})
}

/// A refusal: problem+json with `status` and an integer `Retry-After` ≥ 1.
fn assert_refused(got: &(u16, reqwest::header::HeaderMap, Value), status: u16) {
    let (s, headers, body) = got;
    assert_eq!(*s, status, "{body}");
    assert_eq!(
        header(headers, "content-type").as_deref(),
        Some("application/problem+json")
    );
    assert_eq!(body["status"], status, "{body}");
    let retry: u64 = header(headers, "retry-after")
        .expect("Retry-After")
        .parse()
        .expect("Retry-After in whole seconds");
    assert!(retry >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_limit_changed_live_applies_on_both_instances_and_refusals_store_nothing() {
    let redis = Redis::ephemeral();
    let gateways = [Gateway::spawn(&redis), Gateway::spawn(&redis)];
    let apis: Vec<Api> = gateways.iter().map(Gateway::api).collect();
    let tenant = apis[0].create_tenant("acme").await;

    // Unlimited: every request passes, with no RateLimit headers.
    for api in &apis {
        for n in 0..5 {
            let got = post(api, "/v1/events", &tenant, event(n)).await;
            assert_eq!(got.0, 202, "{}", got.2);
            assert!(header(&got.1, "ratelimit-limit").is_none());
        }
    }

    set_limits(
        &apis[0],
        &tenant,
        json!({"ingest_per_second": 1, "ingest_burst": 2}),
    )
    .await;
    let changed = Instant::now();
    for api in &apis {
        let refused = wait_until(
            "a 429 after the limit changed",
            Duration::from_secs(2),
            || async {
                let got = post(api, "/v1/events", &tenant, event(0)).await;
                (got.0 == 429).then_some(got)
            },
        )
        .await;
        assert!(changed.elapsed() < Duration::from_secs(2));
        assert_refused(&refused, 429);
        assert_eq!(header(&refused.1, "ratelimit-limit").as_deref(), Some("2"));
        assert_eq!(
            header(&refused.1, "ratelimit-remaining").as_deref(),
            Some("0")
        );
        let reset: u64 = header(&refused.1, "ratelimit-reset")
            .unwrap()
            .parse()
            .unwrap();
        assert!(reset >= 1);
    }

    // Accepted answers carry the RateLimit headers.
    let ok = wait_until("the bucket refilled", Duration::from_secs(3), || async {
        let got = post(&apis[0], "/v1/events", &tenant, event(0)).await;
        (got.0 == 202).then_some(got)
    })
    .await;
    assert_eq!(header(&ok.1, "ratelimit-limit").as_deref(), Some("2"));
    assert!(header(&ok.1, "ratelimit-remaining").is_some());
    assert!(header(&ok.1, "ratelimit-reset").is_some());

    // A burst over the limit: exactly the accepted requests are stored.
    let before = ingested(&redis).await;
    let mut accepted = 0;
    for n in 0..10 {
        let got = post(&apis[0], "/v1/events", &tenant, event(n)).await;
        match got.0 {
            202 => {
                accepted += 1;
                assert_eq!(header(&got.1, "ratelimit-limit").as_deref(), Some("2"));
                assert!(header(&got.1, "ratelimit-remaining").is_some());
            }
            429 => assert_refused(&got, 429),
            other => panic!("unexpected {other}: {}", got.2),
        }
    }
    assert!(accepted < 10, "the limit let {accepted} of 10 through");
    assert_eq!(ingested(&redis).await - before, accepted);

    // Lifting the limit applies on both instances within 2 s too.
    set_limits(&apis[1], &tenant, json!({"ingest_per_second": null})).await;
    for api in &apis {
        wait_until("unlimited ingest again", Duration::from_secs(2), || async {
            let got = post(api, "/v1/events", &tenant, event(0)).await;
            (got.0 == 202 && header(&got.1, "ratelimit-limit").is_none()).then_some(())
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_shedding_refuses_only_the_tenant_over_its_backlog() {
    let redis = Redis::ephemeral();
    let gateway = Gateway::spawn_with(
        &redis,
        GatewayOptions {
            retry_schedule: vec!["0s", "30m"],
            ..GatewayOptions::default()
        },
    );
    let api = gateway.api();
    let stuck = api.create_tenant("stuck").await;
    let healthy = api.create_tenant("healthy").await;
    // Nobody listens there: each delivery fails and waits 30 minutes to retry.
    let closed = format!("http://127.0.0.1:{}/hook", free_port());
    api.create_endpoint(&stuck, json!({"url": closed})).await;
    let receiver = Receiver::start().await;
    api.create_endpoint(&healthy, json!({"url": receiver.url("/hook")}))
        .await;
    set_limits(&api, &stuck, json!({"max_backlog": 3})).await;
    set_limits(&api, &healthy, json!({"max_backlog": 1000})).await;

    for n in 0..3 {
        api.post_event(&stuck, event(n)).await;
    }
    // Requests within the gateway's one-second backlog cache may still pass.
    let late = AtomicI64::new(0);
    let shed = wait_until(
        "a 503 for the stuck tenant",
        Duration::from_secs(10),
        || async {
            let got = post(&api, "/v1/events", &stuck, event(9)).await;
            if got.0 == 202 {
                late.fetch_add(1, Ordering::SeqCst);
                return None;
            }
            Some(got)
        },
    )
    .await;
    assert_refused(&shed, 503);
    let accepted = 3 + late.load(Ordering::SeqCst);

    // A shed request stores nothing.
    let before = ingested(&redis).await;
    let got = post(&api, "/v1/events", &stuck, event(10)).await;
    assert_refused(&got, 503);
    assert_eq!(ingested(&redis).await, before);

    // The counter is exact: one per accepted event's task, still unfinished.
    wait_until(
        "the stuck backlog counted",
        Duration::from_secs(10),
        || async { (backlog(&redis, &stuck).await == accepted).then_some(()) },
    )
    .await;

    // The other tenant is not affected, and its counter returns to zero.
    for n in 0..5 {
        api.post_event(&healthy, event(n)).await;
    }
    receiver.wait_for(5, Duration::from_secs(10)).await;
    wait_until(
        "the healthy backlog drained",
        Duration::from_secs(10),
        || async { (backlog(&redis, &healthy).await == 0).then_some(()) },
    )
    .await;
    assert_eq!(backlog(&redis, &stuck).await, accepted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_stores_its_valid_items_and_reports_the_invalid_ones() {
    let redis = Redis::ephemeral();
    let gateway = Gateway::spawn(&redis);
    let api = gateway.api();
    let tenant = api.create_tenant("acme").await;
    let receiver = Receiver::start().await;
    api.create_endpoint(&tenant, json!({"url": receiver.url("/hook")}))
        .await;

    let batch = json!({"events": [
        {"type": "order.created", "data": {"n": 0}, "id": "batch-0"},
        {"type": "bad type", "data": {}},
        {"data": {}},
        {"type": "order.created", "data": {"n": 3}},
        {"type": "order.created", "data": [1]},
        5,
    ]});
    let (status, _, body) = post(&api, "/v1/events/batch", &tenant, batch.clone()).await;
    assert_eq!(status, 200, "{body}");
    let results = body["results"].as_array().unwrap();
    assert_eq!(results.len(), 6, "{body}");
    for (i, r) in results.iter().enumerate() {
        assert_eq!(r["index"], i, "{body}");
    }
    assert_eq!(results[0]["status"], 202);
    assert_eq!(results[0]["id"], "batch-0");
    assert_eq!(results[3]["status"], 202);
    let pointers = [
        (1, "/events/1/type"),
        (2, "/events/2/type"),
        (4, "/events/4/data"),
        (5, "/events/5"),
    ];
    for (i, pointer) in pointers {
        assert_eq!(results[i]["status"], 422, "{body}");
        assert_eq!(results[i]["errors"][0]["pointer"], pointer, "{body}");
        assert!(results[i].get("id").is_none());
    }
    assert_eq!(ingested(&redis).await, 2);

    let delivered = receiver.wait_for(2, Duration::from_secs(10)).await;
    let mut ns: Vec<i64> = delivered
        .iter()
        .map(|r| r.json()["data"]["n"].as_i64().unwrap())
        .collect();
    ns.sort();
    assert_eq!(ns, [0, 3]);

    // The same batch again: the item with an id is deduplicated.
    let (status, _, body) = post(&api, "/v1/events/batch", &tenant, batch).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["results"][0]["id"], "batch-0");
    assert_eq!(body["results"][0]["duplicate"], true);
    assert_eq!(ingested(&redis).await, 3);

    // Too many items, or none: the whole request is refused.
    let many: Vec<Value> = (0..1001).map(event).collect();
    let (status, _, body) = post(&api, "/v1/events/batch", &tenant, json!({"events": many})).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["errors"][0]["pointer"], "/events");
    let (status, _, _) = post(&api, "/v1/events/batch", &tenant, json!({"events": []})).await;
    assert_eq!(status, 422);

    // Each valid item counts against the rate; a batch over what is left is
    // refused whole and stores nothing.
    let limited = api.create_tenant("limited").await;
    set_limits(
        &api,
        &limited,
        json!({"ingest_per_second": 1, "ingest_burst": 5}),
    )
    .await;
    let four: Vec<Value> = (0..4).map(event).collect();
    let (status, headers, body) =
        post(&api, "/v1/events/batch", &limited, json!({"events": four})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        header(&headers, "ratelimit-remaining").as_deref(),
        Some("1")
    );
    let before = ingested(&redis).await;
    let three: Vec<Value> = (0..3).map(event).collect();
    let got = post(&api, "/v1/events/batch", &limited, json!({"events": three})).await;
    assert_refused(&got, 429);
    assert_eq!(ingested(&redis).await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthenticated_routes_and_failed_auth_are_limited_per_address() {
    let redis = Redis::ephemeral();
    let gateway = Gateway::spawn_with(
        &redis,
        GatewayOptions {
            extra: "[limits]\npublic_per_second = 1\npublic_burst = 3\n".into(),
            ..GatewayOptions::default()
        },
    );
    let api = gateway.api();
    let tenant = api.create_tenant("acme").await;
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let response = api.http.get(api.url("/healthz")).send().await.unwrap();
        statuses.push(response.status().as_u16());
    }
    let (status, _) = api.get("/v1/endpoints", "not-a-key").await;
    statuses.push(status);
    assert_eq!(statuses, [200, 200, 200, 429]);
    let response = api.http.get(api.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 429);
    assert!(response.headers().get("retry-after").is_some());
    // Authenticated requests are not counted against the address.
    let (status, _) = api.get("/v1/endpoints", &tenant.key).await;
    assert_eq!(status, 200);
}
