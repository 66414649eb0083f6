//! Field checks shared by the handlers. Each returns the problems it found
//! with their JSON pointers, so one response can list all of them.

use crate::model::FieldError;

/// An endpoint's (or a tenant's default) retry schedule at `/retry_schedule`:
/// durations, at most `delivery.endpoint_schedule_max_attempts` of them,
/// adding up to at most `delivery.endpoint_schedule_max_total` and a minute
/// less than the retention (so an event outlives its last attempt).
pub fn retry_schedule(
    config: &crate::config::Config,
    schedule: &[String],
    errors: &mut Vec<FieldError>,
) {
    let delivery = &config.delivery;
    let most = delivery.endpoint_schedule_max_attempts;
    if schedule.is_empty() || schedule.len() > most {
        errors.push(FieldError::new(
            "/retry_schedule",
            format!("must list between 1 and {most} delays"),
        ));
        return;
    }
    let mut total = std::time::Duration::ZERO;
    for (i, delay) in schedule.iter().enumerate() {
        match crate::config::parse_duration(delay) {
            Ok(d) => total += d,
            Err(e) => errors.push(FieldError::new(format!("/retry_schedule/{i}"), e)),
        }
    }
    let kept = config.ingest.retention;
    let bound = delivery
        .endpoint_schedule_max_total
        .min(kept.saturating_sub(std::time::Duration::from_secs(60)));
    if total > bound {
        errors.push(FieldError::new(
            "/retry_schedule",
            format!(
                "its delays add up to {} s, over the operator's bound of {} s",
                total.as_secs(),
                bound.as_secs()
            ),
        ));
    }
}

/// Event types: `order.created`, `invoice:paid`, up to 256 characters.
pub fn event_type(pointer: &str, value: &str, errors: &mut Vec<FieldError>) {
    token(pointer, value, 256, errors);
}

/// Producer-chosen ids: up to 128 characters of letters, digits and `._:-`.
pub fn identifier(pointer: &str, value: &str, errors: &mut Vec<FieldError>) {
    token(pointer, value, 128, errors);
}

/// Most channels an endpoint or an event may name, and most consumers an
/// event may be for.
pub const MAX_LABELS: usize = 100;

/// A list of identifiers at `pointer` (consumer uids, channels): at most
/// [`MAX_LABELS`], each as [`identifier`] says.
pub fn labels(pointer: &str, values: &[String], errors: &mut Vec<FieldError>) {
    if values.len() > MAX_LABELS {
        errors.push(FieldError::new(
            pointer,
            format!("must list at most {MAX_LABELS}"),
        ));
        return;
    }
    for (i, value) in values.iter().enumerate() {
        identifier(&format!("{pointer}/{i}"), value, errors);
    }
}

/// 1 to `max` letters, digits and `._:-`.
fn token(pointer: &str, value: &str, max: usize, errors: &mut Vec<FieldError>) {
    if value.is_empty() || value.len() > max {
        errors.push(FieldError::new(
            pointer,
            format!("must be 1 to {max} characters"),
        ));
    } else if !value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b))
    {
        errors.push(FieldError::new(
            pointer,
            "may contain only letters, digits and . _ : -",
        ));
    }
}

/// Headers the gateway sets itself, which endpoint headers may not replace.
const RESERVED_HEADERS: [&str; 8] = [
    "content-type",
    "content-length",
    "host",
    "connection",
    "transfer-encoding",
    "user-agent",
    "te",
    "upgrade",
];

pub fn extra_header(name: &str, value: &str, errors: &mut Vec<FieldError>) {
    let pointer = format!("/headers/{}", name.replace('~', "~0").replace('/', "~1"));
    let lower = name.to_ascii_lowercase();
    if axum::http::HeaderName::try_from(name).is_err() {
        errors.push(FieldError::new(pointer, "is not a valid header name"));
    } else if RESERVED_HEADERS.contains(&lower.as_str()) || lower.starts_with("webhook-") {
        errors.push(FieldError::new(
            pointer,
            "is set by the gateway and cannot be overridden",
        ));
    } else if axum::http::HeaderValue::try_from(value).is_err() {
        errors.push(FieldError::new(pointer, "is not a valid header value"));
    }
}

pub fn url(value: &str, allow_private: bool, errors: &mut Vec<FieldError>) {
    let parsed = match url::Url::parse(value) {
        Ok(u) => u,
        Err(e) => {
            errors.push(FieldError::new("/url", format!("is not a valid URL: {e}")));
            return;
        }
    };
    if value.len() > 2048 {
        errors.push(FieldError::new("/url", "must be at most 2048 characters"));
    } else if !matches!(parsed.scheme(), "http" | "https") {
        errors.push(FieldError::new("/url", "must be an http or https URL"));
    } else if parsed.host().is_none() {
        errors.push(FieldError::new("/url", "must name a host"));
    } else if !parsed.username().is_empty() || parsed.password().is_some() {
        errors.push(FieldError::new(
            "/url",
            "must not carry credentials; use headers",
        ));
    } else if !allow_private
        && let Some(reason) = crate::delivery::client::literal_private_host(value)
    {
        errors.push(FieldError::new("/url", format!("is not allowed: {reason}")));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(f: impl FnOnce(&mut Vec<FieldError>)) -> Vec<FieldError> {
        let mut errors = Vec::new();
        f(&mut errors);
        errors
    }

    #[test]
    fn urls() {
        assert!(check(|e| url("https://example.com/hook", false, e)).is_empty());
        assert!(check(|e| url("http://127.0.0.1:9000/", true, e)).is_empty());
        assert_eq!(check(|e| url("http://127.0.0.1:9000/", false, e)).len(), 1);
        assert_eq!(check(|e| url("ftp://example.com", true, e)).len(), 1);
        assert_eq!(check(|e| url("not a url", true, e)).len(), 1);
        assert_eq!(check(|e| url("https://u:p@example.com", true, e)).len(), 1);
    }

    #[test]
    fn headers_and_names() {
        assert!(check(|e| extra_header("X-Team", "payments", e)).is_empty());
        assert_eq!(
            check(|e| extra_header("webhook-id", "x", e))[0].pointer,
            "/headers/webhook-id"
        );
        assert_eq!(check(|e| extra_header("Content-Type", "x", e)).len(), 1);
        assert_eq!(check(|e| extra_header("bad name", "x", e)).len(), 1);
        assert_eq!(check(|e| extra_header("X-Ok", "line\nbreak", e)).len(), 1);
        assert!(check(|e| event_type("/type", "order.created", e)).is_empty());
        assert_eq!(check(|e| event_type("/type", "", e)).len(), 1);
        assert_eq!(check(|e| event_type("/type", "a b", e)).len(), 1);
        assert_eq!(check(|e| identifier("/id", "evt/1", e)).len(), 1);
    }
}
