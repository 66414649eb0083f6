//! Fault tolerance: no accepted event is lost when the gateway is SIGKILLed,
//! when Redis restarts (with AOF), or when Redis restarts empty; producers
//! that hang up mid-request leave nothing half-done; SIGTERM drains.
//!
//! "Accepted" means the producer got a `202`: posts that fail because the
//! gateway or Redis is down are not counted. "Delivered" means the receiver
//! finished answering `200` to the gateway (the gateway was still waiting
//! for the reply), and the gateway recorded the event as delivered.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gateway_tests::{
    Api, Gateway, GatewayOptions, Receiver, Recorded, Redis, Reply, Tenant, wait_until,
};
use redis::AsyncCommands;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::{JoinSet, block_in_place};

/// The harness's default: four partitions.
const PARTITIONS: u16 = 4;

/// The event number a delivery carries in `data.n`.
fn number(request: &Recorded) -> Option<u64> {
    serde_json::from_slice::<Value>(&request.body).ok()?["data"]["n"].as_u64()
}

/// What the producers saw.
#[derive(Default)]
struct Tally {
    /// Event numbers answered `202` with their id.
    accepted: Mutex<BTreeSet<u64>>,
    attempted: AtomicUsize,
    failed: AtomicUsize,
}

impl Tally {
    fn accepted(&self) -> BTreeSet<u64> {
        self.accepted.lock().unwrap().clone()
    }

    fn accepted_count(&self) -> usize {
        self.accepted.lock().unwrap().len()
    }

    fn attempted(&self) -> usize {
        self.attempted.load(Ordering::SeqCst)
    }

    fn failed(&self) -> usize {
        self.failed.load(Ordering::SeqCst)
    }
}

/// Posts event `n` with data `{"n": n}`; `Ok` only for a `202` with its id.
/// Even events carry the producer's id `e-n` (stored with an idempotency
/// record, by `ingest.lua`); odd ones carry none and get the gateway's (stored
/// without one, by one XADD): both ways of storing face every fault.
async fn post_numbered(api: &Api, tenant: &Tenant, n: u64) -> Result<(), String> {
    let own_id = n.is_multiple_of(2);
    let event = match own_id {
        true => json!({"type": "order.created", "id": format!("e-{n}"), "data": {"n": n}}),
        false => json!({"type": "order.created", "data": {"n": n}}),
    };
    let response = api
        .http
        .post(api.url("/v1/events"))
        .bearer_auth(&tenant.key)
        .timeout(Duration::from_secs(10))
        .json(&event)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    let id_ok = match own_id {
        true => body["id"] == format!("e-{n}").as_str(),
        false => body["id"].as_str().is_some_and(|id| id.starts_with("evt_")),
    };
    if status == 202 && id_ok {
        Ok(())
    } else {
        Err(format!("{status} {body}"))
    }
}

/// Starts `producers` tasks, each posting `each` numbered events, one every
/// `pace`; what they get is counted in `tally`.
fn spawn_producers(
    api: &Api,
    tenant: &Tenant,
    producers: u64,
    each: u64,
    pace: Duration,
    tally: &Arc<Tally>,
) -> JoinSet<()> {
    let mut set = JoinSet::new();
    for p in 0..producers {
        let (api, tenant, tally) = (api.clone(), tenant.clone(), tally.clone());
        set.spawn(async move {
            let mut ticks = tokio::time::interval(pace);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            for n in p * each..(p + 1) * each {
                ticks.tick().await;
                tally.attempted.fetch_add(1, Ordering::SeqCst);
                match post_numbered(&api, &tenant, n).await {
                    Ok(()) => {
                        tally.accepted.lock().unwrap().insert(n);
                    }
                    Err(_) => {
                        tally.failed.fetch_add(1, Ordering::SeqCst);
                        // The gateway or Redis is down: slow down rather than
                        // burn through the events.
                        tokio::time::sleep(Duration::from_millis(250)).await;
                    }
                }
            }
        });
    }
    set
}

/// Posts probe event `n` until it is accepted (counted in `tally`).
async fn wait_accepting(api: &Api, tenant: &Tenant, tally: &Tally, n: u64) {
    wait_until(
        "the gateway to accept events",
        Duration::from_secs(20),
        || async { post_numbered(api, tenant, n).await.ok() },
    )
    .await;
    tally.accepted.lock().unwrap().insert(n);
}

/// Waits until the receiver answered every event number in `expected`;
/// on timeout, names the missing ones.
async fn wait_answered(receiver: &Receiver, expected: &BTreeSet<u64>, timeout: Duration) {
    let started = Instant::now();
    loop {
        let got: HashSet<u64> = receiver.answered().iter().filter_map(number).collect();
        let missing: Vec<u64> = expected
            .iter()
            .copied()
            .filter(|n| !got.contains(n))
            .collect();
        if missing.is_empty() {
            return;
        }
        assert!(
            started.elapsed() < timeout,
            "after {timeout:?}, {} of {} accepted events were never delivered, e.g. {:?}",
            missing.len(),
            expected.len(),
            &missing[..missing.len().min(20)]
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the gateway reports each event `e-n` delivered to its one
/// endpoint (the even numbers: the odd ones have ids the gateway chose; the
/// receiver's tally covers them).
async fn wait_statuses_delivered(
    api: &Api,
    tenant: &Tenant,
    numbers: &BTreeSet<u64>,
    timeout: Duration,
) {
    let remaining = Mutex::new(
        numbers
            .iter()
            .copied()
            .filter(|n| n.is_multiple_of(2))
            .collect::<BTreeSet<u64>>(),
    );
    let what = format!("{} events to show delivered", numbers.len());
    wait_until(&what, timeout, || async {
        let pending: Vec<u64> = remaining.lock().unwrap().iter().copied().collect();
        for n in pending {
            let (status, event) = api.get(&format!("/v1/events/e-{n}"), &tenant.key).await;
            assert_eq!(status, 200, "event e-{n}: {event}");
            let deliveries = event["deliveries"].as_array().cloned().unwrap_or_default();
            if deliveries.len() == 1 && deliveries[0]["status"] == "delivered" {
                remaining.lock().unwrap().remove(&n);
            }
        }
        remaining.lock().unwrap().is_empty().then_some(())
    })
    .await;
}

/// Pending tasks of a dead consumer are taken over after 3 s.
fn fast_reclaim() -> GatewayOptions {
    GatewayOptions {
        visibility_timeout: "3s",
        ..GatewayOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_accepted_event_is_lost_when_the_gateway_is_killed_repeatedly() {
    let redis = Redis::ephemeral();
    let mut gateway = Gateway::spawn_with(&redis, fast_reclaim());
    let api = gateway.api();
    let receiver = Receiver::start().await;
    receiver.set_default(Reply::ok().delay(Duration::from_millis(40)));
    let tenant = api.create_tenant("acme").await;
    api.create_endpoint(&tenant, json!({"url": receiver.url("/hook")}))
        .await;

    let tally = Arc::new(Tally::default());
    let mut producers = spawn_producers(&api, &tenant, 4, 100, Duration::from_millis(10), &tally);

    // Three SIGKILLs, each while deliveries are in flight and producers post.
    for (kill, threshold) in [60, 130, 200].into_iter().enumerate() {
        wait_until(
            "producers to post on and deliveries to be in flight",
            Duration::from_secs(20),
            || async {
                (tally.accepted_count() >= threshold && receiver.in_flight() >= 2).then_some(())
            },
        )
        .await;
        block_in_place(|| gateway.restart());
        // The new process takes events before the next kill.
        wait_accepting(&api, &tenant, &tally, 1000 + kill as u64).await;
    }
    while let Some(done) = producers.join_next().await {
        done.expect("a producer task");
    }

    let accepted = tally.accepted();
    assert!(
        accepted.len() >= 150,
        "too few events accepted to mean anything: {} of {} ({} failed)",
        accepted.len(),
        tally.attempted(),
        tally.failed()
    );
    wait_answered(&receiver, &accepted, Duration::from_secs(30)).await;
    wait_statuses_delivered(&api, &tenant, &accepted, Duration::from_secs(20)).await;
    // The last kill abandoned deliveries under way, and the last process took them over.
    assert!(api.metric("gateway_tasks_reclaimed_total").await >= 1.0);
    eprintln!(
        "{} of {} posts accepted; {} requests for {} accepted events",
        accepted.len(),
        tally.attempted(),
        receiver.count(),
        accepted.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_accepted_event_is_lost_across_a_redis_restart() {
    let mut redis = Redis::durable();
    let gateway = Gateway::spawn_with(&redis, fast_reclaim());
    let api = gateway.api();
    let receiver = Receiver::start().await;
    receiver.set_default(Reply::ok().delay(Duration::from_millis(30)));
    let tenant = api.create_tenant("acme").await;
    api.create_endpoint(&tenant, json!({"url": receiver.url("/hook")}))
        .await;

    let tally = Arc::new(Tally::default());
    let mut producers = spawn_producers(&api, &tenant, 4, 100, Duration::from_millis(10), &tally);

    for (restart, threshold) in [60, 180].into_iter().enumerate() {
        wait_until(
            "producers to post on and deliveries to be in flight",
            Duration::from_secs(20),
            || async {
                (tally.accepted_count() >= threshold && receiver.in_flight() >= 2).then_some(())
            },
        )
        .await;
        block_in_place(|| redis.kill());
        // Posts fail while Redis is down, and are not counted.
        let probe = 2000 + restart as u64;
        let refused = post_numbered(&api, &tenant, probe).await;
        assert!(
            matches!(&refused, Err(e) if e.starts_with('5')),
            "a post while Redis is down got {refused:?}"
        );
        block_in_place(|| redis.restart());
        wait_accepting(&api, &tenant, &tally, 1000 + restart as u64).await;
    }
    while let Some(done) = producers.join_next().await {
        done.expect("a producer task");
    }

    let accepted = tally.accepted();
    assert!(
        accepted.len() >= 150,
        "too few events accepted to mean anything: {} of {} ({} failed)",
        accepted.len(),
        tally.attempted(),
        tally.failed()
    );
    wait_answered(&receiver, &accepted, Duration::from_secs(30)).await;
    wait_statuses_delivered(&api, &tenant, &accepted, Duration::from_secs(20)).await;
    // Redis kept everything: no false alarm.
    assert!(!gateway.logs().contains("DATA LOSS"), "{}", gateway.logs());
    eprintln!(
        "{} of {} posts accepted; {} requests for {} accepted events",
        accepted.len(),
        tally.attempted(),
        receiver.count(),
        accepted.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_that_lost_everything_is_rebuilt() {
    let mut redis = Redis::ephemeral();
    let gateway = Gateway::spawn(&redis);
    let api = gateway.api();
    let before = Receiver::start().await;
    let tenant = api.create_tenant("before").await;
    api.create_endpoint(&tenant, json!({"url": before.url("/hook")}))
        .await;
    for n in 0..5 {
        post_numbered(&api, &tenant, n).await.expect("accepted");
    }
    before.wait_for(5, Duration::from_secs(10)).await;
    let numbers: BTreeSet<u64> = (0..5).collect();
    wait_statuses_delivered(&api, &tenant, &numbers, Duration::from_secs(10)).await;

    // Redis comes back empty: no tenant, no streams, no consumer groups.
    block_in_place(|| redis.restart());
    // (The gateway may already have recreated its streams, empty.)
    let mut conn = redis.conn().await;
    let keys: Vec<String> = conn.keys("gw:*").await.expect("KEYS");
    for key in &keys {
        assert!(
            !key.contains(&tenant.id) && key != "gw:tenants",
            "Redis kept {key}"
        );
        if key.ends_with(":ingest") || key.ends_with(":delivery") {
            let len: usize = conn.xlen(key).await.expect("XLEN");
            assert_eq!(len, 0, "Redis kept the entries of {key}");
        }
    }

    let after = Receiver::start().await;
    let tenant = wait_until(
        "the gateway to create a tenant again",
        Duration::from_secs(20),
        || async {
            let (status, body) = api
                .call(
                    reqwest::Method::POST,
                    "/v1/admin/tenants",
                    gateway_tests::OPERATOR_TOKEN,
                    Some(json!({"name": "after"})),
                )
                .await;
            (status == 201).then(|| Tenant {
                id: body["id"].as_str().expect("an id").to_string(),
                key: body["api_key"].as_str().expect("a key").to_string(),
            })
        },
    )
    .await;
    api.create_endpoint(&tenant, json!({"url": after.url("/hook")}))
        .await;
    let numbers: BTreeSet<u64> = (100..110).collect();
    for &n in &numbers {
        post_numbered(&api, &tenant, n).await.expect("accepted");
    }
    wait_answered(&after, &numbers, Duration::from_secs(20)).await;
    wait_statuses_delivered(&api, &tenant, &numbers, Duration::from_secs(10)).await;

    // Every stage is back: readiness answers 200 again.
    wait_until("/readyz to answer 200", Duration::from_secs(20), || async {
        let (status, _) = api.get("/readyz", "").await;
        (status == 200).then_some(())
    })
    .await;
    let logs = gateway.logs();
    let losses = logs.matches("DATA LOSS").count();
    assert!(losses > 0, "the loss was not logged:\n{logs}");
    assert!(api.metric("gateway_redis_data_loss_total").await >= 1.0);
    // Each stream's group is recreated once, not in a loop.
    assert!(
        losses <= 2 * usize::from(PARTITIONS),
        "{losses} DATA LOSS lines: the gateway keeps losing its groups"
    );
}

/// A small deterministic generator (xorshift64*), seeded per run and
/// printed, so a failing run can be replayed with `DURABILITY_SEED`.
#[derive(Clone)]
struct Rng(u64);

impl Rng {
    fn seeded() -> Rng {
        let seed = std::env::var("DURABILITY_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
            });
        eprintln!("DURABILITY_SEED={seed}");
        Rng(seed | 1)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

/// How an aborted request ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Abort {
    /// Only a strict prefix of the request is sent.
    Partial,
    /// The whole request is sent, then the connection closed at once or soon.
    AfterSending,
    /// The whole request is sent and a first piece of the answer read.
    AfterAnswer,
}

/// Sends (part of) `request` on a raw connection and hangs up as `abort` says.
async fn send_and_hang_up(addr: &str, request: &[u8], abort: Abort, rng: &mut Rng) {
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connect to the gateway");
    let cut = match abort {
        Abort::Partial => rng.below(request.len() as u64) as usize,
        _ => request.len(),
    };
    let (pause_us, reset) = (rng.below(3000), rng.below(2) == 0);
    let _ = stream.write_all(&request[..cut]).await;
    match abort {
        Abort::AfterAnswer => {
            let mut buf = [0u8; 16];
            let _ = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf)).await;
        }
        _ => tokio::time::sleep(Duration::from_micros(pause_us)).await,
    }
    if reset {
        // RST instead of FIN: the gateway sees the connection torn down.
        let _ = stream.set_zero_linger();
    }
    drop(stream);
}

fn raw_post(addr: &str, key: &str, idempotency_key: &str, body: &str) -> Vec<u8> {
    format!(
        "POST /v1/events HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {key}\r\n\
         Content-Type: application/json\r\nIdempotency-Key: {idempotency_key}\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// `{pN}` of a partitioned key.
fn hash_tag(key: &str) -> &str {
    let start = key.find('{').expect("a hash tag");
    let end = key.find('}').expect("a hash tag");
    &key[start..=end]
}

/// What Redis holds for a tenant: idempotency records (key hash → (key,
/// event id)) and event hashes (event id → (key, fields)).
struct Held {
    idempotency: BTreeMap<String, (String, String)>,
    events: BTreeMap<String, (String, BTreeMap<String, String>)>,
}

async fn held(conn: &mut redis::aio::MultiplexedConnection, tenant: &str) -> Held {
    // Both lists from one transaction: a request still being handled cannot
    // land between them. (The values read after are never rewritten.)
    let (idem_keys, event_keys): (Vec<String>, Vec<String>) = redis::pipe()
        .atomic()
        .keys(format!("gw:*:idem:{tenant}:*"))
        .keys(format!("gw:*:evt:{tenant}:*"))
        .query_async(conn)
        .await
        .expect("KEYS");
    let mut idempotency = BTreeMap::new();
    for key in idem_keys {
        let event: String = conn.get(&key).await.expect("GET");
        let hash = key.rsplit(':').next().expect("a hash").to_string();
        idempotency.insert(hash, (key, event));
    }
    let mut events = BTreeMap::new();
    for key in event_keys {
        let fields: BTreeMap<String, String> = conn.hgetall(&key).await.expect("HGETALL");
        let id = key.rsplit(':').next().expect("an id").to_string();
        events.insert(id, (key, fields));
    }
    Held {
        idempotency,
        events,
    }
}

/// The invariants that hold at every instant, whatever producers did:
/// each idempotency record points at an event of its partition that exists,
/// each event has exactly one record and its ingest stream entry.
async fn check_nothing_half_done(
    conn: &mut redis::aio::MultiplexedConnection,
    tenant: &str,
    held: &Held,
) {
    let mut referenced = BTreeSet::new();
    for (idem_key, event) in held.idempotency.values() {
        let (event_key, _) = held
            .events
            .get(event)
            .unwrap_or_else(|| panic!("{idem_key} points at event {event}, which is not stored"));
        assert_eq!(
            hash_tag(event_key),
            hash_tag(idem_key),
            "the record and its event are in different partitions"
        );
        assert!(
            referenced.insert(event.clone()),
            "two idempotency records point at {event}"
        );
    }
    let entries = ingest_entries(conn, tenant).await;
    for (id, (key, fields)) in &held.events {
        assert!(
            referenced.contains(id),
            "event {key} was stored without its idempotency record"
        );
        assert_eq!(fields.get("id"), Some(id), "{key}: {fields:?}");
        let stream = format!("gw:{}:ingest", hash_tag(key));
        assert_eq!(
            entries.get(id),
            Some(&vec![stream.clone()]),
            "event {key} must have exactly one ingest entry, in {stream}"
        );
    }
}

/// Each of the tenant's events and the ingest streams holding an entry for it.
async fn ingest_entries(
    conn: &mut redis::aio::MultiplexedConnection,
    tenant: &str,
) -> BTreeMap<String, Vec<String>> {
    let mut found: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for p in 0..PARTITIONS {
        let stream = format!("gw:{{p{p}}}:ingest");
        let reply: redis::streams::StreamRangeReply =
            conn.xrange_all(&stream).await.expect("XRANGE");
        for entry in reply.ids {
            let j: String = entry.get("j").expect("the entry's j field");
            let j: Value = serde_json::from_str(&j).expect("JSON");
            if j["t"].as_str() == Some(tenant) {
                let id = j["e"].as_str().expect("an event id").to_string();
                found.entry(id).or_default().push(stream.clone());
            }
        }
    }
    found
}

fn idempotency_hash(key: &str) -> String {
    hex_lower(&Sha256::digest(format!("key:{key}").as_bytes()))
}

fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn producers_that_disconnect_mid_request_leave_nothing_half_done() {
    const REQUESTS: u64 = 200;
    let redis = Redis::ephemeral();
    let gateway = Gateway::spawn(&redis);
    let api = gateway.api();
    let receiver = Receiver::start().await;
    let tenant = api.create_tenant("acme").await;
    let endpoint = api
        .create_endpoint(&tenant, json!({"url": receiver.url("/hook")}))
        .await;
    let addr = gateway.url.trim_start_matches("http://").to_string();
    let body = |n: u64| json!({"type": "order.created", "data": {"n": n}}).to_string();

    // Many producers hang up at random moments, 16 at a time.
    let mut rng = Rng::seeded();
    let mut plan = Vec::new();
    for n in 0..REQUESTS {
        let abort = match rng.below(3) {
            0 => Abort::Partial,
            1 => Abort::AfterSending,
            _ => Abort::AfterAnswer,
        };
        plan.push((n, abort, Rng(rng.below(u64::MAX) | 1)));
    }
    let mut running = JoinSet::new();
    for (n, abort, mut rng) in plan.clone() {
        if running.len() >= 16 {
            running
                .join_next()
                .await
                .expect("a task")
                .expect("no panic");
        }
        let request = raw_post(&addr, &tenant.key, &format!("k-{n}"), &body(n));
        let addr = addr.clone();
        running.spawn(async move { send_and_hang_up(&addr, &request, abort, &mut rng).await });
    }
    while let Some(done) = running.join_next().await {
        done.expect("no panic");
    }

    // What Redis holds is whole.
    let mut conn = redis.conn().await;
    let first = held(&mut conn, &tenant.id).await;
    check_nothing_half_done(&mut conn, &tenant.id, &first).await;
    let key_of: BTreeMap<String, u64> = (0..REQUESTS)
        .map(|n| (idempotency_hash(&format!("k-{n}")), n))
        .collect();
    let mut stored: BTreeMap<u64, String> = BTreeMap::new();
    for (hash, (idem_key, event)) in &first.idempotency {
        let n = *key_of
            .get(hash)
            .unwrap_or_else(|| panic!("{idem_key} is for no key we sent"));
        let (_, fields) = &first.events[event];
        let delivered: Value = serde_json::from_str(&fields["body"]).expect("a JSON body");
        assert_eq!(delivered["data"]["n"], n, "k-{n} points at another event");
        stored.insert(n, event.clone());
    }
    for (n, abort, _) in &plan {
        if *abort == Abort::Partial {
            assert!(
                !stored.contains_key(n),
                "k-{n} was stored from a request that never arrived whole"
            );
        }
        if *abort == Abort::AfterAnswer {
            assert!(stored.contains_key(n), "k-{n} was answered but not stored");
        }
    }
    assert!(
        !stored.is_empty() && stored.len() < REQUESTS as usize,
        "the aborts should leave some events stored and some not: {} stored",
        stored.len()
    );

    // Every stored event is delivered, though its producer never saw the answer.
    let stored_numbers: BTreeSet<u64> = stored.keys().copied().collect();
    wait_answered(&receiver, &stored_numbers, Duration::from_secs(20)).await;

    // Retrying each key: stored ones answer their first id and store
    // nothing; the others are stored now.
    for n in 0..REQUESTS {
        let response = api
            .request(reqwest::Method::POST, "/v1/events", &tenant.key)
            .header("idempotency-key", format!("k-{n}"))
            .header("content-type", "application/json")
            .body(body(n))
            .send()
            .await
            .expect("the gateway answers");
        assert_eq!(response.status().as_u16(), 202, "k-{n}");
        let replayed = response.headers().get("idempotent-replayed").is_some();
        let answer: Value = response.json().await.expect("JSON");
        let id = answer["id"].as_str().expect("an id").to_string();
        if let Some(first_id) = stored.get(&n) {
            assert_eq!(&id, first_id, "k-{n} answered another event");
            assert!(replayed, "k-{n} was stored again");
        } else {
            stored.insert(n, id);
        }
    }
    let last = held(&mut conn, &tenant.id).await;
    check_nothing_half_done(&mut conn, &tenant.id, &last).await;
    assert_eq!(last.events.len(), REQUESTS as usize, "one event per key");
    for (hash, (_, event)) in &last.idempotency {
        assert_eq!(&stored[&key_of[hash]], event);
    }
    let all: BTreeSet<u64> = (0..REQUESTS).collect();
    wait_answered(&receiver, &all, Duration::from_secs(20)).await;
    // And the gateway recorded each as delivered.
    let field = format!("s:{}", endpoint.id);
    wait_until(
        "every event to show delivered in Redis",
        Duration::from_secs(10),
        || {
            let mut conn = conn.clone();
            let keys: Vec<String> = last.events.values().map(|(k, _)| k.clone()).collect();
            let field = field.clone();
            async move {
                for key in keys {
                    let status: Option<String> = conn.hget(&key, &field).await.expect("HGET");
                    let status: Value = serde_json::from_str(&status?).ok()?;
                    if status["status"] != "delivered" {
                        return None;
                    }
                }
                Some(())
            }
        },
    )
    .await;
}

/// Pending entries of a group on a stream (`XPENDING` summary).
async fn pending(conn: &mut redis::aio::MultiplexedConnection, stream: &str, group: &str) -> i64 {
    let reply: redis::Value = redis::cmd("XPENDING")
        .arg(stream)
        .arg(group)
        .query_async(conn)
        .await
        .expect("XPENDING");
    match reply {
        redis::Value::Array(items) => match items.first() {
            Some(redis::Value::Int(n)) => *n,
            other => panic!("XPENDING answered {other:?}"),
        },
        other => panic!("XPENDING answered {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_in_flight_deliveries_and_exits_cleanly() {
    const EVENTS: u64 = 8;
    let redis = Redis::ephemeral();
    let mut gateway = Gateway::spawn(&redis);
    let api = gateway.api();
    let receiver = Receiver::start().await;
    receiver.set_default(Reply::ok().delay(Duration::from_secs(1)));
    let tenant = api.create_tenant("acme").await;
    api.create_endpoint(&tenant, json!({"url": receiver.url("/hook")}))
        .await;
    let numbers: BTreeSet<u64> = (0..EVENTS).collect();
    for &n in &numbers {
        post_numbered(&api, &tenant, n).await.expect("accepted");
    }
    wait_until(
        "every delivery to be in flight",
        Duration::from_secs(10),
        || async { (receiver.in_flight() == EVENTS as usize).then_some(()) },
    )
    .await;

    let status = block_in_place(|| gateway.terminate()).expect("the gateway was running");
    assert!(
        status.success(),
        "exit status {status:?}\n{}",
        gateway.logs()
    );
    // It waited for the receiver's answers before exiting ...
    assert_eq!(
        receiver.answered().len(),
        EVENTS as usize,
        "the gateway exited before its deliveries were answered"
    );
    // ... and settled them: nothing is left pending or queued for a retry.
    let mut conn = redis.conn().await;
    for p in 0..PARTITIONS {
        let stream = format!("gw:{{p{p}}}:delivery");
        assert_eq!(pending(&mut conn, &stream, "delivery").await, 0, "{stream}");
        let retries: i64 = conn.zcard(format!("gw:{{p{p}}}:retry")).await.unwrap();
        assert_eq!(retries, 0, "partition {p} has retries queued");
    }

    block_in_place(|| gateway.restart());
    wait_statuses_delivered(&api, &tenant, &numbers, Duration::from_secs(10)).await;
    // The restarted gateway works, and re-sends none of the drained deliveries.
    receiver.set_default(Reply::ok());
    post_numbered(&api, &tenant, EVENTS)
        .await
        .expect("accepted");
    let all: BTreeSet<u64> = (0..=EVENTS).collect();
    wait_answered(&receiver, &all, Duration::from_secs(10)).await;
    assert_eq!(
        receiver.count(),
        EVENTS as usize + 1,
        "a drained delivery was sent again"
    );
}
