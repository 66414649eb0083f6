//! Standard Webhooks signing: `webhook-signature: v1,<base64 HMAC-SHA256 of
//! "{id}.{timestamp}.{body}">`, over the exact body bytes sent, with every
//! live secret (space-separated during a rotation). Secrets are
//! `whsec_<base64>` and never print.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

const PREFIX: &str = "whsec_";

/// A signing secret. `Debug` never shows the key.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl Secret {
    /// 24 random bytes, as Standard Webhooks libraries make them.
    pub fn generate() -> Secret {
        let mut key = vec![0u8; 24];
        rand::rng().fill_bytes(&mut key);
        Secret(key)
    }

    /// Parses `whsec_<base64>`.
    pub fn parse(text: &str) -> Option<Secret> {
        let key = STANDARD.decode(text.strip_prefix(PREFIX)?).ok()?;
        (!key.is_empty()).then_some(Secret(key))
    }

    /// The `whsec_...` form shown to the tenant.
    pub fn expose(&self) -> String {
        format!("{PREFIX}{}", STANDARD.encode(&self.0))
    }

    /// `v1,<base64 signature>` of one message.
    pub fn sign(&self, msg_id: &str, timestamp: i64, body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(msg_id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
    }
}

/// The `webhook-signature` header value: one signature per live secret.
pub fn signature_header<'a>(
    secrets: impl IntoIterator<Item = &'a Secret>,
    msg_id: &str,
    timestamp: i64,
    body: &[u8],
) -> String {
    secrets
        .into_iter()
        .map(|s| s.sign(msg_id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    // Known-answer vectors from the Standard Webhooks specification.
    const VECTORS: [(&str, &str, i64, &str, &str); 2] = [
        (
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            "{\"test\": 2432232314}",
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
        ),
        (
            "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD",
            "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
            1649367553,
            "{\"email\":\"test@example.com\",\"username\":\"test_user\"}",
            "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=",
        ),
    ];

    #[test]
    fn known_answers() {
        for (secret, id, ts, body, expected) in VECTORS {
            let secret = Secret::parse(secret).unwrap();
            assert_eq!(secret.sign(id, ts, body.as_bytes()), expected);
        }
    }

    #[test]
    fn every_live_secret_signs_space_separated() {
        let a = Secret::parse(VECTORS[0].0).unwrap();
        let b = Secret::parse(VECTORS[1].0).unwrap();
        let (_, id, ts, body, expected) = VECTORS[0];
        let header = signature_header([&a, &b], id, ts, body.as_bytes());
        let parts: Vec<&str> = header.split(' ').collect();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0], expected);
        assert!(parts[1].starts_with("v1,") && parts[1] != expected);
    }

    #[test]
    fn secrets_round_trip_and_never_print() {
        let s = Secret::generate();
        assert_eq!(Secret::parse(&s.expose()), Some(s.clone()));
        assert_eq!(format!("{s:?}"), "Secret([redacted])");
        assert!(Secret::parse("nope").is_none());
        assert!(Secret::parse("whsec_").is_none());
        assert!(Secret::parse("whsec_!!!").is_none());
    }
}
