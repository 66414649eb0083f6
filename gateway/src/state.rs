//! `AppState`: the cheap, cloneable handles every handler draws from.

use std::sync::Arc;
use std::time::Duration;

use crate::admission::ingest::Edge;
use crate::cache::Cache;
use crate::chain::Chain;
use crate::config::Config;
use crate::contracts::Contracts;
use crate::queue::Queue;
use crate::store::Store;
use crate::telemetry::Metrics;
use crate::workers::Liveness;

/// The shared handles behind one `Arc`: axum clones the state for every
/// extractor of every request, and this makes that one atomic increment.
#[derive(Clone)]
pub struct AppState(Arc<Handles>);

impl AppState {
    pub fn new(handles: Handles) -> AppState {
        AppState(Arc::new(handles))
    }
}

impl std::ops::Deref for AppState {
    type Target = Handles;

    fn deref(&self) -> &Handles {
        &self.0
    }
}

pub struct Handles {
    pub config: Arc<Config>,
    pub store: Store,
    pub queue: Queue,
    pub metrics: Metrics,
    pub liveness: Liveness,
    pub keys: KeyCache,
    pub chain: Chain,
    pub contracts: Contracts,
    pub verifier: crate::readiness::Verifier,
    pub edge: Edge,
}

/// How long a resolved API key is trusted without asking Redis again.
const KEY_TTL: Duration = Duration::from_secs(10);

/// The SHA-256 of an API key.
pub type KeyHash = [u8; 32];

/// API key SHA-256 → tenant id, for a few seconds: ingest is the hot path
/// and this saves it a round trip.
#[derive(Clone)]
pub struct KeyCache(Arc<Cache<KeyHash, String>>);

impl Default for KeyCache {
    fn default() -> Self {
        KeyCache(Arc::new(Cache::new(KEY_TTL)))
    }
}

impl KeyCache {
    pub fn get(&self, key_hash: &KeyHash) -> Option<String> {
        self.0.get(key_hash)
    }

    pub fn put(&self, key_hash: KeyHash, tenant: String) {
        self.0.put(key_hash, tenant);
    }
}
