//! Settling plugin versions stored `compiling`: an upload's compile that
//! outlives the request is followed to its end, and at start-up every
//! version some gateway left `compiling` (it stopped before the compile
//! ended) is compiled again here and settled, so a crash never leaves a
//! version unusable until it is uploaded again.

use std::sync::Arc;

use crate::plugins::{PendingCompile, PluginHost, Upload, UploadError};
use crate::store::{CompileStatus, Store};

/// Tenants and plugins read per page while looking for unsettled versions.
const PAGE: usize = 100;

/// Waits for `compile`'s end and records it on the version `sha256` of
/// the tenant's plugin `name`.
pub async fn follow(
    store: &Store,
    (tenant, name, sha256): (&str, &str, &str),
    compile: PendingCompile,
) {
    let result = compile.finish().await.map_err(|e| e.to_string());
    record(store, (tenant, name, sha256), result).await;
}

async fn record(
    store: &Store,
    (tenant, name, sha256): (&str, &str, &str),
    result: Result<(), String>,
) {
    if let Err(e) = store
        .settle_plugin_compile(tenant, name, sha256, result)
        .await
    {
        tracing::error!(%tenant, plugin = %name, error = %e, "cannot record how a plugin's compile ended");
    }
}

/// Compiles and settles every version stored `compiling`, each for its own
/// tenant (so on that tenant's compile lane), one after another. A version
/// whose bytes are gone is marked failed. Another gateway compiling the
/// same version meanwhile is harmless: a version settles once. How many
/// versions it settled.
pub async fn unsettled(host: &PluginHost, store: &Store) -> redis::RedisResult<usize> {
    let mut settled = 0;
    let mut tenants = None;
    loop {
        let page = store.tenants(PAGE, tenants.as_deref()).await?;
        for tenant in &page.data {
            settled += tenant_unsettled(host, store, &tenant.id).await?;
        }
        match page.next_cursor {
            Some(next) => tenants = Some(next),
            None => return Ok(settled),
        }
    }
}

async fn tenant_unsettled(
    host: &PluginHost,
    store: &Store,
    tenant: &str,
) -> redis::RedisResult<usize> {
    let mut settled = 0;
    let mut cursor = None;
    loop {
        let page = store.plugins(tenant, PAGE, cursor.as_deref()).await?;
        for plugin in &page.data {
            let compiling = plugin
                .versions
                .iter()
                .filter(|v| v.status == CompileStatus::Compiling);
            for version in compiling {
                let at = (tenant, plugin.name.as_str(), version.sha256.as_str());
                tracing::info!(%tenant, plugin = %plugin.name, version = version.version,
                    "a plugin version was left compiling; compiling it again");
                let Some(bytes) = store.plugin_bytes(tenant, &version.sha256).await? else {
                    record(store, at, Err("its component is not stored".into())).await;
                    continue;
                };
                let result = compile(host, tenant, bytes).await;
                record(store, at, result).await;
                settled += 1;
            }
        }
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return Ok(settled),
        }
    }
}

async fn compile(host: &PluginHost, tenant: &str, bytes: Arc<Vec<u8>>) -> Result<(), String> {
    let upload = host.upload(tenant, bytes, std::time::Duration::ZERO).await;
    let finished = match upload {
        Ok(Upload::Ready { .. }) => Ok(()),
        Ok(Upload::Compiling { compile, .. }) => compile.finish().await,
        Err(e) => Err(e),
    };
    finished.map_err(|e: UploadError| e.to_string())
}
