//! The benchmark's own `redis-server`: a child process on a free loopback
//! port with a fresh data directory, either without persistence (the
//! default) or with an append-only file fsynced on every write. Dropping
//! [`RedisServer`] kills the child and removes the directory.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use redis::aio::MultiplexedConnection;

/// How long `redis-server` may take to answer its first `PING`.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// What Redis keeps on disk during the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Persistence {
    /// `--save "" --appendonly no`: memory only.
    None,
    /// `--appendonly yes --appendfsync always`: every write is on disk before its reply.
    AofAlways,
}

impl Persistence {
    fn args(self) -> &'static [&'static str] {
        match self {
            Persistence::None => &["--save", "", "--appendonly", "no"],
            Persistence::AofAlways => &[
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
            ],
        }
    }

    /// The flags as a shell would show them.
    pub fn describe(self) -> String {
        let args: Vec<String> = self
            .args()
            .iter()
            .map(|a| {
                if a.is_empty() {
                    "\"\"".to_string()
                } else {
                    (*a).to_string()
                }
            })
            .collect();
        let what = match self {
            Persistence::None => "none (memory only)",
            Persistence::AofAlways => "AOF, fsync on every write",
        };
        format!("{what}: redis-server {}", args.join(" "))
    }
}

/// A running `redis-server` child.
pub struct RedisServer {
    pub port: u16,
    pub version: String,
    dir: PathBuf,
    child: Child,
}

impl RedisServer {
    /// Starts `redis-server` from `PATH` and waits until it answers `PING`.
    pub async fn start(persistence: Persistence) -> anyhow::Result<RedisServer> {
        let port = free_port()?;
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let dir =
            std::env::temp_dir().join(format!("gateway-bench-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--daemonize", "no", "--protected-mode", "yes"])
            .args(persistence.args())
            .arg("--dir")
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start redis-server (is it on PATH?)")?;
        let mut server = RedisServer {
            port,
            version: String::new(),
            dir,
            child,
        };
        let mut conn = server.wait_ready().await?;
        let info: String = redis::cmd("INFO")
            .arg("server")
            .query_async(&mut conn)
            .await?;
        server.version = info
            .lines()
            .find_map(|l| l.strip_prefix("redis_version:"))
            .unwrap_or("unknown")
            .trim()
            .to_string();
        Ok(server)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// A fresh multiplexed connection.
    pub async fn connect(&self) -> anyhow::Result<MultiplexedConnection> {
        let client = redis::Client::open(self.url())?;
        Ok(client.get_multiplexed_async_connection().await?)
    }

    async fn wait_ready(&mut self) -> anyhow::Result<MultiplexedConnection> {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("redis-server exited at start-up with {status}");
            }
            if let Ok(mut conn) = self.connect().await
                && redis::cmd("PING")
                    .query_async::<String>(&mut conn)
                    .await
                    .is_ok()
            {
                return Ok(conn);
            }
            if started.elapsed() > START_TIMEOUT {
                bail!("redis-server did not answer PING within {START_TIMEOUT:?}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("cannot bind 127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}
