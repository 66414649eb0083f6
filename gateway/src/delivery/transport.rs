//! The send step of the delivery pipeline, behind a small trait: what a
//! destination needs to take one signed request and say what came of it.
//! HTTP callbacks ([`HttpClient`]) are the only destination today; another
//! kind (a broker, a stream) implements [`Transport`] and nothing else in
//! the pipeline changes.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use reqwest::header::HeaderMap;

use super::client::{Attempt, HttpClient};
use super::tls::ClientTls;

/// One request, signed and ready to go.
pub struct Request {
    pub url: String,
    /// The endpoint's own TLS settings, if it has any.
    pub tls: Option<ClientTls>,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    pub timeout: Duration,
}

/// A destination for deliveries. `send` never fails itself: every way a
/// request can go wrong is an [`Attempt`] with its error.
pub trait Transport: Send + Sync + 'static {
    fn send(&self, request: Request) -> Pin<Box<dyn Future<Output = Attempt> + Send + '_>>;
}

impl Transport for HttpClient {
    fn send(&self, request: Request) -> Pin<Box<dyn Future<Output = Attempt> + Send + '_>> {
        Box::pin(async move {
            let tls = request.tls.as_ref();
            self.post(
                &request.url,
                tls,
                request.headers,
                request.body,
                request.timeout,
            )
            .await
        })
    }
}
