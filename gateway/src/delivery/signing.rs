//! Standard Webhooks signing: `webhook-signature: v1,<base64 HMAC-SHA256 of
//! "{id}.{timestamp}.{body}">` (secrets `whsec_<base64>`), or for an
//! `ed25519` endpoint `v1a,<base64 ed25519 signature>` of the same bytes
//! (keys `whsk_<base64 seed>`), over the exact body bytes sent, with every
//! live key (space-separated during a rotation). Keys never print.

use crate::model::SigningKey;

/// The `webhook-signature` header value: one signature per live key.
pub fn signature_header<'a>(
    keys: impl IntoIterator<Item = &'a SigningKey>,
    msg_id: &str,
    timestamp: i64,
    body: &[u8],
) -> String {
    keys.into_iter()
        .map(|k| k.sign(msg_id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Secret, SignatureScheme};

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
            let key = SigningKey::parse(secret).unwrap();
            assert_eq!(key.sign(id, ts, body.as_bytes()), expected);
        }
    }

    #[test]
    fn every_live_secret_signs_space_separated() {
        let a = SigningKey::parse(VECTORS[0].0).unwrap();
        let b = SigningKey::parse(VECTORS[1].0).unwrap();
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

    #[test]
    fn keys_of_both_schemes_sign_side_by_side() {
        let hmac = SigningKey::parse(VECTORS[0].0).unwrap();
        let ed = SigningKey::generate(SignatureScheme::Ed25519);
        let (_, id, ts, body, expected) = VECTORS[0];
        let header = signature_header([&ed, &hmac], id, ts, body.as_bytes());
        let parts: Vec<&str> = header.split(' ').collect();
        assert_eq!(parts.len(), 2);
        assert!(parts[0].starts_with("v1a,"));
        assert_eq!(parts[1], expected);
    }
}
