//! Tenants' plugins: a record of each plugin's versions, and the component
//! bytes, content-addressed by sha256 under the tenant's hash tag. Plus the
//! operator's per-tenant overrides of plugin budgets.

use std::sync::Arc;

use redis::AsyncCommands;
use serde::{Deserialize, Serialize};

use super::{Page, Store, lex_page};
use crate::keys;

/// One uploaded version of a plugin.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct PluginVersion {
    pub version: u32,
    pub sha256: String,
    pub size: usize,
    pub created_at: String,
    /// Whether its code is compiled: only a `ready` version runs.
    #[serde(default)]
    pub status: CompileStatus,
    /// Why its compile failed, when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Where a version's compile stands. Records from before uploads compiled
/// in the background have none: they were compiled before being stored.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CompileStatus {
    /// Compiled: endpoints and transforms may use it.
    #[default]
    Ready,
    /// Still compiling, after the upload answered `202`.
    Compiling,
    /// The compile failed (`reason` says why); it never runs.
    Failed,
}

impl CompileStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CompileStatus::Ready => "ready",
            CompileStatus::Compiling => "compiling",
            CompileStatus::Failed => "failed",
        }
    }
}

/// A plugin and its versions, oldest first.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Plugin {
    pub name: String,
    pub versions: Vec<PluginVersion>,
}

impl Plugin {
    /// The version asked for, or the newest that is ready (a version still
    /// compiling, or whose compile failed, is passed over until it is).
    pub fn version(&self, version: Option<u32>) -> Option<&PluginVersion> {
        match version {
            Some(v) => self.versions.iter().find(|p| p.version == v),
            None => self
                .versions
                .iter()
                .rev()
                .find(|p| p.status == CompileStatus::Ready),
        }
    }
}

/// Per-tenant limits set by the operator; `None` keeps the configured default.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TenantLimits {
    #[serde(default)]
    pub ingest_per_second: Option<u64>,
    #[serde(default)]
    pub ingest_burst: Option<u64>,
    #[serde(default)]
    pub max_backlog: Option<u64>,
    #[serde(default)]
    pub endpoint_per_second: Option<u64>,
    pub plugin_cpu_ms: Option<u64>,
    pub plugin_deadline_ms: Option<u64>,
    pub plugin_memory_bytes: Option<u64>,
}

impl Store {
    pub async fn plugin(&self, tenant: &str, name: &str) -> redis::RedisResult<Option<Plugin>> {
        let key = keys::plugin(tenant, name);
        let json: Option<String> = self.conn().get(&key).await?;
        super::decode_some(&key, json)
    }

    pub async fn plugins(
        &self,
        tenant: &str,
        limit: usize,
        cursor: Option<&str>,
    ) -> redis::RedisResult<Page<Plugin>> {
        let mut conn = self.conn();
        let (names, next_cursor) =
            lex_page(&mut conn, &keys::plugins(tenant), limit, cursor).await?;
        let mut data = Vec::with_capacity(names.len());
        for name in names {
            if let Some(p) = self.plugin(tenant, &name).await? {
                data.push(p);
            }
        }
        Ok(Page { data, next_cursor })
    }

    /// Adds `version` (its number is assigned here, after the newest) to
    /// the plugin `name`, creating the plugin if need be, and stores the
    /// bytes. When the newest version has the same sha256 nothing changes:
    /// `(false, that version)`.
    pub async fn add_plugin_version(
        &self,
        tenant: &str,
        name: &str,
        version: &PluginVersion,
        bytes: &[u8],
    ) -> redis::RedisResult<(bool, PluginVersion)> {
        static SCRIPT: std::sync::OnceLock<redis::Script> = std::sync::OnceLock::new();
        let script =
            SCRIPT.get_or_init(|| redis::Script::new(include_str!("scripts/plugin_append.lua")));
        let json = serde_json::to_string(version).expect("a version always serialises");
        let (added, stored): (bool, String) = script
            .key(keys::plugin(tenant, name))
            .key(keys::plugin_bytes(tenant, &version.sha256))
            .key(keys::plugins(tenant))
            .arg(name)
            .arg(json)
            .arg(bytes)
            .invoke_async(&mut self.conn())
            .await?;
        Ok((added, super::decode(&keys::plugin(tenant, name), &stored)?))
    }

    /// Settles the status of the version `sha256` of plugin `name`, if it
    /// is still compiling: `Err(reason)` marks it failed. Whether it changed.
    pub async fn settle_plugin_compile(
        &self,
        tenant: &str,
        name: &str,
        sha256: &str,
        result: Result<(), String>,
    ) -> redis::RedisResult<bool> {
        static SCRIPT: std::sync::OnceLock<redis::Script> = std::sync::OnceLock::new();
        let script =
            SCRIPT.get_or_init(|| redis::Script::new(include_str!("scripts/plugin_status.lua")));
        let (status, reason) = match result {
            Ok(()) => (CompileStatus::Ready, String::new()),
            Err(reason) => (CompileStatus::Failed, reason),
        };
        script
            .key(keys::plugin(tenant, name))
            .arg(sha256)
            .arg(status.as_str())
            .arg(reason)
            .invoke_async(&mut self.conn())
            .await
    }

    /// A stored component's bytes; `None` when they are not stored.
    pub async fn plugin_bytes(
        &self,
        tenant: &str,
        sha256: &str,
    ) -> redis::RedisResult<Option<Arc<Vec<u8>>>> {
        let bytes: Option<Vec<u8>> = self.conn().get(keys::plugin_bytes(tenant, sha256)).await?;
        Ok(bytes.map(Arc::new))
    }

    /// Deletes a plugin, every version's bytes and its record.
    pub async fn delete_plugin(&self, tenant: &str, plugin: &Plugin) -> redis::RedisResult<()> {
        let mut pipe = redis::pipe();
        pipe.atomic();
        for v in &plugin.versions {
            pipe.del(keys::plugin_bytes(tenant, &v.sha256)).ignore();
        }
        pipe.del(keys::plugin(tenant, &plugin.name))
            .ignore()
            .zrem(keys::plugins(tenant), &plugin.name)
            .ignore()
            .query_async(&mut self.conn())
            .await
    }

    pub async fn limits(&self, tenant: &str) -> redis::RedisResult<TenantLimits> {
        let key = keys::limits(tenant);
        let json: Option<String> = self.conn().get(&key).await?;
        Ok(super::decode_some(&key, json)?.unwrap_or_default())
    }

    pub async fn put_limits(&self, tenant: &str, limits: &TenantLimits) -> redis::RedisResult<()> {
        let json = serde_json::to_string(limits).expect("limits always serialise");
        self.conn().set(keys::limits(tenant), json).await
    }
}
