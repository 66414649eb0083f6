//! The plugin host: runs tenants' WebAssembly components (world
//! `gateway:plugin/plugin@0.1.0`, `wit/plugin.wit`) that filter and
//! transform events.
//!
//! - [`PluginHost::compile`] validates and compiles an upload off the request
//!   path ([`compile`]): a component, not a core module; of this world; within
//!   the pool's limits. The result is cached in memory by (sha256, the
//!   engine's precompile compatibility hash) in a bounded LRU ([`cache`]).
//! - [`PluginHost::invoke`] runs one call ([`call`]) in a fresh instance
//!   behind a semaphore of `plugins.concurrency` permits, the size of the
//!   instance pool ([`engine`]), under a [`Budget`]: CPU ticks, a wall-clock
//!   deadline and a memory cap, plus caps on output and logs ([`limits`]).
//!   A cache miss (eviction, restart) loads the kept compiled code
//!   ([`artifacts`]: local disk, by sha256 and engine hash) in milliseconds,
//!   and only without it recompiles from the component's bytes, which the
//!   caller loads lazily.
//! - WASI p2 is linked with nothing granted; the only capability is `log`
//!   ([`bindings`], the one `bindgen!`).
//!
//! Loading kept code (`Component::deserialize`) is the workspace's one
//! `unsafe`, confined to [`artifacts`], which only loads files this gateway
//! wrote into its private directory and whose digest matches.

mod artifacts;
mod bindings;
mod cache;
mod call;
mod compile;
mod compiling;
mod denied;
mod engine;
mod limits;

use std::collections::HashMap;
use std::fmt::Display;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;

use parking_lot::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{Semaphore, watch};
use wasmtime::Engine;
use wasmtime::component::Linker;

use crate::cache::Cache;
use crate::config::PluginConfig;
use crate::telemetry::Counter;
use artifacts::Artifacts;
use bindings::CallState;
use cache::Lru;
use call::Caps;
pub use call::Invocation;
use compile::{Compiled, Ready};
use engine::EpochTicker;

/// The resources one call may use. `cpu_ms` is counted in epoch ticks of
/// 1 ms while the plugin runs; `deadline_ms` is wall-clock time from the
/// start of instantiation; `memory_bytes` caps linear memory (clamped to the
/// pool's slot size, `plugins.max_memory_bytes`).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct Budget {
    pub cpu_ms: u64,
    pub deadline_ms: u64,
    pub memory_bytes: u64,
}

/// Why an upload was refused; `Display` is the reason to show the tenant.
#[derive(Debug, Clone, thiserror::Error)]
pub enum UploadError {
    #[error("not a WebAssembly binary")]
    NotWasm,
    #[error("this is a core wasm module, not a component: build with --target wasm32-wasip2")]
    CoreModule,
    #[error("the component is not a gateway:plugin/plugin@0.1.0 plugin: {0}")]
    WrongWorld(String),
    #[error("the component does not fit the plugin limits: {0}")]
    Limits(String),
    #[error("the component took too long to compile")]
    TooSlowToCompile,
    #[error("invalid component: {0}")]
    Invalid(String),
}

/// An upload's compile: finished within the wait, or still running.
pub enum Upload {
    Ready {
        sha256: String,
    },
    Compiling {
        sha256: String,
        compile: PendingCompile,
    },
}

/// A compile that outlived its upload's wait; it runs on whether or not
/// anyone waits for it.
pub struct PendingCompile(compiling::Job);

impl PendingCompile {
    /// Waits for the compile's end.
    pub async fn finish(self) -> Result<(), UploadError> {
        match self.0.within(Duration::MAX).await {
            Ok(result) => result.map(|_| ()),
            Err(_) => Err(UploadError::TooSlowToCompile),
        }
    }
}

/// What a plugin is called with: the event and the endpoint it is for.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginInput {
    pub event: PluginEvent,
    pub target: PluginTarget,
}

/// An event as the WIT `event` record carries it; `data` is JSON bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginEvent {
    pub id: String,
    pub event_type: String,
    pub schema_version: Option<u32>,
    pub timestamp: String,
    pub data: Vec<u8>,
    pub metadata: Vec<(String, String)>,
}

/// The endpoint an event is prepared for; `config` is the plugin's JSON
/// config on it (`{}` when none).
#[derive(Debug, Clone, PartialEq)]
pub struct PluginTarget {
    pub endpoint_id: String,
    pub schema_version: Option<u32>,
    pub config: Vec<u8>,
}

/// A plugin's decision.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Deliver this event (the input, or a rewrite whose `data` is JSON).
    Deliver(PluginEvent),
    /// Do not deliver; the plugin's reason.
    Drop(String),
}

/// Why a call produced no verdict.
#[derive(Debug, Clone, PartialEq, thiserror::Error, Serialize, utoipa::ToSchema)]
#[serde(tag = "failure", content = "detail", rename_all = "snake_case")]
pub enum PluginFailure {
    #[error("the plugin used up its CPU budget")]
    CpuBudget,
    #[error("the plugin did not finish before its deadline")]
    Deadline,
    #[error("the plugin ran out of its memory budget")]
    Memory,
    #[error("the plugin trapped: {0}")]
    Trap(String),
    #[error("the plugin's output is {bytes} bytes, more than the limit of {limit}")]
    OutputTooLarge { bytes: usize, limit: usize },
    #[error("the plugin's output is invalid: {0}")]
    InvalidOutput(String),
    #[error("the plugin failed ({kind}): {message}")]
    PluginError { kind: String, message: String },
    #[error("the plugin cannot run: {0}")]
    Unavailable(String),
    /// It called an import the host links only as a stub that denies.
    #[error("the plugin used a capability it is not granted: {0}")]
    Denied(String),
    /// Its code is still being compiled: the call is to be made again later.
    #[error("the plugin is not ready: {0}")]
    NotReady(String),
}

/// One log line a plugin wrote; `level` is `debug`, `info`, `warn` or
/// `error`.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct LogLine {
    pub level: String,
    pub message: String,
}

/// The host's semaphores are never closed, so acquiring one cannot fail.
const NEVER_CLOSED: &str = "the plugin host's semaphores are never closed";

/// How long a failed compile is remembered: calls for the component meet
/// the same failure meanwhile, without compiling it again.
const FAILED_FOR: Duration = Duration::from_secs(300);

type CompileResult = Result<Ready, UploadError>;

/// The cache key: the engine's compatibility hash and the upload's sha256.
type Key = (u64, String);

/// Compiles and runs plugins. Cheap to clone; the last clone dropped stops
/// the epoch thread.
#[derive(Clone)]
pub struct PluginHost {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Engine,
    linker: Arc<Linker<CallState>>,
    engine_hash: u64,
    /// A blocking (parking_lot) mutex: held only for a map lookup or insert, never across an
    /// `.await`.
    cache: Mutex<Lru<Key, Compiled>>,
    calls: Semaphore,
    compiles: Arc<Semaphore>,
    default_budget: Budget,
    max_memory_bytes: u64,
    caps: Caps,
    compile_timeout: Duration,
    max_upload_bytes: usize,
    artifacts: Option<Arc<Artifacts>>,
    counters: HostCounters,
    /// Each tenant's queue of compiles, while it has one under way.
    tenant_compiles: Mutex<HashMap<String, Arc<Semaphore>>>,
    tenant_compile_concurrency: usize,
    /// Compiles under way, by component.
    compiling: Mutex<HashMap<Key, watch::Receiver<Option<CompileResult>>>>,
    failed: Cache<Key, UploadError>,
    _ticker: EpochTicker,
}

/// What the host counts, for `/metrics`.
#[derive(Debug, Clone, Default)]
pub struct HostCounters {
    /// Components compiled from their bytes (uploads and cache misses).
    pub compiles: Counter,
    /// Components loaded from their kept compiled code instead.
    pub artifacts_loaded: Counter,
}

impl PluginHost {
    /// Builds the engine and its pool, and starts the epoch thread.
    pub fn new(config: &PluginConfig) -> anyhow::Result<PluginHost> {
        let engine = engine::build(config)?;
        let linker = Arc::new(bindings::linker(&engine)?);
        let mut hasher = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let ticker = EpochTicker::start(engine.clone())?;
        let limit = |n: u32| usize::try_from(n).unwrap_or(usize::MAX);
        let inner = Inner {
            engine_hash: hasher.finish(),
            engine,
            linker,
            cache: Mutex::new(Lru::new(config.cache_entries, config.cache_bytes)),
            calls: Semaphore::new(limit(config.concurrency)),
            compiles: Arc::new(Semaphore::new(limit(config.compile_concurrency))),
            default_budget: Budget {
                cpu_ms: config.cpu_ms,
                deadline_ms: config.deadline_ms,
                memory_bytes: config.memory_bytes,
            },
            max_memory_bytes: config.max_memory_bytes,
            caps: Caps {
                max_output_bytes: config.max_output_bytes,
                max_log_lines: limit(config.max_log_lines),
                max_log_bytes: config.max_log_bytes,
            },
            compile_timeout: config.compile_timeout,
            max_upload_bytes: config.max_upload_bytes,
            artifacts: compiling::open_artifacts(config).map(Arc::new),
            counters: HostCounters::default(),
            tenant_compiles: Mutex::default(),
            tenant_compile_concurrency: limit(config.tenant_compile_concurrency),
            compiling: Mutex::default(),
            failed: Cache::new(FAILED_FOR),
            _ticker: ticker,
        };
        Ok(PluginHost {
            inner: Arc::new(inner),
        })
    }

    /// What the host counts.
    pub fn counters(&self) -> &HostCounters {
        &self.inner.counters
    }

    /// Where compiled code is kept, when it is.
    pub fn artifacts_dir(&self) -> Option<&std::path::Path> {
        self.inner.artifacts.as_deref().map(Artifacts::dir)
    }

    /// The budget of a call when the tenant has no override.
    pub fn default_budget(&self) -> Budget {
        self.inner.default_budget
    }

    /// The bytes of compiled code the in-memory cache holds (at most
    /// `plugins.cache_bytes`, or one component alone when it is bigger).
    pub fn cached_code_bytes(&self) -> usize {
        self.lock_cache().weight()
    }

    /// Whether the component with this sha256 is compiled and cached (an
    /// `invoke` of it will not need its bytes).
    pub fn is_cached(&self, sha256: &str) -> bool {
        let key = self.key(sha256);
        self.lock_cache().contains(&key)
    }

    /// Validates and compiles uploaded bytes for `tenant` and caches the
    /// result, waiting for the compile at most `wait`: a compile still
    /// running then goes on in the background ([`Upload::Compiling`]).
    pub async fn upload(
        &self,
        tenant: &str,
        bytes: Arc<Vec<u8>>,
        wait: Duration,
    ) -> Result<Upload, UploadError> {
        compile::check_header(&bytes, self.inner.max_upload_bytes)?;
        let sha256 = compile::sha256_hex(&bytes);
        match self
            .compile_or_join(tenant, &sha256, bytes)
            .await
            .within(wait)
            .await
        {
            Ok(result) => result.map(|_| Upload::Ready { sha256 }),
            Err(job) => Ok(Upload::Compiling {
                sha256,
                compile: PendingCompile(job),
            }),
        }
    }

    /// [`PluginHost::upload`], waiting up to `plugins.compile_timeout`
    /// (for a tenant of its own): the sha256 of a compiled component.
    pub async fn compile(&self, bytes: Arc<Vec<u8>>) -> Result<String, UploadError> {
        match self.upload("", bytes, self.inner.compile_timeout).await? {
            Upload::Ready { sha256 } => Ok(sha256),
            Upload::Compiling { .. } => Err(UploadError::TooSlowToCompile),
        }
    }

    /// Runs one call of `tenant`'s plugin `sha256` on `input` within `budget`.
    ///
    /// `load` fetches the component's bytes; it is called only when the
    /// compiled plugin is not cached (after an eviction or a restart), and
    /// the bytes are then recompiled. A load error, bytes that do not hash to
    /// `sha256` or a failed recompile are [`PluginFailure::Unavailable`]; a
    /// recompile still running after `compile_timeout` is
    /// [`PluginFailure::NotReady`] (it runs on, once, for every caller).
    pub async fn invoke<L, F, E>(
        &self,
        tenant: &str,
        sha256: &str,
        load: L,
        input: &PluginInput,
        budget: Budget,
    ) -> Invocation
    where
        L: FnOnce() -> F,
        F: Future<Output = Result<Arc<Vec<u8>>, E>>,
        E: Display,
    {
        let cached = self.lock_cache().get(&self.key(sha256));
        let pre = match cached {
            Some(pre) => pre,
            None => match self.recompile(tenant, sha256, load).await {
                Ok(pre) => pre,
                Err(failure) => return Invocation::failed(failure),
            },
        };
        let inner = &self.inner;
        let permit = inner.calls.acquire().await.expect(NEVER_CLOSED);
        let budget = Budget {
            cpu_ms: budget.cpu_ms.max(1),
            deadline_ms: budget.deadline_ms.max(1),
            memory_bytes: budget.memory_bytes.min(inner.max_memory_bytes),
        };
        call::run(&inner.engine, &pre, input, budget, inner.caps, permit).await
    }

    async fn recompile<L, F, E>(
        &self,
        tenant: &str,
        sha256: &str,
        load: L,
    ) -> Result<Compiled, PluginFailure>
    where
        L: FnOnce() -> F,
        F: Future<Output = Result<Arc<Vec<u8>>, E>>,
        E: Display,
    {
        if let Some(pre) = self.kept(sha256).await {
            return Ok(pre);
        }
        let unavailable = |m: String| PluginFailure::Unavailable(m);
        let bytes = load()
            .await
            .map_err(|e| unavailable(format!("cannot load the component: {e}")))?;
        if compile::sha256_hex(&bytes) != sha256 {
            return Err(unavailable(format!(
                "the stored component does not hash to {sha256}"
            )));
        }
        let job = self.compile_or_join(tenant, sha256, bytes).await;
        match job.within(self.inner.compile_timeout).await {
            Ok(result) => {
                result.map_err(|e| unavailable(format!("cannot recompile the component: {e}")))
            }
            Err(_) => Err(PluginFailure::NotReady(
                "its code is still being compiled (past plugins.compile_timeout)".into(),
            )),
        }
    }

    fn key(&self, sha256: &str) -> Key {
        (self.inner.engine_hash, sha256.to_ascii_lowercase())
    }

    fn lock_cache(&self) -> parking_lot::MutexGuard<'_, Lru<Key, Compiled>> {
        // A panic while holding the lock cannot leave the map half-updated
        // in a way that matters: at worst an entry is missing.
        self.inner.cache.lock()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_serialize_with_a_stable_tag() {
        let json = |f: PluginFailure| serde_json::to_value(f).unwrap();
        assert_eq!(
            json(PluginFailure::CpuBudget),
            serde_json::json!({"failure": "cpu_budget"})
        );
        assert_eq!(
            json(PluginFailure::Trap("unreachable".into())),
            serde_json::json!({"failure": "trap", "detail": "unreachable"})
        );
        assert_eq!(
            json(PluginFailure::OutputTooLarge { bytes: 9, limit: 8 }),
            serde_json::json!({"failure": "output_too_large", "detail": {"bytes": 9, "limit": 8}})
        );
    }

    #[test]
    fn upload_errors_tell_the_tenant_what_to_do() {
        let core = UploadError::CoreModule.to_string();
        assert!(core.contains("--target wasm32-wasip2"), "{core}");
        let world = UploadError::WrongWorld("no export `handle`".into()).to_string();
        assert!(world.contains("gateway:plugin/plugin@0.1.0"), "{world}");
    }
}
