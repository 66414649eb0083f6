//! Measurement primitives: one shared monotonic [`Clock`] (so a timestamp
//! written into an event by the load generator can be compared with the
//! receiver's clock), [`Latencies`] kept as a plain vector and sorted once
//! for percentiles, and the number formats the report uses.

use std::time::{Duration, Instant};

/// Nanoseconds since one shared origin. Every task of the benchmark runs in
/// this process, so one `Instant` is a clock they all agree on.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    origin: Instant,
}

impl Clock {
    pub fn start() -> Clock {
        Clock {
            origin: Instant::now(),
        }
    }

    pub fn now_ns(&self) -> u64 {
        self.ns_at(Instant::now())
    }

    /// `at` as nanoseconds since the origin (0 before it).
    pub fn ns_at(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.origin).as_nanos()).unwrap_or(u64::MAX)
    }
}

/// Latency samples in nanoseconds. Sorting happens on read, once.
#[derive(Debug, Clone, Default)]
pub struct Latencies {
    samples: Vec<u64>,
    sorted: bool,
}

impl Latencies {
    pub fn record(&mut self, took: Duration) {
        self.record_ns(u64::try_from(took.as_nanos()).unwrap_or(u64::MAX));
    }

    pub fn record_ns(&mut self, ns: u64) {
        self.samples.push(ns);
        self.sorted = false;
    }

    pub fn merge(&mut self, other: Latencies) {
        self.samples.extend(other.samples);
        self.sorted = false;
    }

    /// The `q` quantile (0.0 to 1.0) by the nearest-rank method; `None` when empty.
    pub fn quantile(&mut self, q: f64) -> Option<Duration> {
        if self.samples.is_empty() {
            return None;
        }
        if !self.sorted {
            self.samples.sort_unstable();
            self.sorted = true;
        }
        let n = self.samples.len();
        let rank = ((q.clamp(0.0, 1.0) * n as f64).ceil() as usize).clamp(1, n);
        Some(Duration::from_nanos(self.samples[rank - 1]))
    }
}

/// `12345.6` as `12,346`.
pub fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value.max(0.0));
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A latency in milliseconds with two decimals, or `-`.
pub fn millis(d: Option<Duration>) -> String {
    d.map_or_else(
        || "-".to_string(),
        |d| format!("{:.2} ms", d.as_secs_f64() * 1e3),
    )
}

/// A latency in microseconds with one decimal, or `-`.
pub fn micros(d: Option<Duration>) -> String {
    d.map_or_else(
        || "-".to_string(),
        |d| format!("{:.1} us", d.as_secs_f64() * 1e6),
    )
}

/// `count` per second of `elapsed`.
pub fn per_second(count: u64, elapsed: Duration) -> f64 {
    if elapsed.is_zero() {
        return 0.0;
    }
    count as f64 / elapsed.as_secs_f64()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_use_the_nearest_rank() {
        let mut l = Latencies::default();
        for ms in (1..=100).rev() {
            l.record(Duration::from_millis(ms));
        }
        assert_eq!(l.quantile(0.5), Some(Duration::from_millis(50)));
        assert_eq!(l.quantile(0.99), Some(Duration::from_millis(99)));
        assert_eq!(l.quantile(1.0), Some(Duration::from_millis(100)));
        assert_eq!(l.quantile(0.0), Some(Duration::from_millis(1)));
        assert_eq!(Latencies::default().quantile(0.5), None);
    }

    #[test]
    fn merged_samples_are_sorted_again() {
        let mut a = Latencies::default();
        a.record_ns(5);
        assert_eq!(a.quantile(1.0), Some(Duration::from_nanos(5)));
        let mut b = Latencies::default();
        b.record_ns(9);
        a.merge(b);
        assert_eq!(a.quantile(0.5), Some(Duration::from_nanos(5)));
        assert_eq!(a.quantile(1.0), Some(Duration::from_nanos(9)));
    }

    #[test]
    fn numbers_are_formatted_for_the_table() {
        assert_eq!(thousands(0.4), "0");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(thousands(1234.0), "1,234");
        assert_eq!(thousands(1234567.8), "1,234,568");
        assert_eq!(millis(Some(Duration::from_micros(1500))), "1.50 ms");
        assert_eq!(millis(None), "-");
        assert_eq!(micros(Some(Duration::from_nanos(23_460))), "23.5 us");
        assert_eq!(micros(None), "-");
        assert_eq!(per_second(10, Duration::from_millis(500)), 20.0);
        assert_eq!(per_second(10, Duration::ZERO), 0.0);
    }
}
