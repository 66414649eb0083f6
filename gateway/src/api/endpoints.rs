//! Endpoints: create, list, read, update, delete; their secret and its
//! rotation; their attempt log; replay from a point in time (a background
//! job, [`crate::delivery::replay`]).

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

use super::openapi::{BodyErrors, PageErrors, TenantErrors};
use super::{Json, PageQuery, Query, TenantId, validate};
use crate::error::{ApiError, ApiResult, PROBLEM_JSON, Problem};
use crate::model::clock::now_ms;
use crate::model::{FieldError, new_id};

use crate::state::AppState;
use crate::store::{
    AttemptRecord, Batching, Circuit, Endpoint, EndpointSecret, OnPluginError, Page, PluginRef,
    ReplayJob, ReplayState, Subscription,
};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EndpointIn {
    /// Where deliveries are POSTed.
    url: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    event_types: Vec<Subscription>,
    #[serde(default)]
    disabled: bool,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    timeout_ms: Option<u64>,
    rate_per_second: Option<u64>,
    max_in_flight: Option<u32>,
    batch: Option<Batching>,
    /// A `whsec_...` secret to use instead of a generated one.
    secret: Option<String>,
    #[serde(default)]
    plugins: Vec<PluginRef>,
    #[serde(default)]
    on_plugin_error: OnPluginError,
}

/// The fields to change; those left out keep their value.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EndpointPatch {
    url: Option<String>,
    description: Option<String>,
    event_types: Option<Vec<Subscription>>,
    disabled: Option<bool>,
    headers: Option<BTreeMap<String, String>>,
    /// `null` goes back to the default timeout.
    #[serde(default, deserialize_with = "present")]
    timeout_ms: Option<Option<u64>>,
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
}

impl EndpointPatch {
    /// Sets every field the patch names.
    fn apply(&self, endpoint: &mut Endpoint) {
        if let Some(url) = &self.url {
            endpoint.url = url.clone();
        }
        if let Some(description) = &self.description {
            endpoint.description = description.clone();
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
        if let Some(timeout) = &self.timeout_ms {
            endpoint.timeout_ms = *timeout;
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
    }
}

/// Tells a field sent as `null` (`Some(None)`) from a field left out (`None`).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// An endpoint as the API shows it: never its secrets.
#[derive(Serialize, ToSchema)]
pub struct EndpointOut<'a> {
    id: &'a str,
    url: &'a str,
    description: &'a str,
    event_types: &'a [Subscription],
    disabled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    disabled_reason: Option<&'a str>,
    headers: &'a BTreeMap<String, String>,
    timeout_ms: Option<u64>,
    rate_per_second: Option<u64>,
    max_in_flight: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    batch: Option<Batching>,
    plugins: &'a [PluginRef],
    on_plugin_error: OnPluginError,
    created_at: &'a str,
    updated_at: &'a str,
    /// Shown when one endpoint is read.
    #[serde(skip_serializing_if = "Option::is_none")]
    circuit: Option<Circuit>,
}

impl<'a> From<&'a Endpoint> for EndpointOut<'a> {
    fn from(e: &'a Endpoint) -> Self {
        EndpointOut {
            id: &e.id,
            url: &e.url,
            description: &e.description,
            event_types: &e.event_types,
            disabled: e.disabled,
            disabled_reason: e.disabled_reason.as_deref(),
            headers: &e.headers,
            timeout_ms: e.timeout_ms,
            rate_per_second: e.rate_per_second,
            max_in_flight: e.max_in_flight,
            batch: e.batch,
            plugins: &e.plugins,
            on_plugin_error: e.on_plugin_error,
            created_at: &e.created_at,
            updated_at: &e.updated_at,
            circuit: None,
        }
    }
}

fn check_fields(state: &AppState, endpoint: &Endpoint, errors: &mut Vec<FieldError>) {
    let config = &state.config.delivery;
    validate::url(&endpoint.url, config.allow_private_destinations, errors);
    if endpoint.description.len() > 1024 {
        errors.push(FieldError::new(
            "/description",
            "must be at most 1024 characters",
        ));
    }
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
async fn check_references(
    state: &AppState,
    tenant: &str,
    endpoint: &Endpoint,
    errors: &mut Vec<FieldError>,
) -> ApiResult<()> {
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
        super::plugins::check_reference(
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

async fn load(state: &AppState, tenant: &str, id: &str) -> ApiResult<Endpoint> {
    state
        .store
        .endpoint(tenant, id)
        .await?
        .ok_or(ApiError::NotFound("endpoint"))
}

/// A new endpoint, with its signing secret.
#[derive(Serialize, ToSchema)]
struct EndpointCreated<'a> {
    #[serde(flatten)]
    endpoint: EndpointOut<'a>,
    /// The `whsec_...` secret deliveries are signed with.
    secret: &'a str,
}

/// Create an endpoint
#[utoipa::path(
    post,
    path = "/v1/endpoints",
    operation_id = "create_endpoint",
    tag = "endpoints",
    security(("tenant_api_key" = [])),
    responses(
        (status = CREATED, description = "The endpoint, with its secret", body = EndpointCreated),
        TenantErrors,
        BodyErrors,
    ),
)]
pub async fn create(
    State(state): State<AppState>,
    TenantId(tenant): TenantId,
    Json(input): Json<EndpointIn>,
) -> ApiResult<Response> {
    let now = crate::model::clock::now_rfc3339();
    let mut errors = Vec::new();
    let secret = match input.secret {
        Some(s) if crate::model::Secret::parse(&s).is_some() => s,
        Some(_) => {
            errors.push(FieldError::new(
                "/secret",
                "must be whsec_ followed by base64",
            ));
            String::new()
        }
        None => crate::model::Secret::generate().expose(),
    };
    let endpoint = Endpoint {
        id: new_id("ep").into(),
        url: input.url,
        description: input.description,
        event_types: input.event_types,
        disabled: input.disabled,
        disabled_reason: None,
        headers: input.headers,
        timeout_ms: input.timeout_ms,
        rate_per_second: input.rate_per_second,
        max_in_flight: input.max_in_flight,
        batch: input.batch,
        plugins: input.plugins,
        on_plugin_error: input.on_plugin_error,
        created_at: now.clone(),
        updated_at: now,
        secrets: vec![EndpointSecret {
            secret: secret.clone(),
            expires_at_ms: None,
        }],
    };
    check_fields(&state, &endpoint, &mut errors);
    check_references(&state, &tenant, &endpoint, &mut errors).await?;
    if !errors.is_empty() {
        return Err(ApiError::Invalid(errors));
    }
    state.store.put_endpoint(&tenant, &endpoint).await?;
    let body = EndpointCreated {
        endpoint: (&endpoint).into(),
        secret: &secret,
    };
    Ok((StatusCode::CREATED, axum::Json(body)).into_response())
}

/// List endpoints
#[utoipa::path(
    get,
    path = "/v1/endpoints",
    operation_id = "list_endpoints",
    tag = "endpoints",
    params(PageQuery),
    security(("tenant_api_key" = [])),
    responses(
        (status = OK, description = "A page of endpoints", body = Page<EndpointOut>),
        TenantErrors,
        PageErrors,
    ),
)]
pub async fn list(
    State(state): State<AppState>,
    TenantId(tenant): TenantId,
    Query(page): Query<PageQuery>,
) -> ApiResult<Response> {
    let Page { data, next_cursor } = state
        .store
        .endpoints(&tenant, page.limit()?, page.cursor.as_deref())
        .await?;
    let data: Vec<EndpointOut> = data.iter().map(EndpointOut::from).collect();
    Ok(axum::Json(Page { data, next_cursor }).into_response())
}

/// Read an endpoint
///
/// With the state of its circuit breaker.
#[utoipa::path(
    get,
    path = "/v1/endpoints/{id}",
    operation_id = "get_endpoint",
    tag = "endpoints",
    params(("id" = String, Path, description = "The endpoint's id")),
    security(("tenant_api_key" = [])),
    responses(
        (status = OK, description = "The endpoint", body = EndpointOut),
        (status = NOT_FOUND, description = "No such endpoint", body = Problem,
            content_type = PROBLEM_JSON),
        TenantErrors,
    ),
)]
pub async fn get_one(
    State(state): State<AppState>,
    TenantId(tenant): TenantId,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let endpoint = load(&state, &tenant, &id).await?;
    let mut out = EndpointOut::from(&endpoint);
    out.circuit = Some(state.store.circuit(&tenant, &id).await?);
    Ok(axum::Json(out).into_response())
}

/// Change an endpoint
#[utoipa::path(
    patch,
    path = "/v1/endpoints/{id}",
    operation_id = "update_endpoint",
    tag = "endpoints",
    params(("id" = String, Path, description = "The endpoint's id")),
    security(("tenant_api_key" = [])),
    responses(
        (status = OK, description = "The endpoint as changed", body = EndpointOut),
        (status = NOT_FOUND, description = "No such endpoint", body = Problem,
            content_type = PROBLEM_JSON),
        TenantErrors,
        BodyErrors,
    ),
)]
pub async fn update(
    State(state): State<AppState>,
    TenantId(tenant): TenantId,
    Path(id): Path<String>,
    Json(patch): Json<EndpointPatch>,
) -> ApiResult<Response> {
    let mut endpoint = load(&state, &tenant, &id).await?;
    patch.apply(&mut endpoint);
    let mut errors = Vec::new();
    check_fields(&state, &endpoint, &mut errors);
    check_references(&state, &tenant, &endpoint, &mut errors).await?;
    if !errors.is_empty() {
        return Err(ApiError::Invalid(errors));
    }
    // Written as a change of the stored record (not over it): a change
    // made meanwhile, such as a 410 disabling it, is kept.
    let now = crate::model::clock::now_rfc3339();
    let changed = state
        .store
        .update_endpoint(&tenant, &id, |stored| {
            patch.apply(stored);
            stored.updated_at = now.clone();
            Ok::<(), std::convert::Infallible>(())
        })
        .await?;
    let Some(Ok(endpoint)) = changed else {
        return Err(ApiError::NotFound("endpoint"));
    };
    Ok(axum::Json(EndpointOut::from(&endpoint)).into_response())
}

/// Delete an endpoint
#[utoipa::path(
    delete,
    path = "/v1/endpoints/{id}",
    operation_id = "delete_endpoint",
    tag = "endpoints",
    params(("id" = String, Path, description = "The endpoint's id")),
    security(("tenant_api_key" = [])),
    responses(
        (status = NO_CONTENT, description = "Deleted"),
        (status = NOT_FOUND, description = "No such endpoint", body = Problem,
            content_type = PROBLEM_JSON),
        TenantErrors,
    ),
)]
pub async fn delete(
    State(state): State<AppState>,
    TenantId(tenant): TenantId,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    if state.store.delete_endpoint(&tenant, &id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound("endpoint"))
    }
}

/// An endpoint's signing secrets.
#[derive(Serialize, ToSchema)]
struct SecretOut {
    /// The current `whsec_...` secret.
    secret: String,
    /// Older secrets still signing, with when they stop.
    previous: Vec<PreviousSecret>,
}

#[derive(Serialize, ToSchema)]
struct PreviousSecret {
    /// RFC 3339.
    expires_at: String,
}

fn secret_out(endpoint: &Endpoint) -> SecretOut {
    let now = now_ms();
    SecretOut {
        secret: endpoint
            .secrets
            .first()
            .map(|s| s.secret.clone())
            .unwrap_or_default(),
        previous: endpoint
            .secrets
            .iter()
            .skip(1)
            .filter_map(|s| s.expires_at_ms.filter(|at| *at > now))
            .map(|at| PreviousSecret {
                expires_at: crate::model::clock::ms_to_rfc3339(at),
            })
            .collect(),
    }
}

/// Read an endpoint's secret
#[utoipa::path(
    get,
    path = "/v1/endpoints/{id}/secret",
    operation_id = "get_endpoint_secret",
    tag = "endpoints",
    params(("id" = String, Path, description = "The endpoint's id")),
    security(("tenant_api_key" = [])),
    responses(
        (status = OK, description = "Its signing secrets", body = SecretOut),
        (status = NOT_FOUND, description = "No such endpoint", body = Problem,
            content_type = PROBLEM_JSON),
        TenantErrors,
    ),
)]
pub async fn secret(
    State(state): State<AppState>,
    TenantId(tenant): TenantId,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let endpoint = load(&state, &tenant, &id).await?;
    Ok(axum::Json(secret_out(&endpoint)).into_response())
}

/// Rotate an endpoint's secret
///
/// A new secret signs from now on; the old one keeps signing too for
/// `delivery.secret_rotation_overlap`.
#[utoipa::path(
    post,
    path = "/v1/endpoints/{id}/secret/rotate",
    operation_id = "rotate_endpoint_secret",
    tag = "endpoints",
    params(("id" = String, Path, description = "The endpoint's id")),
    security(("tenant_api_key" = [])),
    responses(
        (status = OK, description = "Its signing secrets, the new one first", body = SecretOut),
        (status = NOT_FOUND, description = "No such endpoint", body = Problem,
            content_type = PROBLEM_JSON),
        TenantErrors,
    ),
)]
pub async fn rotate_secret(
    State(state): State<AppState>,
    TenantId(tenant): TenantId,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let overlap = state.config.delivery.secret_rotation_overlap.as_millis() as u64;
    let changed = state
        .store
        .update_endpoint(&tenant, &id, |endpoint| {
            let now = now_ms();
            endpoint.rotate_secret(now, now + overlap);
            endpoint.updated_at = crate::model::clock::now_rfc3339();
            Ok::<(), std::convert::Infallible>(())
        })
        .await?;
    let Some(Ok(endpoint)) = changed else {
        return Err(ApiError::NotFound("endpoint"));
    };
    Ok(axum::Json(secret_out(&endpoint)).into_response())
}

/// List an endpoint's attempts
///
/// Every HTTP attempt to the endpoint, newest first.
#[utoipa::path(
    get,
    path = "/v1/endpoints/{id}/attempts",
    operation_id = "list_endpoint_attempts",
    tag = "endpoints",
    params(("id" = String, Path, description = "The endpoint's id"), PageQuery),
    security(("tenant_api_key" = [])),
    responses(
        (status = OK, description = "A page of attempts", body = Page<AttemptRecord>),
        (status = NOT_FOUND, description = "No such endpoint", body = Problem,
            content_type = PROBLEM_JSON),
        TenantErrors,
        PageErrors,
    ),
)]
pub async fn attempts(
    State(state): State<AppState>,
    TenantId(tenant): TenantId,
    Path(id): Path<String>,
    Query(page): Query<PageQuery>,
) -> ApiResult<Response> {
    load(&state, &tenant, &id).await?;
    let page = state
        .store
        .attempts(&tenant, &id, page.limit()?, page.cursor.as_deref())
        .await?;
    Ok(axum::Json(page).into_response())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplayIn {
    /// RFC 3339: events accepted since then are queued again.
    #[schema(format = DateTime)]
    since: String,
}

/// Replay events to an endpoint
///
/// Starts a background job that queues again, for this endpoint, every kept
/// event of its types accepted since `since` (at most 10,000; `truncated`
/// says when it stopped there). Answers at once with the job; follow it at
/// `GET /v1/replays/{id}` (also in `Location`).
#[utoipa::path(
    post,
    path = "/v1/endpoints/{id}/replay",
    operation_id = "replay_endpoint",
    tag = "endpoints",
    params(("id" = String, Path, description = "The endpoint's id")),
    security(("tenant_api_key" = [])),
    responses(
        (status = ACCEPTED, description = "The replay job, started", body = ReplayJob),
        (status = NOT_FOUND, description = "No such endpoint", body = Problem,
            content_type = PROBLEM_JSON),
        (status = CONFLICT, description = "The endpoint is disabled", body = Problem,
            content_type = PROBLEM_JSON),
        TenantErrors,
        BodyErrors,
    ),
)]
pub async fn replay(
    State(state): State<AppState>,
    TenantId(tenant): TenantId,
    Path(id): Path<String>,
    Json(input): Json<ReplayIn>,
) -> ApiResult<Response> {
    let Some(since) = crate::model::clock::parse_rfc3339(&input.since) else {
        return Err(ApiError::invalid("/since", "must be an RFC 3339 date-time"));
    };
    let endpoint = load(&state, &tenant, &id).await?;
    if endpoint.disabled {
        return Err(ApiError::Conflict(
            "the endpoint is disabled; enable it before replaying".into(),
        ));
    }
    let now = crate::model::clock::now_rfc3339();
    let job = ReplayJob {
        id: crate::model::new_id("rpl"),
        endpoint_id: endpoint.id.to_string(),
        since: crate::model::clock::format_rfc3339(since),
        state: ReplayState::Running,
        replayed: 0,
        truncated: false,
        error: None,
        created_at: now.clone(),
        updated_at: now,
    };
    state.store.put_replay(&tenant, &job).await?;
    tokio::spawn(crate::delivery::replay::run(
        state.queue.clone(),
        state.store.clone(),
        tenant,
        endpoint,
        job.clone(),
    ));
    let location = format!("/v1/replays/{}", job.id);
    Ok((
        StatusCode::ACCEPTED,
        [(axum::http::header::LOCATION, location)],
        axum::Json(job),
    )
        .into_response())
}

/// Get a replay job
///
/// How far a replay got: `running`, `done`, `failed` (with `error`), or
/// `interrupted` (its instance stopped; replay again to finish).
#[utoipa::path(
    get,
    path = "/v1/replays/{id}",
    operation_id = "get_replay",
    tag = "endpoints",
    params(("id" = String, Path, description = "The replay job's id")),
    security(("tenant_api_key" = [])),
    responses(
        (status = OK, description = "The replay job", body = ReplayJob),
        (status = NOT_FOUND, description = "No such replay job", body = Problem,
            content_type = PROBLEM_JSON),
        TenantErrors,
    ),
)]
pub async fn get_replay(
    State(state): State<AppState>,
    TenantId(tenant): TenantId,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let job = state
        .store
        .replay(&tenant, &id)
        .await?
        .ok_or(ApiError::NotFound("replay job"))?;
    let job = crate::delivery::replay::observed(job, time::OffsetDateTime::now_utc());
    Ok(axum::Json(job).into_response())
}
