//! Tenants. A new tenant gets its first API key (`default`, every scope).

use redis::AsyncCommands;
use serde::{Deserialize, Serialize};

use super::api_keys::NewKey;
use super::{Page, Store, lex_page};
use crate::keys;
use crate::model::Scopes;

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Tenant {
    pub id: String,
    pub name: String,
    pub created_at: String,
}

impl Store {
    /// Creates a tenant; returns it with its API key (the only time the key exists in clear).
    pub async fn create_tenant(
        &self,
        id: &str,
        name: &str,
    ) -> redis::RedisResult<(Tenant, String)> {
        let tenant = Tenant {
            id: id.to_string(),
            name: name.to_string(),
            created_at: crate::model::clock::now_rfc3339(),
        };
        let json = serde_json::to_string(&tenant).expect("a tenant always serialises");
        let mut conn = self.conn();
        // The record first, the key last: a key never points at nothing.
        let _: () = conn.set(keys::tenant(&tenant.id), json).await?;
        let _: () = conn.zadd(keys::tenants(), &tenant.id, 0).await?;
        let first = NewKey {
            name: "default",
            scopes: Scopes::all(),
            consumer: None,
            expires_at_ms: None,
        };
        let (_, api_key) = self.create_key(&tenant.id, first).await?;
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
        let (ids, next_cursor) = lex_page(&mut conn, &keys::tenants(), limit, cursor).await?;
        let mut data = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(t) = self.tenant(&id).await? {
                data.push(t);
            }
        }
        Ok(Page { data, next_cursor })
    }
}
