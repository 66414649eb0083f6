//! Changes to one stored endpoint that race each other, against a real
//! redis-server through the gateway's own store: a `410 Gone` disabling the
//! endpoint while the tenant deletes or patches it. Each change must touch
//! only what it changes: a deleted endpoint stays deleted, and neither a
//! patch nor the disabling is lost.

use gateway::keys::Partitions;
use gateway::store::{Endpoint, Store};
use gateway_tests::Redis;
use serde_json::json;

const ROUNDS: usize = 40;

async fn store(redis: &Redis) -> Store {
    let (_, conn) = gateway::connect(&redis.url()).await.expect("Redis answers");
    Store::new(conn, Partitions::new(1))
}

/// A store on `redis` holding `ROUNDS` endpoints of tenant `ten_a`, and their ids.
async fn seeded(redis: &Redis) -> (Store, Vec<String>) {
    let store = store(redis).await;
    let ids: Vec<String> = (0..ROUNDS).map(|i| format!("ep_{i}")).collect();
    for id in &ids {
        store.put_endpoint("ten_a", &endpoint(id)).await.unwrap();
    }
    (store, ids)
}

fn endpoint(id: &str) -> Endpoint {
    serde_json::from_value(json!({
        "id": id, "url": "https://example.com/hook", "description": "",
        "event_types": [], "disabled": false, "headers": {}, "timeout_ms": null,
        "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z",
        "secrets": [{"secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}],
    }))
    .expect("an endpoint")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gone_answer_racing_a_delete_never_brings_the_endpoint_back() {
    let redis = Redis::ephemeral();
    let (store, ids) = seeded(&redis).await;
    let mut races = tokio::task::JoinSet::new();
    for id in ids.clone() {
        let (gone, tenant) = (store.clone(), store.clone());
        races.spawn(async move {
            let (disabled, deleted) = tokio::join!(
                gone.disable_endpoint("ten_a", &id, "the endpoint answered 410 Gone"),
                tenant.delete_endpoint("ten_a", &id),
            );
            disabled.unwrap();
            deleted.unwrap();
        });
    }
    while let Some(race) = races.join_next().await {
        race.unwrap();
    }
    let (_, left) = store.all_endpoints("ten_a").await.unwrap();
    let back: Vec<&str> = left.iter().map(|e| e.id.as_str()).collect();
    assert!(back.is_empty(), "deleted endpoints came back: {back:?}");
    for id in &ids {
        assert!(store.endpoint("ten_a", id).await.unwrap().is_none(), "{id}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gone_answer_racing_a_patch_loses_neither() {
    let redis = Redis::ephemeral();
    let (store, ids) = seeded(&redis).await;
    let mut races = tokio::task::JoinSet::new();
    for id in ids.clone() {
        let (gone, tenant) = (store.clone(), store.clone());
        races.spawn(async move {
            let (disabled, patched) = tokio::join!(
                gone.disable_endpoint("ten_a", &id, "the endpoint answered 410 Gone"),
                tenant.update_endpoint("ten_a", &id, |e| {
                    e.description = "patched".into();
                    Ok::<(), ()>(())
                }),
            );
            disabled.unwrap();
            assert!(patched.unwrap().is_some());
        });
    }
    while let Some(race) = races.join_next().await {
        race.unwrap();
    }
    for id in &ids {
        let e = store.endpoint("ten_a", id).await.unwrap().expect("kept");
        assert!(e.disabled, "{id}: the disabling was lost");
        assert_eq!(e.description, "patched", "{id}: the patch was lost");
    }
}
