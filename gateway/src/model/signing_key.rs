//! An endpoint's signing keys: the scheme it signs with, `hmac` (a shared
//! `whsec_` [`Secret`], signatures `v1,<base64>`) or `ed25519` (a private
//! key stored as `whsk_<base64 of its 32-byte seed>`, signatures
//! `v1a,<base64 of the 64-byte signature>`, verified by the consumer with
//! the public key `whpk_<base64 of its 32 bytes>`), and one [`SigningKey`]
//! over both that signs `"{msg_id}.{timestamp}.{body}"` as Standard
//! Webhooks says. A private key never prints and is never shown.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore;
use ring::signature::{Ed25519KeyPair, KeyPair};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use super::Secret;

const PRIVATE_PREFIX: &str = "whsk_";
const PUBLIC_PREFIX: &str = "whpk_";

/// How an endpoint signs its deliveries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SignatureScheme {
    /// `v1,<base64 HMAC-SHA256>` with a shared `whsec_...` secret.
    #[default]
    Hmac,
    /// `v1a,<base64 ed25519 signature>`; the consumer verifies with the
    /// endpoint's `whpk_...` public key and never holds a signing secret.
    Ed25519,
}

impl SignatureScheme {
    pub fn is_hmac(&self) -> bool {
        *self == SignatureScheme::Hmac
    }
}

/// An ed25519 private key. `Debug` never shows it.
pub struct Ed25519Key {
    seed: [u8; 32],
    pair: Ed25519KeyPair,
}

impl std::fmt::Debug for Ed25519Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Ed25519Key([redacted])")
    }
}

impl Clone for Ed25519Key {
    fn clone(&self) -> Self {
        Ed25519Key::from_seed(self.seed)
    }
}

impl PartialEq for Ed25519Key {
    fn eq(&self, other: &Self) -> bool {
        self.seed.ct_eq(&other.seed).into()
    }
}

impl Eq for Ed25519Key {}

impl Ed25519Key {
    fn from_seed(seed: [u8; 32]) -> Ed25519Key {
        let pair =
            Ed25519KeyPair::from_seed_unchecked(&seed).expect("any 32 bytes are an ed25519 seed");
        Ed25519Key { seed, pair }
    }

    /// A key from 32 random bytes.
    pub fn generate() -> Ed25519Key {
        let mut seed = [0u8; 32];
        rand::rng().fill_bytes(&mut seed);
        Ed25519Key::from_seed(seed)
    }

    /// Parses `whsk_<base64 of the 32-byte seed>`.
    pub fn parse(text: &str) -> Option<Ed25519Key> {
        let bytes = STANDARD.decode(text.strip_prefix(PRIVATE_PREFIX)?).ok()?;
        Some(Ed25519Key::from_seed(bytes.try_into().ok()?))
    }

    /// The `whsk_...` form it is stored in (never shown to anyone).
    pub fn expose(&self) -> String {
        format!("{PRIVATE_PREFIX}{}", STANDARD.encode(self.seed))
    }

    /// The `whpk_...` public key a consumer verifies with.
    pub fn public_key(&self) -> String {
        let public = self.pair.public_key().as_ref();
        format!("{PUBLIC_PREFIX}{}", STANDARD.encode(public))
    }

    /// `v1a,<base64 signature>` of one message.
    pub fn sign(&self, msg_id: &str, timestamp: i64, body: &[u8]) -> String {
        let mut signed = Vec::with_capacity(msg_id.len() + body.len() + 24);
        signed.extend_from_slice(msg_id.as_bytes());
        signed.push(b'.');
        signed.extend_from_slice(timestamp.to_string().as_bytes());
        signed.push(b'.');
        signed.extend_from_slice(body);
        let signature = self.pair.sign(&signed);
        format!("v1a,{}", STANDARD.encode(signature.as_ref()))
    }
}

/// One key an endpoint signs with, of either scheme.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SigningKey {
    Hmac(Secret),
    Ed25519(Ed25519Key),
}

impl SigningKey {
    /// A new key of `scheme`.
    pub fn generate(scheme: SignatureScheme) -> SigningKey {
        match scheme {
            SignatureScheme::Hmac => SigningKey::Hmac(Secret::generate()),
            SignatureScheme::Ed25519 => SigningKey::Ed25519(Ed25519Key::generate()),
        }
    }

    /// Parses a stored key, `whsec_...` or `whsk_...`.
    pub fn parse(text: &str) -> Option<SigningKey> {
        if text.starts_with(PRIVATE_PREFIX) {
            Ed25519Key::parse(text).map(SigningKey::Ed25519)
        } else {
            Secret::parse(text).map(SigningKey::Hmac)
        }
    }

    pub fn scheme(&self) -> SignatureScheme {
        match self {
            SigningKey::Hmac(_) => SignatureScheme::Hmac,
            SigningKey::Ed25519(_) => SignatureScheme::Ed25519,
        }
    }

    /// The form it is stored in: `whsec_...` or `whsk_...`.
    pub fn expose(&self) -> String {
        match self {
            SigningKey::Hmac(s) => s.expose(),
            SigningKey::Ed25519(k) => k.expose(),
        }
    }

    /// What the tenant is shown to verify with: the `whsec_...` secret
    /// itself, or only the `whpk_...` public key of an ed25519 key.
    pub fn verifier(&self) -> String {
        match self {
            SigningKey::Hmac(s) => s.expose(),
            SigningKey::Ed25519(k) => k.public_key(),
        }
    }

    /// `v1,...` or `v1a,...` of one message.
    pub fn sign(&self, msg_id: &str, timestamp: i64, body: &[u8]) -> String {
        match self {
            SigningKey::Hmac(s) => s.sign(msg_id, timestamp, body),
            SigningKey::Ed25519(k) => k.sign(msg_id, timestamp, body),
        }
    }
}

#[cfg(test)]
mod tests {
    use ring::signature::{ED25519, UnparsedPublicKey};

    use super::*;

    fn key_of_hex(seed: &str) -> Ed25519Key {
        let seed: [u8; 32] = hex::decode(seed).unwrap().try_into().unwrap();
        Ed25519Key::parse(&format!("whsk_{}", STANDARD.encode(seed))).unwrap()
    }

    fn public_bytes(key: &Ed25519Key) -> Vec<u8> {
        let text = key.public_key();
        STANDARD
            .decode(text.strip_prefix("whpk_").unwrap())
            .unwrap()
    }

    // RFC 8032, section 7.1, tests 1 and 2: (seed, public key, message, signature).
    const RFC8032: [(&str, &str, &str, &str); 2] = [
        (
            "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
            "",
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155\
             5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
        ),
        (
            "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
            "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
            "72",
            "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da\
             085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
        ),
    ];

    #[test]
    fn rfc8032_known_answers() {
        for (seed, public, message, signature) in RFC8032 {
            let key = key_of_hex(seed);
            assert_eq!(hex::encode(public_bytes(&key)), public);
            let message = hex::decode(message).unwrap();
            assert_eq!(hex::encode(key.pair.sign(&message).as_ref()), signature);
        }
    }

    #[test]
    fn signs_id_timestamp_and_body_as_standard_webhooks_says() {
        let key = key_of_hex(RFC8032[0].0);
        let signed = key.sign("msg_1", 1614265330, b"{\"a\":1}");
        let signature = STANDARD
            .decode(signed.strip_prefix("v1a,").unwrap())
            .unwrap();
        assert_eq!(signature.len(), 64);
        let public = UnparsedPublicKey::new(&ED25519, public_bytes(&key));
        let message = b"msg_1.1614265330.{\"a\":1}";
        assert!(public.verify(message, &signature).is_ok());
        assert!(
            public
                .verify(b"msg_1.1614265330.{\"a\":2}", &signature)
                .is_err()
        );
    }

    #[test]
    fn keys_round_trip_never_print_and_show_only_the_public_key() {
        let key = SigningKey::generate(SignatureScheme::Ed25519);
        let stored = key.expose();
        assert!(stored.starts_with("whsk_"));
        assert_eq!(SigningKey::parse(&stored), Some(key.clone()));
        assert_eq!(format!("{key:?}"), "Ed25519(Ed25519Key([redacted]))");
        assert!(!format!("{key:?}").contains(&stored[5..]));
        let shown = key.verifier();
        assert!(shown.starts_with("whpk_") && !shown.contains(&stored[5..]));
        assert_eq!(key.scheme(), SignatureScheme::Ed25519);

        let hmac = SigningKey::generate(SignatureScheme::Hmac);
        assert!(hmac.expose().starts_with("whsec_"));
        assert_eq!(hmac.verifier(), hmac.expose());
        assert_eq!(SigningKey::parse(&hmac.expose()), Some(hmac.clone()));
        assert!(hmac.sign("m", 1, b"{}").starts_with("v1,"));
    }

    #[test]
    fn malformed_keys_are_refused() {
        assert!(SigningKey::parse("whsk_").is_none());
        assert!(SigningKey::parse("whsk_!!!").is_none());
        let short = format!("whsk_{}", STANDARD.encode([1u8; 31]));
        assert!(SigningKey::parse(&short).is_none(), "a seed is 32 bytes");
        assert!(
            SigningKey::parse("whpk_AAAA").is_none(),
            "a public key signs nothing"
        );
        assert!(SigningKey::parse("nope").is_none());
    }

    #[test]
    fn schemes_read_as_snake_case_and_default_to_hmac() {
        let scheme: SignatureScheme = serde_json::from_str("\"ed25519\"").unwrap();
        assert_eq!(scheme, SignatureScheme::Ed25519);
        assert!(SignatureScheme::default().is_hmac());
        assert!(serde_json::from_str::<SignatureScheme>("\"rsa\"").is_err());
    }
}
