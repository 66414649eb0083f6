//! The OpenAPI document. Its operations come from the `#[utoipa::path]` of
//! each handler, gathered by `super::routes()` as it registers the routes;
//! this module holds what they share: the frame (info, tags, the security
//! schemes, the `Problem` schema), the sets of error responses an operation
//! lists after its own, and the route that serves the document.
//!
//! Every error is a `Problem` in `application/problem+json`. A set is a type
//! implementing `IntoResponses`, named in an operation's `responses(...)`;
//! a set never shares a status with the operation's own responses.

use std::collections::BTreeMap;

use axum::Extension;
use axum::body::Bytes;
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response as HttpResponse};
use utoipa::openapi::header::{Header, HeaderBuilder};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Content, Object, OpenApi, Ref, RefOr, Response, ResponseBuilder, Type};
use utoipa::{IntoResponses, Modify, ToSchema};

use crate::error::{PROBLEM_JSON, Problem};

/// The security scheme of the tenant routes.
pub const TENANT_API_KEY: &str = "tenant_api_key";
/// The security scheme a poll-mode endpoint's own routes also take.
pub const POLL_KEY: &str = "poll_key";
/// The security scheme of the routes posting events for a named tenant.
pub const PRODUCER_KEY: &str = "producer_key";
/// The security scheme of the operator routes.
pub const OPERATOR_TOKEN: &str = "operator_token";

#[derive(utoipa::OpenApi)]
#[openapi(
    info(description = "A WebAssembly-extensible webhook gateway on Redis Streams. \
        Every error is answered as `application/problem+json` (RFC 9457)."),
    components(schemas(Problem)),
    modifiers(&SecuritySchemes),
    tags(
        (name = "meta", description = "Liveness, readiness, metrics and this document: \
            no authentication, limited per client address"),
        (name = "admin", description = "The operator's routes: tenants and their limits"),
        (name = "keys", description = "The tenant's API keys: scopes, expiry, revocation"),
        (name = "consumers", description = "The tenant's customers, each owning endpoints; \
            portal tokens"),
        (name = "audit", description = "Every change to the tenant's configuration"),
        (name = "events", description = "Ingest events, and read one with its deliveries"),
        (name = "endpoints", description = "Where events go: endpoints, their signing \
            secrets, their attempts, replay"),
        (name = "dead-letters", description = "Deliveries that gave up, and redelivery"),
        (name = "plugins", description = "WebAssembly plugins: upload, read, delete, dry run"),
        (name = "event-types", description = "Event contracts: event types, their versioned \
            JSON Schemas with the compatibility check, version transforms, and the tenant's \
            contract settings"),
    )
)]
struct Frame;

/// The document before any operation is added.
pub fn frame() -> OpenApi {
    <Frame as utoipa::OpenApi>::openapi()
}

/// Both credentials are bearer tokens in `Authorization`.
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, api: &mut OpenApi) {
        let components = api.components.get_or_insert_with(Default::default);
        for (name, description) in [
            (
                TENANT_API_KEY,
                "A tenant's API key (`gwk_...`), shown once, when it is made (by the operator \
                 with the tenant, or by `POST /v1/keys`). Each route names the one scope it \
                 needs; a key lacking it gets 403",
            ),
            (
                OPERATOR_TOKEN,
                "The gateway's operator token (`operator_token` in its configuration)",
            ),
            (
                PRODUCER_KEY,
                "A producer key (`gwpk_...`), made by the operator: posts events for any \
                 tenant, or a listed set, named in the path",
            ),
            (
                POLL_KEY,
                "A poll key (`gwp_...`): good for one poll-mode endpoint's poll routes only",
            ),
        ] {
            let scheme = HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some(description))
                .build();
            components.add_security_scheme(name, SecurityScheme::Http(scheme));
        }
    }
}

/// The document as served, serialised once when the router is built.
#[derive(Clone)]
pub struct Document(Bytes);

impl Document {
    pub fn new(api: &OpenApi) -> Document {
        let json = api
            .to_json()
            .expect("an OpenAPI document always serialises");
        Document(Bytes::from(json))
    }
}

/// This document
///
/// The OpenAPI description of every route, generated from the gateway's code.
#[utoipa::path(
    get,
    path = "/openapi.json",
    operation_id = "openapi",
    tag = "meta",
    responses(
        (status = OK, description = "This document (OpenAPI 3.1)", body = Object),
        PublicErrors,
    ),
)]
pub async fn document(Extension(document): Extension<Document>) -> HttpResponse {
    ([(CONTENT_TYPE, "application/json")], document.0).into_response()
}

type Responses = BTreeMap<String, RefOr<Response>>;

/// An answer with a `Problem` body.
fn problem(description: &str) -> ResponseBuilder {
    let schema = Ref::from_schema_name(<Problem as ToSchema>::name());
    ResponseBuilder::new()
        .description(description)
        .content(PROBLEM_JSON, Content::new(Some(schema)))
}

fn header(description: &str, value: Type) -> Header {
    HeaderBuilder::new()
        .schema(Some(Object::with_type(value)))
        .description(Some(description))
        .build()
}

fn entry(status: StatusCode, response: ResponseBuilder) -> (String, RefOr<Response>) {
    (status.as_str().to_string(), response.build().into())
}

fn unauthorized(description: &str) -> (String, RefOr<Response>) {
    let challenge = header("`Bearer`", Type::String);
    entry(
        StatusCode::UNAUTHORIZED,
        problem(description).header("WWW-Authenticate", challenge),
    )
}

/// A key without the route's scope (the route's security requirement
/// names it).
fn forbidden() -> (String, RefOr<Response>) {
    entry(
        StatusCode::FORBIDDEN,
        problem("The API key does not hold the scope this route needs; `detail` names it"),
    )
}

/// A 429 with `Retry-After` and the `RateLimit-*` headers of the bucket.
fn too_many(description: &str) -> (String, RefOr<Response>) {
    let response = problem(description)
        .header(
            "Retry-After",
            header("Seconds until a request may pass", Type::Integer),
        )
        .header(
            "RateLimit-Limit",
            header("The bucket's burst", Type::Integer),
        )
        .header(
            "RateLimit-Remaining",
            header("Requests left in the bucket", Type::Integer),
        )
        .header(
            "RateLimit-Reset",
            header("Seconds until the next request may pass", Type::Integer),
        );
    entry(StatusCode::TOO_MANY_REQUESTS, response)
}

const ADDRESS_LIMITED: &str = "Too many requests from this client address: unauthenticated \
    requests and failed authentications are limited per address";

/// Any request running past `super::REQUEST_DEADLINE`.
fn timeout() -> (String, RefOr<Response>) {
    entry(
        StatusCode::REQUEST_TIMEOUT,
        problem(
            "The request took longer than 30 s and was abandoned. Each change is one atomic \
             Redis call, so it happened whole or not at all; send it again (an event with the \
             same `Idempotency-Key` or `id` is not stored twice)",
        ),
    )
}

fn internal() -> (String, RefOr<Response>) {
    entry(
        StatusCode::INTERNAL_SERVER_ERROR,
        problem("An internal error; it is logged, and the answer says nothing more"),
    )
}

fn unavailable(description: &str) -> (String, RefOr<Response>) {
    entry(StatusCode::SERVICE_UNAVAILABLE, problem(description))
}

const REDIS_UNREACHABLE: &str = "Redis, where the gateway keeps everything, is unreachable";

/// The errors of the unauthenticated routes.
pub struct PublicErrors;

impl IntoResponses for PublicErrors {
    fn responses() -> Responses {
        BTreeMap::from([too_many(ADDRESS_LIMITED), timeout()])
    }
}

/// The errors of every route taking a tenant's API key, but the ingest routes.
pub struct TenantErrors;

impl IntoResponses for TenantErrors {
    fn responses() -> Responses {
        BTreeMap::from([
            unauthorized("The API key is missing, expired, revoked, or is no tenant's"),
            forbidden(),
            too_many(ADDRESS_LIMITED),
            internal(),
            unavailable(REDIS_UNREACHABLE),
            timeout(),
        ])
    }
}

/// The errors of the routes storing events: the tenant's errors, and its
/// ingest rate and backlog limits (`crate::admission::ingest`).
pub struct IngestErrors;

impl IntoResponses for IngestErrors {
    fn responses() -> Responses {
        let full = problem(
            "The tenant's backlog of undelivered events is full (with `Retry-After`), or \
             Redis is unreachable; nothing was stored",
        )
        .header(
            "Retry-After",
            header("Seconds to wait, when the backlog is full", Type::Integer),
        );
        BTreeMap::from([
            unauthorized("The API key is missing, expired, revoked, or is no tenant's"),
            forbidden(),
            too_many(
                "Over the tenant's ingest rate, or too many failed authentications from this \
                 client address; nothing was stored (a batch is let in or refused whole)",
            ),
            internal(),
            entry(StatusCode::SERVICE_UNAVAILABLE, full),
            timeout(),
        ])
    }
}

/// The errors of the operator routes.
pub struct OperatorErrors;

impl IntoResponses for OperatorErrors {
    fn responses() -> Responses {
        BTreeMap::from([
            unauthorized("The operator token is missing or wrong (or none is configured)"),
            too_many(ADDRESS_LIMITED),
            internal(),
            unavailable(REDIS_UNREACHABLE),
            timeout(),
        ])
    }
}

/// The errors of reading a JSON body (`super::Json`).
pub struct BodyErrors;

impl IntoResponses for BodyErrors {
    fn responses() -> Responses {
        BTreeMap::from([
            entry(
                StatusCode::BAD_REQUEST,
                problem("The body is not well-formed JSON, or could not be read"),
            ),
            entry(
                StatusCode::PAYLOAD_TOO_LARGE,
                problem("The body is larger than `ingest.max_body_bytes`"),
            ),
            entry(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                problem("The body is not sent as `application/json` (or another `+json` type)"),
            ),
            entry(
                StatusCode::UNPROCESSABLE_ENTITY,
                problem(
                    "The body has the wrong shape, or a field is not valid: `errors` has a \
                     pointer and a message for each problem",
                ),
            ),
        ])
    }
}

/// The errors of reading `?limit=&cursor=` (`super::PageQuery`).
pub struct PageErrors;

impl IntoResponses for PageErrors {
    fn responses() -> Responses {
        BTreeMap::from([entry(
            StatusCode::UNPROCESSABLE_ENTITY,
            problem("The query string does not parse, or `limit` is out of range"),
        )])
    }
}
