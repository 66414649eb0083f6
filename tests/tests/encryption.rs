//! Encryption at rest against a real redis-server: with
//! `security.encryption_key` set, nothing Redis holds shows an endpoint's
//! secret or an event's payload in clear, deliveries still verify, and a
//! rotated key list (new key first, old one kept) still reads the records
//! the old key sealed.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use gateway_tests::{
    Gateway, GatewayOptions, Receiver, Redis, Reply, verify_signature, wait_until,
};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(30);
const MARKER: &str = "card-4242-4242-4242-4242";

fn options(keys: &[[u8; 32]]) -> GatewayOptions {
    let keys: Vec<String> = keys
        .iter()
        .map(|k| format!("\"{}\"", STANDARD.encode(k)))
        .collect();
    GatewayOptions {
        // Long enough for an event to wait out a restart between attempts.
        retry_schedule: vec![
            "0s", "500ms", "500ms", "1s", "1s", "1s", "2s", "2s", "2s", "5s",
        ],
        extra: format!("[security]\nencryption_key = [{}]\n", keys.join(", ")),
        ..GatewayOptions::default()
    }
}

/// Everything Redis holds, as text: every key's name and values, whatever
/// its type.
async fn dump(redis: &Redis) -> String {
    let mut conn = redis.conn().await;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("*")
        .query_async(&mut conn)
        .await
        .unwrap();
    let mut text = String::new();
    for key in keys {
        let kind: String = redis::cmd("TYPE")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .unwrap();
        let mut command = match kind.as_str() {
            "string" => redis::cmd("GET"),
            "hash" => redis::cmd("HGETALL"),
            "stream" => redis::cmd("XRANGE"),
            "zset" => redis::cmd("ZRANGE"),
            "list" => redis::cmd("LRANGE"),
            "set" => redis::cmd("SMEMBERS"),
            // Gone since KEYS listed it.
            "none" => continue,
            other => panic!("{key} is a {other}"),
        };
        command.arg(&key);
        match kind.as_str() {
            "stream" => command.arg("-").arg("+"),
            "zset" | "list" => command.arg(0).arg(-1),
            _ => &mut command,
        };
        let value: redis::Value = command.query_async(&mut conn).await.unwrap();
        text.push_str(&format!("{key} => {value:?}\n"));
    }
    text
}

/// The base64 body of a `whsec_` secret: what must never show in Redis.
fn key_material(secret: &str) -> &str {
    secret.strip_prefix("whsec_").expect("an HMAC secret")
}

#[tokio::test]
async fn secrets_and_payloads_are_sealed_in_redis_and_a_rotated_key_list_still_reads_them() {
    let redis = Redis::ephemeral();
    let (old, new) = ([11u8; 32], [22u8; 32]);
    let mut gateway = Gateway::spawn_with(&redis, options(&[old]));
    let api = gateway.api();
    let tenant = api.create_tenant("acme").await;
    let receiver = Receiver::start().await;
    let endpoint = api
        .create_endpoint(&tenant, json!({"url": receiver.url("/hook")}))
        .await;
    let event = json!({"type": "card.charged", "data": {"card": MARKER, "n": 1}});
    api.post_event(&tenant, event).await;
    let delivered = receiver.wait_for(1, WAIT).await;
    assert!(delivered[0].json()["data"]["card"] == MARKER);
    verify_signature(&endpoint.secret, &delivered[0]).expect("a delivery that verifies");

    let stored = dump(&redis).await;
    assert!(!stored.contains(MARKER), "a payload in clear:\n{stored}");
    assert!(
        !stored.contains(key_material(&endpoint.secret)),
        "a secret in clear:\n{stored}"
    );
    assert!(!stored.contains("whsec_"), "{stored}");
    assert!(stored.contains("gwe1."), "nothing sealed:\n{stored}");

    // An event waits to be retried, sealed under the old key, while the
    // gateway comes back with the key list rotated: the new key first.
    receiver.set_default(Reply::status(503));
    let second = json!({"type": "card.charged", "data": {"card": MARKER, "n": 2}});
    let waiting = api.post_event(&tenant, second).await;
    receiver.wait_for(2, WAIT).await;
    gateway.kill();
    let refused = receiver.count();
    receiver.set_default(Reply::ok());
    let gateway = Gateway::spawn_with(&redis, options(&[new, old]));
    let api = gateway.api();
    let path = format!("/v1/events/{waiting}");
    wait_until("the waiting event delivered", WAIT, || async {
        let (_, event) = api.get(&path, &tenant.key).await;
        (event["deliveries"][0]["status"] == "delivered").then_some(())
    })
    .await;
    let answered = receiver.requests().split_off(refused);
    let answered = answered
        .iter()
        .find(|r| r.json()["data"]["n"] == 2)
        .expect("the waiting event, sent by the restarted gateway");
    verify_signature(&endpoint.secret, answered).expect("the old-key secret still signs");
    let (status, shown) = api
        .get(
            &format!("/v1/endpoints/{}/secret", endpoint.id),
            &tenant.key,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(shown["secret"], endpoint.secret.as_str());

    // New records are sealed under the new key.
    let third = json!({"type": "card.charged", "data": {"card": MARKER, "n": 3}});
    let id = api.post_event(&tenant, third).await;
    let (status, read) = api.get(&format!("/v1/events/{id}"), &tenant.key).await;
    assert_eq!(status, 200, "{read}");
    assert_eq!(read["data"]["card"], MARKER);
    let stored = dump(&redis).await;
    assert!(!stored.contains(MARKER), "a payload in clear:\n{stored}");
    let id_of = |key: &[u8; 32]| {
        use sha2::Digest;
        hex_prefix(&sha2::Sha256::digest(key)[..4])
    };
    assert!(
        stored.contains(&format!("gwe1.{}.", id_of(&new))),
        "{stored}"
    );
    assert!(
        stored.contains(&format!("gwe1.{}.", id_of(&old))),
        "{stored}"
    );
}

fn hex_prefix(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn without_a_key_the_gateway_warns_and_stores_in_clear() {
    let redis = Redis::ephemeral();
    let gateway = Gateway::spawn(&redis);
    let api = gateway.api();
    let tenant = api.create_tenant("acme").await;
    let receiver = Receiver::start().await;
    api.create_endpoint(&tenant, json!({"url": receiver.url("/hook")}))
        .await;
    api.post_event(&tenant, json!({"type": "a.b", "data": {"card": MARKER}}))
        .await;
    receiver.wait_for(1, WAIT).await;
    assert!(dump(&redis).await.contains(MARKER));
    assert!(
        gateway
            .logs()
            .contains("security.encryption_key is not set"),
        "{}",
        gateway.logs()
    );
}

/// An ingest entry that does not decode is moved to its partition's
/// quarantine stream as it was: its body stays sealed there.
#[tokio::test]
async fn a_quarantined_entry_keeps_its_body_sealed() {
    let redis = Redis::ephemeral();
    let key = [33u8; 32];
    let _gateway = Gateway::spawn_with(&redis, options(&[key]));
    // Sealed here with the gateway's key, as its ingest would have.
    gateway::model::sealed::install(&[key]);
    let body = json!({"type": "card.charged", "data": {"card": MARKER}}).to_string();
    let sealed = gateway::model::sealed::seal(&body).into_owned();
    assert!(sealed.starts_with("gwe1.") && !sealed.contains(MARKER));
    let mut conn = redis.conn().await;
    let _: String = redis::cmd("XADD")
        .arg("gw:{p1}:ingest")
        .arg("*")
        .arg("j")
        .arg("{not an event")
        .arg("b")
        .arg(&sealed)
        .query_async(&mut conn)
        .await
        .expect("XADD");

    let kept: String = wait_until("the entry to be quarantined", WAIT, || async {
        let mut conn = redis.conn().await;
        let reply: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
            .arg("gw:{p1}:quarantine")
            .arg("-")
            .arg("+")
            .query_async(&mut conn)
            .await
            .expect("XRANGE");
        reply.ids.first().and_then(|e| e.get::<String>("b"))
    })
    .await;
    assert_eq!(kept, sealed, "the quarantined body as it was stored");
    let stored = dump(&redis).await;
    assert!(!stored.contains(MARKER), "a payload in clear:\n{stored}");
}
