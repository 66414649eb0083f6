//! Plugins: upload (validated and compiled before it is stored), list, read,
//! delete (refused while an endpoint uses it), and a dry run on a sample event.
//!
//! The dry run is in `dry_run`.

pub(super) mod dry_run;

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use super::audit::{json, record};
use super::openapi::{PageErrors, TenantErrors};
use super::{Access, PageQuery, Query, scope};
use crate::error::{ApiError, ApiResult, PROBLEM_JSON, Problem};
use crate::model::FieldError;
use crate::plugins::{Upload, UploadError};
use crate::state::AppState;
use crate::store::{CompileStatus, Page, Plugin, PluginVersion};

/// Plugin names: 1 to 64 of `a-z 0-9 - _`, starting with a letter or digit.
fn check_name(name: &str) -> ApiResult<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        && name.as_bytes()[0].is_ascii_alphanumeric();
    match ok {
        true => Ok(()),
        false => Err(ApiError::invalid(
            "path:name",
            "must be 1 to 64 of a-z, 0-9, - and _",
        )),
    }
}

/// Checks a reference to the tenant's plugin `name` (at `version`, or its
/// newest): problems go to `errors` at `at_name` or `at_version`.
pub async fn check_reference(
    state: &AppState,
    tenant: &str,
    (name, at_name): (&str, &str),
    (version, at_version): (Option<u32>, &str),
    errors: &mut Vec<FieldError>,
) -> ApiResult<()> {
    let Some(plugin) = state.store.plugin(tenant, name).await? else {
        errors.push(FieldError::new(at_name, "no such plugin"));
        return Ok(());
    };
    let not_ready = |v: &PluginVersion| match v.status {
        CompileStatus::Ready => None,
        CompileStatus::Compiling => Some(format!(
            "v{} is still compiling: GET /v1/plugins/{name} shows when it is ready",
            v.version
        )),
        CompileStatus::Failed => Some(format!(
            "v{} failed to compile: {}",
            v.version,
            v.reason.as_deref().unwrap_or("no reason was recorded")
        )),
    };
    let problem = match (version, plugin.version(version)) {
        (_, Some(v)) => not_ready(v),
        (Some(_), None) => Some("no such version of this plugin".to_string()),
        (None, None) => Some(format!(
            "the plugin has no ready version yet ({})",
            plugin
                .versions
                .iter()
                .filter_map(not_ready)
                .collect::<Vec<_>>()
                .join("; ")
        )),
    };
    if let Some(problem) = problem {
        errors.push(FieldError::new(at_version, problem));
    }
    Ok(())
}

async fn load(state: &AppState, tenant: &str, name: &str) -> ApiResult<Plugin> {
    check_name(name).map_err(|_| ApiError::NotFound("plugin"))?;
    state
        .store
        .plugin(tenant, name)
        .await?
        .ok_or(ApiError::NotFound("plugin"))
}

/// Upload a plugin
///
/// The body is a WebAssembly component. It is checked and compiled: when the
/// compile ends within `plugins.upload_wait` the version is stored `ready`
/// (201), or the upload is refused with the reason (422, nothing stored);
/// when it takes longer the version is stored `compiling` (202) and the
/// compile goes on, after which the version shows `ready`, or `failed` with
/// its `reason`. Only a ready version runs: endpoints and transforms that
/// name the plugin without a version use its newest ready one. The bytes of
/// its latest version again answer that version (200).
#[utoipa::path(
    put,
    path = "/v1/plugins/{name}",
    operation_id = "upload_plugin",
    tag = "plugins",
    params(("name" = String, Path,
        description = "1 to 64 of `a-z 0-9 - _`, starting with a letter or digit")),
    request_body(description = "The component's bytes", content(("application/wasm"))),
    security(("tenant_api_key" = ["plugins:write"])),
    responses(
        (status = OK, description = "The same bytes as the latest version: that version",
            body = VersionOut),
        (status = CREATED, description = "Compiled and stored as a new version, `ready`",
            body = VersionOut),
        (status = ACCEPTED, description = "Stored as a new version, still `compiling`",
            body = VersionOut),
        (status = BAD_REQUEST, description = "The upload could not be read", body = Problem,
            content_type = PROBLEM_JSON),
        (status = PAYLOAD_TOO_LARGE, description = "The upload is larger than \
            `plugins.max_upload_bytes`", body = Problem, content_type = PROBLEM_JSON),
        (status = UNPROCESSABLE_ENTITY, description = "The name is not valid (`path:name`), or \
            the body is not a component the gateway can run (`body`)", body = Problem,
            content_type = PROBLEM_JSON),
        TenantErrors,
    ),
)]
pub async fn upload(
    State(state): State<AppState>,
    Access { tenant, actor, .. }: Access<scope::PluginsWrite>,
    Path(name): Path<String>,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> ApiResult<Response> {
    check_name(&name)?;
    let limit = state.config.plugins.max_upload_bytes;
    let bytes = body.map_err(|r| match r.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge(limit),
        _ => ApiError::BadRequest(format!("could not read the upload: {r}")),
    })?;
    let bytes = Arc::new(bytes.to_vec());
    let host = state.chain.host();
    let wait = state.config.plugins.upload_wait;
    let invalid = |e: UploadError| ApiError::Invalid(vec![FieldError::new("body", e.to_string())]);
    let upload = host
        .upload(&tenant, bytes.clone(), wait)
        .await
        .map_err(invalid)?;
    let (sha256, pending) = match upload {
        Upload::Ready { sha256 } => (sha256, None),
        Upload::Compiling { sha256, compile } => (sha256, Some(compile)),
    };
    let change = serde_json::json!({ "sha256": sha256, "size": bytes.len() });
    record(
        &state,
        Some(&tenant),
        &actor,
        "plugin.uploaded",
        ("plugin", &name),
        None,
        Some(change),
    )
    .await?;
    let version = PluginVersion {
        version: 0,
        sha256: sha256.clone(),
        size: bytes.len(),
        created_at: crate::model::clock::now_rfc3339(),
        status: match pending {
            None => CompileStatus::Ready,
            Some(_) => CompileStatus::Compiling,
        },
        reason: None,
    };
    let (added, mut version) = state
        .store
        .add_plugin_version(&tenant, &name, &version, &bytes)
        .await?;
    // The same bytes again, now compiled, settle a version whose compile
    // was left unsettled (its gateway stopped before it ended, and the
    // start-up sweep has not reached it yet).
    if !added && pending.is_none() && version.status == CompileStatus::Compiling {
        state
            .store
            .settle_plugin_compile(&tenant, &name, &sha256, Ok(()))
            .await?;
        version.status = CompileStatus::Ready;
    }
    if let (true, Some(compile)) = (added, pending) {
        let (store, tenant, name) = (state.store.clone(), tenant.clone(), name.clone());
        tokio::spawn(async move {
            crate::chain::settle::follow(&store, (&tenant, &name, &sha256), compile).await;
        });
    }
    let status = match (added, version.status) {
        (false, _) => StatusCode::OK,
        (true, CompileStatus::Compiling) => StatusCode::ACCEPTED,
        (true, _) => StatusCode::CREATED,
    };
    Ok((status, axum::Json(version_out(&name, &version))).into_response())
}

/// One version of a plugin, with the plugin's name.
#[derive(Serialize, ToSchema)]
#[schema(as = PluginVersionOut)]
struct VersionOut<'a> {
    name: &'a str,
    #[serde(flatten)]
    version: &'a PluginVersion,
}

fn version_out<'a>(name: &'a str, version: &'a PluginVersion) -> VersionOut<'a> {
    VersionOut { name, version }
}

/// List plugins
#[utoipa::path(
    get,
    path = "/v1/plugins",
    operation_id = "list_plugins",
    tag = "plugins",
    params(PageQuery),
    security(("tenant_api_key" = ["plugins:read"])),
    responses(
        (status = OK, description = "A page of plugins", body = Page<Plugin>),
        TenantErrors,
        PageErrors,
    ),
)]
pub async fn list(
    State(state): State<AppState>,
    Access { tenant, .. }: Access<scope::PluginsRead>,
    Query(page): Query<PageQuery>,
) -> ApiResult<Response> {
    let page = state
        .store
        .plugins(&tenant, page.limit()?, page.cursor.as_deref())
        .await?;
    Ok(axum::Json(page).into_response())
}

/// Read a plugin
///
/// With its versions, oldest first.
#[utoipa::path(
    get,
    path = "/v1/plugins/{name}",
    operation_id = "get_plugin",
    tag = "plugins",
    params(("name" = String, Path, description = "The plugin's name")),
    security(("tenant_api_key" = ["plugins:read"])),
    responses(
        (status = OK, description = "The plugin", body = Plugin),
        (status = NOT_FOUND, description = "No such plugin", body = Problem,
            content_type = PROBLEM_JSON),
        TenantErrors,
    ),
)]
pub async fn get_one(
    State(state): State<AppState>,
    Access { tenant, .. }: Access<scope::PluginsRead>,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    Ok(axum::Json(load(&state, &tenant, &name).await?).into_response())
}

/// Delete a plugin
///
/// With all its versions; refused while something uses it.
#[utoipa::path(
    delete,
    path = "/v1/plugins/{name}",
    operation_id = "delete_plugin",
    tag = "plugins",
    params(("name" = String, Path, description = "The plugin's name")),
    security(("tenant_api_key" = ["plugins:write"])),
    responses(
        (status = NO_CONTENT, description = "Deleted"),
        (status = NOT_FOUND, description = "No such plugin", body = Problem,
            content_type = PROBLEM_JSON),
        (status = CONFLICT, description = "An endpoint's chain or a version transform uses it",
            body = Problem, content_type = PROBLEM_JSON),
        TenantErrors,
    ),
)]
pub async fn delete(
    State(state): State<AppState>,
    Access { tenant, actor, .. }: Access<scope::PluginsWrite>,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    let plugin = load(&state, &tenant, &name).await?;
    let (_, endpoints) = state.store.all_endpoints(&tenant).await?;
    let users: Vec<&str> = endpoints
        .iter()
        .filter(|ep| ep.plugins.iter().any(|p| p.name == name))
        .map(|ep| ep.id.as_str())
        .collect();
    if !users.is_empty() {
        return Err(ApiError::Conflict(format!(
            "the plugin is used by endpoints {}",
            users.join(", ")
        )));
    }
    let (_, _, types) = state.store.all_contracts(&tenant).await?;
    let transforms: Vec<String> = types
        .iter()
        .flat_map(|t| {
            t.transforms
                .iter()
                .filter(|x| x.plugin == name)
                .map(|x| format!("{} v{}→v{}", t.record.name, x.from, x.to))
        })
        .collect();
    if !transforms.is_empty() {
        return Err(ApiError::Conflict(format!(
            "the plugin is used by version transforms {}",
            transforms.join(", ")
        )));
    }
    record(
        &state,
        Some(&tenant),
        &actor,
        "plugin.deleted",
        ("plugin", &name),
        json(&plugin),
        None,
    )
    .await?;
    state.store.delete_plugin(&tenant, &plugin).await?;
    Ok(StatusCode::NO_CONTENT)
}
