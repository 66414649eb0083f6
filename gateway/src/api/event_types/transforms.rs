//! Version transforms: the plugins that turn an event of one schema version
//! of a type into another, listed and registered per type.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::{MAX_VERSIONS, load_type};
use crate::api::openapi::{BodyErrors, TenantErrors};
use crate::api::{Access, Json, scope};
use crate::error::{ApiError, ApiResult, PROBLEM_JSON, Problem};
use crate::model::FieldError;
use crate::state::AppState;
use crate::store::Transform;

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

#[derive(Serialize, ToSchema)]
struct TransformList {
    data: Vec<Transform>,
}

#[utoipa::path(
    get,
    path = "/v1/event-types/{type}/transforms",
    operation_id = "list_transforms",
    tag = "event-types",
    params(("type" = String, Path, description = "The event type, e.g. `order.created`")),
    security(("tenant_api_key" = ["event-types:read"])),
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
    Access { tenant, .. }: Access<scope::EventTypesRead>,
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
    security(("tenant_api_key" = ["event-types:write"])),
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
    Access { tenant, actor, .. }: Access<scope::EventTypesWrite>,
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
    crate::api::plugins::check_reference(
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
    let before = state
        .store
        .transforms(&tenant, &name)
        .await?
        .into_iter()
        .find(|t| (t.from, t.to) == (transform.from, transform.to));
    let object = format!("{name}/{}-{}", transform.from, transform.to);
    crate::api::audit::record(
        &state,
        Some(&tenant),
        &actor,
        "transform.updated",
        ("transform", &object),
        before.as_ref().and_then(crate::api::audit::json),
        crate::api::audit::json(&transform),
    )
    .await?;
    state
        .store
        .put_transform(&tenant, &name, &transform)
        .await?;
    state.contracts.invalidate(&tenant);
    Ok(axum::Json(transform).into_response())
}
