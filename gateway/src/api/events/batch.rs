//! `POST /v1/events/batch`: each event checked on its own, every valid one
//! stored, a result per event; the batch is let in, or refused, whole.

use std::num::NonZeroU32;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::ToSchema;

use super::prepare::prepare;
use super::{EventIn, IdempotencyHeader, counted, with_rate};
use crate::api::openapi::{BodyErrors, IngestErrors};
use crate::api::{Access, Json, Producer, parse_json, scope};
use crate::error::{ApiError, ApiResult, PROBLEM_JSON, Problem};
use crate::model::FieldError;
use crate::queue::NewEvent;
use crate::state::AppState;

/// Events checked one by one: each item is an `EventIn`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchIn {
    /// 1 to 1000 events.
    #[schema(value_type = Vec<EventIn>)]
    events: Vec<Box<RawValue>>,
}

/// Most events in one batch.
pub const MAX_BATCH: usize = 1000;

/// The result of one batch item: `202` with its id, or `422` with its errors.
#[derive(Serialize, ToSchema)]
struct ItemResult {
    index: usize,
    status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    /// The item's key was seen before: `id` is the first event's.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    duplicate: bool,
    /// The item's type or version is deprecated (when, RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    deprecated_at: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    errors: Vec<FieldError>,
}

#[derive(Serialize, ToSchema)]
struct BatchOut {
    /// One per event, in the order sent.
    results: Vec<ItemResult>,
}

/// Ingest a batch of events
///
/// Each event is checked on its own; every valid one is stored, and the
/// answer has a result per event. The batch is let in, or refused (429), whole.
#[utoipa::path(
    post,
    path = "/v1/events/batch",
    operation_id = "ingest_batch",
    tag = "events",
    security(("tenant_api_key" = ["events:write"])),
    responses(
        (status = OK, description = "A result per event", body = BatchOut, headers(
            ("RateLimit-Limit" = u32, description = "The tenant's ingest burst"),
            ("RateLimit-Remaining" = u32, description = "Events left in the bucket"),
            ("RateLimit-Reset" = u64, description = "Seconds until the bucket is full again"),
        )),
        IngestErrors,
        BodyErrors,
    ),
)]
pub async fn ingest_batch(
    State(state): State<AppState>,
    Access { tenant, .. }: Access<scope::EventsWrite>,
    IdempotencyHeader(header): IdempotencyHeader,
    Json(batch): Json<BatchIn>,
) -> ApiResult<Response> {
    ingest_many(&state, &tenant, header, batch).await
}

/// Ingest a batch of events for a tenant
///
/// As `POST /v1/events/batch`, for the tenant named in the path, with a
/// producer key allowed to post for it or the tenant's own API key.
#[utoipa::path(
    post,
    path = "/v1/tenants/{tenant}/events/batch",
    operation_id = "ingest_batch_for_tenant",
    tag = "events",
    params(("tenant" = String, Path, description = "The tenant the events are for")),
    security(("producer_key" = []), ("tenant_api_key" = ["events:write"])),
    responses(
        (status = OK, description = "A result per event", body = BatchOut),
        (status = NOT_FOUND, description = "No such tenant", body = Problem,
            content_type = PROBLEM_JSON),
        IngestErrors,
        BodyErrors,
    ),
)]
pub async fn ingest_batch_for_tenant(
    State(state): State<AppState>,
    producer: Producer,
    Path(tenant): Path<String>,
    IdempotencyHeader(header): IdempotencyHeader,
    Json(batch): Json<BatchIn>,
) -> ApiResult<Response> {
    super::posting_for(&state, &producer, &tenant).await?;
    ingest_many(&state, &tenant, header, batch).await
}

async fn ingest_many(
    state: &AppState,
    tenant: &str,
    header: Option<axum::http::HeaderValue>,
    batch: BatchIn,
) -> ApiResult<Response> {
    if header.is_some() {
        return Err(ApiError::invalid(
            "header:Idempotency-Key",
            "is not used by batches: give each event an `id` to deduplicate it",
        ));
    }
    if batch.events.is_empty() || batch.events.len() > MAX_BATCH {
        return Err(ApiError::invalid(
            "/events",
            format!("must hold 1 to {MAX_BATCH} events"),
        ));
    }
    let partitions = state.queue.partitions();
    let contracts = state.contracts.get(tenant).await?;
    let mut results = Vec::with_capacity(batch.events.len());
    let mut valid = Vec::new();
    for (index, raw) in batch.events.iter().enumerate() {
        let at = format!("/events/{index}");
        let mut errors = Vec::new();
        match parse_json::<EventIn>(raw.get().as_bytes()) {
            Ok(event) => {
                let prepared = prepare(
                    partitions,
                    &contracts,
                    tenant,
                    event,
                    None,
                    &at,
                    &mut errors,
                );
                if let Some(prepared) = prepared {
                    super::unknown_consumers(state, tenant, &at, &prepared.uids, &mut errors)
                        .await?;
                    if errors.is_empty() {
                        valid.push((index, prepared));
                    }
                }
            }
            Err(ApiError::Invalid(found)) => errors.extend(found.into_iter().map(|e| {
                let pointer = e.pointer.trim_start_matches('/');
                let pointer = if pointer.is_empty() {
                    at.clone()
                } else {
                    format!("{at}/{pointer}")
                };
                FieldError::new(pointer, e.message)
            })),
            Err(other) => errors.push(FieldError::new(at.clone(), other.to_string())),
        }
        results.push(ItemResult {
            index,
            status: 422,
            id: None,
            duplicate: false,
            deprecated_at: None,
            errors,
        });
    }
    let mut rate = None;
    if let Some(count) = NonZeroU32::new(valid.len() as u32) {
        rate = state.edge.admit(&state.queue, tenant, count).await?;
        let events: Vec<NewEvent> = valid.iter().map(|(_, p)| p.new_event(tenant)).collect();
        let stored = state.queue.ingest_many(&events).await?;
        for ((index, prepared), stored) in valid.iter().zip(stored) {
            let (id, duplicate) = counted(state, stored);
            let result = &mut results[*index];
            result.status = 202;
            result.id = Some(id);
            result.duplicate = duplicate;
            result.deprecated_at = prepared.deprecated_at.clone();
        }
    }
    Ok(with_rate(
        axum::Json(BatchOut { results }).into_response(),
        rate,
    ))
}
