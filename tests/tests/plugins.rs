//! Tenant plugins end to end over HTTP, with real components built from
//! `plugins/`: upload, dry run, attach, deliver; chains and per-endpoint
//! config; hostile plugins stopped within budget while other tenants go on;
//! bad uploads refused; plugins isolated between tenants.

use std::time::{Duration, Instant};

use gateway_tests::plugins::wasm;
use gateway_tests::{Api, OPERATOR_TOKEN, Receiver, Setup, Tenant, setup, wait_until};
use reqwest::Method;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(20);

async fn invoke(api: &Api, tenant: &Tenant, name: &str, body: Value) -> Value {
    let (status, out) = api
        .call(
            Method::POST,
            &format!("/v1/plugins/{name}/invoke"),
            &tenant.key,
            Some(body),
        )
        .await;
    assert_eq!(status, 200, "{out}");
    out
}

async fn status_of(api: &Api, tenant: &Tenant, event: &str) -> Value {
    wait_until(&format!("a final status for {event}"), WAIT, || async {
        let (_, e) = api.get(&format!("/v1/events/{event}"), &tenant.key).await;
        let d = e["deliveries"][0].clone();
        (d["status"] != "pending" && !d.is_null()).then_some(d)
    })
    .await
}

fn order_v1(amount: u64) -> Value {
    json!({"order_id": "ord_1", "customer_name": "Ada Lovelace", "customer_email": "ada@example.com", "amount_cents": amount})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schema_upgrade_is_tried_attached_and_delivered() {
    let Setup {
        _redis,
        _gateway,
        api,
        tenant,
    } = setup().await;
    api.install_plugin(&tenant, "upgrade", "schema_upgrade")
        .await;
    let (_, listed) = api.get("/v1/plugins", &tenant.key).await;
    assert_eq!(listed["data"][0]["name"], "upgrade");
    assert_eq!(listed["data"][0]["versions"][0]["version"], 1);
    assert_eq!(
        listed["data"][0]["versions"][0]["sha256"]
            .as_str()
            .unwrap()
            .len(),
        64
    );

    let dry = invoke(&api, &tenant, "upgrade", json!({"event": {"type": "order.created", "data": order_v1(1250)}, "target": {"config": {"default_currency": "GBP"}}})).await;
    assert_eq!(dry["verdict"]["action"], "deliver", "{dry}");
    let data = &dry["verdict"]["event"]["data"];
    assert_eq!(
        data["customer"],
        json!({"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com"})
    );
    assert_eq!(data["amount"], json!({"value": 1250, "currency": "GBP"}));
    assert_eq!(dry["verdict"]["event"]["schema_version"], 2);

    // Two endpoints, each with its own config: each gets its own currency.
    let (usd, gbp) = (Receiver::start().await, Receiver::start().await);
    for (receiver, currency) in [(&usd, "USD"), (&gbp, "GBP")] {
        api.create_endpoint(&tenant, json!({"url": receiver.url("/"), "plugins": [{"name": "upgrade", "config": {"default_currency": currency}}]})).await;
    }
    api.post_event(
        &tenant,
        json!({"type": "order.created", "data": order_v1(990)}),
    )
    .await;
    for (receiver, currency) in [(&usd, "USD"), (&gbp, "GBP")] {
        let got = receiver.wait_for(1, WAIT).await;
        let body = got[0].json();
        assert_eq!(
            body["data"]["amount"],
            json!({"value": 990, "currency": currency})
        );
        assert_eq!(body["data"]["customer"]["first_name"], "Ada");
        assert!(body["data"].get("customer_name").is_none());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_filter_drops_with_its_reason_and_a_chain_runs_in_order() {
    let Setup {
        _redis,
        _gateway,
        api,
        tenant,
    } = setup().await;
    api.install_plugin(&tenant, "upgrade", "schema_upgrade")
        .await;
    api.install_plugin(&tenant, "filter", "json_filter").await;
    api.install_plugin(&tenant, "redact", "pii_redactor").await;
    let receiver = Receiver::start().await;
    // The filter reads a v2 field: it only works after the upgrade ran.
    let chain = json!([
        {"name": "upgrade"},
        {"name": "filter", "config": {"pointer": "/amount/value", "op": "gt", "value": 1000}},
        {"name": "redact", "config": {"pointers": ["/order_id"]}},
    ]);
    api.create_endpoint(&tenant, json!({"url": receiver.url("/"), "plugins": chain}))
        .await;

    let small = api
        .post_event(
            &tenant,
            json!({"type": "order.created", "data": order_v1(500)}),
        )
        .await;
    let big = api
        .post_event(
            &tenant,
            json!({"type": "order.created", "data": order_v1(5000)}),
        )
        .await;
    let dropped = status_of(&api, &tenant, &small).await;
    assert_eq!(dropped["status"], "dropped");
    assert!(
        dropped["last_error"]
            .as_str()
            .unwrap()
            .contains("/amount/value"),
        "{dropped}"
    );
    assert_eq!(status_of(&api, &tenant, &big).await["status"], "delivered");

    let got = receiver.wait_for(1, WAIT).await;
    let data = got[0].json()["data"].clone();
    assert_eq!(data["amount"]["value"], 5000);
    assert_eq!(data["order_id"], "[redacted]");
    assert_eq!(data["customer"]["email"], "[redacted email]");
    assert_eq!(receiver.count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_plugins_are_stopped_and_follow_the_endpoint_policy() {
    let Setup {
        _redis,
        _gateway: gateway,
        api,
        tenant,
    } = setup().await;
    for (name, file) in [
        ("loop", "infinite_loop"),
        ("hog", "memory_hog"),
        ("trap", "trap"),
        ("big", "oversized_output"),
        ("flood", "log_flood"),
    ] {
        api.install_plugin(&tenant, name, file).await;
    }
    let event = json!({"event": {"type": "a.b", "data": {"x": 1}}});

    let started = Instant::now();
    let out = invoke(&api, &tenant, "loop", event.clone()).await;
    assert_eq!(out["error"]["failure"], "cpu_budget", "{out}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "stopped within its budget"
    );
    assert!(out["cpu_ms"].as_u64().unwrap() >= 50);

    // Budgets change live through the operator API. The hog gets a small
    // memory cap and time to spare, so memory is the only limit it can
    // reach: the CPU budget counts wall-clock ticks, and filling 64 MiB on
    // a loaded machine can outlast 50 ms.
    let limits = format!("/v1/admin/tenants/{}/limits", tenant.id);
    let roomy =
        json!({"plugin_cpu_ms": 5000, "plugin_deadline_ms": 5000, "plugin_memory_bytes": 8 << 20});
    let (status, set) = api
        .call(Method::PUT, &limits, OPERATOR_TOKEN, Some(roomy))
        .await;
    assert_eq!(
        (status, set["plugin_memory_bytes"].clone()),
        (200, json!(8 << 20)),
        "{set}"
    );
    let hog = invoke(&api, &tenant, "hog", event.clone()).await;
    assert_eq!(hog["error"]["failure"], "memory", "{hog}");
    let defaults =
        json!({"plugin_cpu_ms": null, "plugin_deadline_ms": null, "plugin_memory_bytes": null});
    let (status, _) = api
        .call(Method::PUT, &limits, OPERATOR_TOKEN, Some(defaults))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        invoke(&api, &tenant, "trap", event.clone()).await["error"]["failure"],
        "trap"
    );
    let big =
        json!({"event": {"type": "a.b", "data": {}}, "target": {"config": {"bytes": 2_000_000}}});
    assert_eq!(
        invoke(&api, &tenant, "big", big).await["error"]["failure"],
        "output_too_large"
    );
    let flood = invoke(&api, &tenant, "flood", event.clone()).await;
    assert_eq!(flood["verdict"]["action"], "deliver");
    assert!(flood["logs"].as_array().unwrap().len() <= 100);
    assert!(flood["logs_dropped"].as_u64().unwrap() > 0);

    // Nothing survives between calls: a plugin counting its calls in a
    // static sees 1 every time.
    api.install_plugin(&tenant, "keeper", "state_keeper").await;
    for _ in 0..3 {
        let out = invoke(&api, &tenant, "keeper", event.clone()).await;
        let metadata = &out["verdict"]["event"]["metadata"];
        assert!(
            metadata
                .as_array()
                .unwrap()
                .contains(&json!(["calls", "1"])),
            "{out}"
        );
    }

    let (status, set) = api
        .call(
            Method::PUT,
            &limits,
            OPERATOR_TOKEN,
            Some(json!({"plugin_cpu_ms": 10})),
        )
        .await;
    assert_eq!(
        (status, set["plugin_cpu_ms"].clone()),
        (200, json!(10)),
        "{set}"
    );
    let out = invoke(&api, &tenant, "loop", event.clone()).await;
    assert!(
        out["cpu_ms"].as_u64().unwrap() < 50,
        "the new budget applies: {out}"
    );

    // dead_letter (the default): the reason is on the dead letter and the status.
    let receiver = Receiver::start().await;
    api.create_endpoint(
        &tenant,
        json!({"url": receiver.url("/dl"), "plugins": [{"name": "trap"}]}),
    )
    .await;
    let id = api
        .post_event(&tenant, json!({"type": "a.b", "data": {}}))
        .await;
    let status = status_of(&api, &tenant, &id).await;
    assert_eq!(status["status"], "dead_lettered");
    assert!(
        status["last_error"].as_str().unwrap().contains("trapped"),
        "{status}"
    );
    let (_, letters) = api.get("/v1/dead-letters", &tenant.key).await;
    assert_eq!(letters["data"][0]["stage"], "plugin");
    assert!(receiver.count() == 0);
    assert!(
        gateway.logs().contains("listening"),
        "the gateway is still up"
    );
    let (health, _) = api.get("/healthz", "").await;
    assert_eq!(health, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skip_delivers_unchanged_drop_records_and_redelivery_reruns_the_chain() {
    let Setup {
        _redis,
        _gateway,
        api,
        tenant,
    } = setup().await;
    api.install_plugin(&tenant, "trap", "trap").await;
    api.install_plugin(&tenant, "upgrade", "schema_upgrade")
        .await;
    let (skip, drop, dead) = (
        Receiver::start().await,
        Receiver::start().await,
        Receiver::start().await,
    );
    api.create_endpoint(&tenant, json!({"url": skip.url("/"), "plugins": [{"name": "trap"}], "on_plugin_error": "skip", "event_types": ["order.created"]})).await;
    api.create_endpoint(&tenant, json!({"url": drop.url("/"), "plugins": [{"name": "trap"}], "on_plugin_error": "drop", "event_types": ["order.created"]})).await;
    let dead_ep = api.create_endpoint(&tenant, json!({"url": dead.url("/"), "plugins": [{"name": "trap"}], "event_types": ["order.created"]})).await;

    let id = api
        .post_event(
            &tenant,
            json!({"type": "order.created", "data": order_v1(100)}),
        )
        .await;
    let got = skip.wait_for(1, WAIT).await;
    assert_eq!(
        got[0].json()["data"],
        order_v1(100),
        "skip delivers the event as the failing plugin got it"
    );
    let (_, event) = wait_until("three final statuses", WAIT, || async {
        let (s, e) = api.get(&format!("/v1/events/{id}"), &tenant.key).await;
        let done = e["deliveries"]
            .as_array()
            .is_some_and(|d| d.len() == 3 && d.iter().all(|x| x["status"] != "pending"));
        done.then_some((s, e))
    })
    .await;
    let by_status: Vec<&str> = event["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["status"].as_str().unwrap())
        .collect();
    for want in ["delivered", "dropped", "dead_lettered"] {
        assert!(by_status.contains(&want), "{event}");
    }
    assert_eq!(drop.count(), 0);

    // Fix the dead-lettered endpoint's chain, then redeliver: the chain runs again.
    let ep = format!("/v1/endpoints/{}", dead_ep.id);
    let (status, _) = api
        .call(
            Method::PATCH,
            &ep,
            &tenant.key,
            Some(json!({"plugins": [{"name": "upgrade"}]})),
        )
        .await;
    assert_eq!(status, 200);
    let (_, letters) = api.get("/v1/dead-letters", &tenant.key).await;
    let letter = letters["data"][0]["id"].as_str().unwrap().to_string();
    let (status, body) = api
        .call(
            Method::POST,
            &format!("/v1/dead-letters/{letter}/redeliver"),
            &tenant.key,
            None,
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let got = dead.wait_for(1, WAIT).await;
    assert_eq!(
        got[0].json()["data"]["amount"]["value"],
        100,
        "delivered as the new chain made it"
    );

    // A plugin in use cannot be deleted; once unused it can.
    let (status, body) = api
        .call(Method::DELETE, "/v1/plugins/upgrade", &tenant.key, None)
        .await;
    assert_eq!(status, 409, "{body}");
    api.call(
        Method::PATCH,
        &ep,
        &tenant.key,
        Some(json!({"plugins": []})),
    )
    .await;
    let (status, _) = api
        .call(Method::DELETE, "/v1/plugins/upgrade", &tenant.key, None)
        .await;
    assert_eq!(status, 204);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_uploads_are_refused_and_plugins_stay_with_their_tenant() {
    let Setup {
        _redis,
        _gateway,
        api,
        tenant,
    } = setup().await;
    let reason = |body: &Value| {
        body["errors"][0]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    let (status, body) = api.upload_plugin(&tenant, "p", b"hello, not wasm").await;
    assert_eq!(status, 422, "{body}");
    assert!(reason(&body).contains("not a WebAssembly"), "{body}");
    let (status, body) = api.upload_plugin(&tenant, "p", b"\0asm\x01\0\0\0").await;
    assert_eq!(status, 422);
    assert!(reason(&body).contains("core wasm module"), "{body}");
    let (status, body) = api.upload_plugin(&tenant, "p", &wasm("wrong_world")).await;
    assert_eq!(status, 422);
    assert!(reason(&body).contains("gateway:plugin"), "{body}");
    let (status, _) = api.upload_plugin(&tenant, "Bad Name", &wasm("trap")).await;
    assert_eq!(status, 422);
    let (_, listed) = api.get("/v1/plugins", &tenant.key).await;
    assert_eq!(
        listed["data"].as_array().unwrap().len(),
        0,
        "nothing was stored"
    );

    api.install_plugin(&tenant, "upgrade", "schema_upgrade")
        .await;
    let (status, again) = api
        .upload_plugin(&tenant, "upgrade", &wasm("schema_upgrade"))
        .await;
    assert_eq!(
        (status, again["version"].clone()),
        (200, json!(1)),
        "the same bytes are the same version"
    );
    let (status, next) = api
        .upload_plugin(&tenant, "upgrade", &wasm("json_filter"))
        .await;
    assert_eq!((status, next["version"].clone()), (201, json!(2)));

    let other = api.create_tenant("other").await;
    let receiver = Receiver::start().await;
    assert_eq!(api.get("/v1/plugins/upgrade", &other.key).await.0, 404);
    let (status, _) = api
        .call(
            Method::POST,
            "/v1/plugins/upgrade/invoke",
            &other.key,
            Some(json!({"event": {"type": "a", "data": {}}})),
        )
        .await;
    assert_eq!(status, 404);
    assert_eq!(
        api.call(Method::DELETE, "/v1/plugins/upgrade", &other.key, None)
            .await
            .0,
        404
    );
    let (status, body) = api
        .call(
            Method::POST,
            "/v1/endpoints",
            &other.key,
            Some(json!({"url": receiver.url("/"), "plugins": [{"name": "upgrade"}]})),
        )
        .await;
    assert_eq!(status, 422);
    assert_eq!(body["errors"][0]["pointer"], "/plugins/0/name");

    // Last: the server closes a connection whose oversized body it did not read.
    let (status, body) = api.upload_plugin(&tenant, "p", &vec![0u8; 33 << 20]).await;
    assert_eq!(status, 413, "{body}");
}

/// A restarted gateway loads the plugin's kept compiled code: the first
/// event after a SIGKILL and restart is delivered through the plugin, and
/// nothing is compiled again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_gateway_does_not_recompile_its_plugins() {
    let redis = gateway_tests::Redis::ephemeral();
    let mut gateway = gateway_tests::Gateway::spawn(&redis);
    let api = gateway.api();
    let tenant = api.create_tenant("acme").await;
    api.install_plugin(&tenant, "upgrade", "schema_upgrade")
        .await;
    assert_eq!(api.metric("gateway_plugin_compiles_total").await as u64, 1);
    let receiver = Receiver::start().await;
    api.create_endpoint(
        &tenant,
        json!({"url": receiver.url("/"), "plugins": [{"name": "upgrade"}]}),
    )
    .await;
    api.post_event(
        &tenant,
        json!({"type": "order.created", "data": order_v1(100)}),
    )
    .await;
    let before = receiver.wait_for(1, WAIT).await;

    gateway.restart();
    let api = gateway.api();
    let posted = Instant::now();
    api.post_event(
        &tenant,
        json!({"type": "order.created", "data": order_v1(100)}),
    )
    .await;
    let got = receiver.wait_for(2, WAIT).await;
    println!("first delivery after the restart: {:?}", got[1].at - posted);
    assert_eq!(got[1].json()["data"], before[0].json()["data"]);
    assert_eq!(
        got[1].json()["data"]["customer"]["first_name"],
        "Ada",
        "the plugin ran: {}",
        got[1].json()
    );
    assert_eq!(api.metric("gateway_plugin_compiles_total").await as u64, 0);
    assert_eq!(
        api.metric("gateway_plugin_artifacts_loaded_total").await as u64,
        1
    );
}

/// A plugin whose code is not compiled yet (a new instance, nothing kept)
/// and takes longer than `compile_timeout` to compile costs no event: the
/// events wait while one compile runs on past the timeout, then go through
/// the plugin. Nothing is dead-lettered and the component is compiled once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_wait_for_a_slow_compile_which_runs_once() {
    let redis = gateway_tests::Redis::ephemeral();
    let mut first = gateway_tests::Gateway::spawn(&redis);
    let api = first.api();
    let tenant = api.create_tenant("acme").await;
    api.install_plugin(&tenant, "upgrade", "schema_upgrade")
        .await;
    let receiver = Receiver::start().await;
    api.create_endpoint(
        &tenant,
        json!({"url": receiver.url("/"), "plugins": [{"name": "upgrade"}]}),
    )
    .await;
    first.kill();

    let slow = gateway_tests::Gateway::spawn_with(
        &redis,
        gateway_tests::GatewayOptions {
            extra: "[plugins]\nkeep_artifacts = false\ncompile_timeout = \"1ms\"\n".into(),
            ..gateway_tests::GatewayOptions::default()
        },
    );
    let api = slow.api();
    for n in 0..5 {
        api.post_event(
            &tenant,
            json!({"type": "order.created", "data": order_v1(n)}),
        )
        .await;
    }
    let got = receiver.wait_for(5, WAIT).await;
    for r in &got {
        assert_eq!(
            r.json()["data"]["customer"]["first_name"],
            "Ada",
            "{}",
            r.json()
        );
    }
    let (_, letters) = api.get("/v1/dead-letters", &tenant.key).await;
    assert_eq!(letters["data"], json!([]), "nothing dead-lettered");
    assert_eq!(
        api.metric("gateway_plugin_compiles_total").await as u64,
        1,
        "one compile for all the events"
    );
}
