//! The hand-off to a poll channel: an endpoint in poll mode is never sent
//! to; each of its tasks is appended to its poll channel with the body and
//! the signature headers a push would carry, and is then delivered.

use super::{Inner, Outcome, request_headers};
use crate::model::Task;
use crate::store::Endpoint;

impl Inner {
    pub(super) async fn hand_to_poll(
        &self,
        task: &Task,
        endpoint: &Endpoint,
        body: &str,
    ) -> anyhow::Result<Outcome> {
        let headers = request_headers(endpoint, &task.msg_id, body.as_bytes())?;
        let signed: serde_json::Map<String, serde_json::Value> =
            ["webhook-id", "webhook-timestamp", "webhook-signature"]
                .iter()
                .filter_map(|name| {
                    let value = headers.get(*name)?.to_str().ok()?;
                    Some((name.to_string(), value.into()))
                })
                .collect();
        let headers = serde_json::Value::Object(signed).to_string();
        let event = (task.event.as_str(), task.msg_id.as_str());
        self.queue
            .poll_append(&task.tenant, &endpoint.id, event, body, &headers)
            .await?;
        self.metrics.deliveries_polled.inc();
        Ok(Outcome::Delivered {
            attempts: task.attempt + 1,
            code: None,
        })
    }
}
