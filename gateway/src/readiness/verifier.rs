//! Runs ownership handshakes and records them: on request
//! ([`Verifier::handshake`]) or every one that is due
//! ([`Verifier::run_due`]). For an endpoint quarantined for failing, the
//! handshake is its probe: passing it ends the quarantine.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;

use super::handshake;
use crate::config::{QuarantineConfig, VerificationConfig};
use crate::delivery::client::HttpClient;
use crate::delivery::request_headers;
use crate::delivery::tls::ClientTls;
use crate::model::clock::{now_ms, now_rfc3339};
use crate::model::new_id;
use crate::notify::{self, Notifier};
use crate::store::{Capabilities, Endpoint, Store, Verification, VerificationState};
use crate::telemetry::Metrics;

/// Due handshakes taken per tick, run at once.
const TAKE: usize = 16;
/// A taken handshake's lease outlives its timeout by this much.
const LEASE_MARGIN: Duration = Duration::from_secs(30);

#[derive(Clone)]
pub struct Verifier {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    client: HttpClient,
    settings: VerificationConfig,
    quarantine: QuarantineConfig,
    metrics: Metrics,
    notify: Notifier,
}

impl Verifier {
    pub fn new(
        store: Store,
        client: HttpClient,
        (settings, quarantine): (VerificationConfig, QuarantineConfig),
        metrics: Metrics,
        notify: Notifier,
    ) -> Verifier {
        Verifier {
            inner: Arc::new(Inner {
                store,
                client,
                settings,
                quarantine,
                metrics,
                notify,
            }),
        }
    }

    pub fn required(&self) -> bool {
        self.inner.settings.required
    }

    /// How long a handshake waits for its answer.
    pub fn timeout(&self) -> Duration {
        self.inner.settings.timeout
    }

    /// Runs one handshake with the endpoint now, records it and schedules
    /// the next; the endpoint as recorded, `None` when there is none.
    pub async fn handshake(&self, tenant: &str, id: &str) -> anyhow::Result<Option<Endpoint>> {
        self.inner.handshake(tenant, id).await
    }

    /// Runs every handshake due now (up to a tick's worth), at once.
    pub async fn run_due(&self) -> anyhow::Result<()> {
        let now = now_ms();
        let lease = now + (self.inner.settings.timeout + LEASE_MARGIN).as_millis() as u64;
        let due = self
            .inner
            .store
            .take_due_handshakes(now, lease, TAKE)
            .await?;
        let mut running = JoinSet::new();
        for (tenant, id) in due {
            let inner = self.inner.clone();
            running.spawn(async move {
                if let Err(e) = inner.handshake(&tenant, &id).await {
                    tracing::warn!(%tenant, endpoint = %id, error = format!("{e:#}"),
                        "could not run a due handshake; it is tried again when its lease ends");
                }
            });
        }
        while running.join_next().await.is_some() {}
        Ok(())
    }
}

impl Inner {
    async fn handshake(&self, tenant: &str, id: &str) -> anyhow::Result<Option<Endpoint>> {
        let Some(endpoint) = self.store.endpoint(tenant, id).await? else {
            self.store.unschedule_handshake(tenant, id).await?;
            return Ok(None);
        };
        if endpoint.quarantine.as_ref().is_some_and(|q| !q.by_tenant) {
            return self.probe(tenant, &endpoint).await;
        }
        let before = endpoint.verification.as_ref().map(|v| v.state);
        let (_, result) = self.ask(&endpoint).await;
        let checked_at = now_rfc3339();
        let changed = self
            .store
            .update_endpoint(tenant, id, |stored| {
                let v = stored
                    .verification
                    .get_or_insert_with(Verification::pending);
                record(v, &result, &checked_at);
                Ok::<(), std::convert::Infallible>(())
            })
            .await?;
        let Some(Ok(endpoint)) = changed else {
            self.store.unschedule_handshake(tenant, id).await?;
            return Ok(None);
        };
        let failures = endpoint.verification.as_ref().map_or(0, |v| v.failures);
        let next = match &result {
            Ok(_) => {
                self.metrics.verifications_passed.inc();
                tracing::info!(%tenant, endpoint = %id, "endpoint verified");
                if before != Some(VerificationState::Verified) {
                    let kind = notify::VERIFIED;
                    self.notify.endpoint(tenant, kind, &endpoint, None).await;
                }
                self.settings.every
            }
            Err(why) => {
                self.metrics.verifications_failed.inc();
                tracing::info!(%tenant, endpoint = %id, reason = %why, failures, "endpoint verification failed");
                if failures == 1 {
                    let kind = notify::VERIFICATION_FAILED;
                    self.notify
                        .endpoint(tenant, kind, &endpoint, Some(why))
                        .await;
                }
                backoff(&self.settings, failures)
            }
        };
        self.store
            .schedule_handshake(tenant, id, now_ms() + next.as_millis() as u64)
            .await?;
        Ok(Some(endpoint))
    }

    /// A quarantined endpoint's probe: a handshake, passed by the right
    /// answer, or by any 2xx when the endpoint needs no handshake. Passing
    /// ends the quarantine (its parked events then flow, its circuit is
    /// closed); failing backs the next probe off.
    async fn probe(&self, tenant: &str, endpoint: &Endpoint) -> anyhow::Result<Option<Endpoint>> {
        let id = endpoint.id.as_str();
        let (status, answer) = self.ask(endpoint).await;
        let needs_handshake = endpoint
            .verification
            .as_ref()
            .is_some_and(|v| self.settings.required && !v.exempt);
        let answered = status.is_some_and(|s| (200..300).contains(&s));
        let result = match answer {
            Ok(capabilities) => Ok(Some(capabilities)),
            Err(_) if answered && !needs_handshake => Ok(None),
            Err(why) => Err(why),
        };
        let checked_at = now_rfc3339();
        let changed = self
            .store
            .update_endpoint(tenant, id, |stored| {
                match &result {
                    Ok(capabilities) => {
                        stored.quarantine = None;
                        if let (Some(v), Some(c)) = (stored.verification.as_mut(), capabilities) {
                            record(v, &Ok(c.clone()), &checked_at);
                        }
                    }
                    Err(why) => {
                        if let Some(q) = stored.quarantine.as_mut() {
                            q.probes = q.probes.saturating_add(1);
                            q.last_probe_error = Some(why.clone());
                        }
                    }
                }
                Ok::<(), std::convert::Infallible>(())
            })
            .await?;
        let Some(Ok(endpoint)) = changed else {
            self.store.unschedule_handshake(tenant, id).await?;
            return Ok(None);
        };
        let next = match &result {
            Ok(_) => {
                self.store.reset_circuit(tenant, id).await?;
                self.metrics.endpoints_recovered.inc();
                let kind = notify::RECOVERED;
                self.notify.endpoint(tenant, kind, &endpoint, None).await;
                tracing::info!(%tenant, endpoint = %id,
                    "quarantined endpoint passed its probe; its parked events flow again");
                endpoint.verification.as_ref().map(|_| self.settings.every)
            }
            Err(why) => {
                let probes = endpoint.quarantine.as_ref().map_or(1, |q| q.probes);
                tracing::info!(%tenant, endpoint = %id, reason = %why, probes,
                    "probe of a quarantined endpoint failed");
                let q = &self.quarantine;
                Some(doubled(q.probe_every, q.probe_max, probes))
            }
        };
        match next {
            Some(after) => {
                let at = now_ms() + after.as_millis() as u64;
                self.store.schedule_handshake(tenant, id, at).await?;
            }
            None => self.store.unschedule_handshake(tenant, id).await?,
        }
        Ok(Some(endpoint))
    }

    /// Sends the challenge and judges the answer; the answer's status too.
    async fn ask(&self, endpoint: &Endpoint) -> (Option<u16>, Result<Capabilities, String>) {
        let challenge = handshake::challenge();
        let body = handshake::request_body(&challenge, &now_rfc3339());
        let headers = match request_headers(endpoint, &new_id("msg"), &body) {
            Ok(h) => h,
            Err(e) => return (None, Err(format!("cannot build the request: {e}"))),
        };
        let answer = self
            .client
            .post(
                &endpoint.url,
                ClientTls::of(endpoint).as_ref(),
                headers,
                body,
                self.settings.timeout,
            )
            .await;
        let secrets = endpoint.live_secrets(now_ms());
        let judged = handshake::judge(answer.status, &answer.response, &challenge, &secrets);
        let judged = judged.map_err(|why| match (answer.status, answer.error) {
            (None, Some(error)) => error,
            _ => why,
        });
        (answer.status, judged)
    }
}

/// Applies one handshake's result to the endpoint's verification.
fn record(v: &mut Verification, result: &Result<Capabilities, String>, at: &str) {
    v.checked_at = Some(at.to_string());
    match result {
        Ok(capabilities) => {
            v.state = VerificationState::Verified;
            v.reason = None;
            v.failures = 0;
            v.verified_at = Some(at.to_string());
            v.capabilities = capabilities.clone();
        }
        Err(why) => {
            if v.state == VerificationState::Verified {
                v.state = VerificationState::Failed;
            }
            v.reason = Some(why.clone());
            v.failures = v.failures.saturating_add(1);
        }
    }
}

/// How long after its `failures`-th wrong answer in a row an endpoint is asked again.
fn backoff(settings: &VerificationConfig, failures: u32) -> Duration {
    doubled(settings.retry_first, settings.retry_max, failures)
}

/// `first`, doubled for each of `failures` beyond the first, at most `most`.
fn doubled(first: Duration, most: Duration, failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(20);
    first.saturating_mul(1 << doublings).min(most)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> VerificationConfig {
        VerificationConfig {
            required: true,
            every: Duration::from_secs(7 * 86_400),
            timeout: Duration::from_secs(10),
            retry_first: Duration::from_secs(30),
            retry_max: Duration::from_secs(3_600),
        }
    }

    #[test]
    fn wrong_answers_back_off_by_doubling_up_to_the_most() {
        let s = settings();
        let secs: Vec<u64> = (1..=9).map(|n| backoff(&s, n).as_secs()).collect();
        assert_eq!(secs, [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]);
        assert_eq!(backoff(&s, u32::MAX).as_secs(), 3600);
    }

    #[test]
    fn a_wrong_answer_fails_a_verified_endpoint_and_leaves_a_pending_one_pending() {
        let mut v = Verification::pending();
        record(&mut v, &Err("answered 500, not 200".into()), "t1");
        assert_eq!(v.state, VerificationState::Pending);
        assert_eq!(
            (v.failures, v.reason.as_deref()),
            (1, Some("answered 500, not 200"))
        );
        let declared = Capabilities {
            max_rate_per_second: Some(5),
            ..Capabilities::default()
        };
        record(&mut v, &Ok(declared.clone()), "t2");
        assert_eq!(v.state, VerificationState::Verified);
        assert_eq!((v.failures, v.reason.as_deref()), (0, None));
        assert_eq!(v.verified_at.as_deref(), Some("t2"));
        assert_eq!(v.capabilities, declared);
        record(&mut v, &Err("no answer".into()), "t3");
        assert_eq!(v.state, VerificationState::Failed);
        assert_eq!(v.verified_at.as_deref(), Some("t2"));
        assert_eq!(v.checked_at.as_deref(), Some("t3"));
    }
}
