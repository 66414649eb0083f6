//! Event contracts over HTTP: schemas validating ingest with exact pointers,
//! the compatibility check, and one event delivered to endpoints at three
//! schema versions through real transform plugins from `plugins/`.

use std::time::Duration;

use gateway_tests::{Api, Receiver, Setup, Tenant, setup, wait_until};
use reqwest::Method;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(20);

async fn put(api: &Api, tenant: &Tenant, path: &str, body: Value) -> (u16, Value) {
    api.call(Method::PUT, path, &tenant.key, Some(body)).await
}

/// PUTs `body` and asserts the answer's status.
async fn put_answering(status: u16, api: &Api, tenant: &Tenant, path: &str, body: Value) {
    let (got, answer) = put(api, tenant, path, body).await;
    assert_eq!(got, status, "{answer}");
}

async fn post(api: &Api, tenant: &Tenant, path: &str, body: Value) -> (u16, Value) {
    api.call(Method::POST, path, &tenant.key, Some(body)).await
}

/// Registers `order.created` and its version 1.
async fn register_v1(api: &Api, tenant: &Tenant) {
    put_answering(
        201,
        api,
        tenant,
        "/v1/event-types/order.created",
        json!({"description": "an order was placed"}),
    )
    .await;
    put_answering(
        201,
        api,
        tenant,
        "/v1/event-types/order.created/versions/1",
        json!({"schema": order_v1_schema()}),
    )
    .await;
}

fn order_v1_schema() -> Value {
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "required": ["order_id", "customer_name", "amount_cents"],
        "properties": {
            "order_id": {"type": "string"},
            "customer_name": {"type": "string", "minLength": 1},
            "customer_email": {"type": "string", "format": "email"},
            "amount_cents": {"type": "integer", "minimum": 0},
            "currency": {"enum": ["EUR", "GBP", "USD"]},
            "placed_at": {"type": "string", "format": "date-time"},
            "items": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["sku", "qty"],
                    "properties": {
                        "sku": {"type": "string"},
                        "qty": {"type": "integer", "minimum": 1}
                    }
                }
            }
        }
    })
}

fn order_v2_schema() -> Value {
    json!({
        "type": "object",
        "required": ["order_id", "customer", "amount"],
        "properties": {
            "order_id": {"type": "string"},
            "items": {"type": "array"},
            "customer": {
                "type": "object",
                "required": ["first_name", "last_name"],
                "properties": {
                    "first_name": {"type": "string"},
                    "last_name": {"type": "string"},
                    "email": {"type": "string", "format": "email"}
                }
            },
            "amount": {
                "type": "object",
                "required": ["value", "currency"],
                "properties": {"value": {"type": "integer"}, "currency": {"type": "string"}}
            }
        }
    })
}

fn order_v3_schema() -> Value {
    let mut v3 = order_v2_schema();
    let amount = v3["properties"]
        .as_object_mut()
        .unwrap()
        .remove("amount")
        .unwrap();
    v3["properties"]["total"] = json!({
        "type": "object",
        "required": ["minor_units", "currency"],
        "properties": {"minor_units": amount["properties"]["value"], "currency": {"type": "string"}}
    });
    v3["required"] = json!(["order_id", "customer", "total"]);
    v3
}

fn order_v1() -> Value {
    json!({"order_id": "ord_1", "customer_name": "Ada Lovelace", "amount_cents": 1250, "currency": "GBP"})
}

fn pointers(body: &Value) -> Vec<String> {
    let mut found: Vec<String> = body["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("no errors in {body}"))
        .iter()
        .map(|e| e["pointer"].as_str().unwrap().to_string())
        .collect();
    found.sort();
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_validates_against_the_version_schema_with_exact_pointers() {
    let Setup {
        _redis,
        _gateway,
        api,
        tenant,
    } = setup().await;
    register_v1(&api, &tenant).await;
    let cases = [
        (
            json!({"order_id": 7, "customer_name": "", "amount_cents": -1}),
            vec![
                "/data/amount_cents",
                "/data/customer_name",
                "/data/order_id",
            ],
        ),
        (json!({"order_id": "o", "amount_cents": 1}), vec!["/data"]),
        (
            json!({"order_id": "o", "customer_name": "A", "amount_cents": 1,
                   "customer_email": "not-an-email", "placed_at": "last tuesday", "currency": "XYZ"}),
            vec!["/data/currency", "/data/customer_email", "/data/placed_at"],
        ),
        (
            json!({"order_id": "o", "customer_name": "A", "amount_cents": 1,
                   "items": [{"sku": "a", "qty": 1}, {"sku": 2, "qty": 0}, {"qty": 1}]}),
            vec!["/data/items/1/qty", "/data/items/1/sku", "/data/items/2"],
        ),
    ];
    for (data, expected) in cases {
        let (status, body) = post(
            &api,
            &tenant,
            "/v1/events",
            json!({"type": "order.created", "data": data}),
        )
        .await;
        assert_eq!(status, 422, "{body}");
        assert_eq!(pointers(&body), expected, "{body}");
        assert_eq!(body["type"], "/problems/validation");
    }
    let (status, body) = post(
        &api,
        &tenant,
        "/v1/events",
        json!({"type": "order.created", "version": 4, "data": order_v1()}),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(pointers(&body), vec!["/version"]);

    // Valid: stored at the latest version, which the event then names.
    let id = api
        .post_event(
            &tenant,
            json!({"type": "order.created", "data": order_v1()}),
        )
        .await;
    let (_, event) = api.get(&format!("/v1/events/{id}"), &tenant.key).await;
    assert_eq!(event["version"], 1, "{event}");

    // A batch reports each item's violations under its index.
    let (status, body) = post(
        &api,
        &tenant,
        "/v1/events/batch",
        json!({"events": [
            {"type": "order.created", "data": order_v1()},
            {"type": "order.created", "data": {"order_id": "o", "customer_name": "A", "amount_cents": "1"}},
        ]}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["results"][0]["status"], 202);
    assert_eq!(body["results"][1]["status"], 422);
    assert_eq!(
        body["results"][1]["errors"][0]["pointer"],
        "/events/1/data/amount_cents"
    );

    // Unregistered types are accepted by default, refused when the tenant says so.
    api.post_event(&tenant, json!({"type": "free.form", "data": {"x": 1}}))
        .await;
    let (status, _) = put(
        &api,
        &tenant,
        "/v1/settings",
        json!({"unregistered_types": "refuse"}),
    )
    .await;
    assert_eq!(status, 200);
    let (status, body) = post(
        &api,
        &tenant,
        "/v1/events",
        json!({"type": "free.form", "data": {"x": 1}}),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(pointers(&body), vec!["/type"]);

    // A deprecated version is still accepted, with a Deprecation header.
    let (status, body) = put(
        &api,
        &tenant,
        "/v1/event-types/order.created/versions/1",
        json!({"schema": order_v1_schema(), "deprecated": true}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["deprecated"], true);
    let response = api
        .request(Method::POST, "/v1/events", &tenant.key)
        .json(&json!({"type": "order.created", "version": 1, "data": order_v1()}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 202);
    let deprecation = response.headers()["deprecation"].to_str().unwrap();
    assert!(deprecation.starts_with('@'), "{deprecation}");
    assert!(deprecation[1..].parse::<u64>().is_ok(), "{deprecation}");

    // A version's schema never changes.
    let (status, body) = put(
        &api,
        &tenant,
        "/v1/event-types/order.created/versions/1",
        json!({"schema": {"type": "object"}}),
    )
    .await;
    assert_eq!(status, 409, "{body}");
    // A schema that is not a schema is refused with its pointer.
    let (status, body) = put(
        &api,
        &tenant,
        "/v1/event-types/order.created/versions/2",
        json!({"schema": {"type": "objekt"}}),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert!(pointers(&body)[0].starts_with("/schema"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn breaking_versions_are_refused_unless_bridged_or_forced() {
    let Setup {
        _redis,
        _gateway,
        api,
        tenant,
    } = setup().await;
    register_v1(&api, &tenant).await;
    let check = |schema: Value| {
        let (api, tenant) = (api.clone(), tenant.clone());
        async move {
            let (status, body) = post(
                &api,
                &tenant,
                "/v1/event-types/order.created/versions/2/check",
                json!({ "schema": schema }),
            )
            .await;
            assert_eq!(status, 200, "{body}");
            body
        }
    };
    let edit = |f: &dyn Fn(&mut Value)| {
        let mut schema = order_v1_schema();
        f(&mut schema);
        schema
    };
    let breaking: Vec<(Value, &str, &str)> = vec![
        (
            edit(&|s| {
                s["properties"].as_object_mut().unwrap().remove("currency");
            }),
            "property_removed",
            "/properties/currency",
        ),
        (
            edit(&|s| s["properties"]["amount_cents"]["type"] = json!("string")),
            "type_changed",
            "/properties/amount_cents/type",
        ),
        (
            edit(&|s| {
                s["required"] = json!(["order_id", "customer_name", "amount_cents", "currency"])
            }),
            "required_added",
            "/required",
        ),
        (
            edit(&|s| s["properties"]["currency"]["enum"] = json!(["EUR"])),
            "enum_values_removed",
            "/properties/currency/enum",
        ),
        (
            edit(&|s| {
                s["properties"]["items"]["items"]["properties"]["qty"]["type"] = json!("number")
            }),
            "type_changed",
            "/properties/items/items/properties/qty/type",
        ),
        (
            edit(&|s| s["additionalProperties"] = json!(false)),
            "additional_properties_closed",
            "/additionalProperties",
        ),
    ];
    for (schema, kind, pointer) in breaking {
        let report = check(schema).await;
        assert_eq!(report["compatible"], false, "{kind}: {report}");
        assert_eq!(report["accepted"], false);
        assert_eq!(report["previous_version"], 1);
        let change = &report["changes"][0];
        assert_eq!(
            (change["kind"].as_str(), change["pointer"].as_str()),
            (Some(kind), Some(pointer)),
            "{report}"
        );
        assert_eq!(change["breaking"], true);
    }
    let additive: Vec<(Value, &str)> = vec![
        (
            edit(&|s| s["properties"]["note"] = json!({"type": "string"})),
            "property_added",
        ),
        (
            edit(&|s| s["properties"]["currency"]["enum"] = json!(["EUR", "GBP", "USD", "JPY"])),
            "enum_values_added",
        ),
        (
            edit(&|s| s["required"] = json!(["order_id", "amount_cents"])),
            "required_removed",
        ),
    ];
    for (schema, kind) in additive {
        let report = check(schema).await;
        assert_eq!(report["compatible"], true, "{kind}: {report}");
        assert_eq!(report["changes"][0]["kind"], kind, "{report}");
    }
    // The dry run stored nothing.
    let (_, listed) = api
        .get("/v1/event-types/order.created/versions", &tenant.key)
        .await;
    assert_eq!(listed["data"].as_array().unwrap().len(), 1);

    // A breaking v2 is refused with the report, then accepted when forced.
    let path = "/v1/event-types/order.created/versions/2";
    let (status, body) = put(&api, &tenant, path, json!({"schema": order_v2_schema()})).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["type"], "/problems/incompatible-schema");
    assert_eq!(body["compatibility"]["compatible"], false);
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("/properties/customer_name"),
        "{body}"
    );
    let (status, body) = put(
        &api,
        &tenant,
        path,
        json!({"schema": order_v2_schema(), "force": true}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["forced"], true);

    // A breaking v3 with transforms both ways needs no force.
    api.install_plugin(&tenant, "mapper", "field_mapper").await;
    for (from, to) in [(2, 3), (3, 2)] {
        let (status, body) = put(
            &api,
            &tenant,
            "/v1/event-types/order.created/transforms",
            json!({"from": from, "to": to, "plugin": "mapper", "config": {}}),
        )
        .await;
        assert_eq!(status, 200, "{body}");
    }
    let (status, body) = put(
        &api,
        &tenant,
        "/v1/event-types/order.created/versions/3",
        json!({"schema": order_v3_schema()}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["forced"], false);
    assert_eq!(body["compatibility"]["compatible"], false);
    // Versions come in order.
    let (status, _) = put(
        &api,
        &tenant,
        "/v1/event-types/order.created/versions/9",
        json!({"schema": order_v3_schema()}),
    )
    .await;
    assert_eq!(status, 409);
    // The plugin cannot be deleted while a transform uses it.
    let (status, body) = api
        .call(Method::DELETE, "/v1/plugins/mapper", &tenant.key, None)
        .await;
    assert_eq!(status, 409, "{body}");
}

/// Registers v1, v2 (v1→v2 by `schema-upgrade`) and v3 (v2⇄v3 by `field-mapper`).
async fn register_three_versions(api: &Api, tenant: &Tenant, v1_to_v2: Value) {
    register_v1(api, tenant).await;
    api.install_plugin(tenant, "upgrade", "schema_upgrade")
        .await;
    api.install_plugin(tenant, "mapper", "field_mapper").await;
    let transforms = [
        v1_to_v2,
        json!({"from": 2, "to": 3, "plugin": "mapper", "config": {
            "moves": [{"from": "/amount/value", "to": "/total/minor_units"}, {"from": "/amount/currency", "to": "/total/currency"}],
            "remove": ["/amount"]}}),
        json!({"from": 3, "to": 2, "plugin": "mapper", "config": {
            "moves": [{"from": "/total/minor_units", "to": "/amount/value"}, {"from": "/total/currency", "to": "/amount/currency"}],
            "remove": ["/total"]}}),
    ];
    for transform in transforms {
        put_answering(
            200,
            api,
            tenant,
            "/v1/event-types/order.created/transforms",
            transform,
        )
        .await;
    }
    put_answering(
        201,
        api,
        tenant,
        "/v1/event-types/order.created/versions/2",
        json!({"schema": order_v2_schema(), "force": true}),
    )
    .await;
    put_answering(
        201,
        api,
        tenant,
        "/v1/event-types/order.created/versions/3",
        json!({"schema": order_v3_schema()}),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_v1_event_reaches_v1_v2_and_v3_endpoints_each_at_its_version() {
    let Setup {
        _redis,
        _gateway,
        api,
        tenant,
    } = setup().await;
    register_three_versions(
        &api,
        &tenant,
        json!({"from": 1, "to": 2, "plugin": "upgrade", "config": {"default_currency": "EUR"}}),
    )
    .await;
    let receivers = [
        Receiver::start().await,
        Receiver::start().await,
        Receiver::start().await,
    ];
    for (version, receiver) in (1..=3).zip(&receivers) {
        api.create_endpoint(&tenant, json!({"url": receiver.url("/"), "event_types": [{"type": "order.created", "version": version}]})).await;
    }
    api.post_event(
        &tenant,
        json!({"type": "order.created", "version": 1, "data": order_v1()}),
    )
    .await;

    let bodies: Vec<Value> = first_bodies(&receivers).await;
    assert_eq!(bodies[0]["version"], 1);
    assert_eq!(bodies[0]["data"], order_v1());
    assert_eq!(bodies[1]["version"], 2);
    assert_eq!(
        bodies[1]["data"],
        json!({"order_id": "ord_1", "customer": {"first_name": "Ada", "last_name": "Lovelace"}, "amount": {"value": 1250, "currency": "GBP"}})
    );
    assert_eq!(bodies[2]["version"], 3);
    assert_eq!(
        bodies[2]["data"],
        json!({"order_id": "ord_1", "customer": {"first_name": "Ada", "last_name": "Lovelace"}, "total": {"minor_units": 1250, "currency": "GBP"}})
    );
    for body in &bodies {
        assert_eq!(body["type"], "order.created");
    }

    // A subscription at a version that does not exist is refused.
    let (status, body) = post(&api, &tenant, "/v1/endpoints", json!({"url": receivers[0].url("/"), "event_types": [{"type": "order.created", "version": 7}]})).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(pointers(&body), vec!["/event_types/0/version"]);
}

async fn first_bodies(receivers: &[Receiver]) -> Vec<Value> {
    let mut bodies = Vec::new();
    for receiver in receivers {
        bodies.push(receiver.wait_for(1, WAIT).await[0].json());
    }
    bodies
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transform_output_failing_the_target_schema_follows_on_plugin_error() {
    let Setup {
        _redis,
        _gateway,
        api,
        tenant,
    } = setup().await;
    // A broken v1→v2 transform: it renames nothing, so v2's required fields are missing.
    register_three_versions(
        &api,
        &tenant,
        json!({"from": 1, "to": 2, "plugin": "mapper", "config": {"remove": ["/customer_name"]}}),
    )
    .await;
    let (dead, dropped, skipped) = (
        Receiver::start().await,
        Receiver::start().await,
        Receiver::start().await,
    );
    let mut ids = Vec::new();
    for (receiver, policy) in [
        (&dead, "dead_letter"),
        (&dropped, "drop"),
        (&skipped, "skip"),
    ] {
        let ep = api.create_endpoint(&tenant, json!({"url": receiver.url("/"), "on_plugin_error": policy, "event_types": [{"type": "order.created", "version": 3}]})).await;
        ids.push(ep.id);
    }
    let event = api
        .post_event(
            &tenant,
            json!({"type": "order.created", "data": order_v1(), "version": 1}),
        )
        .await;

    let statuses: Value = wait_until("every endpoint settled", WAIT, || async {
        let (_, e) = api.get(&format!("/v1/events/{event}"), &tenant.key).await;
        let deliveries = e["deliveries"].as_array().cloned().unwrap_or_default();
        (deliveries.len() == 3 && deliveries.iter().all(|d| d["status"] != "pending")).then_some(e)
    })
    .await;
    let status_of = |id: &str| {
        statuses["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["endpoint_id"] == id)
            .cloned()
            .unwrap()
    };
    let (d, r, s) = (status_of(&ids[0]), status_of(&ids[1]), status_of(&ids[2]));
    assert_eq!(d["status"], "dead_lettered", "{d}");
    let error = d["last_error"].as_str().unwrap();
    assert!(error.contains("does not match order.created v2"), "{error}");
    assert!(error.contains("/data: "), "{error}");
    assert!(
        error.contains("\"customer\" is a required property"),
        "{error}"
    );
    assert_eq!(r["status"], "dropped", "{r}");
    assert!(
        r["last_error"].as_str().unwrap().contains("does not match"),
        "{r}"
    );
    assert_eq!(s["status"], "delivered", "{s}");

    // The dead letter carries the validation errors.
    let (_, letters) = api.get("/v1/dead-letters", &tenant.key).await;
    assert_eq!(letters["data"].as_array().unwrap().len(), 1, "{letters}");
    assert!(
        letters["data"][0]["error"]
            .as_str()
            .unwrap()
            .contains("is a required property"),
        "{letters}"
    );
    // `skip` delivers the event at its own version.
    let body = skipped.wait_for(1, WAIT).await[0].json();
    assert_eq!(body["version"], 1);
    assert_eq!(body["data"], order_v1());
    assert_eq!(dead.count() + dropped.count(), 0);
}
