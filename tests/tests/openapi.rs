//! The OpenAPI document at `/openapi.json`: an OpenAPI 3.1 document whose
//! every operation is named, says how it succeeds and how it fails (as
//! problem+json), and whose request bodies point at schemas it holds; and
//! a true one: the running gateway serves every operation it lists, and
//! nothing else at those paths.

use gateway_tests::{Api, Gateway, OPERATOR_TOKEN, Redis};
use reqwest::Method;
use serde_json::{Map, Value};

const PROBLEM_JSON: &str = "application/problem+json";
const METHODS: [&str; 5] = ["get", "put", "post", "delete", "patch"];

async fn document(api: &Api) -> Value {
    let response = api.http.get(api.url("/openapi.json")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    response.json().await.expect("the document is JSON")
}

/// What `value` stands for: the object its `$ref` points at inside the
/// document (followed to the end), or itself.
fn resolve<'a>(spec: &'a Value, value: &'a Value) -> Result<&'a Value, String> {
    let mut value = value;
    for _ in 0..16 {
        let Some(reference) = value.get("$ref") else {
            return Ok(value);
        };
        let reference = reference.as_str().ok_or("a `$ref` that is not a string")?;
        let pointer = reference
            .strip_prefix('#')
            .ok_or_else(|| format!("`{reference}` is not local"))?;
        value = spec
            .pointer(pointer)
            .ok_or_else(|| format!("`{reference}` points at nothing"))?;
    }
    Err("a `$ref` cycle".into())
}

/// Every operation as (path, method, operation object).
fn operations(spec: &Value) -> Vec<(&str, Method, &Map<String, Value>)> {
    let paths = spec["paths"].as_object().expect("paths");
    let mut found = Vec::new();
    for (path, item) in paths {
        for method in METHODS {
            if let Some(operation) = item.get(method) {
                let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
                found.push((
                    path.as_str(),
                    method,
                    operation.as_object().expect("an object"),
                ));
            }
        }
    }
    found
}

/// `/v1/endpoints/{id}/secret` → `/v1/endpoints/dummy/secret`.
fn concrete(path: &str) -> String {
    path.split('/')
        .map(|segment| match segment.starts_with('{') {
            true => "dummy",
            false => segment,
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// The credential an operation asks for, if any.
fn credential<'a>(operation: &Map<String, Value>, tenant_key: &'a str) -> Option<&'a str> {
    let requirement = operation
        .get("security")?
        .as_array()?
        .first()?
        .as_object()?;
    let scheme = requirement.keys().next()?;
    match scheme.as_str() {
        "operator_token" => Some(OPERATOR_TOKEN),
        // A tenant's own key is also good on the producer routes.
        "tenant_api_key" | "producer_key" => Some(tenant_key),
        other => panic!("unknown security scheme `{other}`"),
    }
}

/// Status and body (`null` when not JSON).
async fn call(api: &Api, method: Method, path: &str, token: Option<&str>) -> (u16, Value) {
    let mut request = api.http.request(method, api.url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("the gateway answers");
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_is_openapi_3_1_and_every_operation_is_complete() {
    let redis = Redis::ephemeral();
    let gateway = Gateway::spawn(&redis);
    let spec = document(&gateway.api()).await;

    let version = spec["openapi"].as_str().expect("an `openapi` version");
    assert!(version.starts_with("3.1."), "version {version}");

    let operations = operations(&spec);
    assert!(
        operations
            .iter()
            .any(|(path, method, _)| *path == "/openapi.json" && *method == Method::GET),
        "the document lists itself"
    );
    for (path, method, operation) in &operations {
        let name = format!("{method} {path}");
        assert!(
            operation
                .get("operationId")
                .and_then(Value::as_str)
                .is_some_and(|id| !id.is_empty()),
            "{name} has no operationId"
        );
        let responses = operation["responses"].as_object().expect("responses");
        assert!(
            responses.keys().any(|status| status.starts_with('2')),
            "{name} has no 2xx response"
        );
        let mut problems = 0;
        for (status, response) in responses {
            let response = resolve(&spec, response)
                .unwrap_or_else(|e| panic!("{name} {status}: the response does not resolve: {e}"));
            let problem =
                response.pointer(&format!("/content/{}", PROBLEM_JSON.replace('/', "~1")));
            let Some(problem) = problem.filter(|_| status.starts_with(['4', '5'])) else {
                continue;
            };
            problems += 1;
            let schema = problem.get("schema").map(|schema| resolve(&spec, schema));
            assert!(
                matches!(schema, Some(Ok(_))),
                "{name} {status}: the problem schema does not resolve: {schema:?}"
            );
        }
        assert!(problems > 0, "{name} has no problem+json error");
        let Some(body) = operation.get("requestBody") else {
            continue;
        };
        let body = resolve(&spec, body)
            .unwrap_or_else(|e| panic!("{name}: the request body does not resolve: {e}"));
        for (content_type, media) in body["content"].as_object().into_iter().flatten() {
            if let Some(Err(e)) = media.get("schema").map(|schema| resolve(&spec, schema)) {
                panic!("{name} {content_type}: the body's schema does not resolve: {e}");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_operation_is_served_and_nothing_else_at_its_path() {
    let redis = Redis::ephemeral();
    let gateway = Gateway::spawn(&redis);
    let api = gateway.api();
    let tenant = api.create_tenant("acme").await;
    let spec = document(&api).await;

    let operations = operations(&spec);
    let mut paths: Vec<&str> = operations.iter().map(|(path, _, _)| *path).collect();
    paths.dedup();
    for path in paths {
        let url = concrete(path);
        let documented: Vec<_> = operations
            .iter()
            .filter(|(p, _, _)| *p == path)
            .map(|(_, method, operation)| (method.clone(), *operation))
            .collect();
        for (method, operation) in &documented {
            let name = format!("{method} {path}");
            let token = credential(operation, &tenant.key);
            let (status, body) = call(&api, method.clone(), &url, token).await;
            let fallback = status == 404 && body["detail"] == "route not found";
            assert!(
                !fallback && status != 405,
                "{name} is not served: {status} {body}"
            );
            if token.is_some() {
                assert_ne!(
                    status, 401,
                    "{name} does not take its documented credential"
                );
            }
        }
        for method in [
            Method::GET,
            Method::PUT,
            Method::POST,
            Method::DELETE,
            Method::PATCH,
        ] {
            if documented.iter().any(|(m, _)| *m == method) {
                continue;
            }
            let (status, body) = call(&api, method.clone(), &url, Some(&tenant.key)).await;
            assert_eq!(
                status, 405,
                "{method} {path} is served undocumented: {body}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_path_is_answered_with_a_documented_status() {
    let redis = Redis::ephemeral();
    let gateway = Gateway::spawn(&redis);
    let api = gateway.api();
    let tenant = api.create_tenant("acme").await;
    let spec = document(&api).await;
    let operations = operations(&spec);
    // A type name the validator refuses, in every `{type}` route read by GET.
    let malformed = "no%20spaces%20allowed";
    let mut checked = 0;
    for (path, method, operation) in &operations {
        if *method != Method::GET || !path.contains("{type}") {
            continue;
        }
        let url = concrete(path).replacen("dummy", malformed, 1);
        let url = url.replace("dummy", "1");
        let (status, body) = call(&api, Method::GET, &url, Some(&tenant.key)).await;
        let documented = operation["responses"]
            .as_object()
            .expect("responses")
            .contains_key(&status.to_string());
        assert!(
            documented,
            "GET {path} answers {status}, which it does not document: {body}"
        );
        checked += 1;
    }
    assert!(checked >= 4, "only {checked} `{{type}}` routes were found");
}
