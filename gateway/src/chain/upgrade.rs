//! The version step of a chain: an event rewritten from its schema version
//! to the one its endpoint subscribes at, over the shortest path of the
//! tenant's version transforms, each output checked against its schema.

use super::{Call, Chain, Step};
use crate::model::FieldError;
use crate::plugins::{PluginEvent, PluginTarget, Verdict};

impl Chain {
    /// Rewrites `event` from version `from` to `to` over the shortest chain
    /// of the tenant's version transforms, checking each step's output
    /// against its version's schema. `Err` says why it could not.
    pub(super) async fn upgrade(
        &self,
        call: &Call<'_>,
        event: &PluginEvent,
        from: u32,
        to: u32,
    ) -> anyhow::Result<Step<PluginEvent>> {
        let contracts = self.contracts.get(call.tenant).await?;
        let name = &event.event_type;
        let Some(contract) = contracts.event_type(name) else {
            return Ok(Step::Failed(format!("event type {name} is not registered")));
        };
        let Some(path) = contract.path(from, to) else {
            return Ok(Step::Failed(format!(
                "no version transforms lead from {name} v{from} to v{to}"
            )));
        };
        let mut current = event.clone();
        for hop in path {
            let label = format!(
                "transform {name} v{}→v{} (plugin {})",
                hop.from, hop.to, hop.plugin
            );
            let Some(target_schema) = contract.version(hop.to) else {
                return Ok(Step::Failed(format!(
                    "{label}: {name} has no version {}",
                    hop.to
                )));
            };
            let target = PluginTarget {
                endpoint_id: call.endpoint.id.to_string(),
                schema_version: Some(hop.to),
                config: serde_json::to_vec(&hop.config).expect("JSON always serialises"),
            };
            let mut next = match self
                .call(
                    call,
                    &hop.plugin,
                    hop.plugin_version,
                    &label,
                    &current,
                    target,
                )
                .await?
            {
                Step::Done(Verdict::Deliver(next)) => next,
                Step::Done(Verdict::Drop(reason)) => {
                    return Ok(Step::Failed(format!("{label} dropped the event: {reason}")));
                }
                Step::Failed(reason) => return Ok(Step::Failed(reason)),
            };
            next.schema_version = Some(hop.to);
            let errors = match serde_json::from_slice::<serde_json::Value>(&next.data) {
                Ok(data) => target_schema.violations(&data, "/data"),
                Err(e) => vec![FieldError::new("/data", format!("is not JSON: {e}"))],
            };
            if !errors.is_empty() {
                let list: Vec<String> = errors
                    .iter()
                    .map(|e| format!("{}: {}", e.pointer, e.message))
                    .collect();
                return Ok(Step::Failed(format!(
                    "{label}: the output does not match {name} v{}: {}",
                    hop.to,
                    list.join("; ")
                )));
            }
            current = next;
        }
        Ok(Step::Done(current))
    }
}
