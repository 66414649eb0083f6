//! Operator routes: tenants, and their limits (plugin budgets), which
//! take effect on the next plugin call, on every instance, without a restart.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::audit::{json, record};
use super::openapi::{BodyErrors, OperatorErrors, PageErrors};
use super::{Json, Operator, PageQuery, Query};

use crate::error::{ApiError, ApiResult, PROBLEM_JSON, Problem};
use crate::model::{Actor, FieldError};
use crate::state::AppState;
use crate::store::{Page, Tenant, TenantLimits};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TenantIn {
    /// 1 to 200 characters.
    name: String,
}

#[derive(Serialize, ToSchema)]
struct TenantCreated<'a> {
    #[serde(flatten)]
    tenant: &'a Tenant,
    /// Shown only here; the gateway keeps only its hash.
    api_key: &'a str,
}

/// Create a tenant
///
/// The answer holds the tenant's API key: the only time it is shown.
#[utoipa::path(
    post,
    path = "/v1/admin/tenants",
    operation_id = "create_tenant",
    tag = "admin",
    security(("operator_token" = [])),
    responses(
        (status = CREATED, description = "The tenant, with its API key", body = TenantCreated),
        OperatorErrors,
        BodyErrors,
    ),
)]
pub async fn create_tenant(
    State(state): State<AppState>,
    _: Operator,
    Json(input): Json<TenantIn>,
) -> ApiResult<Response> {
    let name = input.name.trim();
    if name.is_empty() || name.len() > 200 {
        return Err(ApiError::invalid("/name", "must be 1 to 200 characters"));
    }
    let id = crate::model::new_id("tn");
    let shown = serde_json::json!({ "name": name });
    record(
        &state,
        Some(&id),
        &Actor::operator(),
        "tenant.created",
        ("tenant", &id),
        None,
        Some(shown),
    )
    .await?;
    let (tenant, api_key) = state.store.create_tenant(&id, name).await?;
    let body = TenantCreated {
        tenant: &tenant,
        api_key: &api_key,
    };
    Ok((StatusCode::CREATED, axum::Json(body)).into_response())
}

/// List tenants
#[utoipa::path(
    get,
    path = "/v1/admin/tenants",
    operation_id = "list_tenants",
    tag = "admin",
    params(PageQuery),
    security(("operator_token" = [])),
    responses(
        (status = OK, description = "A page of tenants", body = Page<Tenant>),
        OperatorErrors,
        PageErrors,
    ),
)]
pub async fn list_tenants(
    State(state): State<AppState>,
    _: Operator,
    Query(page): Query<PageQuery>,
) -> ApiResult<Response> {
    let page = state
        .store
        .tenants(page.limit()?, page.cursor.as_deref())
        .await?;
    Ok(axum::Json(page).into_response())
}

/// Read a tenant
#[utoipa::path(
    get,
    path = "/v1/admin/tenants/{id}",
    operation_id = "get_tenant",
    tag = "admin",
    params(("id" = String, Path, description = "The tenant's id")),
    security(("operator_token" = [])),
    responses(
        (status = OK, description = "The tenant", body = Tenant),
        (status = NOT_FOUND, description = "No such tenant", body = Problem,
            content_type = PROBLEM_JSON),
        OperatorErrors,
    ),
)]
pub async fn get_tenant(
    State(state): State<AppState>,
    _: Operator,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let tenant = state
        .store
        .tenant(&id)
        .await?
        .ok_or(ApiError::NotFound("tenant"))?;
    Ok(axum::Json(tenant).into_response())
}

/// A `PUT` of limits: fields left out keep their value, `null` goes back to the default.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LimitsPatch {
    #[serde(default, deserialize_with = "present")]
    ingest_per_second: Option<Option<u64>>,
    #[serde(default, deserialize_with = "present")]
    ingest_burst: Option<Option<u64>>,
    #[serde(default, deserialize_with = "present")]
    max_backlog: Option<Option<u64>>,
    #[serde(default, deserialize_with = "present")]
    endpoint_per_second: Option<Option<u64>>,
    #[serde(default, deserialize_with = "present")]
    plugin_cpu_ms: Option<Option<u64>>,
    #[serde(default, deserialize_with = "present")]
    plugin_deadline_ms: Option<Option<u64>>,
    #[serde(default, deserialize_with = "present")]
    plugin_memory_bytes: Option<Option<u64>>,
}

fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<u64>>, D::Error> {
    Option::<u64>::deserialize(d).map(Some)
}

/// `null` limits are not enforced (ingest, backlog, endpoint rate) or
/// take the configured default (plugin budgets).
#[derive(Serialize, ToSchema)]
struct LimitsOut {
    ingest_per_second: Option<u64>,
    ingest_burst: Option<u64>,
    max_backlog: Option<u64>,
    endpoint_per_second: Option<u64>,
    /// What the tenant's plugin calls get now.
    plugin_cpu_ms: u64,
    plugin_deadline_ms: u64,
    plugin_memory_bytes: u64,
    /// The operator's overrides (`null`: the configured default).
    overrides: TenantLimits,
}

fn limits_out(state: &AppState, overrides: TenantLimits) -> LimitsOut {
    let budget = crate::chain::budget(state.chain.host().default_budget(), &overrides);
    LimitsOut {
        ingest_per_second: overrides.ingest_per_second,
        ingest_burst: overrides.ingest_burst,
        max_backlog: overrides.max_backlog,
        endpoint_per_second: overrides.endpoint_per_second,
        plugin_cpu_ms: budget.cpu_ms,
        plugin_deadline_ms: budget.deadline_ms,
        plugin_memory_bytes: budget.memory_bytes,
        overrides,
    }
}

async fn known_tenant(state: &AppState, id: &str) -> ApiResult<()> {
    state
        .store
        .tenant(id)
        .await?
        .map(drop)
        .ok_or(ApiError::NotFound("tenant"))
}

/// Read a tenant's limits
#[utoipa::path(
    get,
    path = "/v1/admin/tenants/{id}/limits",
    operation_id = "get_tenant_limits",
    tag = "admin",
    params(("id" = String, Path, description = "The tenant's id")),
    security(("operator_token" = [])),
    responses(
        (status = OK, description = "The limits in force, and the operator's overrides",
            body = LimitsOut),
        (status = NOT_FOUND, description = "No such tenant", body = Problem,
            content_type = PROBLEM_JSON),
        OperatorErrors,
    ),
)]
pub async fn get_limits(
    State(state): State<AppState>,
    _: Operator,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    known_tenant(&state, &id).await?;
    let overrides = state.store.limits(&id).await?;
    Ok(axum::Json(limits_out(&state, overrides)).into_response())
}

/// Change a tenant's limits
///
/// They apply on every instance, without a restart.
#[utoipa::path(
    put,
    path = "/v1/admin/tenants/{id}/limits",
    operation_id = "put_tenant_limits",
    tag = "admin",
    params(("id" = String, Path, description = "The tenant's id")),
    security(("operator_token" = [])),
    responses(
        (status = OK, description = "The limits now in force", body = LimitsOut),
        (status = NOT_FOUND, description = "No such tenant", body = Problem,
            content_type = PROBLEM_JSON),
        OperatorErrors,
        BodyErrors,
    ),
)]
pub async fn put_limits(
    State(state): State<AppState>,
    _: Operator,
    Path(id): Path<String>,
    Json(patch): Json<LimitsPatch>,
) -> ApiResult<Response> {
    known_tenant(&state, &id).await?;
    let mut limits = state.store.limits(&id).await?;
    let plugins = &state.config.plugins;
    let mut errors = Vec::new();
    let mut apply = |field: &mut Option<u64>,
                     value: Option<Option<u64>>,
                     name: &str,
                     range: std::ops::RangeInclusive<u64>| {
        if let Some(value) = value {
            if let Some(v) = value
                && !range.contains(&v)
            {
                errors.push(FieldError::new(
                    format!("/{name}"),
                    format!("must be between {} and {}", range.start(), range.end()),
                ));
            }
            *field = value;
        }
    };
    apply(
        &mut limits.ingest_per_second,
        patch.ingest_per_second,
        "ingest_per_second",
        1..=1_000_000,
    );
    apply(
        &mut limits.ingest_burst,
        patch.ingest_burst,
        "ingest_burst",
        1..=1_000_000,
    );
    apply(
        &mut limits.max_backlog,
        patch.max_backlog,
        "max_backlog",
        1..=1_000_000_000,
    );
    apply(
        &mut limits.endpoint_per_second,
        patch.endpoint_per_second,
        "endpoint_per_second",
        1..=100_000,
    );
    apply(
        &mut limits.plugin_cpu_ms,
        patch.plugin_cpu_ms,
        "plugin_cpu_ms",
        1..=60_000,
    );
    apply(
        &mut limits.plugin_deadline_ms,
        patch.plugin_deadline_ms,
        "plugin_deadline_ms",
        1..=60_000,
    );
    apply(
        &mut limits.plugin_memory_bytes,
        patch.plugin_memory_bytes,
        "plugin_memory_bytes",
        (2 << 20)..=plugins.max_memory_bytes,
    );
    if !errors.is_empty() {
        return Err(ApiError::Invalid(errors));
    }
    let before = state.store.limits(&id).await?;
    record(
        &state,
        Some(&id),
        &Actor::operator(),
        "limits.updated",
        ("limits", &id),
        json(&before),
        json(&limits),
    )
    .await?;
    state.store.put_limits(&id, &limits).await?;
    Ok(axum::Json(limits_out(&state, limits)).into_response())
}
