//! TLS on both sides of the gateway: Redis over `rediss://` with the
//! operator's CA file, and endpoints reached with a client certificate
//! (mTLS) and a CA of their own; `https_only` refusing `http://` endpoints.
//! Every certificate is made by the test (rcgen).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use gateway_tests::tls::Pki;
use gateway_tests::{
    Gateway, GatewayOptions, OPERATOR_TOKEN, Receiver, Redis, RedisTls, TempDir, gateway_binary,
    setup, verify_signature, wait_until,
};
use serde_json::{Value, json};

/// A redis-server serving TLS only, with a certificate for 127.0.0.1 from
/// `pki`; `None` (after saying so) when this redis-server has no TLS.
fn tls_redis(pki: &Pki, dir: &Path) -> Option<Redis> {
    let (cert_file, key_file) = pki.server(&["127.0.0.1", "localhost"]).write(dir, "redis");
    let ca_file = dir.join("ca.crt");
    std::fs::write(&ca_file, pki.ca_pem()).expect("write the CA");
    match Redis::tls(RedisTls {
        cert_file,
        key_file,
        ca_file,
    }) {
        Ok(redis) => Some(redis),
        Err(log) if log.contains("tls") && log.contains("Bad directive") => {
            eprintln!("SKIPPED: this redis-server was built without TLS support:\n{log}");
            None
        }
        Err(log) => panic!("the TLS redis-server did not start:\n{log}"),
    }
}

/// Runs `gateway serve` with `env` until it exits (within 30 s): its exit
/// code and what it wrote to stderr.
fn serve_until_exit(dir: &Path, env: &[(&str, &str)]) -> (Option<i32>, String) {
    let log = dir.join("serve.log");
    let mut child = Command::new(gateway_binary())
        .arg("serve")
        .env("GATEWAY_LISTEN", "127.0.0.1:0")
        .env("GATEWAY_OPERATOR_TOKEN", OPERATOR_TOKEN)
        .env("GATEWAY_PLUGINS__ARTIFACTS_DIR", dir.join("artifacts"))
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("a log file"))
        .spawn()
        .expect("start the gateway");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("the gateway's status") {
            break status;
        }
        if started.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("the gateway did not exit within 30 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    (
        status.code(),
        std::fs::read_to_string(&log).unwrap_or_default(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_runs_on_redis_over_tls_with_the_operators_ca() {
    let dir = TempDir::create();
    let pki = Pki::new("redis test CA");
    let Some(redis) = tls_redis(&pki, dir.path()) else {
        return;
    };
    assert!(redis.url().starts_with("rediss://"), "{}", redis.url());

    // A CA that did not sign the server's certificate: no connection.
    let other = dir.path().join("other-ca.crt");
    std::fs::write(&other, Pki::new("another CA").ca_pem()).expect("write a CA");
    let url = redis.url();
    let (code, log) = serve_until_exit(
        dir.path(),
        &[
            ("GATEWAY_REDIS_URL", &url),
            ("GATEWAY_REDIS_CA_FILE", other.to_str().unwrap()),
        ],
    );
    assert_eq!(code, Some(1), "{log}");
    assert!(log.contains("cannot reach Redis"), "{log}");
    // A CA file that cannot be read is a configuration error.
    let (code, log) = serve_until_exit(
        dir.path(),
        &[
            ("GATEWAY_REDIS_URL", &url),
            ("GATEWAY_REDIS_CA_FILE", "/nonexistent/ca.pem"),
        ],
    );
    assert_eq!(code, Some(64), "{log}");
    assert!(log.contains("redis_ca_file"), "{log}");

    // With the right CA file, the whole flow runs on that Redis.
    let gateway = Gateway::spawn(&redis);
    let api = gateway.api();
    let receiver = Receiver::start().await;
    let tenant = api.create_tenant("acme").await;
    let endpoint = api
        .create_endpoint(&tenant, json!({"url": receiver.url("/hook")}))
        .await;
    api.post_event(&tenant, json!({"type": "order.created", "data": {"n": 1}}))
        .await;
    let got = receiver.wait_for(1, Duration::from_secs(10)).await;
    verify_signature(&endpoint.secret, &got[0]).expect("a valid signature");
    assert_eq!(got[0].json()["data"]["n"], 1);

    // What the gateway wrote is in that Redis, read over TLS too.
    let mut conn = redis.conn().await;
    let keys: u64 = redis::cmd("DBSIZE").query_async(&mut conn).await.unwrap();
    assert!(keys > 0);
    assert!(gateway.logs().contains("listening"), "{}", gateway.logs());
}

/// Problems' pointers of a 422 answer.
fn pointers(status: u16, body: &Value) -> Vec<String> {
    assert_eq!(status, 422, "{body}");
    body["errors"]
        .as_array()
        .expect("a list of errors")
        .iter()
        .map(|e| e["pointer"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_presents_its_client_certificate_and_trusts_its_own_ca() {
    let pki = Pki::new("receiver CA");
    let server = pki.server(&["127.0.0.1", "localhost"]);
    let client = pki.client("gateway-client");
    let receiver = Receiver::start_tls(pki.mtls_server(&server)).await;
    assert!(receiver.url("/").starts_with("https://"));
    let s = setup().await;
    let (api, tenant) = (&s.api, &s.tenant);

    let spec = json!({
        "url": receiver.url("/with-cert"),
        "client_cert_pem": client.cert_pem,
        "client_key_pem": client.key_pem,
        "ca_pem": pki.ca_pem(),
    });
    let (status, created) = api
        .call(
            reqwest::Method::POST,
            "/v1/endpoints",
            &tenant.key,
            Some(spec),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["client_cert"], true);
    assert_eq!(created["own_ca"], true);
    let with_cert = created["id"].as_str().unwrap().to_string();
    let secret = created["secret"].as_str().unwrap().to_string();
    // The same CA, but no client certificate: the receiver refuses it.
    let spec = json!({"url": receiver.url("/without-cert"), "ca_pem": pki.ca_pem()});
    let (status, created) = api
        .call(
            reqwest::Method::POST,
            "/v1/endpoints",
            &tenant.key,
            Some(spec),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["client_cert"], false);
    let without = created["id"].as_str().unwrap().to_string();

    api.post_event(tenant, json!({"type": "order.created", "data": {"n": 7}}))
        .await;
    let got = receiver.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(got[0].path, "/with-cert");
    verify_signature(&secret, &got[0]).expect("a valid signature");
    assert_eq!(got[0].json()["data"]["n"], 7);

    let path = format!("/v1/endpoints/{without}/attempts");
    let failed = wait_until(
        "a failed attempt without the certificate",
        Duration::from_secs(10),
        || async {
            let (status, page) = api.get(&path, &tenant.key).await;
            assert_eq!(status, 200, "{page}");
            page["data"].as_array()?.first().cloned()
        },
    )
    .await;
    assert!(failed["status_code"].is_null(), "{failed}");
    assert!(
        failed["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{failed}"
    );
    assert!(receiver.tls_refused() >= 1);
    assert!(receiver.requests().iter().all(|r| r.path == "/with-cert"));

    // The key is never shown: not in the endpoint, not in the list.
    for path in [
        format!("/v1/endpoints/{with_cert}"),
        "/v1/endpoints".to_string(),
    ] {
        let text = api
            .request(reqwest::Method::GET, &path, &tenant.key)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(!text.contains("PRIVATE KEY"), "{text}");
        assert!(!text.contains(client.key_pem.trim()), "{text}");
        assert!(text.contains(r#""client_cert":true"#), "{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_pem_and_https_only_answer_422_at_the_field() {
    let pki = Pki::new("some CA");
    let (one, other) = (pki.client("one"), pki.client("other"));
    let s = setup().await;
    let (api, tenant) = (&s.api, &s.tenant);
    let create = |spec: Value| {
        api.call(
            reqwest::Method::POST,
            "/v1/endpoints",
            &tenant.key,
            Some(spec),
        )
    };
    let https = "https://example.com/hook";

    let (status, body) =
        create(json!({"url": https, "client_cert_pem": "nope", "client_key_pem": "nope"})).await;
    assert_eq!(
        pointers(status, &body),
        ["/client_cert_pem", "/client_key_pem"]
    );
    let (status, body) = create(json!({"url": https, "client_cert_pem": one.cert_pem})).await;
    assert_eq!(pointers(status, &body), ["/client_key_pem"]);
    let mismatched =
        json!({"url": https, "client_cert_pem": one.cert_pem, "client_key_pem": other.key_pem});
    let (status, body) = create(mismatched).await;
    assert_eq!(pointers(status, &body), ["/client_key_pem"]);
    let (status, body) = create(json!({"url": https, "ca_pem": one.key_pem})).await;
    assert_eq!(pointers(status, &body), ["/ca_pem"]);
    let (status, body) = create(json!({"url": https, "ca_pem": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"})).await;
    assert_eq!(pointers(status, &body), ["/ca_pem"]);
    let plain = json!({"url": "http://127.0.0.1:9/x", "client_cert_pem": one.cert_pem, "client_key_pem": one.key_pem});
    let (status, body) = create(plain).await;
    assert_eq!(pointers(status, &body), ["/client_cert_pem"]);

    // An http:// endpoint made before the tenant turns https_only on.
    let (status, old) = create(json!({"url": "http://127.0.0.1:9/old"})).await;
    assert_eq!(status, 201, "{old}");
    let settings = json!({"https_only": true});
    let (status, body) = api
        .call(
            reqwest::Method::PUT,
            "/v1/settings",
            &tenant.key,
            Some(settings),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        api.get("/v1/settings", &tenant.key).await.1["https_only"],
        true
    );

    let (status, body) = create(json!({"url": "http://127.0.0.1:9/x"})).await;
    assert_eq!(pointers(status, &body), ["/url"]);
    let (status, body) =
        create(json!({"url": https, "failover_urls": [https, "http://127.0.0.1:9/f"]})).await;
    assert_eq!(pointers(status, &body), ["/failover_urls/1"]);
    let (status, body) = create(json!({"url": https})).await;
    assert_eq!(status, 201, "{body}");
    let path = format!("/v1/endpoints/{}", body["id"].as_str().unwrap());
    let patch = json!({"url": "http://127.0.0.1:9/x"});
    let (status, body) = api
        .call(reqwest::Method::PATCH, &path, &tenant.key, Some(patch))
        .await;
    assert_eq!(pointers(status, &body), ["/url"]);
    // The old endpoint can still be changed, as long as no http:// URL is set.
    let old_path = format!("/v1/endpoints/{}", old["id"].as_str().unwrap());
    let patch = json!({"description": "moving to https soon"});
    let (status, body) = api
        .call(reqwest::Method::PATCH, &old_path, &tenant.key, Some(patch))
        .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operators_https_only_is_the_default_a_tenant_may_override() {
    let redis = Redis::ephemeral();
    let options = GatewayOptions {
        env: vec![("GATEWAY_DELIVERY__HTTPS_ONLY".into(), "true".into())],
        ..GatewayOptions::default()
    };
    let gateway = Gateway::spawn_with(&redis, options);
    let api = gateway.api();
    let tenant = api.create_tenant("acme").await;
    let spec = json!({"url": "http://127.0.0.1:9/x"});
    let (status, body) = api
        .call(
            reqwest::Method::POST,
            "/v1/endpoints",
            &tenant.key,
            Some(spec.clone()),
        )
        .await;
    assert_eq!(pointers(status, &body), ["/url"]);
    let settings = json!({"https_only": false});
    let (status, body) = api
        .call(
            reqwest::Method::PUT,
            "/v1/settings",
            &tenant.key,
            Some(settings),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = api
        .call(
            reqwest::Method::POST,
            "/v1/endpoints",
            &tenant.key,
            Some(spec),
        )
        .await;
    assert_eq!(status, 201, "{body}");
}
