//! Ids the gateway makes, and the digest that names things by content.

use sha2::{Digest, Sha256};

/// Ids made here: a prefix and a ULID (sortable by creation time).
pub fn new_id(prefix: &str) -> String {
    format!(
        "{prefix}_{}",
        ulid::Ulid::new().to_string().to_ascii_lowercase()
    )
}

/// Lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}
