//! `/healthz` (the process answers), `/readyz` (Redis answers and every
//! worker loop is running and beating) and `/metrics` (Prometheus text).

use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use super::openapi::PublicErrors;
use crate::state::AppState;

/// `/healthz`'s answer.
#[derive(Serialize, ToSchema)]
struct Health {
    /// Always `ok`.
    #[schema(example = "ok")]
    status: &'static str,
}

/// `/readyz`'s answer.
#[derive(Serialize, ToSchema)]
struct Readiness {
    #[schema(inline)]
    redis: Reachability,
    #[schema(inline)]
    workers: Workers,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
enum Reachability {
    Ok,
    Unreachable,
}

/// The worker loops: `starting` until each has beaten once, `ok`, or the
/// names of those whose heartbeat is late (`stalled`, judged against each
/// loop's own period) and of those that ended before the shutdown (`dead`).
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
enum Workers {
    Phase(#[schema(inline)] Phase),
    Trouble {
        #[serde(skip_serializing_if = "Vec::is_empty")]
        stalled: Vec<String>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        dead: Vec<String>,
    },
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
enum Phase {
    Starting,
    Ok,
}

/// Liveness
///
/// The process answers.
#[utoipa::path(
    get,
    path = "/healthz",
    operation_id = "healthz",
    tag = "meta",
    responses((status = OK, description = "Alive", body = Health), PublicErrors),
)]
pub async fn healthz() -> Response {
    axum::Json(Health { status: "ok" }).into_response()
}

/// Readiness
///
/// Redis answers and every worker loop is beating.
#[utoipa::path(
    get,
    path = "/readyz",
    operation_id = "readyz",
    tag = "meta",
    responses(
        (status = OK, description = "Ready to serve", body = Readiness),
        (status = SERVICE_UNAVAILABLE, description = "Not ready: what is not", body = Readiness),
        PublicErrors,
    ),
)]
pub async fn readyz(State(state): State<AppState>) -> Response {
    let redis = match state.queue.ping().await {
        Ok(_) => Reachability::Ok,
        Err(_) => Reachability::Unreachable,
    };
    let workers = match state.liveness.health() {
        None => Workers::Phase(Phase::Starting),
        Some(h) if !h.stalled.is_empty() || !h.dead.is_empty() => Workers::Trouble {
            stalled: h.stalled,
            dead: h.dead,
        },
        Some(h) if !h.starting.is_empty() => Workers::Phase(Phase::Starting),
        Some(_) => Workers::Phase(Phase::Ok),
    };
    let status = match (&redis, &workers) {
        (Reachability::Ok, Workers::Phase(Phase::Ok)) => StatusCode::OK,
        _ => StatusCode::SERVICE_UNAVAILABLE,
    };
    (status, axum::Json(Readiness { redis, workers })).into_response()
}

/// Metrics
///
/// The Prometheus text exposition of the gateway's metrics.
#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "metrics",
    tag = "meta",
    responses(
        (status = OK, description = "Every metric", body = String,
            content_type = "text/plain; version=0.0.4"),
        PublicErrors,
    ),
)]
pub async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
        .into_response()
}
