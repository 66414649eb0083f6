//! Authentication and scopes, as extractors: the operator token
//! (`Operator`), a tenant's API key holding the route's scope (`Access<S>`,
//! with `S` one of the markers of [`scope`]), a producer key or a tenant key
//! posting events for a named tenant (`Producer`), and a poll key or tenant
//! key on a poll route (`PollCaller<S>`). A failed authentication counts
//! against the caller's address.
//!
//! A key's grant is trusted for [`crate::state::KEY_TTL`] without asking
//! Redis again, so a key revoked on one instance stops working on every
//! other within that time (and at once on the instance that revoked it).

use std::marker::PhantomData;

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use sha2::{Digest, Sha256};

use super::client_ip;
use crate::error::ApiError;
use crate::model::{Actor, Scope, Scopes};
use crate::state::{AppState, Grant};
use crate::store::{KeyGrant, POLL_KEY_PREFIX, PRODUCER_KEY_PREFIX, ProducerGrant};

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

/// The scope a route needs, as a type (`Access<scope::EndpointsWrite>`).
pub trait Needs {
    const SCOPE: Scope;
}

/// One marker type per [`Scope`], named as its variant.
pub mod scope {
    use super::{Needs, Scope};

    macro_rules! markers {
        ($($name:ident),* $(,)?) => {$(
            pub struct $name;
            impl Needs for $name {
                const SCOPE: Scope = Scope::$name;
            }
        )*};
    }

    markers!(
        EventsWrite,
        EventsRead,
        EndpointsRead,
        EndpointsWrite,
        AttemptsRead,
        ConsumersRead,
        ConsumersWrite,
        PluginsRead,
        PluginsWrite,
        EventTypesRead,
        EventTypesWrite,
        SettingsRead,
        SettingsWrite,
        KeysManage,
        AuditRead,
    );
}

/// A tenant's API key holding scope `S`: its tenant, the consumer it is
/// limited to (if any), and who it is, for the audit log.
pub struct Access<S> {
    pub tenant: String,
    pub consumer: Option<String>,
    pub actor: Actor,
    scopes: Scopes,
    needs: PhantomData<S>,
}

impl<S> Access<S> {
    /// Whether an object of consumer `owner` (or of none) is within the
    /// key's reach: every object for a key not limited to a consumer.
    pub fn reaches(&self, owner: Option<&str>) -> bool {
        self.consumer.as_deref().is_none_or(|c| owner == Some(c))
    }

    /// The scopes the key holds.
    pub fn scopes(&self) -> Scopes {
        self.scopes
    }
}

/// The grant of the bearer key, from the cache or Redis; `None` for no
/// key, an unknown, revoked or expired one.
async fn grant(parts: &Parts, state: &AppState) -> Result<Option<Grant>, ApiError> {
    let Some(key) = bearer(parts) else {
        return Ok(None);
    };
    let hash: [u8; 32] = Sha256::digest(key.as_bytes()).into();
    let found = match state.keys.get(&hash) {
        Some(found) => Some(found),
        None => {
            let found = match key.starts_with(PRODUCER_KEY_PREFIX) {
                true => state.store.producer_grant(key).await?.map(Grant::Producer),
                false => state.store.key_grant(key).await?.map(Grant::Key),
            };
            if let Some(found) = &found {
                state.keys.put(hash, found.clone());
            }
            found
        }
    };
    let now = crate::model::clock::now_ms();
    Ok(found.filter(|g| !matches!(g, Grant::Key(k) if k.expired(now))))
}

/// A tenant key's grant, or 401.
async fn key_grant(parts: &Parts, state: &AppState) -> Result<KeyGrant, ApiError> {
    match grant(parts, state).await? {
        Some(Grant::Key(key)) => Ok(key),
        _ => Err(unauthorized(parts, state)),
    }
}

fn lacks(scope: Scope) -> ApiError {
    ApiError::Forbidden(format!("the API key lacks the scope `{}`", scope.name()))
}

fn access<S>(key: KeyGrant) -> Access<S> {
    Access {
        scopes: Scopes::of(&key.scopes),
        actor: Actor::key(&key.id, &key.name),
        tenant: key.tenant,
        consumer: key.consumer,
        needs: PhantomData,
    }
}

impl<S: Needs> FromRequestParts<AppState> for Access<S> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let key = key_grant(parts, state).await?;
        if !key.scopes.contains(&S::SCOPE) {
            return Err(lacks(S::SCOPE));
        }
        Ok(access(key))
    }
}

/// Who posts events for the tenant a route names: a producer key, or
/// a tenant key with `events:write`.
pub enum Producer {
    Key(Access<scope::EventsWrite>),
    Platform(ProducerGrant),
}

impl Producer {
    /// Whether it may post for `tenant`: `Ok`, or 403.
    pub fn post_for(&self, tenant: &str) -> Result<(), ApiError> {
        let allowed = match self {
            Producer::Key(access) => access.tenant == tenant,
            Producer::Platform(grant) => grant.may_post_for(tenant),
        };
        match allowed {
            true => Ok(()),
            false => Err(ApiError::Forbidden(format!(
                "this key may not post events for tenant `{tenant}`"
            ))),
        }
    }
}

impl FromRequestParts<AppState> for Producer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        match grant(parts, state).await? {
            Some(Grant::Producer(grant)) => Ok(Producer::Platform(grant)),
            Some(Grant::Key(key)) if key.scopes.contains(&Scope::EventsWrite) => {
                Ok(Producer::Key(access(key)))
            }
            Some(Grant::Key(_)) => Err(lacks(Scope::EventsWrite)),
            None => Err(unauthorized(parts, state)),
        }
    }
}

/// Who calls a poll route: a tenant key holding scope `S` (maybe limited
/// to a consumer), or the holder of a poll key, good for one endpoint only
/// (`endpoint`).
pub struct PollCaller<S> {
    pub tenant: String,
    pub consumer: Option<String>,
    pub endpoint: Option<String>,
    needs: PhantomData<S>,
}

impl<S> PollCaller<S> {
    fn tenant(tenant: String) -> PollCaller<S> {
        PollCaller {
            tenant,
            consumer: None,
            endpoint: None,
            needs: PhantomData,
        }
    }

    /// A tenant key's caller: its tenant, and the consumer it is limited to.
    pub fn of_key<K>(access: Access<K>) -> PollCaller<S> {
        PollCaller {
            consumer: access.consumer,
            ..PollCaller::tenant(access.tenant)
        }
    }

    /// Whether it may poll endpoint `id` (of its tenant; a caller limited
    /// to a consumer, only if it owns it).
    pub fn may_poll(&self, id: &str) -> bool {
        self.endpoint.as_deref().is_none_or(|e| e == id)
    }
}

impl<S: Needs> FromRequestParts<AppState> for PollCaller<S> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Some(key) = bearer(parts).filter(|k| k.starts_with(POLL_KEY_PREFIX)) else {
            let access = Access::<S>::from_request_parts(parts, state).await?;
            return Ok(PollCaller::of_key(access));
        };
        match state.store.poll_key_scope(key).await? {
            Some((tenant, endpoint)) => Ok(PollCaller {
                endpoint: Some(endpoint),
                ..PollCaller::tenant(tenant)
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

    #[test]
    fn a_consumer_key_reaches_its_consumer_only() {
        let key = |consumer: Option<&str>| KeyGrant {
            tenant: "tn_a".into(),
            id: "key_1".into(),
            name: "k".into(),
            scopes: vec![Scope::EndpointsRead],
            consumer: consumer.map(str::to_string),
            expires_at_ms: None,
        };
        let limited: Access<scope::EndpointsRead> = access(key(Some("cs_a")));
        assert!(limited.reaches(Some("cs_a")));
        assert!(!limited.reaches(Some("cs_b")));
        assert!(!limited.reaches(None));
        let whole: Access<scope::EndpointsRead> = access(key(None));
        assert!(whole.reaches(Some("cs_b")) && whole.reaches(None));
    }
}
