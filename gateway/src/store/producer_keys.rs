//! Producer keys: made by the operator for a platform service that posts
//! events for many tenants (`POST /v1/tenants/{tenant}/events`), for any
//! tenant or a listed set. Only their SHA-256 is kept; the list
//! (`gw:producer-keys`) holds each without the key.

use redis::AsyncCommands;
use serde::{Deserialize, Serialize};

use super::api_keys::random_key;
use super::{Store, decode};
use crate::keys;
use crate::model::{new_id, sha256_hex};

/// What every producer key starts with.
pub const PRODUCER_KEY_PREFIX: &str = "gwpk_";

/// What a producer key may do: post events for these tenants, or any.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProducerGrant {
    pub id: String,
    pub name: String,
    /// `None`: any tenant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenants: Option<Vec<String>>,
}

impl ProducerGrant {
    pub fn may_post_for(&self, tenant: &str) -> bool {
        self.tenants
            .as_ref()
            .is_none_or(|list| list.iter().any(|t| t == tenant))
    }
}

/// A producer key as the operator's list shows it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ProducerKey {
    pub id: String,
    pub name: String,
    /// The key's first 13 characters.
    pub prefix: String,
    /// The tenants it may post for; absent: any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenants: Option<Vec<String>>,
    pub created_at: String,
}

#[derive(Serialize, Deserialize)]
struct Stored {
    #[serde(flatten)]
    key: ProducerKey,
    hash: String,
}

impl Store {
    /// Makes a producer key; answers it as listed and the key itself.
    pub async fn create_producer_key(
        &self,
        name: &str,
        tenants: Option<Vec<String>>,
    ) -> redis::RedisResult<(ProducerKey, String)> {
        let key = random_key(PRODUCER_KEY_PREFIX);
        let hash = sha256_hex(key.as_bytes());
        let listed = ProducerKey {
            id: new_id("pk"),
            name: name.to_string(),
            prefix: key.chars().take(13).collect(),
            tenants,
            created_at: crate::model::clock::now_rfc3339(),
        };
        let grant = ProducerGrant {
            id: listed.id.clone(),
            name: listed.name.clone(),
            tenants: listed.tenants.clone(),
        };
        let stored = Stored {
            key: listed,
            hash: hash.clone(),
        };
        let writes = vec![
            redis::Cmd::hset(
                keys::producer_keys(),
                &stored.key.id,
                serde_json::to_string(&stored).expect("a key always serialises"),
            ),
            redis::Cmd::set(
                keys::producer_key(&hash),
                serde_json::to_string(&grant).expect("a grant always serialises"),
            ),
        ];
        let _: Vec<redis::Value> = self.conn().each(writes).await?;
        Ok((stored.key, key))
    }

    pub async fn producer_keys(&self) -> redis::RedisResult<Vec<ProducerKey>> {
        let all: Vec<String> = self.conn().hvals(keys::producer_keys()).await?;
        let mut list: Vec<ProducerKey> = all
            .iter()
            .map(|json| decode::<Stored>("producer key", json).map(|s| s.key))
            .collect::<Result<_, _>>()?;
        list.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
        Ok(list)
    }

    /// Revokes a producer key at once; answers it and its SHA-256, if it was.
    pub async fn revoke_producer_key(
        &self,
        id: &str,
    ) -> redis::RedisResult<Option<(ProducerKey, String)>> {
        let json: Option<String> = self.conn().hget(keys::producer_keys(), id).await?;
        let Some(stored) = json
            .map(|j| decode::<Stored>("producer key", &j))
            .transpose()?
        else {
            return Ok(None);
        };
        let removals = vec![
            redis::Cmd::del(keys::producer_key(&stored.hash)),
            redis::Cmd::hdel(keys::producer_keys(), id),
        ];
        let _: Vec<redis::Value> = self.conn().each(removals).await?;
        Ok(Some((stored.key, stored.hash)))
    }

    pub async fn producer_grant(&self, key: &str) -> redis::RedisResult<Option<ProducerGrant>> {
        let json: Option<String> = self
            .conn()
            .get(keys::producer_key(&sha256_hex(key.as_bytes())))
            .await?;
        json.map(|j| decode("producer grant", &j)).transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listed_producer_key_posts_only_for_its_tenants() {
        let any = ProducerGrant {
            id: "pk_1".into(),
            name: "billing".into(),
            tenants: None,
        };
        assert!(any.may_post_for("tn_a"));
        let listed = ProducerGrant {
            tenants: Some(vec!["tn_a".into(), "tn_b".into()]),
            ..any
        };
        assert!(listed.may_post_for("tn_b"));
        assert!(!listed.may_post_for("tn_c"));
    }
}
