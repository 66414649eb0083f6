//! An endpoint's signing secrets: reading them, and rotating them (the old
//! secret keeps signing for a while).

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use super::load;
use crate::api::TenantId;
use crate::api::openapi::TenantErrors;
use crate::error::{ApiError, ApiResult, PROBLEM_JSON, Problem};
use crate::model::clock::now_ms;
use crate::state::AppState;
use crate::store::Endpoint;

/// An endpoint's signing secrets.
#[derive(Serialize, ToSchema)]
struct SecretOut {
    /// The current `whsec_...` secret.
    secret: String,
    /// Older secrets still signing, with when they stop.
    previous: Vec<PreviousSecret>,
}

#[derive(Serialize, ToSchema)]
struct PreviousSecret {
    /// RFC 3339.
    expires_at: String,
}

fn secret_out(endpoint: &Endpoint) -> SecretOut {
    let now = now_ms();
    SecretOut {
        secret: endpoint
            .secrets
            .first()
            .map(|s| s.secret.clone())
            .unwrap_or_default(),
        previous: endpoint
            .secrets
            .iter()
            .skip(1)
            .filter_map(|s| s.expires_at_ms.filter(|at| *at > now))
            .map(|at| PreviousSecret {
                expires_at: crate::model::clock::ms_to_rfc3339(at),
            })
            .collect(),
    }
}

/// Read an endpoint's secret
#[utoipa::path(
    get,
    path = "/v1/endpoints/{id}/secret",
    operation_id = "get_endpoint_secret",
    tag = "endpoints",
    params(("id" = String, Path, description = "The endpoint's id")),
    security(("tenant_api_key" = [])),
    responses(
        (status = OK, description = "Its signing secrets", body = SecretOut),
        (status = NOT_FOUND, description = "No such endpoint", body = Problem,
            content_type = PROBLEM_JSON),
        TenantErrors,
    ),
)]
pub async fn secret(
    State(state): State<AppState>,
    TenantId(tenant): TenantId,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let endpoint = load(&state, &tenant, &id).await?;
    Ok(axum::Json(secret_out(&endpoint)).into_response())
}

/// Rotate an endpoint's secret
///
/// A new secret signs from now on; the old one keeps signing too for
/// `delivery.secret_rotation_overlap`. An endpoint with a handshake is
/// asked to verify again at once.
#[utoipa::path(
    post,
    path = "/v1/endpoints/{id}/secret/rotate",
    operation_id = "rotate_endpoint_secret",
    tag = "endpoints",
    params(("id" = String, Path, description = "The endpoint's id")),
    security(("tenant_api_key" = [])),
    responses(
        (status = OK, description = "Its signing secrets, the new one first", body = SecretOut),
        (status = NOT_FOUND, description = "No such endpoint", body = Problem,
            content_type = PROBLEM_JSON),
        TenantErrors,
    ),
)]
pub async fn rotate_secret(
    State(state): State<AppState>,
    TenantId(tenant): TenantId,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let overlap = state.config.delivery.secret_rotation_overlap.as_millis() as u64;
    let changed = state
        .store
        .update_endpoint(&tenant, &id, |endpoint| {
            let now = now_ms();
            endpoint.rotate_secret(now, now + overlap);
            endpoint.updated_at = crate::model::clock::now_rfc3339();
            Ok::<(), std::convert::Infallible>(())
        })
        .await?;
    let Some(Ok(endpoint)) = changed else {
        return Err(ApiError::NotFound("endpoint"));
    };
    // The consumer proves it again, under the new secret; it keeps its
    // events until that handshake fails.
    if endpoint.verification.is_some() {
        state
            .store
            .schedule_handshake(&tenant, &id, now_ms())
            .await?;
    }
    Ok(axum::Json(secret_out(&endpoint)).into_response())
}
