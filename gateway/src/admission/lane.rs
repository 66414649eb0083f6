//! Where plugin calls run. Two bounds keep plugins from hurting anyone else:
//! they run on a runtime of their own with `plugins.threads` worker threads,
//! so all plugins together take at most that many cores from ingest, fan-out
//! and delivery; and one tenant has at most [`TENANT_CALLS`] calls under way
//! in this process, so it cannot take every plugin slot from other tenants.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use parking_lot::Mutex;

use tokio::runtime::{Handle, Runtime};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Plugin calls one tenant may have under way at once in this process.
pub const TENANT_CALLS: usize = 4;

pub struct Lane {
    runtime: Option<Runtime>,
    handle: Handle,
    // A blocking (parking_lot) mutex: one lookup per call, never held across an await.
    tenants: Mutex<HashMap<String, Arc<Semaphore>>>,
}

impl Lane {
    pub fn new(threads: usize) -> anyhow::Result<Lane> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name("plugins")
            .enable_time()
            .build()?;
        Ok(Lane {
            handle: runtime.handle().clone(),
            runtime: Some(runtime),
            tenants: Mutex::new(HashMap::new()),
        })
    }

    /// Waits for one of the tenant's call slots.
    pub async fn permit(&self, tenant: &str) -> OwnedSemaphorePermit {
        let semaphore = self
            .tenants
            .lock()
            .entry(tenant.to_string())
            .or_insert_with(|| Arc::new(Semaphore::new(TENANT_CALLS)))
            .clone();
        semaphore
            .acquire_owned()
            .await
            .expect("tenant semaphores are never closed")
    }

    /// Runs `call` on the plugin threads and waits for its result.
    pub async fn run<F>(&self, call: F) -> F::Output
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        match self.handle.spawn(call).await {
            Ok(output) => output,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => panic!("the plugin runtime stopped while a call was under way: {e}"),
        }
    }
}

impl Drop for Lane {
    fn drop(&mut self) {
        // Dropping a runtime blocks, which an async context forbids: let it
        // wind down on its own threads instead.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn calls_run_on_the_plugin_threads_and_tenants_are_capped() {
        let lane = Lane::new(1).unwrap();
        let name = lane
            .run(async { std::thread::current().name().map(str::to_string) })
            .await;
        assert_eq!(name.as_deref(), Some("plugins"));
        let held: Vec<_> = futures_held(&lane, "t").await;
        assert_eq!(held.len(), TENANT_CALLS);
        let more =
            tokio::time::timeout(std::time::Duration::from_millis(50), lane.permit("t")).await;
        assert!(more.is_err(), "a tenant's calls are capped");
        let other =
            tokio::time::timeout(std::time::Duration::from_millis(50), lane.permit("u")).await;
        assert!(other.is_ok(), "other tenants are not held up");
    }

    async fn futures_held(lane: &Lane, tenant: &str) -> Vec<OwnedSemaphorePermit> {
        let mut held = Vec::new();
        for _ in 0..TENANT_CALLS {
            held.push(lane.permit(tenant).await);
        }
        held
    }
}
