//! Standard Webhooks signing: key parsing (`whsec_...`, `whsk_...`), the
//! `webhook-signature` value (`v1,` HMAC-SHA256 / `v1a,` ed25519 over
//! `{id}.{timestamp}.{body}`), checked against independent verifiers; and
//! `Retry-After` parsing.
#![no_main]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arbitrary::Arbitrary;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use gateway::delivery::retry::parse_retry_after;
use gateway::delivery::signing::signature_header;
use gateway::model::{Secret, SignatureScheme, SigningKey};
use hmac::{Hmac, Mac};
use libfuzzer_sys::fuzz_target;
use ring::signature::{ED25519, UnparsedPublicKey};
use sha2::Sha256;

#[derive(Arbitrary, Debug)]
enum KeyText<'a> {
    /// Any text at all.
    Raw(&'a str),
    /// `whsec_` and the base64 of these bytes.
    Hmac(&'a [u8]),
    /// `whsk_` and the base64 of these bytes (a seed when 32 long).
    Ed25519(&'a [u8]),
    Seed([u8; 32]),
}

impl KeyText<'_> {
    fn text(&self) -> String {
        match self {
            KeyText::Raw(t) => t.to_string(),
            KeyText::Hmac(b) => format!("whsec_{}", STANDARD.encode(b)),
            KeyText::Ed25519(b) => format!("whsk_{}", STANDARD.encode(b)),
            KeyText::Seed(b) => format!("whsk_{}", STANDARD.encode(b)),
        }
    }
}

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    keys: Vec<KeyText<'a>>,
    msg_id: &'a str,
    timestamp: i64,
    body: &'a [u8],
    retry_after: &'a str,
    now_secs: u32,
}

/// What a consumer verifies: the signed content of one message.
fn signed_content(msg_id: &str, timestamp: i64, body: &[u8]) -> Vec<u8> {
    let mut content = format!("{msg_id}.{timestamp}.").into_bytes();
    content.extend_from_slice(body);
    content
}

fn verify(key: &SigningKey, signature: &str, content: &[u8]) {
    match key.scheme() {
        SignatureScheme::Hmac => {
            let b64 = signature
                .strip_prefix("v1,")
                .expect("an HMAC signature is v1,");
            let mac = STANDARD.decode(b64).expect("base64");
            let secret = key.verifier();
            let raw = STANDARD
                .decode(secret.strip_prefix("whsec_").expect("whsec_"))
                .expect("base64 secret");
            let mut check = Hmac::<Sha256>::new_from_slice(&raw).unwrap();
            check.update(content);
            check.verify_slice(&mac).expect("the HMAC verifies");
        }
        SignatureScheme::Ed25519 => {
            let b64 = signature
                .strip_prefix("v1a,")
                .expect("an ed25519 signature is v1a,");
            let sig = STANDARD.decode(b64).expect("base64");
            assert_eq!(sig.len(), 64);
            let public = key.verifier();
            let public = STANDARD
                .decode(public.strip_prefix("whpk_").expect("whpk_"))
                .expect("base64 public key");
            UnparsedPublicKey::new(&ED25519, public)
                .verify(content, &sig)
                .expect("the ed25519 signature verifies");
        }
    }
}

fuzz_target!(|input: Input| {
    let mut keys = Vec::new();
    for text in input.keys.iter().take(8).map(KeyText::text) {
        if let Some(secret) = Secret::parse(&text) {
            assert_eq!(Secret::parse(&secret.expose()).as_ref(), Some(&secret));
            assert_eq!(secret.hmac_hex(input.msg_id).len(), 64);
        }
        let Some(key) = SigningKey::parse(&text) else {
            continue;
        };
        assert_eq!(SigningKey::parse(&key.expose()).as_ref(), Some(&key));
        assert!(
            !format!("{key:?}").contains(&key.expose()),
            "Debug shows the key"
        );
        keys.push(key);
    }

    let content = signed_content(input.msg_id, input.timestamp, input.body);
    let header = signature_header(&keys, input.msg_id, input.timestamp, input.body);
    assert!(
        http::HeaderValue::try_from(header.as_str()).is_ok(),
        "{header:?}"
    );
    let parts: Vec<&str> = if header.is_empty() {
        Vec::new()
    } else {
        header.split(' ').collect()
    };
    assert_eq!(parts.len(), keys.len(), "{header:?}");
    for (key, part) in keys.iter().zip(&parts) {
        assert_eq!(*part, key.sign(input.msg_id, input.timestamp, input.body));
        verify(key, part, &content);
    }

    let now = UNIX_EPOCH + Duration::from_secs(u64::from(input.now_secs));
    let parsed = parse_retry_after(input.retry_after, now);
    if let Ok(seconds) = input.retry_after.trim().parse::<u64>() {
        assert_eq!(parsed, Some(Duration::from_secs(seconds)));
    }
    let _ = parse_retry_after(input.retry_after, SystemTime::now());
});
