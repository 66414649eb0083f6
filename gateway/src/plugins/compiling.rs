//! How the host gets a component's compiled code: from the in-memory
//! cache, from the code kept on disk ([`super::artifacts`]), or by one
//! compile per component in the background, which callers wait for up to
//! `plugins.compile_timeout` and whose failure is remembered.

use std::sync::Arc;

use tokio::sync::watch;

use super::artifacts::Artifacts;
use super::compile::{self, Compiled, Keep};
use super::{CompileResult, Key, NEVER_CLOSED, PluginHost, UploadError};
use crate::config::PluginConfig;

impl PluginHost {
    /// The compiled component: cached, kept on disk, or compiled now. One
    /// compile runs per component however many callers want it, and runs
    /// to its end even when a caller stops waiting after `compile_timeout`
    /// ([`UploadError::TooSlowToCompile`]); its result is then cached, or
    /// its failure remembered for [`FAILED_FOR`] and answered without
    /// compiling again.
    pub(super) async fn compiled(
        &self,
        sha256: &str,
        bytes: Arc<Vec<u8>>,
    ) -> Result<Compiled, UploadError> {
        let key = self.key(sha256);
        if let Some(pre) = self.lock_cache().get(&key) {
            return Ok(pre);
        }
        if let Some(pre) = self.kept(sha256).await {
            return Ok(pre);
        }
        if let Some(failure) = self.inner.failed.get(&key) {
            return Err(failure);
        }
        let mut done = self.compile_job(key, bytes);
        let finished =
            tokio::time::timeout(self.inner.compile_timeout, done.wait_for(Option::is_some)).await;
        match finished {
            Err(_) => Err(UploadError::TooSlowToCompile),
            Ok(Err(_)) => Err(UploadError::Invalid("the compile was abandoned".into())),
            Ok(Ok(result)) => result
                .clone()
                .expect("waited for a result")
                .map(|ready| ready.pre),
        }
    }

    /// The compile of `key` under way, or a new one started in the background.
    fn compile_job(&self, key: Key, bytes: Arc<Vec<u8>>) -> watch::Receiver<Option<CompileResult>> {
        let mut jobs = self.inner.compiling.lock();
        if let Some(job) = jobs.get(&key) {
            return job.clone();
        }
        let (tx, rx) = watch::channel(None);
        jobs.insert(key.clone(), rx.clone());
        drop(jobs);
        let host = self.clone();
        tokio::spawn(async move {
            let result = host.compile_now(&key, bytes).await;
            match &result {
                Ok(ready) => {
                    host.lock_cache()
                        .insert(key.clone(), ready.pre.clone(), ready.code_bytes);
                }
                Err(failure) => host.inner.failed.put(key.clone(), failure.clone()),
            }
            host.inner.compiling.lock().remove(&key);
            let _ = tx.send(Some(result));
        });
        rx
    }

    /// Compiles on the blocking pool, in one of the bounded compile slots.
    async fn compile_now(&self, key: &Key, bytes: Arc<Vec<u8>>) -> CompileResult {
        let compiles = self.inner.compiles.clone();
        let permit = compiles.acquire_owned().await.expect(NEVER_CLOSED);
        let inner = &self.inner;
        let keep = inner.artifacts.as_ref().map(|artifacts| Keep {
            artifacts: artifacts.clone(),
            sha256: key.1.clone(),
            engine_hash: inner.engine_hash,
        });
        inner.counters.compiles.inc();
        compile::compile_on_pool(&inner.engine, &inner.linker, permit, bytes, keep).await
    }

    /// The component's kept compiled code, loaded (on the blocking pool,
    /// without a compile slot: it takes milliseconds) into the cache.
    pub(super) async fn kept(&self, sha256: &str) -> Option<Compiled> {
        let artifacts = self.inner.artifacts.clone()?;
        let key = self.key(sha256);
        let inner = self.inner.clone();
        let hash = key.1.clone();
        let ready = tokio::task::spawn_blocking(move || {
            let component = artifacts.load(&inner.engine, &hash, inner.engine_hash)?;
            compile::prepare(&inner.linker, &component).ok()
        })
        .await
        .ok()??;
        self.inner.counters.artifacts_loaded.inc();
        self.lock_cache()
            .insert(key, ready.pre.clone(), ready.code_bytes);
        Some(ready.pre)
    }
}

/// The directory compiled code is kept in: `plugins.artifacts_dir`, else
/// the user's cache directory; `None` when `plugins.keep_artifacts` is off
/// or the directory cannot be made (then every start compiles again).
pub(super) fn open_artifacts(config: &PluginConfig) -> Option<Artifacts> {
    if !config.keep_artifacts {
        return None;
    }
    let dir = match config.artifacts_dir.as_str() {
        "" => {
            let var = |name| std::env::var_os(name).filter(|v| !v.is_empty());
            let cache = var("XDG_CACHE_HOME")
                .map(std::path::PathBuf::from)
                .or_else(|| var("HOME").map(|home| std::path::Path::new(&home).join(".cache")));
            let Some(cache) = cache else {
                tracing::warn!(
                    "neither XDG_CACHE_HOME nor HOME is set and plugins.artifacts_dir is empty: compiled plugins are not kept"
                );
                return None;
            };
            cache.join("webhook-gateway").join("artifacts")
        }
        dir => std::path::PathBuf::from(dir),
    };
    match Artifacts::open(&dir) {
        Ok(artifacts) => Some(artifacts),
        Err(e) => {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot open the directory for compiled plugins; they are not kept");
            None
        }
    }
}
