//! A tenant's consumers: its own customers, each owning endpoints. A
//! consumer is named by the tenant's `uid` for it (unique in the tenant,
//! never changed) and its id is made from that uid, so an event addressed
//! by uid is routed without a lookup and a consumer made again under the
//! same uid is the same consumer.

use redis::AsyncCommands;
use serde::{Deserialize, Serialize};

use super::{Page, Store, decode};
use crate::keys;
use crate::model::sha256_hex;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Consumer {
    /// `cs_` and 26 hex digits, made from `uid`.
    pub id: String,
    /// The tenant's id for its customer.
    pub uid: String,
    pub name: String,
    pub created_at: String,
    pub updated_at: String,
}

impl Consumer {
    /// The id of the consumer named `uid`.
    pub fn id_of(uid: &str) -> String {
        format!("cs_{}", &sha256_hex(uid.as_bytes())[..26])
    }
}

impl Store {
    /// Stores a new consumer; `false` when its uid is taken already.
    pub async fn create_consumer(
        &self,
        tenant: &str,
        consumer: &Consumer,
    ) -> redis::RedisResult<bool> {
        let json = serde_json::to_string(consumer).expect("a consumer always serialises");
        self.conn()
            .hset_nx(keys::consumers(tenant), &consumer.id, json)
            .await
    }

    /// Replaces a consumer's record.
    pub async fn put_consumer(&self, tenant: &str, consumer: &Consumer) -> redis::RedisResult<()> {
        let json = serde_json::to_string(consumer).expect("a consumer always serialises");
        self.conn()
            .hset(keys::consumers(tenant), &consumer.id, json)
            .await
    }

    pub async fn consumer(&self, tenant: &str, id: &str) -> redis::RedisResult<Option<Consumer>> {
        let json: Option<String> = self.conn().hget(keys::consumers(tenant), id).await?;
        json.map(|j| decode("consumer", &j)).transpose()
    }

    /// Which of `uids` are the tenant's consumers (one answer per uid).
    pub async fn consumers_exist(
        &self,
        tenant: &str,
        uids: &[&str],
    ) -> redis::RedisResult<Vec<bool>> {
        let mut pipe = redis::pipe();
        for uid in uids {
            pipe.hexists(keys::consumers(tenant), Consumer::id_of(uid));
        }
        pipe.query_async(&mut self.conn()).await
    }

    /// A page of the tenant's consumers, by id.
    pub async fn consumers(
        &self,
        tenant: &str,
        limit: usize,
        cursor: Option<&str>,
    ) -> redis::RedisResult<Page<Consumer>> {
        let mut ids: Vec<String> = self.conn().hkeys(keys::consumers(tenant)).await?;
        ids.sort();
        ids.retain(|id| cursor.is_none_or(|c| id.as_str() > c));
        let next_cursor = (ids.len() > limit).then(|| ids[limit - 1].clone());
        ids.truncate(limit);
        let mut data = Vec::with_capacity(ids.len());
        if !ids.is_empty() {
            let found: Vec<Option<String>> = redis::cmd("HMGET")
                .arg(keys::consumers(tenant))
                .arg(&ids)
                .query_async(&mut self.conn())
                .await?;
            for json in found.into_iter().flatten() {
                data.push(decode("consumer", &json)?);
            }
        }
        Ok(Page { data, next_cursor })
    }

    /// Deletes a consumer; `false` when there was none.
    pub async fn delete_consumer(&self, tenant: &str, id: &str) -> redis::RedisResult<bool> {
        self.conn().hdel(keys::consumers(tenant), id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_consumer_id_is_made_from_its_uid_alone() {
        let id = Consumer::id_of("customer-42");
        assert_eq!(id, Consumer::id_of("customer-42"));
        assert_ne!(id, Consumer::id_of("customer-43"));
        assert_eq!(id.len(), "cs_".len() + 26);
    }
}
