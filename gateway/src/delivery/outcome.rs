//! What one pass of a task through the delivery pipeline came to, as one
//! typed value: the settle step applies it, whatever the task (a single
//! delivery or a batch) and whatever stopped it (the endpoint, flow
//! control, or the attempt's answer).

use super::client::Attempt;
use super::retry::RetryPolicy;
use crate::model::{Status, StatusKind, Time};

#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// A 2xx: finished.
    Delivered { attempts: u32, code: Option<u16> },
    /// Failed; tried again at `at_ms`.
    Retry {
        attempts: u32,
        at_ms: u64,
        code: Option<u16>,
        error: String,
    },
    /// Not tried again: out of attempts, or the endpoint is disabled.
    DeadLetter {
        attempts: u32,
        reason: String,
        code: Option<u16>,
    },
    /// The endpoint answered 410 Gone: it is disabled and the task dead-lettered.
    Gone {
        attempts: u32,
        code: Option<u16>,
        error: String,
    },
    /// Flow control held it back until `until_ms`: not an attempt.
    HeldBack {
        until_ms: u64,
        why: &'static str,
        /// The rate slot it reserved, when the rate held it back.
        reserved: Option<u64>,
    },
    /// The endpoint has not passed its handshake: parked with its
    /// endpoint's other waiting tasks until it does. Not an attempt.
    Parked { why: String },
    /// Nothing left to send: the endpoint was deleted or the events expired.
    Dropped { reason: &'static str },
}

impl Outcome {
    /// What an attempt came to, `before` attempts having been made before it.
    pub fn of_attempt(
        policy: &RetryPolicy,
        before: u32,
        attempt: &Attempt,
        now_ms: u64,
    ) -> Outcome {
        let attempts = before + 1;
        let code = attempt.status;
        if attempt.succeeded() {
            return Outcome::Delivered { attempts, code };
        }
        let error = attempt
            .error
            .clone()
            .unwrap_or_else(|| "delivery failed".into());
        if attempt.gone() {
            return Outcome::Gone {
                attempts,
                code,
                error,
            };
        }
        match policy.next_delay(attempts, attempt.retry_after) {
            Some(delay) => Outcome::Retry {
                attempts,
                at_ms: now_ms + delay.as_millis() as u64,
                code,
                error,
            },
            None => Outcome::DeadLetter {
                attempts,
                reason: format!("gave up after {attempts} attempts; last: {error}"),
                code,
            },
        }
    }

    /// The status recorded on every member's event; `before` is the task's
    /// attempt count when it came in.
    pub fn status(&self, before: u32) -> Status {
        let (kind, attempts, code, error, next) = match self {
            Outcome::Delivered { attempts, code } => {
                (StatusKind::Delivered, *attempts, *code, None, None)
            }
            Outcome::Retry {
                attempts,
                at_ms,
                code,
                error,
            } => (
                StatusKind::Retrying,
                *attempts,
                *code,
                Some(error.clone()),
                Some(*at_ms),
            ),
            Outcome::DeadLetter {
                attempts,
                reason,
                code,
            } => (
                StatusKind::DeadLettered,
                *attempts,
                *code,
                Some(reason.clone()),
                None,
            ),
            Outcome::Gone { attempts, code, .. } => (
                StatusKind::DeadLettered,
                *attempts,
                *code,
                self.dead_letter_reason(),
                None,
            ),
            Outcome::HeldBack { until_ms, why, .. } => {
                let kind = match before {
                    0 => StatusKind::Pending,
                    _ => StatusKind::Retrying,
                };
                (kind, before, None, Some(why.to_string()), Some(*until_ms))
            }
            Outcome::Parked { why } => {
                let kind = match before {
                    0 => StatusKind::Pending,
                    _ => StatusKind::Retrying,
                };
                (kind, before, None, Some(format!("parked: {why}")), None)
            }
            Outcome::Dropped { reason } => (
                StatusKind::Dropped,
                before,
                None,
                Some(reason.to_string()),
                None,
            ),
        };
        let mut status = Status::new(kind, attempts);
        status.last_status_code = code;
        status.last_error = error;
        status.next_attempt_at = next.map(Time::from_ms);
        status
    }

    /// Why the task is dead-lettered, when it is.
    pub fn dead_letter_reason(&self) -> Option<String> {
        match self {
            Outcome::DeadLetter { reason, .. } => Some(reason.clone()),
            Outcome::Gone { error, .. } => Some(format!("{error}: endpoint disabled")),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn answered(status: Option<u16>, retry_after: Option<Duration>) -> Attempt {
        Attempt {
            status,
            latency: Duration::from_millis(3),
            response: String::new(),
            error: (status != Some(200)).then(|| "endpoint answered 500".to_string()),
            retry_after,
        }
    }

    fn policy() -> RetryPolicy {
        let schedule = vec![
            Duration::ZERO,
            Duration::from_secs(1),
            Duration::from_secs(2),
        ];
        RetryPolicy::new(schedule, 0.0, Duration::from_secs(60))
    }

    #[test]
    fn a_2xx_is_delivered_with_its_attempt_counted() {
        let outcome = Outcome::of_attempt(&policy(), 1, &answered(Some(200), None), 0);
        assert_eq!(
            outcome,
            Outcome::Delivered {
                attempts: 2,
                code: Some(200)
            }
        );
        assert_eq!(outcome.status(1).status, StatusKind::Delivered);
    }

    #[test]
    fn a_failure_is_retried_on_the_schedule_until_it_runs_out() {
        let failed = answered(Some(500), None);
        assert!(matches!(
            Outcome::of_attempt(&policy(), 0, &failed, 10_000),
            Outcome::Retry {
                attempts: 1,
                at_ms: 11_000,
                ..
            }
        ));
        let last = Outcome::of_attempt(&policy(), 2, &failed, 10_000);
        assert!(
            matches!(last, Outcome::DeadLetter { attempts: 3, .. }),
            "{last:?}"
        );
        assert_eq!(
            last.dead_letter_reason().unwrap(),
            "gave up after 3 attempts; last: endpoint answered 500"
        );
    }

    #[test]
    fn retry_after_is_a_floor_on_the_next_delay() {
        let asked = answered(Some(503), Some(Duration::from_secs(30)));
        assert!(matches!(
            Outcome::of_attempt(&policy(), 0, &asked, 0),
            Outcome::Retry { at_ms: 30_000, .. }
        ));
    }

    #[test]
    fn gone_is_dead_lettered_at_once_and_says_the_endpoint_is_disabled() {
        let mut gone = answered(Some(410), None);
        gone.error = Some("endpoint answered 410".into());
        let outcome = Outcome::of_attempt(&policy(), 0, &gone, 0);
        assert!(matches!(outcome, Outcome::Gone { attempts: 1, .. }));
        let status = outcome.status(0);
        assert_eq!(status.status, StatusKind::DeadLettered);
        assert_eq!(
            status.last_error.as_deref(),
            Some("endpoint answered 410: endpoint disabled")
        );
    }

    #[test]
    fn held_back_and_dropped_do_not_count_an_attempt() {
        let held = Outcome::HeldBack {
            until_ms: 5_000,
            why: "throttled",
            reserved: Some(5_000),
        };
        assert_eq!(held.status(0).status, StatusKind::Pending);
        assert_eq!(held.status(2).status, StatusKind::Retrying);
        assert_eq!(held.status(2).attempts, 2);
        let dropped = Outcome::Dropped { reason: "gone" }.status(1);
        assert_eq!((dropped.status, dropped.attempts), (StatusKind::Dropped, 1));
    }
}
