//! `AppState`: the cheap, cloneable handles every handler draws from.

use std::sync::Arc;
use std::time::Duration;

use crate::admission::ingest::Edge;
use crate::cache::Cache;
use crate::chain::Chain;
use crate::config::Config;
use crate::contracts::Contracts;
use crate::queue::Queue;
use crate::store::{KeyGrant, ProducerGrant, Store};
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
    pub consumers: KnownConsumers,
    pub chain: Chain,
    pub contracts: Contracts,
    pub verifier: crate::readiness::Verifier,
    pub edge: Edge,
}

/// How long a resolved key's grant is trusted without asking Redis again:
/// a key revoked on another instance stops working within this time.
pub const KEY_TTL: Duration = Duration::from_secs(1);

/// The SHA-256 of a key.
pub type KeyHash = [u8; 32];

/// What a bearer key grants: a tenant's API key, or a producer key.
#[derive(Clone)]
pub enum Grant {
    Key(KeyGrant),
    Producer(ProducerGrant),
}

/// Key SHA-256 → its grant, for [`KEY_TTL`]: ingest is the hot path and
/// this saves it a round trip for every event.
#[derive(Clone)]
pub struct KeyCache(Arc<Cache<KeyHash, Grant>>);

impl Default for KeyCache {
    fn default() -> Self {
        KeyCache(Arc::new(Cache::new(KEY_TTL)))
    }
}

impl KeyCache {
    pub fn get(&self, key_hash: &KeyHash) -> Option<Grant> {
        self.0.get(key_hash)
    }

    pub fn put(&self, key_hash: KeyHash, grant: Grant) {
        self.0.put(key_hash, grant);
    }

    /// Forgets a revoked key, given its SHA-256 in hex.
    pub fn forget(&self, key_hash_hex: &str) {
        let mut hash = [0u8; 32];
        if hex::decode_to_slice(key_hash_hex, &mut hash).is_ok() {
            self.0.remove(&hash);
        }
    }
}

/// How long a consumer found to exist is taken to exist without asking
/// again (an event for a consumer deleted meanwhile reaches no endpoint:
/// a consumer with endpoints cannot be deleted).
const CONSUMER_TTL: Duration = Duration::from_secs(10);

/// `tenant\0uid` of consumers found to exist, for the ingest check of
/// an event's `consumer`.
#[derive(Clone)]
pub struct KnownConsumers(Arc<Cache<String, ()>>);

impl Default for KnownConsumers {
    fn default() -> Self {
        KnownConsumers(Arc::new(Cache::new(CONSUMER_TTL)))
    }
}

impl KnownConsumers {
    /// Which of `uids` of `tenant` exist (one answer each), asking Redis
    /// only for those not known already.
    pub async fn exist(
        &self,
        store: &Store,
        tenant: &str,
        uids: &[&str],
    ) -> redis::RedisResult<Vec<bool>> {
        let name = |uid: &str| format!("{tenant}\0{uid}");
        let mut known: Vec<bool> = uids
            .iter()
            .map(|u| self.0.get(&name(u)).is_some())
            .collect();
        let unknown: Vec<&str> = uids
            .iter()
            .zip(&known)
            .filter(|(_, k)| !**k)
            .map(|(u, _)| *u)
            .collect();
        if unknown.is_empty() {
            return Ok(known);
        }
        let found = store.consumers_exist(tenant, &unknown).await?;
        let mut found = unknown.iter().zip(found);
        for (uid, k) in uids.iter().zip(known.iter_mut()) {
            if !*k && let Some((_, exists)) = found.next() {
                *k = exists;
                if exists {
                    self.0.put(name(uid), ());
                }
            }
        }
        Ok(known)
    }

    /// Forgets a deleted consumer at once (on this instance).
    pub fn forget(&self, tenant: &str, uid: &str) {
        self.0.remove(&format!("{tenant}\0{uid}"));
    }
}
