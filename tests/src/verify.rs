//! A Standard Webhooks verifier written from the specification, so tests do
//! not trust the gateway's own signing code: the signed content is
//! `{webhook-id}.{webhook-timestamp}.{body}`, HMAC-SHA256 with the base64 key
//! after `whsec_`, and any one of the space-separated `v1,` signatures may match.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::Recorded;

/// Tolerance for `webhook-timestamp` against the local clock.
const TOLERANCE_SECS: i64 = 300;

/// Checks a received request against `secret` (`whsec_...`).
pub fn verify_signature(secret: &str, request: &Recorded) -> Result<(), String> {
    let id = request.header("webhook-id").ok_or("no webhook-id header")?;
    let timestamp = request
        .header("webhook-timestamp")
        .ok_or("no webhook-timestamp header")?;
    let signatures = request
        .header("webhook-signature")
        .ok_or("no webhook-signature header")?;
    let ts: i64 = timestamp
        .parse()
        .map_err(|_| format!("timestamp {timestamp:?} is not integer seconds"))?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    if (now - ts).abs() > TOLERANCE_SECS {
        return Err(format!("timestamp {ts} is too far from now ({now})"));
    }
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").ok_or("secret lacks whsec_")?)
        .map_err(|e| e.to_string())?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(&request.body);
    let expected = STANDARD.encode(mac.finalize().into_bytes());
    let matched = signatures
        .split(' ')
        .filter_map(|s| s.strip_prefix("v1,"))
        .any(|sig| sig == expected);
    if matched {
        Ok(())
    } else {
        Err(format!("no signature in {signatures:?} matches"))
    }
}
