//! Storing accepted events: one `XADD` for an event the gateway names, or
//! `ingest.lua` for one with a dedup key or an id of its own (its
//! idempotency record and its hash written in the same step).

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
                .arg(&*sealed::seal(event.body))
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
                None => self.ingest_call(e, &crate::model::new_id("evt")),
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
