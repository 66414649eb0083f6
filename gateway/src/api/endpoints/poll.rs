//! The pull channel of an endpoint in poll mode: the consumer reads its
//! events from a cursor (long-polling with `wait_ms`), each with the
//! signature headers a push would carry, and acknowledges a cursor so that
//! a consumer that restarts resumes after it. Both routes take the tenant's
//! API key or a poll key made for that one endpoint.

use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::load_owned;
use crate::api::openapi::{BodyErrors, TenantErrors};
use crate::api::{Access, Json, PollCaller, Query, scope};
use crate::error::{ApiError, ApiResult, PROBLEM_JSON, Problem};
use crate::queue::Polled;
use crate::state::AppState;
use crate::store::{Endpoint, is_stream_id};

/// Longest a long poll waits.
const MAX_WAIT_MS: u64 = 25_000;
/// How often a long poll looks for new events.
const LOOK_EVERY: Duration = Duration::from_millis(20);
/// Events per read at most.
const MAX_LIMIT: usize = 1_000;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PollQuery {
    /// Read after this cursor; the last acknowledged one when absent (or
    /// from the start when none was).
    cursor: Option<String>,
    /// Events at most, 1 to 1000 (100 when absent).
    limit: Option<usize>,
    /// Wait up to this long (ms, at most 25000) for an event when none is there.
    wait_ms: Option<u64>,
}

/// A page of the poll channel.
#[derive(Serialize, ToSchema)]
struct PollPage {
    data: Vec<PolledOut>,
    /// Read after this next (the last event's cursor, or the one read after).
    next_cursor: String,
}

/// One event as a push would have carried it.
#[derive(Serialize, ToSchema)]
struct PolledOut {
    /// The event's id.
    id: String,
    /// Its cursor in the channel.
    cursor: String,
    /// The body a push would have sent (`type`, `timestamp`, `data`, ...).
    #[schema(value_type = Object)]
    body: Value,
    /// `webhook-id`, `webhook-timestamp`, `webhook-signature`, signed over `raw`.
    #[schema(value_type = Object)]
    headers: Value,
    /// The exact body bytes the signature covers.
    raw: String,
}

fn polled_out(p: Polled) -> PolledOut {
    PolledOut {
        id: p.event,
        body: serde_json::from_str(&p.body).unwrap_or(Value::Null),
        headers: serde_json::from_str(&p.headers).unwrap_or(Value::Null),
        raw: p.body,
        cursor: p.cursor,
    }
}

async fn poll_endpoint<S>(
    state: &AppState,
    caller: &PollCaller<S>,
    id: &str,
) -> ApiResult<Endpoint> {
    if !caller.may_poll(id) {
        return Err(ApiError::NotFound("endpoint"));
    }
    let endpoint = load_owned(state, &caller.tenant, caller.consumer.as_deref(), id).await?;
    if endpoint.mode.is_push() {
        return Err(ApiError::Conflict(
            "the endpoint is in push mode: its events are POSTed to its url, not polled".into(),
        ));
    }
    Ok(endpoint)
}

fn cursor_ok(cursor: &str) -> bool {
    cursor == "0" || is_stream_id(cursor)
}

/// Poll an endpoint's events
#[utoipa::path(
    get,
    path = "/v1/endpoints/{id}/poll",
    operation_id = "poll_endpoint",
    tag = "endpoints",
    params(("id" = String, Path, description = "The endpoint's id"), PollQuery),
    security(("tenant_api_key" = ["endpoints:read"]), ("poll_key" = [])),
    responses(
        (status = OK, description = "The next events, oldest first", body = PollPage),
        (status = NOT_FOUND, description = "No such endpoint", body = Problem,
            content_type = PROBLEM_JSON),
        (status = CONFLICT, description = "The endpoint is in push mode", body = Problem,
            content_type = PROBLEM_JSON),
        TenantErrors,
    ),
)]
pub async fn poll(
    State(state): State<AppState>,
    caller: PollCaller<scope::EndpointsRead>,
    Path(id): Path<String>,
    Query(query): Query<PollQuery>,
) -> ApiResult<Response> {
    let limit = match query.limit {
        None => 100,
        Some(n @ 1..=MAX_LIMIT) => n,
        Some(_) => {
            let message = format!("must be between 1 and {MAX_LIMIT}");
            return Err(ApiError::invalid("query:limit", message));
        }
    };
    let wait = match query.wait_ms {
        None => 0,
        Some(ms @ 0..=MAX_WAIT_MS) => ms,
        Some(_) => {
            let message = format!("must be at most {MAX_WAIT_MS}");
            return Err(ApiError::invalid("query:wait_ms", message));
        }
    };
    if let Some(cursor) = query.cursor.as_deref().filter(|c| !cursor_ok(c)) {
        let message = format!("`{cursor}` is not a cursor this channel gave");
        return Err(ApiError::invalid("query:cursor", message));
    }
    poll_endpoint(&state, &caller, &id).await?;
    let tenant = caller.tenant;
    let cursor = match query.cursor {
        Some(c) => c,
        None => state
            .queue
            .poll_acked(&tenant, &id)
            .await?
            .unwrap_or_else(|| "0".into()),
    };
    let until = Instant::now() + Duration::from_millis(wait);
    let polled = loop {
        let polled = state.queue.poll_read(&tenant, &id, &cursor, limit).await?;
        if !polled.is_empty() || Instant::now() >= until {
            break polled;
        }
        tokio::time::sleep(LOOK_EVERY.min(until - Instant::now())).await;
    };
    let next_cursor = polled.last().map_or(cursor, |p| p.cursor.clone());
    let data = polled.into_iter().map(polled_out).collect();
    Ok(axum::Json(PollPage { data, next_cursor }).into_response())
}

/// The cursor a consumer acknowledges.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AckIn {
    cursor: String,
}

/// Acknowledge a poll cursor
///
/// A poll without a cursor reads after it from now on: a consumer that
/// restarts resumes there.
#[utoipa::path(
    post,
    path = "/v1/endpoints/{id}/poll/ack",
    operation_id = "ack_endpoint_poll",
    tag = "endpoints",
    params(("id" = String, Path, description = "The endpoint's id")),
    security(("tenant_api_key" = ["endpoints:write"]), ("poll_key" = [])),
    responses(
        (status = NO_CONTENT, description = "Acknowledged"),
        (status = NOT_FOUND, description = "No such endpoint", body = Problem,
            content_type = PROBLEM_JSON),
        (status = CONFLICT, description = "The endpoint is in push mode", body = Problem,
            content_type = PROBLEM_JSON),
        TenantErrors,
        BodyErrors,
    ),
)]
pub async fn ack(
    State(state): State<AppState>,
    caller: PollCaller<scope::EndpointsWrite>,
    Path(id): Path<String>,
    Json(input): Json<AckIn>,
) -> ApiResult<axum::http::StatusCode> {
    if !cursor_ok(&input.cursor) {
        return Err(ApiError::invalid(
            "/cursor",
            "is not a cursor this channel gave",
        ));
    }
    poll_endpoint(&state, &caller, &id).await?;
    state
        .queue
        .poll_ack(&caller.tenant, &id, &input.cursor)
        .await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}

/// A poll key, shown once.
#[derive(Serialize, ToSchema)]
struct PollKeyOut {
    endpoint_id: String,
    /// `gwp_...`: good for this endpoint's poll routes only.
    key: String,
}

/// Make a poll key for an endpoint
///
/// A credential for the endpoint's consumer: it may poll and acknowledge
/// this endpoint, and nothing else. Shown only here.
#[utoipa::path(
    post,
    path = "/v1/endpoints/{id}/poll/keys",
    operation_id = "create_endpoint_poll_key",
    tag = "endpoints",
    params(("id" = String, Path, description = "The endpoint's id")),
    security(("tenant_api_key" = ["endpoints:write"])),
    responses(
        (status = CREATED, description = "The key", body = PollKeyOut),
        (status = NOT_FOUND, description = "No such endpoint", body = Problem,
            content_type = PROBLEM_JSON),
        (status = CONFLICT, description = "The endpoint is in push mode", body = Problem,
            content_type = PROBLEM_JSON),
        TenantErrors,
    ),
)]
pub async fn create_key(
    State(state): State<AppState>,
    access: Access<scope::EndpointsWrite>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let caller = PollCaller::<scope::EndpointsWrite>::of_key(access);
    poll_endpoint(&state, &caller, &id).await?;
    let key = state.store.create_poll_key(&caller.tenant, &id).await?;
    let out = PollKeyOut {
        endpoint_id: id,
        key,
    };
    Ok((axum::http::StatusCode::CREATED, axum::Json(out)).into_response())
}
