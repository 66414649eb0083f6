//! Authentication: the operator token and tenants' API keys, as extractors
//! (`Operator`, `TenantId`); a failure counts against the caller's address.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use sha2::{Digest, Sha256};

use super::client_ip;
use crate::error::ApiError;
use crate::state::AppState;

/// A failed authentication, counted against the caller's address: 401, or
/// 429 once the address has failed too often.
fn unauthorized(parts: &Parts, state: &AppState) -> ApiError {
    match state.edge.check_address(client_ip(&parts.extensions)) {
        Ok(()) => ApiError::Unauthorized,
        Err(refused) => refused,
    }
}

fn bearer(parts: &Parts) -> Option<&str> {
    parts
        .headers
        .get(AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

/// Compares two secrets in time independent of where they differ.
fn same_secret(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    let (a, b) = (Sha256::digest(a.as_bytes()), Sha256::digest(b.as_bytes()));
    a.ct_eq(&b).into()
}

/// The caller holds the operator token.
pub struct Operator;

impl FromRequestParts<AppState> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        match bearer(parts) {
            Some(token)
                if !state.config.operator_token.is_empty()
                    && same_secret(token, &state.config.operator_token) =>
            {
                Ok(Operator)
            }
            _ => Err(unauthorized(parts, state)),
        }
    }
}

/// The caller's tenant, from its API key.
pub struct TenantId(pub String);

impl FromRequestParts<AppState> for TenantId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Some(key) = bearer(parts) else {
            return Err(unauthorized(parts, state));
        };
        let hash: [u8; 32] = Sha256::digest(key.as_bytes()).into();
        if let Some(tenant) = state.keys.get(&hash) {
            return Ok(TenantId(tenant));
        }
        let Some(tenant) = state.store.tenant_for_key(key).await? else {
            return Err(unauthorized(parts, state));
        };
        state.keys.put(hash, tenant.clone());
        Ok(TenantId(tenant))
    }
}

/// Who calls a poll route: a tenant (its API key), or the holder of a
/// poll key, good for one endpoint only (`endpoint`).
pub struct PollCaller {
    pub tenant: String,
    pub endpoint: Option<String>,
}

impl PollCaller {
    /// Whether it may poll endpoint `id` (of its tenant).
    pub fn may_poll(&self, id: &str) -> bool {
        self.endpoint.as_deref().is_none_or(|e| e == id)
    }
}

impl FromRequestParts<AppState> for PollCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let prefix = crate::store::POLL_KEY_PREFIX;
        let Some(key) = bearer(parts).filter(|k| k.starts_with(prefix)) else {
            let TenantId(tenant) = TenantId::from_request_parts(parts, state).await?;
            return Ok(PollCaller {
                tenant,
                endpoint: None,
            });
        };
        match state.store.poll_key_scope(key).await? {
            Some((tenant, endpoint)) => Ok(PollCaller {
                tenant,
                endpoint: Some(endpoint),
            }),
            None => Err(unauthorized(parts, state)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_compare_by_value() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", ""));
    }
}
