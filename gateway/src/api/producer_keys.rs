//! Producer keys, the operator's: make one (shown once) for any tenant or
//! a listed set, list them, revoke one.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::audit::{json, record};
use super::openapi::{BodyErrors, OperatorErrors};
use super::{Json, Operator};
use crate::error::{ApiError, ApiResult, PROBLEM_JSON, Problem};
use crate::model::{Actor, FieldError};
use crate::state::AppState;
use crate::store::ProducerKey;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProducerKeyIn {
    /// 1 to 200 characters.
    name: String,
    /// The tenants it may post for (1 to 1000, each existing); absent: any.
    tenants: Option<Vec<String>>,
}

#[derive(Serialize, ToSchema)]
struct ProducerKeyCreated<'a> {
    #[serde(flatten)]
    key: &'a ProducerKey,
    /// `gwpk_...`: the only time it is shown.
    producer_key: &'a str,
}

/// Make a producer key
///
/// For a platform service posting events for many tenants
/// (`POST /v1/tenants/{tenant}/events`). The answer holds the key: the
/// only time it is shown.
#[utoipa::path(
    post,
    path = "/v1/admin/producer-keys",
    operation_id = "create_producer_key",
    tag = "admin",
    security(("operator_token" = [])),
    responses(
        (status = CREATED, description = "The key, with the key itself", body = ProducerKeyCreated),
        OperatorErrors,
        BodyErrors,
    ),
)]
pub async fn create(
    State(state): State<AppState>,
    _: Operator,
    Json(input): Json<ProducerKeyIn>,
) -> ApiResult<Response> {
    let mut errors = Vec::new();
    let name = input.name.trim();
    if name.is_empty() || name.len() > 200 {
        errors.push(FieldError::new("/name", "must be 1 to 200 characters"));
    }
    if let Some(tenants) = &input.tenants {
        if tenants.is_empty() || tenants.len() > 1000 {
            errors.push(FieldError::new("/tenants", "must list 1 to 1000 tenants"));
        }
        for (i, tenant) in tenants.iter().enumerate() {
            if state.store.tenant(tenant).await?.is_none() {
                errors.push(FieldError::new(format!("/tenants/{i}"), "no such tenant"));
            }
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::Invalid(errors));
    }
    let (key, producer_key) = state.store.create_producer_key(name, input.tenants).await?;
    let logged = record(
        &state,
        None,
        &Actor::operator(),
        "producer_key.created",
        ("producer_key", &key.id),
        None,
        json(&key),
    )
    .await;
    if let Err(e) = logged {
        state.store.revoke_producer_key(&key.id).await?;
        return Err(e);
    }
    let body = ProducerKeyCreated {
        key: &key,
        producer_key: &producer_key,
    };
    Ok((StatusCode::CREATED, axum::Json(body)).into_response())
}

/// List producer keys
#[utoipa::path(
    get,
    path = "/v1/admin/producer-keys",
    operation_id = "list_producer_keys",
    tag = "admin",
    security(("operator_token" = [])),
    responses(
        (status = OK, description = "Every producer key, newest first", body = Vec<ProducerKey>),
        OperatorErrors,
    ),
)]
pub async fn list(State(state): State<AppState>, _: Operator) -> ApiResult<Response> {
    Ok(axum::Json(state.store.producer_keys().await?).into_response())
}

/// Revoke a producer key
#[utoipa::path(
    delete,
    path = "/v1/admin/producer-keys/{id}",
    operation_id = "revoke_producer_key",
    tag = "admin",
    params(("id" = String, Path, description = "The key's id (`pk_...`)")),
    security(("operator_token" = [])),
    responses(
        (status = NO_CONTENT, description = "Revoked"),
        (status = NOT_FOUND, description = "No such key", body = Problem,
            content_type = PROBLEM_JSON),
        OperatorErrors,
    ),
)]
pub async fn revoke(
    State(state): State<AppState>,
    _: Operator,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let keys = state.store.producer_keys().await?;
    let key = keys
        .iter()
        .find(|k| k.id == id)
        .ok_or(ApiError::NotFound("producer key"))?;
    record(
        &state,
        None,
        &Actor::operator(),
        "producer_key.revoked",
        ("producer_key", &id),
        json(key),
        None,
    )
    .await?;
    if let Some((_, hash)) = state.store.revoke_producer_key(&id).await? {
        state.keys.forget(&hash);
    }
    Ok(StatusCode::NO_CONTENT)
}
