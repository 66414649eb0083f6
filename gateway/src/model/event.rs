//! Accepted events as the ingest stream holds them, and the ids the gateway
//! makes from stream entries.

use serde::{Deserialize, Serialize};

use super::{EventId, TenantId};

/// What the fan-out stage reads for one accepted event (the entry's `j`
/// field; its `b` field holds the delivery body).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IngestEntry {
    #[serde(rename = "t")]
    pub tenant: TenantId,
    /// Absent from the entry of an event the gateway named: its id is made
    /// from the entry's ([`entry_event_id`]), filled in by [`IngestEntry::parse`].
    #[serde(rename = "e", default, skip_serializing_if = "EventId::is_empty")]
    pub event: EventId,
    #[serde(rename = "y")]
    pub event_type: String,
    /// The event's schema version, when its type is versioned.
    #[serde(rename = "v", default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
    /// The event's time (RFC 3339).
    #[serde(rename = "s", default)]
    pub timestamp: String,
    /// Set on an operational event (`endpoint.quarantined`, ...): the
    /// endpoint it is about. It goes to the tenant's operational endpoints
    /// but that one, whatever they subscribe to.
    #[serde(rename = "o", default, skip_serializing_if = "Option::is_none")]
    pub about: Option<String>,
    /// The consumers (`cs_...`) it is for; none: every endpoint.
    #[serde(rename = "c", default, skip_serializing_if = "Vec::is_empty")]
    pub consumers: Vec<String>,
    /// Its channels, for endpoints that take only some.
    #[serde(rename = "h", default, skip_serializing_if = "Vec::is_empty")]
    pub channels: Vec<String>,
}

impl IngestEntry {
    /// Reads the `j` field (`json`) of entry `entry_id` of partition `p`'s
    /// ingest stream.
    pub fn parse(p: u16, entry_id: &str, json: &str) -> serde_json::Result<IngestEntry> {
        let mut parsed: IngestEntry = serde_json::from_str(json)?;
        if parsed.event.is_empty() {
            parsed.event = entry_event_id(p, entry_id).into();
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
pub fn entry_ms(entry_id: &str) -> u64 {
    entry_id
        .split('-')
        .next()
        .and_then(|ms| ms.parse().ok())
        .unwrap_or_default()
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
        let unnamed = r#"{"t":"ten_a","y":"a.b","s":"2026-01-01T00:00:00Z"}"#;
        assert_eq!(
            IngestEntry::parse(1, "5-0", unnamed).unwrap().event,
            "evt_p1-5-0"
        );
        let named = r#"{"t":"ten_a","e":"e-1","y":"a.b"}"#;
        assert_eq!(IngestEntry::parse(1, "5-0", named).unwrap().event, "e-1");
    }
}
