//! The parts of a stored endpoint: how it gets its events (mode,
//! subscriptions, batching, plugins), its secrets, its standing (quarantine,
//! verification and what the consumer declared) and its circuit as shown.

use serde::{Deserialize, Serialize};

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
