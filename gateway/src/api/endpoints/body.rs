//! The request and response bodies of endpoints: what creates one, what
//! changes one, and how the API shows one.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

use crate::model::SignatureScheme;
use crate::store::{
    Batching, Circuit, Endpoint, Mode, OnPluginError, PluginRef, Quarantine, Subscription,
    Verification,
};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EndpointIn {
    /// Where deliveries are POSTed (may be left out in poll mode).
    #[serde(default)]
    pub(super) url: String,
    /// `push` (the default) or `poll`.
    #[serde(default)]
    pub(super) mode: Mode,
    #[serde(default)]
    pub(super) description: String,
    /// The consumer (`cs_...`) owning it; a key limited to a consumer makes
    /// endpoints of that consumer only. Never changed afterwards.
    pub(super) consumer_id: Option<String>,
    /// It takes only events of one of these channels (up to 100, each up
    /// to 128 letters, digits and `._:-`); none: events of any channel.
    #[serde(default)]
    pub(super) channels: Vec<String>,
    #[serde(default)]
    pub(super) event_types: Vec<Subscription>,
    #[serde(default)]
    pub(super) disabled: bool,
    /// Where deliveries go while its circuit is open or it is quarantined.
    #[serde(default)]
    pub(super) failover_urls: Vec<String>,
    /// mTLS: the client certificate (PEM, leaf first) deliveries present,
    /// with `client_key_pem` (its private key, PEM; never shown again);
    /// `ca_pem`: the CAs (PEM) the endpoint's certificate must chain to,
    /// instead of the web roots.
    pub(super) client_cert_pem: Option<String>,
    pub(super) client_key_pem: Option<String>,
    pub(super) ca_pem: Option<String>,
    /// It gets the tenant's operational events (but those about itself).
    #[serde(default)]
    pub(super) operational: bool,
    #[serde(default)]
    pub(super) headers: BTreeMap<String, String>,
    pub(super) timeout_ms: Option<u64>,
    /// Its own delay before each attempt, instead of the gateway's.
    pub(super) retry_schedule: Option<Vec<String>>,
    pub(super) rate_per_second: Option<u64>,
    pub(super) max_in_flight: Option<u32>,
    pub(super) batch: Option<Batching>,
    /// A `whsec_...` secret to use instead of a generated one (`hmac` only).
    pub(super) secret: Option<String>,
    /// `hmac` (the default: `v1,` signatures with a shared `whsec_...`
    /// secret) or `ed25519` (`v1a,` signatures, verified with the
    /// endpoint's `whpk_...` public key; the gateway makes the key pair).
    #[serde(default)]
    pub(super) signature: SignatureScheme,
    #[serde(default)]
    pub(super) plugins: Vec<PluginRef>,
    #[serde(default)]
    pub(super) on_plugin_error: OnPluginError,
}

/// The fields to change; those left out keep their value.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EndpointPatch {
    url: Option<String>,
    description: Option<String>,
    channels: Option<Vec<String>>,
    event_types: Option<Vec<Subscription>>,
    disabled: Option<bool>,
    headers: Option<BTreeMap<String, String>>,
    failover_urls: Option<Vec<String>>,
    /// `null` removes the client certificate (and `client_key_pem` its key).
    #[serde(default, deserialize_with = "present")]
    client_cert_pem: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    client_key_pem: Option<Option<String>>,
    /// `null` goes back to the web roots.
    #[serde(default, deserialize_with = "present")]
    ca_pem: Option<Option<String>>,
    operational: Option<bool>,
    /// `null` goes back to the default timeout.
    #[serde(default, deserialize_with = "present")]
    timeout_ms: Option<Option<u64>>,
    /// `null` goes back to the gateway's retry schedule.
    #[serde(default, deserialize_with = "present")]
    retry_schedule: Option<Option<Vec<String>>>,
    /// `null` goes back to the tenant's default rate.
    #[serde(default, deserialize_with = "present")]
    rate_per_second: Option<Option<u64>>,
    /// `null` removes the cap.
    #[serde(default, deserialize_with = "present")]
    max_in_flight: Option<Option<u32>>,
    /// `null` turns batching off.
    #[serde(default, deserialize_with = "present")]
    batch: Option<Option<Batching>>,
    plugins: Option<Vec<PluginRef>>,
    on_plugin_error: Option<OnPluginError>,
    /// `hmac` or `ed25519`. A change of scheme replaces the endpoint's
    /// secrets (or keys) at once, with no overlap, by one new secret (or
    /// key pair) of the new scheme; the same scheme keeps them.
    signature: Option<SignatureScheme>,
}

impl EndpointPatch {
    /// The URLs it sets: its `url`, its `failover_urls`.
    pub(super) fn urls(&self) -> (Option<&str>, Option<&[String]>) {
        (self.url.as_deref(), self.failover_urls.as_deref())
    }

    /// Sets every field the patch names.
    pub(super) fn apply(&self, endpoint: &mut Endpoint) {
        if let Some(url) = &self.url {
            endpoint.url = url.clone();
        }
        if let Some(description) = &self.description {
            endpoint.description = description.clone();
        }
        if let Some(channels) = &self.channels {
            endpoint.channels = channels.clone();
        }
        if let Some(types) = &self.event_types {
            endpoint.event_types = types.clone();
        }
        if let Some(disabled) = &self.disabled {
            endpoint.disabled = *disabled;
            endpoint.disabled_reason = None;
        }
        if let Some(headers) = &self.headers {
            endpoint.headers = headers.clone();
        }
        if let Some(urls) = &self.failover_urls {
            endpoint.failover_urls = urls.clone();
        }
        if let Some(cert) = &self.client_cert_pem {
            endpoint.client_cert_pem = cert.clone();
        }
        if let Some(key) = &self.client_key_pem {
            endpoint.client_key_pem = key.clone().map(Into::into);
        }
        if let Some(ca) = &self.ca_pem {
            endpoint.ca_pem = ca.clone();
        }
        if let Some(operational) = self.operational {
            endpoint.operational = operational;
        }
        if let Some(timeout) = &self.timeout_ms {
            endpoint.timeout_ms = *timeout;
        }
        if let Some(schedule) = &self.retry_schedule {
            endpoint.retry_schedule = schedule.clone();
        }
        if let Some(rate) = &self.rate_per_second {
            endpoint.rate_per_second = *rate;
        }
        if let Some(cap) = &self.max_in_flight {
            endpoint.max_in_flight = *cap;
        }
        if let Some(batch) = &self.batch {
            endpoint.batch = *batch;
        }
        if let Some(plugins) = &self.plugins {
            endpoint.plugins = plugins.clone();
        }
        if let Some(policy) = &self.on_plugin_error {
            endpoint.on_plugin_error = *policy;
        }
        if let Some(scheme) = self.signature {
            endpoint.set_signature(scheme);
        }
    }
}

/// Tells a field sent as `null` (`Some(None)`) from a field left out (`None`).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// Where an endpoint stands: whether it gets events now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EndpointState {
    /// Its events wait (parked) for its ownership handshake.
    Pending,
    /// It gets events.
    Active,
    /// It kept failing, or its tenant quarantined it: its events wait
    /// (parked) until a probe passes or it is released.
    Quarantined,
    /// Disabled by the tenant, or by a `410 Gone`.
    Disabled,
}

/// An endpoint as the API shows it: never its secrets.
#[derive(Serialize, ToSchema)]
pub struct EndpointOut<'a> {
    id: &'a str,
    url: &'a str,
    mode: Mode,
    state: EndpointState,
    /// Why it is pending or quarantined, when it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    state_reason: Option<String>,
    /// Why and since when it is quarantined, and how its probes went.
    #[serde(skip_serializing_if = "Option::is_none")]
    quarantine: Option<&'a Quarantine>,
    /// Its ownership handshake; absent for an endpoint created while
    /// verification was not required.
    #[serde(skip_serializing_if = "Option::is_none")]
    verification: Option<&'a Verification>,
    description: &'a str,
    /// The consumer owning it, if one does.
    #[serde(skip_serializing_if = "Option::is_none")]
    consumer_id: Option<&'a str>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    channels: &'a [String],
    event_types: &'a [Subscription],
    disabled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    disabled_reason: Option<&'a str>,
    headers: &'a BTreeMap<String, String>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    failover_urls: &'a [String],
    /// Its deliveries present a client certificate (its key is never shown).
    client_cert: bool,
    /// Its certificate must chain to its own `ca_pem`, not the web roots.
    own_ca: bool,
    operational: bool,
    timeout_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    retry_schedule: Option<&'a [String]>,
    rate_per_second: Option<u64>,
    max_in_flight: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    batch: Option<Batching>,
    plugins: &'a [PluginRef],
    on_plugin_error: OnPluginError,
    /// How its deliveries are signed: `hmac` or `ed25519`.
    signature: SignatureScheme,
    created_at: &'a str,
    updated_at: &'a str,
    /// Shown when one endpoint is read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) circuit: Option<Circuit>,
    /// Its health over the last 5 minutes and hour; shown when one endpoint is read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) health: Option<crate::readiness::health::Health>,
    /// Deliveries parked (pending or quarantined); shown when one endpoint is read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) parked: Option<u64>,
    /// RFC 3339: when its next handshake is due; shown when one endpoint is read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) next_verification_at: Option<String>,
}

impl<'a> EndpointOut<'a> {
    /// `e` as shown when verification is `required` (or not).
    pub(super) fn of(e: &'a Endpoint, required: bool) -> Self {
        let held = e.held(required);
        let state = match (&held, e.disabled) {
            (_, true) => EndpointState::Disabled,
            (Some(_), false) if e.quarantine.is_some() => EndpointState::Quarantined,
            (Some(_), false) => EndpointState::Pending,
            (None, false) => EndpointState::Active,
        };
        EndpointOut {
            id: &e.id,
            url: &e.url,
            mode: e.mode,
            state,
            state_reason: held,
            quarantine: e.quarantine.as_ref(),
            verification: e.verification.as_ref(),
            description: &e.description,
            consumer_id: e.consumer_id.as_deref(),
            channels: &e.channels,
            event_types: &e.event_types,
            disabled: e.disabled,
            disabled_reason: e.disabled_reason.as_deref(),
            headers: &e.headers,
            failover_urls: &e.failover_urls,
            client_cert: e.client_cert_pem.is_some(),
            own_ca: e.ca_pem.is_some(),
            operational: e.operational,
            timeout_ms: e.timeout_ms,
            retry_schedule: e.retry_schedule.as_deref(),
            rate_per_second: e.rate_per_second,
            max_in_flight: e.max_in_flight,
            batch: e.batch,
            plugins: &e.plugins,
            on_plugin_error: e.on_plugin_error,
            signature: e.signature,
            created_at: &e.created_at,
            updated_at: &e.updated_at,
            circuit: None,
            health: None,
            parked: None,
            next_verification_at: None,
        }
    }
}
