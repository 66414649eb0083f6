//! A tenant's consumers (its own customers): make, list, read, rename,
//! delete (refused while it owns endpoints), and a portal token: a key
//! limited to the consumer, for minutes to hours, for the customer to
//! manage its own endpoints.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::ToSchema;

use super::audit::{json, record};
use super::keys::{KeyCreated, make_key};
use super::openapi::{BodyErrors, PageErrors, TenantErrors};
use super::{Access, Json, PageQuery, Query, scope, validate};
use crate::error::{ApiError, ApiResult, PROBLEM_JSON, Problem};
use crate::model::{FieldError, Scope, Scopes};
use crate::state::AppState;
use crate::store::{Consumer, NewKey, Page};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsumerIn {
    /// The tenant's own id for its customer: unique in the tenant, never
    /// changed; up to 128 letters, digits and `._:-`. Events name it.
    uid: String,
    /// 1 to 200 characters.
    name: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsumerPatch {
    /// 1 to 200 characters.
    name: String,
}

fn check_name(name: &str, errors: &mut Vec<FieldError>) {
    if name.trim().is_empty() || name.len() > 200 {
        errors.push(FieldError::new("/name", "must be 1 to 200 characters"));
    }
}

async fn load<S>(state: &AppState, access: &Access<S>, id: &str) -> ApiResult<Consumer> {
    state
        .store
        .consumer(&access.tenant, id)
        .await?
        .filter(|c| access.reaches(Some(&c.id)))
        .ok_or(ApiError::NotFound("consumer"))
}

/// Make a consumer
#[utoipa::path(
    post,
    path = "/v1/consumers",
    operation_id = "create_consumer",
    tag = "consumers",
    security(("tenant_api_key" = ["consumers:write"])),
    responses(
        (status = CREATED, description = "The consumer", body = Consumer),
        (status = CONFLICT, description = "The tenant has a consumer of this uid", body = Problem,
            content_type = PROBLEM_JSON),
        TenantErrors,
        BodyErrors,
    ),
)]
pub async fn create(
    State(state): State<AppState>,
    access: Access<scope::ConsumersWrite>,
    Json(input): Json<ConsumerIn>,
) -> ApiResult<Response> {
    let mut errors = Vec::new();
    validate::identifier("/uid", &input.uid, &mut errors);
    check_name(&input.name, &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::Invalid(errors));
    }
    let now = crate::model::clock::now_rfc3339();
    let consumer = Consumer {
        id: Consumer::id_of(&input.uid),
        uid: input.uid,
        name: input.name.trim().to_string(),
        created_at: now.clone(),
        updated_at: now,
    };
    let tenant = &access.tenant;
    if state.store.consumer(tenant, &consumer.id).await?.is_some() {
        return Err(taken(&consumer.uid));
    }
    record(
        &state,
        Some(tenant),
        &access.actor,
        "consumer.created",
        ("consumer", &consumer.id),
        None,
        json(&consumer),
    )
    .await?;
    if !state.store.create_consumer(tenant, &consumer).await? {
        return Err(taken(&consumer.uid));
    }
    Ok((StatusCode::CREATED, axum::Json(consumer)).into_response())
}

fn taken(uid: &str) -> ApiError {
    ApiError::Conflict(format!("the tenant has a consumer of uid `{uid}` already"))
}

/// List consumers
#[utoipa::path(
    get,
    path = "/v1/consumers",
    operation_id = "list_consumers",
    tag = "consumers",
    params(PageQuery),
    security(("tenant_api_key" = ["consumers:read"])),
    responses(
        (status = OK, description = "A page of consumers, by id", body = Page<Consumer>),
        TenantErrors,
        PageErrors,
    ),
)]
pub async fn list(
    State(state): State<AppState>,
    Access { tenant, .. }: Access<scope::ConsumersRead>,
    Query(page): Query<PageQuery>,
) -> ApiResult<Response> {
    let page = state
        .store
        .consumers(&tenant, page.limit()?, page.cursor.as_deref())
        .await?;
    Ok(axum::Json(page).into_response())
}

/// Read a consumer
#[utoipa::path(
    get,
    path = "/v1/consumers/{id}",
    operation_id = "get_consumer",
    tag = "consumers",
    params(("id" = String, Path, description = "The consumer's id (`cs_...`)")),
    security(("tenant_api_key" = ["consumers:read"])),
    responses(
        (status = OK, description = "The consumer", body = Consumer),
        (status = NOT_FOUND, description = "No such consumer", body = Problem,
            content_type = PROBLEM_JSON),
        TenantErrors,
    ),
)]
pub async fn get_one(
    State(state): State<AppState>,
    access: Access<scope::ConsumersRead>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    Ok(axum::Json(load(&state, &access, &id).await?).into_response())
}

/// Rename a consumer
///
/// Its `uid` never changes.
#[utoipa::path(
    patch,
    path = "/v1/consumers/{id}",
    operation_id = "update_consumer",
    tag = "consumers",
    params(("id" = String, Path, description = "The consumer's id (`cs_...`)")),
    security(("tenant_api_key" = ["consumers:write"])),
    responses(
        (status = OK, description = "The consumer as changed", body = Consumer),
        (status = NOT_FOUND, description = "No such consumer", body = Problem,
            content_type = PROBLEM_JSON),
        TenantErrors,
        BodyErrors,
    ),
)]
pub async fn update(
    State(state): State<AppState>,
    access: Access<scope::ConsumersWrite>,
    Path(id): Path<String>,
    Json(patch): Json<ConsumerPatch>,
) -> ApiResult<Response> {
    let mut errors = Vec::new();
    check_name(&patch.name, &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::Invalid(errors));
    }
    let before = load(&state, &access, &id).await?;
    let after = Consumer {
        name: patch.name.trim().to_string(),
        updated_at: crate::model::clock::now_rfc3339(),
        ..before.clone()
    };
    record(
        &state,
        Some(&access.tenant),
        &access.actor,
        "consumer.updated",
        ("consumer", &id),
        json(&before),
        json(&after),
    )
    .await?;
    state.store.put_consumer(&access.tenant, &after).await?;
    Ok(axum::Json(after).into_response())
}

/// Delete a consumer
///
/// Refused (409) while it owns endpoints: delete them first.
#[utoipa::path(
    delete,
    path = "/v1/consumers/{id}",
    operation_id = "delete_consumer",
    tag = "consumers",
    params(("id" = String, Path, description = "The consumer's id (`cs_...`)")),
    security(("tenant_api_key" = ["consumers:write"])),
    responses(
        (status = NO_CONTENT, description = "Deleted"),
        (status = NOT_FOUND, description = "No such consumer", body = Problem,
            content_type = PROBLEM_JSON),
        (status = CONFLICT, description = "It owns endpoints", body = Problem,
            content_type = PROBLEM_JSON),
        TenantErrors,
    ),
)]
pub async fn delete(
    State(state): State<AppState>,
    access: Access<scope::ConsumersWrite>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let consumer = load(&state, &access, &id).await?;
    let tenant = &access.tenant;
    let (_, endpoints) = state.store.all_endpoints(tenant).await?;
    let owned = endpoints
        .iter()
        .filter(|e| e.consumer_id.as_deref() == Some(id.as_str()))
        .count();
    if owned > 0 {
        return Err(ApiError::Conflict(format!(
            "the consumer owns {owned} endpoint(s); delete them first"
        )));
    }
    record(
        &state,
        Some(tenant),
        &access.actor,
        "consumer.deleted",
        ("consumer", &id),
        json(&consumer),
        None,
    )
    .await?;
    state.store.delete_consumer(tenant, &id).await?;
    state.consumers.forget(tenant, &consumer.uid);
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PortalTokenIn {
    /// Seconds it is good for: 300 (5 minutes) to 86400 (24 hours).
    ttl: u64,
}

/// Shortest and longest life of a portal token, in seconds.
const PORTAL_TTL: std::ops::RangeInclusive<u64> = 300..=86_400;

/// Make a portal token
///
/// A key limited to this consumer, good for `ttl` seconds, holding
/// `endpoints:read`, `endpoints:write`, `attempts:read` and
/// `event-types:read`: for the tenant's customer to manage its own
/// endpoints. Listed and revoked as the tenant's other keys.
#[utoipa::path(
    post,
    path = "/v1/consumers/{id}/portal-token",
    operation_id = "create_portal_token",
    tag = "consumers",
    params(("id" = String, Path, description = "The consumer's id (`cs_...`)")),
    security(("tenant_api_key" = ["keys:manage"])),
    responses(
        (status = CREATED, description = "The token (`api_key`), shown once", body = KeyCreated),
        (status = NOT_FOUND, description = "No such consumer", body = Problem,
            content_type = PROBLEM_JSON),
        TenantErrors,
        BodyErrors,
    ),
)]
pub async fn portal_token(
    State(state): State<AppState>,
    access: Access<scope::KeysManage>,
    Path(id): Path<String>,
    Json(input): Json<PortalTokenIn>,
) -> ApiResult<Response> {
    if !PORTAL_TTL.contains(&input.ttl) {
        return Err(ApiError::invalid(
            "/ttl",
            format!(
                "must be {} to {} seconds",
                PORTAL_TTL.start(),
                PORTAL_TTL.end()
            ),
        ));
    }
    let consumer = load(&state, &access, &id).await?;
    let scopes = Scopes::of(&Scope::FOR_CONSUMER);
    if !access.scopes().covers(scopes) {
        return Err(ApiError::Forbidden(
            "a portal token holds endpoints:read, endpoints:write, attempts:read and \
             event-types:read: the key making it must hold them too"
                .into(),
        ));
    }
    let name = format!("portal token for {}", consumer.uid);
    let new = NewKey {
        name: &name,
        scopes,
        consumer: Some(&consumer.id),
        expires_at_ms: Some(crate::model::clock::now_ms() + input.ttl * 1000),
    };
    make_key(&state, &access, new).await
}
