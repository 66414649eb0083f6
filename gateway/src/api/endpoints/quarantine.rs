//! Quarantine by hand: the tenant parks an endpoint's events (no probes
//! go; only a release ends it), or releases one, quarantined by hand or
//! for failing, at once.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::ToSchema;

use super::body::EndpointOut;
use super::shown;
use crate::api::audit::record;
use crate::api::openapi::{BodyErrors, TenantErrors};
use crate::api::{Access, Json, scope};
use crate::error::{ApiError, ApiResult, PROBLEM_JSON, Problem};
use crate::model::FieldError;
use crate::model::clock::now_rfc3339;
use crate::state::AppState;
use crate::store::Quarantine;

/// Why the tenant quarantines the endpoint.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuarantineIn {
    #[serde(default)]
    reason: Option<String>,
}

/// Quarantine an endpoint
///
/// Its new and queued events are parked (kept, in order) until it is
/// released; no probes go to it meanwhile.
#[utoipa::path(
    post,
    path = "/v1/endpoints/{id}/quarantine",
    operation_id = "quarantine_endpoint",
    tag = "endpoints",
    params(("id" = String, Path, description = "The endpoint's id")),
    security(("tenant_api_key" = ["endpoints:write"])),
    responses(
        (status = OK, description = "The endpoint, quarantined", body = EndpointOut),
        (status = NOT_FOUND, description = "No such endpoint", body = Problem,
            content_type = PROBLEM_JSON),
        TenantErrors,
        BodyErrors,
    ),
)]
pub async fn quarantine(
    State(state): State<AppState>,
    access: Access<scope::EndpointsWrite>,
    Path(id): Path<String>,
    Json(input): Json<QuarantineIn>,
) -> ApiResult<Response> {
    let tenant = &access.tenant;
    super::load(&state, &access, &id).await?;
    let reason = input.reason.unwrap_or_else(|| "by the tenant".into());
    if reason.len() > 256 {
        let too_long = FieldError::new("/reason", "must be at most 256 characters");
        return Err(ApiError::Invalid(vec![too_long]));
    }
    let change = serde_json::json!({ "quarantine": { "reason": reason, "by_tenant": true } });
    record(
        &state,
        Some(tenant),
        &access.actor,
        "endpoint.quarantined",
        ("endpoint", &id),
        None,
        Some(change),
    )
    .await?;
    let changed = state
        .store
        .update_endpoint(tenant, &id, |endpoint| {
            endpoint.quarantine = Some(Quarantine {
                since: now_rfc3339(),
                reason: reason.clone(),
                by_tenant: true,
                probes: 0,
                last_probe_error: None,
            });
            endpoint.updated_at = now_rfc3339();
            Ok::<(), std::convert::Infallible>(())
        })
        .await?;
    let Some(Ok(endpoint)) = changed else {
        return Err(ApiError::NotFound("endpoint"));
    };
    Ok(axum::Json(shown(&state, tenant, &endpoint).await?).into_response())
}

/// Release an endpoint from quarantine
///
/// Its parked events flow again within a second; its circuit is closed.
#[utoipa::path(
    post,
    path = "/v1/endpoints/{id}/release",
    operation_id = "release_endpoint",
    tag = "endpoints",
    params(("id" = String, Path, description = "The endpoint's id")),
    security(("tenant_api_key" = ["endpoints:write"])),
    responses(
        (status = OK, description = "The endpoint, released", body = EndpointOut),
        (status = NOT_FOUND, description = "No such endpoint", body = Problem,
            content_type = PROBLEM_JSON),
        TenantErrors,
    ),
)]
pub async fn release(
    State(state): State<AppState>,
    access: Access<scope::EndpointsWrite>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let tenant = &access.tenant;
    super::load(&state, &access, &id).await?;
    let change = serde_json::json!({ "quarantine": null });
    record(
        &state,
        Some(tenant),
        &access.actor,
        "endpoint.released",
        ("endpoint", &id),
        None,
        Some(change),
    )
    .await?;
    let changed = state
        .store
        .update_endpoint(tenant, &id, |endpoint| {
            if endpoint.quarantine.take().is_some() {
                endpoint.updated_at = now_rfc3339();
            }
            Ok::<(), std::convert::Infallible>(())
        })
        .await?;
    let Some(Ok(endpoint)) = changed else {
        return Err(ApiError::NotFound("endpoint"));
    };
    state.store.reset_circuit(tenant, &id).await?;
    Ok(axum::Json(shown(&state, tenant, &endpoint).await?).into_response())
}
