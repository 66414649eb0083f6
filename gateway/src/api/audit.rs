//! The audit log: `record` (what every changing handler calls before its
//! change, so a change the log cannot take is not made) and the routes
//! reading it, a tenant's own (`GET /v1/audit`) and everyone's
//! (`GET /v1/admin/audit`).

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::Value;
use utoipa::IntoParams;

use super::openapi::{OperatorErrors, PageErrors, TenantErrors};
use super::{Access, Operator, Query, scope};
use crate::error::{ApiError, ApiResult};
use crate::model::Actor;
use crate::state::AppState;
use crate::store::{AuditEntry, AuditQuery, Change, Page};

/// Logs a change of `kind` object `id` (of `tenant`, or the operator's own)
/// by `actor`: `action` is `<kind>.<verb>`; `before`/`after` the object as
/// the API shows it (absent when it did not or no longer exists).
pub async fn record(
    state: &AppState,
    tenant: Option<&str>,
    actor: &Actor,
    action: &str,
    (kind, id): (&str, &str),
    before: Option<Value>,
    after: Option<Value>,
) -> ApiResult<()> {
    let change = Change {
        tenant,
        actor,
        action,
        kind,
        id,
        before,
        after,
    };
    Ok(state
        .store
        .audit(change, state.config.audit.retention)
        .await?)
}

/// An object as the log keeps it.
pub fn json(value: &impl serde::Serialize) -> Option<Value> {
    Some(serde_json::to_value(value).expect("an API object always serialises"))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    /// 1 to 500; 100 when absent.
    limit: Option<usize>,
    /// The `next_cursor` of the page before.
    cursor: Option<String>,
    /// Only changes to the object with this id.
    object: Option<String>,
    /// RFC 3339: entries from then on.
    since: Option<String>,
    /// RFC 3339: entries until then.
    until: Option<String>,
    /// Operator only: one tenant's entries.
    tenant: Option<String>,
}

impl AuditParams {
    fn query(&self) -> ApiResult<AuditQuery<'_>> {
        let limit = self.limit.unwrap_or(100);
        if !(1..=500).contains(&limit) {
            return Err(ApiError::invalid("query:limit", "must be 1 to 500"));
        }
        let time = |name: &str, text: &Option<String>| -> ApiResult<Option<u64>> {
            text.as_deref()
                .map(|t| {
                    crate::model::clock::parse_rfc3339_ms(t).ok_or_else(|| {
                        ApiError::invalid(format!("query:{name}"), "must be RFC 3339")
                    })
                })
                .transpose()
        };
        Ok(AuditQuery {
            limit,
            cursor: self.cursor.as_deref(),
            since_ms: time("since", &self.since)?,
            until_ms: time("until", &self.until)?,
            object: self.object.as_deref(),
        })
    }
}

/// Read the tenant's audit log
///
/// Every change to the tenant's configuration, oldest first: when, which
/// key (or the operator), the action, the object, and each changed field
/// before and after (secrets redacted).
#[utoipa::path(
    get,
    path = "/v1/audit",
    operation_id = "list_audit",
    tag = "audit",
    params(AuditParams),
    security(("tenant_api_key" = ["audit:read"])),
    responses(
        (status = OK, description = "A page of entries", body = Page<AuditEntry>),
        TenantErrors,
        PageErrors,
    ),
)]
pub async fn list(
    State(state): State<AppState>,
    Access { tenant, .. }: Access<scope::AuditRead>,
    Query(params): Query<AuditParams>,
) -> ApiResult<Response> {
    if params.tenant.is_some() {
        return Err(ApiError::invalid(
            "query:tenant",
            "is for the operator's log only",
        ));
    }
    let page = state
        .store
        .audit_page(Some(&tenant), &params.query()?)
        .await?;
    Ok(axum::Json(page).into_response())
}

/// Read the whole audit log
///
/// Every tenant's entries and the operator's own, oldest first; `tenant`
/// narrows it to one tenant's.
#[utoipa::path(
    get,
    path = "/v1/admin/audit",
    operation_id = "list_all_audit",
    tag = "admin",
    params(AuditParams),
    security(("operator_token" = [])),
    responses(
        (status = OK, description = "A page of entries", body = Page<AuditEntry>),
        OperatorErrors,
        PageErrors,
    ),
)]
pub async fn list_all(
    State(state): State<AppState>,
    _: Operator,
    Query(params): Query<AuditParams>,
) -> ApiResult<Response> {
    let query = params.query()?;
    let page = state
        .store
        .audit_page(params.tenant.as_deref(), &query)
        .await?;
    Ok(axum::Json(page).into_response())
}
