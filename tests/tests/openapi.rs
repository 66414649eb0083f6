//! The OpenAPI document at `/openapi.json`: an OpenAPI 3.1 document whose
//! every operation is named, says how it succeeds and how it fails (as
//! problem+json), and whose request bodies point at schemas it holds; and
//! a true one: the running gateway serves every operation it lists, and
//! nothing else at those paths.

use gateway_tests::{Api, Gateway, OPERATOR_TOKEN, Redis};
use oas3::Spec;
use oas3::spec::Operation;
use reqwest::Method;
use serde_json::Value;

const PROBLEM_JSON: &str = "application/problem+json";

async fn document(api: &Api) -> Spec {
    let response = api.http.get(api.url("/openapi.json")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    let text = response.text().await.unwrap();
    oas3::from_json(text).expect("the document is an OpenAPI 3.1 document")
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
fn credential<'a>(operation: &Operation, tenant_key: &'a str) -> Option<&'a str> {
    let scheme = operation.security.first()?.0.keys().next()?;
    match scheme.as_str() {
        "operator_token" => Some(OPERATOR_TOKEN),
        "tenant_api_key" => Some(tenant_key),
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

    let version = spec.validate_version().expect("a supported version");
    assert_eq!((version.major, version.minor), (3, 1));

    let operations: Vec<_> = spec.operations().collect();
    assert!(
        operations
            .iter()
            .any(|(path, method, _)| path == "/openapi.json" && *method == Method::GET),
        "the document lists itself"
    );
    for (path, method, operation) in &operations {
        let name = format!("{method} {path}");
        assert!(
            operation
                .operation_id
                .as_deref()
                .is_some_and(|id| !id.is_empty()),
            "{name} has no operationId"
        );
        let responses = operation.responses(&spec);
        assert!(
            responses.keys().any(|status| status.starts_with('2')),
            "{name} has no 2xx response"
        );
        let problems: Vec<_> = responses
            .iter()
            .filter(|(status, _)| status.starts_with('4') || status.starts_with('5'))
            .filter_map(|(status, response)| Some((status, response.content.get(PROBLEM_JSON)?)))
            .collect();
        assert!(!problems.is_empty(), "{name} has no problem+json error");
        for (status, problem) in problems {
            let schema = problem.schema(&spec);
            assert!(
                matches!(schema, Ok(Some(_))),
                "{name} {status}: the problem schema does not resolve: {schema:?}"
            );
        }
        let body = operation.request_body(&spec).unwrap_or_else(|e| {
            panic!("{name}: the request body does not resolve: {e}");
        });
        for (content_type, media) in body.iter().flat_map(|body| &body.content) {
            if let Err(e) = media.schema(&spec) {
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

    let paths = spec.paths.as_ref().expect("paths");
    for (path, item) in paths.iter() {
        let url = concrete(path);
        let documented: Vec<(Method, &Operation)> = item.methods().into_iter().collect();
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
