//! Endpoints in Redis: create, change (compare-and-set), disable, list,
//! delete, and their circuit's state. Every change bumps the tenant's
//! endpoint version, which the stages check before using their cached copy.

use redis::AsyncCommands;

use super::{
    Circuit, CircuitState, Endpoint, Page, Quarantine, Store, decode, decode_some, lex_page,
};

use crate::keys;

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

    /// Quarantines the endpoint with `quarantine` unless it is already;
    /// true when this call did.
    pub async fn quarantine_endpoint(
        &self,
        tenant: &str,
        id: &str,
        quarantine: Quarantine,
    ) -> redis::RedisResult<bool> {
        let mut changed = false;
        self.update_endpoint(tenant, id, |endpoint| {
            changed = endpoint.quarantine.is_none();
            if changed {
                endpoint.quarantine = Some(quarantine.clone());
                endpoint.updated_at = crate::model::clock::now_rfc3339();
            }
            Ok::<(), ()>(())
        })
        .await?;
        Ok(changed)
    }

    /// Forgets the endpoint's row of failures (its circuit closes).
    pub async fn reset_circuit(&self, tenant: &str, id: &str) -> redis::RedisResult<()> {
        redis::pipe()
            .del(keys::endpoint_flow(tenant, id, "circuit"))
            .del(keys::endpoint_flow(tenant, id, "probe"))
            .query_async(&mut self.conn())
            .await
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
