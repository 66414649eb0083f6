//! `/healthz` (the process answers), `/readyz` (Redis answers and every
//! worker loop is beating) and `/metrics` (Prometheus text).

use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::state::AppState;

pub async fn healthz() -> Response {
    axum::Json(json!({"status": "ok"})).into_response()
}

pub async fn readyz(State(state): State<AppState>) -> Response {
    let redis = state.queue.ping().await;
    let stale = state.liveness.stale();
    let workers_ok = matches!(&stale, Some(s) if s.is_empty());
    let body = json!({
        "redis": if redis.is_ok() { "ok" } else { "unreachable" },
        "workers": match &stale {
            None => json!("starting"),
            Some(s) if s.is_empty() => json!("ok"),
            Some(s) => json!({"stalled": s}),
        },
    });
    let status = if redis.is_ok() && workers_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(body)).into_response()
}

pub async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
        .into_response()
}
