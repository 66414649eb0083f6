//! The HTTP API: `router()` and the pieces every handler shares — auth
//! extractors, a JSON extractor that answers problem+json, pagination.

mod admin;
mod dead_letters;
mod endpoints;
mod events;
mod health;
mod plugins;
pub mod validate;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::Router;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::request::Parts;
use axum::http::{Extensions, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use crate::error::{ApiError, FieldError};
use crate::keys;
use crate::state::AppState;

/// Every route. The middleware stack, outermost first:
/// 1. tracing of each request;
/// 2. a 30 s timeout for the whole request;
/// 3. the body size limit (`ingest.max_body_bytes`, and for plugin uploads
///    `plugins.max_upload_bytes`; larger bodies get 413);
/// 4. on the unauthenticated routes, the per-address rate (`limits.public_*`;
///    failed authentication is counted against the same bucket, in the
///    extractors). Tenants' ingest rate and backlog are checked by the ingest
///    handlers, once the body is valid (`crate::edge`).
pub fn router(state: AppState) -> Router {
    let body_limit = state.config.ingest.max_body_bytes;
    let upload_limit = state.config.plugins.max_upload_bytes;
    let public = Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            per_address,
        ));
    Router::new()
        .merge(public)
        .route(
            "/v1/admin/tenants",
            post(admin::create_tenant).get(admin::list_tenants),
        )
        .route("/v1/admin/tenants/{id}", get(admin::get_tenant))
        .route(
            "/v1/admin/tenants/{id}/limits",
            get(admin::get_limits).put(admin::put_limits),
        )
        .route("/v1/events", post(events::ingest))
        .route("/v1/events/batch", post(events::ingest_batch))
        .route("/v1/events/{id}", get(events::get_event))
        .route(
            "/v1/endpoints",
            post(endpoints::create).get(endpoints::list),
        )
        .route(
            "/v1/endpoints/{id}",
            get(endpoints::get_one)
                .patch(endpoints::update)
                .delete(endpoints::delete),
        )
        .route("/v1/endpoints/{id}/secret", get(endpoints::secret))
        .route(
            "/v1/endpoints/{id}/secret/rotate",
            post(endpoints::rotate_secret),
        )
        .route("/v1/endpoints/{id}/attempts", get(endpoints::attempts))
        .route("/v1/endpoints/{id}/replay", post(endpoints::replay))
        .route("/v1/dead-letters", get(dead_letters::list))
        .route(
            "/v1/dead-letters/{id}/redeliver",
            post(dead_letters::redeliver),
        )
        .route("/v1/plugins", get(plugins::list))
        .route(
            "/v1/plugins/{name}",
            put(plugins::upload)
                .layer(axum::extract::DefaultBodyLimit::max(upload_limit))
                .get(plugins::get_one)
                .delete(plugins::delete),
        )
        .route("/v1/plugins/{name}/invoke", post(plugins::invoke))
        .fallback(|| async { ApiError::NotFound("route") })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(axum::extract::DefaultBodyLimit::max(body_limit))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            std::time::Duration::from_secs(30),
        ))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}

/// Limits a route per client address (`crate::edge`).
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

/// A failed authentication, counted against the caller's address: 401, or
/// 429 once the address has failed too often.
fn unauthorized(parts: &Parts, state: &AppState) -> ApiError {
    match state.edge.check_address(client_ip(&parts.extensions)) {
        Ok(()) => ApiError::Unauthorized,
        Err(refused) => refused,
    }
}

fn bearer(parts: &Parts) -> Option<&str> {
    parts
        .headers
        .get(AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

/// Compares two secrets in time independent of where they differ.
fn same_secret(a: &str, b: &str) -> bool {
    let (a, b) = (Sha256::digest(a.as_bytes()), Sha256::digest(b.as_bytes()));
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

/// The caller holds the operator token.
pub struct Operator;

impl FromRequestParts<AppState> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        match bearer(parts) {
            Some(token)
                if !state.config.operator_token.is_empty()
                    && same_secret(token, &state.config.operator_token) =>
            {
                Ok(Operator)
            }
            _ => Err(unauthorized(parts, state)),
        }
    }
}

/// The caller's tenant, from its API key.
pub struct TenantId(pub String);

impl FromRequestParts<AppState> for TenantId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Some(key) = bearer(parts) else {
            return Err(unauthorized(parts, state));
        };
        let hash = keys::sha256_hex(key.as_bytes());
        if let Some(tenant) = state.keys.get(&hash) {
            return Ok(TenantId(tenant));
        }
        let Some(tenant) = state.store.tenant_for_key(key).await? else {
            return Err(unauthorized(parts, state));
        };
        state.keys.put(hash, tenant.clone());
        Ok(TenantId(tenant))
    }
}

/// A JSON body: 415 without a JSON content type, 413 when too large, 400
/// when malformed, 422 (with the JSON pointer) when a field is missing or wrong.
pub struct Json<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let content_type = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let essence = content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if essence != "application/json" && !essence.ends_with("+json") {
            return Err(ApiError::UnsupportedMediaType(format!(
                "expected Content-Type: application/json, got `{content_type}`"
            )));
        }
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::PayloadTooLarge(state.config.ingest.max_body_bytes)
                } else {
                    ApiError::BadRequest(format!("could not read the request body: {rejection}"))
                }
            })?;
        parse_json(&bytes).map(Json)
    }
}

/// Parses JSON, telling malformed input (400) from a wrong shape (422 with a pointer).
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de);
    if value.is_ok() {
        de.end()
            .map_err(|e| ApiError::BadRequest(format!("malformed JSON: {e}")))?;
    }
    value.map_err(|err| {
        let inner = err.inner();
        if inner.is_syntax() || inner.is_eof() {
            return ApiError::BadRequest(format!("malformed JSON: {inner}"));
        }
        let mut pointer = String::new();
        for segment in err.path().iter() {
            use serde_path_to_error::Segment;
            match segment {
                Segment::Seq { index } => pointer.push_str(&format!("/{index}")),
                Segment::Map { key } => pointer.push_str(&format!("/{}", escape_pointer(key))),
                Segment::Enum { variant } => {
                    pointer.push_str(&format!("/{}", escape_pointer(variant)))
                }
                Segment::Unknown => {}
            }
        }
        let message = strip_position(&inner.to_string());
        if let Some(field) = message
            .strip_prefix("missing field `")
            .and_then(|m| m.strip_suffix('`'))
        {
            pointer.push_str(&format!("/{}", escape_pointer(field)));
        }
        if pointer.is_empty() {
            pointer.push('/');
        }
        ApiError::Invalid(vec![FieldError::new(pointer, message)])
    })
}

fn escape_pointer(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// serde_json appends " at line L column C"; the pointer says where instead.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

/// `?limit=&cursor=` of list routes.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    pub limit: Option<usize>,
    pub cursor: Option<String>,
}

impl PageQuery {
    pub const MAX: usize = 250;

    pub fn limit(&self) -> Result<usize, ApiError> {
        match self.limit {
            None => Ok(50),
            Some(n @ 1..=Self::MAX) => Ok(n),
            Some(_) => Err(ApiError::invalid(
                "query:limit",
                format!("must be between 1 and {}", Self::MAX),
            )),
        }
    }
}

/// The query string, answering problem+json when it does not parse.
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or("");
        serde_urlencoded::from_str(query)
            .map(Query)
            .map_err(|e| ApiError::invalid("query", e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Shape {
        name: String,
        items: Vec<Item>,
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Item {
        n: u32,
    }

    fn pointer(err: ApiError) -> String {
        match err {
            ApiError::Invalid(errors) => errors[0].pointer.clone(),
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn malformed_is_400_and_wrong_shape_is_422_with_a_pointer() {
        assert!(matches!(
            parse_json::<Shape>(b"{nope"),
            Err(ApiError::BadRequest(_))
        ));
        assert!(matches!(
            parse_json::<Shape>(b"{\"name\": \"x\", \"items\": []} trailing"),
            Err(ApiError::BadRequest(_))
        ));
        assert_eq!(
            pointer(parse_json::<Shape>(b"{\"items\": []}").unwrap_err()),
            "/name"
        );
        assert_eq!(
            pointer(
                parse_json::<Shape>(br#"{"name": "a", "items": [{"n": 1}, {"n": "x"}]}"#)
                    .unwrap_err()
            ),
            "/items/1/n"
        );
        assert_eq!(
            pointer(parse_json::<Shape>(br#"{"name": "a", "items": [], "extra": 1}"#).unwrap_err()),
            "/extra"
        );
        assert!(parse_json::<Shape>(br#"{"name": "a", "items": [{"n": 1}]}"#).is_ok());
    }

    #[test]
    fn secrets_compare_by_value() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", ""));
    }
}
