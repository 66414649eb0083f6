//! One problem with one part of an input, located by where it is.

use serde::Serialize;

/// One problem with one part of a request, located by a JSON pointer
/// (`/data/amount`), a header name or a path segment.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct FieldError {
    /// Where: a JSON pointer into the body (`/data/amount`, `/events/3/type`),
    /// or `header:<name>`, `query:<name>`, `path:<name>`, or `body` for the
    /// whole of a non-JSON body.
    pub pointer: String,
    /// What is wrong there.
    pub message: String,
}

impl FieldError {
    pub fn new(pointer: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError {
            pointer: pointer.into(),
            message: message.into(),
        }
    }
}
