//! Endpoints (subscriptions): where a tenant's events go, with their signing
//! secrets. Every change bumps the tenant's endpoint version, which the
//! fan-out stage checks before using its cached copy.

use std::collections::BTreeMap;

use redis::AsyncCommands;
use serde::{Deserialize, Serialize};

use super::{Page, Store, decode, decode_some, lex_page};

use crate::keys;
use crate::model::{EndpointId, Secret};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Endpoint {
    pub id: EndpointId,
    pub url: String,
    pub description: String,
    /// Event types delivered here, each maybe at a schema version; empty means all.
    pub event_types: Vec<Subscription>,
    pub disabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled_reason: Option<String>,
    /// Extra headers sent with every delivery.
    pub headers: BTreeMap<String, String>,
    pub timeout_ms: Option<u64>,
    /// Deliveries per second to this endpoint, across all instances; the
    /// tenant's `endpoint_per_second` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_per_second: Option<u64>,
    /// Requests in flight to this endpoint at once, across all instances.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_in_flight: Option<u32>,
    /// Events sent together, as one JSON array in one request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<Batching>,
    /// Plugins every event for this endpoint passes through, in order.
    #[serde(default)]
    pub plugins: Vec<PluginRef>,
    /// What happens to an event when a plugin fails on it.
    #[serde(default)]
    pub on_plugin_error: OnPluginError,
    pub created_at: String,
    pub updated_at: String,
    /// The current secret first; older ones while their overlap lasts.
    pub secrets: Vec<EndpointSecret>,
}

/// One event type an endpoint takes: `"order.created"` (at whatever version
/// each event has) or `{"type": "order.created", "version": 2}` (every event
/// of the type rewritten to version 2 by the tenant's version transforms).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(
    untagged,
    expecting = "an event type, or {\"type\": ..., \"version\": ...}"
)]
pub enum Subscription {
    Any(String),
    Versioned(VersionedSubscription),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VersionedSubscription {
    #[serde(rename = "type")]
    pub event_type: String,
    pub version: u32,
}

impl Subscription {
    pub fn event_type(&self) -> &str {
        match self {
            Subscription::Any(t) => t,
            Subscription::Versioned(v) => &v.event_type,
        }
    }

    pub fn version(&self) -> Option<u32> {
        match self {
            Subscription::Any(_) => None,
            Subscription::Versioned(v) => Some(v.version),
        }
    }
}

/// An endpoint's batching: a batch is sent once it holds `max_events`
/// events, or `max_wait_ms` after its first event was collected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Batching {
    pub max_events: u32,
    pub max_wait_ms: u64,
}

/// One link of an endpoint's plugin chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PluginRef {
    pub name: String,
    /// A fixed version; the newest when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
    /// The plugin's configuration on this endpoint (any JSON; `{}` by default).
    #[serde(default = "empty_object")]
    pub config: serde_json::Value,
}

fn empty_object() -> serde_json::Value {
    serde_json::Value::Object(serde_json::Map::new())
}

/// Where an event goes when a plugin traps, runs out of budget or errs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnPluginError {
    /// To the dead letters, with the reason (redelivery runs the chain again).
    #[default]
    DeadLetter,
    /// Past the failing plugin, as if it had passed the event on unchanged.
    Skip,
    /// Nowhere: it is dropped for this endpoint, with the reason recorded.
    Drop,
}

#[derive(Clone, Serialize, Deserialize)]
pub struct EndpointSecret {
    pub secret: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at_ms: Option<u64>,
}

impl std::fmt::Debug for EndpointSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EndpointSecret")
            .field("secret", &"[redacted]")
            .field("expires_at_ms", &self.expires_at_ms)
            .finish()
    }
}

/// An endpoint's circuit breaker as the API shows it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct Circuit {
    pub state: CircuitState,
    /// Failed attempts in a row.
    pub failures: u64,
    /// When an open circuit lets a probe through.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub open_until: Option<String>,
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CircuitState {
    Closed,
    Open,
    HalfOpen,
}

impl Endpoint {
    pub fn subscribes_to(&self, event_type: &str) -> bool {
        self.event_types.is_empty()
            || self
                .event_types
                .iter()
                .any(|s| s.event_type() == event_type)
    }

    /// Whether a new event of `event_type` goes here: enabled and subscribed.
    pub fn takes(&self, event_type: &str) -> bool {
        !self.disabled && self.subscribes_to(event_type)
    }

    /// The schema version this endpoint wants events of `event_type` at.
    pub fn wanted_version(&self, event_type: &str) -> Option<u32> {
        self.event_types
            .iter()
            .find(|s| s.event_type() == event_type)
            .and_then(Subscription::version)
    }

    /// Secrets that sign now: the current one and any still in their overlap.
    pub fn live_secrets(&self, now_ms: u64) -> Vec<Secret> {
        self.secrets
            .iter()
            .filter(|s| s.expires_at_ms.is_none_or(|at| at > now_ms))
            .filter_map(|s| Secret::parse(&s.secret))
            .collect()
    }

    /// Makes a new current secret; the old one keeps signing until `overlap_ends_ms`.
    pub fn rotate_secret(&mut self, now_ms: u64, overlap_ends_ms: u64) {
        self.secrets
            .retain(|s| s.expires_at_ms.is_none_or(|at| at > now_ms));
        for old in &mut self.secrets {
            old.expires_at_ms = Some(
                old.expires_at_ms
                    .map_or(overlap_ends_ms, |at| at.min(overlap_ends_ms)),
            );
        }
        self.secrets.insert(
            0,
            EndpointSecret {
                secret: Secret::generate().expose(),
                expires_at_ms: None,
            },
        );
    }
}

/// Tries of [`Store::update_endpoint`] before it gives up under contention.
const UPDATE_TRIES: usize = 16;

fn replace_script() -> &'static redis::Script {
    static SCRIPT: std::sync::OnceLock<redis::Script> = std::sync::OnceLock::new();
    SCRIPT.get_or_init(|| redis::Script::new(include_str!("scripts/replace.lua")))
}

impl Store {
    /// Creates an endpoint (or replaces it whole: only for a new one).
    pub async fn put_endpoint(&self, tenant: &str, endpoint: &Endpoint) -> redis::RedisResult<()> {
        let json = serde_json::to_string(endpoint).expect("an endpoint always serialises");
        redis::pipe()
            .atomic()
            .set(keys::endpoint(tenant, &endpoint.id), json)
            .ignore()
            .zadd(keys::endpoints(tenant), &endpoint.id, 0)
            .ignore()
            .incr(keys::endpoints_version(tenant), 1)
            .ignore()
            .query_async(&mut self.conn())
            .await
    }

    /// Applies `change` to the stored endpoint and writes it back, only if
    /// nothing changed it meanwhile (else it reads it again and reapplies
    /// `change`): concurrent changes each keep their own fields, and a
    /// deleted endpoint is never written back. `None` when there is no such
    /// endpoint, `Some(Err)` when `change` refused.
    pub async fn update_endpoint<E>(
        &self,
        tenant: &str,
        id: &str,
        mut change: impl FnMut(&mut Endpoint) -> Result<(), E>,
    ) -> redis::RedisResult<Option<Result<Endpoint, E>>> {
        let key = keys::endpoint(tenant, id);
        for _ in 0..UPDATE_TRIES {
            let current: Option<String> = self.conn().get(&key).await?;
            let Some(current) = current else {
                return Ok(None);
            };
            let mut endpoint: Endpoint = decode(&key, &current)?;
            if let Err(refused) = change(&mut endpoint) {
                return Ok(Some(Err(refused)));
            }
            let json = serde_json::to_string(&endpoint).expect("an endpoint always serialises");
            let replaced: i64 = replace_script()
                .key(&key)
                .key(keys::endpoints_version(tenant))
                .arg(&current)
                .arg(json)
                .invoke_async(&mut self.conn())
                .await?;
            match replaced {
                1 => return Ok(Some(Ok(endpoint))),
                -1 => return Ok(None),
                _ => continue,
            }
        }
        Err(redis::RedisError::from((
            redis::ErrorKind::Client,
            "the endpoint kept changing while it was being updated",
        )))
    }

    /// Disables an endpoint with `reason`; true when this call disabled it
    /// (false when it was disabled already or is gone).
    pub async fn disable_endpoint(
        &self,
        tenant: &str,
        id: &str,
        reason: &str,
    ) -> redis::RedisResult<bool> {
        let mut changed = false;
        self.update_endpoint(tenant, id, |endpoint| {
            changed = !endpoint.disabled;
            if changed {
                endpoint.disabled = true;
                endpoint.disabled_reason = Some(reason.to_string());
                endpoint.updated_at = crate::model::clock::now_rfc3339();
            }
            Ok::<(), ()>(())
        })
        .await?;
        Ok(changed)
    }

    pub async fn endpoint(&self, tenant: &str, id: &str) -> redis::RedisResult<Option<Endpoint>> {
        let key = keys::endpoint(tenant, id);
        let json: Option<String> = self.conn().get(&key).await?;
        decode_some(&key, json)
    }

    pub async fn endpoints(
        &self,
        tenant: &str,
        limit: usize,
        cursor: Option<&str>,
    ) -> redis::RedisResult<Page<Endpoint>> {
        let mut conn = self.conn();
        let (ids, next_cursor) =
            lex_page(&mut conn, &keys::endpoints(tenant), limit, cursor).await?;
        Ok(Page {
            data: self.endpoints_by_id(tenant, &ids).await?,
            next_cursor,
        })
    }

    /// Every endpoint of a tenant, with the endpoint version read before them.
    pub async fn all_endpoints(&self, tenant: &str) -> redis::RedisResult<(u64, Vec<Endpoint>)> {
        let version = self.endpoints_version(tenant).await?;
        let ids: Vec<String> = self.conn().zrange(keys::endpoints(tenant), 0, -1).await?;
        Ok((version, self.endpoints_by_id(tenant, &ids).await?))
    }

    pub async fn endpoints_version(&self, tenant: &str) -> redis::RedisResult<u64> {
        let v: Option<u64> = self.conn().get(keys::endpoints_version(tenant)).await?;
        Ok(v.unwrap_or(0))
    }

    async fn endpoints_by_id(
        &self,
        tenant: &str,
        ids: &[String],
    ) -> redis::RedisResult<Vec<Endpoint>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = ids.iter().map(|id| keys::endpoint(tenant, id)).collect();
        let jsons: Vec<Option<String>> = redis::cmd("MGET")
            .arg(&keys)
            .query_async(&mut self.conn())
            .await?;
        keys.iter()
            .zip(jsons)
            .filter_map(|(key, json)| Some(decode(key, &json?)))
            .collect()
    }

    /// The endpoint's circuit, as `delivery::flow` keeps it.
    pub async fn circuit(&self, tenant: &str, id: &str) -> redis::RedisResult<Circuit> {
        let (failures, open_until): (Option<u64>, Option<u64>) = redis::cmd("HMGET")
            .arg(keys::endpoint_flow(tenant, id, "circuit"))
            .arg("failures")
            .arg("open_until")
            .query_async(&mut self.conn())
            .await?;
        let state = match open_until {
            None => CircuitState::Closed,
            Some(at) if at > crate::model::clock::now_ms() => CircuitState::Open,
            Some(_) => CircuitState::HalfOpen,
        };
        Ok(Circuit {
            state,
            failures: failures.unwrap_or(0),
            open_until: open_until.map(crate::model::clock::ms_to_rfc3339),
        })
    }

    /// Deletes an endpoint and its attempt log; its queued tasks are dropped when they come up.
    pub async fn delete_endpoint(&self, tenant: &str, id: &str) -> redis::RedisResult<bool> {
        let (removed,): (i64,) = redis::pipe()
            .atomic()
            .del(keys::endpoint(tenant, id))
            .zrem(keys::endpoints(tenant), id)
            .ignore()
            .del(keys::attempts(tenant, id))
            .ignore()
            .incr(keys::endpoints_version(tenant), 1)
            .ignore()
            .query_async(&mut self.conn())
            .await?;
        Ok(removed == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint() -> Endpoint {
        Endpoint {
            id: "ep_1".into(),
            url: "https://example.com/hook".into(),
            description: String::new(),
            event_types: vec![],
            disabled: false,
            disabled_reason: None,
            headers: BTreeMap::new(),
            timeout_ms: None,
            rate_per_second: None,
            max_in_flight: None,
            batch: None,
            plugins: vec![],
            on_plugin_error: OnPluginError::default(),
            created_at: String::new(),
            updated_at: String::new(),
            secrets: vec![EndpointSecret {
                secret: Secret::generate().expose(),
                expires_at_ms: None,
            }],
        }
    }

    #[test]
    fn rotation_keeps_the_old_secret_for_the_overlap_only() {
        let mut ep = endpoint();
        let first = ep.live_secrets(0);
        ep.rotate_secret(1_000, 5_000);
        let live = ep.live_secrets(1_000);
        assert_eq!(live.len(), 2);
        assert_eq!(live[1], first[0]);
        assert_eq!(ep.live_secrets(5_000).len(), 1);
        assert_ne!(ep.live_secrets(5_000)[0], first[0]);
    }

    #[test]
    fn empty_event_types_subscribe_to_everything() {
        let mut ep = endpoint();
        assert!(ep.subscribes_to("a.b"));
        ep.event_types = vec![Subscription::Any("x".into())];
        assert!(!ep.subscribes_to("a.b"));
        assert!(ep.subscribes_to("x"));
        assert_eq!(ep.wanted_version("x"), None);
    }

    #[test]
    fn subscriptions_read_as_a_type_or_a_type_at_a_version() {
        let subs: Vec<Subscription> =
            serde_json::from_str(r#"["a.b", {"type": "c.d", "version": 2}]"#).unwrap();
        let mut ep = endpoint();
        ep.event_types = subs;
        assert!(ep.subscribes_to("a.b") && ep.subscribes_to("c.d"));
        assert_eq!(ep.wanted_version("c.d"), Some(2));
        assert_eq!(ep.wanted_version("a.b"), None);
        let refused = serde_json::from_str::<Vec<Subscription>>(r#"[{"type": "c.d"}]"#);
        assert!(refused.is_err());
    }

    #[test]
    fn debug_never_shows_secrets() {
        let ep = endpoint();
        assert!(!format!("{ep:?}").contains("whsec_"));
    }
}
