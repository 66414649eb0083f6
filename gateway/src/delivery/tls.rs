//! TLS of one endpoint: the client certificate its deliveries present and
//! the CAs its server's certificate must chain to ([`ClientTls`]), checked
//! when the endpoint is written ([`tls_problems`]), and one HTTP client per
//! distinct set of them, built when first needed and kept ([`TlsClients`]).
//!
//! An endpoint's `ca_pem` replaces the web roots for that endpoint (its
//! server is one the tenant runs, with its own CA); without it, the web
//! roots are trusted, as for every other endpoint.

use std::collections::HashMap;
use std::sync::Arc;

use reqwest::{Certificate, ClientBuilder, Identity};
use sha2::{Digest, Sha256};

use crate::model::FieldError;
use crate::store::Endpoint;

/// Largest PEM accepted in each of the three fields, in bytes.
pub const MAX_PEM_BYTES: usize = 64 * 1024;

/// Clients kept at once; past it one is dropped (and built again if needed).
const MAX_CLIENTS: usize = 1024;

/// What one endpoint's deliveries present and trust over TLS.
#[derive(Clone)]
pub struct ClientTls {
    /// The certificate chain, then its key: what `Identity::from_pem` reads.
    identity: Option<Vec<u8>>,
    ca: Option<Vec<u8>>,
    /// SHA-256 of both: its client's key in [`TlsClients`].
    digest: [u8; 32],
}

impl std::fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientTls")
            .field("identity", &self.identity.as_ref().map(|_| "[redacted]"))
            .field("own_ca", &self.ca.is_some())
            .finish()
    }
}

impl ClientTls {
    /// `endpoint`'s, or `None` when it sets neither a client certificate
    /// nor a CA (the shared client serves it).
    pub fn of(endpoint: &Endpoint) -> Option<ClientTls> {
        let key = endpoint.client_key_pem.as_ref().map(|k| k.expose());
        ClientTls::new(
            endpoint.client_cert_pem.as_deref(),
            key,
            endpoint.ca_pem.as_deref(),
        )
    }

    fn new(cert: Option<&str>, key: Option<&str>, ca: Option<&str>) -> Option<ClientTls> {
        let identity = match (cert, key) {
            (Some(cert), Some(key)) => Some(format!("{cert}\n{key}").into_bytes()),
            _ => None,
        };
        let ca = ca.map(|pem| pem.as_bytes().to_vec());
        if identity.is_none() && ca.is_none() {
            return None;
        }
        let mut hash = Sha256::new();
        // Each part tagged and length-prefixed, so no two sets hash alike.
        for part in [&identity, &ca] {
            match part {
                Some(bytes) => {
                    hash.update([1]);
                    hash.update((bytes.len() as u64).to_be_bytes());
                    hash.update(bytes);
                }
                None => hash.update([0]),
            }
        }
        Some(ClientTls {
            identity,
            ca,
            digest: hash.finalize().into(),
        })
    }

    /// `builder` presenting its certificate and trusting its CAs only.
    pub(super) fn apply(&self, mut builder: ClientBuilder) -> reqwest::Result<ClientBuilder> {
        if let Some(pem) = &self.identity {
            builder = builder.identity(Identity::from_pem(pem)?);
        }
        if let Some(pem) = &self.ca {
            builder = builder.tls_built_in_root_certs(false);
            for certificate in Certificate::from_pem_bundle(pem)? {
                builder = builder.add_root_certificate(certificate);
            }
        }
        Ok(builder)
    }
}

/// One client per distinct [`ClientTls`], by its digest, at most
/// [`MAX_CLIENTS`]. Each has its own connection pool, so connections made
/// with one endpoint's certificate are never used for another's.
#[derive(Clone, Default)]
pub struct TlsClients {
    // A plain mutex: held for one look-up or one insert, never across an
    // await nor while a client is built, so it is never contended for long.
    clients: Arc<parking_lot::Mutex<HashMap<[u8; 32], reqwest::Client>>>,
}

impl TlsClients {
    /// The client of `tls`, built by `build` when there is none yet.
    pub fn get_or_build(
        &self,
        tls: &ClientTls,
        build: impl FnOnce() -> reqwest::Result<reqwest::Client>,
    ) -> reqwest::Result<reqwest::Client> {
        if let Some(client) = self.clients.lock().get(&tls.digest) {
            return Ok(client.clone());
        }
        let built = build()?;
        let mut clients = self.clients.lock();
        if clients.len() >= MAX_CLIENTS
            && !clients.contains_key(&tls.digest)
            && let Some(any) = clients.keys().next().copied()
        {
            clients.remove(&any);
        }
        Ok(clients.entry(tls.digest).or_insert(built).clone())
    }
}

/// What is wrong with an endpoint's `client_cert_pem`, `client_key_pem`
/// and `ca_pem`, each at its pointer: a certificate and a key come
/// together, certificates parse (and a CA's as a trust anchor), and the key
/// is a supported private key of the certificate.
pub fn tls_problems(cert: Option<&str>, key: Option<&str>, ca: Option<&str>) -> Vec<FieldError> {
    let mut errors = Vec::new();
    match (cert, key) {
        (Some(_), None) => errors.push(FieldError::new(
            "/client_key_pem",
            "is required with client_cert_pem",
        )),
        (None, Some(_)) => errors.push(FieldError::new(
            "/client_cert_pem",
            "is required with client_key_pem",
        )),
        _ => {}
    }
    let cert_ok = cert.is_some_and(|pem| certificates("/client_cert_pem", pem, &mut errors));
    if let Some(pem) = ca
        && certificates("/ca_pem", pem, &mut errors)
        && !builds(None, None, Some(pem))
    {
        errors.push(FieldError::new(
            "/ca_pem",
            "holds a certificate that cannot be trusted as a CA",
        ));
    }
    if let Some(pem) = key {
        if pem.len() > MAX_PEM_BYTES {
            errors.push(FieldError::new("/client_key_pem", "must be at most 64 KiB"));
        } else if !pem.contains("PRIVATE KEY-----") {
            errors.push(FieldError::new(
                "/client_key_pem",
                "is not a PEM private key",
            ));
        } else if cert_ok && !builds(cert, Some(pem), None) {
            errors.push(FieldError::new(
                "/client_key_pem",
                "is not a supported private key of the client_cert_pem certificate",
            ));
        }
    }
    errors
}

/// Whether `pem` holds certificates, and only them; else says why at `pointer`.
fn certificates(pointer: &str, pem: &str, errors: &mut Vec<FieldError>) -> bool {
    let why = if pem.len() > MAX_PEM_BYTES {
        "must be at most 64 KiB"
    } else if pem.contains("PRIVATE KEY") {
        "must hold certificates only (a key goes in client_key_pem)"
    } else if !Certificate::from_pem_bundle(pem.as_bytes()).is_ok_and(|c| !c.is_empty()) {
        "is not one or more PEM certificates"
    } else {
        return true;
    };
    errors.push(FieldError::new(pointer, why));
    false
}

/// Whether a client presenting `cert` with `key` and trusting `ca` builds.
fn builds(cert: Option<&str>, key: Option<&str>, ca: Option<&str>) -> bool {
    ClientTls::new(cert, key, ca).is_some_and(|tls| {
        tls.apply(reqwest::Client::builder())
            .and_then(|b| b.build())
            .is_ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_certificate_and_a_key_come_together_and_parse() {
        let errors = tls_problems(Some("x"), None, None);
        let pointers: Vec<&str> = errors.iter().map(|e| e.pointer.as_str()).collect();
        assert_eq!(pointers, ["/client_key_pem", "/client_cert_pem"]);
        let errors = tls_problems(None, None, Some("-----BEGIN PRIVATE KEY-----"));
        assert_eq!(errors[0].pointer, "/ca_pem");
        let errors = tls_problems(None, Some("not a key"), None);
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(tls_problems(None, None, None).is_empty());
    }

    #[test]
    fn sets_differ_by_digest_and_debug_hides_the_key() {
        let a = ClientTls::new(Some("c"), Some("k1"), None).unwrap();
        let b = ClientTls::new(Some("c"), Some("k2"), None).unwrap();
        let c = ClientTls::new(None, None, Some("c\nk1")).unwrap();
        assert_ne!(a.digest, b.digest);
        assert_ne!(a.digest, c.digest);
        assert!(ClientTls::new(None, None, None).is_none());
        assert!(!format!("{a:?}").contains("k1"));
    }
}
