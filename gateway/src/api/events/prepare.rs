//! The checks of one event, single or in a batch, and what a valid one is
//! stored as (`Prepared`): its id, dedup key, partition and delivery body.

use super::EventIn;
use crate::api::validate;
use crate::contracts::{Checked, Snapshot};
use crate::keys::Partitions;
use crate::model::{FieldError, new_id};
use crate::queue::NewEvent;
use crate::store::{Consumer, delivery_body};

/// A valid event, ready to store.
pub struct Prepared {
    /// None when the queue names the event (see `Queue::ingest`).
    id: Option<String>,
    event_type: String,
    version: Option<u32>,
    /// Set when the type or version is deprecated (RFC 3339).
    pub(super) deprecated_at: Option<String>,
    timestamp: String,
    body: String,
    partition: u16,
    /// Partitions that may hold its idempotency record under the other
    /// partition counts written with lately ([`Partitions::others_of`]).
    elsewhere: Vec<u16>,
    dedup_key: Option<String>,
    /// The uids of the consumers it is for, and their ids.
    pub(super) uids: Vec<String>,
    consumers: Vec<String>,
    channels: Vec<String>,
}

impl Prepared {
    pub(super) fn new_event<'a>(&'a self, tenant: &'a str) -> NewEvent<'a> {
        NewEvent {
            partition: self.partition,
            elsewhere: &self.elsewhere,
            tenant,
            id: self.id.as_deref(),
            event_type: &self.event_type,
            version: self.version,
            body: &self.body,
            timestamp: &self.timestamp,
            dedup_key: self.dedup_key.as_deref(),
            about: None,
            consumers: &self.consumers,
            channels: &self.channels,
        }
    }
}

/// Checks one event (its fields, then its data against the schema of its
/// type's version), adding its problems to `errors` with pointers under
/// `at` (`""` for a single event, `/events/3` for a batch item).
pub fn prepare(
    partitions: Partitions,
    contracts: &Snapshot,
    tenant: &str,
    event: EventIn,
    idempotency_key: Option<&str>,
    at: &str,
    errors: &mut Vec<FieldError>,
) -> Option<Prepared> {
    let found = errors.len();
    validate::event_type(&format!("{at}/type"), &event.event_type, errors);
    if let Some(id) = &event.id {
        validate::identifier(&format!("{at}/id"), id, errors);
    }
    if event.version == Some(0) {
        errors.push(FieldError::new(
            format!("{at}/version"),
            "must be at least 1",
        ));
    }
    let uids = event
        .consumer
        .map(super::Audience::into_vec)
        .unwrap_or_default();
    validate::labels(&format!("{at}/consumer"), &uids, errors);
    validate::labels(&format!("{at}/channels"), &event.channels, errors);
    if !event.data.get().starts_with('{') {
        errors.push(FieldError::new(
            format!("{at}/data"),
            "must be a JSON object",
        ));
    }
    let checked = match errors.len() > found {
        true => Checked::default(),
        false => contracts.check_event(
            &event.event_type,
            event.version,
            event.data.get(),
            at,
            errors,
        ),
    };
    let timestamp = match &event.timestamp {
        None => crate::model::clock::now_rfc3339(),
        Some(text) => match crate::model::clock::parse_rfc3339(text) {
            Some(at) => crate::model::clock::format_rfc3339(at.to_offset(time::UtcOffset::UTC)),
            None => {
                errors.push(FieldError::new(
                    format!("{at}/timestamp"),
                    "must be an RFC 3339 date-time",
                ));
                String::new()
            }
        },
    };
    if errors.len() > found {
        return None;
    }
    // An event with neither a key nor its own id has nothing to be
    // deduplicated against: no idempotency record is kept, and the queue
    // names it when it stores it.
    let (id, dedup_key) = match (idempotency_key, event.id) {
        (Some(key), id) => (
            Some(id.unwrap_or_else(|| new_id("evt"))),
            Some(format!("key:{key}")),
        ),
        (None, Some(id)) => (Some(id.clone()), Some(format!("id:{id}"))),
        (None, None) => (None, None),
    };
    let (partition, elsewhere) = match (idempotency_key, &id) {
        (Some(key), _) => (
            partitions.of(tenant, key),
            partitions.others_of(tenant, key),
        ),
        (None, Some(id)) => (partitions.of(tenant, id), partitions.others_of(tenant, id)),
        (None, None) => (partitions.spread(), Vec::new()),
    };
    let body = delivery_body(
        &event.event_type,
        checked.version,
        &timestamp,
        event.data.get(),
    );
    Some(Prepared {
        id,
        event_type: event.event_type,
        version: checked.version,
        deprecated_at: checked.deprecated_at,
        timestamp,
        body,
        partition,
        elsewhere,
        dedup_key,
        consumers: uids.iter().map(|uid| Consumer::id_of(uid)).collect(),
        uids,
        channels: event.channels,
    })
}
