//! `partitions` changed on a live deployment, 4 to 8 and back to 4, by
//! rolling instances over one real redis-server while events are posted,
//! with instances SIGKILLed on the way and a receiver that fails a share of
//! requests: every accepted event arrives, the partitions above 4 drain and
//! retire, events stored in them are still found, and an idempotency key
//! seen under 8 partitions still deduplicates under 4.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use gateway_tests::{
    Api, Flaky, Gateway, GatewayOptions, OPERATOR_TOKEN, Receiver, Redis, Tenant, wait_until,
};
use serde_json::{Value, json};

/// Events posted in each step of the roll.
const STEP: usize = 60;
/// Idempotency keys posted under 8 partitions and again under 4.
const KEYS: usize = 16;

/// Ten attempts 100 ms apart: with 20% of requests failing, an event is
/// dead-lettered about once in ten million. The circuit never opens, so
/// the burst of failures below does not hold deliveries for its 30 s.
fn with_partitions(partitions: u16) -> GatewayOptions {
    GatewayOptions {
        partitions,
        retry_schedule: vec!["0s"; 1].into_iter().chain(vec!["100ms"; 9]).collect(),
        extra: "[circuit]\nfailures = 10000\nopen_for = \"30s\"\n".into(),
        ..GatewayOptions::default()
    }
}

/// Posts `count` events numbered from `from`, a third each with a
/// producer id, with an `Idempotency-Key`, and with neither, in turn to
/// each of `apis`; returns their ids.
async fn post(apis: &[Api], tenant: &Tenant, from: usize, count: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for n in from..from + count {
        let api = &apis[n % apis.len()];
        let event = match n % 3 {
            0 => json!({"type": "order.created", "id": format!("evt-{n}"), "data": {"n": n}}),
            _ => json!({"type": "order.created", "data": {"n": n}}),
        };
        let id = match n % 3 {
            1 => keyed(api, tenant, &format!("key-{n}"), event).await,
            _ => api.post_event(tenant, event).await,
        };
        ids.push(id);
    }
    ids
}

/// Posts `event` with `Idempotency-Key: key`; the id answered.
async fn keyed(api: &Api, tenant: &Tenant, key: &str, event: Value) -> String {
    let response = reqwest::Client::new()
        .post(api.url("/v1/events"))
        .bearer_auth(&tenant.key)
        .header("idempotency-key", key)
        .json(&event)
        .send()
        .await
        .expect("the gateway answers");
    let status = response.status().as_u16();
    let body: Value = response.json().await.expect("a JSON answer");
    assert_eq!(status, 202, "{body}");
    body["id"].as_str().expect("an id").to_string()
}

/// How many times each event number arrived at the receiver.
fn arrivals(receiver: &Receiver) -> BTreeMap<u64, usize> {
    let mut seen = BTreeMap::new();
    for request in receiver.succeeded() {
        if let Some(n) = request.json()["data"]["n"].as_u64() {
            *seen.entry(n).or_default() += 1;
        }
    }
    seen
}

async fn partition_states(api: &Api) -> Vec<(u64, String)> {
    let (status, body) = api.get("/v1/admin/partitions", OPERATOR_TOKEN).await;
    assert_eq!(status, 200, "{body}");
    body["partitions"]
        .as_array()
        .expect("a partitions list")
        .iter()
        .map(|p| {
            let state = p["state"].as_str().unwrap_or_default().to_string();
            (p["partition"].as_u64().unwrap_or_default(), state)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_go_from_4_to_8_and_back_without_losing_an_event() {
    let redis = Redis::ephemeral();
    let receiver = Receiver::start().await;
    let flaky = Flaky {
        fail: 0.2,
        slow: 0.05,
        delay: Duration::from_millis(300),
        seed: 0x05ee_d484,
    };
    receiver.set_flaky(flaky.clone());
    let mut a = Gateway::spawn_with(&redis, with_partitions(4));
    let tenant = a.api().create_tenant("acme").await;
    let endpoint = a
        .api()
        .create_endpoint(&tenant, json!({"url": receiver.url("/hook")}))
        .await;

    // 4 partitions.
    let mut ids = post(&[a.api()], &tenant, 0, STEP).await;
    // An instance with 8 joins: both write, each with its own count.
    let mut b = Gateway::spawn_with(&redis, with_partitions(8));
    ids.extend(post(&[a.api(), b.api()], &tenant, STEP, STEP).await);
    a.kill();
    ids.extend(post(&[b.api()], &tenant, 2 * STEP, STEP).await);
    let mut under_eight = Vec::new();
    for k in 0..KEYS {
        let event = json!({"type": "order.created", "data": {"n": 10_000 + k}});
        under_eight.push(keyed(&b.api(), &tenant, &format!("roll-{k}"), event).await);
    }
    // Back to 4: the instance with 8 is SIGKILLed with work in flight.
    let c = Gateway::spawn_with(&redis, with_partitions(4));
    ids.extend(post(&[b.api(), c.api()], &tenant, 3 * STEP, STEP).await);
    // Work left in partitions 4 to 7 when it dies: events it took that
    // every request fails for, so they sit in its retry set and pending list.
    receiver.set_flaky(Flaky {
        fail: 1.0,
        ..flaky.clone()
    });
    let stranded = post(&[b.api()], &tenant, 5 * STEP, STEP / 2).await;
    let above_four = stranded
        .iter()
        .filter(|id| gateway::model::entry_of_event(id).is_some_and(|(p, _)| p >= 4))
        .count();
    assert!(
        above_four > 0,
        "no event went to partitions 4 to 7: {stranded:?}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    b.kill();
    receiver.set_flaky(flaky);
    ids.extend(stranded);
    ids.extend(post(&[c.api()], &tenant, 4 * STEP, STEP).await);
    let api = c.api();

    // The same keys, now under 4 partitions: the events stored under 8
    // answer them, and nothing new is stored.
    for (k, first) in under_eight.iter().enumerate() {
        let event = json!({"type": "order.created", "data": {"n": 10_000 + k}});
        let again = keyed(&api, &tenant, &format!("roll-{k}"), event).await;
        assert_eq!(&again, first, "key roll-{k} was stored twice");
    }

    let wanted: BTreeSet<u64> = (0..(5 * STEP + STEP / 2) as u64)
        .chain(10_000..10_000 + KEYS as u64)
        .collect();
    let started = std::time::Instant::now();
    let seen = loop {
        let seen = arrivals(&receiver);
        let missing: Vec<&u64> = wanted.iter().filter(|n| !seen.contains_key(n)).collect();
        if missing.is_empty() {
            break seen;
        }
        if started.elapsed() > Duration::from_secs(90) {
            let states = partition_states(&api).await;
            let logs = c.logs();
            let notes: Vec<&str> = logs.lines().filter(|l| l.contains("partition")).collect();
            panic!(
                "{} events never arrived: {missing:?}\npartitions: {states:?}\n{}",
                missing.len(),
                notes.join("\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let unexpected: Vec<&u64> = seen.keys().filter(|n| !wanted.contains(n)).collect();
    assert!(unexpected.is_empty(), "unknown events {unexpected:?}");

    // The partitions above 4 drain, then retire.
    let retired = wait_until(
        "partitions 4 to 7 retired",
        Duration::from_secs(60),
        || async {
            let states = partition_states(&api).await;
            let want: Vec<(u64, String)> = (0..8)
                .map(|p| (p, if p < 4 { "active" } else { "retired" }.to_string()))
                .collect();
            (states == want).then_some(states)
        },
    )
    .await;
    assert_eq!(retired.len(), 8);

    // Its loops for them stop at its next look (within a second).
    wait_until(
        "the instance with 4 partitions to stop serving the others",
        Duration::from_secs(5),
        || async {
            let stopped = c
                .logs()
                .matches("partition drained and no longer written to")
                .count();
            (stopped == 4).then_some(())
        },
    )
    .await;
    let (_, letters) = api.get("/v1/dead-letters", &tenant.key).await;
    assert_eq!(letters["data"], json!([]), "no event was given up on");

    // Every event, wherever it was stored, is still found.
    for id in ids.iter().chain(&under_eight) {
        let (status, event) = api.get(&format!("/v1/events/{id}"), &tenant.key).await;
        assert_eq!(status, 200, "event {id}: {event}");
    }

    // A replay queues every event again, in the partition it is stored in:
    // the retired ones hold work again, are served again, and drain again.
    let since = json!({"since": "2020-01-01T00:00:00Z"});
    let path = format!("/v1/endpoints/{}/replay", endpoint.id);
    let (status, job) = api
        .call(reqwest::Method::POST, &path, &tenant.key, Some(since))
        .await;
    assert_eq!(status, 202, "{job}");
    wait_until(
        "every event delivered again by the replay",
        Duration::from_secs(60),
        || async {
            let seen = arrivals(&receiver);
            wanted.iter().all(|n| seen.get(n) >= Some(&2)).then_some(())
        },
    )
    .await;
    wait_until(
        "partitions 4 to 7 retired again",
        Duration::from_secs(30),
        || async {
            let states = partition_states(&api).await;
            states[4..]
                .iter()
                .all(|(_, s)| s == "retired")
                .then_some(())
        },
    )
    .await;
    let served_again = c.logs().matches("serving a partition beyond").count();
    assert!(
        served_again > 4,
        "the replay's partitions were never served again"
    );
}
