//! One plugin call of a chain: the plugin's record (cached), the tenant's
//! lane and breaker, and the component's bytes loaded from the store when
//! this process has not compiled it yet.

use std::sync::Arc;
use std::time::Instant;

use super::{Call, Chain, Step};
use crate::plugins::{
    Budget, Invocation, PluginEvent, PluginFailure, PluginHost, PluginInput, PluginTarget, Verdict,
};
use crate::store::Store;

impl Chain {
    /// Calls one plugin (the newest version, or `version`) on `event`, on
    /// the tenant's lane and behind its breaker.
    pub(super) async fn call(
        &self,
        call: &Call<'_>,
        name: &str,
        version: Option<u32>,
        label: &str,
        event: &PluginEvent,
        target: PluginTarget,
    ) -> anyhow::Result<Step<Verdict>> {
        let tenant = call.tenant;
        let key = (tenant.to_string(), name.to_string());
        let plugin = match self.plugins.get(&key) {
            Some(plugin) => plugin,
            None => {
                let plugin = self.store.plugin(tenant, name).await?;
                self.plugins.put(key, plugin.clone());
                plugin
            }
        };
        let Some(version) = plugin.as_ref().and_then(|p| p.version(version)) else {
            return Ok(Step::Failed(format!("plugin {label} no longer exists")));
        };
        let input = PluginInput {
            event: event.clone(),
            target,
        };
        // The breaker is asked once this tenant's slot is ours, so calls
        // queued behind a plugin that keeps exhausting its budget are refused.
        let _slot = self.lane.permit(tenant).await;
        if let Some(why) = self
            .breakers
            .refuse(tenant, &version.sha256, Instant::now())
        {
            self.metrics.plugin_failures.inc();
            return Ok(Step::Failed(format!(
                "plugin {label} v{}: {why}",
                version.version
            )));
        }
        let (host, store) = (self.host.clone(), self.store.clone());
        let (tenant_id, sha256, budget) = (tenant.to_string(), version.sha256.clone(), call.budget);
        let result = self
            .lane
            .run(async move { invoke(&host, &store, &tenant_id, &sha256, &input, budget).await })
            .await?
            .result;
        // Not the plugin's failure: its code is still compiling. The event
        // waits (its work stays pending and is taken over later), as for a
        // Redis error.
        if let Err(PluginFailure::NotReady(why)) = &result {
            anyhow::bail!("plugin {label} v{}: {why}", version.version);
        }
        self.metrics.plugin_calls.inc();
        let exhausted = matches!(
            result,
            Err(PluginFailure::CpuBudget | PluginFailure::Deadline | PluginFailure::Memory)
        );
        self.breakers
            .record(tenant, &version.sha256, exhausted, Instant::now());
        Ok(match result {
            Ok(verdict) => Step::Done(verdict),
            Err(failure) => {
                self.metrics.plugin_failures.inc();
                Step::Failed(format!("plugin {label} v{}: {failure}", version.version))
            }
        })
    }
}

/// Runs one call of the tenant's component `sha256`, loading its bytes from
/// the store when they are not compiled in this process. The bytes not
/// being stored is the plugin's failure ([`PluginFailure::Unavailable`]); a
/// Redis error reading them is not: it is `Err`, and the caller leaves its
/// work pending to try again.
pub async fn invoke(
    host: &PluginHost,
    store: &Store,
    tenant: &str,
    sha256: &str,
    input: &PluginInput,
    budget: Budget,
) -> anyhow::Result<Invocation> {
    let redis_error = Arc::new(std::sync::OnceLock::new());
    let seen = redis_error.clone();
    let (store, tenant_id, sha) = (store.clone(), tenant.to_string(), sha256.to_string());
    let load = move || async move {
        match store.plugin_bytes(&tenant_id, &sha).await {
            Ok(Some(bytes)) => Ok(bytes),
            Ok(None) => Err("the plugin's component is not stored".to_string()),
            Err(e) => {
                let message = e.to_string();
                let _ = seen.set(e);
                Err(message)
            }
        }
    };
    let invocation = host.invoke(tenant, sha256, load, input, budget).await;
    match Arc::try_unwrap(redis_error).map(std::sync::OnceLock::into_inner) {
        Ok(Some(e)) => Err(anyhow::Error::new(e).context(format!(
            "cannot load the bytes of component {sha256} from Redis"
        ))),
        _ => Ok(invocation),
    }
}
