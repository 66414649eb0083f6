//! Dead letters: list them, and redeliver one ([`crate::delivery::redeliver`]).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use super::openapi::{PageErrors, TenantErrors};
use super::{Access, PageQuery, Query, scope};
use crate::delivery::redeliver::{self, Refused};
use crate::error::{ApiError, ApiResult, PROBLEM_JSON, Problem};
use crate::model::{DeadLetter, DeadStage, Time};

use crate::state::AppState;

#[derive(Serialize, ToSchema)]
struct DeadLetterOut<'a> {
    id: &'a str,
    event_id: &'a str,
    endpoint_id: &'a str,
    msg_id: &'a str,
    stage: DeadStage,
    attempts: u32,
    error: &'a str,
    last_status_code: Option<u16>,
    #[schema(value_type = String, format = DateTime)]
    dead_at: Time,
}

impl<'a> DeadLetterOut<'a> {
    fn new(id: &'a str, letter: &'a DeadLetter) -> Self {
        DeadLetterOut {
            id,
            event_id: &letter.task.event,
            endpoint_id: &letter.task.endpoint,
            msg_id: &letter.task.msg_id,
            stage: letter.stage,
            attempts: letter.task.attempt,
            error: &letter.error,
            last_status_code: letter.last_status_code,
            dead_at: letter.dead_at,
        }
    }
}

/// A page of dead letters.
#[derive(Serialize, ToSchema)]
struct DeadLetterPage<'a> {
    data: Vec<DeadLetterOut<'a>>,
    next_cursor: Option<String>,
}

/// List dead letters
#[utoipa::path(
    get,
    path = "/v1/dead-letters",
    operation_id = "list_dead_letters",
    tag = "dead-letters",
    params(PageQuery),
    security(("tenant_api_key" = ["attempts:read"])),
    responses(
        (status = OK, description = "A page of dead letters", body = DeadLetterPage),
        TenantErrors,
        PageErrors,
    ),
)]
pub async fn list(
    State(state): State<AppState>,
    access: Access<scope::AttemptsRead>,
    Query(page): Query<PageQuery>,
) -> ApiResult<Response> {
    let owned = owned_endpoints(&state, &access).await?;
    let (letters, next_cursor) = visible_page(&state, &access.tenant, &page, owned).await?;
    let data = letters
        .iter()
        .map(|(id, l)| DeadLetterOut::new(id, l))
        .collect();
    Ok(axum::Json(DeadLetterPage { data, next_cursor }).into_response())
}

/// Stored pages read at most for one page of a consumer-limited key, whose
/// consumer may own few of the tenant's dead letters.
const SCAN_PAGES: usize = 20;

/// Up to `page.limit()` dead letters the key may see, newest first, and
/// the cursor after the last one read. For a key limited to a consumer
/// (`owned`: its endpoints), stored pages are read until the page is full,
/// the letters end or [`SCAN_PAGES`] pages were read; the page is short
/// only in the last case, and its cursor goes on from where reading stopped.
async fn visible_page(
    state: &AppState,
    tenant: &str,
    page: &PageQuery,
    owned: Option<std::collections::HashSet<String>>,
) -> ApiResult<(Vec<(String, DeadLetter)>, Option<String>)> {
    let limit = page.limit()?;
    let mut cursor = page.cursor.clone();
    let mut letters = Vec::with_capacity(limit);
    for _ in 0..SCAN_PAGES {
        let stored = state
            .store
            .dead_letters(tenant, limit, cursor.as_deref())
            .await?;
        let Some(owned) = &owned else {
            return Ok((stored.data, stored.next_cursor));
        };
        for (id, letter) in stored.data {
            if letters.len() == limit {
                // Full before this page ended: go on after the last one kept.
                let next = letters.last().map(|(id, _): &(String, _)| id.clone());
                return Ok((letters, next));
            }
            if owned.contains(letter.task.endpoint.as_str()) {
                letters.push((id, letter));
            }
        }
        cursor = stored.next_cursor;
        if cursor.is_none() || letters.len() == limit {
            break;
        }
    }
    Ok((letters, cursor))
}

/// For a key limited to a consumer, the ids of that consumer's endpoints
/// (it sees only their dead letters); `None` for a key seeing all.
async fn owned_endpoints<S>(
    state: &AppState,
    access: &Access<S>,
) -> ApiResult<Option<std::collections::HashSet<String>>> {
    let Some(consumer) = &access.consumer else {
        return Ok(None);
    };
    let (_, all) = state.store.all_endpoints(&access.tenant).await?;
    Ok(Some(
        all.into_iter()
            .filter(|e| e.consumer_id.as_ref() == Some(consumer))
            .map(|e| e.id.to_string())
            .collect(),
    ))
}

/// The task queued again for a dead letter.
#[derive(Serialize, ToSchema)]
struct Redelivered<'a> {
    event_id: &'a str,
    endpoint_id: &'a str,
}

/// Redeliver a dead letter
///
/// Queues a fresh task with a full retry schedule, then removes the dead
/// letter. A letter from a failed plugin chain runs the chain again first.
#[utoipa::path(
    post,
    path = "/v1/dead-letters/{id}/redeliver",
    operation_id = "redeliver_dead_letter",
    tag = "dead-letters",
    params(("id" = String, Path, description = "The dead letter's id")),
    security(("tenant_api_key" = ["endpoints:write"])),
    responses(
        (status = ACCEPTED, description = "Queued again", body = Redelivered),
        (status = NOT_FOUND, description = "No such dead letter", body = Problem,
            content_type = PROBLEM_JSON),
        (status = CONFLICT, description = "Cannot be redelivered: its endpoint is gone or \
            disabled, its event is past retention, or the plugin chain still does not \
            deliver it", body = Problem, content_type = PROBLEM_JSON),
        TenantErrors,
    ),
)]
pub async fn redeliver(
    State(state): State<AppState>,
    access: Access<scope::EndpointsWrite>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let tenant = &access.tenant;
    if let Some(owned) = owned_endpoints(&state, &access).await? {
        let letter = state.store.dead_letter(tenant, &id).await?;
        if !letter.is_some_and(|l| owned.contains(l.task.endpoint.as_str())) {
            return Err(ApiError::NotFound("dead letter"));
        }
    }
    let redelivered =
        redeliver::redeliver(&state.queue, &state.store, &state.chain, tenant, &id).await?;
    let task = match redelivered {
        Ok(task) => task,
        Err(Refused::NoLetter) => return Err(ApiError::NotFound("dead letter")),
        Err(refused) => return Err(ApiError::Conflict(refused.to_string())),
    };
    let out = Redelivered {
        event_id: &task.event,
        endpoint_id: &task.endpoint,
    };
    Ok((StatusCode::ACCEPTED, axum::Json(out)).into_response())
}
