//! Endpoints: create, list, read, update, delete; their secret and its
//! rotation; their ownership handshake; their attempt log; replay from a
//! point in time (a background job, [`crate::delivery::replay`]).
//!
//! The bodies are in `body`, their checks in `check`; the secret routes in
//! `secrets`, the handshake in `verify`, quarantine by hand in
//! `quarantine`, replay in `replays`.

mod body;
mod check;
pub(super) mod poll;
pub(super) mod quarantine;
pub(super) mod replays;
pub(super) mod secrets;
pub(super) mod verify;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use super::openapi::{BodyErrors, PageErrors, TenantErrors};
use super::{Json, PageQuery, Query, TenantId};
use crate::error::{ApiError, ApiResult, PROBLEM_JSON, Problem};
use crate::model::{FieldError, new_id};
use crate::readiness::health;
use crate::state::AppState;
use crate::store::{AttemptRecord, Endpoint, EndpointSecret, Page, Verification};
use body::{EndpointIn, EndpointOut, EndpointPatch};
use check::{check_fields, check_references};

/// One endpoint as its own read shows it: with its circuit, its parked
/// deliveries and when its next handshake is due.
async fn shown<'a>(
    state: &AppState,
    tenant: &str,
    endpoint: &'a Endpoint,
) -> ApiResult<EndpointOut<'a>> {
    let mut out = EndpointOut::of(endpoint, state.verifier.required());
    let circuit = state.store.circuit(tenant, &endpoint.id).await?;
    let now = crate::model::clock::now_ms();
    let since = now.saturating_sub(health::HOUR_MS);
    let (attempts, sampled) = state
        .store
        .recent_attempts(tenant, &endpoint.id, since, health::READ_AT_MOST)
        .await?;
    out.health = Some(health::summarize(&attempts, now, circuit.failures, sampled));
    out.circuit = Some(circuit);
    out.parked = Some(state.queue.parked_count(tenant, &endpoint.id).await?);
    if endpoint.verification.is_some() {
        let due = state.store.handshake_due(tenant, &endpoint.id).await?;
        out.next_verification_at = due.map(crate::model::clock::ms_to_rfc3339);
    }
    Ok(out)
}

async fn load(state: &AppState, tenant: &str, id: &str) -> ApiResult<Endpoint> {
    state
        .store
        .endpoint(tenant, id)
        .await?
        .ok_or(ApiError::NotFound("endpoint"))
}

/// A new endpoint, with its signing secret.
#[derive(Serialize, ToSchema)]
struct EndpointCreated<'a> {
    #[serde(flatten)]
    endpoint: EndpointOut<'a>,
    /// The `whsec_...` secret deliveries are signed with.
    secret: &'a str,
}

/// Create an endpoint
#[utoipa::path(
    post,
    path = "/v1/endpoints",
    operation_id = "create_endpoint",
    tag = "endpoints",
    security(("tenant_api_key" = [])),
    responses(
        (status = CREATED, description = "The endpoint, with its secret", body = EndpointCreated),
        TenantErrors,
        BodyErrors,
    ),
)]
pub async fn create(
    State(state): State<AppState>,
    TenantId(tenant): TenantId,
    Json(input): Json<EndpointIn>,
) -> ApiResult<Response> {
    let now = crate::model::clock::now_rfc3339();
    let mut errors = Vec::new();
    let secret = match input.secret {
        Some(s) if crate::model::Secret::parse(&s).is_some() => s,
        Some(_) => {
            errors.push(FieldError::new(
                "/secret",
                "must be whsec_ followed by base64",
            ));
            String::new()
        }
        None => crate::model::Secret::generate().expose(),
    };
    let endpoint = Endpoint {
        id: new_id("ep").into(),
        url: input.url,
        description: input.description,
        event_types: input.event_types,
        disabled: input.disabled,
        disabled_reason: None,
        mode: input.mode,
        operational: input.operational,
        failover_urls: input.failover_urls,
        headers: input.headers,
        timeout_ms: input.timeout_ms,
        retry_schedule: input.retry_schedule,
        rate_per_second: input.rate_per_second,
        max_in_flight: input.max_in_flight,
        batch: input.batch,
        plugins: input.plugins,
        on_plugin_error: input.on_plugin_error,
        created_at: now.clone(),
        updated_at: now,
        secrets: vec![EndpointSecret {
            secret: secret.clone(),
            expires_at_ms: None,
        }],
        // A poll endpoint has no URL to prove.
        verification: (state.verifier.required() && input.mode.is_push())
            .then(Verification::pending),
        quarantine: None,
    };
    check_fields(&state, &endpoint, &mut errors);
    check_references(&state, &tenant, &endpoint, &mut errors).await?;
    if !errors.is_empty() {
        return Err(ApiError::Invalid(errors));
    }
    state.store.put_endpoint(&tenant, &endpoint).await?;
    if endpoint.verification.is_some() {
        let now = crate::model::clock::now_ms();
        state
            .store
            .schedule_handshake(&tenant, &endpoint.id, now)
            .await?;
    }
    let body = EndpointCreated {
        endpoint: EndpointOut::of(&endpoint, state.verifier.required()),
        secret: &secret,
    };
    Ok((StatusCode::CREATED, axum::Json(body)).into_response())
}

/// List endpoints
#[utoipa::path(
    get,
    path = "/v1/endpoints",
    operation_id = "list_endpoints",
    tag = "endpoints",
    params(PageQuery),
    security(("tenant_api_key" = [])),
    responses(
        (status = OK, description = "A page of endpoints", body = Page<EndpointOut>),
        TenantErrors,
        PageErrors,
    ),
)]
pub async fn list(
    State(state): State<AppState>,
    TenantId(tenant): TenantId,
    Query(page): Query<PageQuery>,
) -> ApiResult<Response> {
    let Page { data, next_cursor } = state
        .store
        .endpoints(&tenant, page.limit()?, page.cursor.as_deref())
        .await?;
    let required = state.verifier.required();
    let data: Vec<EndpointOut> = data.iter().map(|e| EndpointOut::of(e, required)).collect();
    Ok(axum::Json(Page { data, next_cursor }).into_response())
}

/// Read an endpoint
///
/// With the state of its circuit breaker.
#[utoipa::path(
    get,
    path = "/v1/endpoints/{id}",
    operation_id = "get_endpoint",
    tag = "endpoints",
    params(("id" = String, Path, description = "The endpoint's id")),
    security(("tenant_api_key" = [])),
    responses(
        (status = OK, description = "The endpoint", body = EndpointOut),
        (status = NOT_FOUND, description = "No such endpoint", body = Problem,
            content_type = PROBLEM_JSON),
        TenantErrors,
    ),
)]
pub async fn get_one(
    State(state): State<AppState>,
    TenantId(tenant): TenantId,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let endpoint = load(&state, &tenant, &id).await?;
    Ok(axum::Json(shown(&state, &tenant, &endpoint).await?).into_response())
}

/// Change an endpoint
#[utoipa::path(
    patch,
    path = "/v1/endpoints/{id}",
    operation_id = "update_endpoint",
    tag = "endpoints",
    params(("id" = String, Path, description = "The endpoint's id")),
    security(("tenant_api_key" = [])),
    responses(
        (status = OK, description = "The endpoint as changed", body = EndpointOut),
        (status = NOT_FOUND, description = "No such endpoint", body = Problem,
            content_type = PROBLEM_JSON),
        TenantErrors,
        BodyErrors,
    ),
)]
pub async fn update(
    State(state): State<AppState>,
    TenantId(tenant): TenantId,
    Path(id): Path<String>,
    Json(patch): Json<EndpointPatch>,
) -> ApiResult<Response> {
    let mut endpoint = load(&state, &tenant, &id).await?;
    patch.apply(&mut endpoint);
    let mut errors = Vec::new();
    check_fields(&state, &endpoint, &mut errors);
    check_references(&state, &tenant, &endpoint, &mut errors).await?;
    if !errors.is_empty() {
        return Err(ApiError::Invalid(errors));
    }
    // Written as a change of the stored record (not over it): a change
    // made meanwhile, such as a 410 disabling it, is kept.
    let now = crate::model::clock::now_rfc3339();
    let changed = state
        .store
        .update_endpoint(&tenant, &id, |stored| {
            patch.apply(stored);
            stored.updated_at = now.clone();
            Ok::<(), std::convert::Infallible>(())
        })
        .await?;
    let Some(Ok(endpoint)) = changed else {
        return Err(ApiError::NotFound("endpoint"));
    };
    let out = EndpointOut::of(&endpoint, state.verifier.required());
    Ok(axum::Json(out).into_response())
}

/// Delete an endpoint
#[utoipa::path(
    delete,
    path = "/v1/endpoints/{id}",
    operation_id = "delete_endpoint",
    tag = "endpoints",
    params(("id" = String, Path, description = "The endpoint's id")),
    security(("tenant_api_key" = [])),
    responses(
        (status = NO_CONTENT, description = "Deleted"),
        (status = NOT_FOUND, description = "No such endpoint", body = Problem,
            content_type = PROBLEM_JSON),
        TenantErrors,
    ),
)]
pub async fn delete(
    State(state): State<AppState>,
    TenantId(tenant): TenantId,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    if state.store.delete_endpoint(&tenant, &id).await? {
        // Its parked deliveries are released, and dropped, by the releaser.
        state.store.unschedule_handshake(&tenant, &id).await?;
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound("endpoint"))
    }
}

/// List an endpoint's attempts
///
/// Every HTTP attempt to the endpoint, newest first.
#[utoipa::path(
    get,
    path = "/v1/endpoints/{id}/attempts",
    operation_id = "list_endpoint_attempts",
    tag = "endpoints",
    params(("id" = String, Path, description = "The endpoint's id"), PageQuery),
    security(("tenant_api_key" = [])),
    responses(
        (status = OK, description = "A page of attempts", body = Page<AttemptRecord>),
        (status = NOT_FOUND, description = "No such endpoint", body = Problem,
            content_type = PROBLEM_JSON),
        TenantErrors,
        PageErrors,
    ),
)]
pub async fn attempts(
    State(state): State<AppState>,
    TenantId(tenant): TenantId,
    Path(id): Path<String>,
    Query(page): Query<PageQuery>,
) -> ApiResult<Response> {
    load(&state, &tenant, &id).await?;
    let page = state
        .store
        .attempts(&tenant, &id, page.limit()?, page.cursor.as_deref())
        .await?;
    Ok(axum::Json(page).into_response())
}
