//! The queue: a small typed API over Redis Streams and sorted sets.
//!
//! Ingest entries and delivery tasks are stream entries with one field, `j`,
//! holding JSON ([`IngestEntry`], [`Task`]). Every state change that must be
//! atomic is one Lua script (see `scripts/`), confined to one partition's
//! hash tag. Key names live in [`crate::keys`].

mod reader;

use redis::aio::ConnectionManager;
use redis::{AsyncCommands, Script};
use serde::{Deserialize, Serialize};

use crate::keys::{self, DELIVERY_GROUP, FANOUT_GROUP, Partitions};

pub(crate) use reader::parse_entries;
pub use reader::{Entry, GroupReader, READ_BLOCK, create_group};

/// What the fan-out stage reads for one accepted event (the entry's `j`
/// field; its `b` field holds the delivery body).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IngestEntry {
    #[serde(rename = "t")]
    pub tenant: String,
    /// Absent from the entry of an event the gateway named: its id is made
    /// from the entry's ([`entry_event_id`]), filled in by [`IngestEntry::read`].
    #[serde(rename = "e", default, skip_serializing_if = "String::is_empty")]
    pub event: String,
    #[serde(rename = "y")]
    pub event_type: String,
    /// The event's schema version, when its type is versioned.
    #[serde(rename = "v", default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
    /// The event's time (RFC 3339).
    #[serde(rename = "s", default)]
    pub timestamp: String,
}

impl IngestEntry {
    /// Reads an entry of partition `p`'s ingest stream.
    pub fn read(p: u16, entry: &Entry) -> serde_json::Result<IngestEntry> {
        let mut parsed: IngestEntry = serde_json::from_str(&entry.json)?;
        if parsed.event.is_empty() {
            parsed.event = entry_event_id(p, &entry.id);
        }
        Ok(parsed)
    }
}

/// The id of an event the gateway named: its partition and the id of its
/// ingest stream entry, `evt_p<partition>-<ms>-<seq>`. Such an event is
/// stored as that entry alone (one `XADD`); its hash is made by fan-out
/// when an endpoint subscribes to it.
pub fn entry_event_id(p: u16, entry_id: &str) -> String {
    format!("evt_p{p}-{entry_id}")
}

/// The partition and ingest entry id of an id made by [`entry_event_id`].
pub fn entry_of_event(id: &str) -> Option<(u16, &str)> {
    let (p, entry_id) = id.strip_prefix("evt_p")?.split_once('-')?;
    let (ms, seq) = entry_id.split_once('-')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    (digits(ms) && digits(seq)).then_some(())?;
    Some((p.parse().ok()?, entry_id))
}

/// The time an entry was added (ms since the epoch), from its id.
fn entry_ms(entry_id: &str) -> u64 {
    entry_id
        .split('-')
        .next()
        .and_then(|ms| ms.parse().ok())
        .unwrap_or_default()
}

/// One delivery of one event to one endpoint, as queued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Task {
    #[serde(rename = "t")]
    pub tenant: String,
    #[serde(rename = "e")]
    pub event: String,
    #[serde(rename = "n")]
    pub endpoint: String,
    /// The `webhook-id`: the same for every attempt of this event to this endpoint.
    #[serde(rename = "m")]
    pub msg_id: String,
    /// Attempts already made.
    #[serde(rename = "a")]
    pub attempt: u32,
    /// The body to send when a plugin rewrote the event for this endpoint;
    /// otherwise the stored event's body is sent.
    #[serde(rename = "b", default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// The endpoint rate slot (ms) this task reserved when it was throttled;
    /// it goes without taking another one when it comes back at that time.
    #[serde(rename = "r", default, skip_serializing_if = "Option::is_none")]
    pub reserved: Option<u64>,
    /// A batch task carries its member tasks (each one event of the same
    /// endpoint); its `msg_id` is then the batch id and `event` is empty.
    #[serde(rename = "g", default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<Task>,
}

impl Task {
    pub fn new(tenant: &str, event: &str, endpoint: &str) -> Task {
        let digest = keys::sha256_hex(format!("{tenant}\0{event}\0{endpoint}").as_bytes());
        Task {
            tenant: tenant.to_string(),
            event: event.to_string(),
            endpoint: endpoint.to_string(),
            msg_id: format!("msg_{}", &digest[..32]),
            attempt: 0,
            body: None,
            reserved: None,
            members: Vec::new(),
        }
    }

    /// A batch of `members` (tasks of one tenant and endpoint), with the
    /// stable batch id `batch_<hash of the member msg ids>`.
    pub fn batch(tenant: &str, endpoint: &str, members: Vec<Task>) -> Task {
        let ids: Vec<&str> = members.iter().map(|m| m.msg_id.as_str()).collect();
        let digest = keys::sha256_hex(ids.join("\0").as_bytes());
        Task {
            tenant: tenant.to_string(),
            event: String::new(),
            endpoint: endpoint.to_string(),
            msg_id: format!("batch_{}", &digest[..32]),
            attempt: 0,
            body: None,
            reserved: None,
            members,
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a task always serialises")
    }

    /// The deliveries this task carries: its members if it is a batch,
    /// else itself.
    pub fn members(&self) -> &[Task] {
        match self.members.is_empty() {
            true => std::slice::from_ref(self),
            false => &self.members,
        }
    }
}

/// What fan-out decided for one endpoint.
#[derive(Debug, Clone)]
pub enum Decision {
    /// Queue this task; `note` is recorded on its pending status.
    Deliver { task: Task, note: Option<String> },
    /// Queue nothing; record this status (dropped by a plugin, dead-lettered).
    Settled { endpoint: String, status: Status },
}

/// Outcome of storing an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stored {
    New(String),
    Duplicate(String),
}

/// The `j` field of an event's ingest stream entry; `id` is empty for an
/// event named from its entry.
fn ingest_entry(event: &NewEvent<'_>, id: &str) -> String {
    serde_json::to_string(&IngestEntry {
        tenant: event.tenant.to_string(),
        event: id.to_string(),
        event_type: event.event_type.to_string(),
        version: event.version,
        timestamp: event.timestamp.to_string(),
    })
    .expect("an ingest entry always serialises")
}

impl Stored {
    /// From `ingest.lua`'s `{created, id}`.
    fn from_reply((created, id): (i64, String)) -> Stored {
        if created == 1 {
            Stored::New(id)
        } else {
            Stored::Duplicate(id)
        }
    }
}

/// An event to store, already validated.
pub struct NewEvent<'a> {
    pub partition: u16,
    pub tenant: &'a str,
    /// None when the gateway names the event from its stream entry (only
    /// for an event without a dedup key; see [`Queue::ingest`]).
    pub id: Option<&'a str>,
    pub event_type: &'a str,
    pub version: Option<u32>,
    pub body: &'a str,
    pub timestamp: &'a str,
    /// `key:<Idempotency-Key>` or `id:<producer's id>`; none for an event
    /// whose id the gateway made (no idempotency record is kept).
    pub dedup_key: Option<&'a str>,
}

#[derive(Clone)]
pub struct Queue {
    conn: ConnectionManager,
    partitions: Partitions,
    retention_ms: u64,
    idempotency_ms: u64,
    scripts: &'static Scripts,
}

struct Scripts {
    ingest: Script,
    fanout: Script,
    keep: Script,
    settle: Script,
    move_due: Script,
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
        move_due: Script::new(include_str!("scripts/move_due.lua")),
    })
}

pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

impl Queue {
    pub fn new(
        conn: ConnectionManager,
        partitions: Partitions,
        retention: std::time::Duration,
        idempotency: std::time::Duration,
    ) -> Queue {
        Queue {
            conn,
            partitions,
            retention_ms: retention.as_millis() as u64,
            idempotency_ms: idempotency.as_millis() as u64,
            scripts: scripts(),
        }
    }

    pub fn partitions(&self) -> Partitions {
        self.partitions
    }

    pub fn conn(&self) -> ConnectionManager {
        self.conn.clone()
    }

    fn min_id(&self) -> String {
        now_ms().saturating_sub(self.retention_ms).to_string()
    }

    /// Stores an event and its idempotency record in one step.
    ///
    /// An event with neither a dedup key nor an id of its own has no record
    /// to check or write and nothing to be found by but the id it is given:
    /// it is stored by one `XADD` (its body in the entry) and named from the
    /// entry ([`entry_event_id`]). The others go through `ingest.lua`, which
    /// also writes the event's hash, found by the producer's id.
    pub async fn ingest(&self, event: NewEvent<'_>) -> redis::RedisResult<Stored> {
        let Some(id) = event.id else {
            let p = event.partition;
            let entry_id: String = redis::cmd("XADD")
                .arg(keys::ingest_stream(p))
                .arg("MINID")
                .arg("~")
                .arg(self.min_id())
                .arg("*")
                .arg("j")
                .arg(ingest_entry(&event, ""))
                .arg("b")
                .arg(event.body)
                .query_async(&mut self.conn.clone())
                .await?;
            return Ok(Stored::New(entry_event_id(p, &entry_id)));
        };
        let reply = self
            .ingest_call(&event, id)
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(Stored::from_reply(reply))
    }

    /// Stores many events in one pipelined round trip, each through the same
    /// script as [`Queue::ingest`] (so each is atomic with its idempotency
    /// record); answers in the order given.
    pub async fn ingest_many(&self, events: &[NewEvent<'_>]) -> redis::RedisResult<Vec<Stored>> {
        // The script needs each event's hash key up front: an event
        // without an id is named here rather than from its entry.
        let calls: Vec<_> = events
            .iter()
            .map(|e| match e.id {
                Some(id) => self.ingest_call(e, id),
                None => self.ingest_call(e, &crate::store::new_id("evt")),
            })
            .collect();
        let mut pipe = redis::pipe();
        pipe.load_script(&self.scripts.ingest).ignore();
        for call in &calls {
            pipe.invoke_script(call);
        }
        let replies: Vec<(i64, String)> = pipe.query_async(&mut self.conn.clone()).await?;
        Ok(replies.into_iter().map(Stored::from_reply).collect())
    }

    fn ingest_call(&self, event: &NewEvent<'_>, id: &str) -> redis::ScriptInvocation<'static> {
        let p = event.partition;
        let entry = ingest_entry(event, id);
        let mut call = self.scripts.ingest.prepare_invoke();
        call.key(keys::ingest_stream(p))
            .key(keys::event(p, event.tenant, id))
            .key(keys::idempotency(
                p,
                event.tenant,
                event.dedup_key.unwrap_or(""),
            ))
            .arg(event.tenant)
            .arg(id)
            .arg(event.event_type)
            .arg(event.body)
            .arg(event.timestamp)
            .arg(self.retention_ms)
            .arg(match event.dedup_key {
                Some(_) => self.idempotency_ms,
                None => 0,
            })
            .arg(entry)
            .arg(self.min_id());
        call
    }

    /// The tenant's unfinished delivery tasks, summed over the partitions'
    /// backlog counters in one pipelined round trip.
    pub async fn backlog(&self, tenant: &str) -> redis::RedisResult<u64> {
        let mut pipe = redis::pipe();
        for p in self.partitions.all() {
            pipe.get(keys::backlog(p, tenant));
        }
        let counts: Vec<Option<i64>> = pipe.query_async(&mut self.conn.clone()).await?;
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
        call.key(keys::delivery_stream(p))
            .key(keys::retry_set(p))
            .key(keys::backlog(p, &next.tenant));
        for member in next.members() {
            call.key(keys::event(p, &member.tenant, &member.event));
        }
        let (mode, due) = match settle {
            Settle::Retry { due_ms } => ("retry", due_ms),
            Settle::Finish => ("finish", 0),
        };
        call.arg(DELIVERY_GROUP)
            .arg(mode)
            .arg(due)
            .arg(next.to_json())
            .arg(keys::status_field(&next.endpoint))
            .arg(status.to_json())
            .arg(entries);
        let done: i64 = call.invoke_async(&mut self.conn.clone()).await?;
        Ok(done == 1)
    }

    /// Acknowledges and removes a delivery entry that does not decode (it
    /// names no tenant or event to record anything for).
    pub async fn discard(&self, p: u16, entry_id: &str) -> redis::RedisResult<()> {
        redis::pipe()
            .atomic()
            .xack(keys::delivery_stream(p), DELIVERY_GROUP, &[entry_id])
            .ignore()
            .xdel(keys::delivery_stream(p), &[entry_id])
            .ignore()
            .query_async(&mut self.conn.clone())
            .await
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

/// What settling a task does with it.
#[derive(Debug, Clone, Copy)]
pub enum Settle {
    /// To the retry set as one task, due at `due_ms`.
    Retry { due_ms: u64 },
    /// Done with (delivered, dead-lettered or dropped).
    Finish,
}

/// The status of one event for one endpoint, kept in the event hash.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct Status {
    pub status: StatusKind,
    pub attempts: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_status_code: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<String>,
    pub updated_at: String,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StatusKind {
    Pending,
    Retrying,
    Delivered,
    DeadLettered,
    Dropped,
}

impl Status {
    pub fn pending(attempts: u32) -> Status {
        Status::new(StatusKind::Pending, attempts)
    }

    pub fn new(status: StatusKind, attempts: u32) -> Status {
        Status {
            status,
            attempts,
            last_status_code: None,
            last_error: None,
            next_attempt_at: None,
            updated_at: crate::clock::now_rfc3339(),
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a status always serialises")
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeadStage {
    #[default]
    Delivery,
    Plugin,
}

/// A task that ran out of attempts (or hit a disabled endpoint, or failed
/// in its plugin chain), with why.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeadLetter {
    pub task: Task,
    pub partition: u16,
    /// Where it died: `delivery` (out of attempts, endpoint gone or disabled)
    /// or `plugin` (the endpoint's plugin chain failed; redelivery runs it again).
    #[serde(default)]
    pub stage: DeadStage,
    pub error: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_status_code: Option<u16>,
    pub dead_at: String,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_made_from_an_entry_gives_back_its_partition_and_entry() {
        let id = entry_event_id(3, "1764547200123-7");
        assert_eq!(id, "evt_p3-1764547200123-7");
        assert_eq!(entry_of_event(&id), Some((3, "1764547200123-7")));
        assert_eq!(entry_ms("1764547200123-7"), 1_764_547_200_123);
    }

    #[test]
    fn other_ids_are_not_taken_for_entries() {
        for id in [
            "evt_01jd8x2k3m4n5p6q7r8s9t0v1w",
            "evt_p3",
            "evt_p3-17",
            "evt_p3-17-",
            "evt_p3--7",
            "evt_px-17-7",
            "evt_p3-17-7-1",
            "e-42",
        ] {
            assert_eq!(entry_of_event(id), None, "{id}");
        }
    }

    #[test]
    fn an_entry_without_an_event_id_is_named_from_its_own() {
        let entry = Entry {
            id: "5-0".into(),
            json: r#"{"t":"ten_a","y":"a.b","s":"2026-01-01T00:00:00Z"}"#.into(),
            body: Some("{}".into()),
        };
        let read = IngestEntry::read(1, &entry).unwrap();
        assert_eq!(read.event, "evt_p1-5-0");
        let named = Entry {
            json: r#"{"t":"ten_a","e":"e-1","y":"a.b"}"#.into(),
            ..entry
        };
        assert_eq!(IngestEntry::read(1, &named).unwrap().event, "e-1");
    }
}
