//! A tenant's API keys: each with a name, its scopes, maybe an expiry and
//! maybe one consumer it is limited to. A key is shown once, when it is
//! made; Redis keeps only its SHA-256, under which its grant is found
//! (`gw:apikey:<sha>`), and the tenant's list of its keys (`…:keys`, a
//! hash by key id) for listing and revoking.
//!
//! A key made before keys had scopes is stored as the bare tenant id: it
//! is read as a key with every scope.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};

use super::{Store, decode};
use crate::keys;
use crate::model::{Scope, Scopes, new_id, sha256_hex};

/// What every tenant API key starts with.
pub const API_KEY_PREFIX: &str = "gwk_";

/// What a key lets its holder do, as found from the key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyGrant {
    pub tenant: String,
    /// The key's id (`key_...`).
    pub id: String,
    pub name: String,
    pub scopes: Vec<Scope>,
    /// The consumer (`cs_...`) it is limited to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consumer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at_ms: Option<u64>,
}

impl KeyGrant {
    /// The grant of a key stored before keys had scopes: every scope.
    fn legacy(tenant: String) -> KeyGrant {
        KeyGrant {
            tenant,
            id: "key_legacy".into(),
            name: "tenant key".into(),
            scopes: Scope::ALL.to_vec(),
            consumer: None,
            expires_at_ms: None,
        }
    }

    pub fn expired(&self, now_ms: u64) -> bool {
        self.expires_at_ms.is_some_and(|at| at <= now_ms)
    }
}

/// A key as its tenant's list shows it: never the key, only its first
/// characters.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ApiKey {
    pub id: String,
    pub name: String,
    /// The key's first 12 characters, to tell keys apart.
    pub prefix: String,
    pub scopes: Vec<Scope>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consumer: Option<String>,
    /// RFC 3339; absent for a key that does not expire.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    pub created_at: String,
}

/// A listed key as stored: with the SHA-256 it is found under, to revoke
/// it by.
#[derive(Serialize, Deserialize)]
struct StoredKey {
    #[serde(flatten)]
    key: ApiKey,
    hash: String,
}

/// What a new key is to be.
pub struct NewKey<'a> {
    pub name: &'a str,
    pub scopes: Scopes,
    pub consumer: Option<&'a str>,
    pub expires_at_ms: Option<u64>,
}

/// A random key with `prefix`.
pub(super) fn random_key(prefix: &str) -> String {
    let mut raw = [0u8; 32];
    rand::rng().fill_bytes(&mut raw);
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(raw))
}

impl Store {
    /// Makes a key for `tenant`; answers it as listed and the key itself
    /// (the only time it exists in clear).
    pub async fn create_key(
        &self,
        tenant: &str,
        new: NewKey<'_>,
    ) -> redis::RedisResult<(ApiKey, String)> {
        let key = random_key(API_KEY_PREFIX);
        let hash = sha256_hex(key.as_bytes());
        let listed = ApiKey {
            id: new_id("key"),
            name: new.name.to_string(),
            prefix: key.chars().take(12).collect(),
            scopes: new.scopes.list(),
            consumer: new.consumer.map(str::to_string),
            expires_at: new.expires_at_ms.map(crate::model::clock::ms_to_rfc3339),
            created_at: crate::model::clock::now_rfc3339(),
        };
        let grant = KeyGrant {
            tenant: tenant.to_string(),
            id: listed.id.clone(),
            name: listed.name.clone(),
            scopes: listed.scopes.clone(),
            consumer: listed.consumer.clone(),
            expires_at_ms: new.expires_at_ms,
        };
        let stored = StoredKey {
            key: listed,
            hash: hash.clone(),
        };
        let record = serde_json::to_string(&stored).expect("a key always serialises");
        let listed = stored.key;
        let grant = serde_json::to_string(&grant).expect("a grant always serialises");
        // The list first, the grant last: a key never works unlisted.
        let mut writes = vec![
            redis::Cmd::hset(keys::tenant_keys(tenant), &listed.id, record),
            redis::Cmd::set(keys::api_key(&hash), grant),
        ];
        if let Some(at) = new.expires_at_ms {
            let mut expire = redis::cmd("PEXPIREAT");
            expire.arg(keys::api_key(&hash)).arg(at);
            writes.push(expire);
        }
        let _: Vec<redis::Value> = self.conn().each(writes).await?;
        Ok((listed, key))
    }

    /// The tenant's keys, newest first.
    pub async fn keys_of(&self, tenant: &str) -> redis::RedisResult<Vec<ApiKey>> {
        let all: Vec<String> = self.conn().hvals(keys::tenant_keys(tenant)).await?;
        let mut keys: Vec<ApiKey> = all
            .iter()
            .map(|json| decode::<StoredKey>("api key", json).map(|s| s.key))
            .collect::<Result<_, _>>()?;
        keys.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
        Ok(keys)
    }

    async fn stored_key(&self, tenant: &str, id: &str) -> redis::RedisResult<Option<StoredKey>> {
        let json: Option<String> = self.conn().hget(keys::tenant_keys(tenant), id).await?;
        json.map(|j| decode("api key", &j)).transpose()
    }

    pub async fn key_of(&self, tenant: &str, id: &str) -> redis::RedisResult<Option<ApiKey>> {
        Ok(self.stored_key(tenant, id).await?.map(|s| s.key))
    }

    /// Revokes a key at once: its grant goes, then its place in the list.
    /// Answers the key as it was listed and the SHA-256 it was found under.
    pub async fn revoke_key(
        &self,
        tenant: &str,
        id: &str,
    ) -> redis::RedisResult<Option<(ApiKey, String)>> {
        let Some(key) = self.stored_key(tenant, id).await? else {
            return Ok(None);
        };
        let removals = vec![
            redis::Cmd::del(keys::api_key(&key.hash)),
            redis::Cmd::hdel(keys::tenant_keys(tenant), id),
        ];
        let _: Vec<redis::Value> = self.conn().each(removals).await?;
        Ok(Some((key.key, key.hash)))
    }

    /// The grant of an API key, if it is one.
    pub async fn key_grant(&self, key: &str) -> redis::RedisResult<Option<KeyGrant>> {
        let stored: Option<String> = self
            .conn()
            .get(keys::api_key(&sha256_hex(key.as_bytes())))
            .await?;
        stored
            .map(|s| match s.starts_with('{') {
                true => decode("api key grant", &s),
                false => Ok(KeyGrant::legacy(s)),
            })
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_past_its_expiry_is_expired() {
        let mut grant = KeyGrant::legacy("tn_a".into());
        assert!(!grant.expired(u64::MAX));
        grant.expires_at_ms = Some(1_000);
        assert!(!grant.expired(999));
        assert!(grant.expired(1_000));
    }

    #[test]
    fn a_stored_key_reads_back_as_listed_with_its_hash() {
        let key = ApiKey {
            id: "key_1".into(),
            name: "ci".into(),
            prefix: "gwk_abcdefgh".into(),
            scopes: vec![Scope::EventsWrite],
            consumer: None,
            expires_at: None,
            created_at: "2026-01-01T00:00:00Z".into(),
        };
        let shown = serde_json::to_string(&key).unwrap();
        assert!(shown.contains("\"events:write\""), "{shown}");
        let stored = serde_json::to_string(&StoredKey {
            key,
            hash: "ab12".into(),
        })
        .unwrap();
        let back: StoredKey = serde_json::from_str(&stored).unwrap();
        assert_eq!(
            (back.key.id.as_str(), back.hash.as_str()),
            ("key_1", "ab12")
        );
    }
}
