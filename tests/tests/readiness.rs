//! Consumer readiness through the HTTP API, against a real redis-server and
//! real receivers: the ownership handshake (echoed challenge, HMAC answer,
//! wrong answers), events parked while an endpoint is pending and released
//! once it passes, re-verification after a secret rotation, the operator's
//! exemption, declared capabilities kept to, and quarantine (for failing,
//! with probes and recovery, or by hand) with the endpoint's health.

use std::time::Duration;

use gateway_tests::{
    Api, Gateway, GatewayOptions, Handshake, OPERATOR_TOKEN, Receiver, Redis, Reply, Tenant,
    free_port, verify_signature, wait_until,
};
use reqwest::Method;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(20);

fn verifying() -> GatewayOptions {
    GatewayOptions {
        verification_required: true,
        // Bare keys in `extra` go on the `[verification]` table.
        extra: "retry_first = \"200ms\"\nretry_max = \"1s\"\n".into(),
        ..GatewayOptions::default()
    }
}

async fn start() -> (Redis, Gateway, Api, Tenant, Receiver) {
    let redis = Redis::ephemeral();
    let gateway = Gateway::spawn_with(&redis, verifying());
    let api = gateway.api();
    let tenant = api.create_tenant("acme").await;
    (redis, gateway, api, tenant, Receiver::start().await)
}

async fn endpoint(api: &Api, tenant: &Tenant, id: &str) -> Value {
    let (status, body) = api.get(&format!("/v1/endpoints/{id}"), &tenant.key).await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn wait_state(api: &Api, tenant: &Tenant, id: &str, state: &str) -> Value {
    wait_until(&format!("endpoint {id} to be {state}"), WAIT, || async {
        let ep = endpoint(api, tenant, id).await;
        (ep["state"] == state).then_some(ep)
    })
    .await
}

async fn verify(api: &Api, tenant: &Tenant, id: &str) -> Value {
    let path = format!("/v1/endpoints/{id}/verify");
    let (status, body) = api.call(Method::POST, &path, &tenant.key, None).await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn delivery(api: &Api, tenant: &Tenant, event: &str) -> Value {
    let (status, body) = api.get(&format!("/v1/events/{event}"), &tenant.key).await;
    assert_eq!(status, 200, "{body}");
    body["deliveries"][0].clone()
}

async fn post_events(api: &Api, tenant: &Tenant, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..n {
        let event = json!({"type": "order.created", "data": {"n": i}});
        ids.push(api.post_event(tenant, event).await);
    }
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_that_echoes_the_challenge_becomes_active_and_gets_events() {
    let (_redis, _gw, api, tenant, receiver) = start().await;
    receiver.answer_handshakes(Handshake::Echo(json!({})));
    let (status, created) = api
        .call(
            Method::POST,
            "/v1/endpoints",
            &tenant.key,
            Some(json!({"url": receiver.url("/hook")})),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["state"], "pending", "{created}");
    assert_eq!(created["verification"]["state"], "pending");
    let id = created["id"].as_str().unwrap();
    let secret = created["secret"].as_str().unwrap();

    let ep = wait_state(&api, &tenant, id, "active").await;
    assert_eq!(ep["verification"]["state"], "verified", "{ep}");
    assert!(ep["verification"]["verified_at"].is_string(), "{ep}");
    assert!(ep["next_verification_at"].is_string(), "{ep}");
    let handshake = &receiver.handshakes()[0];
    verify_signature(secret, handshake).expect("the handshake is signed like a delivery");
    assert_eq!(handshake.json()["type"], "webhook.verification");
    assert_eq!(receiver.count(), 0, "a handshake is not a delivery");

    post_events(&api, &tenant, 1).await;
    let got = receiver.wait_for(1, WAIT).await;
    verify_signature(secret, &got[0]).expect("a signed delivery");
    assert_eq!(api.metric("gateway_verifications_passed_total").await, 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_for_a_pending_endpoint_wait_and_all_arrive_once_it_verifies() {
    let (_redis, _gw, api, tenant, receiver) = start().await;
    receiver.answer_handshakes(Handshake::NoChallenge);
    let ep = api
        .create_endpoint(&tenant, json!({"url": receiver.url("/hook")}))
        .await;
    let ids = post_events(&api, &tenant, 5).await;

    let parked = wait_until(
        "the five events parked, the handshake failed",
        WAIT,
        || async {
            let shown = endpoint(&api, &tenant, &ep.id).await;
            let failed = shown["verification"]["reason"].is_string();
            (shown["parked"] == 5 && failed).then_some(shown)
        },
    )
    .await;
    assert_eq!(parked["state"], "pending");
    let reason = parked["state_reason"].as_str().unwrap();
    assert!(reason.contains("no `challenge`"), "{reason}");
    let status = delivery(&api, &tenant, &ids[0]).await;
    assert_eq!(status["status"], "pending", "{status}");
    assert_eq!(status["attempts"], 0, "parking is not an attempt: {status}");
    assert!(
        status["last_error"]
            .as_str()
            .unwrap()
            .starts_with("parked: "),
        "{status}"
    );
    // The handshake is tried again (backing off), the events keep waiting.
    wait_until("a second handshake", WAIT, || async {
        (receiver.handshakes().len() >= 2).then_some(())
    })
    .await;
    assert_eq!(receiver.count(), 0, "nothing is sent to a pending endpoint");

    receiver.answer_handshakes(Handshake::Wrong);
    let wrong = verify(&api, &tenant, &ep.id).await;
    assert_eq!(wrong["state"], "pending", "{wrong}");
    let reason = wrong["verification"]["reason"].as_str().unwrap();
    assert!(reason.contains("neither the challenge sent"), "{reason}");
    assert_eq!(receiver.count(), 0);

    receiver.answer_handshakes(Handshake::Echo(json!({})));
    let right = verify(&api, &tenant, &ep.id).await;
    assert_eq!(right["state"], "active", "{right}");
    let got = receiver.wait_for(5, WAIT).await;
    let mut seen: Vec<u64> = got
        .iter()
        .map(|r| r.json()["data"]["n"].as_u64().unwrap())
        .collect();
    seen.sort();
    assert_eq!(seen, [0, 1, 2, 3, 4]);
    for id in &ids {
        let status = wait_until("delivered", WAIT, || async {
            let s = delivery(&api, &tenant, id).await;
            (s["status"] == "delivered").then_some(s)
        })
        .await;
        assert_eq!(status["attempts"], 1, "{status}");
    }
    assert_eq!(endpoint(&api, &tenant, &ep.id).await["parked"], 0);
    assert!(api.metric("gateway_deliveries_released_total").await >= 5.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hmac_answer_passes_and_a_rotation_that_fails_its_handshake_parks_again() {
    let (_redis, _gw, api, tenant, receiver) = start().await;
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    receiver.answer_handshakes(Handshake::Hmac(secret.into()));
    let ep = api
        .create_endpoint(
            &tenant,
            json!({"url": receiver.url("/hook"), "secret": secret}),
        )
        .await;
    wait_state(&api, &tenant, &ep.id, "active").await;

    receiver.answer_handshakes(Handshake::Status(500));
    let rotate = format!("/v1/endpoints/{}/secret/rotate", ep.id);
    let (status, rotated) = api.call(Method::POST, &rotate, &tenant.key, None).await;
    assert_eq!(status, 200, "{rotated}");
    let failed = wait_state(&api, &tenant, &ep.id, "pending").await;
    assert_eq!(failed["verification"]["state"], "failed", "{failed}");
    let reason = failed["state_reason"].as_str().unwrap();
    assert!(reason.contains("answered 500"), "{reason}");

    post_events(&api, &tenant, 2).await;
    wait_until("the events parked", WAIT, || async {
        (endpoint(&api, &tenant, &ep.id).await["parked"] == 2).then_some(())
    })
    .await;
    assert_eq!(receiver.count(), 0);

    let new_secret = rotated["secret"].as_str().unwrap().to_string();
    receiver.answer_handshakes(Handshake::Hmac(new_secret.clone()));
    assert_eq!(verify(&api, &tenant, &ep.id).await["state"], "active");
    let got = receiver.wait_for(2, WAIT).await;
    verify_signature(&new_secret, &got[0]).expect("signed with the new secret");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parked_events_survive_a_gateway_sigkill() {
    let redis = Redis::ephemeral();
    let mut gateway = Gateway::spawn_with(&redis, verifying());
    let api = gateway.api();
    let tenant = api.create_tenant("acme").await;
    let receiver = Receiver::start().await;
    receiver.answer_handshakes(Handshake::Status(503));
    let ep = api
        .create_endpoint(&tenant, json!({"url": receiver.url("/hook")}))
        .await;
    post_events(&api, &tenant, 20).await;
    wait_until("twenty events parked", WAIT, || async {
        (endpoint(&api, &tenant, &ep.id).await["parked"] == 20).then_some(())
    })
    .await;

    gateway.restart();
    let api = gateway.api();
    receiver.answer_handshakes(Handshake::Echo(json!({})));
    assert_eq!(verify(&api, &tenant, &ep.id).await["state"], "active");
    let got = receiver.wait_for(20, WAIT).await;
    let mut seen: Vec<u64> = got
        .iter()
        .map(|r| r.json()["data"]["n"].as_u64().unwrap())
        .collect();
    seen.sort();
    seen.dedup();
    assert_eq!(
        seen.len(),
        20,
        "every parked event arrives after the SIGKILL"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_exempts_an_endpoint_that_cannot_answer() {
    let (_redis, _gw, api, tenant, receiver) = start().await;
    receiver.answer_handshakes(Handshake::Status(404));
    let ep = api
        .create_endpoint(&tenant, json!({"url": receiver.url("/hook")}))
        .await;
    post_events(&api, &tenant, 3).await;
    wait_until("three events parked", WAIT, || async {
        (endpoint(&api, &tenant, &ep.id).await["parked"] == 3).then_some(())
    })
    .await;
    let path = format!(
        "/v1/admin/tenants/{}/endpoints/{}/verification",
        tenant.id, ep.id
    );

    let (status, refused) = api
        .call(
            Method::PUT,
            &path,
            OPERATOR_TOKEN,
            Some(json!({"required": "no"})),
        )
        .await;
    assert_eq!(status, 422, "{refused}");
    assert_eq!(endpoint(&api, &tenant, &ep.id).await["state"], "pending");
    let (status, _) = api
        .call(
            Method::PUT,
            &path,
            &tenant.key,
            Some(json!({"required": false})),
        )
        .await;
    assert_eq!(status, 401, "a tenant cannot exempt its own endpoint");

    let (status, exempt) = api
        .call(
            Method::PUT,
            &path,
            OPERATOR_TOKEN,
            Some(json!({"required": false})),
        )
        .await;
    assert_eq!(status, 200, "{exempt}");
    assert_eq!(exempt["state"], "active", "{exempt}");
    assert_eq!(exempt["verification"]["exempt"], true);
    receiver.wait_for(3, WAIT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declared_rate_is_kept_though_the_tenant_allows_more() {
    let (_redis, _gw, api, tenant, receiver) = start().await;
    let limits = format!("/v1/admin/tenants/{}/limits", tenant.id);
    let (status, body) = api
        .call(
            Method::PUT,
            &limits,
            OPERATOR_TOKEN,
            Some(json!({"endpoint_per_second": 100})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    receiver.answer_handshakes(Handshake::Echo(
        json!({"max_rate_per_second": 10, "max_in_flight": 4, "versions": [1]}),
    ));
    let ep = api
        .create_endpoint(&tenant, json!({"url": receiver.url("/hook")}))
        .await;
    let shown = wait_state(&api, &tenant, &ep.id, "active").await;
    let declared = &shown["verification"]["capabilities"];
    assert_eq!(
        *declared,
        json!({"max_rate_per_second": 10, "max_in_flight": 4, "versions": [1]})
    );

    let events: Vec<Value> = (0..150)
        .map(|n| json!({"type": "order.created", "data": {"n": n}}))
        .collect();
    for chunk in events.chunks(50) {
        let (status, body) = api
            .call(
                Method::POST,
                "/v1/events/batch",
                &tenant.key,
                Some(json!({"events": chunk})),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }
    let got = receiver.wait_for(115, Duration::from_secs(30)).await;
    let first = got[0].at;
    let window = Duration::from_secs(10);
    let within = got.iter().filter(|r| r.at - first < window).count();
    println!("arrivals in the first 10 s: {within}");
    assert!(
        (90..=111).contains(&within),
        "{within} deliveries in 10 s: the consumer declared 10/s"
    );
}

fn quarantining() -> GatewayOptions {
    GatewayOptions {
        extra: "[quarantine]\nfailures = 3\nprobe_every = \"300ms\"\nprobe_max = \"1s\"\n".into(),
        ..GatewayOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_endpoint_is_quarantined_and_recovers_on_its_own_with_nothing_lost() {
    let redis = Redis::ephemeral();
    let _gateway = Gateway::spawn_with(&redis, quarantining());
    let api = _gateway.api();
    let tenant = api.create_tenant("acme").await;
    let receiver = Receiver::start().await;
    receiver.set_default(Reply::status(500));
    receiver.answer_handshakes(Handshake::Status(503));
    let ep = api
        .create_endpoint(&tenant, json!({"url": receiver.url("/hook")}))
        .await;
    let ids = post_events(&api, &tenant, 5).await;

    let quarantined = wait_until("the endpoint quarantined, probed", WAIT, || async {
        let shown = endpoint(&api, &tenant, &ep.id).await;
        let probed = shown["quarantine"]["probes"].as_u64().unwrap_or(0) >= 1;
        (shown["state"] == "quarantined" && probed).then_some(shown)
    })
    .await;
    let reason = quarantined["state_reason"].as_str().unwrap();
    assert!(reason.contains("failed attempts in a row"), "{reason}");
    assert_eq!(
        quarantined["quarantine"]["last_probe_error"],
        "answered 503, not 200"
    );
    let health = &quarantined["health"];
    assert!(
        health["last_5m"]["attempts"].as_u64().unwrap() >= 3,
        "{health}"
    );
    assert_eq!(health["last_5m"]["succeeded"], 0, "{health}");
    assert_eq!(health["last_5m"]["success_rate"], 0.0, "{health}");
    assert_eq!(health["last_error"]["status_code"], 500, "{health}");
    assert!(
        health["consecutive_failures"].as_u64().unwrap() >= 3,
        "{health}"
    );
    let sent_while_failing = receiver.count();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        receiver.count(),
        sent_while_failing,
        "no delivery goes while quarantined"
    );
    assert_eq!(api.metric("gateway_endpoints_quarantined_total").await, 1.0);

    receiver.set_default(Reply::ok());
    receiver.answer_handshakes(Handshake::Status(204));
    wait_state(&api, &tenant, &ep.id, "active").await;
    let mut attempts_made = 0;
    for id in &ids {
        let status = wait_until("delivered after the recovery", WAIT, || async {
            let s = delivery(&api, &tenant, id).await;
            (s["status"] == "delivered").then_some(s)
        })
        .await;
        attempts_made += status["attempts"].as_u64().unwrap();
    }
    assert_eq!(
        attempts_made as usize,
        receiver.count(),
        "every attempt counted went to the receiver: parking counted none"
    );
    let (_, letters) = api.get("/v1/dead-letters", &tenant.key).await;
    assert_eq!(letters["data"], json!([]), "nothing dead-lettered");
    let shown = endpoint(&api, &tenant, &ep.id).await;
    assert_eq!(
        (
            shown["parked"].as_u64(),
            shown["circuit"]["failures"].as_u64()
        ),
        (Some(0), Some(0))
    );
    assert!(shown["health"]["last_5m"]["succeeded"].as_u64().unwrap() >= 5);
    assert_eq!(api.metric("gateway_endpoints_recovered_total").await, 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_quarantines_and_releases_by_hand_and_no_probe_goes_meanwhile() {
    let redis = Redis::ephemeral();
    let _gateway = Gateway::spawn_with(&redis, quarantining());
    let api = _gateway.api();
    let tenant = api.create_tenant("acme").await;
    let receiver = Receiver::start().await;
    receiver.answer_handshakes(Handshake::Status(200));
    let ep = api
        .create_endpoint(&tenant, json!({"url": receiver.url("/hook")}))
        .await;
    let path = format!("/v1/endpoints/{}/quarantine", ep.id);

    let long = json!({"reason": "x".repeat(300)});
    let (status, refused) = api.call(Method::POST, &path, &tenant.key, Some(long)).await;
    assert_eq!(status, 422, "{refused}");
    assert_eq!(refused["errors"][0]["pointer"], "/reason");
    assert_eq!(endpoint(&api, &tenant, &ep.id).await["state"], "active");

    let why = json!({"reason": "maintenance window"});
    let (status, held) = api.call(Method::POST, &path, &tenant.key, Some(why)).await;
    assert_eq!(status, 200, "{held}");
    assert_eq!(held["state"], "quarantined");
    assert_eq!(held["state_reason"], "quarantined: maintenance window");
    post_events(&api, &tenant, 3).await;
    wait_until("three events parked", WAIT, || async {
        (endpoint(&api, &tenant, &ep.id).await["parked"] == 3).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(receiver.count(), 0);
    assert_eq!(
        receiver.handshakes().len(),
        0,
        "no probe for a quarantine by hand"
    );

    let release = format!("/v1/endpoints/{}/release", ep.id);
    let (status, released) = api.call(Method::POST, &release, &tenant.key, None).await;
    assert_eq!(status, 200, "{released}");
    assert_eq!(released["state"], "active");
    receiver.wait_for(3, WAIT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_fail_over_while_the_primary_is_down_and_come_back_to_it() {
    let redis = Redis::ephemeral();
    let options = GatewayOptions {
        extra: "[circuit]\nfailures = 2\nopen_for = \"1s\"\n".into(),
        ..GatewayOptions::default()
    };
    let _gateway = Gateway::spawn_with(&redis, options);
    let api = _gateway.api();
    let tenant = api.create_tenant("acme").await;
    let port = free_port();
    let primary_url = format!("http://127.0.0.1:{port}/hook");
    let backup = Receiver::start().await;
    let spec = json!({"url": primary_url, "failover_urls": [backup.url("/backup")]});
    let ep = api.create_endpoint(&tenant, spec).await;
    let ids = post_events(&api, &tenant, 3).await;

    let got = backup.wait_for(3, WAIT).await;
    verify_signature(&ep.secret, &got[0]).expect("a failover delivery is signed");
    for id in &ids {
        wait_until("delivered at the failover", WAIT, || async {
            let s = delivery(&api, &tenant, id).await;
            (s["status"] == "delivered").then_some(s)
        })
        .await;
    }
    let (_, log) = api
        .get(&format!("/v1/endpoints/{}/attempts", ep.id), &tenant.key)
        .await;
    let urls: Vec<(&str, Option<u64>)> = log["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["url"].as_str().unwrap(), a["status_code"].as_u64()))
        .collect();
    let backup_url = backup.url("/backup");
    assert!(urls.contains(&(primary_url.as_str(), None)), "{urls:?}");
    assert!(urls.contains(&(backup_url.as_str(), Some(200))), "{urls:?}");
    assert!(api.metric("gateway_deliveries_failed_over_total").await >= 3.0);

    let primary = Receiver::start_on(port).await;
    wait_until("traffic back at the primary", WAIT, || async {
        post_events(&api, &tenant, 1).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        (primary.count() > 0).then_some(())
    })
    .await;
    let at_backup = backup.count();
    post_events(&api, &tenant, 3).await;
    wait_until("the next events at the primary", WAIT, || async {
        let n = primary.count();
        (n >= 4).then_some(())
    })
    .await;
    assert_eq!(
        backup.count(),
        at_backup,
        "nothing more goes to the failover"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_failover_urls_are_refused_and_change_nothing() {
    let (_redis, _gw, api, tenant, receiver) = start().await;
    let url = receiver.url("/");
    let cases = [
        (json!(["ftp://example.com/x"]), "/failover_urls/0"),
        (json!([url, "not a url"]), "/failover_urls/1"),
        (json!([url, url, url, url]), "/failover_urls"),
    ];
    for (urls, pointer) in cases {
        let spec = json!({"url": url, "failover_urls": urls});
        let (status, body) = api
            .call(Method::POST, "/v1/endpoints", &tenant.key, Some(spec))
            .await;
        assert_eq!(status, 422, "{body}");
        assert_eq!(body["errors"][0]["pointer"], pointer, "{body}");
    }
    let (_, list) = api.get("/v1/endpoints", &tenant.key).await;
    assert_eq!(list["data"], json!([]), "nothing was created");
}

/// The bodies an operational receiver got, each checked against its
/// endpoint's secret, as `(type, data)`.
fn operational(receiver: &Receiver, secret: &str) -> Vec<(String, Value)> {
    receiver
        .requests()
        .iter()
        .map(|r| {
            verify_signature(secret, r).expect("an operational event is signed");
            let body = r.json();
            (
                body["type"].as_str().unwrap().to_string(),
                body["data"].clone(),
            )
        })
        .collect()
}

async fn wait_operational(receiver: &Receiver, secret: &str, kind: &str) -> Value {
    wait_until(&format!("a {kind} event"), WAIT, || async {
        operational(receiver, secret)
            .into_iter()
            .find(|(t, _)| t == kind)
            .map(|(_, data)| data)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operational_endpoints_hear_of_failing_exhausted_and_disabled_deliveries() {
    let redis = Redis::ephemeral();
    let options = GatewayOptions {
        extra: "[operational]\nfailing_after = 2\n".into(),
        ..GatewayOptions::default()
    };
    let _gateway = Gateway::spawn_with(&redis, options);
    let api = _gateway.api();
    let tenant = api.create_tenant("acme").await;
    let ops = Receiver::start().await;
    let spec = json!({"url": ops.url("/ops"), "operational": true, "event_types": ["none.such"]});
    let ops_ep = api.create_endpoint(&tenant, spec).await;
    let failing = Receiver::start().await;
    failing.set_default(Reply::status(500));
    let ep = api
        .create_endpoint(&tenant, json!({"url": failing.url("/hook")}))
        .await;
    let ids = post_events(&api, &tenant, 1).await;

    let data = wait_operational(&ops, &ops_ep.secret, "message.attempt.failing").await;
    assert_eq!(data["endpoint_id"], ep.id.as_str());
    assert_eq!(data["event_id"], ids[0].as_str());
    assert_eq!(
        (data["attempts"].as_u64(), data["last_status_code"].as_u64()),
        (Some(2), Some(500))
    );
    let data = wait_operational(&ops, &ops_ep.secret, "message.attempt.exhausted").await;
    assert_eq!(data["attempts"], 4, "{data}");
    assert!(
        data["last_error"].as_str().unwrap().contains("gave up"),
        "{data}"
    );

    failing.set_default(Reply::status(410));
    post_events(&api, &tenant, 1).await;
    let data = wait_operational(&ops, &ops_ep.secret, "endpoint.disabled").await;
    assert_eq!(data["endpoint_id"], ep.id.as_str());
    assert_eq!(data["reason"], "the endpoint answered 410 Gone");
    let kinds: Vec<String> = operational(&ops, &ops_ep.secret)
        .into_iter()
        .map(|(t, _)| t)
        .collect();
    let failing_events = kinds
        .iter()
        .filter(|t| *t == "message.attempt.failing")
        .count();
    assert_eq!(failing_events, 1, "one failing event per event: {kinds:?}");
    assert!(
        kinds
            .iter()
            .all(|t| t.starts_with("message.") || t.starts_with("endpoint.")),
        "only operational events: {kinds:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operational_endpoints_hear_of_verification_quarantine_and_recovery_but_never_of_themselves()
 {
    let redis = Redis::ephemeral();
    let options = GatewayOptions {
        extra: "retry_first = \"200ms\"\nretry_max = \"1s\"\n[quarantine]\nfailures = 3\n\
                probe_every = \"300ms\"\nprobe_max = \"1s\"\n"
            .into(),
        ..verifying()
    };
    let _gateway = Gateway::spawn_with(&redis, options);
    let api = _gateway.api();
    let tenant = api.create_tenant("acme").await;
    let ops = Receiver::start().await;
    ops.answer_handshakes(Handshake::Echo(json!({})));
    let spec = json!({"url": ops.url("/ops"), "operational": true, "event_types": ["none.such"]});
    let ops_ep = api.create_endpoint(&tenant, spec).await;
    wait_state(&api, &tenant, &ops_ep.id, "active").await;
    let consumer = Receiver::start().await;
    consumer.answer_handshakes(Handshake::Echo(json!({})));
    let ep = api
        .create_endpoint(&tenant, json!({"url": consumer.url("/hook")}))
        .await;

    let data = wait_operational(&ops, &ops_ep.secret, "endpoint.verified").await;
    assert_eq!(
        data["endpoint_id"],
        ep.id.as_str(),
        "never the one about itself"
    );
    consumer.set_default(Reply::status(500));
    consumer.answer_handshakes(Handshake::Status(500));
    post_events(&api, &tenant, 3).await;
    let data = wait_operational(&ops, &ops_ep.secret, "endpoint.quarantined").await;
    assert_eq!(data["endpoint_id"], ep.id.as_str());
    assert!(
        data["reason"].as_str().unwrap().contains("in a row"),
        "{data}"
    );
    consumer.set_default(Reply::ok());
    consumer.answer_handshakes(Handshake::Echo(json!({})));
    let data = wait_operational(&ops, &ops_ep.secret, "endpoint.recovered").await;
    assert_eq!(data["endpoint_id"], ep.id.as_str());
    for (kind, data) in operational(&ops, &ops_ep.secret) {
        assert_ne!(
            data["endpoint_id"],
            ops_ep.id.as_str(),
            "{kind} about the ops endpoint itself"
        );
    }
}
