//! The one error type of the HTTP API and its `application/problem+json`
//! (RFC 9457) rendering. Client errors say what was wrong and where; internal
//! errors are logged with their context and answered as an opaque 500.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::model::FieldError;

/// The content type of every error answer.
pub const PROBLEM_JSON: &str = "application/problem+json";

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("unauthorized")]
    Unauthorized,
    /// The key is good but may not do this: what it lacks.
    #[error("{0}")]
    Forbidden(String),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Conflict(String),
    #[error("the schema breaks compatibility with the previous version")]
    Incompatible(Box<crate::model::Report>),
    #[error("the request took longer than {0:?}")]
    Timeout(std::time::Duration),
    #[error("method not allowed on this route")]
    MethodNotAllowed,
    #[error("request body larger than {0} bytes")]
    PayloadTooLarge(usize),
    #[error("unsupported media type: {0}")]
    UnsupportedMediaType(String),
    #[error("the request failed validation")]
    Invalid(Vec<FieldError>),
    #[error("service unavailable: {0}")]
    Unavailable(String),
    #[error("too many requests; retry in {retry_after_secs} s")]
    RateLimited {
        retry_after_secs: u64,
        headers: RateHeaders,
    },
    #[error("the tenant's backlog of undelivered events is full; retry in {retry_after_secs} s")]
    Overloaded { retry_after_secs: u64 },
    #[error("internal error: {0:#}")]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    /// A single validation problem.
    pub fn invalid(pointer: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError::Invalid(vec![FieldError::new(pointer, message)])
    }

    fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) | ApiError::Incompatible(_) => StatusCode::CONFLICT,
            ApiError::Timeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Overloaded { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Stable machine-readable problem type, appended to `/problems/`.
    fn kind(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "bad-request",
            ApiError::Unauthorized => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) => "not-found",
            ApiError::Conflict(_) => "conflict",
            ApiError::Incompatible(_) => "incompatible-schema",
            ApiError::Timeout(_) => "timeout",
            ApiError::MethodNotAllowed => "method-not-allowed",
            ApiError::PayloadTooLarge(_) => "payload-too-large",
            ApiError::UnsupportedMediaType(_) => "unsupported-media-type",
            ApiError::Invalid(_) => "validation",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::RateLimited { .. } => "rate-limited",
            ApiError::Overloaded { .. } => "backlog-full",
            ApiError::Internal(_) => "internal",
        }
    }
}

impl From<redis::RedisError> for ApiError {
    fn from(e: redis::RedisError) -> Self {
        let failing_over = e.is_cluster_error()
            || matches!(
                e.kind(),
                redis::ErrorKind::Server(
                    redis::ServerErrorKind::MasterDown | redis::ServerErrorKind::ReadOnly
                ) | redis::ErrorKind::ClusterConnectionNotFound
            );
        if e.detail()
            .is_some_and(|d| d.starts_with(crate::queue::NOT_REPLICATED))
        {
            ApiError::Unavailable(format!(
                "the event was stored but {}; post it again with the same Idempotency-Key",
                e.detail().unwrap_or_default()
            ))
        } else if e.is_io_error() || e.is_connection_dropped() || e.is_timeout() || failing_over {
            ApiError::Unavailable("the queue store is unreachable".into())
        } else {
            ApiError::Internal(anyhow::Error::new(e).context("redis"))
        }
    }
}

/// An error answer (RFC 9457), sent as `application/problem+json`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Problem<'a> {
    /// The kind of problem, stable for programs to branch on: `/problems/`
    /// then e.g. `validation`, `not-found`, `rate-limited`.
    #[serde(rename = "type")]
    #[schema(example = "/problems/validation")]
    kind: String,
    /// The HTTP status's reason phrase.
    #[schema(example = "Unprocessable Entity")]
    title: &'a str,
    /// The HTTP status code.
    #[schema(example = 422)]
    status: u16,
    /// What went wrong, for people. An internal error says only that one
    /// occurred.
    detail: String,
    /// For `validation`: each problem of the request.
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    errors: &'a [FieldError],
    /// For `incompatible-schema`: the compatibility report.
    #[serde(skip_serializing_if = "Option::is_none")]
    compatibility: Option<&'a crate::model::Report>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let detail = match &self {
            ApiError::Internal(e) => {
                tracing::error!(
                    error = format!("{e:#}"),
                    "internal error answering a request"
                );
                "an internal error occurred; it has been logged".to_string()
            }
            ApiError::Unavailable(_) => {
                tracing::warn!(error = %self, "answering 503");
                self.to_string()
            }
            ApiError::Invalid(errors) => errors
                .iter()
                .map(|e| format!("{}: {}", e.pointer, e.message))
                .collect::<Vec<_>>()
                .join("; "),
            ApiError::Incompatible(report) => {
                let breaking: Vec<String> = report
                    .changes
                    .iter()
                    .filter(|c| c.breaking)
                    .map(|c| format!("{}: {}", c.pointer, c.detail))
                    .collect();
                format!(
                    "breaking changes: {}; register version transforms both ways, or pass \"force\": true",
                    breaking.join("; ")
                )
            }
            other => other.to_string(),
        };
        let errors = match &self {
            ApiError::Invalid(errors) => errors.as_slice(),
            _ => &[],
        };
        let body = Problem {
            kind: format!("/problems/{}", self.kind()),
            title: status.canonical_reason().unwrap_or("error"),
            status: status.as_u16(),
            detail,
            errors,
            compatibility: match &self {
                ApiError::Incompatible(report) => Some(report),
                _ => None,
            },
        };
        let mut response = (status, axum::Json(body)).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        let headers = response.headers_mut();
        match &self {
            ApiError::Unauthorized => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            ApiError::RateLimited {
                retry_after_secs,
                headers: rate,
            } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
                rate.write(headers);
            }
            ApiError::Overloaded { retry_after_secs } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
            }
            _ => {}
        }
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// The IETF draft `RateLimit-*` headers of a limited answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateHeaders {
    /// The burst: requests allowed at once.
    pub limit: u32,
    pub remaining: u32,
    /// Seconds until the bucket is full again (refused: until the next request may pass).
    pub reset_secs: u64,
}

impl RateHeaders {
    pub fn write(&self, headers: &mut HeaderMap) {
        headers.insert("ratelimit-limit", HeaderValue::from(self.limit));
        headers.insert("ratelimit-remaining", HeaderValue::from(self.remaining));
        headers.insert("ratelimit-reset", HeaderValue::from(self.reset_secs));
    }
}
