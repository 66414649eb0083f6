//! `POST /v1/events` (ingest) and `GET /v1/events/{id}`.
//!
//! An event is answered `202` only after Redis stored it. The dedup key is
//! the `Idempotency-Key` header, or else the producer's `id`: the same key
//! within the idempotency window answers the first event's id and stores
//! nothing new.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::{Json, TenantId, validate};
use crate::error::{ApiError, ApiResult, FieldError};
use crate::queue::{NewEvent, Status, Stored};
use crate::state::AppState;
use crate::store::{delivery_body, new_id};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventIn {
    #[serde(rename = "type")]
    event_type: String,
    data: Box<RawValue>,
    id: Option<String>,
    timestamp: Option<String>,
}

#[derive(Serialize)]
struct Accepted<'a> {
    id: &'a str,
}

const IDEMPOTENCY_KEY: &str = "idempotency-key";

pub async fn ingest(
    State(state): State<AppState>,
    TenantId(tenant): TenantId,
    headers: HeaderMap,
    Json(event): Json<EventIn>,
) -> ApiResult<Response> {
    let mut errors = Vec::new();
    let idempotency_key = match headers.get(IDEMPOTENCY_KEY).map(|v| v.to_str()) {
        None => None,
        Some(Ok(key)) if !key.is_empty() && key.len() <= 255 => Some(key.to_string()),
        Some(_) => {
            errors.push(FieldError::new(
                "header:Idempotency-Key",
                "must be 1 to 255 visible ASCII characters",
            ));
            None
        }
    };
    validate::event_type("/type", &event.event_type, &mut errors);
    if let Some(id) = &event.id {
        validate::identifier("/id", id, &mut errors);
    }
    if !event.data.get().starts_with('{') {
        errors.push(FieldError::new("/data", "must be a JSON object"));
    }
    let timestamp = match &event.timestamp {
        None => crate::clock::now_rfc3339(),
        Some(text) => match crate::clock::parse_rfc3339(text) {
            Some(at) => crate::clock::format_rfc3339(at.to_offset(time::UtcOffset::UTC)),
            None => {
                errors.push(FieldError::new(
                    "/timestamp",
                    "must be an RFC 3339 date-time",
                ));
                String::new()
            }
        },
    };
    if !errors.is_empty() {
        return Err(ApiError::Invalid(errors));
    }

    let id = event.id.clone().unwrap_or_else(|| new_id("evt"));
    let (partition, dedup_key) = match &idempotency_key {
        Some(key) => (
            state.queue.partitions().of(&tenant, key),
            format!("key:{key}"),
        ),
        None => (
            state.queue.partitions().of(&tenant, &id),
            format!("id:{id}"),
        ),
    };
    let body = delivery_body(&event.event_type, &timestamp, event.data.get());
    let stored = state
        .queue
        .ingest(NewEvent {
            partition,
            tenant: &tenant,
            id: &id,
            event_type: &event.event_type,
            body: &body,
            timestamp: &timestamp,
            dedup_key: &dedup_key,
        })
        .await?;
    let (id, replayed) = match &stored {
        Stored::New(id) => {
            state.metrics.events_accepted.inc();
            (id, false)
        }
        Stored::Duplicate(id) => {
            state.metrics.events_duplicate.inc();
            (id, true)
        }
    };
    let mut response = (StatusCode::ACCEPTED, axum::Json(Accepted { id })).into_response();
    if replayed {
        response
            .headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    Ok(response)
}

#[derive(Serialize)]
struct EventOut<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    event_type: &'a str,
    timestamp: &'a str,
    data: Option<&'a RawValue>,
    deliveries: Vec<DeliveryOut<'a>>,
}

#[derive(Serialize)]
struct DeliveryOut<'a> {
    endpoint_id: &'a str,
    #[serde(flatten)]
    status: &'a Status,
}

#[derive(Deserialize)]
struct BodyData<'a> {
    #[serde(borrow)]
    data: &'a RawValue,
}

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
    let data = serde_json::from_str::<BodyData>(&event.body)
        .ok()
        .map(|b| b.data);
    let out = EventOut {
        id: &event.id,
        event_type: &event.event_type,
        timestamp: &event.timestamp,
        data,
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
