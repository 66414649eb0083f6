//! `redis_prefix`: two deployments with different prefixes share one
//! redis-server and neither sees the other's tenants, keys or events.

use std::time::Duration;

use gateway_tests::{Gateway, GatewayOptions, OPERATOR_TOKEN, Receiver, Redis};
use redis::AsyncCommands;
use serde_json::json;

fn with_prefix(prefix: &str) -> GatewayOptions {
    GatewayOptions {
        env: vec![("GATEWAY_REDIS_PREFIX".into(), prefix.into())],
        ..GatewayOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_deployments_with_their_own_prefixes_share_one_redis_apart() {
    let redis = Redis::ephemeral();
    let blue = Gateway::spawn_with(&redis, with_prefix("blue"));
    let green = Gateway::spawn_with(&redis, with_prefix("green"));
    let (blue_api, green_api) = (blue.api(), green.api());
    let receiver = Receiver::start().await;

    let tenant = blue_api.create_tenant("acme").await;
    blue_api
        .create_endpoint(&tenant, json!({"url": receiver.url("/blue")}))
        .await;
    let other = green_api.create_tenant("acme").await;
    green_api
        .create_endpoint(&other, json!({"url": receiver.url("/green")}))
        .await;
    blue_api
        .post_event(
            &tenant,
            json!({"type": "order.created", "data": {"to": "blue"}}),
        )
        .await;
    green_api
        .post_event(
            &other,
            json!({"type": "order.created", "data": {"to": "green"}}),
        )
        .await;

    let got = receiver.wait_for(2, Duration::from_secs(10)).await;
    for request in &got {
        assert_eq!(
            request.path,
            format!("/{}", request.json()["data"]["to"].as_str().unwrap())
        );
    }
    // Each deployment lists only its own tenant, and its keys do not work on the other.
    for (api, mine) in [(&blue_api, &tenant), (&green_api, &other)] {
        let (status, page) = api.get("/v1/admin/tenants", OPERATOR_TOKEN).await;
        assert_eq!(status, 200, "{page}");
        let ids: Vec<&str> = page["data"]
            .as_array()
            .expect("a page of tenants")
            .iter()
            .filter_map(|t| t["id"].as_str())
            .collect();
        assert_eq!(ids, [mine.id.as_str()]);
    }
    let (status, _) = green_api.get("/v1/endpoints", &tenant.key).await;
    assert_eq!(status, 401, "blue's key on green");

    // Every key in Redis is under one of the two prefixes.
    let mut conn = redis.conn().await;
    let keys: Vec<String> = conn.keys("*").await.expect("KEYS");
    assert!(!keys.is_empty());
    let stray: Vec<&String> = keys
        .iter()
        .filter(|k| !k.starts_with("blue:") && !k.starts_with("green:"))
        .collect();
    assert!(stray.is_empty(), "keys outside both prefixes: {stray:?}");
    assert!(keys.iter().any(|k| k.starts_with("blue:{p")));
    assert!(keys.iter().any(|k| k.starts_with("green:{p")));
}
