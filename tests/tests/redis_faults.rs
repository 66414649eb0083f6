//! Redis failing under the gateway in ways a restart test does not show:
//! an error on one read, and a stored record that no longer decodes. Either
//! makes the work wait and try again; neither may drop an event or make a
//! record look absent.

use std::time::Duration;

use gateway_tests::{
    Api, Gateway, GatewayOptions, OPERATOR_TOKEN, Receiver, Redis, Reply, Tenant, wait_until,
};
use redis::AsyncCommands;
use reqwest::Method;
use serde_json::{Value, json};
use tokio::task::block_in_place;

const WAIT: Duration = Duration::from_secs(20);

async fn delivery(api: &Api, tenant: &Tenant, event: &str) -> Value {
    let (status, body) = api.get(&format!("/v1/events/{event}"), &tenant.key).await;
    assert_eq!(status, 200, "{body}");
    body["deliveries"][0].clone()
}

/// Waits until the gateway has logged at least `times` lines that each
/// say every one of `parts`.
async fn logged(gateway: &Gateway, parts: &[&str], times: usize) {
    wait_until(&format!("the log to say {parts:?}"), WAIT, || async {
        let logs = gateway.logs();
        let lines = logs
            .lines()
            .filter(|line| parts.iter().all(|part| line.contains(part)))
            .count();
        (lines >= times).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_error_loading_a_plugin_retries_the_event_instead_of_dead_lettering_it() {
    let redis = Redis::ephemeral();
    // Compiled code is not kept on disk here, so that a restart has to load
    // the component's bytes from Redis.
    let mut gateway = Gateway::spawn_with(
        &redis,
        GatewayOptions {
            extra: "[plugins]\nkeep_artifacts = false\n".into(),
            ..GatewayOptions::default()
        },
    );
    let api = gateway.api();
    let tenant = api.create_tenant("acme").await;
    let receiver = Receiver::start().await;
    api.install_plugin(&tenant, "upgrade", "schema_upgrade")
        .await;
    let (_, plugins) = api.get("/v1/plugins", &tenant.key).await;
    let sha256 = plugins["data"][0]["versions"][0]["sha256"]
        .as_str()
        .expect("a sha256")
        .to_string();
    api.create_endpoint(
        &tenant,
        json!({"url": receiver.url("/"), "plugins": [{"name": "upgrade", "config": {"default_currency": "GBP"}}]}),
    )
    .await;

    // A restart empties the compiled-code cache, so the next call loads the
    // component's bytes; reading them fails (WRONGTYPE) until put back.
    block_in_place(|| gateway.kill());
    let mut conn = redis.conn().await;
    let key = format!("gw:{{t.{}}}:wasm:{sha256}", tenant.id);
    let aside = format!("{key}:aside");
    let _: () = conn.rename(&key, &aside).await.unwrap();
    let _: () = conn.hset(&key, "not", "bytes").await.unwrap();
    block_in_place(|| gateway.restart());

    let order = json!({"order_id": "ord_1", "customer_name": "Ada Lovelace", "customer_email": "ada@example.com", "amount_cents": 5});
    let event = api
        .post_event(&tenant, json!({"type": "order.created", "data": order}))
        .await;
    // Two tries, the second after the visibility timeout took the event over.
    logged(&gateway, &["could not fan out an event"], 2).await;
    let status = delivery(&api, &tenant, &event).await;
    assert!(
        status.is_null() || status["status"] == "pending",
        "a Redis error settled the event: {status}"
    );
    assert_eq!(receiver.count(), 0);

    let _: () = conn.del(&key).await.unwrap();
    let _: () = conn.rename(&aside, &key).await.unwrap();
    let requests = receiver.wait_for(1, WAIT).await;
    assert_eq!(requests[0].json()["data"]["amount"]["currency"], "GBP");
    wait_until("the event to be delivered", WAIT, || async {
        (delivery(&api, &tenant, &event).await["status"] == "delivered").then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_endpoint_record_holds_its_events_back_until_it_is_repaired() {
    let redis = Redis::ephemeral();
    let gateway = Gateway::spawn(&redis);
    let api = gateway.api();
    let tenant = api.create_tenant("acme").await;
    let receiver = Receiver::start().await;
    let endpoint = api
        .create_endpoint(&tenant, json!({"url": receiver.url("/")}))
        .await;
    let mut conn = redis.conn().await;
    let key = format!("gw:{{t.{}}}:ep:{}", tenant.id, endpoint.id);
    let version = format!("gw:{{t.{}}}:epver", tenant.id);
    let good: String = conn.get(&key).await.unwrap();

    // Fan-out reads the record when the tenant's endpoint version moves.
    let _: () = conn.set(&key, "{\"id\": 7, truncated").await.unwrap();
    let _: () = conn.incr(&version, 1).await.unwrap();
    let first = api
        .post_event(&tenant, json!({"type": "a.b", "data": {"n": 1}}))
        .await;
    logged(&gateway, &["stage step failed", "fanout-"], 1).await;

    // The delivery stage reads it (when the version moves) before each
    // attempt: the first answer is a slow 500, and the record breaks while
    // it is under way.
    let _: () = conn.set(&key, &good).await.unwrap();
    let _: () = conn.incr(&version, 1).await.unwrap();
    receiver.wait_for(1, WAIT).await;
    receiver.script([Reply::status(500).delay(Duration::from_secs(1))]);
    let second = api
        .post_event(&tenant, json!({"type": "a.b", "data": {"n": 2}}))
        .await;
    wait_until("the second event in flight", WAIT, || async {
        (receiver.in_flight() == 1).then_some(())
    })
    .await;
    let _: () = conn.set(&key, "[]").await.unwrap();
    let _: () = conn.incr(&version, 1).await.unwrap();
    logged(&gateway, &["stage step failed", "delivery-"], 1).await;
    let held = delivery(&api, &tenant, &second).await;
    assert_ne!(held["status"], "dropped", "{held}");
    assert_ne!(held["status"], "dead_lettered", "{held}");

    // The list and the record itself answer an error, not a lie.
    let (status, body) = api.get("/v1/endpoints", &tenant.key).await;
    assert_eq!(status, 500, "{body}");

    let _: () = conn.set(&key, &good).await.unwrap();
    let _: () = conn.incr(&version, 1).await.unwrap();
    for event in [&first, &second] {
        wait_until(&format!("{event} to be delivered"), WAIT, || async {
            (delivery(&api, &tenant, event).await["status"] == "delivered").then_some(())
        })
        .await;
    }
    let numbers: Vec<u64> = receiver
        .requests()
        .iter()
        .filter_map(|r| r.json()["data"]["n"].as_u64())
        .collect();
    assert!(numbers.contains(&1) && numbers.contains(&2), "{numbers:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_limits_record_is_an_error_not_unlimited() {
    let redis = Redis::ephemeral();
    let gateway = Gateway::spawn_with(&redis, GatewayOptions::default());
    let api = gateway.api();
    let tenant = api.create_tenant("acme").await;
    let path = format!("/v1/admin/tenants/{}/limits", tenant.id);
    let (status, body) = api
        .call(
            Method::PUT,
            &path,
            OPERATOR_TOKEN,
            Some(json!({"ingest_per_second": 5})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let mut conn = redis.conn().await;
    let _: () = conn
        .set(
            format!("gw:{{t.{}}}:limits", tenant.id),
            "{\"ingest_per_second\": \"five\"}",
        )
        .await
        .unwrap();
    let (status, body) = api.get(&path, OPERATOR_TOKEN).await;
    assert_eq!(status, 500, "a corrupt record read as {body}");
}

/// An entry that does not decode names no tenant or event to dead-letter it
/// for: it is kept aside in its partition's quarantine stream, raw and with
/// why, and leaves its stream, so it neither blocks the stage nor vanishes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_stream_entry_is_quarantined_not_discarded() {
    let redis = Redis::ephemeral();
    let gateway = Gateway::spawn(&redis);
    let api = gateway.api();
    let tenant = api.create_tenant("acme").await;
    let receiver = Receiver::start().await;
    api.create_endpoint(&tenant, json!({"url": receiver.url("/")}))
        .await;
    let mut conn = redis.conn().await;
    let _: String = conn
        .xadd("gw:{p1}:ingest", "*", &[("j", "{not an event")])
        .await
        .unwrap();
    let _: String = conn
        .xadd("gw:{p2}:delivery", "*", &[("j", "[\"not a task\"]")])
        .await
        .unwrap();

    let kept: Vec<(String, String, String)> =
        wait_until("both entries to be quarantined", WAIT, || async {
            let mut conn = redis.conn().await;
            let mut kept = Vec::new();
            for p in [1, 2] {
                let reply: redis::streams::StreamRangeReply = conn
                    .xrange_all(format!("gw:{{p{p}}}:quarantine"))
                    .await
                    .unwrap();
                for entry in reply.ids {
                    let field = |name: &str| entry.get::<String>(name).unwrap_or_default();
                    kept.push((field("stream"), field("j"), field("error")));
                }
            }
            (kept.len() == 2).then_some(kept)
        })
        .await;
    assert_eq!(kept[0].0, "gw:{p1}:ingest");
    assert_eq!(kept[0].1, "{not an event");
    assert_eq!(kept[1].0, "gw:{p2}:delivery");
    assert_eq!(kept[1].1, "[\"not a task\"]");
    assert!(kept.iter().all(|k| !k.2.is_empty()), "{kept:?}");
    let left: usize = conn.xlen("gw:{p2}:delivery").await.unwrap();
    assert_eq!(left, 0, "the unreadable task left the delivery stream");

    // The stages go on: a good event behind them is delivered.
    api.post_event(&tenant, json!({"type": "a.b", "data": {}}))
        .await;
    receiver.wait_for(1, WAIT).await;
}
