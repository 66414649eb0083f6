//! Retry policy as data: a validated schedule of delays with jitter, and
//! `Retry-After` honoured within a bound.

use std::time::{Duration, SystemTime};

use rand::Rng;

#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Delay before each attempt; `schedule[0]` is the first attempt's.
    schedule: Vec<Duration>,
    jitter: f64,
    max_retry_after: Duration,
}

impl RetryPolicy {
    pub fn new(schedule: Vec<Duration>, jitter: f64, max_retry_after: Duration) -> Self {
        assert!(!schedule.is_empty(), "validated by the config");
        RetryPolicy {
            schedule,
            jitter: jitter.clamp(0.0, 1.0),
            max_retry_after,
        }
    }

    /// This policy's jitter and `Retry-After` bound with another schedule:
    /// an endpoint's own (`"5s"`, ...); `None` when one of them does not parse
    /// (the API refuses such a schedule, so only a hand-edited record has one).
    pub fn with_schedule(&self, schedule: &[String]) -> Option<RetryPolicy> {
        let schedule: Vec<Duration> = schedule
            .iter()
            .map(|d| crate::config::parse_duration(d).ok())
            .collect::<Option<_>>()?;
        (!schedule.is_empty()).then(|| RetryPolicy {
            schedule,
            ..self.clone()
        })
    }

    pub fn max_attempts(&self) -> u32 {
        self.schedule.len() as u32
    }

    /// Delay before the next attempt after `attempts_made` attempts failed,
    /// or `None` when none is left. `retry_after` (asked by the consumer) is
    /// a floor, clamped to the configured maximum.
    pub fn next_delay(
        &self,
        attempts_made: u32,
        retry_after: Option<Duration>,
    ) -> Option<Duration> {
        let base = *self.schedule.get(attempts_made as usize)?;
        let factor = if self.jitter > 0.0 {
            1.0 + rand::rng().random_range(-self.jitter..=self.jitter)
        } else {
            1.0
        };
        let jittered = base.mul_f64(factor);
        let floor = retry_after
            .map(|d| d.min(self.max_retry_after))
            .unwrap_or_default();
        Some(jittered.max(floor))
    }
}

/// Parses a `Retry-After` value: delta-seconds or an HTTP-date.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: &[u64]) -> Vec<Duration> {
        s.iter().map(|&n| Duration::from_secs(n)).collect()
    }

    #[test]
    fn delays_stay_within_jitter_bounds() {
        let policy = RetryPolicy::new(secs(&[0, 5, 300, 1800]), 0.2, Duration::from_secs(3600));
        for _ in 0..1000 {
            let d = policy.next_delay(2, None).unwrap();
            assert!(
                d >= Duration::from_secs(240) && d <= Duration::from_secs(360),
                "{d:?}"
            );
        }
        assert_eq!(policy.next_delay(0, None), Some(Duration::ZERO));
        assert_eq!(policy.next_delay(4, None), None);
        assert_eq!(policy.max_attempts(), 4);
    }

    #[test]
    fn an_endpoints_own_schedule_keeps_the_jitter_and_bound() {
        let policy = RetryPolicy::new(secs(&[0, 5]), 0.0, Duration::from_secs(60));
        let own: Vec<String> = ["0s", "1s", "2m"].map(String::from).to_vec();
        let own = policy.with_schedule(&own).unwrap();
        assert_eq!(own.max_attempts(), 3);
        assert_eq!(own.next_delay(2, None), Some(Duration::from_secs(120)));
        assert_eq!(
            own.next_delay(1, Some(Duration::from_secs(3600))),
            Some(Duration::from_secs(60)),
            "the gateway's Retry-After bound holds"
        );
        assert!(policy.with_schedule(&["5x".to_string()]).is_none());
        assert!(policy.with_schedule(&[]).is_none());
    }

    #[test]
    fn retry_after_is_a_clamped_floor() {
        let policy = RetryPolicy::new(secs(&[0, 1, 1]), 0.0, Duration::from_secs(60));
        assert_eq!(
            policy.next_delay(1, Some(Duration::from_secs(10))),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            policy.next_delay(1, Some(Duration::from_secs(999))),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            policy.next_delay(1, Some(Duration::ZERO)),
            Some(Duration::from_secs(1))
        );
    }

    #[test]
    fn retry_after_forms() {
        let now = httpdate::parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:50:07 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }
}
