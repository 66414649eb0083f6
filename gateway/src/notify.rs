//! Operational events: what the gateway tells a tenant about its own
//! endpoints and deliveries (`endpoint.verified`, `endpoint.quarantined`,
//! `message.attempt.exhausted`, ...), stored as events of that tenant like
//! any other, so they are signed, retried and dead-lettered the same way.
//! Each is about one endpoint and goes to the tenant's operational
//! endpoints but that one (`Endpoint::takes_entry`). Storing one is never
//! allowed to fail what caused it: an error is logged.

use serde_json::{Value, json};

use crate::keys::Partitions;
use crate::model::clock::now_rfc3339;
use crate::queue::{NewEvent, Queue};
use crate::store::{Endpoint, delivery_body};

/// The operational event types.
pub const VERIFIED: &str = "endpoint.verified";
pub const VERIFICATION_FAILED: &str = "endpoint.verification_failed";
pub const QUARANTINED: &str = "endpoint.quarantined";
pub const RECOVERED: &str = "endpoint.recovered";
pub const DISABLED: &str = "endpoint.disabled";
pub const EXHAUSTED: &str = "message.attempt.exhausted";
pub const FAILING: &str = "message.attempt.failing";

#[derive(Clone)]
pub struct Notifier {
    queue: Queue,
    partitions: Partitions,
}

impl Notifier {
    pub fn new(queue: Queue) -> Notifier {
        let partitions = queue.partitions();
        Notifier { queue, partitions }
    }

    /// An `endpoint.*` event about `endpoint`, with `reason` when there is one.
    pub async fn endpoint(
        &self,
        tenant: &str,
        event_type: &str,
        endpoint: &Endpoint,
        reason: Option<&str>,
    ) {
        let mut data = json!({"endpoint_id": endpoint.id.as_str(), "url": endpoint.url});
        if let Some(reason) = reason {
            data["reason"] = Value::String(reason.to_string());
        }
        self.send(tenant, event_type, endpoint.id.as_str(), data)
            .await;
    }

    /// Stores the event `event_type` with `data`, about endpoint `about`.
    pub async fn send(&self, tenant: &str, event_type: &str, about: &str, data: Value) {
        let timestamp = now_rfc3339();
        let body = delivery_body(event_type, None, &timestamp, &data.to_string());
        let event = NewEvent {
            partition: self.partitions.spread(),
            elsewhere: &[],
            tenant,
            id: None,
            event_type,
            version: None,
            body: &body,
            timestamp: &timestamp,
            dedup_key: None,
            about: Some(about),
            consumers: &[],
            channels: &[],
        };
        if let Err(e) = self.queue.ingest(event).await {
            tracing::warn!(%tenant, %event_type, endpoint = %about, error = %e,
                "could not store an operational event");
        }
    }
}
