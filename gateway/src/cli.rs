//! Command line: `gateway serve` and `gateway dev`. Parses flags, loads the
//! layered config, sets up tracing and signals, and calls [`crate::run`].
//!
//! Exit codes: 0 after a clean shutdown, 64 for a bad configuration or
//! command line, 69 when `redis-server` (dev) is missing, 1 for any other failure.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use crate::config::ConfigError;

#[derive(Parser)]
#[command(
    name = "gateway",
    version,
    about = "A WebAssembly-extensible webhook gateway on Redis Streams"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run against an existing Redis (production).
    Serve {
        /// TOML config file (see config.default.toml for every key).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Redis URL (overrides `redis_url`).
        #[arg(long)]
        redis: Option<String>,
        /// Address to listen on (overrides `listen`).
        #[arg(long)]
        listen: Option<SocketAddr>,
    },
    /// Run on one machine with nothing to set up: starts its own redis-server.
    Dev {
        #[arg(long)]
        config: Option<PathBuf>,
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// Where Redis keeps its data and AOF, and the dev tenant is remembered.
        #[arg(long, default_value = ".gateway-data")]
        data_dir: PathBuf,
        /// Port for the local redis-server (0: any free port).
        #[arg(long, default_value_t = 0)]
        redis_port: u16,
    },
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    crate::telemetry::init_tracing();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let shutdown = CancellationToken::new();
        tokio::spawn(forward_signals(shutdown.clone()));
        match cli.command {
            Command::Serve {
                config,
                redis,
                listen,
            } => serve(config, redis, listen, shutdown).await,
            Command::Dev {
                config,
                listen,
                data_dir,
                redis_port,
            } => crate::dev::run(config, listen, data_dir, redis_port, shutdown).await,
        }
    })
}

async fn serve(
    file: Option<PathBuf>,
    redis: Option<String>,
    listen: Option<SocketAddr>,
    shutdown: CancellationToken,
) -> ExitCode {
    let mut config = match crate::load_config(file.as_deref()) {
        Ok(c) => c,
        Err(e) => return config_error(e),
    };
    if let Some(url) = redis {
        config.redis_url = url;
    }
    if let Some(addr) = listen {
        config.listen = addr;
    }
    if config.operator_token.is_empty() {
        return config_error(ConfigError(
            "operator_token is empty: set it in the config file or GATEWAY_OPERATOR_TOKEN".into(),
        ));
    }
    crate::serve_with(Arc::new(config), shutdown).await
}

fn config_error(e: ConfigError) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::from(64)
}

/// Ctrl-C or SIGTERM starts a graceful shutdown; a second one of either
/// exits at once (code 130), abandoning the drain: unfinished tasks stay
/// pending in Redis and are taken over.
async fn forward_signals(shutdown: CancellationToken) {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let mut next_signal = async || {
        let terminated = async {
            match term.as_mut() {
                Some(t) => {
                    t.recv().await;
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            () = terminated => {}
        }
    };
    next_signal().await;
    tracing::info!("signal received: shutting down (send it again to exit at once)");
    shutdown.cancel();
    next_signal().await;
    tracing::warn!("second signal received: exiting without finishing the drain");
    std::process::exit(130);
}
