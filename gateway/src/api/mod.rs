//! The HTTP API: `router()` and the pieces every handler shares — auth
//! extractors (`auth`), a JSON extractor that answers problem+json and
//! pagination (`extract`). The
//! routes are registered from the handlers' `#[utoipa::path]` annotations,
//! which also make the OpenAPI document served at `/openapi.json` (`openapi`).

mod admin;
mod audit;
mod auth;
mod consumers;
mod dead_letters;
mod endpoints;
mod event_types;
mod events;
mod extract;
mod health;
mod keys;
mod openapi;
mod partitions;
mod plugins;
mod producer_keys;
pub mod validate;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::{ConnectInfo, DefaultBodyLimit, Request, State};
use axum::http::Extensions;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Router};
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;

pub use auth::{Access, Operator, PollCaller, Producer, scope};
/// The ingest body (`POST /v1/events`) and its checks, for the fuzz targets
/// (`fuzz/`) to run the same parse and validation the API does.
pub use events::EventIn;
pub use events::prepare::{Prepared, prepare};
pub use extract::{Json, PageQuery, Query, parse_json};

use crate::error::ApiError;
use crate::state::AppState;

/// Every route, and `/openapi.json` describing them. The middleware stack,
/// outermost first:
/// 1. tracing of each request;
/// 2. a 30 s timeout for the whole request;
/// 3. the body size limit (`ingest.max_body_bytes`, and for plugin uploads
///    `plugins.max_upload_bytes`; larger bodies get 413);
/// 4. on the unauthenticated routes, the per-address rate (`limits.public_*`;
///    failed authentication is counted against the same bucket, in the
///    extractors). Tenants' ingest rate and backlog are checked by the ingest
///    handlers, once the body is valid (`crate::admission::ingest`).
pub fn router(state: AppState) -> Router {
    let body_limit = state.config.ingest.max_body_bytes;
    let upload_limit = state.config.plugins.max_upload_bytes;
    let per_address = axum::middleware::from_fn_with_state(state.clone(), per_address);
    let (documented, api) =
        routes(upload_limit, |public| public.route_layer(per_address)).split_for_parts();
    documented
        // The document, built from the routes, for `openapi::document`.
        .layer(Extension(openapi::Document::new(&api)))
        .fallback(|| async { ApiError::NotFound("route") })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(axum::extract::DefaultBodyLimit::max(body_limit))
        .layer(axum::middleware::from_fn(deadline))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}

/// The documented routes, with the OpenAPI document built from them:
/// `routes!` registers each handler at the method and path of its
/// `#[utoipa::path]` and adds that operation to the document, so a route
/// served is a route documented. `limit_public` wraps the unauthenticated
/// group (in `router()`, with the per-address limit).
///
/// To add a route: give its handler a `#[utoipa::path]` with the method, the
/// path, a unique `operation_id`, a `tag`, the `security` (`tenant_api_key`
/// or `operator_token`, none for public routes) and every response: its
/// successes, its own errors as `body = Problem, content_type = PROBLEM_JSON`,
/// and the shared sets of `openapi` (`TenantErrors`, `BodyErrors`, ...).
/// Then register it below with `.routes(routes!(module::handler))`, one
/// `routes!` per path (it registers all its handlers at each of their paths),
/// and add it to the list of the test `only_documented_routes_are_served`.
/// Never register one with axum's own `route`: that test refuses it.
fn routes(
    upload_limit: usize,
    limit_public: impl FnOnce(OpenApiRouter<AppState>) -> OpenApiRouter<AppState>,
) -> OpenApiRouter<AppState> {
    let public = OpenApiRouter::default()
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(health::metrics))
        .routes(routes!(openapi::document));
    OpenApiRouter::with_openapi(openapi::frame())
        .merge(limit_public(public))
        .routes(routes!(admin::create_tenant, admin::list_tenants))
        .routes(routes!(admin::get_tenant))
        .routes(routes!(admin::get_limits, admin::put_limits))
        .routes(routes!(partitions::show))
        .routes(routes!(producer_keys::create, producer_keys::list))
        .routes(routes!(producer_keys::revoke))
        .routes(routes!(audit::list_all))
        .routes(routes!(audit::list))
        .routes(routes!(keys::create, keys::list))
        .routes(routes!(keys::revoke))
        .routes(routes!(consumers::create, consumers::list))
        .routes(routes!(
            consumers::get_one,
            consumers::update,
            consumers::delete
        ))
        .routes(routes!(consumers::portal_token))
        .routes(routes!(events::ingest))
        .routes(routes!(events::batch::ingest_batch))
        .routes(routes!(events::ingest_for_tenant))
        .routes(routes!(events::batch::ingest_batch_for_tenant))
        .routes(routes!(events::get_event))
        .routes(routes!(endpoints::create, endpoints::list))
        .routes(routes!(
            endpoints::get_one,
            endpoints::update,
            endpoints::delete
        ))
        .routes(routes!(endpoints::secrets::secret))
        .routes(routes!(endpoints::secrets::rotate_secret))
        .routes(routes!(endpoints::verify::verify))
        .routes(routes!(endpoints::verify::put_policy))
        .routes(routes!(endpoints::quarantine::quarantine))
        .routes(routes!(endpoints::quarantine::release))
        .routes(routes!(endpoints::poll::poll))
        .routes(routes!(endpoints::poll::ack))
        .routes(routes!(endpoints::poll::create_key))
        .routes(routes!(endpoints::attempts))
        .routes(routes!(endpoints::replays::replay))
        .routes(routes!(endpoints::replays::get_replay))
        .routes(routes!(dead_letters::list))
        .routes(routes!(dead_letters::redeliver))
        .routes(routes!(plugins::list))
        .routes(routes!(plugins::upload).layer(DefaultBodyLimit::max(upload_limit)))
        .routes(routes!(plugins::get_one, plugins::delete))
        .routes(routes!(plugins::dry_run::invoke))
        .routes(routes!(event_types::list))
        .routes(routes!(event_types::get_type, event_types::put_type))
        .routes(routes!(event_types::versions::list_versions))
        .routes(routes!(
            event_types::versions::get_version,
            event_types::versions::put_version
        ))
        .routes(routes!(event_types::versions::check_version))
        .routes(routes!(
            event_types::transforms::list_transforms,
            event_types::transforms::put_transform
        ))
        .routes(routes!(
            event_types::get_settings,
            event_types::put_settings
        ))
}

/// How long a request may take, body included, before it is answered 408.
pub const REQUEST_DEADLINE: std::time::Duration = std::time::Duration::from_secs(30);

/// Answers 408 problem+json when a request runs past [`REQUEST_DEADLINE`].
/// The handler's future is dropped; each change it makes is one Redis call
/// or script, so it happened whole or not at all.
async fn deadline(request: Request, next: Next) -> Response {
    within(REQUEST_DEADLINE, next.run(request)).await
}

/// The handler's response, or 408 problem+json once `limit` has passed.
async fn within(limit: std::time::Duration, handler: impl Future<Output = Response>) -> Response {
    match tokio::time::timeout(limit, handler).await {
        Ok(response) => response,
        Err(_) => ApiError::Timeout(limit).into_response(),
    }
}

/// Limits a route per client address (`crate::admission::ingest`).
async fn per_address(State(state): State<AppState>, request: Request, next: Next) -> Response {
    match state.edge.check_address(client_ip(request.extensions())) {
        Ok(()) => next.run(request).await,
        Err(refused) => refused.into_response(),
    }
}

/// The peer's address (unspecified when served without connect info, as in
/// handler tests).
fn client_ip(extensions: &Extensions) -> IpAddr {
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |info| info.0.ip())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use axum::http::StatusCode;
    use axum::http::header::CONTENT_TYPE;
    use tower::ServiceExt;

    use super::*;

    #[tokio::test]
    async fn a_request_past_the_deadline_is_408_problem_json() {
        let limit = std::time::Duration::from_millis(20);
        let slow = axum::routing::get(move || async move {
            tokio::time::sleep(limit * 50).await;
            "late"
        });
        let app = Router::new()
            .route_service("/slow", slow)
            .layer(axum::middleware::from_fn(
                move |request: Request, next: Next| within(limit, next.run(request)),
            ));
        let request = Request::builder()
            .uri("/slow")
            .body(axum::body::Body::empty())
            .unwrap();
        let response = app.oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::REQUEST_TIMEOUT);
        assert_eq!(response.headers()[CONTENT_TYPE], crate::error::PROBLEM_JSON);
    }

    /// The document as `router()` builds it (which needs no state).
    fn document() -> serde_json::Value {
        let api = routes(1, |public| public).into_openapi();
        serde_json::to_value(api).expect("the document serialises")
    }

    /// Every operation of the document: method, path and the operation.
    fn operations(api: &serde_json::Value) -> Vec<(String, String, &serde_json::Value)> {
        let methods = [
            "get", "put", "post", "delete", "options", "head", "patch", "trace",
        ];
        let paths = api["paths"].as_object().expect("paths");
        paths
            .iter()
            .flat_map(|(path, item)| {
                methods.iter().filter_map(move |method| {
                    let operation = item.get(*method)?;
                    Some((method.to_ascii_uppercase(), path.clone(), operation))
                })
            })
            .collect()
    }

    #[test]
    fn only_documented_routes_are_served() {
        let expected = [
            ("GET", "/healthz"),
            ("GET", "/readyz"),
            ("GET", "/metrics"),
            ("GET", "/openapi.json"),
            ("POST", "/v1/admin/tenants"),
            ("GET", "/v1/admin/tenants"),
            ("GET", "/v1/admin/tenants/{id}"),
            ("GET", "/v1/admin/tenants/{id}/limits"),
            ("PUT", "/v1/admin/tenants/{id}/limits"),
            ("POST", "/v1/admin/producer-keys"),
            ("GET", "/v1/admin/producer-keys"),
            ("DELETE", "/v1/admin/producer-keys/{id}"),
            ("GET", "/v1/admin/audit"),
            ("GET", "/v1/admin/partitions"),
            ("GET", "/v1/audit"),
            ("POST", "/v1/keys"),
            ("GET", "/v1/keys"),
            ("DELETE", "/v1/keys/{id}"),
            ("POST", "/v1/consumers"),
            ("GET", "/v1/consumers"),
            ("GET", "/v1/consumers/{id}"),
            ("PATCH", "/v1/consumers/{id}"),
            ("DELETE", "/v1/consumers/{id}"),
            ("POST", "/v1/consumers/{id}/portal-token"),
            ("POST", "/v1/events"),
            ("POST", "/v1/events/batch"),
            ("POST", "/v1/tenants/{tenant}/events"),
            ("POST", "/v1/tenants/{tenant}/events/batch"),
            ("GET", "/v1/events/{id}"),
            ("POST", "/v1/endpoints"),
            ("GET", "/v1/endpoints"),
            ("GET", "/v1/endpoints/{id}"),
            ("PATCH", "/v1/endpoints/{id}"),
            ("DELETE", "/v1/endpoints/{id}"),
            ("GET", "/v1/endpoints/{id}/secret"),
            ("POST", "/v1/endpoints/{id}/secret/rotate"),
            ("POST", "/v1/endpoints/{id}/verify"),
            ("POST", "/v1/endpoints/{id}/quarantine"),
            ("POST", "/v1/endpoints/{id}/release"),
            ("GET", "/v1/endpoints/{id}/poll"),
            ("POST", "/v1/endpoints/{id}/poll/ack"),
            ("POST", "/v1/endpoints/{id}/poll/keys"),
            (
                "PUT",
                "/v1/admin/tenants/{tenant}/endpoints/{id}/verification",
            ),
            ("GET", "/v1/endpoints/{id}/attempts"),
            ("POST", "/v1/endpoints/{id}/replay"),
            ("GET", "/v1/replays/{id}"),
            ("GET", "/v1/dead-letters"),
            ("POST", "/v1/dead-letters/{id}/redeliver"),
            ("GET", "/v1/plugins"),
            ("PUT", "/v1/plugins/{name}"),
            ("GET", "/v1/plugins/{name}"),
            ("DELETE", "/v1/plugins/{name}"),
            ("POST", "/v1/plugins/{name}/invoke"),
            ("GET", "/v1/event-types"),
            ("GET", "/v1/event-types/{type}"),
            ("PUT", "/v1/event-types/{type}"),
            ("GET", "/v1/event-types/{type}/versions"),
            ("GET", "/v1/event-types/{type}/versions/{version}"),
            ("PUT", "/v1/event-types/{type}/versions/{version}"),
            ("POST", "/v1/event-types/{type}/versions/{version}/check"),
            ("GET", "/v1/event-types/{type}/transforms"),
            ("PUT", "/v1/event-types/{type}/transforms"),
            ("GET", "/v1/settings"),
            ("PUT", "/v1/settings"),
        ];
        let expected: BTreeSet<(String, String)> = expected
            .iter()
            .map(|(method, path)| (method.to_string(), path.to_string()))
            .collect();
        let api = document();
        let documented: BTreeSet<(String, String)> = operations(&api)
            .into_iter()
            .map(|(method, path, _)| (method, path))
            .collect();
        assert_eq!(documented, expected);

        // A route registered past `routes!` would be served undocumented.
        let source = include_str!("mod.rs");
        let router = source
            .split("#[cfg(test)]")
            .next()
            .expect("the router's code");
        let bare: Vec<String> = router
            .lines()
            .enumerate()
            .filter(|(_, line)| {
                [".route(", ".route_service(", ".nest_service("]
                    .iter()
                    .any(|call| line.contains(call))
            })
            .map(|(at, line)| format!("api/mod.rs:{}: {}", at + 1, line.trim()))
            .collect();
        assert!(
            bare.is_empty(),
            "routes registered without `routes!` are missing from the OpenAPI document; give \
             their handlers a #[utoipa::path] and register them in `routes()`:\n{}",
            bare.join("\n")
        );
    }

    #[test]
    fn every_operation_has_an_id_a_success_its_errors_and_its_credential() {
        let api = document();
        let schemes = api["components"]["securitySchemes"]
            .as_object()
            .expect("security schemes");
        assert!(schemes.contains_key(openapi::TENANT_API_KEY));
        assert!(schemes.contains_key(openapi::OPERATOR_TOKEN));
        let problem = format!(
            "#/components/schemas/{}",
            <crate::error::Problem as utoipa::ToSchema>::name()
        );
        let mut ids = BTreeSet::new();
        for (method, path, operation) in operations(&api) {
            let name = format!("{method} {path}");
            let id = operation["operationId"].as_str().expect(&name);
            assert!(ids.insert(id.to_string()), "{name}: `{id}` is not unique");
            assert!(operation["tags"][0].is_string(), "{name} has no tag");
            let parameters: Vec<(&str, &str)> = operation["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| {
                    (
                        p["in"].as_str().expect(&name),
                        p["name"].as_str().expect(&name),
                    )
                })
                .collect();
            let unique: BTreeSet<_> = parameters.iter().collect();
            assert_eq!(unique.len(), parameters.len(), "{name} repeats a parameter");
            for segment in path.split('/') {
                if let Some(param) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                    assert!(
                        parameters.contains(&("path", param)),
                        "{name} does not declare `{param}`"
                    );
                }
            }
            let responses = operation["responses"].as_object().expect(&name);
            assert!(
                responses.keys().any(|status| status.starts_with('2')),
                "{name} has no success"
            );
            assert!(
                responses.keys().any(|status| status == "429"),
                "{name}: every route is rate limited, per address or per tenant"
            );
            for (status, response) in responses {
                // Not ready is told in the readiness body itself.
                let readiness = name == "GET /readyz" && status == "503";
                if status.starts_with('2') || readiness {
                    continue;
                }
                assert_eq!(
                    response["content"][crate::error::PROBLEM_JSON]["schema"]["$ref"],
                    problem.as_str(),
                    "{name} {status} is not a problem"
                );
            }
            let credentials: Vec<&String> = operation["security"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|requirement| requirement.as_object().expect(&name).keys())
                .collect();
            if path.starts_with("/v1/") {
                assert!(!credentials.is_empty(), "{name} takes no credential");
                assert!(responses.contains_key("401"), "{name} never answers 401");
            } else {
                assert!(credentials.is_empty(), "{name} is public");
            }
            for credential in credentials {
                assert!(
                    schemes.contains_key(credential),
                    "{name}: no `{credential}`"
                );
            }
            for requirement in operation["security"].as_array().into_iter().flatten() {
                if let Some(scopes) = requirement.get(openapi::TENANT_API_KEY) {
                    let scopes = scopes.as_array().expect(&name);
                    assert_eq!(scopes.len(), 1, "{name} must name the one scope it needs");
                    let scope = scopes[0].as_str().expect(&name);
                    assert!(
                        crate::model::Scope::parse(scope).is_some(),
                        "{name}: `{scope}` is no scope"
                    );
                }
            }
        }
    }

    #[test]
    fn every_reference_resolves() {
        fn references<'a>(value: &'a serde_json::Value, found: &mut Vec<&'a str>) {
            match value {
                serde_json::Value::Object(map) => {
                    if let Some(target) = map.get("$ref").and_then(|r| r.as_str()) {
                        found.push(target);
                    }
                    map.values().for_each(|v| references(v, found));
                }
                serde_json::Value::Array(items) => items.iter().for_each(|v| references(v, found)),
                _ => {}
            }
        }
        let api = document();
        let mut found = Vec::new();
        references(&api, &mut found);
        assert!(!found.is_empty());
        for target in found {
            let pointer = target
                .strip_prefix('#')
                .expect("a reference within the document");
            assert!(
                api.pointer(pointer).is_some(),
                "`{target}` resolves to nothing"
            );
        }
    }
}
