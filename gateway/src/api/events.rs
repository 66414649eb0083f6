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
use super::{Json, TenantId, parse_json, validate};
use crate::contracts::{Checked, Snapshot};
use crate::error::RateHeaders;
use crate::error::{ApiError, ApiResult, PROBLEM_JSON, Problem};
use crate::keys::Partitions;
use crate::model::{FieldError, Status, new_id};
use crate::queue::{NewEvent, Stored};
use crate::state::AppState;
use crate::store::delivery_body;

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

/// A valid event, ready to store.
struct Prepared {
    /// None when the queue names the event (see `Queue::ingest`).
    id: Option<String>,
    event_type: String,
    version: Option<u32>,
    /// Set when the type or version is deprecated (RFC 3339).
    deprecated_at: Option<String>,
    timestamp: String,
    body: String,
    partition: u16,
    dedup_key: Option<String>,
}

impl Prepared {
    fn new_event<'a>(&'a self, tenant: &'a str) -> NewEvent<'a> {
        NewEvent {
            partition: self.partition,
            tenant,
            id: self.id.as_deref(),
            event_type: &self.event_type,
            version: self.version,
            body: &self.body,
            timestamp: &self.timestamp,
            dedup_key: self.dedup_key.as_deref(),
        }
    }
}

/// Checks one event (its fields, then its data against the schema of its
/// type's version), adding its problems to `errors` with pointers under
/// `at` (`""` for a single event, `/events/3` for a batch item).
fn prepare(
    partitions: Partitions,
    contracts: &Snapshot,
    tenant: &str,
    event: EventIn,
    idempotency_key: Option<&str>,
    at: &str,
    errors: &mut Vec<FieldError>,
) -> Option<Prepared> {
    let found = errors.len();
    validate::event_type(&format!("{at}/type"), &event.event_type, errors);
    if let Some(id) = &event.id {
        validate::identifier(&format!("{at}/id"), id, errors);
    }
    if event.version == Some(0) {
        errors.push(FieldError::new(
            format!("{at}/version"),
            "must be at least 1",
        ));
    }
    if !event.data.get().starts_with('{') {
        errors.push(FieldError::new(
            format!("{at}/data"),
            "must be a JSON object",
        ));
    }
    let checked = match errors.len() > found {
        true => Checked::default(),
        false => contracts.check_event(
            &event.event_type,
            event.version,
            event.data.get(),
            at,
            errors,
        ),
    };
    let timestamp = match &event.timestamp {
        None => crate::model::clock::now_rfc3339(),
        Some(text) => match crate::model::clock::parse_rfc3339(text) {
            Some(at) => crate::model::clock::format_rfc3339(at.to_offset(time::UtcOffset::UTC)),
            None => {
                errors.push(FieldError::new(
                    format!("{at}/timestamp"),
                    "must be an RFC 3339 date-time",
                ));
                String::new()
            }
        },
    };
    if errors.len() > found {
        return None;
    }
    // An event with neither a key nor its own id has nothing to be
    // deduplicated against: no idempotency record is kept, and the queue
    // names it when it stores it.
    let (id, dedup_key) = match (idempotency_key, event.id) {
        (Some(key), id) => (
            Some(id.unwrap_or_else(|| new_id("evt"))),
            Some(format!("key:{key}")),
        ),
        (None, Some(id)) => (Some(id.clone()), Some(format!("id:{id}"))),
        (None, None) => (None, None),
    };
    let partition = match (idempotency_key, &id) {
        (Some(key), _) => partitions.of(tenant, key),
        (None, Some(id)) => partitions.of(tenant, id),
        (None, None) => partitions.spread(),
    };
    let body = delivery_body(
        &event.event_type,
        checked.version,
        &timestamp,
        event.data.get(),
    );
    Some(Prepared {
        id,
        event_type: event.event_type,
        version: checked.version,
        deprecated_at: checked.deprecated_at,
        timestamp,
        body,
        partition,
        dedup_key,
    })
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
    security(("tenant_api_key" = [])),
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
    TenantId(tenant): TenantId,
    IdempotencyHeader(header): IdempotencyHeader,
    Json(batch): Json<BatchIn>,
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
    let contracts = state.contracts.get(&tenant).await?;
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
                    &tenant,
                    event,
                    None,
                    &at,
                    &mut errors,
                );
                if let Some(prepared) = prepared {
                    valid.push((index, prepared));
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
        rate = state.edge.admit(&state.queue, &tenant, count).await?;
        let events: Vec<NewEvent> = valid.iter().map(|(_, p)| p.new_event(&tenant)).collect();
        let stored = state.queue.ingest_many(&events).await?;
        for ((index, prepared), stored) in valid.iter().zip(stored) {
            let (id, duplicate) = counted(&state, stored);
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
