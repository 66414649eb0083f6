//! An endpoint as stored: where a tenant's events go, which types it takes
//! (each maybe at a schema version), its plugins, flow settings and signing
//! secrets, its verification (the ownership handshake and what the
//! consumer declared in it), and what it answers about itself.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::endpoint_parts::{
    Batching, Capabilities, EndpointSecret, KeyPem, Mode, OnPluginError, PluginRef, Quarantine,
    Subscription, Verification, VerificationState,
};
use crate::model::{EndpointId, IngestEntry, Secret, SignatureScheme, SigningKey};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Endpoint {
    pub id: EndpointId,
    pub url: String,
    pub description: String,
    /// The consumer (`cs_...`) owning it; `None` for the tenant's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consumer_id: Option<String>,
    /// Labels it takes events of; none: events of any channel or of none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub channels: Vec<String>,
    /// Event types delivered here, each maybe at a schema version; empty means all.
    pub event_types: Vec<Subscription>,
    pub disabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled_reason: Option<String>,
    /// How its consumer gets events: pushed to `url`, or polled.
    #[serde(default, skip_serializing_if = "Mode::is_push")]
    pub mode: Mode,
    /// It gets the tenant's operational events (`endpoint.quarantined`,
    /// `message.attempt.exhausted`, ...), except those about itself.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub operational: bool,
    /// Where deliveries go instead while its circuit is open or it is
    /// quarantined for failing, in order (at most 3).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failover_urls: Vec<String>,
    /// mTLS: the client certificate (PEM, leaf first) its deliveries
    /// present, with its private key (PEM, never shown); and the CAs (PEM)
    /// its server's certificate must chain to, instead of the web roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_cert_pem: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_key_pem: Option<KeyPem>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_pem: Option<String>,
    /// Extra headers sent with every delivery.
    pub headers: BTreeMap<String, String>,
    pub timeout_ms: Option<u64>,
    /// Its own delay before each attempt (`"5s"`, `"10m"`, ...), instead of
    /// `delivery.retry_schedule`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_schedule: Option<Vec<String>>,
    /// Deliveries per second to this endpoint, across all instances; the
    /// tenant's `endpoint_per_second` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_per_second: Option<u64>,
    /// Requests in flight to this endpoint at once, across all instances.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_in_flight: Option<u32>,
    /// Events sent together, as one JSON array in one request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<Batching>,
    /// Plugins every event for this endpoint passes through, in order.
    #[serde(default)]
    pub plugins: Vec<PluginRef>,
    /// What happens to an event when a plugin fails on it.
    #[serde(default)]
    pub on_plugin_error: OnPluginError,
    pub created_at: String,
    pub updated_at: String,
    /// How its deliveries are signed: `hmac` (`whsec_` secrets) or
    /// `ed25519` (`whsk_` private keys).
    #[serde(default, skip_serializing_if = "SignatureScheme::is_hmac")]
    pub signature: SignatureScheme,
    /// The current secret (or key) first; older ones while their overlap lasts.
    pub secrets: Vec<EndpointSecret>,
    /// Its ownership handshake; `None` for an endpoint created while
    /// verification was not required (it is never held back for it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification: Option<Verification>,
    /// Set while the endpoint is quarantined: its events are parked and
    /// (unless the tenant quarantined it) a probe goes now and then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quarantine: Option<Quarantine>,
}

impl Endpoint {
    pub fn subscribes_to(&self, event_type: &str) -> bool {
        self.event_types.is_empty()
            || self
                .event_types
                .iter()
                .any(|s| s.event_type() == event_type)
    }

    /// Whether a new event of `event_type` goes here: enabled and subscribed.
    pub fn takes(&self, event_type: &str) -> bool {
        !self.disabled && self.subscribes_to(event_type)
    }

    /// Whether the event of an ingest entry goes here: an operational
    /// event (about endpoint `about`) to every enabled operational endpoint
    /// but that one, any other as [`Endpoint::takes`] and
    /// [`Endpoint::addressed_by`] say.
    pub fn takes_entry(&self, entry: &IngestEntry) -> bool {
        match entry.about.as_deref() {
            Some(about) => !self.disabled && self.operational && self.id.as_str() != about,
            None => self.takes(&entry.event_type) && self.addressed_by(entry),
        }
    }

    /// Whether an event's audience takes in this endpoint. An event for
    /// some consumers goes only to their endpoints; an event for none, to
    /// every endpoint. An endpoint with channels takes only events of one
    /// of them; one without, events of any channel or of none.
    pub fn addressed_by(&self, entry: &IngestEntry) -> bool {
        let consumer = entry.consumers.is_empty()
            || self
                .consumer_id
                .as_ref()
                .is_some_and(|mine| entry.consumers.contains(mine));
        let channel =
            self.channels.is_empty() || entry.channels.iter().any(|c| self.channels.contains(c));
        consumer && channel
    }

    /// Why its events must wait now, if they must: it is quarantined, or it
    /// has not passed its handshake ([`Endpoint::unverified`]).
    pub fn held(&self, required: bool) -> Option<String> {
        match &self.quarantine {
            Some(q) => Some(format!("quarantined: {}", q.reason)),
            None => self.unverified(required),
        }
    }

    /// Whether it is quarantined for failing but may take its events at
    /// its failover URLs: it has some, and nothing else holds it.
    pub fn fails_over(&self, required: bool) -> bool {
        !self.failover_urls.is_empty()
            && self.quarantine.as_ref().is_some_and(|q| !q.by_tenant)
            && self.unverified(required).is_none()
    }

    /// Why its events must wait for a handshake now, if they must:
    /// verification is `required`, the endpoint is not exempt, and it has
    /// not answered (or failed) its last handshake.
    pub fn unverified(&self, required: bool) -> Option<String> {
        let v = self
            .verification
            .as_ref()
            .filter(|v| required && !v.exempt)?;
        let why = match v.state {
            VerificationState::Verified => return None,
            VerificationState::Pending => {
                "the endpoint has not answered its verification request yet"
            }
            VerificationState::Failed => "the endpoint failed its last verification",
        };
        Some(match &v.reason {
            Some(reason) => format!("{why}: {reason}"),
            None => why.to_string(),
        })
    }

    fn declared(&self) -> Option<&Capabilities> {
        self.verification
            .as_ref()
            .filter(|v| v.state == VerificationState::Verified)
            .map(|v| &v.capabilities)
    }

    /// Deliveries per second: `configured` (the endpoint's or its tenant's,
    /// 0 or `None` for unlimited), never above what the consumer declared.
    pub fn rate_limit(&self, configured: Option<u64>) -> Option<u64> {
        let configured = configured.filter(|r| *r > 0);
        let declared = self.declared().and_then(|c| c.max_rate_per_second);
        lowest(configured, declared)
    }

    /// Requests in flight at once: the endpoint's cap, never above the
    /// consumer's declared one.
    pub fn in_flight_cap(&self) -> Option<u32> {
        let declared = self.declared().and_then(|c| c.max_in_flight);
        lowest(self.max_in_flight.filter(|c| *c > 0), declared)
    }

    /// Its batching, unless the consumer declared it takes no batches.
    pub fn batching(&self) -> Option<Batching> {
        let refused = self.declared().and_then(|c| c.accepts_batches) == Some(false);
        self.batch.filter(|_| !refused && self.mode.is_push())
    }

    /// The schema version this endpoint wants events of `event_type` at.
    pub fn wanted_version(&self, event_type: &str) -> Option<u32> {
        self.event_types
            .iter()
            .find(|s| s.event_type() == event_type)
            .and_then(Subscription::version)
    }

    /// Keys that sign now, of either scheme: the current one and any still
    /// in their overlap.
    pub fn live_keys(&self, now_ms: u64) -> Vec<SigningKey> {
        self.secrets
            .iter()
            .filter(|s| s.expires_at_ms.is_none_or(|at| at > now_ms))
            .filter_map(|s| SigningKey::parse(&s.secret))
            .collect()
    }

    /// The HMAC secrets among [`Endpoint::live_keys`]: what a handshake
    /// answer may key its HMAC of the challenge with. An `ed25519`
    /// endpoint has none (its consumer holds only public keys).
    pub fn live_secrets(&self, now_ms: u64) -> Vec<Secret> {
        self.live_keys(now_ms)
            .into_iter()
            .filter_map(|k| match k {
                SigningKey::Hmac(s) => Some(s),
                SigningKey::Ed25519(_) => None,
            })
            .collect()
    }

    /// Signs with `scheme` from now on. A change of scheme replaces every
    /// secret or key, at once and with no overlap, by one new key of the
    /// new scheme; the same scheme keeps them.
    pub fn set_signature(&mut self, scheme: SignatureScheme) {
        if scheme == self.signature {
            return;
        }
        self.signature = scheme;
        self.secrets = vec![EndpointSecret {
            secret: SigningKey::generate(scheme).expose(),
            expires_at_ms: None,
        }];
    }

    /// Makes a new current secret (or key, of the endpoint's scheme); the
    /// old one keeps signing until `overlap_ends_ms`.
    pub fn rotate_secret(&mut self, now_ms: u64, overlap_ends_ms: u64) {
        self.secrets
            .retain(|s| s.expires_at_ms.is_none_or(|at| at > now_ms));
        for old in &mut self.secrets {
            old.expires_at_ms = Some(
                old.expires_at_ms
                    .map_or(overlap_ends_ms, |at| at.min(overlap_ends_ms)),
            );
        }
        self.secrets.insert(
            0,
            EndpointSecret {
                secret: SigningKey::generate(self.signature).expose(),
                expires_at_ms: None,
            },
        );
    }
}

fn lowest<T: Ord>(a: Option<T>, b: Option<T>) -> Option<T> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests;
