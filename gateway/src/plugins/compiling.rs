//! How the host gets a component's compiled code: from the in-memory
//! cache, from the code kept on disk ([`super::artifacts`]), or by one
//! compile per component in the background, queued fairly per tenant,
//! which callers wait for as long as they choose ([`Job::within`]) and
//! whose failure is remembered.

use std::sync::Arc;

use std::time::Duration;

use tokio::sync::{Semaphore, watch};

use super::artifacts::Artifacts;
use super::compile::{self, Compiled, Keep};
use super::{CompileResult, Key, NEVER_CLOSED, PluginHost, UploadError};
use crate::config::PluginConfig;

/// A compile's result, or the compile still running.
pub(super) enum Job {
    Done(Result<Compiled, UploadError>),
    Running(watch::Receiver<Option<CompileResult>>),
}

impl Job {
    /// The result if it comes within `wait`, else the job, still running.
    pub(super) async fn within(self, wait: Duration) -> Result<Result<Compiled, UploadError>, Job> {
        let mut running = match self {
            Job::Done(result) => return Ok(result),
            Job::Running(running) => running,
        };
        let finished = tokio::time::timeout(wait, running.wait_for(Option::is_some))
            .await
            .map(|seen| seen.map(|result| result.clone().expect("waited for a result")));
        match finished {
            Err(_) => Err(Job::Running(running)),
            Ok(Err(_)) => Ok(Err(UploadError::Invalid(
                "the compile was abandoned".into(),
            ))),
            Ok(Ok(result)) => Ok(result.map(|ready| ready.pre)),
        }
    }
}

impl PluginHost {
    /// The compiled component (cached, kept on disk, or a failure
    /// remembered for [`super::FAILED_FOR`]), or else its compile: the one under
    /// way, or a new one in the background. One compile runs per component
    /// however many callers want it, and runs to its end whoever still
    /// waits; its result is then cached, or its failure remembered.
    pub(super) async fn compile_or_join(
        &self,
        tenant: &str,
        sha256: &str,
        bytes: Arc<Vec<u8>>,
    ) -> Job {
        let key = self.key(sha256);
        if let Some(pre) = self.lock_cache().get(&key) {
            return Job::Done(Ok(pre));
        }
        if let Some(pre) = self.kept(sha256).await {
            return Job::Done(Ok(pre));
        }
        if let Some(failure) = self.inner.failed.get(&key) {
            return Job::Done(Err(failure));
        }
        Job::Running(self.compile_job(tenant, key, bytes))
    }

    /// The compile of `key` under way, or a new one started in the background.
    fn compile_job(
        &self,
        tenant: &str,
        key: Key,
        bytes: Arc<Vec<u8>>,
    ) -> watch::Receiver<Option<CompileResult>> {
        let mut jobs = self.inner.compiling.lock();
        if let Some(job) = jobs.get(&key) {
            return job.clone();
        }
        let (tx, rx) = watch::channel(None);
        jobs.insert(key.clone(), rx.clone());
        drop(jobs);
        let (host, tenant) = (self.clone(), tenant.to_string());
        tokio::spawn(async move {
            let result = host.compile_now(&tenant, &key, bytes).await;
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

    /// Compiles on the blocking pool once it is `tenant`'s turn (at most
    /// `plugins.tenant_compile_concurrency` of its compiles at once, the
    /// others queued in order) and one of the bounded compile slots is free.
    /// A tenant's queue holds no slot, so one tenant's many uploads cannot
    /// keep the slots from another's.
    async fn compile_now(&self, tenant: &str, key: &Key, bytes: Arc<Vec<u8>>) -> CompileResult {
        let inner = &self.inner;
        let lane = inner
            .tenant_compiles
            .lock()
            .entry(tenant.to_string())
            .or_insert_with(|| Arc::new(Semaphore::new(inner.tenant_compile_concurrency)))
            .clone();
        let turn = lane.clone().acquire_owned().await.expect(NEVER_CLOSED);
        let permit = inner
            .compiles
            .clone()
            .acquire_owned()
            .await
            .expect(NEVER_CLOSED);
        let keep = inner.artifacts.as_ref().map(|artifacts| Keep {
            artifacts: artifacts.clone(),
            sha256: key.1.clone(),
            engine_hash: inner.engine_hash,
        });
        inner.counters.compiles.inc();
        let result =
            compile::compile_on_pool(&inner.engine, &inner.linker, permit, bytes, keep).await;
        drop((turn, lane));
        // A lane nobody queues on any more goes: the map holds one per
        // tenant with a compile under way, not one per tenant ever seen.
        inner
            .tenant_compiles
            .lock()
            .retain(|_, lane| Arc::strong_count(lane) > 1);
        result
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
            compile::prepare(&inner.engine, &inner.linker, &component).ok()
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
