//! The chaos suite: the same scenario on a single redis-server (AOF,
//! `appendfsync always`) and on a six-node Redis Cluster. Several producers
//! post steadily through two gateway instances while
//! - the receiver fails 30% of requests (500) and answers 10% slowly;
//! - instances are SIGKILLed and restarted at random moments;
//! - a Redis master is SIGKILLed once (single: restarted from its AOF;
//!   cluster: failed over to its replica, then restarted as a replica).
//!
//! At the end every accepted event was delivered with a valid signature at
//! least once (answered 2xx), and only to the endpoint subscribed to its
//! type; duplicates are counted and printed with the totals. A producer
//! whose post is refused (an instance down, Redis failing over) posts again
//! with the same `Idempotency-Key`, so every event is accepted in the end.
//!
//! The short profile runs in `scripts/test`; the long one (more events,
//! more kills) is `CHAOS_PROFILE=long cargo test -p gateway-tests --test
//! chaos -- --nocapture`. `CHAOS_SEED=<n>` repeats a run's random choices.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use gateway_tests::cluster::RedisCluster;
use gateway_tests::{
    Api, Flaky, Gateway, GatewayOptions, Receiver, Redis, Tenant, verify_signature,
};
use serde_json::json;
use tokio::task::JoinSet;

/// How much of everything a run does.
#[derive(Debug, Clone, Copy)]
struct Profile {
    producers: usize,
    events_per_producer: usize,
    /// Pause between one producer's events.
    pace: Duration,
    instance_kills: usize,
}

const SHORT: Profile = Profile {
    producers: 3,
    events_per_producer: 100,
    pace: Duration::from_millis(40),
    instance_kills: 4,
};

const LONG: Profile = Profile {
    producers: 6,
    events_per_producer: 2_000,
    pace: Duration::from_millis(20),
    instance_kills: 60,
};

/// The two event types, each with its own endpoint.
const TYPES: [&str; 2] = ["order.created", "order.paid"];
/// How long one event may take to be accepted.
const ACCEPT_WITHIN: Duration = Duration::from_secs(60);
/// How long the deliveries may take after the last event was accepted.
const DELIVER_WITHIN: Duration = Duration::from_secs(90);

fn profile() -> Profile {
    match std::env::var("CHAOS_PROFILE").as_deref() {
        Ok("long") => LONG,
        _ => SHORT,
    }
}

fn seed() -> u64 {
    std::env::var("CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        })
        | 1
}

/// A small xorshift generator for the run's random choices.
struct Dice(u64);

impl Dice {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }

    fn millis(&mut self, from: u64, to: u64) -> Duration {
        Duration::from_millis(from + self.below(to - from))
    }
}

/// Where the gateways keep their data.
enum Backend {
    Single(Redis),
    Cluster(RedisCluster),
}

impl Backend {
    fn url(&self) -> String {
        match self {
            Backend::Single(redis) => redis.url(),
            Backend::Cluster(cluster) => cluster.url(),
        }
    }

    fn options(&self) -> GatewayOptions {
        let mut options = GatewayOptions {
            // Twelve attempts: at a 30% failure rate, all of them fail for
            // one event in about two million.
            retry_schedule: vec![
                "0s", "100ms", "100ms", "200ms", "200ms", "300ms", "300ms", "400ms", "400ms",
                "500ms", "500ms", "500ms",
            ],
            visibility_timeout: "2s",
            max_timeout_ms: 1000,
            default_timeout_ms: 1000,
            // A circuit opened by a run of random failures holds the
            // endpoint back for a second, not the default 30 s.
            env: vec![
                ("GATEWAY_CIRCUIT__FAILURES".into(), "8".into()),
                ("GATEWAY_CIRCUIT__OPEN_FOR".into(), "\"1s\"".into()),
            ],
            ..GatewayOptions::default()
        };
        if let Backend::Cluster(_) = self {
            options
                .env
                .push(("GATEWAY_INGEST__REPLICA_ACKS".into(), "1".into()));
        }
        options
    }

    /// SIGKILLs a master and brings the data back: a restart from the AOF,
    /// or a failover to the replica and the old master back as a replica.
    async fn kill_master(&mut self) {
        match self {
            Backend::Single(redis) => redis.restart(),
            Backend::Cluster(cluster) => {
                let key = "gw:{p1}:delivery";
                let doomed = cluster.master_of(key).await;
                cluster.kill(doomed);
                cluster.wait_failover(key, doomed).await;
                cluster.restart(doomed);
                cluster.wait_rejoined(doomed).await;
            }
        }
    }
}

/// Posts `event` with its idempotency key through the instances in turn
/// until one accepts it; answers the refusals before that.
async fn post_until_accepted(apis: Arc<Vec<Api>>, tenant: Arc<Tenant>, event: u64) -> u64 {
    let started = Instant::now();
    let mut refused = 0;
    loop {
        let api = &apis[(event + refused) as usize % apis.len()];
        let answer = api
            .request(reqwest::Method::POST, "/v1/events", &tenant.key)
            .header("Idempotency-Key", format!("chaos-{event}"))
            .json(&json!({"type": TYPES[event as usize % 2], "data": {"i": event}}))
            .timeout(Duration::from_secs(10))
            .send()
            .await;
        if answer.as_ref().is_ok_and(|a| a.status().as_u16() == 202) {
            return refused;
        }
        refused += 1;
        assert!(
            started.elapsed() < ACCEPT_WITHIN,
            "event {event} was not accepted within {ACCEPT_WITHIN:?}: {answer:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn run(mut backend: Backend, name: &str) {
    let profile = profile();
    let seed = seed();
    let mut dice = Dice(seed);
    let options = backend.options();
    let mut gateways = [
        Gateway::spawn_on(backend.url(), options.clone()),
        Gateway::spawn_on(backend.url(), options),
    ];
    let apis = Arc::new(gateways.iter().map(Gateway::api).collect::<Vec<_>>());
    let receiver = Receiver::start().await;
    receiver.set_flaky(Flaky {
        fail: 0.30,
        slow: 0.10,
        delay: Duration::from_millis(300),
        seed,
    });
    let tenant = Arc::new(apis[0].create_tenant("acme").await);
    let mut secrets = BTreeMap::new();
    for event_type in TYPES {
        let endpoint = apis[1]
            .create_endpoint(
                &tenant,
                json!({"url": receiver.url(&format!("/{event_type}")), "event_types": [event_type]}),
            )
            .await;
        secrets.insert(format!("/{event_type}"), endpoint.secret);
    }

    let started = Instant::now();
    let mut producers = JoinSet::new();
    for producer in 0..profile.producers {
        let (apis, tenant) = (apis.clone(), tenant.clone());
        producers.spawn(async move {
            let mut refused = 0;
            for k in 0..profile.events_per_producer {
                let event = (producer * profile.events_per_producer + k) as u64;
                refused += post_until_accepted(apis.clone(), tenant.clone(), event).await;
                tokio::time::sleep(profile.pace).await;
            }
            refused
        });
    }
    // The chaos, while the producers post: instance kills, with one
    // master kill halfway.
    let mut kills = 0;
    for k in 0..profile.instance_kills {
        tokio::time::sleep(dice.millis(200, 900)).await;
        let victim = dice.below(2) as usize;
        gateways[victim].kill();
        tokio::time::sleep(dice.millis(100, 700)).await;
        gateways[victim].restart();
        kills += 1;
        if k == profile.instance_kills / 2 {
            backend.kill_master().await;
        }
    }
    let mut refused = 0;
    while let Some(done) = producers.join_next().await {
        refused += done.expect("a producer does not panic");
    }
    let posted = Instant::now();

    let all = (profile.producers * profile.events_per_producer) as u64;
    let mut delivered: BTreeMap<u64, usize> = BTreeMap::new();
    let mut misrouted = 0;
    while posted.elapsed() < DELIVER_WITHIN {
        delivered.clear();
        misrouted = 0;
        for request in receiver.succeeded() {
            let secret = &secrets[&request.path];
            verify_signature(secret, &request).expect("a valid signature");
            let body = request.json();
            let i = body["data"]["i"].as_u64().expect("data.i");
            if format!("/{}", body["type"].as_str().unwrap_or_default()) != request.path {
                misrouted += 1;
            }
            *delivered.entry(i).or_default() += 1;
        }
        if delivered.len() as u64 == all {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let lost: Vec<u64> = (0..all).filter(|i| !delivered.contains_key(i)).collect();
    let duplicates: usize = delivered.values().map(|n| n - 1).sum();
    let attempts = receiver.requests().len();
    println!(
        "chaos {name} (seed {seed}, {profile:?}): {all} accepted, {} delivered, {} lost, \
         {duplicates} duplicates, {misrouted} misrouted; {attempts} requests to the receiver; \
         {kills} instance kills and 1 master kill; {refused} refused posts retried; \
         posting took {:.1} s, delivering {:.1} s more",
        delivered.len(),
        lost.len(),
        (posted - started).as_secs_f64(),
        posted.elapsed().as_secs_f64()
    );
    assert!(lost.is_empty(), "accepted events never delivered: {lost:?}");
    assert_eq!(
        misrouted, 0,
        "deliveries to an endpoint not subscribed to them"
    );
    assert!(delivered.keys().all(|&i| i < all), "events never posted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_on_a_single_redis_loses_no_accepted_event() {
    run(Backend::Single(Redis::durable()), "single redis").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_on_a_redis_cluster_loses_no_accepted_event() {
    run(Backend::Cluster(RedisCluster::start()), "redis cluster").await;
}
