//! Event contracts: a tenant's event types, their schema versions, the
//! version transforms between them, and the tenant's contract settings.
//! Every change bumps the tenant's contracts version, which
//! [`crate::contracts::Contracts`] checks before trusting its compiled copy.

use redis::AsyncCommands;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Page, Store, decode, decode_some, lex_page};

use crate::keys;
use crate::model::Report;

/// An event type: its description and whether producers should move off it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct EventTypeRecord {
    pub name: String,
    pub description: String,
    pub deprecated: bool,
    /// When it was marked deprecated (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deprecated_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// One version of an event type's schema. The schema never changes once
/// written; only `deprecated` may.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct SchemaVersion {
    pub version: u32,
    /// The JSON Schema (draft 2020-12).
    #[schema(value_type = Object)]
    pub schema: Value,
    pub deprecated: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deprecated_at: Option<String>,
    /// Registered with `force` although the check found breaking changes.
    pub forced: bool,
    /// The check against the previous version (none for version 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compatibility: Option<Report>,
    pub created_at: String,
}

/// A plugin that rewrites events of one version into another.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct Transform {
    pub from: u32,
    pub to: u32,
    pub plugin: String,
    /// A fixed plugin version; the newest when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin_version: Option<u32>,
    /// The plugin's configuration (any JSON).
    #[schema(value_type = Object)]
    pub config: Value,
    pub updated_at: String,
}

/// What ingest does with an event whose type is not registered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Unregistered {
    /// Stored and delivered without validation.
    #[default]
    Accept,
    /// Refused with 422.
    Refuse,
}

/// A tenant's settings (`PUT /v1/settings` replaces them whole).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContractSettings {
    #[serde(default)]
    pub unregistered_types: Unregistered,
    /// The retry schedule of the tenant's endpoints that set none of their
    /// own, instead of the gateway's (`"5s"`, `"10m"`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_schedule: Option<Vec<String>>,
    /// Its endpoints' URLs must be `https://` (`true`) or may be `http://`
    /// too (`false`); the operator's `delivery.https_only` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub https_only: Option<bool>,
}

/// One event type with everything registered for it, as read together.
#[derive(Debug, Clone)]
pub struct TypeContract {
    pub record: EventTypeRecord,
    /// Oldest first.
    pub versions: Vec<SchemaVersion>,
    pub transforms: Vec<Transform>,
}

fn transform_field(from: u32, to: u32) -> String {
    format!("{from}>{to}")
}

impl Store {
    pub async fn contracts_version(&self, tenant: &str) -> redis::RedisResult<u64> {
        let v: Option<u64> = self.conn().get(keys::contracts_version(tenant)).await?;
        Ok(v.unwrap_or(0))
    }

    pub async fn event_type(
        &self,
        tenant: &str,
        name: &str,
    ) -> redis::RedisResult<Option<EventTypeRecord>> {
        let key = keys::event_type(tenant, name);
        let json: Option<String> = self.conn().get(&key).await?;
        decode_some(&key, json)
    }

    pub async fn event_types(
        &self,
        tenant: &str,
        limit: usize,
        cursor: Option<&str>,
    ) -> redis::RedisResult<Page<EventTypeRecord>> {
        let mut conn = self.conn();
        let (names, next_cursor) =
            lex_page(&mut conn, &keys::event_types(tenant), limit, cursor).await?;
        let mut data = Vec::with_capacity(names.len());
        for name in names {
            if let Some(record) = self.event_type(tenant, &name).await? {
                data.push(record);
            }
        }
        Ok(Page { data, next_cursor })
    }

    pub async fn put_event_type(
        &self,
        tenant: &str,
        record: &EventTypeRecord,
    ) -> redis::RedisResult<()> {
        let json = serde_json::to_string(record).expect("a record always serialises");
        redis::pipe()
            .atomic()
            .set(keys::event_type(tenant, &record.name), json)
            .ignore()
            .zadd(keys::event_types(tenant), &record.name, 0)
            .ignore()
            .incr(keys::contracts_version(tenant), 1)
            .ignore()
            .query_async::<()>(&mut self.conn())
            .await
    }

    /// The type's versions, oldest first.
    pub async fn schema_versions(
        &self,
        tenant: &str,
        name: &str,
    ) -> redis::RedisResult<Vec<SchemaVersion>> {
        let key = keys::schema_versions(tenant, name);
        let all: Vec<(String, String)> = self.conn().hgetall(&key).await?;
        let mut versions: Vec<SchemaVersion> = all
            .iter()
            .map(|(field, json)| decode(&format!("{key} {field}"), json))
            .collect::<redis::RedisResult<_>>()?;
        versions.sort_by_key(|v| v.version);
        Ok(versions)
    }

    /// Writes a new version; `false` when that version already exists.
    pub async fn add_schema_version(
        &self,
        tenant: &str,
        name: &str,
        version: &SchemaVersion,
    ) -> redis::RedisResult<bool> {
        let json = serde_json::to_string(version).expect("a version always serialises");
        let (added,): (bool,) = redis::pipe()
            .atomic()
            .hset_nx(keys::schema_versions(tenant, name), version.version, json)
            .incr(keys::contracts_version(tenant), 1)
            .ignore()
            .query_async(&mut self.conn())
            .await?;
        Ok(added)
    }

    /// Rewrites an existing version (its deprecation).
    pub async fn update_schema_version(
        &self,
        tenant: &str,
        name: &str,
        version: &SchemaVersion,
    ) -> redis::RedisResult<()> {
        let json = serde_json::to_string(version).expect("a version always serialises");
        redis::pipe()
            .atomic()
            .hset(keys::schema_versions(tenant, name), version.version, json)
            .ignore()
            .incr(keys::contracts_version(tenant), 1)
            .ignore()
            .query_async::<()>(&mut self.conn())
            .await
    }

    /// The type's transforms, by (from, to).
    pub async fn transforms(&self, tenant: &str, name: &str) -> redis::RedisResult<Vec<Transform>> {
        let key = keys::transforms(tenant, name);
        let all: Vec<(String, String)> = self.conn().hgetall(&key).await?;
        let mut transforms: Vec<Transform> = all
            .iter()
            .map(|(field, json)| decode(&format!("{key} {field}"), json))
            .collect::<redis::RedisResult<_>>()?;
        transforms.sort_by_key(|t| (t.from, t.to));
        Ok(transforms)
    }

    pub async fn put_transform(
        &self,
        tenant: &str,
        name: &str,
        transform: &Transform,
    ) -> redis::RedisResult<()> {
        let json = serde_json::to_string(transform).expect("a transform always serialises");
        let field = transform_field(transform.from, transform.to);
        redis::pipe()
            .atomic()
            .hset(keys::transforms(tenant, name), field, json)
            .ignore()
            .incr(keys::contracts_version(tenant), 1)
            .ignore()
            .query_async::<()>(&mut self.conn())
            .await
    }

    pub async fn contract_settings(&self, tenant: &str) -> redis::RedisResult<ContractSettings> {
        let key = keys::contract_settings(tenant);
        let json: Option<String> = self.conn().get(&key).await?;
        Ok(decode_some(&key, json)?.unwrap_or_default())
    }

    pub async fn put_contract_settings(
        &self,
        tenant: &str,
        settings: &ContractSettings,
    ) -> redis::RedisResult<()> {
        let json = serde_json::to_string(settings).expect("settings always serialise");
        redis::pipe()
            .atomic()
            .set(keys::contract_settings(tenant), json)
            .ignore()
            .incr(keys::contracts_version(tenant), 1)
            .ignore()
            .query_async::<()>(&mut self.conn())
            .await
    }

    /// Everything the tenant registered, at the contracts version read
    /// first (a change racing with the read bumps the version again, so the
    /// next check reloads).
    pub async fn all_contracts(
        &self,
        tenant: &str,
    ) -> redis::RedisResult<(u64, ContractSettings, Vec<TypeContract>)> {
        let version = self.contracts_version(tenant).await?;
        let settings = self.contract_settings(tenant).await?;
        let names: Vec<String> = self.conn().zrange(keys::event_types(tenant), 0, -1).await?;
        let mut types = Vec::with_capacity(names.len());
        for name in names {
            let Some(record) = self.event_type(tenant, &name).await? else {
                continue;
            };
            types.push(TypeContract {
                versions: self.schema_versions(tenant, &name).await?,
                transforms: self.transforms(tenant, &name).await?,
                record,
            });
        }
        Ok((version, settings, types))
    }
}
