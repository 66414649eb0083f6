//! The webhook receiver deliveries go to: axum on 127.0.0.1:0, answering
//! `200` to every well-formed delivery and recording, per event, the
//! latency from the send time stamped in its `data` to its arrival here.
//! Sequence numbers tell first arrivals from duplicates (delivery is
//! at-least-once; only first arrivals count).

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use serde::Deserialize;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::stats::{Clock, Latencies};

/// What arrived since the last [`Receiver::take`].
#[derive(Default)]
pub struct Recorded {
    /// Send-to-arrival latency of each first arrival.
    pub latencies: Latencies,
    pub duplicates: u64,
    pub malformed: u64,
    /// When the latest first arrival came in.
    pub last_at: Option<Instant>,
    seen: HashSet<u64>,
}

struct Inner {
    clock: Clock,
    // A std mutex: held for a few inserts per request, never across an await.
    recorded: Mutex<Recorded>,
    /// First arrivals since the last take, readable without the lock.
    unique: AtomicU64,
}

/// The part of a delivery body the receiver reads.
#[derive(Deserialize)]
struct Delivery {
    data: Stamp,
}

#[derive(Deserialize)]
struct Stamp {
    seq: u64,
    sent_ns: u64,
}

pub struct Receiver {
    pub url: String,
    inner: Arc<Inner>,
    shutdown: CancellationToken,
    server: JoinHandle<std::io::Result<()>>,
}

impl Receiver {
    /// Starts serving `POST /hook` on a loopback port.
    pub async fn start(clock: Clock) -> anyhow::Result<Receiver> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}/hook", listener.local_addr()?);
        let inner = Arc::new(Inner {
            clock,
            recorded: Mutex::new(Recorded::default()),
            unique: AtomicU64::new(0),
        });
        let app = Router::new()
            .route("/hook", post(hook))
            .with_state(inner.clone());
        let shutdown = CancellationToken::new();
        let server = tokio::spawn(
            axum::serve(listener, app)
                .with_graceful_shutdown(shutdown.clone().cancelled_owned())
                .into_future(),
        );
        Ok(Receiver {
            url,
            inner,
            shutdown,
            server,
        })
    }

    /// Polls until `count` distinct events arrived since the last take;
    /// `false` when `timeout` passed first.
    pub async fn wait_for(&self, count: u64, timeout: Duration) -> bool {
        let started = Instant::now();
        while self.arrived() < count {
            if started.elapsed() > timeout {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        true
    }

    /// Distinct events arrived since the last take.
    pub fn arrived(&self) -> u64 {
        self.inner.unique.load(Ordering::Relaxed)
    }

    /// Everything recorded so far; the receiver starts over empty.
    pub fn take(&self) -> Recorded {
        let mut recorded = self.inner.recorded.lock().expect("receiver lock poisoned");
        self.inner.unique.store(0, Ordering::Relaxed);
        std::mem::take(&mut *recorded)
    }

    pub async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        self.server.await??;
        Ok(())
    }
}

impl Recorded {
    /// Distinct events received.
    pub fn unique(&self) -> u64 {
        self.seen.len() as u64
    }
}

async fn hook(State(inner): State<Arc<Inner>>, body: Bytes) -> StatusCode {
    let now = Instant::now();
    let arrived_ns = inner.clock.ns_at(now);
    let parsed = serde_json::from_slice::<Delivery>(&body);
    let mut recorded = inner.recorded.lock().expect("receiver lock poisoned");
    let Ok(Delivery { data }) = parsed else {
        recorded.malformed += 1;
        return StatusCode::BAD_REQUEST;
    };
    if recorded.seen.insert(data.seq) {
        recorded
            .latencies
            .record_ns(arrived_ns.saturating_sub(data.sent_ns));
        recorded.last_at = Some(now);
        inner.unique.fetch_add(1, Ordering::Relaxed);
    } else {
        recorded.duplicates += 1;
    }
    StatusCode::OK
}
