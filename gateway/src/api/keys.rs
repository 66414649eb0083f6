//! A tenant's API keys: make one (shown once), list them (prefixes only),
//! read one, revoke one (at once here, within `state::KEY_TTL` on every
//! other instance). A key may hold only scopes the key making it holds,
//! and a key limited to a consumer only [`Scope::FOR_CONSUMER`].

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::audit::{json, record};
use super::openapi::{BodyErrors, TenantErrors};
use super::{Access, Json, scope};
use crate::error::{ApiError, ApiResult, PROBLEM_JSON, Problem};
use crate::model::{FieldError, Scope, Scopes};
use crate::state::AppState;
use crate::store::{ApiKey, NewKey};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyIn {
    /// 1 to 200 characters.
    name: String,
    /// At least one; a key limited to a consumer may hold only
    /// `endpoints:read`, `endpoints:write`, `attempts:read`, `event-types:read`.
    scopes: Vec<Scope>,
    /// RFC 3339, in the future; absent: never expires.
    #[schema(format = DateTime)]
    expires_at: Option<String>,
    /// A consumer's id (`cs_...`): the key sees and changes only that
    /// consumer's endpoints, their attempts and dead letters.
    consumer: Option<String>,
}

/// A new key, with the key itself: the only time it is shown.
#[derive(Serialize, ToSchema)]
pub struct KeyCreated<'a> {
    #[serde(flatten)]
    key: &'a ApiKey,
    /// `gwk_...`.
    api_key: &'a str,
}

/// A key's scopes as asked, checked against the key making it.
pub(super) fn check_scopes(
    asked: &[Scope],
    maker: Scopes,
    for_consumer: bool,
    errors: &mut Vec<FieldError>,
) -> Scopes {
    if asked.is_empty() {
        errors.push(FieldError::new("/scopes", "must name at least one scope"));
    }
    for (i, scope) in asked.iter().enumerate() {
        if !maker.has(*scope) {
            errors.push(FieldError::new(
                format!("/scopes/{i}"),
                format!("`{}` is not held by the key making it", scope.name()),
            ));
        } else if for_consumer && !Scope::FOR_CONSUMER.contains(scope) {
            errors.push(FieldError::new(
                format!("/scopes/{i}"),
                format!("`{}` is not for a key limited to a consumer", scope.name()),
            ));
        }
    }
    Scopes::of(asked)
}

/// Makes a key and logs it; the key made answers `201`.
pub(super) async fn make_key(
    state: &AppState,
    maker: &Access<scope::KeysManage>,
    new: NewKey<'_>,
) -> ApiResult<Response> {
    let tenant = &maker.tenant;
    let (key, api_key) = state.store.create_key(tenant, new).await?;
    // Logged once made (its id exists only then); a key the log cannot
    // take is revoked again before anyone has seen it.
    let logged = record(
        state,
        Some(tenant),
        &maker.actor,
        "key.created",
        ("key", &key.id),
        None,
        json(&key),
    )
    .await;
    if let Err(e) = logged {
        state.store.revoke_key(tenant, &key.id).await?;
        return Err(e);
    }
    let body = KeyCreated {
        key: &key,
        api_key: &api_key,
    };
    Ok((StatusCode::CREATED, axum::Json(body)).into_response())
}

/// Make an API key
///
/// The answer holds the key: the only time it is shown.
#[utoipa::path(
    post,
    path = "/v1/keys",
    operation_id = "create_key",
    tag = "keys",
    security(("tenant_api_key" = ["keys:manage"])),
    responses(
        (status = CREATED, description = "The key, with the key itself", body = KeyCreated),
        TenantErrors,
        BodyErrors,
    ),
)]
pub async fn create(
    State(state): State<AppState>,
    access: Access<scope::KeysManage>,
    Json(input): Json<KeyIn>,
) -> ApiResult<Response> {
    let mut errors = Vec::new();
    let name = input.name.trim();
    if name.is_empty() || name.len() > 200 {
        errors.push(FieldError::new("/name", "must be 1 to 200 characters"));
    }
    let consumer = input.consumer.as_deref();
    let scopes = check_scopes(
        &input.scopes,
        access.scopes(),
        consumer.is_some(),
        &mut errors,
    );
    if let Some(id) = consumer
        && state.store.consumer(&access.tenant, id).await?.is_none()
    {
        errors.push(FieldError::new("/consumer", "no such consumer"));
    }
    let now = crate::model::clock::now_ms();
    let expires_at_ms = match input.expires_at.as_deref() {
        None => None,
        Some(text) => match crate::model::clock::parse_rfc3339_ms(text) {
            Some(at) if at > now => Some(at),
            _ => {
                errors.push(FieldError::new(
                    "/expires_at",
                    "must be an RFC 3339 date-time in the future",
                ));
                None
            }
        },
    };
    if !errors.is_empty() {
        return Err(ApiError::Invalid(errors));
    }
    let new = NewKey {
        name,
        scopes,
        consumer,
        expires_at_ms,
    };
    make_key(&state, &access, new).await
}

/// List API keys
///
/// Newest first; each with its prefix, never the key.
#[utoipa::path(
    get,
    path = "/v1/keys",
    operation_id = "list_keys",
    tag = "keys",
    security(("tenant_api_key" = ["keys:manage"])),
    responses(
        (status = OK, description = "The tenant's keys", body = Vec<ApiKey>),
        TenantErrors,
    ),
)]
pub async fn list(
    State(state): State<AppState>,
    access: Access<scope::KeysManage>,
) -> ApiResult<Response> {
    let mut keys = state.store.keys_of(&access.tenant).await?;
    keys.retain(|k| access.reaches(k.consumer.as_deref()));
    Ok(axum::Json(keys).into_response())
}

/// Revoke an API key
///
/// At once on this instance, within a second on every other.
#[utoipa::path(
    delete,
    path = "/v1/keys/{id}",
    operation_id = "revoke_key",
    tag = "keys",
    params(("id" = String, Path, description = "The key's id")),
    security(("tenant_api_key" = ["keys:manage"])),
    responses(
        (status = NO_CONTENT, description = "Revoked"),
        (status = NOT_FOUND, description = "No such key", body = Problem,
            content_type = PROBLEM_JSON),
        TenantErrors,
    ),
)]
pub async fn revoke(
    State(state): State<AppState>,
    access: Access<scope::KeysManage>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let tenant = &access.tenant;
    let key = state
        .store
        .key_of(tenant, &id)
        .await?
        .filter(|k| access.reaches(k.consumer.as_deref()))
        .ok_or(ApiError::NotFound("key"))?;
    record(
        &state,
        Some(tenant),
        &access.actor,
        "key.revoked",
        ("key", &id),
        json(&key),
        None,
    )
    .await?;
    if let Some((_, hash)) = state.store.revoke_key(tenant, &id).await? {
        state.keys.forget(&hash);
    }
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_holds_no_scope_its_maker_lacks() {
        let maker = Scopes::of(&[Scope::KeysManage, Scope::EndpointsRead]);
        let mut errors = Vec::new();
        check_scopes(&[Scope::EndpointsRead], maker, false, &mut errors);
        assert!(errors.is_empty());
        check_scopes(&[Scope::AuditRead], maker, false, &mut errors);
        assert_eq!(errors[0].pointer, "/scopes/0");
    }

    #[test]
    fn a_consumer_key_holds_only_the_consumer_scopes() {
        let mut errors = Vec::new();
        check_scopes(&Scope::FOR_CONSUMER, Scopes::all(), true, &mut errors);
        assert!(errors.is_empty());
        check_scopes(&[Scope::PluginsWrite], Scopes::all(), true, &mut errors);
        assert_eq!(errors.len(), 1);
        check_scopes(&[], Scopes::all(), false, &mut errors);
        assert_eq!(errors[1].pointer, "/scopes");
    }
}
