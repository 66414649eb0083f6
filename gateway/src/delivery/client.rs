//! The outbound HTTP client: pooled connections, a timeout per request, no
//! redirects (only a 2xx counts), and, unless private destinations are
//! allowed, a resolver that refuses loopback, private and link-local
//! addresses so endpoints cannot reach into the gateway's own network.
//! An endpoint with its own TLS settings (a client certificate, its own
//! CAs) is served by a client of its own, built alike ([`super::tls`]).

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant, SystemTime};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::HeaderMap;

use super::retry::parse_retry_after;
use super::tls::{ClientTls, TlsClients};

/// Bytes of a response body kept in the attempt log.
pub const RESPONSE_SNIPPET: usize = 1024;

/// What one HTTP attempt came to.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub status: Option<u16>,
    pub latency: Duration,
    pub response: String,
    pub error: Option<String>,
    pub retry_after: Option<Duration>,
}

impl Attempt {
    pub fn succeeded(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }

    pub fn gone(&self) -> bool {
        self.status == Some(410)
    }
}

#[derive(Clone)]
pub struct HttpClient {
    client: reqwest::Client,
    allow_private: bool,
    /// The clients of endpoints with their own TLS settings.
    tls_clients: TlsClients,
}

impl HttpClient {
    pub fn new(allow_private: bool) -> anyhow::Result<Self> {
        Ok(HttpClient {
            client: builder(allow_private).build()?,
            allow_private,
            tls_clients: TlsClients::default(),
        })
    }

    /// POSTs `body`, over `tls` when the endpoint has its own TLS settings,
    /// and reports what happened; never fails itself.
    pub async fn post(
        &self,
        url: &str,
        tls: Option<&ClientTls>,
        headers: HeaderMap,
        body: Vec<u8>,
        timeout: Duration,
    ) -> Attempt {
        let started = Instant::now();
        let failed = |error: String| Attempt {
            status: None,
            latency: started.elapsed(),
            response: String::new(),
            error: Some(error),
            retry_after: None,
        };
        if !self.allow_private
            && let Some(reason) = literal_private_host(url)
        {
            return failed(reason);
        }
        let client = match tls {
            None => self.client.clone(),
            Some(tls) => {
                let build = || tls.apply(builder(self.allow_private))?.build();
                match self.tls_clients.get_or_build(tls, build) {
                    Ok(client) => client,
                    Err(e) => {
                        return failed(format!(
                            "the endpoint's TLS settings are unusable: {}",
                            error_chain(&e)
                        ));
                    }
                }
            }
        };
        let sent = client
            .post(url)
            .headers(headers)
            .body(body)
            .timeout(timeout)
            .send()
            .await;
        let mut response = match sent {
            Ok(r) => r,
            Err(e) if e.is_timeout() => {
                return failed(format!("timed out after {} ms", timeout.as_millis()));
            }
            Err(e) => return failed(format!("request failed: {}", error_chain(&e))),
        };
        let status = response.status().as_u16();
        let retry_after = matches!(status, 429 | 503)
            .then(|| response.headers().get(reqwest::header::RETRY_AFTER))
            .flatten()
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, SystemTime::now()));
        let mut snippet = Vec::new();
        let deadline = timeout.saturating_sub(started.elapsed());
        // The body is only read for the attempt log; a slow one is cut short.
        let _ = tokio::time::timeout(deadline, async {
            while snippet.len() < RESPONSE_SNIPPET {
                match response.chunk().await {
                    Ok(Some(chunk)) => snippet.extend_from_slice(&chunk),
                    _ => break,
                }
            }
        })
        .await;
        snippet.truncate(RESPONSE_SNIPPET);
        let error = (!(200..300).contains(&status)).then(|| format!("endpoint answered {status}"));
        Attempt {
            status: Some(status),
            latency: started.elapsed(),
            response: String::from_utf8_lossy(&snippet).into_owned(),
            error,
            retry_after,
        }
    }
}

/// The settings of every outbound client.
fn builder(allow_private: bool) -> reqwest::ClientBuilder {
    let builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(5))
        .pool_idle_timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(64)
        .user_agent(concat!("webhook-gateway/", env!("CARGO_PKG_VERSION")));
    match allow_private {
        true => builder,
        false => builder.dns_resolver(std::sync::Arc::new(PublicOnly)),
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Why a URL whose host is a literal address is refused, if it is.
pub fn literal_private_host(url: &str) -> Option<String> {
    let parsed = reqwest::Url::parse(url).ok()?;
    let ip = match parsed.host()? {
        url::Host::Ipv4(ip) => IpAddr::V4(ip),
        url::Host::Ipv6(ip) => IpAddr::V6(ip),
        url::Host::Domain(d)
            if d.eq_ignore_ascii_case("localhost") || d.ends_with(".localhost") =>
        {
            return Some(format!("destination {d} is a loopback name"));
        }
        url::Host::Domain(_) => return None,
    };
    is_private(ip).then(|| format!("destination {ip} is a private or loopback address"))
}

/// Loopback, private, link-local, shared (CGNAT), unspecified, multicast and
/// documentation ranges, and IPv4 inside IPv6.
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_private(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
        }
    }
}

/// Resolves names and keeps only public addresses.
struct PublicOnly;

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let host = name.as_str().to_string();
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| !is_private(a.ip()))
                .collect();
            if addrs.is_empty() {
                return Err(
                    format!("{host} resolves only to private or loopback addresses").into(),
                );
            }
            let addrs: Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_ranges_are_recognised() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(is_private(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["93.184.216.34", "1.1.1.1", "2606:4700::1111"] {
            assert!(!is_private(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn literal_hosts_are_checked() {
        assert!(literal_private_host("http://127.0.0.1:9/x").is_some());
        assert!(literal_private_host("http://[::1]/").is_some());
        assert!(literal_private_host("http://localhost/").is_some());
        assert!(literal_private_host("https://example.com/").is_none());
        assert!(literal_private_host("https://8.8.8.8/").is_none());
    }
}
