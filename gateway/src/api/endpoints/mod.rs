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

use super::audit::{json, record};
use super::openapi::{BodyErrors, PageErrors, TenantErrors};
use super::{Access, Json, PageQuery, Query, scope};
use crate::error::{ApiError, ApiResult, PROBLEM_JSON, Problem};
use crate::model::{FieldError, SigningKey, new_id};
use crate::readiness::health;
use crate::state::AppState;
use crate::store::{AttemptRecord, Endpoint, EndpointSecret, Page, Verification};
use body::{EndpointIn, EndpointOut, EndpointPatch};
use check::{check_fields, check_https, check_references};

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

/// The endpoint, if it is within the key's reach (a key limited to a
/// consumer reaches only that consumer's): else 404.
async fn load<S>(state: &AppState, access: &Access<S>, id: &str) -> ApiResult<Endpoint> {
    load_owned(state, &access.tenant, access.consumer.as_deref(), id).await
}

/// The tenant's endpoint `id`, if `consumer` (when given) owns it.
async fn load_owned(
    state: &AppState,
    tenant: &str,
    consumer: Option<&str>,
    id: &str,
) -> ApiResult<Endpoint> {
    state
        .store
        .endpoint(tenant, id)
        .await?
        .filter(|e| consumer.is_none_or(|c| e.consumer_id.as_deref() == Some(c)))
        .ok_or(ApiError::NotFound("endpoint"))
}

/// A new endpoint, with its signing secret.
#[derive(Serialize, ToSchema)]
struct EndpointCreated<'a> {
    #[serde(flatten)]
    endpoint: EndpointOut<'a>,
    /// The `whsec_...` secret deliveries are signed with; for an `ed25519`
    /// endpoint, the `whpk_...` public key they verify with (its private
    /// key is never shown).
    secret: String,
}

/// Create an endpoint
#[utoipa::path(
    post,
    path = "/v1/endpoints",
    operation_id = "create_endpoint",
    tag = "endpoints",
    security(("tenant_api_key" = ["endpoints:write"])),
    responses(
        (status = CREATED, description = "The endpoint, with its secret", body = EndpointCreated),
        TenantErrors,
        BodyErrors,
    ),
)]
pub async fn create(
    State(state): State<AppState>,
    access: Access<scope::EndpointsWrite>,
    Json(input): Json<EndpointIn>,
) -> ApiResult<Response> {
    let tenant = &access.tenant;
    let now = crate::model::clock::now_rfc3339();
    let mut errors = Vec::new();
    let secret = match input.secret {
        Some(_) if !input.signature.is_hmac() => {
            errors.push(FieldError::new(
                "/secret",
                "an ed25519 endpoint's key pair is made by the gateway: leave it out",
            ));
            String::new()
        }
        Some(s) if crate::model::Secret::parse(&s).is_some() => s,
        Some(_) => {
            errors.push(FieldError::new(
                "/secret",
                "must be whsec_ followed by base64",
            ));
            String::new()
        }
        None => SigningKey::generate(input.signature).expose(),
    };
    let endpoint = Endpoint {
        id: new_id("ep").into(),
        url: input.url,
        description: input.description,
        consumer_id: input.consumer_id,
        channels: input.channels,
        event_types: input.event_types,
        disabled: input.disabled,
        disabled_reason: None,
        mode: input.mode,
        operational: input.operational,
        failover_urls: input.failover_urls,
        client_cert_pem: input.client_cert_pem,
        client_key_pem: input.client_key_pem.map(Into::into),
        ca_pem: input.ca_pem,
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
        signature: input.signature,
        secrets: vec![EndpointSecret {
            secret: secret.clone(),
            expires_at_ms: None,
        }],
        // A poll endpoint has no URL to prove.
        verification: (state.verifier.required() && input.mode.is_push())
            .then(Verification::pending),
        quarantine: None,
    };
    if !access.reaches(endpoint.consumer_id.as_deref()) {
        errors.push(FieldError::new(
            "/consumer_id",
            "must be the consumer the API key is limited to",
        ));
    }
    check_fields(&state, &endpoint, &mut errors);
    check_references(&state, tenant, &endpoint, &mut errors).await?;
    let urls = (
        Some(endpoint.url.as_str()),
        Some(&endpoint.failover_urls[..]),
    );
    check_https(&state, tenant, urls, &mut errors).await?;
    if !errors.is_empty() {
        return Err(ApiError::Invalid(errors));
    }
    let shown = EndpointOut::of(&endpoint, state.verifier.required());
    record(
        &state,
        Some(tenant),
        &access.actor,
        "endpoint.created",
        ("endpoint", &endpoint.id),
        None,
        json(&shown),
    )
    .await?;
    state.store.put_endpoint(tenant, &endpoint).await?;
    if endpoint.verification.is_some() {
        let now = crate::model::clock::now_ms();
        state
            .store
            .schedule_handshake(tenant, &endpoint.id, now)
            .await?;
    }
    let body = EndpointCreated {
        endpoint: EndpointOut::of(&endpoint, state.verifier.required()),
        secret: SigningKey::parse(&secret)
            .map(|k| k.verifier())
            .unwrap_or_default(),
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
    security(("tenant_api_key" = ["endpoints:read"])),
    responses(
        (status = OK, description = "A page of endpoints", body = Page<EndpointOut>),
        TenantErrors,
        PageErrors,
    ),
)]
pub async fn list(
    State(state): State<AppState>,
    access: Access<scope::EndpointsRead>,
    Query(page): Query<PageQuery>,
) -> ApiResult<Response> {
    let tenant = &access.tenant;
    let (limit, cursor) = (page.limit()?, page.cursor.as_deref());
    let Page { data, next_cursor } = match &access.consumer {
        None => state.store.endpoints(tenant, limit, cursor).await?,
        // A key limited to a consumer pages through that consumer's only.
        Some(consumer) => {
            let (_, mut all) = state.store.all_endpoints(tenant).await?;
            all.retain(|e| e.consumer_id.as_ref() == Some(consumer));
            all.sort_by(|a, b| a.id.as_str().cmp(b.id.as_str()));
            all.retain(|e| cursor.is_none_or(|c| e.id.as_str() > c));
            let next_cursor = (all.len() > limit).then(|| all[limit - 1].id.to_string());
            all.truncate(limit);
            Page {
                data: all,
                next_cursor,
            }
        }
    };
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
    security(("tenant_api_key" = ["endpoints:read"])),
    responses(
        (status = OK, description = "The endpoint", body = EndpointOut),
        (status = NOT_FOUND, description = "No such endpoint", body = Problem,
            content_type = PROBLEM_JSON),
        TenantErrors,
    ),
)]
pub async fn get_one(
    State(state): State<AppState>,
    access: Access<scope::EndpointsRead>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let tenant = &access.tenant;
    let endpoint = load(&state, &access, &id).await?;
    Ok(axum::Json(shown(&state, tenant, &endpoint).await?).into_response())
}

/// Change an endpoint
///
/// A change of `signature` (`hmac` or `ed25519`) replaces the endpoint's
/// secrets at once, with no overlap, by one new secret or key pair of the
/// new scheme (read it at `GET /v1/endpoints/{id}/secret`); an endpoint
/// with a handshake is asked to verify again.
#[utoipa::path(
    patch,
    path = "/v1/endpoints/{id}",
    operation_id = "update_endpoint",
    tag = "endpoints",
    params(("id" = String, Path, description = "The endpoint's id")),
    security(("tenant_api_key" = ["endpoints:write"])),
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
    access: Access<scope::EndpointsWrite>,
    Path(id): Path<String>,
    Json(patch): Json<EndpointPatch>,
) -> ApiResult<Response> {
    let tenant = &access.tenant;
    let before = load(&state, &access, &id).await?;
    let scheme = before.signature;
    let mut endpoint = before.clone();
    patch.apply(&mut endpoint);
    let mut errors = Vec::new();
    check_fields(&state, &endpoint, &mut errors);
    check_references(&state, tenant, &endpoint, &mut errors).await?;
    check_https(&state, tenant, patch.urls(), &mut errors).await?;
    if !errors.is_empty() {
        return Err(ApiError::Invalid(errors));
    }
    let required = state.verifier.required();
    record(
        &state,
        Some(tenant),
        &access.actor,
        "endpoint.updated",
        ("endpoint", &id),
        json(&EndpointOut::of(&before, required)),
        json(&EndpointOut::of(&endpoint, required)),
    )
    .await?;
    // Written as a change of the stored record (not over it): a change
    // made meanwhile, such as a 410 disabling it, is kept.
    let now = crate::model::clock::now_rfc3339();
    let changed = state
        .store
        .update_endpoint(tenant, &id, |stored| {
            patch.apply(stored);
            stored.updated_at = now.clone();
            Ok::<(), std::convert::Infallible>(())
        })
        .await?;
    let Some(Ok(endpoint)) = changed else {
        return Err(ApiError::NotFound("endpoint"));
    };
    // New keys, as after a rotation: the consumer proves it again.
    if endpoint.signature != scheme && endpoint.verification.is_some() {
        let now = crate::model::clock::now_ms();
        state.store.schedule_handshake(tenant, &id, now).await?;
    }
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
    security(("tenant_api_key" = ["endpoints:write"])),
    responses(
        (status = NO_CONTENT, description = "Deleted"),
        (status = NOT_FOUND, description = "No such endpoint", body = Problem,
            content_type = PROBLEM_JSON),
        TenantErrors,
    ),
)]
pub async fn delete(
    State(state): State<AppState>,
    access: Access<scope::EndpointsWrite>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let tenant = &access.tenant;
    let endpoint = load(&state, &access, &id).await?;
    record(
        &state,
        Some(tenant),
        &access.actor,
        "endpoint.deleted",
        ("endpoint", &id),
        json(&EndpointOut::of(&endpoint, state.verifier.required())),
        None,
    )
    .await?;
    if state.store.delete_endpoint(tenant, &id).await? {
        // Its parked deliveries are released, and dropped, by the releaser.
        state.store.unschedule_handshake(tenant, &id).await?;
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
    security(("tenant_api_key" = ["attempts:read"])),
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
    access: Access<scope::AttemptsRead>,
    Path(id): Path<String>,
    Query(page): Query<PageQuery>,
) -> ApiResult<Response> {
    let tenant = &access.tenant;
    load(&state, &access, &id).await?;
    let page = state
        .store
        .attempts(tenant, &id, page.limit()?, page.cursor.as_deref())
        .await?;
    Ok(axum::Json(page).into_response())
}
