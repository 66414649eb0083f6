//! Storing accepted events: one `XADD` for an event the gateway names, or
//! `ingest.lua` for one with a dedup key or an id of its own (its
//! idempotency record and its hash written in the same step).

use std::collections::BTreeMap;

use tokio::task::JoinSet;

use super::Queue;
use crate::keys;
use crate::model::{IngestEntry, entry_event_id, sealed};

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
        tenant: event.tenant.into(),
        event: id.into(),
        event_type: event.event_type.to_string(),
        version: event.version,
        timestamp: event.timestamp.to_string(),
        about: event.about.map(str::to_string),
        consumers: event.consumers.to_vec(),
        channels: event.channels.to_vec(),
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

/// What starts the detail of the error of an event that is stored but was
/// not confirmed by enough replicas (the API answers it with 503).
pub const NOT_REPLICATED: &str = "not confirmed by enough replicas in time";

fn not_replicated(confirmed: u64, wanted: u8) -> redis::RedisError {
    redis::RedisError::from((
        redis::ErrorKind::Extension,
        "WAIT",
        format!("{NOT_REPLICATED}: {confirmed} of {wanted}"),
    ))
}

/// An event to store, already validated.
pub struct NewEvent<'a> {
    pub partition: u16,
    /// Other partitions that may hold its idempotency record (written
    /// while instances used another partition count): a record found
    /// there answers it as a duplicate, before it is stored.
    pub elsewhere: &'a [u16],
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
    /// The endpoint an operational event is about (see [`IngestEntry::about`]).
    pub about: Option<&'a str>,
    /// The consumers (`cs_...`) it is for; empty: every endpoint.
    pub consumers: &'a [String],
    pub channels: &'a [String],
}

impl Queue {
    /// Stores an event and its idempotency record in one step.
    ///
    /// An event with neither a dedup key nor an id of its own has no record
    /// to check or write and nothing to be found by but the id it is given:
    /// it is stored by one `XADD` (its body in the entry) and named from the
    /// entry ([`entry_event_id`]). The others go through `ingest.lua`, which
    /// also writes the event's hash, found by the producer's id.
    pub async fn ingest(&self, event: NewEvent<'_>) -> redis::RedisResult<Stored> {
        if let Some(Some(previous)) = self.recorded_elsewhere(&[&event]).await?.pop() {
            return Ok(Stored::Duplicate(previous));
        }
        let Some(id) = event.id else {
            let p = event.partition;
            let mut xadd = redis::cmd("XADD");
            xadd.arg(keys::ingest_stream(p))
                .arg("MINID")
                .arg("~")
                .arg(self.min_id())
                .arg("*")
                .arg("j")
                .arg(ingest_entry(&event, ""))
                .arg("b")
                .arg(&*sealed::seal(event.body));
            let entry_id: String = match self.replica_acks.0 {
                0 => xadd.query_async(&mut self.conn.clone()).await?,
                _ => self.replicated(redis::pipe().add_command(xadd)).await?,
            };
            return Ok(Stored::New(entry_event_id(p, &entry_id)));
        };
        let call = self.ingest_call(&event, id);
        let reply = match self.replica_acks.0 {
            0 => call.invoke_async(&mut self.conn.clone()).await?,
            _ => {
                let mut pipe = redis::pipe();
                pipe.load_script(&self.scripts.ingest)
                    .ignore()
                    .invoke_script(&call);
                self.replicated(&mut pipe).await?
            }
        };
        Ok(Stored::from_reply(reply))
    }

    /// Runs `pipe` (one command after any ignored ones, on one slot) and a
    /// `WAIT` for [`Queue::with_replica_acks`]'s replicas behind it, on the
    /// same connection; fails when fewer replicas confirmed in time.
    async fn replicated<T: redis::FromRedisValue>(
        &self,
        pipe: &mut redis::Pipeline,
    ) -> redis::RedisResult<T> {
        let (acks, timeout_ms) = self.replica_acks;
        pipe.cmd("WAIT").arg(acks).arg(timeout_ms);
        let (value, confirmed): (T, u64) = pipe.query_async(&mut self.conn.clone()).await?;
        match confirmed >= u64::from(acks) {
            true => Ok(value),
            false => Err(not_replicated(confirmed, acks)),
        }
    }

    /// Stores many events, each through the same script as
    /// [`Queue::ingest`] (so each is atomic with its idempotency record), in
    /// one pipelined round trip per partition, the partitions' at once (a
    /// pipeline stays on one slot, for Redis Cluster); answers in the order
    /// given.
    pub async fn ingest_many(&self, events: &[NewEvent<'_>]) -> redis::RedisResult<Vec<Stored>> {
        let mut stored: Vec<Option<Stored>> = vec![None; events.len()];
        let all: Vec<&NewEvent<'_>> = events.iter().collect();
        for (i, previous) in self.recorded_elsewhere(&all).await?.into_iter().enumerate() {
            stored[i] = previous.map(Stored::Duplicate);
        }
        let mut by_partition: BTreeMap<u16, (Vec<usize>, redis::Pipeline)> = BTreeMap::new();
        for (i, e) in events.iter().enumerate() {
            if stored[i].is_some() {
                continue;
            }
            // The script needs each event's hash key up front: an event
            // without an id is named here rather than from its entry.
            let call = match e.id {
                Some(id) => self.ingest_call(e, id),
                None => self.ingest_call(e, &crate::model::new_id("evt")),
            };
            let (at, pipe) = by_partition.entry(e.partition).or_insert_with(|| {
                let mut pipe = redis::pipe();
                pipe.load_script(&self.scripts.ingest).ignore();
                (Vec::new(), pipe)
            });
            at.push(i);
            pipe.invoke_script(&call);
        }
        let (acks, timeout_ms) = self.replica_acks;
        let mut calls = JoinSet::new();
        for (at, mut pipe) in by_partition.into_values() {
            if acks > 0 {
                pipe.cmd("WAIT").arg(acks).arg(timeout_ms);
            }
            let mut conn = self.conn.clone();
            calls.spawn(async move {
                let replies = pipe
                    .query_async::<Vec<redis::Value>>(&mut conn)
                    .await
                    .and_then(|mut values| {
                        if acks > 0 {
                            let confirmed = values.pop().map(redis::from_redis_value::<u64>);
                            match confirmed {
                                Some(Ok(n)) if n >= u64::from(acks) => {}
                                Some(Ok(n)) => return Err(not_replicated(n, acks)),
                                _ => return Err(not_replicated(0, acks)),
                            }
                        }
                        values
                            .into_iter()
                            .map(|v| {
                                redis::from_redis_value::<(i64, String)>(v).map_err(Into::into)
                            })
                            .collect::<redis::RedisResult<Vec<_>>>()
                    });
                (at, replies)
            });
        }
        while let Some(joined) = calls.join_next().await {
            let (at, replies) = joined.map_err(|e| {
                redis::RedisError::from((
                    redis::ErrorKind::Client,
                    "an ingest pipeline task failed",
                    e.to_string(),
                ))
            })?;
            for (i, reply) in at.into_iter().zip(replies?) {
                stored[i] = Some(Stored::from_reply(reply));
            }
        }
        stored
            .into_iter()
            .map(|s| {
                s.ok_or_else(|| {
                    (
                        redis::ErrorKind::Client,
                        "an ingest pipeline answered too few replies",
                    )
                        .into()
                })
            })
            .collect()
    }

    /// For each event, the id an idempotency record in one of its other
    /// partitions ([`NewEvent::elsewhere`]) answers for its dedup key, if
    /// any: one round trip for them all, none when no event has another
    /// partition to look in.
    async fn recorded_elsewhere(
        &self,
        events: &[&NewEvent<'_>],
    ) -> redis::RedisResult<Vec<Option<String>>> {
        let mut gets = Vec::new();
        let mut owner = Vec::new();
        for (i, e) in events.iter().enumerate() {
            let Some(key) = e.dedup_key else { continue };
            for &p in e.elsewhere {
                gets.push(redis::Cmd::get(keys::idempotency(p, e.tenant, key)));
                owner.push(i);
            }
        }
        let mut found = vec![None; events.len()];
        if gets.is_empty() {
            return Ok(found);
        }
        let ids: Vec<Option<String>> = self.conn.clone().each(gets).await?;
        for (i, id) in owner.into_iter().zip(ids) {
            if found[i].is_none() {
                found[i] = id;
            }
        }
        Ok(found)
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
            .arg(&*sealed::seal(event.body))
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
}
