//! The poll channel of an endpoint in poll mode: a stream per endpoint the
//! delivery stage appends each event to (body and signature headers, as a
//! push would carry them), read from a cursor, with the cursor its consumer
//! acknowledged kept beside it. Entries stay for the retention window,
//! acknowledged or not.

use redis::AsyncCommands;

use super::{Queue, opened};
use crate::keys;
use crate::model::sealed;

/// One entry of a poll channel, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Polled {
    /// Its stream id: the cursor just past it.
    pub cursor: String,
    pub event: String,
    pub msg_id: String,
    pub body: String,
    /// The `webhook-*` headers, as a JSON object.
    pub headers: String,
}

impl Queue {
    /// Appends one event to the endpoint's poll channel.
    pub async fn poll_append(
        &self,
        tenant: &str,
        endpoint: &str,
        (event, msg_id): (&str, &str),
        body: &str,
        headers: &str,
    ) -> redis::RedisResult<()> {
        redis::cmd("XADD")
            .arg(keys::poll_stream(tenant, endpoint))
            .arg("MINID")
            .arg("~")
            .arg(self.min_id())
            .arg("*")
            .arg("e")
            .arg(event)
            .arg("m")
            .arg(msg_id)
            .arg("b")
            .arg(&*sealed::seal(body))
            .arg("h")
            .arg(headers)
            .query_async(&mut self.conn.clone())
            .await
    }

    /// Up to `limit` entries after `cursor` (a stream id; `0` from the start), oldest first.
    pub async fn poll_read(
        &self,
        tenant: &str,
        endpoint: &str,
        cursor: &str,
        limit: usize,
    ) -> redis::RedisResult<Vec<Polled>> {
        let value: redis::Value = redis::cmd("XRANGE")
            .arg(keys::poll_stream(tenant, endpoint))
            .arg(format!("({cursor}"))
            .arg("+")
            .arg("COUNT")
            .arg(limit)
            .query_async(&mut self.conn.clone())
            .await?;
        Ok(parse_polled(value))
    }

    /// The cursor the endpoint's consumer acknowledged last, if any.
    pub async fn poll_acked(
        &self,
        tenant: &str,
        endpoint: &str,
    ) -> redis::RedisResult<Option<String>> {
        self.conn
            .clone()
            .get(keys::poll_cursor(tenant, endpoint))
            .await
    }

    /// Keeps `cursor` as the one the endpoint's consumer acknowledged.
    pub async fn poll_ack(
        &self,
        tenant: &str,
        endpoint: &str,
        cursor: &str,
    ) -> redis::RedisResult<()> {
        self.conn
            .clone()
            .set(keys::poll_cursor(tenant, endpoint), cursor)
            .await
    }
}

/// XRANGE's reply as entries, each field by its name.
fn parse_polled(value: redis::Value) -> Vec<Polled> {
    let redis::Value::Array(entries) = value else {
        return Vec::new();
    };
    entries
        .into_iter()
        .filter_map(|entry| {
            let (id, fields): (String, Vec<(String, String)>) =
                redis::from_redis_value(entry).ok()?;
            let field = |name: &str| {
                fields
                    .iter()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default()
            };
            Some(Polled {
                event: field("e"),
                msg_id: field("m"),
                body: opened(field("b")),
                headers: field("h"),
                cursor: id,
            })
        })
        .collect()
}
