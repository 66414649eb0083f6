//! Plugins in JavaScript and Python, end to end over HTTP with the real
//! components `plugins/toolchains/build` makes (componentize-js and
//! componentize-py, with their defaults): they upload (compiling in the
//! background), dry-run and deliver exactly what the Rust examples deliver,
//! byte for byte; imports the host does not grant are denied, not fatal; a
//! restart loads their kept code instead of compiling; one tenant's big
//! uploads do not hold up another's; and the process's memory stays bounded.

use std::time::{Duration, Instant};

use gateway_tests::plugins::{component, wasm};
use gateway_tests::{
    Api, Gateway, GatewayOptions, Receiver, Redis, Setup, Tenant, setup, wait_until,
};
use reqwest::Method;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);
/// How long a big component may take to compile here (two busy cores).
const COMPILE: Duration = Duration::from_secs(240);
const LANGUAGES: [&str; 3] = ["rust", "js", "python"];
const EXAMPLES: [(&str, &str); 3] = [
    ("schema-upgrade", "schema_upgrade"),
    ("json-filter", "json_filter"),
    ("pii-redactor", "pii_redactor"),
];

/// The component of `example` in `language`.
fn built(language: &str, example: &str) -> Vec<u8> {
    match language {
        "rust" => {
            let (_, file) = EXAMPLES.iter().find(|(e, _)| *e == example).unwrap();
            wasm(file).to_vec()
        }
        _ => component(language, example).to_vec(),
    }
}

/// Installs the three examples in every language as `<example>-<language>`.
async fn install_examples(api: &Api, tenant: &Tenant) {
    let mut uploads = Vec::new();
    for language in LANGUAGES {
        for (example, _) in EXAMPLES {
            let bytes = built(language, example);
            let (api, tenant) = (api.clone(), tenant.clone());
            uploads.push(tokio::spawn(async move {
                let name = format!("{example}-{language}");
                // Twelve components on two compile lanes.
                api.install_and_wait(&tenant, &name, &bytes, 3 * COMPILE)
                    .await
            }));
        }
    }
    for upload in uploads {
        upload.await.expect("the upload task");
    }
}

async fn dry_run(api: &Api, tenant: &Tenant, name: &str, body: &Value) -> Value {
    let path = format!("/v1/plugins/{name}/invoke");
    let (status, out) = api
        .call(Method::POST, &path, &tenant.key, Some(body.clone()))
        .await;
    assert_eq!(status, 200, "{name}: {out}");
    out
}

/// An order for the chain upgrade → filter (amount over 1000) → redactor.
fn order(n: u64, amount: u64) -> Value {
    json!({
        "order_id": format!("ord_{n}"),
        "customer_name": "Grace Brewster Hopper",
        "customer_email": "grace@example.com",
        "amount_cents": amount,
        "note": format!("call +1 555 0100 or mail ops{n}@example.org; card 4111 1111 1111 1111"),
        "lines": [{"sku": "é-ß-✓", "qty": 2, "price": 12.5}],
    })
}

fn chain(language: &str) -> Value {
    json!([
        {"name": format!("schema-upgrade-{language}"), "config": {"default_currency": "GBP"}},
        {"name": format!("json-filter-{language}"),
         "config": {"pointer": "/amount/value", "op": "gt", "value": 1000}},
        {"name": format!("pii-redactor-{language}"), "config": {"pointers": ["/order_id"]}},
    ])
}

/// The same events through the same chain in Rust, JavaScript and Python:
/// the same bodies, byte for byte, the same drops with the same reasons,
/// the same dry-run verdicts, errors and log lines.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_examples_deliver_the_same_bytes_in_rust_javascript_and_python() {
    let redis = Redis::ephemeral();
    let gateway = Gateway::spawn_with(
        &redis,
        GatewayOptions {
            extra: "[plugins]\ntenant_compile_concurrency = 2\n".into(),
            ..GatewayOptions::default()
        },
    );
    let api = gateway.api();
    let tenant = api.create_tenant("acme").await;
    install_examples(&api, &tenant).await;

    let samples = [
        json!({"event": {"type": "order.created", "schema_version": 1, "data": order(1, 1250)},
               "target": {"schema_version": 2, "config": {"default_currency": "USD"}}}),
        json!({"event": {"type": "order.created", "data": {"customer_name": ""}}, "target": {}}),
        json!({"event": {"type": "order.created", "data": {}}, "target": {"config": {"currency": 1}}}),
    ]
    .map(|mut sample| {
        // A dry run makes up an id and a timestamp for an event without them.
        sample["event"]["id"] = json!("evt_sample");
        sample["event"]["timestamp"] = json!("2026-12-01T00:00:00Z");
        sample
    });
    for (example, _) in EXAMPLES {
        for sample in &samples {
            let runs = dry_runs(&api, &tenant, example, sample).await;
            // Error messages are each language's own (a JSON parser's
            // wording differs); the kind of error is not.
            let strip = |v: &Value| {
                json!({"verdict": v["verdict"], "logs": v["logs"],
                       "error": [&v["error"]["failure"], &v["error"]["detail"]["kind"]]})
            };
            assert_eq!(
                strip(&runs[1]),
                strip(&runs[0]),
                "{example} js vs rust on {sample}"
            );
            assert_eq!(
                strip(&runs[2]),
                strip(&runs[0]),
                "{example} python vs rust on {sample}"
            );
        }
    }

    let receivers = [
        Receiver::start().await,
        Receiver::start().await,
        Receiver::start().await,
    ];
    for (language, receiver) in LANGUAGES.iter().zip(&receivers) {
        api.create_endpoint(
            &tenant,
            json!({"url": receiver.url("/"), "plugins": chain(language)}),
        )
        .await;
    }
    let mut events = Vec::new();
    for (n, amount) in [(1, 1250), (2, 500), (3, 99_999), (4, 1000), (5, 1001)] {
        let event = json!({"type": "order.created", "version": 1, "data": order(n, amount)});
        events.push(api.post_event(&tenant, event).await);
    }
    let mut bodies = Vec::new();
    for receiver in &receivers {
        let got = receiver.wait_for(3, WAIT).await;
        // Sorted: the three endpoints receive in their own orders.
        let mut texts: Vec<String> = got
            .iter()
            .map(|r| String::from_utf8(r.body.clone()).unwrap())
            .collect();
        texts.sort();
        bodies.push(texts);
    }
    assert_eq!(bodies[0].len(), 3, "three orders over 1000");
    assert!(bodies[0][0].contains("[redacted]"), "{}", bodies[0][0]);
    assert_eq!(bodies[1], bodies[0], "JavaScript delivers what Rust does");
    assert_eq!(bodies[2], bodies[0], "Python delivers what Rust does");

    for event in &events {
        let statuses = wait_until("final statuses", WAIT, || async {
            let (_, e) = api.get(&format!("/v1/events/{event}"), &tenant.key).await;
            let deliveries = e["deliveries"].as_array().cloned().unwrap_or_default();
            (deliveries.len() == 3 && deliveries.iter().all(|d| d["status"] != "pending"))
                .then_some(deliveries)
        })
        .await;
        let outcome = |d: &Value| {
            let error = d["last_error"].as_str().unwrap_or("");
            // The reason names the plugin, whose name ends in its language.
            let error = LANGUAGES
                .iter()
                .fold(error.to_string(), |e, l| e.replace(&format!("-{l}:"), ":"));
            (d["status"].clone(), error)
        };
        let first = outcome(&statuses[0]);
        for d in &statuses[1..] {
            assert_eq!(outcome(d), first, "{event}: {statuses:?}");
        }
    }
}

/// The three languages' dry runs of `example` on `sample`, in the order of
/// [`LANGUAGES`].
async fn dry_runs(api: &Api, tenant: &Tenant, example: &str, sample: &Value) -> Vec<Value> {
    let mut runs = Vec::new();
    for language in LANGUAGES {
        runs.push(dry_run(api, tenant, &format!("{example}-{language}"), sample).await);
    }
    runs
}

/// A JavaScript component built with componentize-js's defaults imports
/// `wasi:http`: it uploads, and its `fetch` fails the call with the denied
/// error (nothing reaches the URL), which follows `on_plugin_error`. A Rust
/// plugin's socket gets WASI's access-denied error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_imports_are_linked_but_denied() {
    let Setup {
        _redis,
        _gateway,
        api,
        tenant,
    } = setup().await;
    let target = Receiver::start().await;
    api.install_and_wait(&tenant, "fetcher", &component("js", "fetcher"), COMPILE)
        .await;
    api.install_plugin(&tenant, "sockets", "socket_user").await;

    let config = json!({"url": target.url("/stolen")});
    let sample = json!({"event": {"type": "order.created", "data": {"secret": 1}}, "target": {"config": config}});
    let run = dry_run(&api, &tenant, "fetcher", &sample).await;
    assert_eq!(run["error"]["failure"], "denied", "{run}");
    let import = run["error"]["detail"].as_str().unwrap();
    assert!(import.starts_with("wasi:http/"), "{run}");
    assert_eq!(
        run["logs"][0]["message"],
        format!("fetching {}", target.url("/stolen"))
    );

    let addr = target
        .url("/")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let sockets = json!({"event": {"type": "order.created", "data": {"secret": 1}},
                         "target": {"config": {"addr": addr}}});
    let run = dry_run(&api, &tenant, "sockets", &sockets).await;
    assert_eq!(run["error"]["failure"], "plugin_error", "{run}");
    let message = run["error"]["detail"]["message"].as_str().unwrap();
    assert!(message.contains("connect to"), "{run}");
    assert!(message.to_lowercase().contains("denied"), "{run}");

    let receiver = Receiver::start().await;
    api.create_endpoint(
        &tenant,
        json!({"url": receiver.url("/"), "on_plugin_error": "skip",
               "plugins": [{"name": "fetcher", "config": config}, {"name": "sockets", "config": {"addr": addr}}]}),
    )
    .await;
    api.post_event(
        &tenant,
        json!({"type": "order.created", "data": {"secret": 2}}),
    )
    .await;
    let got = receiver.wait_for(1, WAIT).await;
    assert_eq!(
        got[0].json()["data"],
        json!({"secret": 2}),
        "skipped, delivered unchanged"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(target.count(), 0, "nothing reached the network");
}

/// A gateway SIGKILLed after a JavaScript plugin was compiled loads its kept
/// code on restart: the first event is delivered within a second, through
/// the plugin, with nothing compiled again and nothing dead-lettered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_loads_a_javascript_plugin_without_compiling() {
    let redis = Redis::ephemeral();
    let mut gateway = Gateway::spawn(&redis);
    let api = gateway.api();
    let tenant = api.create_tenant("acme").await;
    let js = component("js", "schema-upgrade");
    api.install_and_wait(&tenant, "upgrade", &js, COMPILE).await;
    let receiver = Receiver::start().await;
    api.create_endpoint(
        &tenant,
        json!({"url": receiver.url("/"), "plugins": [{"name": "upgrade"}]}),
    )
    .await;
    let event = json!({"type": "order.created", "data": order(1, 100)});
    api.post_event(&tenant, event.clone()).await;
    receiver.wait_for(1, WAIT).await;

    gateway.restart();
    let api = gateway.api();
    let posted = Instant::now();
    api.post_event(&tenant, event).await;
    let got = receiver.wait_for(2, WAIT).await;
    let first = got[1].at - posted;
    println!("first delivery after the restart: {first:?}");
    assert_eq!(got[1].json()["data"]["customer"]["first_name"], "Grace");
    assert!(first < Duration::from_secs(1), "{first:?}");
    assert_eq!(api.metric("gateway_plugin_compiles_total").await as u64, 0);
    assert_eq!(
        api.metric("gateway_plugin_artifacts_loaded_total").await as u64,
        1
    );
    let (_, letters) = api.get("/v1/dead-letters", &tenant.key).await;
    assert_eq!(letters["data"], json!([]));
}

/// A gateway SIGKILLed while a JavaScript upload is still compiling (the
/// upload answered 202) compiles that version again when it starts: the
/// version becomes ready without being uploaded again, with one compile,
/// and an endpoint can then use it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compile_cut_short_by_a_crash_is_finished_after_the_restart() {
    let redis = Redis::ephemeral();
    let mut gateway = Gateway::spawn(&redis);
    let api = gateway.api();
    let tenant = api.create_tenant("acme").await;
    let js = component("js", "schema-upgrade");
    let (status, version) = api.upload_plugin(&tenant, "upgrade", &js).await;
    assert_eq!(status, 202, "{version}");
    assert_eq!(version["status"], "compiling");

    gateway.restart();
    let api = gateway.api();
    let (_, plugin) = api.get("/v1/plugins/upgrade", &tenant.key).await;
    assert_eq!(plugin["versions"][0]["status"], "compiling", "{plugin}");
    wait_until("the version left compiling is ready", COMPILE, || async {
        let (_, plugin) = api.get("/v1/plugins/upgrade", &tenant.key).await;
        let stored = &plugin["versions"][0];
        assert_ne!(stored["status"], "failed", "{stored}");
        (stored["status"] == "ready").then_some(())
    })
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
        json!({"type": "order.created", "data": order(1, 100)}),
    )
    .await;
    let got = receiver.wait_for(1, WAIT).await;
    assert_eq!(got[0].json()["data"]["customer"]["first_name"], "Grace");
}

/// `bytes` made a different component (another sha256) by a custom section
/// at its end, named `n`.
fn variant(bytes: &[u8], n: u8) -> Vec<u8> {
    let name = b"variant";
    let mut out = bytes.to_vec();
    let payload_len = 1 + name.len() + 1;
    out.extend([0u8, payload_len as u8, name.len() as u8]);
    out.extend(name);
    out.push(n);
    out
}

/// One tenant uploading five big components at once queues them behind its
/// own compile slot: a second tenant's small upload is compiled and stored
/// within 2 s, and its deliveries go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_tenants_big_uploads_do_not_hold_up_another() {
    let Setup {
        _redis,
        _gateway,
        api,
        tenant: big,
    } = setup().await;
    let small = api.create_tenant("small").await;
    api.install_plugin(&small, "upgrade", "schema_upgrade")
        .await;
    let receiver = Receiver::start().await;
    api.create_endpoint(
        &small,
        json!({"url": receiver.url("/"), "plugins": [{"name": "upgrade"}]}),
    )
    .await;

    let js = component("js", "schema-upgrade");
    let mut uploads = Vec::new();
    for n in 0..5 {
        let (api, big, bytes) = (api.clone(), big.clone(), variant(&js, n));
        uploads.push(tokio::spawn(async move {
            let started = Instant::now();
            let (status, body) = api.upload_plugin(&big, &format!("big-{n}"), &bytes).await;
            (status, body, started.elapsed())
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    let started = Instant::now();
    let (status, body) = api
        .upload_plugin(&small, "filter", &wasm("json_filter"))
        .await;
    let took = started.elapsed();
    println!("the small upload beside five big ones: {took:?}");
    assert_eq!(status, 201, "{body}");
    assert!(took < Duration::from_secs(2), "{took:?}");

    let posted = Instant::now();
    api.post_event(
        &small,
        json!({"type": "order.created", "data": order(1, 100)}),
    )
    .await;
    let got = receiver.wait_for(1, WAIT).await;
    println!("its delivery: {:?}", got[0].at - posted);
    assert!(got[0].at - posted < Duration::from_secs(2));

    for upload in uploads {
        let (status, body, took) = upload.await.unwrap();
        assert_eq!(status, 202, "{body}");
        assert_eq!(body["status"], "compiling", "{body}");
        assert!(took < Duration::from_secs(5), "{took:?}");
    }
}

/// A compile that fails after its upload answered `202` is reported once:
/// on the version (`failed`, with the reason), which never runs, and which
/// endpoints cannot name; uploading the same bytes again is refused with
/// that reason at once, compiling nothing.
/// Endpoints using the plugin keep its newest ready version.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_background_compile_is_reported_once() {
    let redis = Redis::ephemeral();
    let gateway = Gateway::spawn_with(
        &redis,
        GatewayOptions {
            extra: "[plugins]\nupload_wait = \"1ms\"\n".into(),
            ..GatewayOptions::default()
        },
    );
    let api = gateway.api();
    let tenant = api.create_tenant("acme").await;
    api.install_and_wait(&tenant, "p", &wasm("schema_upgrade"), WAIT)
        .await;
    let receiver = Receiver::start().await;
    let endpoint = api
        .create_endpoint(
            &tenant,
            json!({"url": receiver.url("/"), "plugins": [{"name": "p"}]}),
        )
        .await;

    let (status, body) = api.upload_plugin(&tenant, "p", &wasm("wrong_world")).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["version"], 2);
    let failed = wait_until("v2 failed", WAIT, || async {
        let (_, p) = api.get("/v1/plugins/p", &tenant.key).await;
        (p["versions"][1]["status"] == "failed").then_some(p["versions"][1].clone())
    })
    .await;
    assert!(
        failed["reason"]
            .as_str()
            .unwrap()
            .contains("gateway:plugin/plugin@0.1.0"),
        "{failed}"
    );
    let compiles = api.metric("gateway_plugin_compiles_total").await;

    // The same bytes again: refused at once with the remembered reason.
    let (status, body) = api.upload_plugin(&tenant, "p", &wasm("wrong_world")).await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("gateway:plugin/plugin@0.1.0"),
        "{body}"
    );
    let (status, body) = api
        .call(
            Method::PATCH,
            &format!("/v1/endpoints/{}", endpoint.id),
            &tenant.key,
            Some(json!({"plugins": [{"name": "p", "version": 2}]})),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("failed to compile")
    );

    for n in 0..5 {
        api.post_event(
            &tenant,
            json!({"type": "order.created", "data": order(n, 100)}),
        )
        .await;
    }
    let got = receiver.wait_for(5, WAIT).await;
    assert!(
        got.iter()
            .all(|r| r.json()["data"]["customer"]["first_name"] == "Grace")
    );
    assert_eq!(api.metric("gateway_plugin_compiles_total").await, compiles);
    let (_, letters) = api.get("/v1/dead-letters", &tenant.key).await;
    assert_eq!(letters["data"], json!([]));
}

/// After compiling and running the JavaScript and Python examples, the
/// gateway's resident memory stays within the bound the README states.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_stays_bounded_after_big_plugins() {
    let redis = Redis::ephemeral();
    let gateway = Gateway::spawn(&redis);
    let api = gateway.api();
    let tenant = api.create_tenant("acme").await;
    let before = gateway.resident_bytes();
    for language in ["js", "python"] {
        let name = format!("upgrade-{language}");
        let bytes = component(language, "schema-upgrade");
        api.install_and_wait(&tenant, &name, &bytes, COMPILE).await;
        let sample =
            json!({"event": {"type": "order.created", "data": order(1, 100)}, "target": {}});
        for _ in 0..20 {
            let run = dry_run(&api, &tenant, &name, &sample).await;
            assert_eq!(run["verdict"]["action"], "deliver", "{run}");
        }
    }
    let after = gateway.resident_bytes();
    println!(
        "resident memory: {} MiB before, {} MiB after",
        before >> 20,
        after >> 20
    );
    assert!(after < MEMORY_BOUND, "{} MiB", after >> 20);
}

/// The bound the README states for a gateway that compiled and ran the
/// JavaScript and Python examples.
const MEMORY_BOUND: u64 = 768 << 20;
