//! The queue: a small typed API over Redis Streams and sorted sets.
//!
//! Ingest entries and delivery tasks are stream entries with one field, `j`,
//! holding JSON ([`IngestEntry`], [`Task`]). Every state change that must be
//! atomic is one Lua script (see `scripts/`), confined to one partition's
//! hash tag. Key names live in [`crate::keys`].

mod ingest;
mod poll;
mod reader;
mod registry;

pub use ingest::{NOT_REPLICATED, NewEvent, Stored};
pub use poll::Polled;
pub use registry::Writer;

use crate::redis_conn::Conn;
use redis::{AsyncCommands, Script};

use crate::keys::{self, DELIVERY_GROUP, FANOUT_GROUP, Partitions};
use crate::model::clock::now_ms;
use crate::model::{DeadLetter, Decision, IngestEntry, Status, Task, entry_ms, entry_of_event};

pub(crate) use reader::parse_entries;
pub use reader::{Entry, GroupReader, READ_BLOCK, create_group};

#[derive(Clone)]
pub struct Queue {
    conn: Conn,
    partitions: Partitions,
    retention_ms: u64,
    idempotency_ms: u64,
    /// Replicas that must have an event before it is accepted, and how
    /// long to wait for them (`ingest.replica_acks`).
    replica_acks: (u8, u64),
    scripts: &'static Scripts,
}

struct Scripts {
    ingest: Script,
    fanout: Script,
    keep: Script,
    settle: Script,
    quarantine: Script,
    move_due: Script,
    release: Script,
}

fn scripts() -> &'static Scripts {
    static SCRIPTS: std::sync::OnceLock<Scripts> = std::sync::OnceLock::new();
    SCRIPTS.get_or_init(|| Scripts {
        ingest: Script::new(include_str!("scripts/ingest.lua")),
        fanout: Script::new(concat!(
            include_str!("scripts/keep_event.lua"),
            include_str!("scripts/fanout.lua")
        )),
        keep: Script::new(concat!(
            include_str!("scripts/keep_event.lua"),
            include_str!("scripts/keep.lua")
        )),
        settle: Script::new(include_str!("scripts/settle.lua")),
        quarantine: Script::new(include_str!("scripts/quarantine.lua")),
        move_due: Script::new(include_str!("scripts/move_due.lua")),
        release: Script::new(include_str!("scripts/release.lua")),
    })
}

/// A stored body opened ([`crate::model::sealed`]); one that does not open
/// (sealed under a key no longer configured, or altered) is logged and
/// taken as absent.
pub(crate) fn opened(stored: String) -> String {
    match crate::model::sealed::open(&stored) {
        Ok(std::borrow::Cow::Borrowed(_)) => stored,
        Ok(std::borrow::Cow::Owned(plain)) => plain,
        Err(e) => {
            tracing::error!(error = %e, "a stored event body does not open");
            String::new()
        }
    }
}

impl Queue {
    pub fn new(
        conn: Conn,
        partitions: Partitions,
        retention: std::time::Duration,
        idempotency: std::time::Duration,
    ) -> Queue {
        Queue {
            conn,
            partitions,
            retention_ms: retention.as_millis() as u64,
            idempotency_ms: idempotency.as_millis() as u64,
            replica_acks: (0, 0),
            scripts: scripts(),
        }
    }

    /// An event is accepted only once `acks` replicas of its master have
    /// it (`WAIT`, up to `timeout`), so a failover cannot lose it.
    pub fn with_replica_acks(mut self, acks: u8, timeout: std::time::Duration) -> Queue {
        self.replica_acks = (acks, timeout.as_millis() as u64);
        self
    }

    pub fn partitions(&self) -> Partitions {
        self.partitions
    }

    pub fn conn(&self) -> Conn {
        self.conn.clone()
    }

    fn min_id(&self) -> String {
        now_ms().saturating_sub(self.retention_ms).to_string()
    }

    /// The tenant's unfinished delivery tasks, summed over the partitions'
    /// backlog counters (one pipelined round trip on a single server).
    pub async fn backlog(&self, tenant: &str) -> redis::RedisResult<u64> {
        let gets = self
            .partitions
            .stored()
            .map(|p| redis::Cmd::get(keys::backlog(p, tenant)));
        let counts: Vec<Option<i64>> = self.conn.clone().each(gets.collect()).await?;
        Ok(counts.into_iter().flatten().map(|n| n.max(0) as u64).sum())
    }

    /// Replaces an ingest entry by what fan-out decided per endpoint (a
    /// delivery task, or only a status), atomically. Returns the tasks added.
    pub async fn fan_out(
        &self,
        p: u16,
        raw: &Entry,
        entry: &IngestEntry,
        decisions: &[Decision],
    ) -> redis::RedisResult<usize> {
        let mut call = self.scripts.fanout.prepare_invoke();
        call.key(keys::ingest_stream(p))
            .key(keys::delivery_stream(p))
            .key(keys::event(p, &entry.tenant, &entry.event))
            .key(keys::backlog(p, &entry.tenant))
            .arg(FANOUT_GROUP)
            .arg(&raw.id);
        self.keep_event_args(&mut call, raw, entry);
        for decision in decisions {
            let (endpoint, status, task) = match decision {
                Decision::Deliver { task, note } => {
                    let mut status = Status::pending(0);
                    status.last_error = note.clone();
                    (&task.endpoint, status, task.to_json())
                }
                Decision::Settled { endpoint, status } => (endpoint, status.clone(), String::new()),
            };
            call.arg(keys::status_field(endpoint))
                .arg(status.to_json())
                .arg(task);
        }
        call.invoke_async(&mut self.conn.clone()).await
    }

    /// Acknowledges ingest entries that no endpoint subscribes to, in one
    /// command: they have nothing to write (a crash before it redoes the
    /// same nothing).
    pub async fn ack_unsubscribed(&self, p: u16, entry_ids: &[String]) -> redis::RedisResult<()> {
        redis::cmd("XACK")
            .arg(keys::ingest_stream(p))
            .arg(FANOUT_GROUP)
            .arg(entry_ids)
            .query_async(&mut self.conn.clone())
            .await
    }

    /// Settles a delivery task (single or batch): acknowledges and removes
    /// its stream `entries` and records `status` for every member; with
    /// `Settle::Retry` the task (`next`, as it is to be tried again) goes to
    /// the retry set, with `Settle::Finish` it is done. One script
    /// (`settle.lua`), applied only if the task is still unsettled (`false`
    /// otherwise: nothing changed).
    pub async fn settle(
        &self,
        p: u16,
        entries: &[String],
        next: &Task,
        settle: Settle,
        status: &Status,
    ) -> redis::RedisResult<bool> {
        let mut call = self.scripts.settle.prepare_invoke();
        let set = match settle {
            Settle::Park { .. } => keys::parked(p, &next.tenant, &next.endpoint),
            _ => keys::retry_set(p),
        };
        call.key(keys::delivery_stream(p))
            .key(set)
            .key(keys::backlog(p, &next.tenant))
            .key(keys::parked_index(p));
        for member in next.members() {
            call.key(keys::event(p, &member.tenant, &member.event));
        }
        let (mode, due, parked) = match settle {
            Settle::Retry { due_ms } => ("retry", due_ms, String::new()),
            Settle::Park { order_ms } => (
                "park",
                order_ms,
                keys::endpoint_member(&next.tenant, &next.endpoint),
            ),
            Settle::Finish => ("finish", 0, String::new()),
        };
        call.arg(DELIVERY_GROUP)
            .arg(mode)
            .arg(due)
            .arg(next.to_json())
            .arg(keys::status_field(&next.endpoint))
            .arg(status.to_json())
            .arg(parked)
            .arg(entries);
        let done: i64 = call.invoke_async(&mut self.conn.clone()).await?;
        Ok(done == 1)
    }

    /// Moves an entry of partition `p`'s ingest or delivery stream that
    /// does not decode into the partition's quarantine stream, raw, with
    /// `error` (`quarantine.lua`): it names no tenant or event to
    /// dead-letter it for. `false` when it was no longer pending.
    pub async fn quarantine(
        &self,
        p: u16,
        stage: Stage,
        entry: &Entry,
        error: &str,
    ) -> redis::RedisResult<bool> {
        let (stream, group) = match stage {
            Stage::Fanout => (keys::ingest_stream(p), FANOUT_GROUP),
            Stage::Delivery => (keys::delivery_stream(p), DELIVERY_GROUP),
        };
        let moved: i64 = self
            .scripts
            .quarantine
            .key(stream)
            .key(keys::quarantine(p))
            .arg(group)
            .arg(&entry.id)
            .arg(&entry.json)
            .arg(entry.body.as_deref().unwrap_or(""))
            .arg(error)
            .arg(QUARANTINE_KEPT)
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(moved == 1)
    }

    /// The endpoints with tasks parked in partition `p`, as
    /// `(tenant, endpoint)`.
    pub async fn parked_endpoints(&self, p: u16) -> redis::RedisResult<Vec<(String, String)>> {
        let members: Vec<String> = self.conn.clone().smembers(keys::parked_index(p)).await?;
        Ok(members
            .iter()
            .map(String::as_str)
            .filter_map(keys::parse_endpoint_member)
            .collect())
    }

    /// Moves up to `limit` of the tasks parked for the endpoint in
    /// partition `p` back into its delivery stream, oldest first
    /// (`release.lua`); how many it moved.
    pub async fn release_parked(
        &self,
        p: u16,
        tenant: &str,
        endpoint: &str,
        limit: usize,
    ) -> redis::RedisResult<usize> {
        self.scripts
            .release
            .key(keys::parked(p, tenant, endpoint))
            .key(keys::parked_index(p))
            .key(keys::delivery_stream(p))
            .arg(limit)
            .arg(keys::endpoint_member(tenant, endpoint))
            .invoke_async(&mut self.conn.clone())
            .await
    }

    /// How many tasks are parked for the endpoint, over every partition.
    pub async fn parked_count(&self, tenant: &str, endpoint: &str) -> redis::RedisResult<u64> {
        let cards = self
            .partitions
            .stored()
            .map(|p| redis::Cmd::zcard(keys::parked(p, tenant, endpoint)));
        let counts: Vec<u64> = self.conn.clone().each(cards.collect()).await?;
        Ok(counts.iter().sum())
    }

    /// Moves due retries of partition `p` into its delivery stream.
    pub async fn move_due(&self, p: u16, limit: usize) -> redis::RedisResult<usize> {
        self.scripts
            .move_due
            .key(keys::retry_set(p))
            .key(keys::delivery_stream(p))
            .arg(now_ms())
            .arg(limit)
            .invoke_async(&mut self.conn.clone())
            .await
    }

    /// Queues a fresh task (redelivery, replay), counts it in its tenant's
    /// backlog and marks it pending on the event.
    pub async fn enqueue(&self, p: u16, task: &Task) -> redis::RedisResult<()> {
        redis::pipe()
            .atomic()
            .xadd(keys::delivery_stream(p), "*", &[("j", task.to_json())])
            .ignore()
            .incr(keys::backlog(p, &task.tenant), 1)
            .ignore()
            .hset(
                keys::event(p, &task.tenant, &task.event),
                keys::status_field(&task.endpoint),
                Status::pending(0).to_json(),
            )
            .ignore()
            .query_async(&mut self.conn.clone())
            .await
    }

    /// Appends a dead letter to its tenant's stream.
    pub async fn write_dead_letter(&self, letter: &DeadLetter) -> redis::RedisResult<()> {
        let json = serde_json::to_string(letter).expect("a dead letter always serialises");
        let _: String = self
            .conn
            .clone()
            .xadd_options(
                keys::dead_letters(&letter.task.tenant),
                "*",
                &[("j", json)],
                &redis::streams::StreamAddOptions::default().trim(
                    redis::streams::StreamTrimStrategy::minid(
                        redis::streams::StreamTrimmingMode::Approx,
                        self.min_id(),
                    ),
                ),
            )
            .await?;
        Ok(())
    }

    /// Drops stream entries older than the retention window.
    pub async fn trim(&self, p: u16) -> redis::RedisResult<()> {
        let min_id = self.min_id();
        let mut conn = self.conn.clone();
        for stream in [keys::ingest_stream(p), keys::delivery_stream(p)] {
            let _: i64 = redis::cmd("XTRIM")
                .arg(stream)
                .arg("MINID")
                .arg("~")
                .arg(&min_id)
                .query_async(&mut conn)
                .await?;
        }
        Ok(())
    }
}

/// Entries a partition's quarantine stream keeps at most (trimmed approximately).
const QUARANTINE_KEPT: usize = 10_000;

/// The stage whose stream an entry is in.
#[derive(Debug, Clone, Copy)]
pub enum Stage {
    Fanout,
    Delivery,
}

/// What settling a task does with it.
#[derive(Debug, Clone, Copy)]
pub enum Settle {
    /// To the retry set as one task, due at `due_ms`.
    Retry { due_ms: u64 },
    /// To its endpoint's park set, after the tasks parked before `order_ms`.
    Park { order_ms: u64 },
    /// Done with (delivered, dead-lettered or dropped).
    Finish,
}

impl Queue {
    /// Ingest entries of partition `p` from stream id `from` (inclusive, or
    /// exclusive with a `(` prefix), oldest first.
    pub async fn scan_ingest(
        &self,
        p: u16,
        from: &str,
        count: usize,
    ) -> redis::RedisResult<Vec<Entry>> {
        let value: redis::Value = redis::cmd("XRANGE")
            .arg(keys::ingest_stream(p))
            .arg(from)
            .arg("+")
            .arg("COUNT")
            .arg(count)
            .query_async(&mut self.conn.clone())
            .await?;
        Ok(parse_entries(value))
    }

    /// Makes sure the event of ingest entry `entry_id` has its hash (an
    /// event the gateway named gets one from its entry); false when the
    /// event is past its retention.
    pub async fn keep_event(
        &self,
        p: u16,
        raw: &Entry,
        entry: &IngestEntry,
    ) -> redis::RedisResult<bool> {
        let mut call = self.scripts.keep.prepare_invoke();
        call.key(keys::event(p, &entry.tenant, &entry.event));
        self.keep_event_args(&mut call, raw, entry);
        let kept: i64 = call.invoke_async(&mut self.conn.clone()).await?;
        Ok(kept == 1)
    }

    /// The arguments of `keep_event.lua`'s function, in its order: the
    /// tenant, event id, type, timestamp, when the event's hash expires (the
    /// entry's time plus the retention window), now, and the body from the
    /// entry when the gateway named the event ('' when `ingest.lua` made its
    /// hash, or the entry carries no body).
    fn keep_event_args(
        &self,
        call: &mut redis::ScriptInvocation<'_>,
        raw: &Entry,
        entry: &IngestEntry,
    ) {
        let named_here = entry_of_event(&entry.event).is_some();
        // As the entry holds it: sealed when a key is set.
        let body = raw.body.as_deref().filter(|_| named_here).unwrap_or("");
        call.arg(&entry.tenant)
            .arg(&entry.event)
            .arg(&entry.event_type)
            .arg(&entry.timestamp)
            .arg(entry_ms(&raw.id) + self.retention_ms)
            .arg(now_ms())
            .arg(body);
    }

    pub async fn event_exists(
        &self,
        p: u16,
        tenant: &str,
        event: &str,
    ) -> redis::RedisResult<bool> {
        self.conn
            .clone()
            .exists(keys::event(p, tenant, event))
            .await
    }
}

impl Queue {
    pub async fn ping(&self) -> redis::RedisResult<()> {
        redis::cmd("PING")
            .query_async::<()>(&mut self.conn.clone())
            .await
    }
}
