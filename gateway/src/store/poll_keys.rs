//! Poll keys: credentials a tenant hands to the consumer of one poll-mode
//! endpoint, good for that endpoint's poll routes and nothing else. Only
//! their SHA-256 is kept.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use redis::AsyncCommands;

use super::Store;
use crate::keys;
use crate::model::sha256_hex;

/// What every poll key starts with.
pub const POLL_KEY_PREFIX: &str = "gwp_";

impl Store {
    /// A new poll key for the tenant's endpoint (the only time it exists in clear).
    pub async fn create_poll_key(
        &self,
        tenant: &str,
        endpoint: &str,
    ) -> redis::RedisResult<String> {
        let mut raw = [0u8; 32];
        rand::rng().fill_bytes(&mut raw);
        let key = format!("{POLL_KEY_PREFIX}{}", URL_SAFE_NO_PAD.encode(raw));
        let scope = keys::endpoint_member(tenant, endpoint);
        let _: () = self
            .conn()
            .set(keys::poll_key(&sha256_hex(key.as_bytes())), scope)
            .await?;
        Ok(key)
    }

    /// The `(tenant, endpoint)` a poll key is good for.
    pub async fn poll_key_scope(&self, key: &str) -> redis::RedisResult<Option<(String, String)>> {
        let scope: Option<String> = self
            .conn()
            .get(keys::poll_key(&sha256_hex(key.as_bytes())))
            .await?;
        Ok(scope.as_deref().and_then(keys::parse_endpoint_member))
    }
}
