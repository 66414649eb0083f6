//! Delivery behaviour seen through the HTTP API: retries with their
//! attempts, dead letters and redelivery, `Retry-After`, `410 Gone`,
//! redirects, secret rotation, replay, and an endpoint's own retry
//! schedule.

use std::time::Duration;

use gateway_tests::{
    Api, Gateway, GatewayOptions, Receiver, Redis, Reply, Tenant, verify_signature, wait_until,
};
use reqwest::Method;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(15);

async fn setup(options: GatewayOptions) -> (Redis, Gateway, Api, Tenant, Receiver) {
    let redis = Redis::ephemeral();
    let gateway = Gateway::spawn_with(&redis, options);
    let api = gateway.api();
    let tenant = api.create_tenant("acme").await;
    let receiver = Receiver::start().await;
    (redis, gateway, api, tenant, receiver)
}

async fn event_status(api: &Api, tenant: &Tenant, id: &str) -> Value {
    let (status, event) = api.get(&format!("/v1/events/{id}"), &tenant.key).await;
    assert_eq!(status, 200, "{event}");
    event["deliveries"][0].clone()
}

async fn wait_status(api: &Api, tenant: &Tenant, id: &str, want: &str) -> Value {
    wait_until(&format!("event {id} to be {want}"), WAIT, || async {
        let d = event_status(api, tenant, id).await;
        (d["status"] == want).then_some(d)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_are_retried_until_success_and_every_attempt_is_visible() {
    let (_redis, _gw, api, tenant, receiver) = setup(GatewayOptions::default()).await;
    receiver.script([Reply::status(500), Reply::status(502), Reply::ok()]);
    let endpoint = api
        .create_endpoint(&tenant, json!({"url": receiver.url("/")}))
        .await;
    let id = api
        .post_event(&tenant, json!({"type": "a.b", "data": {"x": 1}}))
        .await;

    let got = receiver.wait_for(3, WAIT).await;
    let ids: Vec<_> = got
        .iter()
        .map(|r| r.header("webhook-id").unwrap().to_string())
        .collect();
    assert!(
        ids.iter().all(|i| *i == ids[0]),
        "webhook-id is stable across retries: {ids:?}"
    );
    for request in &got {
        verify_signature(&endpoint.secret, request).unwrap();
        request
            .header("webhook-timestamp")
            .unwrap()
            .parse::<u64>()
            .expect("integer seconds");
    }
    let delivered = wait_status(&api, &tenant, &id, "delivered").await;
    assert_eq!(delivered["attempts"], 3);

    let (_, attempts) = api
        .get(
            &format!("/v1/endpoints/{}/attempts?limit=2", endpoint.id),
            &tenant.key,
        )
        .await;
    let page: Vec<_> = attempts["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["attempt"].clone(), a["status_code"].clone()))
        .collect();
    assert_eq!(
        page,
        vec![(json!(3), json!(200)), (json!(2), json!(502))],
        "newest first"
    );
    let cursor = attempts["next_cursor"].as_str().expect("a second page");
    let (_, rest) = api
        .get(
            &format!(
                "/v1/endpoints/{}/attempts?limit=2&cursor={cursor}",
                endpoint.id
            ),
            &tenant.key,
        )
        .await;
    assert_eq!(rest["data"][0]["attempt"], 1);
    assert_eq!(rest["data"][0]["status_code"], 500);
    assert_eq!(rest["data"][0]["error"], "endpoint answered 500");
    assert!(rest["data"][0]["latency_ms"].is_u64());
    assert!(rest["next_cursor"].is_null());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_failure_dead_letters_and_redelivery_succeeds() {
    let (_redis, _gw, api, tenant, receiver) = setup(GatewayOptions::default()).await;
    receiver.set_default(Reply::status(503));
    let endpoint = api
        .create_endpoint(&tenant, json!({"url": receiver.url("/")}))
        .await;
    let id = api
        .post_event(&tenant, json!({"type": "a.b", "data": {}}))
        .await;

    let dead = wait_status(&api, &tenant, &id, "dead_lettered").await;
    assert_eq!(dead["attempts"], 4, "the whole schedule was tried");
    assert_eq!(receiver.count(), 4);
    let (_, letters) = api.get("/v1/dead-letters", &tenant.key).await;
    let letter = &letters["data"][0];
    assert_eq!(letter["event_id"], id.as_str());
    assert_eq!(letter["endpoint_id"], endpoint.id.as_str());
    assert_eq!(letter["last_status_code"], 503);
    assert!(
        letter["error"]
            .as_str()
            .unwrap()
            .contains("gave up after 4 attempts"),
        "{letter}"
    );

    receiver.set_default(Reply::ok());
    let path = format!(
        "/v1/dead-letters/{}/redeliver",
        letter["id"].as_str().unwrap()
    );
    let (status, body) = api.call(Method::POST, &path, &tenant.key, None).await;
    assert_eq!(status, 202, "{body}");
    receiver.wait_for(5, WAIT).await;
    wait_status(&api, &tenant, &id, "delivered").await;
    let (_, letters) = api.get("/v1/dead-letters", &tenant.key).await;
    assert_eq!(letters["data"].as_array().unwrap().len(), 0);
    let (status, _) = api.call(Method::POST, &path, &tenant.key, None).await;
    assert_eq!(status, 404, "a dead letter is redelivered once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_is_honoured_to_the_second() {
    let (_redis, _gw, api, tenant, receiver) = setup(GatewayOptions::default()).await;
    receiver.script([
        Reply::status(429).retry_after("2"),
        Reply::status(503).retry_after("1"),
        Reply::ok(),
    ]);
    api.create_endpoint(&tenant, json!({"url": receiver.url("/")}))
        .await;
    api.post_event(&tenant, json!({"type": "a.b", "data": {}}))
        .await;

    let got = receiver.wait_for(3, WAIT).await;
    let first_gap = got[1].at - got[0].at;
    let second_gap = got[2].at - got[1].at;
    assert!(
        first_gap >= Duration::from_secs(2),
        "retried after {first_gap:?}, before Retry-After: 2"
    );
    assert!(
        first_gap < Duration::from_secs(4),
        "retried long after it was allowed: {first_gap:?}"
    );
    assert!(
        second_gap >= Duration::from_secs(1),
        "retried after {second_gap:?}, before Retry-After: 1"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoints_own_retry_schedule_is_followed_to_the_second() {
    let (_redis, _gw, api, tenant, receiver) = setup(GatewayOptions::default()).await;
    receiver.set_default(Reply::status(500));
    let spec = json!({"url": receiver.url("/"), "retry_schedule": ["0s", "1s", "3s"]});
    let ep = api.create_endpoint(&tenant, spec).await;
    let (_, shown) = api
        .get(&format!("/v1/endpoints/{}", ep.id), &tenant.key)
        .await;
    assert_eq!(shown["retry_schedule"], json!(["0s", "1s", "3s"]));
    let id = api
        .post_event(&tenant, json!({"type": "a.b", "data": {}}))
        .await;

    let dead = wait_status(&api, &tenant, &id, "dead_lettered").await;
    assert_eq!(
        dead["attempts"], 3,
        "its own 3 attempts, not the gateway's 4: {dead}"
    );
    let got = receiver.requests();
    assert_eq!(got.len(), 3);
    let gaps = [got[1].at - got[0].at, got[2].at - got[1].at];
    // The gateway's jitter (0.2) moves each delay by up to a fifth.
    let within = |gap: Duration, secs: f64| {
        (secs * 0.8 - 0.05..=secs * 1.2 + 0.5).contains(&gap.as_secs_f64())
    };
    assert!(
        within(gaps[0], 1.0) && within(gaps[1], 3.0),
        "gaps {gaps:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenants_default_retry_schedule_serves_endpoints_without_their_own() {
    let (_redis, _gw, api, tenant, receiver) = setup(GatewayOptions::default()).await;
    let bad = json!({"retry_schedule": ["0s", "nope"]});
    let (status, body) = api
        .call(Method::PUT, "/v1/settings", &tenant.key, Some(bad))
        .await;
    assert_eq!(
        (status, &body["errors"][0]["pointer"]),
        (422, &json!("/retry_schedule/1")),
        "{body}"
    );
    let (_, settings) = api.get("/v1/settings", &tenant.key).await;
    assert!(settings.get("retry_schedule").is_none(), "{settings}");
    let default = json!({"unregistered_types": "accept", "retry_schedule": ["0s", "300ms"]});
    let (status, body) = api
        .call(Method::PUT, "/v1/settings", &tenant.key, Some(default))
        .await;
    assert_eq!(status, 200, "{body}");

    receiver.set_default(Reply::status(500));
    api.create_endpoint(&tenant, json!({"url": receiver.url("/")}))
        .await;
    let own = json!({"url": receiver.url("/own"), "retry_schedule": ["0s", "300ms", "300ms"]});
    api.create_endpoint(&tenant, own).await;
    let id = api
        .post_event(&tenant, json!({"type": "a.b", "data": {}}))
        .await;
    let dead = wait_until("dead-lettered at both endpoints", WAIT, || async {
        let (_, event) = api.get(&format!("/v1/events/{id}"), &tenant.key).await;
        let deliveries = event["deliveries"].as_array().cloned().unwrap_or_default();
        let done =
            deliveries.len() == 2 && deliveries.iter().all(|d| d["status"] == "dead_lettered");
        done.then_some(deliveries)
    })
    .await;
    let mut attempts: Vec<u64> = dead
        .iter()
        .map(|d| d["attempts"].as_u64().unwrap())
        .collect();
    attempts.sort();
    assert_eq!(
        attempts,
        [2, 3],
        "the tenant's 2 attempts, and the endpoint's own 3"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_schedule_out_of_bounds_is_refused_and_changes_nothing() {
    let (_redis, _gw, api, tenant, receiver) = setup(GatewayOptions::default()).await;
    let too_many: Vec<&str> = vec!["1s"; 21];
    let cases = [
        (json!(["0s", "5x"]), "/retry_schedule/1"),
        (json!([]), "/retry_schedule"),
        (json!(too_many), "/retry_schedule"),
        (json!(["0s", "2d", "2d"]), "/retry_schedule"),
    ];
    for (schedule, pointer) in cases {
        let spec = json!({"url": receiver.url("/"), "retry_schedule": schedule});
        let (status, body) = api
            .call(Method::POST, "/v1/endpoints", &tenant.key, Some(spec))
            .await;
        assert_eq!(status, 422, "{body}");
        assert_eq!(body["errors"][0]["pointer"], pointer, "{body}");
    }
    let (_, list) = api.get("/v1/endpoints", &tenant.key).await;
    assert_eq!(list["data"], json!([]), "nothing was created");

    let ep = api
        .create_endpoint(&tenant, json!({"url": receiver.url("/")}))
        .await;
    let path = format!("/v1/endpoints/{}", ep.id);
    let patch = json!({"retry_schedule": ["0s", "4d"]});
    let (status, body) = api
        .call(Method::PATCH, &path, &tenant.key, Some(patch))
        .await;
    assert_eq!(status, 422, "{body}");
    let (_, shown) = api.get(&path, &tenant.key).await;
    assert!(shown.get("retry_schedule").is_none(), "{shown}");
    let back = json!({"retry_schedule": ["0s", "1m"]});
    let (status, body) = api
        .call(Method::PATCH, &path, &tenant.key, Some(back))
        .await;
    assert_eq!(
        (status, &body["retry_schedule"]),
        (200, &json!(["0s", "1m"]))
    );
    let reset = json!({"retry_schedule": null});
    let (_, body) = api
        .call(Method::PATCH, &path, &tenant.key, Some(reset))
        .await;
    assert!(body.get("retry_schedule").is_none(), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gone_disables_the_endpoint() {
    let (_redis, _gw, api, tenant, receiver) = setup(GatewayOptions::default()).await;
    receiver.script([Reply::status(410)]);
    let endpoint = api
        .create_endpoint(&tenant, json!({"url": receiver.url("/")}))
        .await;
    let id = api
        .post_event(&tenant, json!({"type": "a.b", "data": {}}))
        .await;

    let dead = wait_status(&api, &tenant, &id, "dead_lettered").await;
    assert_eq!(dead["attempts"], 1, "410 is not retried");
    let (_, ep) = api
        .get(&format!("/v1/endpoints/{}", endpoint.id), &tenant.key)
        .await;
    assert_eq!(ep["disabled"], true);
    assert!(ep["disabled_reason"].as_str().unwrap().contains("410"));

    // A second, enabled endpoint shows when the next event has been fanned
    // out: only then can the disabled one be seen to get nothing.
    let witness = Receiver::start().await;
    let other = api
        .create_endpoint(&tenant, json!({"url": witness.url("/")}))
        .await;
    let later = api
        .post_event(&tenant, json!({"type": "a.b", "data": {}}))
        .await;
    let event = wait_until("the next event delivered to the witness", WAIT, || async {
        let (_, event) = api.get(&format!("/v1/events/{later}"), &tenant.key).await;
        let delivered = event["deliveries"]
            .as_array()?
            .iter()
            .any(|d| d["endpoint_id"] == other.id.as_str() && d["status"] == "delivered");
        delivered.then_some(event)
    })
    .await;
    let deliveries = event["deliveries"].as_array().unwrap();
    assert_eq!(
        deliveries.len(),
        1,
        "a disabled endpoint gets nothing new: {event}"
    );
    assert_eq!(deliveries[0]["endpoint_id"], other.id.as_str());
    assert_eq!(receiver.count(), 1);
    assert_eq!(witness.count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_are_failures_not_followed() {
    let (_redis, _gw, api, tenant, receiver) = setup(GatewayOptions::default()).await;
    receiver.script([Reply::status(307), Reply::ok()]);
    let endpoint = api
        .create_endpoint(&tenant, json!({"url": receiver.url("/")}))
        .await;
    let id = api
        .post_event(&tenant, json!({"type": "a.b", "data": {}}))
        .await;
    wait_status(&api, &tenant, &id, "delivered").await;
    let (_, attempts) = api
        .get(
            &format!("/v1/endpoints/{}/attempts", endpoint.id),
            &tenant.key,
        )
        .await;
    assert_eq!(attempts["data"][1]["status_code"], 307);
    assert_eq!(attempts["data"][0]["status_code"], 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_is_a_failed_attempt() {
    let options = GatewayOptions {
        default_timeout_ms: 300,
        ..GatewayOptions::default()
    };
    let (_redis, _gw, api, tenant, receiver) = setup(options).await;
    receiver.script([Reply::ok().delay(Duration::from_secs(2)), Reply::ok()]);
    let endpoint = api
        .create_endpoint(&tenant, json!({"url": receiver.url("/")}))
        .await;
    let id = api
        .post_event(&tenant, json!({"type": "a.b", "data": {}}))
        .await;
    wait_status(&api, &tenant, &id, "delivered").await;
    let (_, attempts) = api
        .get(
            &format!("/v1/endpoints/{}/attempts", endpoint.id),
            &tenant.key,
        )
        .await;
    assert_eq!(attempts["data"][1]["error"], "timed out after 300 ms");
    assert!(attempts["data"][1]["status_code"].is_null());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_secret_signs_beside_the_old_one() {
    let (_redis, _gw, api, tenant, receiver) = setup(GatewayOptions::default()).await;
    let endpoint = api
        .create_endpoint(&tenant, json!({"url": receiver.url("/")}))
        .await;
    let (_, current) = api
        .get(
            &format!("/v1/endpoints/{}/secret", endpoint.id),
            &tenant.key,
        )
        .await;
    assert_eq!(current["secret"], endpoint.secret.as_str());

    let path = format!("/v1/endpoints/{}/secret/rotate", endpoint.id);
    let (status, rotated) = api.call(Method::POST, &path, &tenant.key, None).await;
    assert_eq!(status, 200, "{rotated}");
    let new_secret = rotated["secret"].as_str().unwrap().to_string();
    assert_ne!(new_secret, endpoint.secret);
    assert_eq!(rotated["previous"].as_array().unwrap().len(), 1);

    api.post_event(&tenant, json!({"type": "a.b", "data": {}}))
        .await;
    let got = receiver.wait_for(1, WAIT).await;
    assert_eq!(
        got[0]
            .header("webhook-signature")
            .unwrap()
            .split(' ')
            .count(),
        2
    );
    verify_signature(&new_secret, &got[0]).expect("the new secret signs");
    verify_signature(&endpoint.secret, &got[0])
        .expect("the old secret still signs during the overlap");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_sends_again_what_was_accepted_since_a_time() {
    let (_redis, _gw, api, tenant, receiver) = setup(GatewayOptions::default()).await;
    let endpoint = api
        .create_endpoint(
            &tenant,
            json!({"url": receiver.url("/"), "event_types": ["a.b"]}),
        )
        .await;
    let before = gateway::model::clock::now_rfc3339();
    for n in 0..3 {
        api.post_event(&tenant, json!({"type": "a.b", "data": {"n": n}}))
            .await;
    }
    api.post_event(&tenant, json!({"type": "other", "data": {}}))
        .await;
    receiver.wait_for(3, WAIT).await;

    let path = format!("/v1/endpoints/{}/replay", endpoint.id);
    let (status, body) = api
        .call(
            Method::POST,
            &path,
            &tenant.key,
            Some(json!({"since": before})),
        )
        .await;
    // The replay is a background job: the answer is the job, followed at
    // its own URL until it is done.
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["state"], "running", "{body}");
    let job = format!("/v1/replays/{}", body["id"].as_str().expect("a job id"));
    let done = wait_until("the replay job to finish", WAIT, || async {
        let (status, job) = api.get(&job, &tenant.key).await;
        assert_eq!(status, 200, "{job}");
        (job["state"] != "running").then_some(job)
    })
    .await;
    assert_eq!(done["state"], "done", "{done}");
    assert_eq!(done["replayed"], 3);
    assert_eq!(done["truncated"], false);
    assert_eq!(done["endpoint_id"], endpoint.id.as_str());
    let got = receiver.wait_for(6, WAIT).await;
    let mut first: Vec<_> = got[..3]
        .iter()
        .map(|r| r.header("webhook-id").unwrap().to_string())
        .collect();
    let mut again: Vec<_> = got[3..]
        .iter()
        .map(|r| r.header("webhook-id").unwrap().to_string())
        .collect();
    first.sort();
    again.sort();
    assert_eq!(first, again, "a replay keeps each event's webhook-id");

    let (status, body) = api
        .call(
            Method::POST,
            &path,
            &tenant.key,
            Some(json!({"since": "yesterday"})),
        )
        .await;
    assert_eq!(status, 422);
    assert_eq!(body["errors"][0]["pointer"], "/since");
}
