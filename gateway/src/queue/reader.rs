//! A consumer-group reader for one stream, on a connection of its own: a
//! blocking `XREADGROUP` stalls every other command sharing a multiplexed
//! connection, and its response timeout must outlast the `BLOCK`.
//!
//! The reader recreates its stream and group when Redis lost them (a restart
//! without persistence answers `NOGROUP`), logging the loss loudly, and
//! reconnects with backoff when Redis is unreachable.

use std::time::Duration;

use redis::{RedisError, Value};

use crate::redis_conn::{Conn, RedisClient};

use crate::telemetry::Metrics;

/// How long one `XREADGROUP` blocks waiting for entries.
pub const READ_BLOCK: Duration = Duration::from_millis(1000);

/// One stream entry: its id, its `j` field and, for an ingest entry that
/// carries it, its `b` field (the event's delivery body).
#[derive(Debug, Clone)]
pub struct Entry {
    pub id: String,
    pub json: String,
    /// The body as stored: sealed when an encryption key is set (open it
    /// with [`super::opened`] where it is used).
    pub body: Option<String>,
}

pub struct GroupReader {
    client: RedisClient,
    conn: Option<Conn>,
    stream: String,
    group: &'static str,
    consumer: String,
    metrics: Metrics,
    /// Whether this reader ever had a connection: a group missing on a
    /// reconnection means Redis lost it.
    connected_before: bool,
}

impl GroupReader {
    pub fn new(
        client: RedisClient,
        stream: String,
        group: &'static str,
        consumer: String,
        metrics: Metrics,
    ) -> Self {
        GroupReader {
            client,
            conn: None,
            stream,
            group,
            consumer,
            metrics,
            connected_before: false,
        }
    }

    async fn conn(&mut self) -> redis::RedisResult<Conn> {
        if let Some(conn) = &self.conn {
            return Ok(conn.clone());
        }
        let mut conn = self
            .client
            .dedicated(READ_BLOCK + Duration::from_secs(5))
            .await?;
        // Redis dropping the connection (a restart) shows as an I/O error, so a
        // lost group is first seen here rather than as NOGROUP.
        if ensure_group(&mut conn, &self.stream, self.group).await? && self.connected_before {
            self.report_loss();
        }
        self.connected_before = true;
        self.conn = Some(conn.clone());
        Ok(conn)
    }

    fn report_loss(&self) {
        self.metrics.redis_data_loss.inc();
        tracing::error!(
            stream = %self.stream,
            group = self.group,
            "DATA LOSS: Redis no longer has this stream's consumer group (it restarted \
             without persistence or was flushed). Events accepted before may be lost. \
             Recreating the stream and group."
        );
    }

    /// New entries for this consumer, waiting up to one `BLOCK`.
    pub async fn read(&mut self, count: usize) -> redis::RedisResult<Vec<Entry>> {
        let mut cmd = redis::cmd("XREADGROUP");
        cmd.arg("GROUP")
            .arg(self.group)
            .arg(&self.consumer)
            .arg("COUNT")
            .arg(count)
            .arg("BLOCK")
            .arg(READ_BLOCK.as_millis() as u64)
            .arg("STREAMS")
            .arg(&self.stream)
            .arg(">");
        let reply = self.run(cmd).await?;
        Ok(match reply {
            Value::Array(streams) => streams
                .into_iter()
                .filter_map(|s| match s {
                    Value::Array(mut pair) if pair.len() == 2 => Some(pair.remove(1)),
                    _ => None,
                })
                .flat_map(parse_entries)
                .collect(),
            Value::Map(streams) => streams
                .into_iter()
                .flat_map(|(_, e)| parse_entries(e))
                .collect(),
            _ => Vec::new(),
        })
    }

    /// Takes over entries other consumers left pending longer than `min_idle`.
    pub async fn reclaim(
        &mut self,
        min_idle: Duration,
        count: usize,
    ) -> redis::RedisResult<Vec<Entry>> {
        let mut cmd = redis::cmd("XAUTOCLAIM");
        cmd.arg(&self.stream)
            .arg(self.group)
            .arg(&self.consumer)
            .arg(min_idle.as_millis() as u64)
            .arg("0-0")
            .arg("COUNT")
            .arg(count);
        let claimed = match self.run(cmd).await? {
            Value::Array(mut parts) if parts.len() >= 2 => parse_entries(parts.remove(1)),
            _ => Vec::new(),
        };
        self.metrics.tasks_reclaimed.add(claimed.len() as u64);
        Ok(claimed)
    }

    async fn run(&mut self, cmd: redis::Cmd) -> redis::RedisResult<Value> {
        let mut conn = self.conn().await?;
        match cmd.query_async::<Value>(&mut conn).await {
            Err(e) if is_nogroup(&e) => {
                self.report_loss();
                create_group(&mut conn, &self.stream, self.group).await?;
                cmd.query_async(&mut conn).await
            }
            Err(e) => {
                if e.is_io_error()
                    || e.is_connection_dropped()
                    || e.is_timeout()
                    || e.is_unrecoverable_error()
                {
                    self.conn = None;
                }
                Err(e)
            }
            ok => ok,
        }
    }
}

fn is_nogroup(e: &RedisError) -> bool {
    e.code() == Some("NOGROUP")
}

/// Creates the group at the start of the stream (so entries added before it
/// existed are read too), creating the stream if needed. An existing group is fine.
pub async fn create_group(conn: &mut Conn, stream: &str, group: &str) -> redis::RedisResult<()> {
    ensure_group(conn, stream, group).await.map(drop)
}

/// [`create_group`], telling whether the group had to be created.
async fn ensure_group(conn: &mut Conn, stream: &str, group: &str) -> redis::RedisResult<bool> {
    let result: redis::RedisResult<()> = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(stream)
        .arg(group)
        .arg("0")
        .arg("MKSTREAM")
        .query_async(conn)
        .await;
    match result {
        Ok(()) => Ok(true),
        Err(e) if e.code() == Some("BUSYGROUP") => Ok(false),
        Err(e) => Err(e),
    }
}

/// Parses `[[id, [field, value, ...]], ...]`; entries deleted while pending
/// (`[id, nil]`) are skipped.
pub(crate) fn parse_entries(value: Value) -> Vec<Entry> {
    let Value::Array(items) = value else {
        return Vec::new();
    };
    items
        .into_iter()
        .filter_map(|item| {
            let Value::Array(mut pair) = item else {
                return None;
            };
            if pair.len() != 2 {
                return None;
            }
            let fields = pair.pop()?;
            let id = text(pair.pop()?)?;
            let Value::Array(fields) = fields else {
                return None;
            };
            let (mut json, mut body) = (None, None);
            let mut fields = fields.into_iter();
            while let (Some(name), Some(value)) = (fields.next(), fields.next()) {
                match text(name).as_deref() {
                    Some("j") => json = text(value),
                    Some("b") => body = text(value),
                    _ => {}
                }
            }
            Some(Entry {
                id,
                json: json?,
                body,
            })
        })
        .collect()
}

fn text(value: Value) -> Option<String> {
    match value {
        Value::BulkString(bytes) => String::from_utf8(bytes).ok(),
        Value::SimpleString(s) => Some(s),
        _ => None,
    }
}
