//! `gateway dev`: the gateway on one machine with nothing to set up. It
//! starts and supervises a local `redis-server` (AOF on, `appendfsync
//! always`, data under `--data-dir`), makes or reuses a dev tenant and an
//! operator token (remembered in `<data-dir>/dev.json`), prints them with a
//! curl example, and allows loopback and private destinations.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;

use crate::config::Config;

/// What dev mode remembers between runs.
#[derive(Serialize, Deserialize)]
struct DevState {
    operator_token: String,
    tenant_id: String,
    api_key: String,
}

pub async fn run(
    file: Option<PathBuf>,
    listen: SocketAddr,
    data_dir: PathBuf,
    redis_port: u16,
    shutdown: CancellationToken,
) -> ExitCode {
    let Some(redis_server) = find_on_path("redis-server") else {
        eprintln!(
            "error: `gateway dev` needs redis-server on PATH.\n\
             Install it with your package manager, for example:\n  \
             Debian/Ubuntu: sudo apt-get install redis-server\n  \
             Fedora:        sudo dnf install redis\n  \
             macOS:         brew install redis\n\
             or run `gateway serve --redis redis://HOST:PORT` against a Redis you have."
        );
        return ExitCode::from(69);
    };
    let mut config = match crate::load_config(file.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(64);
        }
    };
    match run_dev(
        &mut config,
        redis_server,
        listen,
        data_dir,
        redis_port,
        shutdown,
    )
    .await
    {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run_dev(
    config: &mut Config,
    redis_server: PathBuf,
    listen: SocketAddr,
    data_dir: PathBuf,
    redis_port: u16,
    shutdown: CancellationToken,
) -> anyhow::Result<ExitCode> {
    let redis_dir = data_dir.join("redis");
    std::fs::create_dir_all(&redis_dir)
        .with_context(|| format!("cannot create {}", redis_dir.display()))?;
    let redis_dir = redis_dir.canonicalize()?;
    let port = match redis_port {
        0 => free_port()?,
        p => p,
    };
    let redis = LocalRedis {
        binary: redis_server,
        dir: redis_dir,
        port,
    };
    let child = redis.start().await?;
    config.redis_url = format!("redis://127.0.0.1:{port}");
    config.delivery.allow_private_destinations = true;
    config.listen = listen;
    if config.security.encryption_keys.is_empty() {
        config.security.encryption_keys = vec![dev_encryption_key(&data_dir)?];
    }

    crate::keys::install_prefix(&config.redis_prefix).map_err(anyhow::Error::msg)?;
    let (_, conn) = crate::connect(&config.redis_url).await?;
    let store = crate::store::Store::new(conn, crate::keys::Partitions::new(config.partitions));
    let state = dev_state(&data_dir.join("dev.json"), &store, &config.operator_token).await?;
    config.operator_token = state.operator_token.clone();

    let stop_redis = CancellationToken::new();
    let supervisor = tokio::spawn(redis.clone().supervise(child, stop_redis.clone()));
    println!(
        "\nwebhook gateway (dev)\n\
         redis:          127.0.0.1:{port}, data in {dir} (AOF, appendfsync always)\n\
         operator token: {op}\n\
         dev tenant:     {tenant}\n\
         api key:        {key}\n\n\
         try it:\n  \
         curl -s -X POST http://{listen}/v1/endpoints -H 'Authorization: Bearer {key}' \\\n    \
         -H 'Content-Type: application/json' -d '{{\"url\": \"http://127.0.0.1:9000/hook\"}}'\n  \
         curl -s -X POST http://{listen}/v1/events -H 'Authorization: Bearer {key}' \\\n    \
         -H 'Content-Type: application/json' -d '{{\"type\": \"order.created\", \"data\": {{\"id\": 1}}}}'\n\n\
         a new endpoint gets events once it answers the signed webhook.verification request\n\
         with {{\"challenge\": \"<the challenge>\"}} (README: endpoint verification);\n\
         GATEWAY_VERIFICATION__REQUIRED=false sends without it\n",
        dir = redis.dir.display(),
        op = state.operator_token,
        tenant = state.tenant_id,
        key = state.api_key,
    );
    let code = crate::serve_with(Arc::new(config.clone()), shutdown).await;
    stop_redis.cancel();
    if let Err(e) = supervisor.await {
        tracing::warn!(error = %e, "redis supervisor ended abnormally");
    }
    Ok(code)
}

/// The data dir's encryption key (`encryption.key`, base64), made on the
/// first run: secrets and payloads are sealed in dev as in production.
fn dev_encryption_key(data_dir: &Path) -> anyhow::Result<[u8; 32]> {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    let path = data_dir.join("encryption.key");
    if let Ok(text) = std::fs::read_to_string(&path) {
        let bytes = STANDARD
            .decode(text.trim())
            .with_context(|| format!("{} is not base64", path.display()))?;
        return <[u8; 32]>::try_from(bytes.as_slice())
            .map_err(|_| anyhow::anyhow!("{} does not hold 32 bytes", path.display()));
    }
    let mut key = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut key);
    std::fs::write(&path, STANDARD.encode(key))
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(key)
}

/// Reuses the remembered dev tenant while Redis still knows it; else makes one.
async fn dev_state(
    path: &Path,
    store: &crate::store::Store,
    configured_token: &str,
) -> anyhow::Result<DevState> {
    let remembered: Option<DevState> = std::fs::read_to_string(path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok());
    if let Some(state) = remembered
        && (configured_token.is_empty() || configured_token == state.operator_token)
        && store
            .key_grant(&state.api_key)
            .await?
            .is_some_and(|grant| grant.tenant == state.tenant_id)
    {
        return Ok(state);
    }
    let operator_token = if configured_token.is_empty() {
        crate::model::new_id("op")
    } else {
        configured_token.to_string()
    };
    let (tenant, api_key) = store
        .create_tenant(&crate::model::new_id("tn"), "dev")
        .await?;
    let state = DevState {
        operator_token,
        tenant_id: tenant.id,
        api_key,
    };
    std::fs::write(path, serde_json::to_string_pretty(&state)?)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(state)
}

#[derive(Clone)]
struct LocalRedis {
    binary: PathBuf,
    dir: PathBuf,
    port: u16,
}

impl LocalRedis {
    async fn start(&self) -> anyhow::Result<Child> {
        let child = Command::new(&self.binary)
            .arg("--port")
            .arg(self.port.to_string())
            .args([
                "--bind",
                "127.0.0.1",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--save",
                "",
            ])
            .args(["--maxmemory-policy", "noeviction", "--daemonize", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .arg("--logfile")
            .arg(self.dir.join("redis.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start {}", self.binary.display()))?;
        let url = format!("redis://127.0.0.1:{}", self.port);
        let client = redis::Client::open(url.as_str())?;
        for _ in 0..100 {
            if let Ok(mut c) = client.get_multiplexed_async_connection().await
                && redis::cmd("PING")
                    .query_async::<String>(&mut c)
                    .await
                    .is_ok()
            {
                return Ok(child);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        anyhow::bail!(
            "redis-server did not answer on port {} within 10 s (see {}/redis.log)",
            self.port,
            self.dir.display()
        )
    }

    /// Restarts redis-server if it dies; on `stop`, shuts it down cleanly.
    async fn supervise(self, mut child: Child, stop: CancellationToken) {
        loop {
            tokio::select! {
                status = child.wait() => {
                    tracing::error!(?status, "redis-server exited; restarting it");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    match self.start().await {
                        Ok(c) => child = c,
                        Err(e) => {
                            tracing::error!(error = format!("{e:#}"), "cannot restart redis-server");
                            stop.cancelled().await;
                            return;
                        }
                    }
                }
                () = stop.cancelled() => break,
            }
        }
        let url = format!("redis://127.0.0.1:{}", self.port);
        if let Ok(client) = redis::Client::open(url.as_str())
            && let Ok(mut c) = client.get_multiplexed_async_connection().await
        {
            // The connection closes as the server stops: an error here is expected.
            let _ = redis::cmd("SHUTDOWN").query_async::<()>(&mut c).await;
        }
        if tokio::time::timeout(Duration::from_secs(10), child.wait())
            .await
            .is_err()
        {
            tracing::warn!("redis-server did not stop within 10 s; killing it");
            let _ = child.kill().await;
        }
    }
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    })
}

fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}
