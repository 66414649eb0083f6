//! Replay of an endpoint's events from a point in time: starting the
//! background job ([`crate::delivery::replay`]) and following it.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::ToSchema;

use super::load;
use crate::api::openapi::{BodyErrors, TenantErrors};
use crate::api::{Access, Json, scope};
use crate::error::{ApiError, ApiResult, PROBLEM_JSON, Problem};
use crate::state::AppState;
use crate::store::{ReplayJob, ReplayState};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplayIn {
    /// RFC 3339: events accepted since then are queued again.
    #[schema(format = DateTime)]
    since: String,
}

/// Replay events to an endpoint
///
/// Starts a background job that queues again, for this endpoint, every kept
/// event of its types accepted since `since` (at most 10,000; `truncated`
/// says when it stopped there). Answers at once with the job; follow it at
/// `GET /v1/replays/{id}` (also in `Location`).
#[utoipa::path(
    post,
    path = "/v1/endpoints/{id}/replay",
    operation_id = "replay_endpoint",
    tag = "endpoints",
    params(("id" = String, Path, description = "The endpoint's id")),
    security(("tenant_api_key" = ["endpoints:write"])),
    responses(
        (status = ACCEPTED, description = "The replay job, started", body = ReplayJob),
        (status = NOT_FOUND, description = "No such endpoint", body = Problem,
            content_type = PROBLEM_JSON),
        (status = CONFLICT, description = "The endpoint is disabled", body = Problem,
            content_type = PROBLEM_JSON),
        TenantErrors,
        BodyErrors,
    ),
)]
pub async fn replay(
    State(state): State<AppState>,
    access: Access<scope::EndpointsWrite>,
    Path(id): Path<String>,
    Json(input): Json<ReplayIn>,
) -> ApiResult<Response> {
    let tenant = &access.tenant;
    let Some(since) = crate::model::clock::parse_rfc3339(&input.since) else {
        return Err(ApiError::invalid("/since", "must be an RFC 3339 date-time"));
    };
    let endpoint = load(&state, &access, &id).await?;
    if endpoint.disabled {
        return Err(ApiError::Conflict(
            "the endpoint is disabled; enable it before replaying".into(),
        ));
    }
    let now = crate::model::clock::now_rfc3339();
    let job = ReplayJob {
        id: crate::model::new_id("rpl"),
        endpoint_id: endpoint.id.to_string(),
        since: crate::model::clock::format_rfc3339(since),
        state: ReplayState::Running,
        replayed: 0,
        truncated: false,
        error: None,
        created_at: now.clone(),
        updated_at: now,
    };
    state.store.put_replay(tenant, &job).await?;
    tokio::spawn(crate::delivery::replay::run(
        state.queue.clone(),
        state.store.clone(),
        tenant.clone(),
        endpoint,
        job.clone(),
    ));
    let location = format!("/v1/replays/{}", job.id);
    Ok((
        StatusCode::ACCEPTED,
        [(axum::http::header::LOCATION, location)],
        axum::Json(job),
    )
        .into_response())
}

/// Get a replay job
///
/// How far a replay got: `running`, `done`, `failed` (with `error`), or
/// `interrupted` (its instance stopped; replay again to finish).
#[utoipa::path(
    get,
    path = "/v1/replays/{id}",
    operation_id = "get_replay",
    tag = "endpoints",
    params(("id" = String, Path, description = "The replay job's id")),
    security(("tenant_api_key" = ["endpoints:read"])),
    responses(
        (status = OK, description = "The replay job", body = ReplayJob),
        (status = NOT_FOUND, description = "No such replay job", body = Problem,
            content_type = PROBLEM_JSON),
        TenantErrors,
    ),
)]
pub async fn get_replay(
    State(state): State<AppState>,
    access: Access<scope::EndpointsRead>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let tenant = &access.tenant;
    let job = state
        .store
        .replay(tenant, &id)
        .await?
        .ok_or(ApiError::NotFound("replay job"))?;
    super::load(&state, &access, &job.endpoint_id)
        .await
        .map_err(|_| ApiError::NotFound("replay job"))?;
    let job = crate::delivery::replay::observed(job, time::OffsetDateTime::now_utc());
    Ok(axum::Json(job).into_response())
}
