//! Runs an endpoint's plugin chain on one event: each plugin gets the event
//! as the previous one left it; a drop ends the chain; a failure follows the
//! endpoint's `on_plugin_error`. Used by fan-out, by the redelivery of
//! plugin dead letters, and by nothing else.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::breaker::Breakers;
use crate::lane::Lane;
use crate::plugins::{
    Budget, PluginEvent, PluginFailure, PluginHost, PluginInput, PluginTarget, Verdict,
};
use crate::store::{Endpoint, OnPluginError, Plugin, Store, TenantLimits, delivery_body};
use crate::telemetry::Metrics;
use crate::ttl::TtlMap;

/// What the chain decided for one endpoint.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Deliver. `body` is set when a plugin rewrote the event; `skipped`
    /// names plugins that failed and were skipped (`on_plugin_error: skip`).
    Deliver {
        body: Option<String>,
        skipped: Option<String>,
    },
    /// Not for this endpoint: a plugin dropped it, or failed under `drop`.
    Dropped(String),
    /// A plugin failed under `dead_letter`.
    Failed(String),
}

/// The parts of a stored delivery body a plugin sees.
#[derive(Deserialize)]
struct BodyParts<'a> {
    #[serde(rename = "type")]
    event_type: String,
    timestamp: String,
    #[serde(borrow)]
    data: &'a RawValue,
}

#[derive(Clone)]
pub struct Chain {
    host: PluginHost,
    store: Store,
    metrics: Metrics,
    breakers: Arc<Breakers>,
    lane: Arc<Lane>,
    /// Tenants' limits and plugin records, re-read from Redis at most every
    /// `FRESH` (a new budget or plugin version applies within that time).
    limits: Arc<TtlMap<String, TenantLimits>>,
    plugins: Arc<TtlMap<(String, String), Option<Plugin>>>,
}

/// How long a tenant's limits and plugin records are reused without asking Redis.
const FRESH: Duration = Duration::from_secs(1);

/// The tenant's budget: the operator's overrides over the configured default.
pub fn budget(default: Budget, limits: &TenantLimits) -> Budget {
    Budget {
        cpu_ms: limits.plugin_cpu_ms.unwrap_or(default.cpu_ms),
        deadline_ms: limits.plugin_deadline_ms.unwrap_or(default.deadline_ms),
        memory_bytes: limits.plugin_memory_bytes.unwrap_or(default.memory_bytes),
    }
}

impl Chain {
    pub fn new(host: PluginHost, lane: Lane, store: Store, metrics: Metrics) -> Chain {
        Chain {
            host,
            store,
            metrics,
            breakers: Arc::default(),
            lane: Arc::new(lane),
            limits: Arc::new(TtlMap::new(FRESH)),
            plugins: Arc::new(TtlMap::new(FRESH)),
        }
    }

    pub fn host(&self) -> &PluginHost {
        &self.host
    }

    /// Runs `endpoint`'s chain on the event stored with `body`. An error is
    /// a Redis failure: the caller leaves its work pending and tries again.
    pub async fn run(
        &self,
        tenant: &str,
        endpoint: &Endpoint,
        event_id: &str,
        body: &str,
    ) -> anyhow::Result<Outcome> {
        if endpoint.plugins.is_empty() {
            return Ok(Outcome::Deliver {
                body: None,
                skipped: None,
            });
        }
        let Ok(parts) = serde_json::from_str::<BodyParts>(body) else {
            return Ok(Outcome::Failed("the stored event is unreadable".into()));
        };
        let limits = match self.limits.get(&tenant.to_string()) {
            Some(limits) => limits,
            None => {
                let limits = self.store.limits(tenant).await?;
                self.limits.put(tenant.to_string(), limits.clone());
                limits
            }
        };
        let budget = budget(self.host.default_budget(), &limits);
        let mut current = PluginEvent {
            id: event_id.to_string(),
            event_type: parts.event_type,
            schema_version: None,
            timestamp: parts.timestamp,
            data: parts.data.get().as_bytes().to_vec(),
            metadata: vec![("tenant-id".to_string(), tenant.to_string())],
        };
        let mut rewritten = false;
        let mut skipped = Vec::new();
        for link in &endpoint.plugins {
            let label = match link.version {
                Some(v) => format!("{} v{v}", link.name),
                None => link.name.clone(),
            };
            let key = (tenant.to_string(), link.name.clone());
            let plugin = match self.plugins.get(&key) {
                Some(plugin) => plugin,
                None => {
                    let plugin = self.store.plugin(tenant, &link.name).await?;
                    self.plugins.put(key, plugin.clone());
                    plugin
                }
            };
            let Some(version) = plugin.as_ref().and_then(|p| p.version(link.version)) else {
                let reason = format!("plugin {label} no longer exists");
                match self.failed(endpoint, reason, &mut skipped) {
                    Some(outcome) => return Ok(outcome),
                    None => continue,
                }
            };
            let input = PluginInput {
                event: current.clone(),
                target: PluginTarget {
                    endpoint_id: endpoint.id.clone(),
                    schema_version: None,
                    config: serde_json::to_vec(&link.config).expect("JSON always serialises"),
                },
            };
            let sha256 = version.sha256.clone();
            let store = self.store.clone();
            let tenant_id = tenant.to_string();
            let load = move || async move { store.plugin_bytes(&tenant_id, &sha256).await };
            // The breaker is asked once this tenant's slot is ours, so calls
            // queued behind a plugin that keeps exhausting its budget are refused.
            let _slot = self.lane.permit(tenant).await;
            if let Some(why) = self
                .breakers
                .refuse(tenant, &version.sha256, Instant::now())
            {
                self.metrics.plugin_failures.inc();
                let reason = format!("plugin {label} v{}: {why}", version.version);
                match self.failed(endpoint, reason, &mut skipped) {
                    Some(outcome) => return Ok(outcome),
                    None => continue,
                }
            }
            let (host, sha256) = (self.host.clone(), version.sha256.clone());
            let call = self
                .lane
                .run(async move { host.invoke(&sha256, load, &input, budget).await })
                .await;
            self.metrics.plugin_calls.inc();
            let exhausted = matches!(
                call.result,
                Err(PluginFailure::CpuBudget | PluginFailure::Deadline | PluginFailure::Memory)
            );
            self.breakers
                .record(tenant, &version.sha256, exhausted, Instant::now());
            match call.result {
                Ok(Verdict::Deliver(event)) => {
                    rewritten |= event != current;
                    current = event;
                }
                Ok(Verdict::Drop(reason)) => {
                    return Ok(Outcome::Dropped(format!(
                        "dropped by plugin {label}: {reason}"
                    )));
                }
                Err(failure) => {
                    self.metrics.plugin_failures.inc();
                    let reason = format!("plugin {label} v{}: {failure}", version.version);
                    if let Some(outcome) = self.failed(endpoint, reason, &mut skipped) {
                        return Ok(outcome);
                    }
                }
            }
        }
        let body = if rewritten {
            match std::str::from_utf8(&current.data) {
                Ok(data) => Some(delivery_body(&current.event_type, &current.timestamp, data)),
                Err(_) => {
                    return Ok(Outcome::Failed(
                        "the chain's output data is not UTF-8".into(),
                    ));
                }
            }
        } else {
            None
        };
        let skipped = (!skipped.is_empty()).then(|| format!("skipped: {}", skipped.join("; ")));
        Ok(Outcome::Deliver { body, skipped })
    }

    /// Applies `on_plugin_error`: an outcome ends the chain, `None` goes on.
    fn failed(
        &self,
        endpoint: &Endpoint,
        reason: String,
        skipped: &mut Vec<String>,
    ) -> Option<Outcome> {
        match endpoint.on_plugin_error {
            OnPluginError::DeadLetter => Some(Outcome::Failed(reason)),
            OnPluginError::Drop => Some(Outcome::Dropped(reason)),
            OnPluginError::Skip => {
                skipped.push(reason);
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_overrides_replace_only_what_they_set() {
        let default = Budget {
            cpu_ms: 10,
            deadline_ms: 100,
            memory_bytes: 1 << 24,
        };
        let limits = TenantLimits {
            plugin_cpu_ms: Some(3),
            ..TenantLimits::default()
        };
        assert_eq!(
            budget(default, &limits),
            Budget {
                cpu_ms: 3,
                ..default
            }
        );
        assert_eq!(budget(default, &TenantLimits::default()), default);
    }
}
