//! What one attempt sends and what it leaves: the signed request headers
//! (Standard Webhooks) and the attempt record.

use std::time::{SystemTime, UNIX_EPOCH};

use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};

use super::client::Attempt;
use super::signing;
use crate::model::Task;
use crate::model::clock::{self, now_ms};
use crate::store::{AttemptRecord, Endpoint};

/// The request headers: the endpoint's own, then the Standard Webhooks ones
/// signed over `body` with every live key (HMAC or ed25519, as the endpoint
/// signs).
pub fn request_headers(
    endpoint: &Endpoint,
    msg_id: &str,
    body: &[u8],
) -> anyhow::Result<HeaderMap> {
    let timestamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default();
    let signature =
        signing::signature_header(&endpoint.live_keys(now_ms()), msg_id, timestamp, body);
    let mut headers = HeaderMap::new();
    for (name, value) in &endpoint.headers {
        if let (Ok(n), Ok(v)) = (
            HeaderName::try_from(name.as_str()),
            HeaderValue::try_from(value.as_str()),
        ) {
            headers.insert(n, v);
        }
    }
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert("webhook-id", HeaderValue::try_from(msg_id)?);
    headers.insert("webhook-timestamp", HeaderValue::from(timestamp));
    headers.insert("webhook-signature", HeaderValue::try_from(signature)?);
    Ok(headers)
}

pub(super) fn attempt_record(task: &Task, made: u32, attempt: &Attempt) -> AttemptRecord {
    AttemptRecord {
        id: String::new(),
        event_id: task.event.to_string(),
        msg_id: task.msg_id.clone(),
        attempt: made,
        batch_id: None,
        url: None,
        status_code: attempt.status,
        latency_ms: attempt.latency.as_millis() as u64,
        response: attempt.response.clone(),
        error: attempt.error.clone(),
        at: clock::now_rfc3339(),
    }
}
