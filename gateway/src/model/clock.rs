//! Wall-clock time: the model's [`Time`], and RFC 3339 formatting and
//! parsing of instants.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

pub fn now_rfc3339() -> String {
    format_rfc3339(OffsetDateTime::now_utc())
}

pub fn format_rfc3339(at: OffsetDateTime) -> String {
    at.format(&Rfc3339)
        .expect("a UTC instant always formats as RFC 3339")
}

/// Milliseconds since the Unix epoch as RFC 3339.
pub fn ms_to_rfc3339(ms: u64) -> String {
    Time::from_ms(ms).to_rfc3339()
}

pub fn parse_rfc3339(text: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(text, &Rfc3339).ok()
}

/// Now, in ms since the epoch.
/// RFC 3339 text as ms since the epoch (0 for a time before it).
pub fn parse_rfc3339_ms(text: &str) -> Option<u64> {
    parse_rfc3339(text).map(|at| (at.unix_timestamp_nanos() / 1_000_000).max(0) as u64)
}

pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

/// An instant in the model (when a status changed, a retry is due, a task
/// died), written as RFC 3339 in UTC wherever it is stored or shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Time(OffsetDateTime);

impl Time {
    pub fn now() -> Time {
        Time(OffsetDateTime::now_utc())
    }

    /// Milliseconds since the Unix epoch.
    pub fn from_ms(ms: u64) -> Time {
        Time(
            OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
                .unwrap_or(OffsetDateTime::UNIX_EPOCH),
        )
    }

    pub fn parse(text: &str) -> Option<Time> {
        parse_rfc3339(text).map(Time)
    }

    pub fn to_rfc3339(&self) -> String {
        format_rfc3339(self.0)
    }
}

impl std::fmt::Display for Time {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl serde::Serialize for Time {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_rfc3339())
    }
}

impl<'de> serde::Deserialize<'de> for Time {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Time, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Time::parse(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("not an RFC 3339 time: {text:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_time_is_rfc_3339_text_on_the_wire() {
        let at = Time::from_ms(1_764_547_200_123);
        let json = serde_json::to_string(&at).unwrap();
        assert_eq!(json, r#""2025-12-01T00:00:00.123Z""#);
        assert_eq!(serde_json::from_str::<Time>(&json).unwrap(), at);
        assert!(serde_json::from_str::<Time>(r#""yesterday""#).is_err());
        assert_eq!(at.to_string(), "2025-12-01T00:00:00.123Z");
    }
}
