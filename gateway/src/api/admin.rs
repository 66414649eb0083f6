//! Operator routes: tenants.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::{Json, Operator, PageQuery, Query};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::store::Tenant;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantIn {
    name: String,
}

#[derive(Serialize)]
struct Created<'a> {
    #[serde(flatten)]
    tenant: &'a Tenant,
    /// Shown only here; the gateway keeps only its hash.
    api_key: &'a str,
}

pub async fn create_tenant(
    State(state): State<AppState>,
    _: Operator,
    Json(input): Json<TenantIn>,
) -> ApiResult<Response> {
    let name = input.name.trim();
    if name.is_empty() || name.len() > 200 {
        return Err(ApiError::invalid("/name", "must be 1 to 200 characters"));
    }
    let (tenant, api_key) = state.store.create_tenant(name).await?;
    let body = Created {
        tenant: &tenant,
        api_key: &api_key,
    };
    Ok((StatusCode::CREATED, axum::Json(body)).into_response())
}

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
