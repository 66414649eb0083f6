//! Security and governance through the HTTP API, against a real
//! redis-server and real receivers: events routed by consumer and channel,
//! keys limited to a consumer, every route's scope (read from
//! `/openapi.json`), expired and revoked keys on a second instance,
//! producer keys, and the audit log.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use gateway_tests::{
    Api, Gateway, OPERATOR_TOKEN, Receiver, Redis, Setup, Tenant, setup, wait_until,
};
use reqwest::Method;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);

async fn call(api: &Api, method: Method, path: &str, key: &str, body: Value) -> (u16, Value) {
    api.call(method, path, key, Some(body)).await
}

async fn make_consumer(api: &Api, tenant: &Tenant, uid: &str) -> String {
    let body = json!({"uid": uid, "name": format!("Customer {uid}")});
    let (status, consumer) = call(api, Method::POST, "/v1/consumers", &tenant.key, body).await;
    assert_eq!(status, 201, "{consumer}");
    consumer["id"].as_str().unwrap().to_string()
}

/// A key of `tenant` holding `scopes` (maybe limited to `consumer`).
async fn make_key(api: &Api, tenant: &Tenant, scopes: &[&str], consumer: Option<&str>) -> Value {
    let body = json!({"name": "test key", "scopes": scopes, "consumer": consumer});
    let (status, key) = call(api, Method::POST, "/v1/keys", &tenant.key, body).await;
    assert_eq!(status, 201, "{key}");
    key
}

/// Requests per receiver path.
fn per_path(receiver: &Receiver) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for request in receiver.requests() {
        *counts.entry(request.path).or_default() += 1;
    }
    counts
}

#[tokio::test]
async fn events_for_consumers_reach_only_their_endpoints() {
    let Setup {
        api,
        tenant,
        _redis,
        _gateway,
    } = setup().await;
    let receiver = Receiver::start().await;
    let mut consumers = Vec::new();
    for i in 0..20 {
        let id = make_consumer(&api, &tenant, &format!("customer-{i}")).await;
        let spec = json!({"url": receiver.url(&format!("/c{i}")), "consumer_id": id,
            "event_types": ["order.created"]});
        api.create_endpoint(&tenant, spec).await;
        consumers.push(id);
    }
    // The tenant's own endpoint, and one taking only channel `eu`.
    let own = json!({"url": receiver.url("/own"), "event_types": ["order.created"]});
    api.create_endpoint(&tenant, own).await;
    let eu = json!({"url": receiver.url("/eu"), "channels": ["eu"]});
    api.create_endpoint(&tenant, eu).await;

    for i in 0..20 {
        let event = json!({"type": "order.created", "consumer": format!("customer-{i}"),
            "data": {"for": i}});
        api.post_event(&tenant, event).await;
    }
    let several = json!({"type": "order.created",
        "consumer": ["customer-0", "customer-1", "customer-2"], "data": {"for": "some"}});
    api.post_event(&tenant, several).await;
    let everyone = json!({"type": "order.created", "data": {"for": "all"}});
    api.post_event(&tenant, everyone).await;
    let in_eu = json!({"type": "order.created", "channels": ["eu", "us"], "data": {"for": "eu"}});
    api.post_event(&tenant, in_eu).await;

    // Each consumer's endpoint: its own event, the broadcast and the `eu`
    // one (it names no channel); the first three also the one for several.
    // The tenant's own: the broadcast and the `eu` one; `/eu`: that one only.
    let mut expected: HashMap<String, usize> = (0..20)
        .map(|i| (format!("/c{i}"), if i < 3 { 4 } else { 3 }))
        .collect();
    expected.insert("/own".into(), 2);
    expected.insert("/eu".into(), 1);
    let total: usize = expected.values().sum();
    receiver.wait_for(total, WAIT).await;
    // Give a wrongly routed delivery time to arrive before counting.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(per_path(&receiver), expected);
    for request in receiver.requests() {
        let data = &request.json()["data"]["for"];
        let at: Option<usize> = request.path.strip_prefix("/c").and_then(|n| n.parse().ok());
        if let (Some(at), Some(n)) = (at, data.as_u64()) {
            assert_eq!(
                at as u64, n,
                "{} got an event for customer-{n}",
                request.path
            );
        }
    }

    // An event for a consumer the tenant does not have is refused.
    let unknown = json!({"type": "order.created", "consumer": ["customer-0", "nobody"],
        "data": {}});
    let (status, problem) = call(&api, Method::POST, "/v1/events", &tenant.key, unknown).await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(problem["errors"][0]["pointer"], "/consumer/1");
}

#[tokio::test]
async fn a_key_limited_to_a_consumer_sees_and_changes_only_its_objects() {
    let Setup {
        api,
        tenant,
        _redis,
        _gateway,
    } = setup().await;
    let receiver = Receiver::start().await;
    let a = make_consumer(&api, &tenant, "alpha").await;
    let b = make_consumer(&api, &tenant, "beta").await;
    let mine = api
        .create_endpoint(
            &tenant,
            json!({"url": receiver.url("/a"), "consumer_id": a}),
        )
        .await;
    let theirs = api
        .create_endpoint(
            &tenant,
            json!({"url": receiver.url("/b"), "consumer_id": b}),
        )
        .await;
    let (status, portal) = call(
        &api,
        Method::POST,
        &format!("/v1/consumers/{a}/portal-token"),
        &tenant.key,
        json!({"ttl": 3600}),
    )
    .await;
    assert_eq!(status, 201, "{portal}");
    assert_eq!(portal["consumer"], a.as_str());
    let token = portal["api_key"].as_str().unwrap();

    let (status, list) = api.get("/v1/endpoints", token).await;
    assert_eq!(status, 200, "{list}");
    let ids: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [mine.id.as_str()]);
    let other = format!("/v1/endpoints/{}", theirs.id);
    for (method, path, body) in [
        (Method::GET, other.clone(), Value::Null),
        (
            Method::PATCH,
            other.clone(),
            json!({"description": "mine now"}),
        ),
        (Method::GET, format!("{other}/secret"), Value::Null),
        (Method::GET, format!("{other}/attempts"), Value::Null),
        (Method::POST, format!("{other}/secret/rotate"), Value::Null),
        (Method::POST, format!("{other}/quarantine"), json!({})),
        (Method::DELETE, other.clone(), Value::Null),
    ] {
        let body = (!body.is_null()).then_some(body);
        let (status, problem) = api.call(method.clone(), &path, token, body).await;
        assert_eq!(status, 404, "{method} {path}: {problem}");
    }
    let (status, _) = api.get(&format!("/v1/endpoints/{}", mine.id), token).await;
    assert_eq!(status, 200);
    // It makes endpoints of its consumer only.
    let spec = json!({"url": receiver.url("/b2"), "consumer_id": b});
    let (status, problem) = call(&api, Method::POST, "/v1/endpoints", token, spec).await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(problem["errors"][0]["pointer"], "/consumer_id");
    // And holds no scope beyond its consumer's objects.
    let (status, problem) = api.get("/v1/plugins", token).await;
    assert_eq!(status, 403, "{problem}");
    assert!(problem["detail"].as_str().unwrap().contains("plugins:read"));
    // The other consumer's endpoint is untouched.
    let (status, kept) = api.get(&other, &tenant.key).await;
    assert_eq!(status, 200);
    assert_eq!(kept["description"], "");
}

/// A path of the document with its parameters filled in.
fn concrete(path: &str, tenant: &Tenant) -> String {
    path.replace("{tenant}", &tenant.id)
        .replace("{type}", "order.created")
        .replace("{version}", "1")
        .split('/')
        .map(|segment| match segment.starts_with('{') {
            true => "x",
            false => segment,
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[tokio::test]
async fn every_route_refuses_a_key_without_its_scope() {
    let Setup {
        api,
        tenant,
        _redis,
        _gateway,
    } = setup().await;
    let (status, document) = api.get("/openapi.json", "").await;
    assert_eq!(status, 200);
    let all: Vec<String> = document["paths"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|item| item.as_object().unwrap().values())
        .flat_map(|op| op["security"].as_array().cloned().unwrap_or_default())
        .filter_map(|req| {
            req.get("tenant_api_key")?
                .get(0)?
                .as_str()
                .map(String::from)
        })
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    assert!(all.len() >= 10, "{all:?}");
    let mut checked = 0;
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let Some(scope) = operation["security"]
                .as_array()
                .into_iter()
                .flatten()
                .find_map(|req| req.get("tenant_api_key")?.get(0)?.as_str())
            else {
                continue;
            };
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let url = concrete(path, &tenant);
            let others: Vec<&str> = all
                .iter()
                .map(String::as_str)
                .filter(|s| *s != scope)
                .collect();
            let without = make_key(&api, &tenant, &others, None).await;
            let without = without["api_key"].as_str().unwrap();
            let (status, problem) = api.call(method.clone(), &url, without, None).await;
            assert_eq!(status, 403, "{method} {url} without {scope}: {problem}");
            assert!(
                problem["detail"].as_str().unwrap().contains(scope),
                "{method} {url}: {problem}"
            );
            let only = make_key(&api, &tenant, &[scope], None).await;
            let only = only["api_key"].as_str().unwrap();
            let (status, body) = api.call(method.clone(), &url, only, None).await;
            assert!(
                status != 401 && status != 403,
                "{method} {url} with only {scope}: {status} {body}"
            );
            checked += 1;
        }
    }
    assert!(checked >= 40, "only {checked} routes checked");
}

#[tokio::test]
async fn expired_and_revoked_keys_stop_working_on_every_instance() {
    let redis = Redis::ephemeral();
    let first = Gateway::spawn(&redis);
    let second = Gateway::spawn(&redis);
    let (api, other) = (first.api(), second.api());
    let tenant = api.create_tenant("acme").await;

    let soon = gateway::model::clock::ms_to_rfc3339(gateway::model::clock::now_ms() + 2000);
    let body = json!({"name": "short", "scopes": ["endpoints:read"], "expires_at": soon});
    let (status, short) = call(&api, Method::POST, "/v1/keys", &tenant.key, body).await;
    assert_eq!(status, 201, "{short}");
    let short = short["api_key"].as_str().unwrap();
    assert_eq!(other.get("/v1/endpoints", short).await.0, 200);
    wait_until("the short key expired", Duration::from_secs(5), || async {
        (other.get("/v1/endpoints", short).await.0 == 401).then_some(())
    })
    .await;

    let key = make_key(&api, &tenant, &["endpoints:read"], None).await;
    let (id, secret) = (
        key["id"].as_str().unwrap(),
        key["api_key"].as_str().unwrap(),
    );
    let (status, listed) = api.get("/v1/keys", &tenant.key).await;
    assert_eq!(status, 200);
    let text = listed.to_string();
    assert!(!text.contains(secret), "the list shows a key: {text}");
    assert!(text.contains(&secret[..12]), "the list shows its prefix");
    // Used on the second instance, so it has it cached.
    assert_eq!(other.get("/v1/endpoints", secret).await.0, 200);
    let (status, _) = api
        .call(Method::DELETE, &format!("/v1/keys/{id}"), &tenant.key, None)
        .await;
    assert_eq!(status, 204);
    let revoked = Instant::now();
    assert_eq!(
        api.get("/v1/endpoints", secret).await.0,
        401,
        "at once here"
    );
    wait_until(
        "revoked on the second instance",
        Duration::from_secs(2),
        || async { (other.get("/v1/endpoints", secret).await.0 == 401).then_some(()) },
    )
    .await;
    println!(
        "revoked key refused by the second instance after {:?}",
        revoked.elapsed()
    );
}

#[tokio::test]
async fn a_producer_key_posts_for_its_tenants_only() {
    let Setup {
        api,
        tenant,
        _redis,
        _gateway,
    } = setup().await;
    let second = api.create_tenant("globex").await;
    let third = api.create_tenant("initech").await;
    let receiver = Receiver::start().await;
    for (t, path) in [
        (&tenant, "/acme"),
        (&second, "/globex"),
        (&third, "/initech"),
    ] {
        api.create_endpoint(t, json!({"url": receiver.url(path)}))
            .await;
    }
    let body = json!({"name": "billing", "tenants": [tenant.id, second.id]});
    let (status, made) = call(
        &api,
        Method::POST,
        "/v1/admin/producer-keys",
        OPERATOR_TOKEN,
        body,
    )
    .await;
    assert_eq!(status, 201, "{made}");
    let key = made["producer_key"].as_str().unwrap();
    let event = json!({"type": "invoice.paid", "data": {"n": 1}});
    for t in [&tenant, &second] {
        let path = format!("/v1/tenants/{}/events", t.id);
        let (status, body) = call(&api, Method::POST, &path, key, event.clone()).await;
        assert_eq!(status, 202, "{body}");
    }
    let batch = json!({"events": [event.clone(), event.clone()]});
    let path = format!("/v1/tenants/{}/events/batch", second.id);
    let (status, body) = call(&api, Method::POST, &path, key, batch).await;
    assert_eq!(status, 200, "{body}");
    let path = format!("/v1/tenants/{}/events", third.id);
    let (status, problem) = call(&api, Method::POST, &path, key, event.clone()).await;
    assert_eq!(status, 403, "{problem}");
    // A tenant's own key posts for it alone.
    let (status, _) = call(&api, Method::POST, &path, &tenant.key, event.clone()).await;
    assert_eq!(status, 403);
    let (status, _) = call(&api, Method::POST, &path, &third.key, event.clone()).await;
    assert_eq!(status, 202);
    // A producer key is no tenant key, and an unknown tenant is 404.
    assert_eq!(api.get("/v1/endpoints", key).await.0, 401);
    let (status, _) = call(&api, Method::POST, "/v1/tenants/tn_nope/events", key, event).await;
    assert_eq!(status, 403, "not in its list");

    receiver.wait_for(5, WAIT).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let counts = per_path(&receiver);
    assert_eq!(counts.get("/acme"), Some(&1));
    assert_eq!(counts.get("/globex"), Some(&3));
    assert_eq!(counts.get("/initech"), Some(&1));
}

#[tokio::test]
async fn the_audit_log_records_each_change_in_order_without_secrets() {
    let Setup {
        api,
        tenant,
        _redis,
        _gateway,
    } = setup().await;
    let receiver = Receiver::start().await;
    let key = make_key(&api, &tenant, &["endpoints:read", "endpoints:write"], None).await;
    let (key_id, key_secret) = (
        key["id"].as_str().unwrap().to_string(),
        key["api_key"].as_str().unwrap().to_string(),
    );
    let consumer = make_consumer(&api, &tenant, "alpha").await;
    let endpoint = api
        .create_endpoint(
            &key_as(&tenant, &key_secret),
            json!({"url": receiver.url("/a"), "consumer_id": consumer}),
        )
        .await;
    let ep = format!("/v1/endpoints/{}", endpoint.id);
    let patch = json!({"url": receiver.url("/b"), "description": "moved"});
    assert_eq!(
        call(&api, Method::PATCH, &ep, &key_secret, patch).await.0,
        200
    );
    let rotate = format!("{ep}/secret/rotate");
    assert_eq!(
        api.call(Method::POST, &rotate, &tenant.key, None).await.0,
        200
    );
    let settings = json!({"retry_schedule": ["1s", "5s"]});
    assert_eq!(
        call(&api, Method::PUT, "/v1/settings", &tenant.key, settings)
            .await
            .0,
        200
    );
    assert_eq!(
        api.call(Method::DELETE, &ep, &tenant.key, None).await.0,
        204
    );
    let revoke = format!("/v1/keys/{key_id}");
    assert_eq!(
        api.call(Method::DELETE, &revoke, &tenant.key, None).await.0,
        204
    );
    // A refused change is not logged.
    let bad = json!({"url": "not a url"});
    assert_eq!(
        call(&api, Method::POST, "/v1/endpoints", &tenant.key, bad)
            .await
            .0,
        422
    );

    let (status, log) = api.get("/v1/audit", &tenant.key).await;
    assert_eq!(status, 200, "{log}");
    let entries = log["data"].as_array().unwrap();
    let seen: Vec<(&str, &str)> = entries
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap(),
                e["object"]["id"].as_str().unwrap(),
            )
        })
        .collect();
    let (eid, tid) = (endpoint.id.as_str(), tenant.id.as_str());
    assert_eq!(
        seen,
        [
            ("tenant.created", tid),
            ("key.created", key_id.as_str()),
            ("consumer.created", consumer.as_str()),
            ("endpoint.created", eid),
            ("endpoint.updated", eid),
            ("endpoint.secret_rotated", eid),
            ("settings.updated", tid),
            ("endpoint.deleted", eid),
            ("key.revoked", key_id.as_str()),
        ]
    );
    let updated = &entries[4];
    assert_eq!(updated["actor"]["key_id"], key_id.as_str());
    assert_eq!(updated["actor"]["key_name"], "test key");
    assert_eq!(updated["changes"]["description"]["before"], "");
    assert_eq!(updated["changes"]["description"]["after"], "moved");
    assert_eq!(updated["changes"]["url"]["after"], receiver.url("/b"));
    assert!(
        updated["changes"].get("id").is_none(),
        "unchanged fields are left out"
    );
    assert_eq!(entries[5]["changes"]["secret"]["after"], "[redacted]");
    assert_eq!(entries[0]["actor"]["kind"], "operator");
    let text = log.to_string();
    // A key's first 12 characters may show (as its prefix), never more.
    for secret in [
        endpoint.secret.as_str(),
        key_secret.as_str(),
        &key_secret[..13],
        "whsec_",
    ] {
        assert!(!text.contains(secret), "the log holds `{secret}`: {text}");
    }
    // Paged, and filtered by object.
    let (_, first) = api.get("/v1/audit?limit=4", &tenant.key).await;
    let cursor = first["next_cursor"].as_str().unwrap();
    let (_, rest) = api
        .get(&format!("/v1/audit?cursor={cursor}"), &tenant.key)
        .await;
    assert_eq!(rest["data"].as_array().unwrap().len(), entries.len() - 4);
    let (_, only) = api
        .get(&format!("/v1/audit?object={eid}"), &tenant.key)
        .await;
    assert_eq!(only["data"].as_array().unwrap().len(), 4);
    // The operator reads everyone's, and the tenant's key with no
    // `audit:read` reads none.
    let path = format!("/v1/admin/audit?tenant={tid}");
    let (status, all) = api.get(&path, OPERATOR_TOKEN).await;
    assert_eq!(status, 200);
    assert_eq!(all["data"], log["data"]);
    let reader = make_key(&api, &tenant, &["endpoints:read"], None).await;
    let (status, _) = api
        .get("/v1/audit", reader["api_key"].as_str().unwrap())
        .await;
    assert_eq!(status, 403);
}

fn key_as(tenant: &Tenant, key: &str) -> Tenant {
    Tenant {
        id: tenant.id.clone(),
        key: key.to_string(),
    }
}

#[tokio::test]
async fn a_change_the_audit_log_cannot_take_is_not_made() {
    let Setup {
        _redis: redis,
        _gateway,
        api,
        tenant,
    } = setup().await;
    let receiver = Receiver::start().await;
    // The tenant's audit stream made something else: every XADD to it fails.
    let mut conn = redis.conn().await;
    let stream = format!("gw:{{t.{}}}:audit", tenant.id);
    let _: () = redis::cmd("DEL")
        .arg(&stream)
        .query_async(&mut conn)
        .await
        .unwrap();
    let _: () = redis::cmd("SET")
        .arg(&stream)
        .arg("x")
        .query_async(&mut conn)
        .await
        .unwrap();
    let spec = json!({"url": receiver.url("/a")});
    let (status, _) = call(&api, Method::POST, "/v1/endpoints", &tenant.key, spec).await;
    assert_eq!(status, 500);
    let (status, list) = api.get("/v1/endpoints", &tenant.key).await;
    assert_eq!(status, 200);
    assert_eq!(
        list["data"],
        json!([]),
        "the endpoint was made without its record"
    );
}
