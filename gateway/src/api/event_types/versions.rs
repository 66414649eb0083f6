//! An event type's schema versions: listing and reading them, registering
//! one (checked against the version before it), and the dry-run check.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::{deprecation, load_type, version_number};
use crate::api::audit;
use crate::api::openapi::{BodyErrors, TenantErrors};
use crate::api::{Access, Json, scope};
use crate::contracts::{compare, compile};
use crate::error::{ApiError, ApiResult, PROBLEM_JSON, Problem};
use crate::model::Report;
use crate::state::AppState;
use crate::store::SchemaVersion;

/// Largest schema accepted, serialised.
const MAX_SCHEMA_BYTES: usize = 256 * 1024;

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

#[derive(Serialize, ToSchema)]
struct VersionList {
    data: Vec<SchemaVersion>,
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

#[utoipa::path(
    get,
    path = "/v1/event-types/{type}/versions",
    operation_id = "list_schema_versions",
    tag = "event-types",
    params(("type" = String, Path, description = "The event type, e.g. `order.created`")),
    security(("tenant_api_key" = ["event-types:read"])),
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
    Access { tenant, .. }: Access<scope::EventTypesRead>,
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
    security(("tenant_api_key" = ["event-types:read"])),
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
    Access { tenant, .. }: Access<scope::EventTypesRead>,
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
    security(("tenant_api_key" = ["event-types:write"])),
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
    Access { tenant, actor, .. }: Access<scope::EventTypesWrite>,
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
            let object = format!("{name}/{version}");
            let (before, after) = (audit::json(existing), audit::json(&updated));
            let object = ("schema_version", object.as_str());
            let action = "schema_version.updated";
            audit::record(&state, Some(&tenant), &actor, action, object, before, after).await?;
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
    let object = format!("{name}/{version}");
    let object = ("schema_version", object.as_str());
    let after = audit::json(&record);
    let action = "schema_version.created";
    audit::record(&state, Some(&tenant), &actor, action, object, None, after).await?;
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
    security(("tenant_api_key" = ["event-types:read"])),
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
    Access { tenant, .. }: Access<scope::EventTypesRead>,
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
