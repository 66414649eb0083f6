//! The API's contract: auth, idempotent ingest, tenant isolation, endpoint
//! management, and every bad input answered with problem+json that changes
//! nothing.

use std::time::Duration;

use gateway_tests::{Api, Gateway, OPERATOR_TOKEN, Receiver, Redis, wait_until};
use redis::AsyncCommands;
use reqwest::Method;
use serde_json::{Value, json};

/// Sends raw bytes with a content type; returns status, content type and body.
async fn raw(
    api: &Api,
    method: Method,
    path: &str,
    token: &str,
    content_type: &str,
    body: Vec<u8>,
) -> (u16, String, Value) {
    let response = api
        .request(method, path, token)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let ct = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let text = response.text().await.unwrap();
    (
        status,
        ct,
        serde_json::from_str(&text).unwrap_or(Value::Null),
    )
}

/// Asserts a problem+json answer with `status` and, when given, the first pointer.
fn assert_problem(got: &(u16, String, Value), status: u16, pointer: Option<&str>) {
    let (s, ct, body) = got;
    assert_eq!(*s, status, "{body}");
    assert_eq!(ct, "application/problem+json", "{body}");
    assert_eq!(body["status"], status);
    assert!(
        body["type"].as_str().unwrap().starts_with("/problems/"),
        "{body}"
    );
    assert!(!body["detail"].as_str().unwrap().is_empty());
    if let Some(p) = pointer {
        assert_eq!(body["errors"][0]["pointer"], p, "{body}");
    }
}

async fn stream_lengths(redis: &Redis) -> usize {
    let mut conn = redis.conn().await;
    let mut total = 0;
    for p in 0..4 {
        let len: usize = conn.xlen(format!("gw:{{p{p}}}:ingest")).await.unwrap();
        total += len;
    }
    total
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_input_gets_problem_json_and_changes_nothing() {
    let redis = Redis::ephemeral();
    let gateway = Gateway::spawn(&redis);
    let api = gateway.api();
    let tenant = api.create_tenant("acme").await;
    let key = tenant.key.as_str();
    let json_ct = "application/json";
    let event = |body: &str| {
        raw(
            &api,
            Method::POST,
            "/v1/events",
            key,
            json_ct,
            body.as_bytes().to_vec(),
        )
    };

    assert_problem(&event("{\"type\": \"a\", ").await, 400, None);
    assert_problem(&event("[1, 2]").await, 422, None);
    assert_problem(&event("{\"data\": {}}").await, 422, Some("/type"));
    assert_problem(&event("{\"type\": \"a.b\"}").await, 422, Some("/data"));
    assert_problem(
        &event("{\"type\": 5, \"data\": {}}").await,
        422,
        Some("/type"),
    );
    assert_problem(
        &event("{\"type\": \"a b\", \"data\": {}}").await,
        422,
        Some("/type"),
    );
    assert_problem(
        &event("{\"type\": \"a.b\", \"data\": [1]}").await,
        422,
        Some("/data"),
    );
    assert_problem(
        &event("{\"type\": \"a.b\", \"data\": {}, \"timestamp\": \"noon\"}").await,
        422,
        Some("/timestamp"),
    );
    assert_problem(
        &event("{\"type\": \"a.b\", \"data\": {}, \"id\": \"has space\"}").await,
        422,
        Some("/id"),
    );
    assert_problem(
        &event("{\"type\": \"a.b\", \"data\": {}, \"colour\": 1}").await,
        422,
        Some("/colour"),
    );
    let big = format!(
        "{{\"type\": \"a.b\", \"data\": {{\"x\": \"{}\"}}}}",
        "y".repeat(1 << 20)
    );
    assert_problem(&event(&big).await, 413, None);
    assert_problem(
        &raw(
            &api,
            Method::POST,
            "/v1/events",
            key,
            "text/plain",
            b"{}".to_vec(),
        )
        .await,
        415,
        None,
    );
    let long_key = api
        .request(Method::POST, "/v1/events", key)
        .header("idempotency-key", "k".repeat(300))
        .json(&json!({"type": "a.b", "data": {}}))
        .send()
        .await
        .unwrap();
    assert_eq!(long_key.status().as_u16(), 422);

    assert_problem(
        &raw(
            &api,
            Method::POST,
            "/v1/events",
            "wrong-key",
            json_ct,
            b"{}".to_vec(),
        )
        .await,
        401,
        None,
    );
    assert_problem(
        &raw(&api, Method::GET, "/v1/admin/tenants", key, json_ct, vec![]).await,
        401,
        None,
    );
    assert_problem(
        &raw(
            &api,
            Method::POST,
            "/v1/admin/tenants",
            OPERATOR_TOKEN,
            json_ct,
            b"{\"name\": \"\"}".to_vec(),
        )
        .await,
        422,
        Some("/name"),
    );
    assert_problem(
        &raw(&api, Method::GET, "/v1/nothing-here", key, json_ct, vec![]).await,
        404,
        None,
    );
    assert_problem(
        &raw(&api, Method::PUT, "/v1/events", key, json_ct, vec![]).await,
        405,
        None,
    );
    assert_problem(
        &raw(
            &api,
            Method::GET,
            "/v1/endpoints?limit=0",
            key,
            json_ct,
            vec![],
        )
        .await,
        422,
        Some("query:limit"),
    );

    let endpoint = |body: Value| {
        raw(
            &api,
            Method::POST,
            "/v1/endpoints",
            key,
            json_ct,
            body.to_string().into_bytes(),
        )
    };
    assert_problem(
        &endpoint(json!({"url": "not a url"})).await,
        422,
        Some("/url"),
    );
    assert_problem(
        &endpoint(json!({"url": "ftp://example.com/"})).await,
        422,
        Some("/url"),
    );
    assert_problem(&endpoint(json!({})).await, 422, Some("/url"));
    assert_problem(
        &endpoint(json!({"url": "http://127.0.0.1:1/", "timeout_ms": 0})).await,
        422,
        Some("/timeout_ms"),
    );
    assert_problem(
        &endpoint(json!({"url": "http://127.0.0.1:1/", "event_types": ["ok", "not ok"]})).await,
        422,
        Some("/event_types/1"),
    );
    assert_problem(
        &endpoint(json!({"url": "http://127.0.0.1:1/", "headers": {"webhook-id": "x"}})).await,
        422,
        Some("/headers/webhook-id"),
    );
    assert_problem(
        &endpoint(json!({"url": "http://127.0.0.1:1/", "secret": "plain"})).await,
        422,
        Some("/secret"),
    );

    assert_eq!(stream_lengths(&redis).await, 0, "no bad event was stored");
    let (_, endpoints) = api.get("/v1/endpoints", key).await;
    assert_eq!(
        endpoints["data"].as_array().unwrap().len(),
        0,
        "no bad endpoint was stored"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotency_key_or_event_id_is_stored_once() {
    let redis = Redis::ephemeral();
    let gateway = Gateway::spawn(&redis);
    let api = gateway.api();
    let receiver = Receiver::start().await;
    let tenant = api.create_tenant("acme").await;
    api.create_endpoint(&tenant, json!({"url": receiver.url("/")}))
        .await;

    let post = |key: &'static str, body: Value| {
        let api = api.clone();
        let token = tenant.key.clone();
        async move {
            let response = api
                .request(Method::POST, "/v1/events", &token)
                .header("idempotency-key", key)
                .json(&body)
                .send()
                .await
                .unwrap();
            let replayed = response.headers().get("idempotent-replayed").is_some();
            (
                response.status().as_u16(),
                response.json::<Value>().await.unwrap()["id"].clone(),
                replayed,
            )
        }
    };
    let first = post("order-1", json!({"type": "a.b", "data": {"n": 1}})).await;
    let second = post("order-1", json!({"type": "a.b", "data": {"n": 2}})).await;
    assert_eq!((first.0, first.2), (202, false));
    assert_eq!((second.0, second.2), (202, true));
    assert_eq!(
        first.1, second.1,
        "the same key answers the first event's id"
    );

    let by_id = api
        .post_event(&tenant, json!({"id": "evt-7", "type": "a.b", "data": {}}))
        .await;
    let again = api
        .post_event(&tenant, json!({"id": "evt-7", "type": "a.b", "data": {}}))
        .await;
    assert_eq!((by_id.as_str(), again.as_str()), ("evt-7", "evt-7"));

    receiver.wait_for(2, Duration::from_secs(10)).await;
    assert_eq!(
        stream_lengths(&redis).await,
        2,
        "two events stored, not four"
    );
    let (_, event) = api.get("/v1/events/evt-7", &tenant.key).await;
    assert_eq!(event["id"], "evt-7");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_never_sees_another_tenants_objects() {
    let redis = Redis::ephemeral();
    let gateway = Gateway::spawn(&redis);
    let api = gateway.api();
    let receiver = Receiver::start().await;
    receiver.set_default(gateway_tests::Reply::status(500));
    let a = api.create_tenant("a").await;
    let b = api.create_tenant("b").await;
    let endpoint = api
        .create_endpoint(&a, json!({"url": receiver.url("/")}))
        .await;
    let event = api.post_event(&a, json!({"type": "a.b", "data": {}})).await;
    let letter = wait_until(
        "a dead letter for tenant a",
        Duration::from_secs(15),
        || async {
            let (_, letters) = api.get("/v1/dead-letters", &a.key).await;
            letters["data"][0]["id"].as_str().map(str::to_string)
        },
    )
    .await;

    let ep = format!("/v1/endpoints/{}", endpoint.id);
    let since = json!({"since": "2020-01-01T00:00:00Z"});
    let (status, job) = api
        .call(
            Method::POST,
            &format!("{ep}/replay"),
            &a.key,
            Some(since.clone()),
        )
        .await;
    assert_eq!(status, 202, "{job}");
    let replay = format!("/v1/replays/{}", job["id"].as_str().expect("a job id"));
    let attempts: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, ep.clone(), None),
        (
            Method::PATCH,
            ep.clone(),
            Some(json!({"description": "mine now"})),
        ),
        (Method::DELETE, ep.clone(), None),
        (Method::GET, format!("{ep}/secret"), None),
        (Method::POST, format!("{ep}/secret/rotate"), None),
        (Method::GET, format!("{ep}/attempts"), None),
        (Method::POST, format!("{ep}/replay"), Some(since)),
        (Method::GET, replay, None),
        (Method::GET, format!("/v1/events/{event}"), None),
        (
            Method::POST,
            format!("/v1/dead-letters/{letter}/redeliver"),
            None,
        ),
    ];
    for (method, path, body) in attempts {
        let (status, answer) = api.call(method.clone(), &path, &b.key, body).await;
        assert_eq!(status, 404, "{method} {path} as tenant b: {answer}");
    }
    let (_, endpoints) = api.get("/v1/endpoints", &b.key).await;
    assert_eq!(endpoints["data"].as_array().unwrap().len(), 0);
    let (_, letters) = api.get("/v1/dead-letters", &b.key).await;
    assert_eq!(letters["data"].as_array().unwrap().len(), 0);
    let (status, _) = api.get(&ep, &a.key).await;
    assert_eq!(status, 200, "tenant a's endpoint is untouched");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_are_listed_updated_and_deleted() {
    let redis = Redis::ephemeral();
    let gateway = Gateway::spawn(&redis);
    let api = gateway.api();
    let tenant = api.create_tenant("acme").await;
    let mut ids = Vec::new();
    for n in 0..5 {
        ids.push(
            api.create_endpoint(&tenant, json!({"url": format!("http://127.0.0.1:9/{n}")}))
                .await
                .id,
        );
    }
    let mut seen = Vec::new();
    let mut path = "/v1/endpoints?limit=2".to_string();
    loop {
        let (_, page) = api.get(&path, &tenant.key).await;
        seen.extend(
            page["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["id"].as_str().unwrap().to_string()),
        );
        assert!(
            page["data"][0].get("secret").is_none() && page["data"][0].get("secrets").is_none(),
            "no secrets in lists"
        );
        match page["next_cursor"].as_str() {
            Some(c) => path = format!("/v1/endpoints?limit=2&cursor={c}"),
            None => break,
        }
    }
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(seen, sorted, "listed in id order");
    ids.sort();
    assert_eq!(seen, ids, "every endpoint exactly once");

    let one = format!("/v1/endpoints/{}", seen[0]);
    let patch = json!({"description": "orders", "event_types": ["order.created"], "timeout_ms": 1500, "headers": {"X-A": "b"}});
    let (status, updated) = api
        .call(Method::PATCH, &one, &tenant.key, Some(patch))
        .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(
        (
            updated["description"].clone(),
            updated["timeout_ms"].clone()
        ),
        (json!("orders"), json!(1500))
    );
    let (_, updated) = api
        .call(
            Method::PATCH,
            &one,
            &tenant.key,
            Some(json!({"timeout_ms": null})),
        )
        .await;
    assert!(updated["timeout_ms"].is_null());
    assert_eq!(
        updated["event_types"],
        json!(["order.created"]),
        "fields left out are kept"
    );

    let (status, _) = api.call(Method::DELETE, &one, &tenant.key, None).await;
    assert_eq!(status, 204);
    let (status, _) = api.get(&one, &tenant.key).await;
    assert_eq!(status, 404);

    let (status, tenants) = api.get("/v1/admin/tenants", OPERATOR_TOKEN).await;
    assert_eq!(status, 200);
    assert_eq!(tenants["data"][0]["id"], tenant.id.as_str());
    assert!(
        tenants["data"][0].get("api_key").is_none(),
        "a key is shown only once"
    );
    let (status, one_tenant) = api
        .get(&format!("/v1/admin/tenants/{}", tenant.id), OPERATOR_TOKEN)
        .await;
    assert_eq!((status, one_tenant["name"].clone()), (200, json!("acme")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_readiness_and_metrics() {
    let redis = Redis::ephemeral();
    let gateway = Gateway::spawn(&redis);
    let api = gateway.api();
    let (status, _) = api.get("/healthz", "").await;
    assert_eq!(status, 200);
    wait_until("readiness", Duration::from_secs(10), || async {
        (api.get("/readyz", "").await.0 == 200).then_some(())
    })
    .await;
    let tenant = api.create_tenant("acme").await;
    api.post_event(&tenant, json!({"type": "a.b", "data": {}}))
        .await;
    let metrics = api.metrics_text().await;
    assert!(
        metrics.contains("gateway_events_accepted_total 1\n"),
        "{metrics}"
    );
}
