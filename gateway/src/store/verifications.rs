//! When each endpoint's next ownership handshake is due, shared by every
//! gateway (`gw:verify:due`): scheduled, taken under a lease, dropped.

use redis::AsyncCommands;

use super::Store;
use crate::keys;

fn claim_script() -> &'static redis::Script {
    static SCRIPT: std::sync::OnceLock<redis::Script> = std::sync::OnceLock::new();
    SCRIPT.get_or_init(|| redis::Script::new(include_str!("scripts/claim_due.lua")))
}

impl Store {
    /// The endpoint's next handshake is due at `at_ms`.
    pub async fn schedule_handshake(
        &self,
        tenant: &str,
        endpoint: &str,
        at_ms: u64,
    ) -> redis::RedisResult<()> {
        self.conn()
            .zadd(
                keys::verify_due(),
                keys::endpoint_member(tenant, endpoint),
                at_ms,
            )
            .await
    }

    /// The endpoint needs no more handshakes (it is gone).
    pub async fn unschedule_handshake(
        &self,
        tenant: &str,
        endpoint: &str,
    ) -> redis::RedisResult<()> {
        self.conn()
            .zrem(keys::verify_due(), keys::endpoint_member(tenant, endpoint))
            .await
    }

    /// Takes up to `max` handshakes due by `now_ms`, each leased until
    /// `lease_until_ms`, as `(tenant, endpoint)`.
    pub async fn take_due_handshakes(
        &self,
        now_ms: u64,
        lease_until_ms: u64,
        max: usize,
    ) -> redis::RedisResult<Vec<(String, String)>> {
        let taken: Vec<String> = claim_script()
            .key(keys::verify_due())
            .arg(now_ms)
            .arg(lease_until_ms)
            .arg(max)
            .invoke_async(&mut self.conn())
            .await?;
        Ok(taken
            .iter()
            .map(String::as_str)
            .filter_map(keys::parse_endpoint_member)
            .collect())
    }

    /// When the endpoint's next handshake is due (ms), if one is scheduled.
    pub async fn handshake_due(
        &self,
        tenant: &str,
        endpoint: &str,
    ) -> redis::RedisResult<Option<u64>> {
        self.conn()
            .zscore(keys::verify_due(), keys::endpoint_member(tenant, endpoint))
            .await
    }
}
