//! `POST /v1/events` (ingest), `POST /v1/events/batch` and `GET /v1/events/{id}`.
//!
//! An event is answered `202` only after Redis stored it. The dedup key is
//! the `Idempotency-Key` header, or else the producer's `id`: the same key
//! within the idempotency window answers the first event's id and stores
//! nothing new. A batch validates each item on its own (the same checks as a
//! single event), stores every valid one and answers a result per item.
//!
//! An event of a registered type is stored at a schema version (its
//! `version`, else the type's latest) and only if its data matches that
//! version's schema: the 422 lists every violation with its pointer. A
//! deprecated type or version is accepted with a `Deprecation` header.
//!
//! Both routes pass the tenant's edge limits (`crate::admission::ingest`) once the input
//! is valid and before anything is stored: a refused request stores nothing.
//! Every valid item of a batch counts against the ingest rate, and a batch is
//! let in whole or refused whole (429): a producer never has to work out
//! which items of a refused batch to send again.
//!
//! The checks of an event are in `prepare`, the batch route in `batch`.

pub(super) mod batch;
mod prepare;

use std::num::NonZeroU32;

use axum::extract::FromRequestParts;
use axum::extract::{Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::ToSchema;

use super::openapi::{BodyErrors, IngestErrors, TenantErrors};
use super::{Json, TenantId};
use crate::error::RateHeaders;
use crate::error::{ApiError, ApiResult, PROBLEM_JSON, Problem};
use crate::model::{FieldError, Status};
use crate::queue::Stored;
use crate::state::AppState;
use prepare::prepare;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventIn {
    /// Up to 256 letters, digits and `._:-`.
    #[serde(rename = "type")]
    event_type: String,
    /// The payload, delivered as sent.
    #[schema(value_type = Object)]
    data: Box<RawValue>,
    /// The schema version of `data`; the type's latest when absent.
    version: Option<u32>,
    /// The producer's id (up to 128 letters, digits and `._:-`), which
    /// deduplicates the event when no `Idempotency-Key` is sent; made up
    /// when absent.
    id: Option<String>,
    /// RFC 3339; the time of ingest when absent.
    #[schema(format = DateTime)]
    timestamp: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[schema(as = EventAccepted)]
struct Accepted<'a> {
    /// The event's id (the first event's, when its key was seen before).
    id: &'a str,
}

const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// The `Idempotency-Key` header as sent (`None` without one), read without
/// copying the request's other headers.
pub struct IdempotencyHeader(Option<HeaderValue>);

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyHeader {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(IdempotencyHeader(
            parts.headers.get(IDEMPOTENCY_KEY).cloned(),
        ))
    }
}

/// Counts a stored event; answers its id and whether it was seen before.
fn counted(state: &AppState, stored: Stored) -> (String, bool) {
    match stored {
        Stored::New(id) => {
            state.metrics.events_accepted.inc();
            (id, false)
        }
        Stored::Duplicate(id) => {
            state.metrics.events_duplicate.inc();
            (id, true)
        }
    }
}

/// The `Deprecation` header (RFC 9745): `@` and the Unix time it was deprecated.
fn deprecation(deprecated_at: &str) -> Option<HeaderValue> {
    let at = crate::model::clock::parse_rfc3339(deprecated_at)?;
    HeaderValue::try_from(format!("@{}", at.unix_timestamp())).ok()
}

fn with_rate(mut response: Response, rate: Option<RateHeaders>) -> Response {
    if let Some(rate) = rate {
        rate.write(response.headers_mut());
    }
    response
}

/// Ingest an event
///
/// Answered `202` once Redis stored it. The same `Idempotency-Key` (or else
/// the same `id`) within the idempotency window answers the first event's id
/// and stores nothing new.
#[utoipa::path(
    post,
    path = "/v1/events",
    operation_id = "ingest_event",
    tag = "events",
    params(("Idempotency-Key" = Option<String>, Header,
        description = "Deduplicates the event: 1 to 255 visible ASCII characters")),
    security(("tenant_api_key" = [])),
    responses(
        (status = ACCEPTED, description = "Stored", body = Accepted, headers(
            ("Idempotent-Replayed" = String,
                description = "`true` when the key was seen before: nothing new was stored"),
            ("Deprecation" = String,
                description = "When the event's type or version was deprecated (`@` and a Unix time)"),
            ("RateLimit-Limit" = u32, description = "The tenant's ingest burst"),
            ("RateLimit-Remaining" = u32, description = "Events left in the bucket"),
            ("RateLimit-Reset" = u64, description = "Seconds until the bucket is full again"),
        )),
        IngestErrors,
        BodyErrors,
    ),
)]
pub async fn ingest(
    State(state): State<AppState>,
    TenantId(tenant): TenantId,
    IdempotencyHeader(header): IdempotencyHeader,
    Json(event): Json<EventIn>,
) -> ApiResult<Response> {
    let mut errors = Vec::new();
    let idempotency_key = match header.as_ref().map(|v| v.to_str()) {
        None => None,
        Some(Ok(key)) if !key.is_empty() && key.len() <= 255 => Some(key),
        Some(_) => {
            errors.push(FieldError::new(
                "header:Idempotency-Key",
                "must be 1 to 255 visible ASCII characters",
            ));
            None
        }
    };
    let partitions = state.queue.partitions();
    let contracts = state.contracts.get(&tenant).await?;
    let prepared = prepare(
        partitions,
        &contracts,
        &tenant,
        event,
        idempotency_key,
        "",
        &mut errors,
    );
    let Some(prepared) = prepared.filter(|_| errors.is_empty()) else {
        return Err(ApiError::Invalid(errors));
    };
    let rate = state
        .edge
        .admit(&state.queue, &tenant, NonZeroU32::MIN)
        .await?;
    let stored = state.queue.ingest(prepared.new_event(&tenant)).await?;
    let (id, replayed) = counted(&state, stored);
    let mut response = (StatusCode::ACCEPTED, axum::Json(Accepted { id: &id })).into_response();
    if replayed {
        response
            .headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    if let Some(value) = prepared.deprecated_at.as_deref().and_then(deprecation) {
        response.headers_mut().insert("deprecation", value);
    }
    Ok(with_rate(response, rate))
}

#[derive(Serialize, ToSchema)]
struct EventOut<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    event_type: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<u32>,
    timestamp: &'a str,
    /// The payload as sent (`null` if its stored body cannot be read).
    #[schema(value_type = Option<Object>)]
    data: Option<&'a RawValue>,
    /// Its status at each endpoint it goes to.
    deliveries: Vec<DeliveryOut<'a>>,
}

#[derive(Serialize, ToSchema)]
struct DeliveryOut<'a> {
    endpoint_id: &'a str,
    #[serde(flatten)]
    status: &'a Status,
}

#[derive(Deserialize)]
struct BodyData<'a> {
    version: Option<u32>,
    #[serde(borrow)]
    data: &'a RawValue,
}

/// Read an event
///
/// With its status at each endpoint.
#[utoipa::path(
    get,
    path = "/v1/events/{id}",
    operation_id = "get_event",
    tag = "events",
    params(("id" = String, Path, description = "The event's id")),
    security(("tenant_api_key" = [])),
    responses(
        (status = OK, description = "The event", body = EventOut),
        (status = NOT_FOUND, description = "No such event, or past its retention", body = Problem,
            content_type = PROBLEM_JSON),
        TenantErrors,
    ),
)]
pub async fn get_event(
    State(state): State<AppState>,
    TenantId(tenant): TenantId,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let event = state
        .store
        .event(&tenant, &id)
        .await?
        .ok_or(ApiError::NotFound("event"))?;
    let parts = serde_json::from_str::<BodyData>(&event.body).ok();
    let out = EventOut {
        id: &event.id,
        event_type: &event.event_type,
        version: parts.as_ref().and_then(|b| b.version),
        timestamp: &event.timestamp,
        data: parts.map(|b| b.data),
        deliveries: event
            .statuses
            .iter()
            .map(|(endpoint_id, status)| DeliveryOut {
                endpoint_id,
                status,
            })
            .collect(),
    };
    Ok(axum::Json(out).into_response())
}
