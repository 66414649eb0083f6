//! The checks of an endpoint before it is stored: its fields, and what it
//! refers to (plugins, and event types subscribed at a version).

use crate::api::validate;
use crate::error::ApiResult;
use crate::model::FieldError;
use crate::state::AppState;
use crate::store::{Endpoint, Subscription};

pub(super) fn check_fields(state: &AppState, endpoint: &Endpoint, errors: &mut Vec<FieldError>) {
    let config = &state.config.delivery;
    if endpoint.mode.is_push() || !endpoint.url.is_empty() {
        validate::url(&endpoint.url, config.allow_private_destinations, errors);
    }
    if !endpoint.mode.is_push() {
        if endpoint.batch.is_some() {
            errors.push(FieldError::new("/batch", "a poll endpoint does not batch"));
        }
        if !endpoint.failover_urls.is_empty() {
            errors.push(FieldError::new(
                "/failover_urls",
                "a poll endpoint is never pushed to",
            ));
        }
    }
    if endpoint.description.len() > 1024 {
        errors.push(FieldError::new(
            "/description",
            "must be at most 1024 characters",
        ));
    }
    validate::labels("/channels", &endpoint.channels, errors);
    if endpoint.event_types.len() > 256 {
        errors.push(FieldError::new(
            "/event_types",
            "may list at most 256 types",
        ));
    }
    for (i, s) in endpoint.event_types.iter().enumerate() {
        match s {
            Subscription::Any(t) => validate::event_type(&format!("/event_types/{i}"), t, errors),
            Subscription::Versioned(v) => {
                validate::event_type(&format!("/event_types/{i}/type"), &v.event_type, errors)
            }
        }
    }
    if endpoint.failover_urls.len() > MAX_FAILOVERS {
        errors.push(FieldError::new(
            "/failover_urls",
            format!("may list at most {MAX_FAILOVERS} URLs"),
        ));
    }
    for (i, url) in endpoint.failover_urls.iter().enumerate() {
        let mut found = Vec::new();
        validate::url(url, config.allow_private_destinations, &mut found);
        errors.extend(found.into_iter().map(|e| FieldError {
            pointer: format!("/failover_urls/{i}"),
            ..e
        }));
    }
    check_tls(endpoint, errors);
    if endpoint.headers.len() > 32 {
        errors.push(FieldError::new("/headers", "may hold at most 32 headers"));
    }
    for (name, value) in &endpoint.headers {
        validate::extra_header(name, value, errors);
    }
    if let Some(ms) = endpoint.timeout_ms
        && !(1..=config.max_timeout_ms).contains(&ms)
    {
        errors.push(FieldError::new(
            "/timeout_ms",
            format!("must be between 1 and {}", config.max_timeout_ms),
        ));
    }
    if let Some(schedule) = &endpoint.retry_schedule {
        validate::retry_schedule(&state.config, schedule, errors);
    }
    if let Some(rate) = endpoint.rate_per_second
        && !(1..=MAX_RATE).contains(&rate)
    {
        errors.push(FieldError::new(
            "/rate_per_second",
            format!("must be between 1 and {MAX_RATE}"),
        ));
    }
    if let Some(cap) = endpoint.max_in_flight
        && !(1..=MAX_IN_FLIGHT).contains(&cap)
    {
        errors.push(FieldError::new(
            "/max_in_flight",
            format!("must be between 1 and {MAX_IN_FLIGHT}"),
        ));
    }
    if let Some(batch) = endpoint.batch {
        if !(2..=MAX_BATCH_EVENTS).contains(&batch.max_events) {
            errors.push(FieldError::new(
                "/batch/max_events",
                format!("must be between 2 and {MAX_BATCH_EVENTS}"),
            ));
        }
        if !(1..=MAX_BATCH_WAIT_MS).contains(&batch.max_wait_ms) {
            errors.push(FieldError::new(
                "/batch/max_wait_ms",
                format!("must be between 1 and {MAX_BATCH_WAIT_MS}"),
            ));
        }
    }
}

/// Its client certificate, key and CA: PEM that its deliveries' TLS takes,
/// and only on an endpoint reached over `https://`.
fn check_tls(endpoint: &Endpoint, errors: &mut Vec<FieldError>) {
    let key = endpoint.client_key_pem.as_ref().map(|k| k.expose());
    let (cert, ca) = (
        endpoint.client_cert_pem.as_deref(),
        endpoint.ca_pem.as_deref(),
    );
    errors.extend(crate::delivery::tls::tls_problems(cert, key, ca));
    let plain = endpoint.url.starts_with("http://")
        || endpoint
            .failover_urls
            .iter()
            .any(|u| u.starts_with("http://"));
    if plain && (cert.is_some() || ca.is_some()) {
        let pointer = if cert.is_some() {
            "/client_cert_pem"
        } else {
            "/ca_pem"
        };
        errors.push(FieldError::new(
            pointer,
            "is used over TLS only: every URL of the endpoint must be https://",
        ));
    }
}

/// Under `https_only` (the tenant's setting, else the operator's
/// `delivery.https_only`), the URLs given (`url`, `failover_urls`) must be
/// `https://`. Only those a request sets are checked, so an older `http://`
/// endpoint can still be disabled or moved to `https://`.
pub(super) async fn check_https(
    state: &AppState,
    tenant: &str,
    (url, failover_urls): (Option<&str>, Option<&[String]>),
    errors: &mut Vec<FieldError>,
) -> ApiResult<()> {
    let plain = |u: &str| !u.is_empty() && !u.starts_with("https://");
    let failover = failover_urls.unwrap_or_default();
    if !url.is_some_and(plain) && !failover.iter().any(|u| plain(u)) {
        return Ok(());
    }
    let settings = &state.contracts.get(tenant).await?.settings;
    if !settings
        .https_only
        .unwrap_or(state.config.delivery.https_only)
    {
        return Ok(());
    }
    let message = "must be https:// (https_only is on)";
    if url.is_some_and(plain) {
        errors.push(FieldError::new("/url", message));
    }
    for (i, u) in failover.iter().enumerate() {
        if plain(u) {
            errors.push(FieldError::new(format!("/failover_urls/{i}"), message));
        }
    }
    Ok(())
}

/// Most failover URLs an endpoint may list.
const MAX_FAILOVERS: usize = 3;

/// Highest delivery rate an endpoint may ask for, in events per second.
const MAX_RATE: u64 = 100_000;
/// Highest cap on requests in flight an endpoint may set.
const MAX_IN_FLIGHT: u32 = 10_000;

/// Most events one batch may hold.
const MAX_BATCH_EVENTS: u32 = 100;
/// Longest a batch may wait for more events, in ms.
const MAX_BATCH_WAIT_MS: u64 = 10_000;

/// Longest plugin chain an endpoint may have.
const MAX_CHAIN: usize = 8;

/// Every plugin in the chain exists (and the version, when one is pinned),
/// and every subscription at a version names a registered version.
pub(super) async fn check_references(
    state: &AppState,
    tenant: &str,
    endpoint: &Endpoint,
    errors: &mut Vec<FieldError>,
) -> ApiResult<()> {
    if let Some(consumer) = &endpoint.consumer_id
        && state.store.consumer(tenant, consumer).await?.is_none()
    {
        errors.push(FieldError::new("/consumer_id", "no such consumer"));
    }
    if endpoint.plugins.len() > MAX_CHAIN {
        errors.push(FieldError::new(
            "/plugins",
            format!("may hold at most {MAX_CHAIN} plugins"),
        ));
        return Ok(());
    }
    let contracts = state.contracts.get(tenant).await?;
    for (i, s) in endpoint.event_types.iter().enumerate() {
        let Some(version) = s.version() else {
            continue;
        };
        match contracts.event_type(s.event_type()) {
            None => errors.push(FieldError::new(
                format!("/event_types/{i}/type"),
                "is not a registered event type (subscribing at a version needs one)",
            )),
            Some(t) if t.version(version).is_none() => errors.push(FieldError::new(
                format!("/event_types/{i}/version"),
                "no such version of this event type",
            )),
            Some(_) => {}
        }
    }
    for (i, link) in endpoint.plugins.iter().enumerate() {
        let (at_name, at_version) = (
            format!("/plugins/{i}/name"),
            format!("/plugins/{i}/version"),
        );
        crate::api::plugins::check_reference(
            state,
            tenant,
            (&link.name, &at_name),
            (link.version, &at_version),
            errors,
        )
        .await?;
    }
    Ok(())
}
