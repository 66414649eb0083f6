//! Encryption at rest: what the gateway stores in Redis that is secret
//! (endpoint signing secrets and client keys) or private (event payloads)
//! is sealed with AES-256-GCM under the first key of
//! `security.encryption_key`, and opened with whichever key of the list
//! sealed it, named by its id beside the ciphertext:
//!
//! ```text
//! gwe1.<key id: 8 hex digits of the key's SHA-256>.<base64url(nonce ‖ ciphertext ‖ tag)>
//! ```
//!
//! A value without that prefix is read as it is: records stored before a
//! key was set stay readable, and a gateway without keys stores in clear.
//! The key ring is the process's, set at start ([`install`]), because
//! every record type reads and writes through serde; the benchmark sets it
//! again between its phases.

use std::borrow::Cow;
use std::sync::{Arc, RwLock};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use sha2::{Digest, Sha256};

const PREFIX: &str = "gwe1.";

/// The keys a process seals and opens with: the first seals.
pub struct KeyRing {
    keys: Vec<(String, LessSafeKey)>,
}

// A std RwLock: written once at start, read (never held across an await)
// for each value sealed or opened.
static RING: RwLock<Option<Arc<KeyRing>>> = RwLock::new(None);

fn ring() -> Option<Arc<KeyRing>> {
    RING.read().unwrap_or_else(|e| e.into_inner()).clone()
}

/// Why a sealed value does not open.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealError {
    #[error("a sealed value is malformed")]
    Malformed,
    #[error("a value was sealed under key {0}, which is not in security.encryption_key")]
    UnknownKey(String),
    #[error("a sealed value failed authentication (wrong key or altered)")]
    Altered,
}

impl KeyRing {
    /// A ring of 32-byte keys; `None` for an empty list.
    pub fn new(keys: &[[u8; 32]]) -> Option<KeyRing> {
        let keys: Vec<(String, LessSafeKey)> = keys
            .iter()
            .map(|key| {
                let id = hex::encode(&Sha256::digest(key)[..4]);
                let unbound = UnboundKey::new(&AES_256_GCM, key).expect("a 32-byte key");
                (id, LessSafeKey::new(unbound))
            })
            .collect();
        (!keys.is_empty()).then_some(KeyRing { keys })
    }

    /// The id of the key that seals.
    pub fn sealing_id(&self) -> &str {
        &self.keys[0].0
    }

    pub fn seal(&self, plain: &[u8]) -> String {
        let (id, key) = &self.keys[0];
        // A random 96-bit nonce from the thread's CSPRNG (ChaCha, seeded
        // and reseeded from the OS): no system call per value, and unique
        // with overwhelming odds for far more values than one key seals.
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        // One buffer, framed as stored: nonce, ciphertext (sealed in
        // place), tag.
        let mut framed = Vec::with_capacity(NONCE_LEN + plain.len() + AES_256_GCM.tag_len());
        framed.extend_from_slice(&nonce);
        framed.extend_from_slice(plain);
        let tag = key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(id.as_bytes()),
                &mut framed[NONCE_LEN..],
            )
            .expect("AES-GCM seals any length the gateway stores");
        framed.extend_from_slice(tag.as_ref());
        let mut text = format!("{PREFIX}{id}.");
        URL_SAFE_NO_PAD.encode_string(&framed, &mut text);
        text
    }

    /// The plain bytes of a value [`KeyRing::seal`] made.
    pub fn open(&self, sealed: &str) -> Result<Vec<u8>, SealError> {
        let rest = sealed.strip_prefix(PREFIX).ok_or(SealError::Malformed)?;
        let (id, text) = rest.split_once('.').ok_or(SealError::Malformed)?;
        let (_, key) = self
            .keys
            .iter()
            .find(|(k, _)| k == id)
            .ok_or_else(|| SealError::UnknownKey(id.to_string()))?;
        let mut framed = URL_SAFE_NO_PAD
            .decode(text)
            .map_err(|_| SealError::Malformed)?;
        if framed.len() < NONCE_LEN {
            return Err(SealError::Malformed);
        }
        let nonce = Nonce::try_assume_unique_for_key(&framed[..NONCE_LEN])
            .map_err(|_| SealError::Malformed)?;
        // Opened in place, then the nonce and the tag cut off.
        let plain_len = key
            .open_in_place(nonce, Aad::from(id.as_bytes()), &mut framed[NONCE_LEN..])
            .map_err(|_| SealError::Altered)?
            .len();
        framed.truncate(NONCE_LEN + plain_len);
        framed.drain(..NONCE_LEN);
        Ok(framed)
    }
}

/// Sets the process's key ring (none for an empty list). Answers the id
/// of the key that seals, if there is one.
pub fn install(keys: &[[u8; 32]]) -> Option<String> {
    let ring = KeyRing::new(keys).map(Arc::new);
    let id = ring.as_ref().map(|r| r.sealing_id().to_string());
    *RING.write().unwrap_or_else(|e| e.into_inner()) = ring;
    id
}

/// `plain` sealed under the process's key, or as it is without one.
pub fn seal(plain: &str) -> Cow<'_, str> {
    match ring() {
        Some(ring) => Cow::Owned(ring.seal(plain.as_bytes())),
        None => Cow::Borrowed(plain),
    }
}

/// A stored value opened: sealed ones with the process's keys, others as
/// they are.
pub fn open(stored: &str) -> Result<Cow<'_, str>, SealError> {
    if !stored.starts_with(PREFIX) {
        return Ok(Cow::Borrowed(stored));
    }
    let ring = ring()
        .ok_or_else(|| SealError::UnknownKey(stored[PREFIX.len()..].chars().take(8).collect()))?;
    let plain = ring.open(stored)?;
    String::from_utf8(plain)
        .map(Cow::Owned)
        .map_err(|_| SealError::Malformed)
}

/// `#[serde(with = "sealed::text")]` for a `String` field stored sealed.
pub mod text {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &str, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&super::seal(value))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
        let stored = String::deserialize(deserializer)?;
        super::open(&stored)
            .map(|plain| plain.into_owned())
            .map_err(serde::de::Error::custom)
    }
}

/// `#[serde(with = "sealed::optional")]` for an `Option<String>` field.
pub mod optional {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(
        value: &Option<String>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(v) => serializer.serialize_some(&*super::seal(v)),
            None => serializer.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<String>, D::Error> {
        Option::<String>::deserialize(deserializer)?
            .map(|stored| {
                super::open(&stored)
                    .map(|plain| plain.into_owned())
                    .map_err(serde::de::Error::custom)
            })
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(keys: &[[u8; 32]]) -> KeyRing {
        KeyRing::new(keys).expect("keys")
    }

    #[test]
    fn a_sealed_value_opens_to_itself_and_hides_it() {
        let ring = ring(&[[7; 32]]);
        let sealed = ring.seal(b"whsec_secret payload");
        assert!(sealed.starts_with(PREFIX), "{sealed}");
        assert!(!sealed.contains("secret"), "{sealed}");
        assert_eq!(ring.open(&sealed).unwrap(), b"whsec_secret payload");
        assert_ne!(ring.seal(b"x"), ring.seal(b"x"), "a fresh nonce each time");
    }

    #[test]
    fn an_older_key_of_the_list_still_opens_what_it_sealed() {
        let old = ring(&[[1; 32]]);
        let sealed = old.seal(b"kept");
        let rotated = ring(&[[2; 32], [1; 32]]);
        assert_eq!(rotated.open(&sealed).unwrap(), b"kept");
        assert_ne!(rotated.sealing_id(), old.sealing_id());
        let dropped = ring(&[[2; 32]]);
        assert_eq!(
            dropped.open(&sealed),
            Err(SealError::UnknownKey(old.sealing_id().to_string()))
        );
    }

    #[test]
    fn an_altered_value_does_not_open() {
        let ring = ring(&[[3; 32]]);
        let sealed = ring.seal(b"amount=100");
        let mut bytes = URL_SAFE_NO_PAD
            .decode(sealed.rsplit('.').next().unwrap())
            .unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        let id = ring.sealing_id();
        let altered = format!("{PREFIX}{id}.{}", URL_SAFE_NO_PAD.encode(&bytes));
        assert_eq!(ring.open(&altered), Err(SealError::Altered));
        assert_eq!(
            ring.open(&format!("{PREFIX}{id}.!!")),
            Err(SealError::Malformed)
        );
    }

    #[test]
    fn a_value_never_sealed_reads_as_it_is() {
        assert_eq!(open("{\"type\":\"a\"}").unwrap(), "{\"type\":\"a\"}");
    }
}
