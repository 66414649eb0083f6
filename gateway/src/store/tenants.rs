//! Tenants and their API keys. A key is shown once, at creation, and stored
//! only as its SHA-256.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};

use super::{Page, Store, lex_page};
use crate::keys;
use crate::model::new_id;

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Tenant {
    pub id: String,
    pub name: String,
    pub created_at: String,
}

impl Store {
    /// Creates a tenant; returns it with its API key (the only time the key exists in clear).
    pub async fn create_tenant(&self, name: &str) -> redis::RedisResult<(Tenant, String)> {
        let tenant = Tenant {
            id: new_id("tn"),
            name: name.to_string(),
            created_at: crate::model::clock::now_rfc3339(),
        };
        let mut raw = [0u8; 32];
        rand::rng().fill_bytes(&mut raw);
        let api_key = format!("gwk_{}", URL_SAFE_NO_PAD.encode(raw));
        let json = serde_json::to_string(&tenant).expect("a tenant always serialises");
        let mut conn = self.conn();
        // The record first, the key index last: a key never points at nothing.
        let _: () = conn.set(keys::tenant(&tenant.id), json).await?;
        let _: () = conn.zadd(keys::TENANTS, &tenant.id, 0).await?;
        let _: () = conn
            .set(
                keys::api_key(&crate::model::sha256_hex(api_key.as_bytes())),
                &tenant.id,
            )
            .await?;
        Ok((tenant, api_key))
    }

    pub async fn tenant(&self, id: &str) -> redis::RedisResult<Option<Tenant>> {
        let key = keys::tenant(id);
        let json: Option<String> = self.conn().get(&key).await?;
        super::decode_some(&key, json)
    }

    pub async fn tenants(
        &self,
        limit: usize,
        cursor: Option<&str>,
    ) -> redis::RedisResult<Page<Tenant>> {
        let mut conn = self.conn();
        let (ids, next_cursor) = lex_page(&mut conn, keys::TENANTS, limit, cursor).await?;
        let mut data = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(t) = self.tenant(&id).await? {
                data.push(t);
            }
        }
        Ok(Page { data, next_cursor })
    }

    /// The tenant owning an API key, if any.
    pub async fn tenant_for_key(&self, api_key: &str) -> redis::RedisResult<Option<String>> {
        self.conn()
            .get(keys::api_key(&crate::model::sha256_hex(api_key.as_bytes())))
            .await
    }
}
