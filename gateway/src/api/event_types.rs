//! Event contracts: event types, their schema versions (JSON Schema draft
//! 2020-12) with the compatibility check against the previous version, the
//! version transforms between them, and the tenant's contract settings.
//!
//! Versions are numbered 1, 2, 3... and written once: a version's schema
//! never changes (only its `deprecated` flag). A new version is compared
//! with the one before it; one with breaking changes is refused (409, with
//! the report) unless transforms both ways between the two are registered,
//! or the request says `force` (which the version records).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use utoipa::ToSchema;

use super::openapi::{BodyErrors, PageErrors, TenantErrors};
use super::{Json, PageQuery, Query, TenantId, validate};
use crate::contracts::{compare, compile};
use crate::error::{ApiError, ApiResult, PROBLEM_JSON, Problem};
use crate::model::{FieldError, Report};
use crate::state::AppState;
use crate::store::{ContractSettings, EventTypeRecord, Page, SchemaVersion, Transform};

/// Most versions of one event type.
const MAX_VERSIONS: u32 = 1000;

/// Largest schema accepted, serialised.
const MAX_SCHEMA_BYTES: usize = 256 * 1024;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventTypeIn {
    description: Option<String>,
    deprecated: Option<bool>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VersionIn {
    /// The JSON Schema (draft 2020-12) of the version's `data`.
    #[schema(value_type = Object)]
    schema: Value,
    deprecated: Option<bool>,
    /// Register even though the check finds breaking changes.
    #[serde(default)]
    force: bool,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckIn {
    /// The JSON Schema (draft 2020-12) to check.
    #[schema(value_type = Object)]
    schema: Value,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransformIn {
    from: u32,
    to: u32,
    plugin: String,
    plugin_version: Option<u32>,
    /// The plugin's configuration (any JSON; `{}` when absent).
    #[serde(default = "empty_object")]
    #[schema(value_type = Object)]
    config: Value,
}

fn empty_object() -> Value {
    Value::Object(serde_json::Map::new())
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

#[derive(Serialize, ToSchema)]
struct VersionList {
    data: Vec<SchemaVersion>,
}

#[derive(Serialize, ToSchema)]
struct TransformList {
    data: Vec<Transform>,
}

/// The answer of a dry-run check.
#[derive(Serialize, ToSchema)]
struct CheckOut {
    #[serde(flatten)]
    report: Report,
    /// The version this schema would be compared with (none for version 1).
    previous_version: Option<u32>,
    /// Whether `PUT` would accept it now (compatible, or transforms both ways).
    accepted: bool,
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
    security(("tenant_api_key" = [])),
    responses(
        (status = OK, description = "A page of event types", body = Page<EventTypeRecord>),
        PageErrors,
        TenantErrors,
    ),
)]
pub async fn list(
    State(state): State<AppState>,
    TenantId(tenant): TenantId,
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
    security(("tenant_api_key" = [])),
    responses(
        (status = CREATED, description = "The new event type", body = EventTypeOut),
        (status = OK, description = "The updated event type", body = EventTypeOut),
        BodyErrors,
        TenantErrors,
    ),
)]
pub async fn put_type(
    State(state): State<AppState>,
    TenantId(tenant): TenantId,
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
    security(("tenant_api_key" = [])),
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
    TenantId(tenant): TenantId,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    let record = load_type(&state, &tenant, &name).await?;
    let out = describe(&state, &tenant, record).await?;
    Ok(axum::Json(out).into_response())
}

#[utoipa::path(
    get,
    path = "/v1/event-types/{type}/versions",
    operation_id = "list_schema_versions",
    tag = "event-types",
    params(("type" = String, Path, description = "The event type, e.g. `order.created`")),
    security(("tenant_api_key" = [])),
    responses(
        (status = OK, description = "Every version, oldest first, under `data`", body = VersionList),
        (status = NOT_FOUND, description = "No such event type", body = Problem,
            content_type = PROBLEM_JSON),
        (status = UNPROCESSABLE_ENTITY, description = "The event type is not a valid name", body = Problem,
            content_type = PROBLEM_JSON),
        TenantErrors,
    ),
)]
pub async fn list_versions(
    State(state): State<AppState>,
    TenantId(tenant): TenantId,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    load_type(&state, &tenant, &name).await?;
    let data = state.store.schema_versions(&tenant, &name).await?;
    Ok(axum::Json(VersionList { data }).into_response())
}

#[utoipa::path(
    get,
    path = "/v1/event-types/{type}/versions/{version}",
    operation_id = "get_schema_version",
    tag = "event-types",
    params(("type" = String, Path, description = "The event type, e.g. `order.created`"), ("version" = u32, Path, description = "The version number, from 1")),
    security(("tenant_api_key" = [])),
    responses(
        (status = OK, description = "The version and its schema", body = SchemaVersion),
        (status = NOT_FOUND, description = "No such event type or version", body = Problem,
            content_type = PROBLEM_JSON),
        (status = UNPROCESSABLE_ENTITY, description = "The event type is not a valid name, or the version is not a number from 1", body = Problem,
            content_type = PROBLEM_JSON),
        TenantErrors,
    ),
)]
pub async fn get_version(
    State(state): State<AppState>,
    TenantId(tenant): TenantId,
    Path((name, version)): Path<(String, String)>,
) -> ApiResult<Response> {
    load_type(&state, &tenant, &name).await?;
    let version = version_number(&version)?;
    let versions = state.store.schema_versions(&tenant, &name).await?;
    let found = versions
        .into_iter()
        .find(|v| v.version == version)
        .ok_or(ApiError::NotFound("schema version"))?;
    Ok(axum::Json(found).into_response())
}

/// The schema compiles and is not too large.
fn check_schema(schema: &Value) -> ApiResult<()> {
    if serde_json::to_string(schema).map_or(0, |s| s.len()) > MAX_SCHEMA_BYTES {
        return Err(ApiError::invalid(
            "/schema",
            format!("must be at most {MAX_SCHEMA_BYTES} bytes"),
        ));
    }
    compile(schema, "/schema").map_err(ApiError::Invalid)?;
    Ok(())
}

/// What registering `schema` as `version` would meet: the previous
/// version's report, and whether transforms both ways exist.
struct Assessment {
    previous: Option<u32>,
    report: Report,
    bridged: bool,
}

async fn assess(
    state: &AppState,
    tenant: &str,
    name: &str,
    versions: &[SchemaVersion],
    version: u32,
    schema: &Value,
) -> ApiResult<Assessment> {
    let previous = versions.iter().rev().find(|v| v.version < version);
    let Some(previous) = previous else {
        return Ok(Assessment {
            previous: None,
            report: compare(schema, schema),
            bridged: false,
        });
    };
    let report = compare(&previous.schema, schema);
    let transforms = state.store.transforms(tenant, name).await?;
    let has = |from: u32, to: u32| transforms.iter().any(|t| t.from == from && t.to == to);
    Ok(Assessment {
        previous: Some(previous.version),
        bridged: has(previous.version, version) && has(version, previous.version),
        report,
    })
}

#[utoipa::path(
    put,
    path = "/v1/event-types/{type}/versions/{version}",
    operation_id = "put_schema_version",
    tag = "event-types",
    params(("type" = String, Path, description = "The event type, e.g. `order.created`"), ("version" = u32, Path, description = "The version number, from 1")),
    security(("tenant_api_key" = [])),
    responses(
        (status = CREATED, description = "The new version", body = SchemaVersion),
        (status = OK, description = "The version, with its deprecation changed", body = SchemaVersion),
        (status = NOT_FOUND, description = "No such event type", body = Problem,
            content_type = PROBLEM_JSON),
        (status = CONFLICT, description = "Breaking changes (`/problems/incompatible-schema`, with `compatibility`), another schema under an existing version, or not the next version number", body = Problem,
            content_type = PROBLEM_JSON),
        BodyErrors,
        TenantErrors,
    ),
)]
pub async fn put_version(
    State(state): State<AppState>,
    TenantId(tenant): TenantId,
    Path((name, version)): Path<(String, String)>,
    Json(input): Json<VersionIn>,
) -> ApiResult<Response> {
    load_type(&state, &tenant, &name).await?;
    let version = version_number(&version)?;
    check_schema(&input.schema)?;
    let now = crate::model::clock::now_rfc3339();
    let versions = state.store.schema_versions(&tenant, &name).await?;
    if let Some(existing) = versions.iter().find(|v| v.version == version) {
        if existing.schema != input.schema {
            return Err(ApiError::Conflict(format!(
                "version {version} of {name} is already registered with another schema; a version never changes, register version {} instead",
                versions.last().map_or(1, |v| v.version + 1)
            )));
        }
        let mut updated = existing.clone();
        if let Some(deprecated) = input.deprecated {
            updated.deprecated_at =
                deprecation(&now, deprecated, existing.deprecated_at.as_deref());
            updated.deprecated = deprecated;
        }
        if updated != *existing {
            state
                .store
                .update_schema_version(&tenant, &name, &updated)
                .await?;
            state.contracts.invalidate(&tenant);
        }
        return Ok(axum::Json(updated).into_response());
    }
    let next = versions.last().map_or(1, |v| v.version + 1);
    if version != next {
        return Err(ApiError::Conflict(format!(
            "the next version of {name} is {next}"
        )));
    }
    let assessment = assess(&state, &tenant, &name, &versions, version, &input.schema).await?;
    if !assessment.report.compatible && !assessment.bridged && !input.force {
        return Err(ApiError::Incompatible(Box::new(assessment.report)));
    }
    let deprecated = input.deprecated.unwrap_or(false);
    let record = SchemaVersion {
        version,
        schema: input.schema,
        deprecated,
        deprecated_at: deprecation(&now, deprecated, None),
        forced: !assessment.report.compatible && !assessment.bridged,
        compatibility: assessment.previous.map(|_| assessment.report),
        created_at: now,
    };
    if !state
        .store
        .add_schema_version(&tenant, &name, &record)
        .await?
    {
        return Err(ApiError::Conflict(format!(
            "version {version} of {name} was registered meanwhile"
        )));
    }
    state.contracts.invalidate(&tenant);
    Ok((StatusCode::CREATED, axum::Json(record)).into_response())
}

/// The compatibility report of `schema` as version `n`, stored nowhere.
#[utoipa::path(
    post,
    path = "/v1/event-types/{type}/versions/{version}/check",
    operation_id = "check_schema_version",
    tag = "event-types",
    params(("type" = String, Path, description = "The event type, e.g. `order.created`"), ("version" = u32, Path, description = "The version number, from 1")),
    security(("tenant_api_key" = [])),
    responses(
        (status = OK, description = "The compatibility report; nothing is stored", body = CheckOut),
        (status = NOT_FOUND, description = "No such event type", body = Problem,
            content_type = PROBLEM_JSON),
        BodyErrors,
        TenantErrors,
    ),
)]
pub async fn check_version(
    State(state): State<AppState>,
    TenantId(tenant): TenantId,
    Path((name, version)): Path<(String, String)>,
    Json(input): Json<CheckIn>,
) -> ApiResult<Response> {
    load_type(&state, &tenant, &name).await?;
    let version = version_number(&version)?;
    check_schema(&input.schema)?;
    let versions = state.store.schema_versions(&tenant, &name).await?;
    let assessment = assess(&state, &tenant, &name, &versions, version, &input.schema).await?;
    Ok(axum::Json(CheckOut {
        accepted: assessment.report.compatible || assessment.bridged,
        previous_version: assessment.previous,
        report: assessment.report,
    })
    .into_response())
}

#[utoipa::path(
    get,
    path = "/v1/event-types/{type}/transforms",
    operation_id = "list_transforms",
    tag = "event-types",
    params(("type" = String, Path, description = "The event type, e.g. `order.created`")),
    security(("tenant_api_key" = [])),
    responses(
        (status = OK, description = "The version transforms, under `data`", body = TransformList),
        (status = NOT_FOUND, description = "No such event type", body = Problem,
            content_type = PROBLEM_JSON),
        (status = UNPROCESSABLE_ENTITY, description = "The event type is not a valid name", body = Problem,
            content_type = PROBLEM_JSON),
        TenantErrors,
    ),
)]
pub async fn list_transforms(
    State(state): State<AppState>,
    TenantId(tenant): TenantId,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    load_type(&state, &tenant, &name).await?;
    let data = state.store.transforms(&tenant, &name).await?;
    Ok(axum::Json(TransformList { data }).into_response())
}

/// Registers (or replaces) the transform from one version to another.
#[utoipa::path(
    put,
    path = "/v1/event-types/{type}/transforms",
    operation_id = "put_transform",
    tag = "event-types",
    params(("type" = String, Path, description = "The event type, e.g. `order.created`")),
    security(("tenant_api_key" = [])),
    responses(
        (status = OK, description = "The transform as registered", body = Transform),
        (status = NOT_FOUND, description = "No such event type", body = Problem,
            content_type = PROBLEM_JSON),
        BodyErrors,
        TenantErrors,
    ),
)]
pub async fn put_transform(
    State(state): State<AppState>,
    TenantId(tenant): TenantId,
    Path(name): Path<String>,
    Json(input): Json<TransformIn>,
) -> ApiResult<Response> {
    load_type(&state, &tenant, &name).await?;
    let mut errors = Vec::new();
    for (pointer, n) in [("/from", input.from), ("/to", input.to)] {
        if !(1..=MAX_VERSIONS).contains(&n) {
            errors.push(FieldError::new(
                pointer,
                format!("must be from 1 to {MAX_VERSIONS}"),
            ));
        }
    }
    if input.from == input.to {
        errors.push(FieldError::new("/to", "must differ from `from`"));
    }
    super::plugins::check_reference(
        &state,
        &tenant,
        (&input.plugin, "/plugin"),
        (input.plugin_version, "/plugin_version"),
        &mut errors,
    )
    .await?;
    if !errors.is_empty() {
        return Err(ApiError::Invalid(errors));
    }
    let transform = Transform {
        from: input.from,
        to: input.to,
        plugin: input.plugin,
        plugin_version: input.plugin_version,
        config: input.config,
        updated_at: crate::model::clock::now_rfc3339(),
    };
    state
        .store
        .put_transform(&tenant, &name, &transform)
        .await?;
    state.contracts.invalidate(&tenant);
    Ok(axum::Json(transform).into_response())
}

#[utoipa::path(
    get,
    path = "/v1/settings",
    operation_id = "get_settings",
    tag = "event-types",
    security(("tenant_api_key" = [])),
    responses(
        (status = OK, description = "The tenant's contract settings", body = ContractSettings),
        TenantErrors,
    ),
)]
pub async fn get_settings(
    State(state): State<AppState>,
    TenantId(tenant): TenantId,
) -> ApiResult<Response> {
    let settings = state.store.contract_settings(&tenant).await?;
    Ok(axum::Json(settings).into_response())
}

#[utoipa::path(
    put,
    path = "/v1/settings",
    operation_id = "put_settings",
    tag = "event-types",
    security(("tenant_api_key" = [])),
    responses(
        (status = OK, description = "The settings as stored", body = ContractSettings),
        BodyErrors,
        TenantErrors,
    ),
)]
pub async fn put_settings(
    State(state): State<AppState>,
    TenantId(tenant): TenantId,
    Json(settings): Json<ContractSettings>,
) -> ApiResult<Response> {
    state
        .store
        .put_contract_settings(&tenant, &settings)
        .await?;
    state.contracts.invalidate(&tenant);
    Ok(axum::Json(settings).into_response())
}
