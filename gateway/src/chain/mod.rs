//! Runs an endpoint's plugin chain on one event: first the tenant's version
//! transforms, when the endpoint subscribes at another schema version than
//! the event's (the shortest chain of them, each output validated against
//! its version's schema), then the endpoint's own plugins. Each plugin gets
//! the event as the previous one left it; a drop ends the chain; a failure
//! (of a plugin, or of a transform's output against its schema) follows the
//! endpoint's `on_plugin_error` (`skip` delivers the event at its own
//! version). Used by fan-out, by the redelivery of plugin dead letters, and
//! by nothing else.

mod call;
pub mod settle;
mod upgrade;

pub use call::invoke;

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::admission::TenantLimitsCache;
use crate::admission::breaker::Breakers;
use crate::contracts::Contracts;

use crate::admission::lane::Lane;
use crate::cache::Cache;
use crate::plugins::{Budget, PluginEvent, PluginHost, PluginTarget, Verdict};
use crate::store::{Endpoint, OnPluginError, Plugin, Store, TenantLimits, delivery_body};
use crate::telemetry::Metrics;

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

/// What one step of a chain (a version transform or a plugin call) came
/// to: its output, or its failure, said for the event's status (the
/// endpoint's `on_plugin_error` decides what follows). A Redis error is no
/// step's failure: it is the `Err` around this, and the event is tried again.
enum Step<T> {
    Done(T),
    Failed(String),
}

/// The parts of a stored delivery body a plugin sees.
#[derive(Deserialize)]
struct BodyParts<'a> {
    #[serde(rename = "type")]
    event_type: String,
    version: Option<u32>,
    timestamp: String,
    #[serde(borrow)]
    data: &'a RawValue,
}

#[derive(Clone)]
pub struct Chain {
    host: PluginHost,
    store: Store,
    contracts: Contracts,
    metrics: Metrics,
    breakers: Arc<Breakers>,
    lane: Arc<Lane>,
    /// Tenants' limits and plugin records, re-read from Redis at most every
    /// `FRESH` (a new budget or plugin version applies within that time).
    limits: TenantLimitsCache,
    plugins: Arc<Cache<(String, String), Option<Plugin>>>,
}

/// Who a plugin call is for.
struct Call<'a> {
    tenant: &'a str,
    endpoint: &'a Endpoint,
    budget: Budget,
}

/// The versions to transform between, when the endpoint subscribes at
/// another version than the event's.
fn transform(endpoint: &Endpoint, event_type: &str, version: Option<u32>) -> Option<(u32, u32)> {
    match (version, endpoint.wanted_version(event_type)) {
        (Some(from), Some(to)) if from != to => Some((from, to)),
        _ => None,
    }
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
    pub fn new(
        host: PluginHost,
        lane: Lane,
        store: Store,
        limits: TenantLimitsCache,
        contracts: Contracts,
        metrics: Metrics,
    ) -> Chain {
        Chain {
            host,
            store,
            contracts,
            metrics,
            breakers: Arc::default(),
            lane: Arc::new(lane),
            limits,
            plugins: Arc::new(Cache::new(FRESH)),
        }
    }

    pub fn host(&self) -> &PluginHost {
        &self.host
    }

    /// Compiles and settles the plugin versions a stopped gateway left
    /// `compiling` ([`settle::unsettled`]); a Redis error is logged.
    pub async fn settle_unsettled(&self) {
        match settle::unsettled(&self.host, &self.store).await {
            Ok(0) => {}
            Ok(settled) => tracing::info!(settled, "plugin versions left compiling are settled"),
            Err(e) => {
                tracing::warn!(error = %e, "cannot look for plugin versions left compiling")
            }
        }
    }

    /// Whether `endpoint` needs the event's body: it runs plugins, or it
    /// wants the event at another schema version than the one it has.
    pub fn needs_event(endpoint: &Endpoint, event_type: &str, version: Option<u32>) -> bool {
        !endpoint.plugins.is_empty() || transform(endpoint, event_type, version).is_some()
    }

    /// Runs `endpoint`'s chain on the event stored with `body`: first the
    /// version transforms to the version the endpoint subscribes at, then
    /// its plugins. An error is a Redis failure: the caller leaves its work
    /// pending and tries again.
    pub async fn run(
        &self,
        tenant: &str,
        endpoint: &Endpoint,
        event_id: &str,
        body: &str,
    ) -> anyhow::Result<Outcome> {
        let Ok(parts) = serde_json::from_str::<BodyParts>(body) else {
            return Ok(Outcome::Failed("the stored event is unreadable".into()));
        };
        let versions = transform(endpoint, &parts.event_type, parts.version);
        if endpoint.plugins.is_empty() && versions.is_none() {
            return Ok(Outcome::Deliver {
                body: None,
                skipped: None,
            });
        }
        let limits = self.limits.of(tenant).await?;
        let call = Call {
            tenant,
            endpoint,
            budget: budget(self.host.default_budget(), &limits),
        };
        let mut run = Run {
            current: PluginEvent {
                id: event_id.to_string(),
                event_type: parts.event_type,
                schema_version: parts.version,
                timestamp: parts.timestamp,
                data: parts.data.get().as_bytes().to_vec(),
                metadata: vec![("tenant-id".to_string(), tenant.to_string())],
            },
            rewritten: false,
            skipped: Vec::new(),
        };
        if let Some((from, to)) = versions {
            match self.upgrade(&call, &run.current, from, to).await? {
                Step::Done(event) => {
                    run.current = event;
                    run.rewritten = true;
                }
                Step::Failed(reason) => {
                    if let Some(outcome) = run.failed(endpoint, reason) {
                        return Ok(outcome);
                    }
                }
            }
        }
        if let Some(outcome) = self.plugins(&call, &mut run).await? {
            return Ok(outcome);
        }
        Ok(run.finish())
    }

    /// Runs the endpoint's plugins in turn on the event as the chain left
    /// it; `Some` when one of them ends the chain.
    async fn plugins(&self, call: &Call<'_>, run: &mut Run) -> anyhow::Result<Option<Outcome>> {
        let wanted = call.endpoint.wanted_version(&run.current.event_type);
        for link in &call.endpoint.plugins {
            let label = match link.version {
                Some(v) => format!("{} v{v}", link.name),
                None => link.name.clone(),
            };
            let target = PluginTarget {
                endpoint_id: call.endpoint.id.to_string(),
                schema_version: wanted,
                config: serde_json::to_vec(&link.config).expect("JSON always serialises"),
            };
            match self
                .call(call, &link.name, link.version, &label, &run.current, target)
                .await?
            {
                Step::Done(Verdict::Deliver(event)) => {
                    run.rewritten |= event != run.current;
                    run.current = event;
                }
                Step::Done(Verdict::Drop(reason)) => {
                    return Ok(Some(Outcome::Dropped(format!(
                        "dropped by plugin {label}: {reason}"
                    ))));
                }
                Step::Failed(reason) => {
                    if let Some(outcome) = run.failed(call.endpoint, reason) {
                        return Ok(Some(outcome));
                    }
                }
            }
        }
        Ok(None)
    }
}

/// An event on its way through a chain.
struct Run {
    current: PluginEvent,
    /// Whether any step changed it.
    rewritten: bool,
    /// The failures skipped under `on_plugin_error: skip`.
    skipped: Vec<String>,
}

impl Run {
    /// Applies `on_plugin_error` to a failed step: an outcome ends the
    /// chain, `None` goes on.
    fn failed(&mut self, endpoint: &Endpoint, reason: String) -> Option<Outcome> {
        match endpoint.on_plugin_error {
            OnPluginError::DeadLetter => Some(Outcome::Failed(reason)),
            OnPluginError::Drop => Some(Outcome::Dropped(reason)),
            OnPluginError::Skip => {
                self.skipped.push(reason);
                None
            }
        }
    }

    /// The outcome of a chain that ran to its end: deliver, with the new
    /// body when a step changed the event.
    fn finish(self) -> Outcome {
        let skipped =
            (!self.skipped.is_empty()).then(|| format!("skipped: {}", self.skipped.join("; ")));
        if !self.rewritten {
            return Outcome::Deliver {
                body: None,
                skipped,
            };
        }
        let current = self.current;
        match std::str::from_utf8(&current.data) {
            Ok(data) => Outcome::Deliver {
                body: Some(delivery_body(
                    &current.event_type,
                    current.schema_version,
                    &current.timestamp,
                    data,
                )),
                skipped,
            },
            Err(_) => Outcome::Failed("the chain's output data is not UTF-8".into()),
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
