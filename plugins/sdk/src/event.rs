//! The event a plugin receives and the target it is prepared for, with serde
//! helpers to read and write their JSON as typed Rust values.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::Error;

/// An event as the gateway stored it, or as an earlier plugin in the chain
/// left it.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// The event id, unique within the tenant (e.g. `evt_01h...`).
    pub id: String,
    /// The event type, e.g. `order.created`.
    pub event_type: String,
    /// The schema version of `data`, when the event type is versioned.
    pub schema_version: Option<u32>,
    /// When the event happened, RFC 3339 (e.g. `2026-01-31T12:00:00Z`).
    pub timestamp: String,
    /// The payload (usually a JSON object). Object keys keep their order,
    /// so an event passed through unchanged keeps its shape.
    pub data: Value,
    /// Extra facts about the event, such as `tenant-id`. A plugin may add or
    /// change entries; they travel down the chain but are not delivered.
    pub metadata: Vec<(String, String)>,
}

impl Event {
    /// An event of `event_type` carrying `data`, with an empty id and
    /// timestamp, no schema version and no metadata: handy in unit tests.
    pub fn new(event_type: impl Into<String>, data: Value) -> Self {
        Event {
            id: String::new(),
            event_type: event_type.into(),
            schema_version: None,
            timestamp: String::new(),
            data,
            metadata: Vec::new(),
        }
    }

    /// Reads `data` as a `T`; a mismatch is an [`Error::InvalidEvent`] that
    /// says where (e.g. `data: missing field `amount_cents``).
    pub fn parse_data<T: DeserializeOwned>(&self) -> Result<T, Error> {
        T::deserialize(&self.data).map_err(|e| Error::invalid_event(format!("data: {e}")))
    }

    /// Replaces `data` with `value` serialized to JSON; a value serde cannot
    /// represent as JSON (such as a map with non-string keys) is an
    /// [`Error::Failed`].
    pub fn set_data<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.data = serde_json::to_value(value).map_err(|e| Error::failed(format!("data: {e}")))?;
        Ok(())
    }

    /// The value of the first metadata entry named `key`.
    pub fn metadata(&self, key: &str) -> Option<&str> {
        self.metadata
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Sets the metadata entry `key` to `value`, replacing an existing entry
    /// of that name or adding one.
    pub fn set_metadata(&mut self, key: impl Into<String>, value: impl Into<String>) {
        let (key, value) = (key.into(), value.into());
        match self.metadata.iter_mut().find(|(k, _)| *k == key) {
            Some(entry) => entry.1 = value,
            None => self.metadata.push((key, value)),
        }
    }
}

/// The endpoint an event is being prepared for, and this plugin's settings
/// for it.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// The endpoint id (e.g. `ep_01h...`).
    pub endpoint_id: String,
    /// The schema version the endpoint subscribes to, if it names one.
    pub schema_version: Option<u32>,
    /// This plugin's configuration on this endpoint (`{}` when none was
    /// given).
    pub config: Value,
}

impl Target {
    /// A target with an empty endpoint id, no schema version and `config`:
    /// handy in unit tests.
    pub fn new(config: Value) -> Self {
        Target {
            endpoint_id: String::new(),
            schema_version: None,
            config,
        }
    }

    /// Reads `config` as a `T`; a mismatch is an [`Error::InvalidConfig`]
    /// that says where.
    pub fn parse_config<T: DeserializeOwned>(&self) -> Result<T, Error> {
        T::deserialize(&self.config).map_err(|e| Error::invalid_config(format!("config: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};
    use serde_json::json;

    use super::*;

    #[derive(Debug, Deserialize, Serialize, PartialEq)]
    struct Order {
        amount: u64,
    }

    #[test]
    fn parse_data_reads_typed_data_and_reports_mismatches_as_invalid_event() {
        let event = Event::new("order.created", json!({"amount": 5}));
        assert_eq!(event.parse_data::<Order>(), Ok(Order { amount: 5 }));

        let event = Event::new("order.created", json!({"amount": "five"}));
        match event.parse_data::<Order>() {
            Err(Error::InvalidEvent(message)) => assert!(message.starts_with("data: ")),
            other => panic!("expected invalid-event, got {other:?}"),
        }
    }

    #[test]
    fn set_data_replaces_the_payload() {
        let mut event = Event::new("order.created", json!(null));
        event.set_data(&Order { amount: 7 }).unwrap();
        assert_eq!(event.data, json!({"amount": 7}));
    }

    #[test]
    fn set_metadata_replaces_or_appends() {
        let mut event = Event::new("t", json!({}));
        event.set_metadata("a", "1");
        event.set_metadata("b", "2");
        event.set_metadata("a", "3");
        assert_eq!(event.metadata("a"), Some("3"));
        assert_eq!(event.metadata("b"), Some("2"));
        assert_eq!(event.metadata("c"), None);
        assert_eq!(event.metadata.len(), 2);
    }

    #[test]
    fn parse_config_reports_mismatches_as_invalid_config() {
        let target = Target::new(json!({"amount": -1}));
        assert!(matches!(
            target.parse_config::<Order>(),
            Err(Error::InvalidConfig(_))
        ));
    }
}
