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
pub(in crate::api) mod prepare;

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
use super::{Access, Json, Producer, scope};
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
    /// The consumer (its `uid`) or consumers it is for: it goes only to
    /// their endpoints. Absent: to every endpoint of the tenant that takes
    /// its type.
    consumer: Option<Audience>,
    /// Its channels: an endpoint with channels takes only events of one of
    /// them (up to 100, each as `id`).
    #[serde(default)]
    channels: Vec<String>,
}

/// One consumer uid, or a list of them.
#[derive(Deserialize, ToSchema)]
#[serde(untagged, expecting = "a consumer uid, or a list of them")]
pub enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    fn into_vec(self) -> Vec<String> {
        match self {
            Audience::One(uid) => vec![uid],
            Audience::Many(uids) => uids,
        }
    }
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
    security(("tenant_api_key" = ["events:write"])),
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
    Access { tenant, .. }: Access<scope::EventsWrite>,
    IdempotencyHeader(header): IdempotencyHeader,
    Json(event): Json<EventIn>,
) -> ApiResult<Response> {
    ingest_one(&state, &tenant, header, event).await
}

/// Ingest an event for a tenant
///
/// As `POST /v1/events`, for the tenant named in the path: with a producer
/// key (`gwpk_...`, made by the operator) allowed to post for it, or with
/// the tenant's own API key holding `events:write`.
#[utoipa::path(
    post,
    path = "/v1/tenants/{tenant}/events",
    operation_id = "ingest_event_for_tenant",
    tag = "events",
    params(("tenant" = String, Path, description = "The tenant the event is for"),
        ("Idempotency-Key" = Option<String>, Header,
        description = "Deduplicates the event: 1 to 255 visible ASCII characters")),
    security(("producer_key" = []), ("tenant_api_key" = ["events:write"])),
    responses(
        (status = ACCEPTED, description = "Stored", body = Accepted),
        (status = NOT_FOUND, description = "No such tenant", body = Problem,
            content_type = PROBLEM_JSON),
        IngestErrors,
        BodyErrors,
    ),
)]
pub async fn ingest_for_tenant(
    State(state): State<AppState>,
    producer: Producer,
    Path(tenant): Path<String>,
    IdempotencyHeader(header): IdempotencyHeader,
    Json(event): Json<EventIn>,
) -> ApiResult<Response> {
    posting_for(&state, &producer, &tenant).await?;
    ingest_one(&state, &tenant, header, event).await
}

/// Whether `producer` may post for `tenant`, which exists: else 403 or 404.
pub(super) async fn posting_for(
    state: &AppState,
    producer: &Producer,
    tenant: &str,
) -> ApiResult<()> {
    producer.post_for(tenant)?;
    match state.store.tenant(tenant).await? {
        Some(_) => Ok(()),
        None => Err(ApiError::NotFound("tenant")),
    }
}

/// The consumers named by `uids` (under `pointer`) that the tenant does not
/// have, as problems.
pub(super) async fn unknown_consumers(
    state: &AppState,
    tenant: &str,
    pointer: &str,
    uids: &[String],
    errors: &mut Vec<FieldError>,
) -> ApiResult<()> {
    if uids.is_empty() {
        return Ok(());
    }
    let names: Vec<&str> = uids.iter().map(String::as_str).collect();
    let exist = state.consumers.exist(&state.store, tenant, &names).await?;
    for (i, (uid, exists)) in uids.iter().zip(exist).enumerate() {
        if !exists {
            errors.push(FieldError::new(
                format!("{pointer}/consumer/{i}"),
                format!("the tenant has no consumer `{uid}`"),
            ));
        }
    }
    Ok(())
}

async fn ingest_one(
    state: &AppState,
    tenant: &str,
    header: Option<HeaderValue>,
    event: EventIn,
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
    let contracts = state.contracts.get(tenant).await?;
    let prepared = prepare(
        partitions,
        &contracts,
        tenant,
        event,
        idempotency_key,
        "",
        &mut errors,
    );
    if let Some(prepared) = prepared.as_ref().filter(|_| errors.is_empty()) {
        unknown_consumers(state, tenant, "", &prepared.uids, &mut errors).await?;
    }
    let Some(prepared) = prepared.filter(|_| errors.is_empty()) else {
        return Err(ApiError::Invalid(errors));
    };
    let rate = state
        .edge
        .admit(&state.queue, tenant, NonZeroU32::MIN)
        .await?;
    let stored = state.queue.ingest(prepared.new_event(tenant)).await?;
    let (id, replayed) = counted(state, stored);
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
    security(("tenant_api_key" = ["events:read"])),
    responses(
        (status = OK, description = "The event", body = EventOut),
        (status = NOT_FOUND, description = "No such event, or past its retention", body = Problem,
            content_type = PROBLEM_JSON),
        TenantErrors,
    ),
)]
pub async fn get_event(
    State(state): State<AppState>,
    Access { tenant, .. }: Access<scope::EventsRead>,
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
