//! The real gateway, in process: its config loaded the way the binary loads
//! it (embedded defaults plus `GATEWAY_*` pairs, here passed explicitly
//! rather than read from the environment), `gateway::run` on a loopback
//! listener, and the few API calls the benchmark needs (a tenant, a plugin
//! upload, an endpoint, an event type and its schema), also through an
//! [`Api`] handle that tasks of their own can hold. Also probes of the fan-out
//! consumer groups and the delivery queues, so one phase's backlog never
//! leaks into the next phase's figures.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use gateway::config::Config;
use redis::aio::ConnectionLike;
use redis::streams::StreamInfoGroupsReply;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

const OPERATOR_TOKEN: &str = "bench-operator-token";
/// How long the gateway may take to become ready, and to stop.
const START_STOP_TIMEOUT: Duration = Duration::from_secs(15);

/// A gateway running on a task of this process.
pub struct RunningGateway {
    pub base: String,
    pub partitions: u16,
    http: reqwest::Client,
    shutdown: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
}

impl RunningGateway {
    /// Starts the gateway against `redis_url` and waits for `/readyz`.
    pub async fn start(redis_url: &str, http: reqwest::Client) -> anyhow::Result<RunningGateway> {
        let overrides = [
            ("GATEWAY_OPERATOR_TOKEN", OPERATOR_TOKEN),
            ("GATEWAY_REDIS_URL", redis_url),
            ("GATEWAY_DELIVERY__ALLOW_PRIVATE_DESTINATIONS", "true"),
            ("GATEWAY_DELIVERY__SHUTDOWN_GRACE", "5s"),
            // The receiver answers deliveries, not handshakes: the phases
            // measure delivery, so endpoints get events at once.
            ("GATEWAY_VERIFICATION__REQUIRED", "false"),
        ];
        let config = Config::load(None, overrides.map(|(k, v)| (k.to_string(), v.to_string())))?;
        let partitions = config.partitions;
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(gateway::run(Arc::new(config), listener, shutdown.clone()));
        let mut gateway = RunningGateway {
            base,
            partitions,
            http,
            shutdown,
            task,
        };
        gateway.wait_ready().await?;
        Ok(gateway)
    }

    async fn wait_ready(&mut self) -> anyhow::Result<()> {
        let started = Instant::now();
        let url = format!("{}/readyz", self.base);
        loop {
            if self.task.is_finished() {
                let outcome = (&mut self.task).await?;
                outcome.context("the gateway stopped at start-up")?;
                bail!("the gateway stopped at start-up");
            }
            let ready = self
                .http
                .get(&url)
                .timeout(Duration::from_secs(1))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ready {
                return Ok(());
            }
            if started.elapsed() > START_STOP_TIMEOUT {
                bail!("the gateway was not ready within {START_STOP_TIMEOUT:?}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn events_url(&self) -> String {
        format!("{}/v1/events", self.base)
    }

    /// Creates a tenant; returns its API key.
    pub async fn create_tenant(&self, name: &str) -> anyhow::Result<String> {
        let body = self
            .call("/v1/admin/tenants", OPERATOR_TOKEN, json!({"name": name}))
            .await?;
        body["api_key"]
            .as_str()
            .map(str::to_string)
            .context("no api_key in the tenant creation answer")
    }

    /// Creates an endpoint receiving every event type at `url`, through
    /// the tenant's plugins named in `plugins`, in order.
    pub async fn create_endpoint(
        &self,
        api_key: &str,
        url: &str,
        plugins: &[&str],
    ) -> anyhow::Result<()> {
        let chain: Vec<Value> = plugins.iter().map(|name| json!({"name": name})).collect();
        self.create_endpoint_with(api_key, json!({"url": url, "plugins": chain}))
            .await
    }

    /// Creates an endpoint as `spec` (the body of `POST /v1/endpoints`).
    pub async fn create_endpoint_with(&self, api_key: &str, spec: Value) -> anyhow::Result<()> {
        self.call("/v1/endpoints", api_key, spec).await?;
        Ok(())
    }

    /// Uploads a plugin component as `PUT /v1/plugins/{name}`, expecting
    /// `201 Created`.
    pub async fn upload_plugin(
        &self,
        api_key: &str,
        name: &str,
        component: Vec<u8>,
    ) -> anyhow::Result<()> {
        let path = format!("/v1/plugins/{name}");
        self.put(&path, api_key, "application/wasm", component)
            .await
    }

    /// PUTs `body` as JSON with a tenant's API key, expecting `201 Created`.
    pub async fn put_json(&self, api_key: &str, path: &str, body: &Value) -> anyhow::Result<()> {
        self.put(path, api_key, "application/json", serde_json::to_vec(body)?)
            .await
    }

    /// PUTs `body` as `content_type` with a bearer token, expecting
    /// `201 Created`.
    async fn put(
        &self,
        path: &str,
        token: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> anyhow::Result<()> {
        let response = self
            .http
            .put(format!("{}{path}", self.base))
            .bearer_auth(token)
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(body)
            .send()
            .await
            .with_context(|| format!("PUT {path}"))?;
        let status = response.status();
        if status != reqwest::StatusCode::CREATED {
            bail!("PUT {path} answered {status}: {}", response.text().await?);
        }
        Ok(())
    }

    /// POSTs JSON with a bearer token, expecting `201 Created`.
    async fn call(&self, path: &str, token: &str, body: Value) -> anyhow::Result<Value> {
        self.api().post(path, token, body).await
    }

    /// A handle on the API that tasks can own.
    pub fn api(&self) -> Api {
        Api {
            base: self.base.clone(),
            http: self.http.clone(),
        }
    }

    /// Fires the shutdown token and waits (bounded) for `run` to return.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        match tokio::time::timeout(START_STOP_TIMEOUT, self.task).await {
            Ok(joined) => joined?,
            Err(_) => bail!("the gateway did not stop within {START_STOP_TIMEOUT:?}"),
        }
    }
}

/// The gateway's API: its address and the shared client, cheap to clone.
#[derive(Clone)]
pub struct Api {
    base: String,
    http: reqwest::Client,
}

impl Api {
    /// POSTs JSON with a bearer token, expecting `201 Created`; the answer.
    pub async fn post(&self, path: &str, token: &str, body: Value) -> anyhow::Result<Value> {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .with_context(|| format!("POST {path}"))?;
        let status = response.status();
        let text = response.text().await?;
        if status != reqwest::StatusCode::CREATED {
            bail!("POST {path} answered {status}: {text}");
        }
        Ok(serde_json::from_str(&text)?)
    }
}

/// Work queued inside the gateway at one moment.
pub struct Backlog {
    /// Accepted events not yet fanned out (read-but-unacknowledged or unread).
    pub fanout: u64,
    /// Delivery tasks not yet finished (finished ones are deleted from the stream).
    pub delivery: u64,
}

/// Reads the backlog of every partition.
pub async fn backlog(conn: &mut impl ConnectionLike, partitions: u16) -> anyhow::Result<Backlog> {
    let mut total = Backlog {
        fanout: 0,
        delivery: 0,
    };
    for p in 0..partitions {
        let reply: StreamInfoGroupsReply = redis::cmd("XINFO")
            .arg("GROUPS")
            .arg(gateway::keys::ingest_stream(p))
            .query_async(conn)
            .await?;
        for group in reply
            .groups
            .iter()
            .filter(|g| g.name == gateway::keys::FANOUT_GROUP)
        {
            // An unknown lag (entries deleted mid-stream) counts as not caught up.
            total.fanout += (group.pending + group.lag.unwrap_or(1)) as u64;
        }
        let queued: u64 = redis::cmd("XLEN")
            .arg(gateway::keys::delivery_stream(p))
            .query_async(conn)
            .await?;
        total.delivery += queued;
    }
    Ok(total)
}

/// Polls until every partition's fan-out group has read and acknowledged
/// everything; `false` when `timeout` passed first.
pub async fn wait_fanout_idle(
    conn: &mut impl ConnectionLike,
    partitions: u16,
    timeout: Duration,
) -> anyhow::Result<bool> {
    let started = Instant::now();
    while backlog(conn, partitions).await?.fanout > 0 {
        if started.elapsed() > timeout {
            return Ok(false);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(true)
}

/// Polls until fan-out has caught up and no delivery task is left, in the
/// stream or waiting to be retried; `false` when `timeout` passed first.
pub async fn wait_delivered(
    conn: &mut impl ConnectionLike,
    partitions: u16,
    timeout: Duration,
) -> anyhow::Result<bool> {
    let started = Instant::now();
    loop {
        let queued = backlog(conn, partitions).await?;
        let mut retrying = 0;
        for p in 0..partitions {
            let due: u64 = redis::cmd("ZCARD")
                .arg(gateway::keys::retry_set(p))
                .query_async(conn)
                .await?;
            retrying += due;
        }
        if queued.fanout + queued.delivery + retrying == 0 {
            return Ok(true);
        }
        if started.elapsed() > timeout {
            return Ok(false);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
