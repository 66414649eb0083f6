//! The partition registry: which partition counts instances write new
//! events with (`gw:{partitions}:writers`), and whether a partition still
//! holds work (`drained.lua`). Together they let `partitions` change on a
//! running deployment: see `crate::partition_keeper`.

use redis::Script;

use super::Queue;
use crate::keys::{self, DELIVERY_GROUP, FANOUT_GROUP};
use crate::model::clock::now_ms;

fn drained_script() -> &'static Script {
    static SCRIPT: std::sync::OnceLock<Script> = std::sync::OnceLock::new();
    SCRIPT.get_or_init(|| Script::new(include_str!("scripts/drained.lua")))
}

/// A partition count some instance writes (or wrote) with, and when one
/// last said so (ms since the epoch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Writer {
    pub partitions: u16,
    pub seen_ms: u64,
}

impl Queue {
    /// How long an idempotency record is kept (`ingest.idempotency_window`).
    pub fn idempotency_ms(&self) -> u64 {
        self.idempotency_ms
    }

    /// Records, now, that this instance writes into its partitions.
    pub async fn announce(&self) -> redis::RedisResult<()> {
        let count = self.partitions.count();
        redis::cmd("ZADD")
            .arg(keys::partition_writers())
            .arg(now_ms())
            .arg(count)
            .query_async(&mut self.conn.clone())
            .await
    }

    /// Every partition count instances have written with, by count.
    pub async fn writers(&self) -> redis::RedisResult<Vec<Writer>> {
        let pairs: Vec<(String, f64)> = redis::cmd("ZRANGE")
            .arg(keys::partition_writers())
            .arg(0)
            .arg(-1)
            .arg("WITHSCORES")
            .query_async(&mut self.conn.clone())
            .await?;
        let mut writers: Vec<Writer> = pairs
            .into_iter()
            .filter_map(|(count, at)| {
                Some(Writer {
                    partitions: count.parse().ok()?,
                    seen_ms: at as u64,
                })
            })
            .collect();
        writers.sort_by_key(|w| w.partitions);
        Ok(writers)
    }

    /// Whether partition `p` holds no work: its streams' entries all read
    /// and acknowledged, no retry waiting and no task parked.
    pub async fn drained(&self, p: u16) -> redis::RedisResult<bool> {
        let done: i64 = drained_script()
            .key(keys::ingest_stream(p))
            .key(keys::delivery_stream(p))
            .key(keys::retry_set(p))
            .key(keys::parked_index(p))
            .arg(FANOUT_GROUP)
            .arg(DELIVERY_GROUP)
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(done == 1)
    }
}
