//! The two baselines the gateway is measured against:
//!
//! - raw pipelined `XADD` of 1 KiB payloads over one connection: about the
//!   most a single Redis takes in;
//! - a bare axum handler doing one `XADD` per request and nothing else (no
//!   auth, no validation, no idempotency): the most an HTTP front door on
//!   this stack can do, and the reference for the gateway's ingest ratio.

use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use gateway::redis_conn::Conn;
use redis::aio::ConnectionLike;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::load::Payload;
use crate::stats::Clock;

/// Stream the raw baseline writes to (deleted afterwards).
const RAW_STREAM: &str = "bench:raw";
/// Stream the bare handler writes to (deleted afterwards).
const BARE_STREAM: &str = "bench:bare";

/// Commands per pipeline in the raw baseline.
pub const RAW_BATCH: usize = 100;
/// The raw baseline stops after this many events even if time is left,
/// which keeps Redis's memory bounded.
const RAW_MAX_EVENTS: u64 = 400_000;

/// What the raw baseline did: events written and how long that took.
pub struct RawReport {
    pub events: u64,
    pub elapsed: Duration,
}

/// Pipelines `XADD`s of 1 KiB payloads, [`RAW_BATCH`] per round trip, for
/// `duration` (or [`RAW_MAX_EVENTS`]), then deletes the stream.
pub async fn raw_xadd(
    conn: &mut impl ConnectionLike,
    payload: &Payload,
    clock: Clock,
    duration: Duration,
) -> anyhow::Result<RawReport> {
    let bodies: Vec<Vec<u8>> = (0..RAW_BATCH)
        .map(|_| payload.next(clock.now_ns()))
        .collect();
    let started = Instant::now();
    let mut events = 0;
    while started.elapsed() < duration && events < RAW_MAX_EVENTS {
        let mut pipe = redis::pipe();
        for body in &bodies {
            pipe.cmd("XADD")
                .arg(RAW_STREAM)
                .arg("*")
                .arg("j")
                .arg(body.as_slice())
                .ignore();
        }
        pipe.query_async::<()>(conn).await?;
        events += RAW_BATCH as u64;
    }
    let elapsed = started.elapsed();
    redis::cmd("DEL")
        .arg(RAW_STREAM)
        .query_async::<()>(conn)
        .await?;
    Ok(RawReport { events, elapsed })
}

/// The bare handler, serving on a loopback port until [`BareHandler::stop`].
pub struct BareHandler {
    pub url: String,
    conn: Conn,
    shutdown: CancellationToken,
    server: JoinHandle<std::io::Result<()>>,
}

impl BareHandler {
    /// Connects to Redis the way the gateway does and starts serving
    /// `POST /ingest` on 127.0.0.1:0.
    pub async fn start(redis_url: &str) -> anyhow::Result<BareHandler> {
        let (_, conn) = gateway::connect(redis_url).await?;
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}/ingest", listener.local_addr()?);
        let app = Router::new()
            .route("/ingest", post(ingest))
            .with_state(conn.clone());
        let shutdown = CancellationToken::new();
        let server = tokio::spawn(
            axum::serve(listener, app)
                .with_graceful_shutdown(shutdown.clone().cancelled_owned())
                .into_future(),
        );
        Ok(BareHandler {
            url,
            conn,
            shutdown,
            server,
        })
    }

    /// Stops serving and deletes what the handler wrote.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        self.server.await??;
        redis::cmd("DEL")
            .arg(BARE_STREAM)
            .query_async::<()>(&mut self.conn)
            .await?;
        Ok(())
    }
}

/// One `XADD` of the body as received, then `202`.
async fn ingest(State(mut conn): State<Conn>, body: Bytes) -> StatusCode {
    let added: redis::RedisResult<String> = redis::cmd("XADD")
        .arg(BARE_STREAM)
        .arg("*")
        .arg("j")
        .arg(body.as_ref())
        .query_async(&mut conn)
        .await;
    match added {
        Ok(_) => StatusCode::ACCEPTED,
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}
