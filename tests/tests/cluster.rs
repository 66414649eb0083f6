//! The gateway on a real Redis Cluster: six redis-server processes (three
//! masters, three replicas, AOF `appendfsync always`). Two instances share
//! it; a master is SIGKILLed under load and its replica takes over; every
//! event the gateway accepted is delivered, signed, to its endpoint.
//! Events are accepted only once a replica has them
//! (`ingest.replica_acks = 1`), the setting that makes that hold.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gateway_tests::cluster::RedisCluster;
use gateway_tests::{Api, Gateway, GatewayOptions, Receiver, Tenant, verify_signature};
use serde_json::json;
use tokio::task::JoinSet;

/// Events posted in each of the three rounds: before the kill, during the
/// failover, after it.
const ROUND: usize = 60;
/// Requests in flight per round.
const PARALLEL: usize = 6;
/// How long one event may take to be accepted, retried with its
/// idempotency key through the failover.
const ACCEPT_WITHIN: Duration = Duration::from_secs(40);

fn options() -> GatewayOptions {
    GatewayOptions {
        // A 202 only once a replica has the event too: a failover then
        // loses nothing that was accepted.
        env: vec![("GATEWAY_INGEST__REPLICA_ACKS".into(), "1".into())],
        ..GatewayOptions::default()
    }
}

/// Posts event `i` (with idempotency key `i`) through `api` until it is
/// accepted; answers how many answers were refusals before that.
async fn post_until_accepted(api: Api, tenant: Arc<Tenant>, i: usize) -> usize {
    let started = Instant::now();
    let mut refused = 0;
    loop {
        let answer = api
            .request(reqwest::Method::POST, "/v1/events", &tenant.key)
            .header("Idempotency-Key", format!("order-{i}"))
            .json(&json!({"type": "order.created", "data": {"i": i}}))
            .timeout(Duration::from_secs(10))
            .send()
            .await;
        match answer.map(|a| a.status().as_u16()) {
            Ok(202) => return refused,
            other => {
                refused += 1;
                assert!(
                    started.elapsed() < ACCEPT_WITHIN,
                    "event {i} was not accepted within {ACCEPT_WITHIN:?}; last answer {other:?}"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

/// Posts events `from..from + ROUND`, alternating between the instances.
async fn round(apis: &[Api; 2], tenant: &Arc<Tenant>, from: usize) -> usize {
    let mut posts = JoinSet::new();
    let mut refused = 0;
    for i in from..from + ROUND {
        if posts.len() >= PARALLEL {
            refused += posts.join_next().await.expect("a post").expect("no panic");
        }
        posts.spawn(post_until_accepted(apis[i % 2].clone(), tenant.clone(), i));
    }
    while let Some(done) = posts.join_next().await {
        refused += done.expect("no panic");
    }
    refused
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_a_cluster_deliver_every_accepted_event_through_a_master_failover() {
    let mut cluster = RedisCluster::start();
    let first = Gateway::spawn_on(cluster.url(), options());
    let second = Gateway::spawn_on(cluster.url(), options());
    let apis = [first.api(), second.api()];
    let receiver = Receiver::start().await;
    let tenant = Arc::new(apis[0].create_tenant("acme").await);
    let endpoint = apis[1]
        .create_endpoint(&tenant, json!({"url": receiver.url("/hook")}))
        .await;

    let before = round(&apis, &tenant, 0).await;
    // The master of partition 0's streams dies while events keep coming;
    // its replica takes over, and the dead node comes back as the new
    // master's replica (until then that shard has no replica to confirm
    // its writes, and its events wait).
    let doomed = cluster.master_of("gw:{p0}:ingest").await;
    cluster.kill(doomed);
    let (during, ()) = tokio::join!(round(&apis, &tenant, ROUND), async {
        cluster.wait_failover("gw:{p0}:ingest", doomed).await;
        cluster.restart(doomed);
        cluster.wait_rejoined(doomed).await;
    });
    let after = round(&apis, &tenant, 2 * ROUND).await;

    let all = 3 * ROUND;
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen: BTreeMap<u64, usize> = BTreeMap::new();
    while Instant::now() < deadline {
        seen.clear();
        for request in receiver.requests() {
            verify_signature(&endpoint.secret, &request).expect("a valid signature");
            let i = request.json()["data"]["i"].as_u64().expect("data.i");
            *seen.entry(i).or_default() += 1;
        }
        if seen.len() == all {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let missing: BTreeSet<u64> = (0..all as u64).filter(|i| !seen.contains_key(i)).collect();
    let duplicates: usize = seen.values().map(|n| n - 1).sum();
    eprintln!(
        "{all} accepted; {} delivered, {} lost, {duplicates} duplicate deliveries; \
         refusals while posting: {before} before the kill, {during} during the failover, \
         {after} after",
        seen.len(),
        missing.len()
    );
    assert!(
        missing.is_empty(),
        "accepted events never delivered: {missing:?}"
    );
    assert!(
        seen.keys().all(|&i| i < all as u64),
        "deliveries of events never posted"
    );
}
