//! A key limited to one consumer pages through that consumer's dead
//! letters only, in full pages, even where the tenant's other consumers
//! own most of them (real redis-server, real gateway, a receiver that
//! fails every request).

use std::collections::HashSet;
use std::time::Duration;

use gateway_tests::{Api, Gateway, GatewayOptions, Receiver, Redis, Reply, Tenant, wait_until};
use reqwest::Method;
use serde_json::{Value, json};

/// Dead letters of the other consumer, all newer than the first page's.
const THEIRS: usize = 24;
/// Dead letters of the key's consumer.
const MINE: usize = 5;
const PAGE: usize = 2;

async fn consumer_with_endpoint(api: &Api, tenant: &Tenant, uid: &str, url: String) -> String {
    let body = json!({"uid": uid, "name": uid});
    let (status, consumer) = api
        .call(Method::POST, "/v1/consumers", &tenant.key, Some(body))
        .await;
    assert_eq!(status, 201, "{consumer}");
    let id = consumer["id"].as_str().unwrap().to_string();
    api.create_endpoint(tenant, json!({"url": url, "consumer_id": id}))
        .await;
    id
}

async fn post_for(api: &Api, tenant: &Tenant, uid: &str, count: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for _ in 0..count {
        let event = json!({"type": "order.created", "consumer": uid, "data": {}});
        ids.push(api.post_event(tenant, event).await);
    }
    ids
}

#[tokio::test]
async fn a_consumer_key_pages_through_its_own_dead_letters_in_full_pages() {
    let redis = Redis::ephemeral();
    // The circuit never opens, so each failing task dies in 0.6 s.
    let options = GatewayOptions {
        extra: "[circuit]\nfailures = 10000\nopen_for = \"30s\"\n".into(),
        ..GatewayOptions::default()
    };
    let gateway = Gateway::spawn_with(&redis, options);
    let api = gateway.api();
    let tenant = api.create_tenant("acme").await;
    let receiver = Receiver::start().await;
    receiver.set_default(Reply::status(500));
    let mine = consumer_with_endpoint(&api, &tenant, "mine", receiver.url("/mine")).await;
    consumer_with_endpoint(&api, &tenant, "theirs", receiver.url("/theirs")).await;

    let mut my_events = post_for(&api, &tenant, "mine", MINE).await;
    my_events.sort();
    wait_until("my dead letters", Duration::from_secs(30), || async {
        let (_, page) = api.get("/v1/dead-letters?limit=100", &tenant.key).await;
        (page["data"].as_array().map_or(0, Vec::len) == MINE).then_some(())
    })
    .await;
    // The other consumer's letters come after, so they head every page.
    post_for(&api, &tenant, "theirs", THEIRS).await;
    wait_until("every dead letter", Duration::from_secs(30), || async {
        let (_, page) = api.get("/v1/dead-letters?limit=100", &tenant.key).await;
        (page["data"].as_array().map_or(0, Vec::len) == MINE + THEIRS).then_some(())
    })
    .await;

    let (status, portal) = api
        .call(
            Method::POST,
            &format!("/v1/consumers/{mine}/portal-token"),
            &tenant.key,
            Some(json!({"ttl": 600})),
        )
        .await;
    assert_eq!(status, 201, "{portal}");
    let token = portal["api_key"].as_str().unwrap();

    let mut seen = Vec::new();
    let mut sizes = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/dead-letters?limit={PAGE}&cursor={c}"),
            None => format!("/v1/dead-letters?limit={PAGE}"),
        };
        let (status, page) = api.get(&path, token).await;
        assert_eq!(status, 200, "{page}");
        let data = page["data"].as_array().unwrap();
        sizes.push(data.len());
        seen.extend(
            data.iter()
                .map(|l: &Value| l["event_id"].as_str().unwrap().to_string()),
        );
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
        assert!(sizes.len() <= MINE, "pages never end: {sizes:?}");
    }
    // Each of its letters once, none of the other consumer's.
    seen.sort();
    assert_eq!(seen, my_events, "page sizes {sizes:?}");
    let full: HashSet<usize> = sizes[..sizes.len() - 1].iter().copied().collect();
    assert_eq!(full, HashSet::from([PAGE]), "page sizes {sizes:?}");
}
