//! The read side of events: a stored event with its status per endpoint,
//! the attempt log of an endpoint, and a tenant's dead letters.

use std::collections::HashMap;

use redis::AsyncCommands;
use serde::{Deserialize, Serialize};

use super::{Page, Store, decode};
use crate::keys;
use crate::model::{DeadLetter, IngestEntry, Status, entry_of_event};
use crate::queue::{Entry, parse_entries};

/// Attempts kept per endpoint (approximately; older ones are trimmed).
const ATTEMPTS_KEPT: usize = 10_000;

#[derive(Debug, Clone)]
pub struct StoredEvent {
    pub partition: u16,
    pub id: String,
    pub event_type: String,
    pub timestamp: String,
    /// The delivery body, `{"type", "timestamp", "data"}`.
    pub body: String,
    pub statuses: Vec<(String, Status)>,
}

/// One HTTP attempt of one event to one endpoint.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AttemptRecord {
    #[serde(default)]
    pub id: String,
    pub event_id: String,
    pub msg_id: String,
    pub attempt: u32,
    /// The batch this event was sent in, when its endpoint batches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_id: Option<String>,
    /// Where it was sent: the endpoint's URL or one of its failover URLs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    pub status_code: Option<u16>,
    pub latency_ms: u64,
    pub response: String,
    pub error: Option<String>,
    pub at: String,
}

impl Store {
    /// Finds an event by id. An id the gateway made from an ingest entry
    /// names its partition and entry: the event's hash there, or else (no
    /// endpoint took it yet, or none subscribes) the entry. Any other id is
    /// looked for first in the partition it hashes to (under this
    /// instance's partition count, then the other counts written with
    /// lately), then (events posted with an Idempotency-Key live where the
    /// key hashes) in every other partition that may hold events.
    pub async fn event(&self, tenant: &str, id: &str) -> redis::RedisResult<Option<StoredEvent>> {
        if let Some((p, entry_id)) =
            entry_of_event(id).filter(|(p, _)| *p < self.partitions.stored_count())
            && let Some(event) = self.event_of_entry(tenant, id, p, entry_id).await?
        {
            return Ok(Some(event));
        }
        let mut first = vec![self.partitions.of(tenant, id)];
        first.extend(self.partitions.others_of(tenant, id));
        let rest = self.partitions.stored().filter(|p| !first.contains(p));
        let order: Vec<u16> = first.iter().copied().chain(rest).collect();
        for p in order {
            if let Some(event) = self.event_hash(tenant, id, p).await? {
                return Ok(Some(event));
            }
        }
        Ok(None)
    }

    /// The event's hash in partition `p`, if it is there and the tenant's.
    async fn event_hash(
        &self,
        tenant: &str,
        id: &str,
        p: u16,
    ) -> redis::RedisResult<Option<StoredEvent>> {
        let key = keys::event(p, tenant, id);
        let fields: HashMap<String, String> = self.conn().hgetall(&key).await?;
        if fields.get("tenant").map(String::as_str) != Some(tenant) {
            return Ok(None);
        }
        stored_event(&key, p, id, fields).map(Some)
    }

    async fn event_of_entry(
        &self,
        tenant: &str,
        id: &str,
        p: u16,
        entry_id: &str,
    ) -> redis::RedisResult<Option<StoredEvent>> {
        if let Some(event) = self.event_hash(tenant, id, p).await? {
            return Ok(Some(event));
        }
        let found: redis::Value = redis::cmd("XRANGE")
            .arg(keys::ingest_stream(p))
            .arg(entry_id)
            .arg(entry_id)
            .query_async(&mut self.conn())
            .await?;
        let Some(entry) = parse_entries(found).pop() else {
            return Ok(None);
        };
        let parsed = IngestEntry::parse(p, &entry.id, &entry.json).map_err(|e| {
            tracing::error!(stream = %keys::ingest_stream(p), entry = %entry.id, error = %e, "an ingest entry does not decode");
            redis::RedisError::from((redis::ErrorKind::Parse, "an ingest entry does not decode", e.to_string()))
        })?;
        Ok(Some(parsed)
            .filter(|parsed| parsed.tenant == tenant && parsed.event == id)
            .map(|parsed| StoredEvent {
                partition: p,
                id: parsed.event.into(),
                event_type: parsed.event_type,
                timestamp: parsed.timestamp,
                body: crate::queue::opened(entry.body.unwrap_or_default()),
                statuses: Vec::new(),
            }))
    }

    /// The delivery body of an event, if it is still kept.
    pub async fn event_body(
        &self,
        p: u16,
        tenant: &str,
        id: &str,
    ) -> redis::RedisResult<Option<String>> {
        let body: Option<String> = self.conn().hget(keys::event(p, tenant, id), "body").await?;
        Ok(body.map(crate::queue::opened))
    }

    /// Appends attempt records to the endpoint's attempt log, in one round trip.
    pub async fn record_attempts(
        &self,
        tenant: &str,
        endpoint: &str,
        records: &[AttemptRecord],
    ) -> redis::RedisResult<()> {
        let key = keys::attempts(tenant, endpoint);
        let mut pipe = redis::pipe();
        for record in records {
            let json = serde_json::to_string(record).expect("an attempt always serialises");
            pipe.xadd_maxlen(
                &key,
                redis::streams::StreamMaxlen::Approx(ATTEMPTS_KEPT),
                "*",
                &[("j", json)],
            )
            .ignore();
        }
        pipe.query_async(&mut self.conn()).await
    }

    /// The endpoint's attempts since `since_ms`, newest first, at most
    /// `max`, each with when it was logged (ms); and whether `max` cut the
    /// window short.
    pub async fn recent_attempts(
        &self,
        tenant: &str,
        endpoint: &str,
        since_ms: u64,
        max: usize,
    ) -> redis::RedisResult<(Vec<(u64, AttemptRecord)>, bool)> {
        let key = keys::attempts(tenant, endpoint);
        let value: redis::Value = redis::cmd("XREVRANGE")
            .arg(&key)
            .arg("+")
            .arg(since_ms)
            .arg("COUNT")
            .arg(max + 1)
            .query_async(&mut self.conn())
            .await?;
        let mut entries = parse_entries(value);
        let cut = entries.len() > max;
        entries.truncate(max);
        let records = entries
            .into_iter()
            .filter_map(|entry| {
                let at = crate::model::entry_ms(&entry.id);
                let record = serde_json::from_str(&entry.json).ok()?;
                Some((at, record))
            })
            .collect();
        Ok((records, cut))
    }

    /// Newest first.
    pub async fn attempts(
        &self,
        tenant: &str,
        endpoint: &str,
        limit: usize,
        cursor: Option<&str>,
    ) -> redis::RedisResult<Page<AttemptRecord>> {
        let page = self
            .stream_page(&keys::attempts(tenant, endpoint), limit, cursor)
            .await?;
        let key = keys::attempts(tenant, endpoint);
        page_map(page, |entry| {
            let mut record: AttemptRecord = decode(&format!("{key} {}", entry.id), &entry.json)?;
            record.id = entry.id;
            Ok(record)
        })
    }

    /// Newest first.
    pub async fn dead_letters(
        &self,
        tenant: &str,
        limit: usize,
        cursor: Option<&str>,
    ) -> redis::RedisResult<Page<(String, DeadLetter)>> {
        let page = self
            .stream_page(&keys::dead_letters(tenant), limit, cursor)
            .await?;
        let key = keys::dead_letters(tenant);
        page_map(page, |entry| {
            let letter = decode(&format!("{key} {}", entry.id), &entry.json)?;
            Ok((entry.id, letter))
        })
    }

    pub async fn dead_letter(
        &self,
        tenant: &str,
        id: &str,
    ) -> redis::RedisResult<Option<DeadLetter>> {
        if !is_stream_id(id) {
            return Ok(None);
        }
        let value: redis::Value = redis::cmd("XRANGE")
            .arg(keys::dead_letters(tenant))
            .arg(id)
            .arg(id)
            .query_async(&mut self.conn())
            .await?;
        let key = keys::dead_letters(tenant);
        parse_entries(value)
            .into_iter()
            .next()
            .map(|e| decode(&format!("{key} {id}"), &e.json))
            .transpose()
    }

    pub async fn delete_dead_letter(&self, tenant: &str, id: &str) -> redis::RedisResult<()> {
        let _: i64 = self.conn().xdel(keys::dead_letters(tenant), &[id]).await?;
        Ok(())
    }

    async fn stream_page(
        &self,
        key: &str,
        limit: usize,
        cursor: Option<&str>,
    ) -> redis::RedisResult<Page<Entry>> {
        let end = match cursor {
            Some(c) if is_stream_id(c) => format!("({c}"),
            _ => "+".to_string(),
        };
        let value: redis::Value = redis::cmd("XREVRANGE")
            .arg(key)
            .arg(end)
            .arg("-")
            .arg("COUNT")
            .arg(limit + 1)
            .query_async(&mut self.conn())
            .await?;
        let mut data = parse_entries(value);
        let next_cursor = if data.len() > limit {
            data.truncate(limit);
            data.last().map(|e| e.id.clone())
        } else {
            None
        };
        Ok(Page { data, next_cursor })
    }
}

/// The body every endpoint receives: `{"type", "timestamp", "data"}`, with
/// the producer's `data` bytes kept as sent.
pub fn delivery_body(
    event_type: &str,
    version: Option<u32>,
    timestamp: &str,
    data: &str,
) -> String {
    let quote = |s: &str| serde_json::to_string(s).expect("a string always serialises");
    let version = version.map_or_else(String::new, |v| format!("\"version\":{v},"));
    format!(
        "{{\"type\":{},{version}\"timestamp\":{},\"data\":{}}}",
        quote(event_type),
        quote(timestamp),
        data
    )
}

fn page_map<T>(
    page: Page<Entry>,
    f: impl FnMut(Entry) -> redis::RedisResult<T>,
) -> redis::RedisResult<Page<T>> {
    Ok(Page {
        data: page
            .data
            .into_iter()
            .map(f)
            .collect::<redis::RedisResult<_>>()?,
        next_cursor: page.next_cursor,
    })
}

/// `<ms>-<seq>`, the only form of id the stream reads accept from a client.
pub fn is_stream_id(id: &str) -> bool {
    let mut parts = id.splitn(2, '-');
    let ms = parts.next().unwrap_or_default();
    let seq = parts.next().unwrap_or_default();
    !ms.is_empty()
        && !seq.is_empty()
        && ms.bytes().chain(seq.bytes()).all(|b| b.is_ascii_digit())
        && ms.len() <= 20
        && seq.len() <= 20
}

/// An event from its hash (`key`, for the log if a status is corrupt).
fn stored_event(
    key: &str,
    partition: u16,
    id: &str,
    mut fields: HashMap<String, String>,
) -> redis::RedisResult<StoredEvent> {
    let mut statuses: Vec<(String, Status)> = fields
        .iter()
        .filter_map(|(field, json)| {
            let endpoint = field.strip_prefix("s:")?;
            Some(decode(&format!("{key} {field}"), json).map(|s| (endpoint.to_string(), s)))
        })
        .collect::<redis::RedisResult<_>>()?;
    statuses.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(StoredEvent {
        partition,
        id: id.to_string(),
        event_type: fields.remove("type").unwrap_or_default(),
        timestamp: fields.remove("timestamp").unwrap_or_default(),
        body: crate::queue::opened(fields.remove("body").unwrap_or_default()),
        statuses,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivery_body_keeps_data_bytes_and_escapes_strings() {
        let body = delivery_body("a\"b", None, "2024-01-01T00:00:00Z", "{\"n\": 1.50}");
        assert_eq!(
            body,
            r#"{"type":"a\"b","timestamp":"2024-01-01T00:00:00Z","data":{"n": 1.50}}"#
        );
        let parsed: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(parsed["type"], "a\"b");
        let versioned = delivery_body("a", Some(2), "t", "{}");
        assert_eq!(
            versioned,
            r#"{"type":"a","version":2,"timestamp":"t","data":{}}"#
        );
    }

    #[test]
    fn stream_ids_are_checked() {
        assert!(is_stream_id("1700000000000-0"));
        assert!(!is_stream_id("1700000000000"));
        assert!(!is_stream_id("+"));
        assert!(!is_stream_id("-"));
        assert!(!is_stream_id("1-x"));
    }
}
