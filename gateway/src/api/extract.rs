//! Request extractors that answer problem+json: a JSON body (and
//! `parse_json`, with the pointer of what is wrong), the query string, pagination.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use utoipa::IntoParams;

use crate::error::ApiError;
use crate::model::FieldError;
use crate::state::AppState;

/// A JSON body: 415 without a JSON content type, 413 when too large, 400
/// when malformed, 422 (with the JSON pointer) when a field is missing or wrong.
pub struct Json<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let content_type = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let essence = content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if essence != "application/json" && !essence.ends_with("+json") {
            return Err(ApiError::UnsupportedMediaType(format!(
                "expected Content-Type: application/json, got `{content_type}`"
            )));
        }
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::PayloadTooLarge(state.config.ingest.max_body_bytes)
                } else {
                    ApiError::BadRequest(format!("could not read the request body: {rejection}"))
                }
            })?;
        parse_json(&bytes).map(Json)
    }
}

/// Parses JSON, telling malformed input (400) from a wrong shape (422 with a pointer).
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // Most bodies are valid: parse them without tracking the path, and only
    // parse a refused one again to say where it went wrong.
    if let Ok(value) = serde_json::from_slice(bytes) {
        return Ok(value);
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de);
    if value.is_ok() {
        de.end()
            .map_err(|e| ApiError::BadRequest(format!("malformed JSON: {e}")))?;
    }
    value.map_err(|err| {
        let inner = err.inner();
        if inner.is_syntax() || inner.is_eof() {
            return ApiError::BadRequest(format!("malformed JSON: {inner}"));
        }
        let mut pointer = String::new();
        for segment in err.path().iter() {
            use serde_path_to_error::Segment;
            match segment {
                Segment::Seq { index } => pointer.push_str(&format!("/{index}")),
                Segment::Map { key } => pointer.push_str(&format!("/{}", escape_pointer(key))),
                Segment::Enum { variant } => {
                    pointer.push_str(&format!("/{}", escape_pointer(variant)))
                }
                Segment::Unknown => {}
            }
        }
        let message = strip_position(&inner.to_string());
        if let Some(field) = message
            .strip_prefix("missing field `")
            .and_then(|m| m.strip_suffix('`'))
        {
            pointer.push_str(&format!("/{}", escape_pointer(field)));
        }
        if pointer.is_empty() {
            pointer.push('/');
        }
        ApiError::Invalid(vec![FieldError::new(pointer, message)])
    })
}

fn escape_pointer(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// serde_json appends " at line L column C"; the pointer says where instead.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

/// `?limit=&cursor=` of list routes.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Items per page, 1 to 250 (50 when absent).
    #[param(minimum = 1, maximum = 250)]
    pub limit: Option<usize>,
    /// Where the page starts: the previous page's `next_cursor`.
    pub cursor: Option<String>,
}

impl PageQuery {
    pub const MAX: usize = 250;

    pub fn limit(&self) -> Result<usize, ApiError> {
        match self.limit {
            None => Ok(50),
            Some(n @ 1..=Self::MAX) => Ok(n),
            Some(_) => Err(ApiError::invalid(
                "query:limit",
                format!("must be between 1 and {}", Self::MAX),
            )),
        }
    }
}

/// The query string, answering problem+json when it does not parse.
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or("");
        serde_urlencoded::from_str(query)
            .map(Query)
            .map_err(|e| ApiError::invalid("query", e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Shape {
        name: String,
        items: Vec<Item>,
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Item {
        n: u32,
    }

    fn pointer(err: ApiError) -> String {
        match err {
            ApiError::Invalid(errors) => errors[0].pointer.clone(),
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn malformed_is_400_and_wrong_shape_is_422_with_a_pointer() {
        assert!(matches!(
            parse_json::<Shape>(b"{nope"),
            Err(ApiError::BadRequest(_))
        ));
        assert!(matches!(
            parse_json::<Shape>(b"{\"name\": \"x\", \"items\": []} trailing"),
            Err(ApiError::BadRequest(_))
        ));
        assert_eq!(
            pointer(parse_json::<Shape>(b"{\"items\": []}").unwrap_err()),
            "/name"
        );
        assert_eq!(
            pointer(
                parse_json::<Shape>(br#"{"name": "a", "items": [{"n": 1}, {"n": "x"}]}"#)
                    .unwrap_err()
            ),
            "/items/1/n"
        );
        assert_eq!(
            pointer(parse_json::<Shape>(br#"{"name": "a", "items": [], "extra": 1}"#).unwrap_err()),
            "/extra"
        );
        assert!(parse_json::<Shape>(br#"{"name": "a", "items": [{"n": 1}]}"#).is_ok());
    }
}
