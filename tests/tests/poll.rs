//! The pull channel of a poll-mode endpoint through the HTTP API, against
//! a real redis-server: paging with cursors, signatures a consumer can
//! check, long-poll, resuming from the acknowledged cursor, nothing lost
//! across a gateway SIGKILL, poll keys scoped to one endpoint, and bad input
//! refused.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use gateway_tests::{
    Api, Gateway, Recorded, Redis, Setup, Tenant, setup, verify_signature, wait_until,
};
use reqwest::Method;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(20);

async fn poll(api: &Api, tenant: &Tenant, id: &str, query: &str) -> Value {
    let path = format!("/v1/endpoints/{id}/poll{query}");
    let (status, body) = api.get(&path, &tenant.key).await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn post(api: &Api, tenant: &Tenant, n: std::ops::Range<u64>) {
    for i in n {
        api.post_event(tenant, json!({"type": "order.created", "data": {"n": i}}))
            .await;
    }
}

/// Every event in the channel from the start, reading pages of `limit`.
async fn drain(api: &Api, tenant: &Tenant, id: &str, want: usize) -> Vec<Value> {
    wait_until(&format!("{want} events in the channel"), WAIT, || async {
        let mut all = Vec::new();
        let mut cursor = "0".to_string();
        loop {
            let page = poll(api, tenant, id, &format!("?cursor={cursor}&limit=100")).await;
            let items = page["data"].as_array().unwrap().clone();
            if items.is_empty() {
                break;
            }
            cursor = page["next_cursor"].as_str().unwrap().to_string();
            all.extend(items);
        }
        (all.len() >= want).then_some(all)
    })
    .await
}

fn n_of(item: &Value) -> u64 {
    item["body"]["data"]["n"].as_u64().unwrap()
}

/// The item as the request a push would have been, for the verifier.
fn as_request(item: &Value) -> Recorded {
    let headers: HashMap<String, String> = item["headers"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
        .collect();
    Recorded {
        path: String::new(),
        headers,
        body: item["raw"].as_str().unwrap().as_bytes().to_vec(),
        at: Instant::now(),
    }
}

async fn poll_endpoint(api: &Api, tenant: &Tenant) -> gateway_tests::Endpoint {
    api.create_endpoint(tenant, json!({"mode": "poll"})).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_are_paged_with_cursors_and_signed_as_a_push_would_be() {
    let Setup {
        _redis,
        _gateway,
        api,
        tenant,
    } = setup().await;
    let ep = poll_endpoint(&api, &tenant).await;
    post(&api, &tenant, 0..25).await;
    drain(&api, &tenant, &ep.id, 25).await;

    let mut cursor = "0".to_string();
    let mut seen = Vec::new();
    for want in [10, 10, 5, 0] {
        let page = poll(&api, &tenant, &ep.id, &format!("?cursor={cursor}&limit=10")).await;
        let items = page["data"].as_array().unwrap();
        assert_eq!(items.len(), want, "{page}");
        for item in items {
            verify_signature(&ep.secret, &as_request(item)).expect("signed like a push");
            assert_eq!(item["body"]["type"], "order.created");
            assert!(item["id"].as_str().unwrap().starts_with("evt_"));
            seen.push(n_of(item));
        }
        let next = page["next_cursor"].as_str().unwrap().to_string();
        if want == 0 {
            assert_eq!(next, cursor, "an empty page keeps the cursor");
        }
        cursor = next;
    }
    seen.sort();
    assert_eq!(seen, (0..25).collect::<Vec<_>>());
    assert!(api.metric("gateway_deliveries_polled_total").await >= 25.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_poll_wakes_when_an_event_arrives() {
    let Setup {
        _redis,
        _gateway,
        api,
        tenant,
    } = setup().await;
    let ep = poll_endpoint(&api, &tenant).await;
    let empty = poll(&api, &tenant, &ep.id, "?wait_ms=300").await;
    assert_eq!(empty["data"], json!([]), "nothing came within the wait");
    let cursor = empty["next_cursor"].as_str().unwrap().to_string();

    let waiting = {
        let (api, tenant, id) = (api.clone(), tenant.clone(), ep.id.clone());
        tokio::spawn(async move {
            let page = poll(
                &api,
                &tenant,
                &id,
                &format!("?cursor={cursor}&wait_ms=10000"),
            )
            .await;
            (page, Instant::now())
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let posted = Instant::now();
    post(&api, &tenant, 7..8).await;
    let (page, woke) = waiting.await.unwrap();
    assert_eq!(n_of(&page["data"][0]), 7, "{page}");
    let after = woke - posted;
    println!("long poll answered {after:?} after the event was posted");
    assert!(
        after < Duration::from_secs(2),
        "woke {after:?} after the post, not at the 10 s end"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_resumes_from_its_acknowledged_cursor_and_nothing_is_lost_across_a_sigkill() {
    let redis = Redis::ephemeral();
    let mut gateway = Gateway::spawn(&redis);
    let api = gateway.api();
    let tenant = api.create_tenant("acme").await;
    let ep = poll_endpoint(&api, &tenant).await;
    post(&api, &tenant, 0..10).await;
    let all = drain(&api, &tenant, &ep.id, 10).await;
    let fifth = all[4]["cursor"].as_str().unwrap();
    let ack = format!("/v1/endpoints/{}/poll/ack", ep.id);
    let (status, body) = api
        .call(
            Method::POST,
            &ack,
            &tenant.key,
            Some(json!({"cursor": fifth})),
        )
        .await;
    assert_eq!(status, 204, "{body}");
    // A new consumer (the first one "crashed") polls without a cursor.
    let resumed = poll(&api, &tenant, &ep.id, "?limit=100").await;
    let got: Vec<u64> = resumed["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(n_of)
        .collect();
    let expected: Vec<u64> = all[5..].iter().map(n_of).collect();
    assert_eq!(got, expected, "resumed after the acknowledged cursor");

    post(&api, &tenant, 10..40).await;
    gateway.restart();
    let api = gateway.api();
    let all = drain(&api, &tenant, &ep.id, 40).await;
    let distinct: HashSet<u64> = all.iter().map(n_of).collect();
    assert_eq!(
        distinct.len(),
        40,
        "every accepted event is in the channel after the SIGKILL"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_poll_input_is_refused_and_changes_nothing() {
    let Setup {
        _redis,
        _gateway,
        api,
        tenant,
    } = setup().await;
    let creates = [
        (json!({"mode": "pull"}), "/mode"),
        (
            json!({"mode": "poll", "batch": {"max_events": 5, "max_wait_ms": 10}}),
            "/batch",
        ),
        (
            json!({"mode": "poll", "failover_urls": ["http://127.0.0.1:1/"]}),
            "/failover_urls",
        ),
        (json!({}), "/url"),
    ];
    for (spec, pointer) in creates {
        let (status, body) = api
            .call(Method::POST, "/v1/endpoints", &tenant.key, Some(spec))
            .await;
        assert_eq!(status, 422, "{body}");
        assert_eq!(body["errors"][0]["pointer"], pointer, "{body}");
    }
    let (_, list) = api.get("/v1/endpoints", &tenant.key).await;
    assert_eq!(list["data"], json!([]), "nothing was created");

    let ep = poll_endpoint(&api, &tenant).await;
    let queries = [
        ("?cursor=abc", "query:cursor"),
        ("?limit=0", "query:limit"),
        ("?wait_ms=99999", "query:wait_ms"),
    ];
    for (query, pointer) in queries {
        let path = format!("/v1/endpoints/{}/poll{query}", ep.id);
        let (status, body) = api.get(&path, &tenant.key).await;
        assert_eq!(status, 422, "{body}");
        assert_eq!(body["errors"][0]["pointer"], pointer, "{body}");
    }
    let ack = format!("/v1/endpoints/{}/poll/ack", ep.id);
    let (status, body) = api
        .call(
            Method::POST,
            &ack,
            &tenant.key,
            Some(json!({"cursor": "x"})),
        )
        .await;
    assert_eq!(
        (status, &body["errors"][0]["pointer"]),
        (422, &json!("/cursor"))
    );
    let resumed = poll(&api, &tenant, &ep.id, "").await;
    assert_eq!(
        resumed["next_cursor"], "0",
        "the refused ack changed nothing"
    );

    let push = api
        .create_endpoint(&tenant, json!({"url": "http://127.0.0.1:1/hook"}))
        .await;
    let (status, body) = api
        .get(&format!("/v1/endpoints/{}/poll", push.id), &tenant.key)
        .await;
    assert_eq!(status, 409, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poll_key_polls_its_own_endpoint_and_nothing_else() {
    let Setup {
        _redis,
        _gateway,
        api,
        tenant,
    } = setup().await;
    let ep = poll_endpoint(&api, &tenant).await;
    let other = poll_endpoint(&api, &tenant).await;
    let keys = format!("/v1/endpoints/{}/poll/keys", ep.id);
    let (status, made) = api.call(Method::POST, &keys, &tenant.key, None).await;
    assert_eq!(status, 201, "{made}");
    let key = made["key"].as_str().unwrap().to_string();
    assert!(key.starts_with("gwp_"), "{made}");
    post(&api, &tenant, 0..3).await;
    drain(&api, &tenant, &ep.id, 3).await;

    let scoped = Tenant {
        id: tenant.id.clone(),
        key: key.clone(),
    };
    let page = poll(&api, &scoped, &ep.id, "?cursor=0").await;
    assert_eq!(page["data"].as_array().unwrap().len(), 3, "{page}");
    let ack = format!("/v1/endpoints/{}/poll/ack", ep.id);
    let cursor = page["next_cursor"].clone();
    let (status, _) = api
        .call(Method::POST, &ack, &key, Some(json!({"cursor": cursor})))
        .await;
    assert_eq!(status, 204);

    let elsewhere = [
        (Method::GET, format!("/v1/endpoints/{}/poll", other.id), 404),
        (Method::GET, format!("/v1/endpoints/{}", ep.id), 401),
        (Method::GET, "/v1/endpoints".to_string(), 401),
        (Method::POST, keys.clone(), 401),
    ];
    for (method, path, want) in elsewhere {
        let (status, body) = api.call(method.clone(), &path, &key, None).await;
        assert_eq!(status, want, "{method} {path}: {body}");
    }
    let (status, _) = api
        .get(&format!("/v1/endpoints/{}/poll", ep.id), "gwp_not-a-key")
        .await;
    assert_eq!(status, 401);
    let push = api
        .create_endpoint(&tenant, json!({"url": "http://127.0.0.1:1/hook"}))
        .await;
    let push_keys = format!("/v1/endpoints/{}/poll/keys", push.id);
    let (status, body) = api.call(Method::POST, &push_keys, &tenant.key, None).await;
    assert_eq!(status, 409, "no poll key for a push endpoint: {body}");
}
