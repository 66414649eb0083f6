//! An endpoint as stored: where a tenant's events go, which types it takes
//! (each maybe at a schema version), its plugins, flow settings and signing
//! secrets, its verification (the ownership handshake and what the
//! consumer declared in it), and what it answers about itself.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

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

/// How an endpoint's consumer gets its events.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// POSTed to its `url`.
    #[default]
    Push,
    /// Never pushed: kept in its poll channel for `GET .../poll`.
    Poll,
}

impl Mode {
    pub fn is_push(&self) -> bool {
        *self == Mode::Push
    }
}

/// Why and since when an endpoint is quarantined, and how its probes went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Quarantine {
    /// RFC 3339.
    pub since: String,
    pub reason: String,
    /// Quarantined by the tenant: no probes, released only by hand.
    #[serde(default)]
    pub by_tenant: bool,
    /// Probes that failed so far (the next one backs off by them).
    #[serde(default)]
    pub probes: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_probe_error: Option<String>,
}

/// Where an endpoint's ownership handshake stands, and what the consumer
/// declared in its last good answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Verification {
    pub state: VerificationState,
    /// Why the last handshake failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Handshakes failed in a row (the next one backs off by them).
    #[serde(default)]
    pub failures: u32,
    /// RFC 3339, of the last good handshake.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified_at: Option<String>,
    /// RFC 3339, of the last handshake, good or not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checked_at: Option<String>,
    /// What the consumer declared in its last good answer.
    #[serde(default)]
    pub capabilities: Capabilities,
    /// Set by the operator: events are sent without a handshake.
    #[serde(default)]
    pub exempt: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum VerificationState {
    /// Never answered a handshake right: its events wait.
    Pending,
    /// Answered the last handshake right.
    Verified,
    /// Was verified, then failed a handshake: its events wait again.
    Failed,
}

/// Limits a consumer declared in its handshake answer; the gateway never
/// goes past them, whatever the tenant set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Capabilities {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_rate_per_second: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_in_flight: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepts_batches: Option<bool>,
    /// Schema versions the consumer says it takes (recorded, shown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub versions: Option<Vec<u32>>,
}

impl Verification {
    pub fn pending() -> Verification {
        Verification {
            state: VerificationState::Pending,
            reason: None,
            failures: 0,
            verified_at: None,
            checked_at: None,
            capabilities: Capabilities::default(),
            exempt: false,
        }
    }
}

/// One event type an endpoint takes: `"order.created"` (at whatever version
/// each event has) or `{"type": "order.created", "version": 2}` (every event
/// of the type rewritten to version 2 by the tenant's version transforms).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(
    untagged,
    expecting = "an event type, or {\"type\": ..., \"version\": ...}"
)]
pub enum Subscription {
    Any(String),
    Versioned(VersionedSubscription),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VersionedSubscription {
    #[serde(rename = "type")]
    pub event_type: String,
    pub version: u32,
}

impl Subscription {
    pub fn event_type(&self) -> &str {
        match self {
            Subscription::Any(t) => t,
            Subscription::Versioned(v) => &v.event_type,
        }
    }

    pub fn version(&self) -> Option<u32> {
        match self {
            Subscription::Any(_) => None,
            Subscription::Versioned(v) => Some(v.version),
        }
    }
}

/// An endpoint's batching: a batch is sent once it holds `max_events`
/// events, or `max_wait_ms` after its first event was collected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Batching {
    pub max_events: u32,
    pub max_wait_ms: u64,
}

/// One link of an endpoint's plugin chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PluginRef {
    pub name: String,
    /// A fixed version; the newest when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
    /// The plugin's configuration on this endpoint (any JSON; `{}` by default).
    #[serde(default = "empty_object")]
    pub config: serde_json::Value,
}

fn empty_object() -> serde_json::Value {
    serde_json::Value::Object(serde_json::Map::new())
}

/// Where an event goes when a plugin traps, runs out of budget or errs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnPluginError {
    /// To the dead letters, with the reason (redelivery runs the chain again).
    #[default]
    DeadLetter,
    /// Past the failing plugin, as if it had passed the event on unchanged.
    Skip,
    /// Nowhere: it is dropped for this endpoint, with the reason recorded.
    Drop,
}

#[derive(Clone, Serialize, Deserialize)]
pub struct EndpointSecret {
    /// Stored sealed, with an encryption key set.
    #[serde(with = "crate::model::sealed::text")]
    pub secret: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at_ms: Option<u64>,
}

impl std::fmt::Debug for EndpointSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EndpointSecret")
            .field("secret", &"[redacted]")
            .field("expires_at_ms", &self.expires_at_ms)
            .finish()
    }
}

/// A private key in PEM: stored (sealed, with an encryption key set),
/// used for TLS, never shown (`Debug` too).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct KeyPem(#[serde(with = "crate::model::sealed::text")] String);

impl KeyPem {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for KeyPem {
    fn from(pem: String) -> Self {
        KeyPem(pem)
    }
}

impl std::fmt::Debug for KeyPem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyPem([redacted])")
    }
}

/// An endpoint's circuit breaker as the API shows it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct Circuit {
    pub state: CircuitState,
    /// Failed attempts in a row.
    pub failures: u64,
    /// When an open circuit lets a probe through.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub open_until: Option<String>,
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CircuitState {
    Closed,
    Open,
    HalfOpen,
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
mod tests {
    use super::*;

    fn endpoint() -> Endpoint {
        Endpoint {
            id: "ep_1".into(),
            url: "https://example.com/hook".into(),
            description: String::new(),
            consumer_id: None,
            channels: vec![],
            event_types: vec![],
            disabled: false,
            disabled_reason: None,
            mode: Mode::Push,
            operational: false,
            failover_urls: vec![],
            client_cert_pem: None,
            client_key_pem: None,
            ca_pem: None,
            headers: BTreeMap::new(),
            timeout_ms: None,
            retry_schedule: None,
            rate_per_second: None,
            max_in_flight: None,
            batch: None,
            plugins: vec![],
            on_plugin_error: OnPluginError::default(),
            created_at: String::new(),
            updated_at: String::new(),
            signature: SignatureScheme::Hmac,
            secrets: vec![EndpointSecret {
                secret: Secret::generate().expose(),
                expires_at_ms: None,
            }],
            verification: None,
            quarantine: None,
        }
    }

    fn entry(event_type: &str, about: Option<&str>) -> IngestEntry {
        IngestEntry {
            tenant: "tn_a".into(),
            event: "evt_1".into(),
            event_type: event_type.into(),
            version: None,
            timestamp: String::new(),
            about: about.map(str::to_string),
            consumers: vec![],
            channels: vec![],
        }
    }

    #[test]
    fn operational_events_go_to_operational_endpoints_but_the_one_they_are_about() {
        let mut ep = endpoint();
        ep.event_types = vec![Subscription::Any("order.created".into())];
        let quarantined = |about| entry("endpoint.quarantined", about);
        assert!(!ep.takes_entry(&quarantined(Some("ep_2"))));
        ep.operational = true;
        assert!(ep.takes_entry(&quarantined(Some("ep_2"))));
        assert!(!ep.takes_entry(&quarantined(Some("ep_1"))), "about itself");
        assert!(ep.takes_entry(&entry("order.created", None)));
        assert!(
            !ep.takes_entry(&quarantined(None)),
            "a producer's event of that name"
        );
        ep.disabled = true;
        assert!(!ep.takes_entry(&quarantined(Some("ep_2"))));
    }

    #[test]
    fn an_event_for_consumers_goes_to_their_endpoints_only() {
        let mut mine = endpoint();
        mine.consumer_id = Some("cs_a".into());
        let tenants_own = endpoint();
        let mut event = entry("order.created", None);
        assert!(mine.takes_entry(&event) && tenants_own.takes_entry(&event));
        event.consumers = vec!["cs_b".into()];
        assert!(!mine.takes_entry(&event) && !tenants_own.takes_entry(&event));
        event.consumers.push("cs_a".into());
        assert!(mine.takes_entry(&event) && !tenants_own.takes_entry(&event));
    }

    #[test]
    fn an_endpoint_with_channels_takes_events_of_one_of_them() {
        let mut labelled = endpoint();
        labelled.channels = vec!["eu".into(), "beta".into()];
        let open = endpoint();
        let mut event = entry("order.created", None);
        assert!(!labelled.takes_entry(&event), "an event of no channel");
        assert!(open.takes_entry(&event));
        event.channels = vec!["us".into()];
        assert!(!labelled.takes_entry(&event) && open.takes_entry(&event));
        event.channels.push("beta".into());
        assert!(labelled.takes_entry(&event));
    }

    #[test]
    fn a_quarantined_endpoint_is_held_whatever_its_verification() {
        let mut ep = endpoint();
        assert_eq!(ep.held(true), None);
        ep.quarantine = Some(Quarantine {
            since: String::new(),
            reason: "failing for 1 h".into(),
            by_tenant: false,
            probes: 0,
            last_probe_error: None,
        });
        assert_eq!(ep.held(false).unwrap(), "quarantined: failing for 1 h");
        ep.quarantine = None;
        ep.verification = Some(Verification::pending());
        assert!(ep.held(true).unwrap().contains("verification"));
    }

    fn verified(capabilities: Capabilities) -> Option<Verification> {
        Some(Verification {
            state: VerificationState::Verified,
            capabilities,
            ..Verification::pending()
        })
    }

    #[test]
    fn events_wait_for_a_handshake_only_when_one_is_required_and_not_passed() {
        let mut ep = endpoint();
        assert_eq!(ep.unverified(true), None, "created without verification");
        ep.verification = Some(Verification::pending());
        assert!(ep.unverified(true).unwrap().contains("not answered"));
        assert_eq!(ep.unverified(false), None, "not required");
        ep.verification.as_mut().unwrap().exempt = true;
        assert_eq!(ep.unverified(true), None, "exempt");
        ep.verification = Some(Verification {
            state: VerificationState::Failed,
            reason: Some("answered 500".into()),
            ..Verification::pending()
        });
        assert_eq!(
            ep.unverified(true).unwrap(),
            "the endpoint failed its last verification: answered 500"
        );
        ep.verification = verified(Capabilities::default());
        assert_eq!(ep.unverified(true), None);
    }

    #[test]
    fn declared_capabilities_only_ever_lower_the_limits() {
        let mut ep = endpoint();
        ep.batch = Some(Batching {
            max_events: 10,
            max_wait_ms: 5,
        });
        assert_eq!(ep.rate_limit(Some(100)), Some(100));
        assert_eq!(ep.rate_limit(Some(0)), None);
        ep.verification = verified(Capabilities {
            max_rate_per_second: Some(10),
            max_in_flight: Some(4),
            accepts_batches: Some(false),
            versions: None,
        });
        assert_eq!(ep.rate_limit(Some(100)), Some(10));
        assert_eq!(ep.rate_limit(Some(5)), Some(5));
        assert_eq!(ep.rate_limit(None), Some(10));
        assert_eq!(ep.in_flight_cap(), Some(4));
        ep.max_in_flight = Some(2);
        assert_eq!(ep.in_flight_cap(), Some(2));
        assert_eq!(ep.batching(), None);
        ep.verification.as_mut().unwrap().state = VerificationState::Failed;
        assert_eq!(
            ep.rate_limit(Some(100)),
            Some(100),
            "only a verified answer counts"
        );
        assert!(ep.batching().is_some());
    }

    #[test]
    fn rotation_keeps_the_old_secret_for_the_overlap_only() {
        let mut ep = endpoint();
        let first = ep.live_secrets(0);
        ep.rotate_secret(1_000, 5_000);
        let live = ep.live_secrets(1_000);
        assert_eq!(live.len(), 2);
        assert_eq!(live[1], first[0]);
        assert_eq!(ep.live_secrets(5_000).len(), 1);
        assert_ne!(ep.live_secrets(5_000)[0], first[0]);
    }

    #[test]
    fn an_ed25519_endpoint_rotates_keys_and_has_no_hmac_secret() {
        let mut ep = endpoint();
        let hmac = ep.live_keys(0);
        ep.set_signature(SignatureScheme::Ed25519);
        let first = ep.live_keys(0);
        assert_eq!(first.len(), 1, "the old secret is gone at once");
        assert_ne!(first, hmac);
        assert_eq!(first[0].scheme(), SignatureScheme::Ed25519);
        assert!(ep.live_secrets(0).is_empty());
        ep.set_signature(SignatureScheme::Ed25519);
        assert_eq!(ep.live_keys(0), first, "the same scheme keeps its keys");
        ep.rotate_secret(1_000, 5_000);
        let live = ep.live_keys(1_000);
        assert_eq!(live.len(), 2);
        assert_eq!(live[0].scheme(), SignatureScheme::Ed25519);
        assert_eq!(live[1], first[0]);
        assert!(!format!("{ep:?}").contains("whsk_"));
        let stored = serde_json::to_value(&ep).unwrap();
        assert_eq!(stored["signature"], "ed25519");
    }

    #[test]
    fn an_endpoint_stored_before_schemes_signs_with_hmac() {
        let stored = serde_json::to_value(endpoint()).unwrap();
        assert!(stored.get("signature").is_none(), "hmac is left out");
        let ep: Endpoint = serde_json::from_value(stored).unwrap();
        assert!(ep.signature.is_hmac());
    }

    #[test]
    fn empty_event_types_subscribe_to_everything() {
        let mut ep = endpoint();
        assert!(ep.subscribes_to("a.b"));
        ep.event_types = vec![Subscription::Any("x".into())];
        assert!(!ep.subscribes_to("a.b"));
        assert!(ep.subscribes_to("x"));
        assert_eq!(ep.wanted_version("x"), None);
    }

    #[test]
    fn subscriptions_read_as_a_type_or_a_type_at_a_version() {
        let subs: Vec<Subscription> =
            serde_json::from_str(r#"["a.b", {"type": "c.d", "version": 2}]"#).unwrap();
        let mut ep = endpoint();
        ep.event_types = subs;
        assert!(ep.subscribes_to("a.b") && ep.subscribes_to("c.d"));
        assert_eq!(ep.wanted_version("c.d"), Some(2));
        assert_eq!(ep.wanted_version("a.b"), None);
        let refused = serde_json::from_str::<Vec<Subscription>>(r#"[{"type": "c.d"}]"#);
        assert!(refused.is_err());
    }

    #[test]
    fn debug_never_shows_secrets() {
        let mut ep = endpoint();
        ep.client_key_pem = Some(String::from("-----BEGIN PRIVATE KEY-----").into());
        let shown = format!("{ep:?}");
        assert!(!shown.contains("whsec_"));
        assert!(!shown.contains("PRIVATE KEY") && shown.contains("[redacted]"));
    }
}
