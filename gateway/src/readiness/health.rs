//! An endpoint's health as the API shows it, summed up from its attempt
//! log: attempts, success rate and latency over the last 5 minutes and the
//! last hour, its last error and its failures in a row.

use serde::Serialize;
use utoipa::ToSchema;

use crate::model::clock::ms_to_rfc3339;
use crate::store::AttemptRecord;

/// Attempts read from the log at most, newest first.
pub const READ_AT_MOST: usize = 10_000;
const FIVE_MINUTES_MS: u64 = 5 * 60_000;
pub const HOUR_MS: u64 = 60 * 60_000;

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Health {
    pub last_5m: Window,
    pub last_1h: Window,
    /// Failed attempts in a row, as its circuit counts them.
    pub consecutive_failures: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<LastError>,
    /// The hour held more than [`READ_AT_MOST`] attempts: its figures are
    /// over the newest of them only.
    pub sampled: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Window {
    pub attempts: u64,
    pub succeeded: u64,
    /// Succeeded / attempts; absent without attempts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub success_rate: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_p50_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_p95_ms: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct LastError {
    /// RFC 3339.
    pub at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_code: Option<u16>,
    pub error: String,
}

/// Sums up `attempts` (newest first, each with when it was logged, ms) as of `now_ms`.
pub fn summarize(
    attempts: &[(u64, AttemptRecord)],
    now_ms: u64,
    consecutive_failures: u64,
    sampled: bool,
) -> Health {
    let within = |ms: u64| {
        attempts
            .iter()
            .filter(move |(at, _)| now_ms.saturating_sub(*at) < ms)
    };
    let last_error = attempts
        .iter()
        .find(|(_, a)| !succeeded(a))
        .map(|(at, a)| LastError {
            at: ms_to_rfc3339(*at),
            status_code: a.status_code,
            error: a.error.clone().unwrap_or_else(|| match a.status_code {
                Some(code) => format!("answered {code}"),
                None => "delivery failed".into(),
            }),
        });
    Health {
        last_5m: window(within(FIVE_MINUTES_MS).map(|(_, a)| a)),
        last_1h: window(within(HOUR_MS).map(|(_, a)| a)),
        consecutive_failures,
        last_error,
        sampled,
    }
}

fn succeeded(a: &AttemptRecord) -> bool {
    a.status_code.is_some_and(|s| (200..300).contains(&s))
}

fn window<'a>(attempts: impl Iterator<Item = &'a AttemptRecord>) -> Window {
    let mut latencies = Vec::new();
    let mut ok = 0;
    for a in attempts {
        latencies.push(a.latency_ms);
        ok += u64::from(succeeded(a));
    }
    latencies.sort_unstable();
    let rank = |q: f64| {
        let n = latencies.len();
        (n > 0).then(|| latencies[((q * n as f64).ceil() as usize).clamp(1, n) - 1])
    };
    let n = latencies.len() as u64;
    Window {
        attempts: n,
        succeeded: ok,
        success_rate: (n > 0).then(|| ok as f64 / n as f64),
        latency_p50_ms: rank(0.50),
        latency_p95_ms: rank(0.95),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(status: Option<u16>, latency_ms: u64) -> AttemptRecord {
        AttemptRecord {
            id: String::new(),
            event_id: "evt".into(),
            msg_id: "msg".into(),
            attempt: 1,
            batch_id: None,
            url: None,
            status_code: status,
            latency_ms,
            response: String::new(),
            error: None,
            at: String::new(),
        }
    }

    #[test]
    fn windows_count_rates_and_nearest_rank_latencies() {
        let now = 10 * HOUR_MS;
        let mut log = Vec::new();
        for i in 0..20u64 {
            log.push((now - i * 1_000, attempt(Some(200), i + 1)));
        }
        log.push((now - 30 * 60_000, attempt(Some(500), 900)));
        log.push((now - 2 * HOUR_MS, attempt(None, 5)));
        let h = summarize(&log, now, 0, false);
        assert_eq!((h.last_5m.attempts, h.last_5m.succeeded), (20, 20));
        assert_eq!(h.last_5m.success_rate, Some(1.0));
        assert_eq!(
            (h.last_5m.latency_p50_ms, h.last_5m.latency_p95_ms),
            (Some(10), Some(19))
        );
        assert_eq!((h.last_1h.attempts, h.last_1h.succeeded), (21, 20));
        assert_eq!(h.last_1h.latency_p95_ms, Some(20));
        let last = h.last_error.unwrap();
        assert_eq!(
            (last.status_code, last.error.as_str()),
            (Some(500), "answered 500")
        );
    }

    #[test]
    fn no_attempts_give_no_rates() {
        let h = summarize(&[], HOUR_MS, 3, false);
        assert_eq!(h.last_1h.attempts, 0);
        assert_eq!(h.last_1h.success_rate, None);
        assert_eq!(h.last_5m.latency_p50_ms, None);
        assert_eq!(h.consecutive_failures, 3);
        assert!(h.last_error.is_none());
    }
}
