//! An endpoint's signing secrets: reading them, and rotating them (the old
//! secret keeps signing for a while). An `ed25519` endpoint's keys are
//! shown only as their `whpk_...` public keys, never the private keys.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use super::load;
use crate::api::audit::record;
use crate::api::openapi::TenantErrors;
use crate::api::{Access, scope};
use crate::error::{ApiError, ApiResult, PROBLEM_JSON, Problem};
use crate::model::SigningKey;
use crate::model::clock::now_ms;
use crate::state::AppState;
use crate::store::Endpoint;

/// An endpoint's signing secrets.
#[derive(Serialize, ToSchema)]
struct SecretOut {
    /// The current `whsec_...` secret; for an `ed25519` endpoint, the
    /// current key's `whpk_...` public key.
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
            .and_then(|s| SigningKey::parse(&s.secret))
            .map(|k| k.verifier())
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
    security(("tenant_api_key" = ["endpoints:write"])),
    responses(
        (status = OK, description = "Its signing secrets", body = SecretOut),
        (status = NOT_FOUND, description = "No such endpoint", body = Problem,
            content_type = PROBLEM_JSON),
        TenantErrors,
    ),
)]
pub async fn secret(
    State(state): State<AppState>,
    access: Access<scope::EndpointsWrite>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let endpoint = load(&state, &access, &id).await?;
    Ok(axum::Json(secret_out(&endpoint)).into_response())
}

/// Rotate an endpoint's secret
///
/// A new secret (or, for an `ed25519` endpoint, a new key pair) signs from
/// now on; the old one keeps signing too for
/// `delivery.secret_rotation_overlap`. An endpoint with a handshake is
/// asked to verify again at once.
#[utoipa::path(
    post,
    path = "/v1/endpoints/{id}/secret/rotate",
    operation_id = "rotate_endpoint_secret",
    tag = "endpoints",
    params(("id" = String, Path, description = "The endpoint's id")),
    security(("tenant_api_key" = ["endpoints:write"])),
    responses(
        (status = OK, description = "Its signing secrets, the new one first", body = SecretOut),
        (status = NOT_FOUND, description = "No such endpoint", body = Problem,
            content_type = PROBLEM_JSON),
        TenantErrors,
    ),
)]
pub async fn rotate_secret(
    State(state): State<AppState>,
    access: Access<scope::EndpointsWrite>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let tenant = &access.tenant;
    load(&state, &access, &id).await?;
    // The log shows that the secret changed, never a secret.
    let secret = |which: &str| Some(serde_json::json!({ "secret": which }));
    record(
        &state,
        Some(tenant),
        &access.actor,
        "endpoint.secret_rotated",
        ("endpoint", &id),
        secret("old"),
        secret("new"),
    )
    .await?;
    let overlap = state.config.delivery.secret_rotation_overlap.as_millis() as u64;
    let changed = state
        .store
        .update_endpoint(tenant, &id, |endpoint| {
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
            .schedule_handshake(tenant, &id, now_ms())
            .await?;
    }
    Ok(axum::Json(secret_out(&endpoint)).into_response())
}
