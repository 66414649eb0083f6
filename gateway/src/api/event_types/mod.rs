//! Event contracts: event types, their schema versions (JSON Schema draft
//! 2020-12) with the compatibility check against the previous version, the
//! version transforms between them, and the tenant's contract settings.
//!
//! Versions are numbered 1, 2, 3... and written once: a version's schema
//! never changes (only its `deprecated` flag). A new version is compared
//! with the one before it; one with breaking changes is refused (409, with
//! the report) unless transforms both ways between the two are registered,
//! or the request says `force` (which the version records).
//!
//! The versions' routes are in `versions`, the transforms' in `transforms`.

pub(super) mod transforms;
pub(super) mod versions;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::audit;
use super::openapi::{BodyErrors, PageErrors, TenantErrors};
use super::{Access, Json, PageQuery, Query, scope, validate};
use crate::error::{ApiError, ApiResult, PROBLEM_JSON, Problem};
use crate::state::AppState;
use crate::store::{ContractSettings, EventTypeRecord, Page, Transform};

/// Most versions of one event type.
const MAX_VERSIONS: u32 = 1000;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventTypeIn {
    description: Option<String>,
    deprecated: Option<bool>,
}

/// A version as listed (without its schema).
#[derive(Serialize, ToSchema)]
struct VersionSummary {
    version: u32,
    deprecated: bool,
    forced: bool,
    created_at: String,
}

#[derive(Serialize, ToSchema)]
struct EventTypeOut {
    #[serde(flatten)]
    record: EventTypeRecord,
    versions: Vec<VersionSummary>,
    transforms: Vec<Transform>,
}

fn type_name(name: &str) -> ApiResult<()> {
    let mut errors = Vec::new();
    validate::event_type("path:type", name, &mut errors);
    match errors.is_empty() {
        true => Ok(()),
        false => Err(ApiError::Invalid(errors)),
    }
}

fn version_number(text: &str) -> ApiResult<u32> {
    match text.parse::<u32>() {
        Ok(n @ 1..=MAX_VERSIONS) => Ok(n),
        _ => Err(ApiError::invalid(
            "path:version",
            format!("must be a whole number from 1 to {MAX_VERSIONS}"),
        )),
    }
}

async fn load_type(state: &AppState, tenant: &str, name: &str) -> ApiResult<EventTypeRecord> {
    type_name(name)?;
    state
        .store
        .event_type(tenant, name)
        .await?
        .ok_or(ApiError::NotFound("event type"))
}

fn deprecation(now: &str, deprecated: bool, previous: Option<&str>) -> Option<String> {
    deprecated.then(|| previous.unwrap_or(now).to_string())
}

#[utoipa::path(
    get,
    path = "/v1/event-types",
    operation_id = "list_event_types",
    tag = "event-types",
    params(PageQuery),
    security(("tenant_api_key" = ["event-types:read"])),
    responses(
        (status = OK, description = "A page of event types", body = Page<EventTypeRecord>),
        PageErrors,
        TenantErrors,
    ),
)]
pub async fn list(
    State(state): State<AppState>,
    Access { tenant, .. }: Access<scope::EventTypesRead>,
    Query(page): Query<PageQuery>,
) -> ApiResult<Response> {
    let page = state
        .store
        .event_types(&tenant, page.limit()?, page.cursor.as_deref())
        .await?;
    Ok(axum::Json(page).into_response())
}

/// Creates the type (201) or updates its description and deprecation (200).
#[utoipa::path(
    put,
    path = "/v1/event-types/{type}",
    operation_id = "put_event_type",
    tag = "event-types",
    params(("type" = String, Path, description = "The event type, e.g. `order.created`")),
    security(("tenant_api_key" = ["event-types:write"])),
    responses(
        (status = CREATED, description = "The new event type", body = EventTypeOut),
        (status = OK, description = "The updated event type", body = EventTypeOut),
        BodyErrors,
        TenantErrors,
    ),
)]
pub async fn put_type(
    State(state): State<AppState>,
    Access { tenant, actor, .. }: Access<scope::EventTypesWrite>,
    Path(name): Path<String>,
    Json(input): Json<EventTypeIn>,
) -> ApiResult<Response> {
    type_name(&name)?;
    if input.description.as_ref().is_some_and(|d| d.len() > 1024) {
        return Err(ApiError::invalid(
            "/description",
            "must be at most 1024 characters",
        ));
    }
    let now = crate::model::clock::now_rfc3339();
    let existing = state.store.event_type(&tenant, &name).await?;
    let before = existing.as_ref().and_then(audit::json);
    let status = match existing {
        Some(_) => StatusCode::OK,
        None => StatusCode::CREATED,
    };
    let mut record = existing.unwrap_or_else(|| EventTypeRecord {
        name: name.clone(),
        description: String::new(),
        deprecated: false,
        deprecated_at: None,
        created_at: now.clone(),
        updated_at: now.clone(),
    });
    if let Some(description) = input.description {
        record.description = description;
    }
    if let Some(deprecated) = input.deprecated {
        record.deprecated_at = deprecation(&now, deprecated, record.deprecated_at.as_deref());
        record.deprecated = deprecated;
    }
    record.updated_at = now;
    let action = match before {
        Some(_) => "event_type.updated",
        None => "event_type.created",
    };
    let object = ("event_type", name.as_str());
    let after = audit::json(&record);
    audit::record(&state, Some(&tenant), &actor, action, object, before, after).await?;
    state.store.put_event_type(&tenant, &record).await?;
    state.contracts.invalidate(&tenant);
    let out = describe(&state, &tenant, record).await?;
    Ok((status, axum::Json(out)).into_response())
}

async fn describe(
    state: &AppState,
    tenant: &str,
    record: EventTypeRecord,
) -> ApiResult<EventTypeOut> {
    let versions = state.store.schema_versions(tenant, &record.name).await?;
    let transforms = state.store.transforms(tenant, &record.name).await?;
    Ok(EventTypeOut {
        versions: versions
            .into_iter()
            .map(|v| VersionSummary {
                version: v.version,
                deprecated: v.deprecated,
                forced: v.forced,
                created_at: v.created_at,
            })
            .collect(),
        transforms,
        record,
    })
}

#[utoipa::path(
    get,
    path = "/v1/event-types/{type}",
    operation_id = "get_event_type",
    tag = "event-types",
    params(("type" = String, Path, description = "The event type, e.g. `order.created`")),
    security(("tenant_api_key" = ["event-types:read"])),
    responses(
        (status = OK, description = "The event type, its versions and transforms", body = EventTypeOut),
        (status = NOT_FOUND, description = "No such event type", body = Problem,
            content_type = PROBLEM_JSON),
        (status = UNPROCESSABLE_ENTITY, description = "The event type is not a valid name", body = Problem,
            content_type = PROBLEM_JSON),
        TenantErrors,
    ),
)]
pub async fn get_type(
    State(state): State<AppState>,
    Access { tenant, .. }: Access<scope::EventTypesRead>,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    let record = load_type(&state, &tenant, &name).await?;
    let out = describe(&state, &tenant, record).await?;
    Ok(axum::Json(out).into_response())
}

#[utoipa::path(
    get,
    path = "/v1/settings",
    operation_id = "get_settings",
    tag = "event-types",
    security(("tenant_api_key" = ["settings:read"])),
    responses(
        (status = OK, description = "The tenant's contract settings", body = ContractSettings),
        TenantErrors,
    ),
)]
pub async fn get_settings(
    State(state): State<AppState>,
    Access { tenant, .. }: Access<scope::SettingsRead>,
) -> ApiResult<Response> {
    let settings = state.store.contract_settings(&tenant).await?;
    Ok(axum::Json(settings).into_response())
}

#[utoipa::path(
    put,
    path = "/v1/settings",
    operation_id = "put_settings",
    tag = "event-types",
    security(("tenant_api_key" = ["settings:write"])),
    responses(
        (status = OK, description = "The settings as stored", body = ContractSettings),
        BodyErrors,
        TenantErrors,
    ),
)]
pub async fn put_settings(
    State(state): State<AppState>,
    Access { tenant, actor, .. }: Access<scope::SettingsWrite>,
    Json(settings): Json<ContractSettings>,
) -> ApiResult<Response> {
    if let Some(schedule) = &settings.retry_schedule {
        let mut errors = Vec::new();
        crate::api::validate::retry_schedule(&state.config, schedule, &mut errors);
        if !errors.is_empty() {
            return Err(ApiError::Invalid(errors));
        }
    }
    let before = state.store.contract_settings(&tenant).await?;
    audit::record(
        &state,
        Some(&tenant),
        &actor,
        "settings.updated",
        ("settings", &tenant),
        audit::json(&before),
        audit::json(&settings),
    )
    .await?;
    state
        .store
        .put_contract_settings(&tenant, &settings)
        .await?;
    state.contracts.invalidate(&tenant);
    Ok(axum::Json(settings).into_response())
}
