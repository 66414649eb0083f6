//! Flow control on the delivery side, end to end: an endpoint's rate and its
//! cap on requests in flight kept by two instances together, its circuit
//! breaker (open, probe, close), and fairness between a slow endpoint and a
//! fast one.
//!
//! The tests measure time, so they take turns ([`SERIAL`]) rather than
//! compete for the same cores.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use gateway::model::{EndpointId, EventId, Task, TenantId};
use gateway_tests::{Api, Gateway, GatewayOptions, Receiver, Redis, Reply, Tenant, wait_until};
use serde_json::{Value, json};

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Posts `n` events of `event_type`, 20 at a time.
async fn post_many(api: &Api, tenant: &Tenant, event_type: &str, n: usize) {
    for start in (0..n).step_by(20) {
        let mut posts = tokio::task::JoinSet::new();
        for i in start..(start + 20).min(n) {
            let (api, tenant) = (api.clone(), tenant.clone());
            let event = json!({"type": event_type, "data": {"n": i}});
            posts.spawn(async move { api.post_event(&tenant, event).await });
        }
        while let Some(posted) = posts.join_next().await {
            posted.expect("a post");
        }
    }
}

/// Every row of an endpoint's attempt log.
async fn all_attempts(api: &Api, tenant: &Tenant, endpoint: &str) -> Vec<Value> {
    let mut rows = Vec::new();
    let mut path = format!("/v1/endpoints/{endpoint}/attempts?limit=250");
    loop {
        let (status, page) = api.get(&path, &tenant.key).await;
        assert_eq!(status, 200, "{page}");
        rows.extend(page["data"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => path = format!("/v1/endpoints/{endpoint}/attempts?limit=250&cursor={c}"),
            None => return rows,
        }
    }
}

/// The endpoint's attempt log once it holds at least `n` rows: a receiver
/// has answered before the gateway logs the attempt, so the last rows can
/// trail the receiver's count by a moment.
async fn attempts_once_logged(api: &Api, tenant: &Tenant, endpoint: &str, n: usize) -> Vec<Value> {
    wait_until(
        "the attempts to be logged",
        Duration::from_secs(10),
        || async {
            let rows = all_attempts(api, tenant, endpoint).await;
            (rows.len() >= n).then_some(rows)
        },
    )
    .await
}

async fn metric(api: &Api, name: &str) -> u64 {
    api.metric(name).await as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_together_keep_an_endpoints_rate_and_deliver_everything() {
    let _turn = SERIAL.lock().await;
    let redis = Redis::ephemeral();
    let (a, b) = (
        Gateway::spawn_with(&redis, GatewayOptions::default()),
        Gateway::spawn_with(&redis, GatewayOptions::default()),
    );
    let api = a.api();
    let tenant = api.create_tenant("acme").await;
    let receiver = Receiver::start().await;
    let endpoint = api
        .create_endpoint(
            &tenant,
            json!({"url": receiver.url("/"), "rate_per_second": 50}),
        )
        .await;

    const N: usize = 600;
    post_many(&api, &tenant, "a.b", N).await;
    let got = receiver.wait_for(N, Duration::from_secs(30)).await;

    // The steady window: after the first second, before the last one.
    let (from, to) = (50, N - 50);
    let span = got[to].at - got[from].at;
    let rate = (to - from) as f64 / span.as_secs_f64();
    eprintln!("rate over {span:?}: {rate:.1} events/s");
    assert!(
        (45.0..=55.0).contains(&rate),
        "{rate:.1} events/s, not 50 ± 10%"
    );
    let mut ids: Vec<_> = got
        .iter()
        .map(|r| r.header("webhook-id").unwrap())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), N, "every event arrived, each once");

    let attempts = attempts_once_logged(&api, &tenant, &endpoint.id, N).await;
    assert_eq!(attempts.len(), N, "one attempt logged per event");
    assert!(
        attempts.iter().all(|a| a["attempt"] == 1),
        "waiting for the rate is not an attempt"
    );
    let held = metric(&api, "gateway_deliveries_held_back_total").await
        + metric(&b.api(), "gateway_deliveries_held_back_total").await;
    assert!(held as usize >= N / 2, "tasks were held back: {held}");
    for gw in [&a, &b] {
        assert!(
            metric(&gw.api(), "gateway_deliveries_succeeded_total").await > 0,
            "both instances delivered"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_endpoint_opens_its_circuit_probes_once_and_closes() {
    let _turn = SERIAL.lock().await;
    let redis = Redis::ephemeral();
    let options = GatewayOptions {
        retry_schedule: vec!["0s", "200ms", "200ms", "200ms", "200ms", "200ms"],
        extra: "[circuit]\nfailures = 3\nopen_for = \"2s\"\n".into(),
        ..GatewayOptions::default()
    };
    let (a, _b) = (
        Gateway::spawn_with(&redis, options.clone()),
        Gateway::spawn_with(&redis, options),
    );
    let api = a.api();
    let tenant = api.create_tenant("acme").await;
    let receiver = Receiver::start().await;
    // Three failures open it; the first probe fails and re-opens it; the
    // second succeeds, slowly enough to see that nothing else goes meanwhile.
    receiver.script([
        Reply::status(500),
        Reply::status(500),
        Reply::status(500),
        Reply::status(500),
        Reply::ok().delay(Duration::from_millis(500)),
    ]);
    let endpoint = api
        .create_endpoint(&tenant, json!({"url": receiver.url("/")}))
        .await;
    let path = format!("/v1/endpoints/{}", endpoint.id);
    let first = api
        .post_event(&tenant, json!({"type": "a.b", "data": {}}))
        .await;

    let circuit = wait_until("the circuit to open", Duration::from_secs(10), || async {
        let (_, ep) = api.get(&path, &tenant.key).await;
        (ep["circuit"]["state"] == "open").then_some(ep["circuit"].clone())
    })
    .await;
    assert_eq!(circuit["failures"], 3, "{circuit}");
    assert!(circuit["open_until"].is_string(), "{circuit}");
    let mut events = vec![first];
    for n in 0..5 {
        events.push(
            api.post_event(&tenant, json!({"type": "a.b", "data": {"n": n}}))
                .await,
        );
    }

    let got = receiver.wait_for(5, Duration::from_secs(10)).await;
    let gap = |i: usize| got[i].at - got[i - 1].at;
    assert!(
        gap(3) >= Duration::from_millis(1900),
        "probe after {:?}",
        gap(3)
    );
    assert!(
        gap(4) >= Duration::from_millis(1900),
        "re-opened for {:?}",
        gap(4)
    );
    let closed = wait_until("the circuit to close", Duration::from_secs(5), || async {
        let (_, ep) = api.get(&path, &tenant.key).await;
        (ep["circuit"]["state"] == "closed").then_some(ep["circuit"].clone())
    })
    .await;
    assert_eq!(closed["failures"], 0, "{closed}");

    let all = receiver
        .wait_for(3 + 1 + events.len(), Duration::from_secs(10))
        .await;
    assert!(
        all[5].at - all[4].at >= Duration::from_millis(500),
        "another request went while the probe was under way: {:?}",
        all[5].at - all[4].at
    );
    // Waiting behind the open circuit is not an attempt: each event's
    // attempt count is the number of requests it made.
    let mut sent: HashMap<&str, u64> = HashMap::new();
    for r in &all {
        *sent.entry(r.header("webhook-id").unwrap()).or_default() += 1;
    }
    for id in &events {
        let (_, event) = wait_until("delivered", Duration::from_secs(5), || async {
            let (s, e) = api.get(&format!("/v1/events/{id}"), &tenant.key).await;
            (e["deliveries"][0]["status"] == "delivered").then_some((s, e))
        })
        .await;
        let delivery = &event["deliveries"][0];
        let msg = Task::new(
            &TenantId::new(&tenant.id),
            &EventId::new(id),
            &EndpointId::new(&endpoint.id),
        )
        .msg_id;
        assert_eq!(
            delivery["attempts"].as_u64().unwrap(),
            sent[msg.as_str()],
            "{event}"
        );
    }
    assert_eq!(
        all_attempts(&api, &tenant, &endpoint.id).await.len(),
        all.len()
    );
}

/// The latency of events to `fast`, posted one at a time: post → arrival.
async fn latencies(api: &Api, tenant: &Tenant, fast: &Receiver, n: usize) -> Vec<Duration> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let before = fast.count();
        let posted = Instant::now();
        api.post_event(tenant, json!({"type": "fast", "data": {}}))
            .await;
        let got = fast.wait_for(before + 1, Duration::from_secs(20)).await;
        out.push(got[before].at - posted);
    }
    out.sort();
    out
}

fn p99(sorted: &[Duration]) -> Duration {
    sorted[(sorted.len() * 99).div_ceil(100) - 1]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_endpoint_does_not_slow_the_others() {
    let _turn = SERIAL.lock().await;
    let redis = Redis::ephemeral();
    let gateway = Gateway::spawn_with(
        &redis,
        GatewayOptions {
            max_timeout_ms: 10_000,
            default_timeout_ms: 10_000,
            visibility_timeout: "30s",
            ..GatewayOptions::default()
        },
    );
    let api = gateway.api();
    let tenant = api.create_tenant("acme").await;
    let (slow, fast) = (Receiver::start().await, Receiver::start().await);
    slow.set_default(Reply::ok().delay(Duration::from_secs(5)));
    for (receiver, kind) in [(&slow, "slow"), (&fast, "fast")] {
        api.create_endpoint(
            &tenant,
            json!({"url": receiver.url("/"), "event_types": [kind]}),
        )
        .await;
    }

    let alone = latencies(&api, &tenant, &fast, 40).await;
    // More slow deliveries than the process has permits (256).
    post_many(&api, &tenant, "slow", 400).await;
    wait_until(
        "the slow endpoint to hold its share of permits",
        Duration::from_secs(10),
        || async { (slow.in_flight() >= 32).then_some(()) },
    )
    .await;
    let beside = latencies(&api, &tenant, &fast, 40).await;
    assert!(slow.in_flight() >= 32, "the slow endpoint stayed busy");

    let (p_alone, p_beside) = (p99(&alone), p99(&beside));
    eprintln!("fast endpoint p99: alone {p_alone:?}, beside a slow one {p_beside:?}");
    // Twice the latency alone, with a floor for scheduling noise on a shared machine.
    let bound = 2 * p_alone.max(Duration::from_millis(50));
    assert!(
        p_beside <= bound,
        "p99 {p_beside:?} beside a slow endpoint, {p_alone:?} alone"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_together_keep_an_endpoints_cap_on_requests_in_flight() {
    let _turn = SERIAL.lock().await;
    let redis = Redis::ephemeral();
    let (a, b) = (
        Gateway::spawn_with(&redis, GatewayOptions::default()),
        Gateway::spawn_with(&redis, GatewayOptions::default()),
    );
    let api = a.api();
    let tenant = api.create_tenant("acme").await;
    let receiver = Receiver::start().await;
    const ANSWER_AFTER: Duration = Duration::from_millis(300);
    receiver.set_default(Reply::ok().delay(ANSWER_AFTER));
    let endpoint = api
        .create_endpoint(
            &tenant,
            json!({"url": receiver.url("/"), "max_in_flight": 2}),
        )
        .await;

    const N: usize = 12;
    // Half the events through each instance.
    let (api_a, api_b) = (api.clone(), b.api());
    let (half_a, half_b) = (
        post_many(&api_a, &tenant, "a.b", N / 2),
        post_many(&api_b, &tenant, "a.b", N / 2),
    );
    tokio::join!(half_a, half_b);
    // Sampled while the events are delivered, then checked against the
    // arrival times: every request takes at least ANSWER_AFTER.
    let mut sampled = 0;
    let deadline = Instant::now() + Duration::from_secs(30);
    while receiver.answered().len() < N {
        assert!(Instant::now() < deadline, "not every event was answered");
        sampled = sampled.max(receiver.in_flight());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let got = receiver.requests();
    let overlapping = got
        .iter()
        .map(|r| {
            got.iter()
                .filter(|o| o.at <= r.at && r.at < o.at + ANSWER_AFTER)
                .count()
        })
        .max()
        .unwrap();
    eprintln!("most requests in flight: {overlapping} from arrivals, {sampled} sampled");
    assert!(sampled <= 2, "{sampled} requests in flight at once");
    assert_eq!(
        overlapping, 2,
        "at most 2 in flight, and the cap was reached"
    );

    let mut ids: Vec<_> = got
        .iter()
        .map(|r| r.header("webhook-id").unwrap())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), N, "every event arrived, each once");
    assert_eq!(got.len(), N, "no event was sent twice");
    let attempts = attempts_once_logged(&api, &tenant, &endpoint.id, N).await;
    assert_eq!(attempts.len(), N, "one attempt logged per event");
    assert!(
        attempts.iter().all(|a| a["attempt"] == 1),
        "waiting for a free slot is not an attempt"
    );
    let held = metric(&api, "gateway_deliveries_held_back_total").await
        + metric(&b.api(), "gateway_deliveries_held_back_total").await;
    assert!(held > 0, "tasks were held back at the cap");
}
