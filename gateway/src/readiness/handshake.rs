//! The ownership handshake as data: the challenge request a new (or
//! rotated, or due) endpoint gets, and the judgement of its answer.
//!
//! The request is `{"type": "webhook.verification", "timestamp", "data":
//! {"challenge"}}`, signed like any delivery. A right answer is `200` with
//! a JSON object whose `challenge` is the same string, or the lowercase hex
//! of HMAC-SHA256 over it keyed with a live secret (the consumer then also
//! proves it holds the secret). The object may declare capabilities:
//! `max_rate_per_second`, `max_in_flight` (positive integers),
//! `accepts_batches` (a boolean) and `versions` (schema versions).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use serde_json::{Value, json};

use crate::model::Secret;
use crate::store::Capabilities;

/// The event type of a handshake request.
pub const EVENT_TYPE: &str = "webhook.verification";

/// A fresh random challenge: 24 bytes, base64url.
pub fn challenge() -> String {
    let mut bytes = [0u8; 24];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The body of a handshake request.
pub fn request_body(challenge: &str, timestamp: &str) -> Vec<u8> {
    let body = json!({
        "type": EVENT_TYPE,
        "timestamp": timestamp,
        "data": {"challenge": challenge},
    });
    serde_json::to_vec(&body).expect("JSON always serialises")
}

/// Judges an answer: the capabilities it declared when it is right, else
/// why it is not (said to the tenant as the endpoint's reason).
pub fn judge(
    status: Option<u16>,
    body: &str,
    challenge: &str,
    secrets: &[Secret],
) -> Result<Capabilities, String> {
    match status {
        Some(200) => {}
        Some(other) => return Err(format!("answered {other}, not 200")),
        None => return Err("no answer".into()),
    }
    let answer: Value = serde_json::from_str(body)
        .map_err(|_| "the answer is not JSON (expected {\"challenge\": ...})".to_string())?;
    let Some(answer) = answer.as_object() else {
        return Err("the answer is not a JSON object (expected {\"challenge\": ...})".into());
    };
    let echoed = match answer.get("challenge") {
        Some(Value::String(s)) => s,
        Some(_) => return Err("`challenge` in the answer is not a string".into()),
        None => return Err("the answer has no `challenge`".into()),
    };
    let right = echoed == challenge || secrets.iter().any(|s| s.hmac_hex(challenge) == *echoed);
    if !right {
        return Err("`challenge` in the answer is neither the challenge sent nor its HMAC".into());
    }
    capabilities(answer)
}

fn capabilities(answer: &serde_json::Map<String, Value>) -> Result<Capabilities, String> {
    let positive = |name: &str| -> Result<Option<u64>, String> {
        match answer.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => match v.as_u64() {
                Some(n) if n > 0 => Ok(Some(n)),
                _ => Err(format!("`{name}` must be a positive integer")),
            },
        }
    };
    let max_in_flight = positive("max_in_flight")?
        .map(|n| u32::try_from(n).map_err(|_| "`max_in_flight` is too large".to_string()))
        .transpose()?;
    let accepts_batches = match answer.get("accepts_batches") {
        None | Some(Value::Null) => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(_) => return Err("`accepts_batches` must be true or false".into()),
    };
    let versions = match answer.get("versions") {
        None | Some(Value::Null) => None,
        Some(Value::Array(items)) => Some(
            items
                .iter()
                .map(|v| {
                    v.as_u64()
                        .and_then(|n| u32::try_from(n).ok())
                        .filter(|n| *n > 0)
                })
                .collect::<Option<Vec<u32>>>()
                .ok_or("`versions` must list positive integers")?,
        ),
        Some(_) => return Err("`versions` must be an array of schema versions".into()),
    };
    Ok(Capabilities {
        max_rate_per_second: positive("max_rate_per_second")?,
        max_in_flight,
        accepts_batches,
        versions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret() -> Secret {
        Secret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap()
    }

    #[test]
    fn the_request_carries_the_challenge() {
        let c = challenge();
        assert_eq!(c.len(), 32);
        assert_ne!(c, challenge());
        let body: Value = serde_json::from_slice(&request_body(&c, "t")).unwrap();
        assert_eq!(body["type"], EVENT_TYPE);
        assert_eq!(body["data"]["challenge"], c.as_str());
    }

    #[test]
    fn the_challenge_or_its_hmac_is_a_right_answer() {
        let s = [secret()];
        let echo = judge(Some(200), r#"{"challenge": "abc"}"#, "abc", &s);
        assert_eq!(echo, Ok(Capabilities::default()));
        let mac = s[0].hmac_hex("abc");
        assert_eq!(mac.len(), 64);
        let body = format!(r#"{{"challenge": "{mac}"}}"#);
        assert!(judge(Some(200), &body, "abc", &s).is_ok());
        assert!(judge(Some(200), &body, "abd", &s).is_err());
    }

    #[test]
    fn wrong_answers_say_what_was_wrong() {
        let s = [secret()];
        let cases = [
            (Some(500), r#"{"challenge": "abc"}"#, "answered 500"),
            (None, "", "no answer"),
            (Some(200), "ok", "not JSON"),
            (Some(200), "[1]", "not a JSON object"),
            (Some(200), "{}", "no `challenge`"),
            (Some(200), r#"{"challenge": 1}"#, "not a string"),
            (Some(200), r#"{"challenge": "abd"}"#, "neither"),
            (
                Some(200),
                r#"{"challenge": "abc", "max_rate_per_second": 0}"#,
                "positive",
            ),
            (
                Some(200),
                r#"{"challenge": "abc", "accepts_batches": "no"}"#,
                "true or false",
            ),
            (
                Some(200),
                r#"{"challenge": "abc", "versions": [0]}"#,
                "positive",
            ),
        ];
        for (status, body, says) in cases {
            let why = judge(status, body, "abc", &s).unwrap_err();
            assert!(why.contains(says), "{body}: {why}");
        }
    }

    #[test]
    fn declared_capabilities_are_read() {
        let body = r#"{"challenge": "abc", "max_rate_per_second": 10, "max_in_flight": 2,
            "accepts_batches": false, "versions": [1, 2]}"#;
        let got = judge(Some(200), body, "abc", &[]).unwrap();
        assert_eq!(
            got,
            Capabilities {
                max_rate_per_second: Some(10),
                max_in_flight: Some(2),
                accepts_batches: Some(false),
                versions: Some(vec![1, 2]),
            }
        );
    }
}
