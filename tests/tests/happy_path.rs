//! The whole flow through the HTTP API: operator makes a tenant, the tenant
//! an endpoint, a producer posts an event, the receiver gets it signed.

use std::time::Duration;

use gateway_tests::{Gateway, Receiver, Redis, verify_signature};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_reaches_its_endpoint_signed_and_its_status_shows_it() {
    let redis = Redis::ephemeral();
    let gateway = Gateway::spawn(&redis);
    let api = gateway.api();
    let receiver = Receiver::start().await;

    let tenant = api.create_tenant("acme").await;
    let endpoint = api
        .create_endpoint(
            &tenant,
            json!({"url": receiver.url("/hook"), "headers": {"X-Team": "payments"}}),
        )
        .await;
    let id = api
        .post_event(
            &tenant,
            json!({"type": "order.created", "data": {"order": 42, "total": 9.5}}),
        )
        .await;

    let got = receiver.wait_for(1, Duration::from_secs(10)).await;
    let request = &got[0];
    verify_signature(&endpoint.secret, request).expect("a valid Standard Webhooks signature");
    assert_eq!(request.path, "/hook");
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(request.header("x-team"), Some("payments"));
    assert!(request.header("webhook-id").unwrap().starts_with("msg_"));
    let body = request.json();
    assert_eq!(body["type"], "order.created");
    assert_eq!(body["data"], json!({"order": 42, "total": 9.5}));
    assert!(body["timestamp"].as_str().unwrap().ends_with('Z'));

    // The event's status per endpoint turns to delivered.
    let path = format!("/v1/events/{id}");
    let event = gateway_tests::wait_until(
        "the event to show delivered",
        Duration::from_secs(5),
        || async {
            let (status, event) = api.get(&path, &tenant.key).await;
            assert_eq!(status, 200, "{event}");
            (event["deliveries"][0]["status"] == "delivered").then_some(event)
        },
    )
    .await;
    assert_eq!(event["deliveries"][0]["endpoint_id"], endpoint.id.as_str());
    assert_eq!(event["deliveries"][0]["attempts"], 1);
    assert_eq!(event["data"]["order"], 42);

    // The attempt is in the endpoint's log.
    let (status, attempts) = api
        .get(
            &format!("/v1/endpoints/{}/attempts", endpoint.id),
            &tenant.key,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(attempts["data"][0]["status_code"], 200);
    assert_eq!(attempts["data"][0]["event_id"], id.as_str());
    assert_eq!(attempts["data"][0]["attempt"], 1);
    assert_eq!(attempts["data"][0]["response"], "scripted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_filter_by_event_type_and_skip_disabled_ones() {
    let redis = Redis::ephemeral();
    let gateway = Gateway::spawn(&redis);
    let api = gateway.api();
    let (orders, all, disabled) = (
        Receiver::start().await,
        Receiver::start().await,
        Receiver::start().await,
    );
    let tenant = api.create_tenant("acme").await;
    api.create_endpoint(
        &tenant,
        json!({"url": orders.url("/"), "event_types": ["order.created"]}),
    )
    .await;
    api.create_endpoint(&tenant, json!({"url": all.url("/")}))
        .await;
    api.create_endpoint(&tenant, json!({"url": disabled.url("/"), "disabled": true}))
        .await;

    let signup = api
        .post_event(&tenant, json!({"type": "user.signed_up", "data": {}}))
        .await;
    let order = api
        .post_event(&tenant, json!({"type": "order.created", "data": {}}))
        .await;

    all.wait_for(2, Duration::from_secs(10)).await;
    let got = orders.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(got[0].json()["type"], "order.created");
    // Fan-out decided who gets each event: the event status lists exactly those endpoints.
    let deliveries = |id: String| {
        let (api, key) = (api.clone(), tenant.key.clone());
        async move {
            let (_, event) = api.get(&format!("/v1/events/{id}"), &key).await;
            event["deliveries"].as_array().map(Vec::len).unwrap_or(0)
        }
    };
    assert_eq!(deliveries(signup).await, 1, "only the catch-all endpoint");
    assert_eq!(
        deliveries(order).await,
        2,
        "the catch-all and the order endpoint, not the disabled one"
    );
    assert_eq!(disabled.count(), 0);
}
