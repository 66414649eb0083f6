//! Retry timing: `RetryPolicy::next_delay` on arbitrary schedules, jitter,
//! attempt numbers and `Retry-After` values (within what the gateway can
//! produce: durations of at most `u64::MAX` ms, as `parse_duration` makes
//! them), and the ingest rate bucket (`admission::ingest::Rate`, a GCRA
//! from `governor`; the endpoint GCRA is Lua in Redis, `gate.lua`).
#![no_main]

use std::num::NonZeroU32;
use std::time::Duration;

use arbitrary::Arbitrary;
use gateway::admission::ingest::Rate;
use gateway::delivery::retry::RetryPolicy;
use gateway::error::ApiError;
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Input {
    /// Milliseconds, or (when `text`) a `parse_duration` text's number and unit.
    schedule: Vec<(u64, u8)>,
    jitter: f64,
    max_retry_after_ms: u64,
    calls: Vec<(u32, Option<u64>)>,
    edited_schedule: Option<Vec<(u64, u8)>>,
    rate: (u32, u32),
    takes: Vec<u32>,
}

fn delay((n, unit): (u64, u8)) -> Duration {
    match unit % 4 {
        0 => Duration::from_millis(n),
        1 => Duration::from_millis(n % 1_000_000_000),
        2 => Duration::from_millis(n % 100_000),
        _ => Duration::from_millis(n % 1000),
    }
}

fn text((n, unit): (u64, u8)) -> String {
    let unit = ["ms", "s", "m", "h", "d", "", "x"][usize::from(unit % 7)];
    format!("{n}{unit}")
}

/// The bound the policy documents: the largest entry with jitter, or the
/// `Retry-After` ceiling.
fn check(
    policy: &RetryPolicy,
    schedule: &[Duration],
    jitter: f64,
    max_ra: Duration,
    input: &Input,
) {
    // `RetryPolicy::new` clamps the jitter (NaN means none).
    let j = if jitter.is_nan() {
        0.0
    } else {
        jitter.clamp(0.0, 1.0)
    };
    let longest = schedule.iter().max().copied().unwrap_or_default();
    let bound = longest.mul_f64(1.0 + j).max(max_ra);
    assert_eq!(policy.max_attempts() as usize, schedule.len());
    for &(attempt, retry_after_ms) in input.calls.iter().take(32) {
        let retry_after = retry_after_ms.map(Duration::from_millis);
        let got = policy.next_delay(attempt, retry_after);
        let Some(base) = schedule.get(attempt as usize).copied() else {
            assert_eq!(got, None, "attempt {attempt} of {}", schedule.len());
            continue;
        };
        let got = got.expect("a delay while attempts are left");
        assert!(got <= bound, "{got:?} > {bound:?}");
        let floor = retry_after.map(|d| d.min(max_ra)).unwrap_or_default();
        let high = base.mul_f64(1.0 + j).max(floor);
        let low = base.mul_f64(1.0 - j).max(floor);
        assert!(low <= got && got <= high, "{low:?} <= {got:?} <= {high:?}");
    }
}

fuzz_target!(|input: Input| {
    let schedule: Vec<Duration> = input.schedule.iter().take(64).copied().map(delay).collect();
    let max_ra = Duration::from_millis(input.max_retry_after_ms);
    if !schedule.is_empty() {
        let policy = RetryPolicy::new(schedule.clone(), input.jitter, max_ra);
        check(&policy, &schedule, input.jitter, max_ra, &input);

        // An endpoint's own schedule, as stored (texts): the same bound logic.
        if let Some(edited) = &input.edited_schedule {
            let texts: Vec<String> = edited.iter().take(64).copied().map(text).collect();
            let parsed: Option<Vec<Duration>> = texts
                .iter()
                .map(|t| gateway::config::parse_duration(t).ok())
                .collect();
            match (policy.with_schedule(&texts), parsed) {
                (Some(own), Some(parsed)) => check(&own, &parsed, input.jitter, max_ra, &input),
                (None, parsed) => assert!(parsed.is_none_or(|p| p.is_empty())),
                (Some(_), None) => panic!("a schedule that does not parse was taken"),
            }
        }
    }

    // The tenant ingest bucket, with the API's ranges (1 to 1000000).
    let (per_second, burst) = input.rate;
    let (per_second, burst) = (per_second % 1_000_000 + 1, burst % 1_000_000 + 1);
    let rate = Rate::new(per_second, burst);
    for &n in input.takes.iter().take(16) {
        let Some(n) = NonZeroU32::new(n) else {
            continue;
        };
        match rate.take(n) {
            Ok(headers) => {
                assert_eq!(headers.limit, burst);
                assert!(headers.remaining <= burst);
                assert!(headers.reset_secs <= u64::from(burst));
            }
            Err(ApiError::RateLimited {
                retry_after_secs,
                headers,
            }) => {
                assert!(retry_after_secs >= 1);
                assert_eq!(headers.reset_secs, retry_after_secs);
                assert!(n.get() <= burst);
            }
            Err(ApiError::Invalid(_)) => assert!(n.get() > burst),
            Err(other) => panic!("{other:?}"),
        }
    }
    // Stored limits edited by hand (out of the API's range): no panic.
    let odd = Rate::new(input.rate.0, input.rate.1);
    for &n in input.takes.iter().take(4) {
        if let Some(n) = NonZeroU32::new(n) {
            let _ = odd.take(n);
        }
    }
});
