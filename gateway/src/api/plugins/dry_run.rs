//! A dry run of a plugin: one call on a sample event, answering its verdict,
//! the resources it used and its logs; nothing is delivered.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{check_reference, load};
use crate::api::openapi::{BodyErrors, TenantErrors};
use crate::api::{Access, Json, scope, validate};
use crate::error::{ApiError, ApiResult, PROBLEM_JSON, Problem};
use crate::model::new_id;
use crate::plugins::{LogLine, PluginEvent, PluginFailure, PluginInput, PluginTarget, Verdict};
use crate::state::AppState;

/// A dry run: a sample event, and the endpoint it is for.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InvokeIn {
    event: SampleEvent,
    #[serde(default)]
    target: SampleTarget,
    /// The plugin's version to run; its newest when absent.
    version: Option<u32>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct SampleEvent {
    #[serde(rename = "type")]
    event_type: String,
    data: serde_json::Value,
    id: Option<String>,
    timestamp: Option<String>,
    schema_version: Option<u32>,
    /// Name and value pairs.
    #[serde(default)]
    metadata: Vec<(String, String)>,
}

#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
struct SampleTarget {
    endpoint_id: Option<String>,
    schema_version: Option<u32>,
    /// The plugin's configuration on the endpoint; `{}` when absent.
    config: Option<serde_json::Value>,
}

/// The event a plugin passes on.
#[derive(Serialize, ToSchema)]
#[schema(as = PluginEventOut)]
struct EventOut {
    id: String,
    #[serde(rename = "type")]
    event_type: String,
    schema_version: Option<u32>,
    timestamp: String,
    data: serde_json::Value,
    metadata: Vec<(String, String)>,
}

impl From<PluginEvent> for EventOut {
    fn from(e: PluginEvent) -> Self {
        EventOut {
            data: serde_json::from_slice(&e.data).unwrap_or(serde_json::Value::Null),
            id: e.id,
            event_type: e.event_type,
            schema_version: e.schema_version,
            timestamp: e.timestamp,
            metadata: e.metadata,
        }
    }
}

#[derive(Serialize, ToSchema)]
#[serde(tag = "action", rename_all = "snake_case")]
enum VerdictOut {
    Deliver { event: EventOut },
    Drop { reason: String },
}

/// What one run of a plugin did.
#[derive(Serialize, ToSchema)]
struct InvokeOut {
    /// The version that ran.
    version: u32,
    /// Its verdict, unless it failed.
    verdict: Option<VerdictOut>,
    /// Why it failed, if it did.
    error: Option<ErrorOut>,
    cpu_ms: u64,
    duration_us: u64,
    logs: Vec<LogLine>,
    /// Log lines past the limit, not kept.
    logs_dropped: u32,
}

#[derive(Serialize, ToSchema)]
#[schema(as = PluginErrorOut)]
struct ErrorOut {
    #[serde(flatten)]
    failure: PluginFailure,
    message: String,
}

/// Run a plugin on a sample
///
/// Runs the plugin once on a sample event, with the tenant's budget, and
/// shows the verdict, the resources used and the logs. Nothing is delivered.
#[utoipa::path(
    post,
    path = "/v1/plugins/{name}/invoke",
    operation_id = "invoke_plugin",
    tag = "plugins",
    params(("name" = String, Path, description = "The plugin's name")),
    security(("tenant_api_key" = ["plugins:write"])),
    responses(
        (status = OK, description = "The run, whether the plugin succeeded or failed",
            body = InvokeOut),
        (status = NOT_FOUND, description = "No such plugin", body = Problem,
            content_type = PROBLEM_JSON),
        TenantErrors,
        BodyErrors,
    ),
)]
pub async fn invoke(
    State(state): State<AppState>,
    Access { tenant, .. }: Access<scope::PluginsWrite>,
    Path(name): Path<String>,
    Json(input): Json<InvokeIn>,
) -> ApiResult<Response> {
    let plugin = load(&state, &tenant, &name).await?;
    let mut errors = Vec::new();
    let at = (input.version, "/version");
    check_reference(&state, &tenant, (&name, "path:name"), at, &mut errors).await?;
    validate::event_type("/event/type", &input.event.event_type, &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::Invalid(errors));
    }
    let version = plugin
        .version(input.version)
        .ok_or_else(|| ApiError::invalid("/version", "no such version of this plugin"))?
        .clone();
    let event = input.event;
    let call_input = PluginInput {
        event: PluginEvent {
            id: event.id.unwrap_or_else(|| new_id("evt")),
            event_type: event.event_type,
            schema_version: event.schema_version,
            timestamp: event
                .timestamp
                .unwrap_or_else(crate::model::clock::now_rfc3339),
            data: serde_json::to_vec(&event.data).expect("JSON always serialises"),
            metadata: event.metadata,
        },
        target: PluginTarget {
            endpoint_id: input
                .target
                .endpoint_id
                .unwrap_or_else(|| "ep_dry_run".into()),
            schema_version: input.target.schema_version,
            config: serde_json::to_vec(
                &input.target.config.unwrap_or_else(|| serde_json::json!({})),
            )
            .expect("JSON always serialises"),
        },
    };
    let limits = state.store.limits(&tenant).await?;
    let budget = crate::chain::budget(state.chain.host().default_budget(), &limits);
    let call = crate::chain::invoke(
        state.chain.host(),
        &state.store,
        &tenant,
        &version.sha256,
        &call_input,
        budget,
    )
    .await?;
    let (verdict, error) = match call.result {
        Ok(Verdict::Deliver(event)) => (
            Some(VerdictOut::Deliver {
                event: event.into(),
            }),
            None,
        ),
        Ok(Verdict::Drop(reason)) => (Some(VerdictOut::Drop { reason }), None),
        Err(failure) => (
            None,
            Some(ErrorOut {
                message: failure.to_string(),
                failure,
            }),
        ),
    };
    let out = InvokeOut {
        version: version.version,
        verdict,
        error,
        cpu_ms: call.cpu_ticks,
        duration_us: call.duration.as_micros() as u64,
        logs: call.logs,
        logs_dropped: call.logs_dropped,
    };
    Ok(axum::Json(out).into_response())
}
