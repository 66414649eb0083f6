//! An endpoint's ownership handshake on request: the tenant asks for one
//! now, and the operator exempts an endpoint that cannot answer one.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::ToSchema;

use super::body::EndpointOut;
use super::shown;
use crate::api::openapi::{BodyErrors, OperatorErrors, TenantErrors};
use crate::api::{Access, Json, Operator, scope};
use crate::error::{ApiError, ApiResult, PROBLEM_JSON, Problem};
use crate::state::AppState;
use crate::store::Verification;

/// Verify an endpoint now
///
/// Sends the signed `webhook.verification` request at once and waits for
/// its answer (up to `verification.timeout`): the endpoint as it stands
/// after it, `active` when it answered right (its parked deliveries then
/// flow within a second), else `pending` with the reason.
#[utoipa::path(
    post,
    path = "/v1/endpoints/{id}/verify",
    operation_id = "verify_endpoint",
    tag = "endpoints",
    params(("id" = String, Path, description = "The endpoint's id")),
    security(("tenant_api_key" = ["endpoints:write"])),
    responses(
        (status = OK, description = "The endpoint after the handshake", body = EndpointOut),
        (status = NOT_FOUND, description = "No such endpoint", body = Problem,
            content_type = PROBLEM_JSON),
        TenantErrors,
    ),
)]
pub async fn verify(
    State(state): State<AppState>,
    access: Access<scope::EndpointsWrite>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let tenant = &access.tenant;
    super::load(&state, &access, &id).await?;
    let endpoint = state
        .verifier
        .handshake(tenant, &id)
        .await
        .map_err(ApiError::Internal)?
        .ok_or(ApiError::NotFound("endpoint"))?;
    Ok(axum::Json(shown(&state, tenant, &endpoint).await?).into_response())
}

/// Whether an endpoint must pass the handshake.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerificationPolicy {
    /// `false` exempts it: its events go without a handshake.
    required: bool,
}

/// Exempt an endpoint from verification (or not)
///
/// For a consumer that cannot answer the handshake: with `required: false`
/// its events go (and its parked ones flow) without one.
#[utoipa::path(
    put,
    path = "/v1/admin/tenants/{tenant}/endpoints/{id}/verification",
    operation_id = "put_endpoint_verification",
    tag = "admin",
    params(
        ("tenant" = String, Path, description = "The tenant's id"),
        ("id" = String, Path, description = "The endpoint's id"),
    ),
    security(("operator_token" = [])),
    responses(
        (status = OK, description = "The endpoint as changed", body = EndpointOut),
        (status = NOT_FOUND, description = "No such endpoint", body = Problem,
            content_type = PROBLEM_JSON),
        OperatorErrors,
        BodyErrors,
    ),
)]
pub async fn put_policy(
    State(state): State<AppState>,
    _: Operator,
    Path((tenant, id)): Path<(String, String)>,
    Json(policy): Json<VerificationPolicy>,
) -> ApiResult<Response> {
    let before = state
        .store
        .endpoint(&tenant, &id)
        .await?
        .ok_or(ApiError::NotFound("endpoint"))?;
    let exempt = |e: bool| Some(serde_json::json!({ "verification_exempt": e }));
    let was = before.verification.as_ref().is_some_and(|v| v.exempt);
    crate::api::audit::record(
        &state,
        Some(&tenant),
        &crate::model::Actor::operator(),
        "endpoint.verification_policy",
        ("endpoint", &id),
        exempt(was),
        exempt(!policy.required),
    )
    .await?;
    let changed = state
        .store
        .update_endpoint(&tenant, &id, |endpoint| {
            let v = endpoint
                .verification
                .get_or_insert_with(Verification::pending);
            v.exempt = !policy.required;
            endpoint.updated_at = crate::model::clock::now_rfc3339();
            Ok::<(), std::convert::Infallible>(())
        })
        .await?;
    let Some(Ok(endpoint)) = changed else {
        return Err(ApiError::NotFound("endpoint"));
    };
    if policy.required {
        let now = crate::model::clock::now_ms();
        state.store.schedule_handshake(&tenant, &id, now).await?;
    }
    Ok(axum::Json(shown(&state, &tenant, &endpoint).await?).into_response())
}
