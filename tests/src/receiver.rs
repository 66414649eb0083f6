//! A real HTTP receiver: records every request and answers as scripted
//! (status, `Retry-After`, delay), falling back to a default reply. Told
//! how ([`Handshake`]), it answers the gateway's `webhook.verification`
//! requests itself and keeps them apart from deliveries.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

/// How the receiver answers one request.
#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub retry_after: Option<String>,
    pub delay: Duration,
}

impl Reply {
    pub fn ok() -> Reply {
        Reply::status(200)
    }

    pub fn status(status: u16) -> Reply {
        Reply {
            status,
            retry_after: None,
            delay: Duration::ZERO,
        }
    }

    pub fn retry_after(mut self, value: &str) -> Reply {
        self.retry_after = Some(value.to_string());
        self
    }

    pub fn delay(mut self, delay: Duration) -> Reply {
        self.delay = delay;
        self
    }
}

/// How a receiver answers `webhook.verification` requests.
#[derive(Clone, Debug)]
pub enum Handshake {
    /// `200 {"challenge": <the challenge>, ...declared}`.
    Echo(Value),
    /// `200 {"challenge": hex(HMAC-SHA256(secret, challenge))}`.
    Hmac(String),
    /// `200 {"ok": true}`: JSON without the challenge.
    NoChallenge,
    /// `200 {"challenge": "wrong"}`.
    Wrong,
    /// This status, with no body.
    Status(u16),
}

impl Handshake {
    fn answer(&self, challenge: &str) -> (u16, String) {
        let echo = |c: &str, declared: &Value| {
            let mut body = declared.as_object().cloned().unwrap_or_default();
            body.insert("challenge".into(), Value::String(c.into()));
            Value::Object(body).to_string()
        };
        match self {
            Handshake::Echo(declared) => (200, echo(challenge, declared)),
            Handshake::Hmac(secret) => (200, echo(&hmac_hex(secret, challenge), &Value::Null)),
            Handshake::NoChallenge => (200, r#"{"ok": true}"#.into()),
            Handshake::Wrong => (200, echo("wrong", &Value::Null)),
            Handshake::Status(status) => (*status, String::new()),
        }
    }
}

/// Lowercase hex of HMAC-SHA256 over `text`, keyed with the bytes of `secret` (`whsec_...`).
pub fn hmac_hex(secret: &str, text: &str) -> String {
    use base64::Engine;
    use hmac::Mac;
    let key = base64::engine::general_purpose::STANDARD
        .decode(secret.strip_prefix("whsec_").expect("a whsec_ secret"))
        .expect("base64");
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).expect("any key length");
    mac.update(text.as_bytes());
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The challenge of a `webhook.verification` request's body, if it is one.
fn challenge_of(body: &[u8]) -> Option<String> {
    let body: Value = serde_json::from_slice(body).ok()?;
    if body.get("type")? != "webhook.verification" {
        return None;
    }
    Some(body["data"]["challenge"].as_str()?.to_string())
}

/// One request as received.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub path: String,
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
    pub at: Instant,
}

impl Recorded {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
}

#[derive(Default)]
struct Inner {
    requests: Mutex<Vec<Recorded>>,
    /// Requests whose reply was produced (the delay ran out with the client
    /// still connected); a request whose client went away first is not here.
    answered: Mutex<Vec<Recorded>>,
    /// Requests being answered right now (inside their delay).
    in_flight: AtomicUsize,
    /// Requests answered with a 2xx.
    succeeded: Mutex<Vec<Recorded>>,
    script: Mutex<VecDeque<Reply>>,
    default: Mutex<Option<Reply>>,
    flaky: Mutex<Option<Flaky>>,
    handshake: Mutex<Option<Handshake>>,
    handshakes: Mutex<Vec<Recorded>>,
}

/// Unscripted requests answered at random: a share fail with 500, a share
/// are answered slowly, the rest at once.
#[derive(Clone, Debug)]
pub struct Flaky {
    pub fail: f64,
    pub slow: f64,
    pub delay: Duration,
    /// The state of a xorshift generator (not zero): the same seed gives
    /// the same run of answers.
    pub seed: u64,
}

impl Flaky {
    fn next_reply(&mut self) -> Reply {
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        let draw = (self.seed >> 11) as f64 / (1u64 << 53) as f64;
        if draw < self.fail {
            Reply::status(500)
        } else if draw < self.fail + self.slow {
            Reply::ok().delay(self.delay)
        } else {
            Reply::ok()
        }
    }
}

/// Counts a request in flight until it is answered or abandoned.
struct InFlight<'a>(&'a AtomicUsize);

impl<'a> InFlight<'a> {
    fn enter(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::SeqCst);
        InFlight(count)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

#[derive(Clone)]
pub struct Receiver {
    pub addr: SocketAddr,
    inner: Arc<Inner>,
    /// `http`, or `https` for a TLS receiver.
    scheme: &'static str,
    /// TLS handshakes it refused (a TLS receiver's).
    refused: Arc<AtomicUsize>,
}

impl Receiver {
    /// Starts on a free loopback port, answering 200 unless told otherwise.
    pub async fn start() -> Receiver {
        Receiver::start_on(0).await
    }

    /// Starts on loopback port `port` (0: any free one).
    pub async fn start_on(port: u16) -> Receiver {
        let inner = Arc::new(Inner::default());
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("bind a receiver");
        let addr = listener.local_addr().expect("an address");
        let app = axum::Router::new()
            .fallback(record)
            .with_state(inner.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let refused = Arc::default();
        Receiver {
            addr,
            inner,
            scheme: "http",
            refused,
        }
    }

    /// Starts on a free loopback port over TLS with `config` (which may
    /// require client certificates: [`crate::tls::Pki::mtls_server`]).
    pub async fn start_tls(config: Arc<tokio_rustls::rustls::ServerConfig>) -> Receiver {
        let inner = Arc::new(Inner::default());
        let tcp = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("bind a receiver");
        let addr = tcp.local_addr().expect("an address");
        let refused = Arc::new(AtomicUsize::new(0));
        let listener = crate::tls::TlsListener::new(tcp, config, refused.clone());
        let app = axum::Router::new()
            .fallback(record)
            .with_state(inner.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver {
            addr,
            inner,
            scheme: "https",
            refused,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}://{}{path}", self.scheme, self.addr)
    }

    /// TLS handshakes this receiver refused (always 0 over plain HTTP).
    pub fn tls_refused(&self) -> usize {
        self.refused.load(Ordering::SeqCst)
    }

    /// The next requests get these replies, in order.
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.inner.script.lock().unwrap().extend(replies);
    }

    /// Verification requests are answered so from now on, and recorded
    /// apart ([`Receiver::handshakes`]), never as deliveries.
    pub fn answer_handshakes(&self, how: Handshake) {
        *self.inner.handshake.lock().unwrap() = Some(how);
    }

    /// The verification requests answered by [`Receiver::answer_handshakes`].
    pub fn handshakes(&self) -> Vec<Recorded> {
        self.inner.handshakes.lock().unwrap().clone()
    }

    /// Requests beyond the script get this reply.
    /// Answers unscripted requests as `flaky` draws them.
    pub fn set_flaky(&self, flaky: Flaky) {
        *self.inner.flaky.lock().unwrap() = Some(flaky);
    }

    /// The requests it answered with a 2xx.
    pub fn succeeded(&self) -> Vec<Recorded> {
        self.inner.succeeded.lock().unwrap().clone()
    }

    pub fn set_default(&self, reply: Reply) {
        *self.inner.default.lock().unwrap() = Some(reply);
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.inner.requests.lock().unwrap().clone()
    }

    pub fn count(&self) -> usize {
        self.inner.requests.lock().unwrap().len()
    }

    /// Requests the receiver finished answering: the client waited for the
    /// reply (its connection was still open when the delay ran out).
    pub fn answered(&self) -> Vec<Recorded> {
        self.inner.answered.lock().unwrap().clone()
    }

    /// Requests being answered right now (their client is waiting).
    pub fn in_flight(&self) -> usize {
        self.inner.in_flight.load(Ordering::SeqCst)
    }

    /// Waits until at least `n` requests arrived; returns them.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Recorded> {
        let what = format!("{n} requests at {}", self.addr);
        crate::wait_until(&what, timeout, || async {
            let requests = self.requests();
            (requests.len() >= n).then_some(requests)
        })
        .await
    }
}

async fn record(
    State(inner): State<Arc<Inner>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let at = Instant::now();
    let handshake = inner.handshake.lock().unwrap().clone();
    if let (Some(how), Some(challenge)) = (handshake, challenge_of(&body)) {
        inner.handshakes.lock().unwrap().push(Recorded {
            path: uri.path().to_string(),
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_string()))
                .collect(),
            body: body.to_vec(),
            at,
        });
        let (status, body) = how.answer(&challenge);
        let status = StatusCode::from_u16(status).expect("a valid status");
        return (status, [("content-type", "application/json")], body).into_response();
    }
    let reply = inner
        .script
        .lock()
        .unwrap()
        .pop_front()
        .or_else(|| inner.default.lock().unwrap().clone())
        .or_else(|| inner.flaky.lock().unwrap().as_mut().map(Flaky::next_reply))
        .unwrap_or_else(Reply::ok);
    let headers = headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                v.to_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let recorded = Recorded {
        path: uri.path().to_string(),
        headers,
        body: body.to_vec(),
        at,
    };
    inner.requests.lock().unwrap().push(recorded.clone());
    {
        // The server drops this future when the client disconnects, so an
        // abandoned request leaves the count without being answered.
        let _in_flight = InFlight::enter(&inner.in_flight);
        if !reply.delay.is_zero() {
            tokio::time::sleep(reply.delay).await;
        }
    }
    if (200..300).contains(&reply.status) {
        inner.succeeded.lock().unwrap().push(recorded.clone());
    }
    inner.answered.lock().unwrap().push(recorded);
    let status = StatusCode::from_u16(reply.status).expect("a valid status");
    match reply.retry_after {
        Some(value) => (status, [("retry-after", value)], "scripted").into_response(),
        None => (status, "scripted").into_response(),
    }
}
