//! Test harness: a real `redis-server` per test on a free port, the real
//! gateway binary as a child process, real HTTP receivers, and a Standard
//! Webhooks verifier written from the specification (independent of the
//! gateway's signing code).
//!
//! Nothing here sleeps and hopes: [`wait_until`] polls a condition with a
//! bounded timeout.

pub mod cluster;
pub mod plugins;
pub mod receiver;
pub mod tls;
pub mod verify;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub use receiver::{Flaky, Handshake, Receiver, Recorded, Reply, hmac_hex};
pub use verify::verify_signature;

pub const OPERATOR_TOKEN: &str = "test-operator-token";

/// The gateway CLI built by this package: cargo puts binaries in the
/// directory above the test executables (`target/<profile>/deps/..`).
pub fn gateway_binary() -> PathBuf {
    if let Ok(path) = std::env::var("CARGO_BIN_EXE_gateway-under-test") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("the test executable's path");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>");
    dir.join("gateway-under-test")
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Polls `check` every 20 ms until it returns `Some`, or panics after `timeout`.
pub async fn wait_until<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let started = Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            started.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A directory of its own under the system's temp dir, removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn create() -> TempDir {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let name = format!("gateway-test-{}-{n}-{nanos}", std::process::id());
        let path = std::env::temp_dir().join(name);
        std::fs::create_dir_all(&path).expect("a temp dir");
        TempDir(path)
    }

    pub fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The certificate files of a TLS redis-server: its own certificate and
/// key, and the CA that signed them (what clients must trust).
#[derive(Clone, Debug)]
pub struct RedisTls {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    pub ca_file: PathBuf,
}

/// Set to `cluster` (as `scripts/test` does for its second pass), every
/// plain [`Redis`] is a one-node Redis Cluster holding all 16,384 slots and
/// the gateway is given it as a cluster (`redis+cluster://`). Cluster mode
/// refuses any command, transaction or script whose keys hash to two slots
/// (`CROSSSLOT`), so the suite proves that the gateway's every multi-key
/// operation stays on one slot, and runs on the cluster client. (Not a
/// `GATEWAY_` name: the gateway would read it as a setting.)
pub const REDIS_MODE_VAR: &str = "TEST_REDIS_MODE";

fn cluster_mode() -> bool {
    std::env::var(REDIS_MODE_VAR).is_ok_and(|m| m == "cluster")
}

/// A redis-server child with its own port and data directory.
pub struct Redis {
    pub port: u16,
    pub dir: TempDir,
    aof: bool,
    tls: Option<RedisTls>,
    /// A one-node cluster ([`REDIS_MODE_VAR`]).
    cluster: bool,
    child: Option<Child>,
}

impl Redis {
    /// Keeps nothing on disk: a restart loses everything.
    pub fn ephemeral() -> Redis {
        Redis::start(false)
    }

    /// AOF with `appendfsync always`: a restart keeps every acknowledged write.
    pub fn durable() -> Redis {
        Redis::start(true)
    }

    /// TLS only (`rediss://`, no plain port), asking clients for no
    /// certificate; `Err` with redis-server's log when it does not start
    /// (as when it was built without TLS).
    pub fn tls(files: RedisTls) -> Result<Redis, String> {
        let mut redis = Redis {
            port: free_port(),
            dir: TempDir::create(),
            aof: false,
            tls: Some(files),
            cluster: false,
            child: None,
        };
        redis.try_boot()?;
        Ok(redis)
    }

    fn start(aof: bool) -> Redis {
        let mut redis = Redis {
            port: free_port(),
            dir: TempDir::create(),
            aof,
            tls: None,
            cluster: cluster_mode(),
            child: None,
        };
        redis.boot();
        redis
    }

    fn boot(&mut self) {
        if let Err(log) = self.try_boot() {
            panic!("redis-server did not start:\n{log}");
        }
    }

    fn try_boot(&mut self) -> Result<(), String> {
        let mut cmd = Command::new("redis-server");
        match &self.tls {
            None => cmd.arg("--port").arg(self.port.to_string()),
            Some(tls) => cmd
                .args(["--port", "0", "--tls-port"])
                .arg(self.port.to_string())
                .arg("--tls-cert-file")
                .arg(&tls.cert_file)
                .arg("--tls-key-file")
                .arg(&tls.key_file)
                .arg("--tls-ca-cert-file")
                .arg(&tls.ca_file)
                .args(["--tls-auth-clients", "no"]),
        };
        let log_path = self.dir.path().join("redis.log");
        let log = std::fs::File::create(&log_path).expect("a redis log file");
        cmd.args(["--bind", "127.0.0.1", "--save", "", "--daemonize", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(log.try_clone().expect("the log file again"))
            .stderr(log);
        if self.aof {
            cmd.args(["--appendonly", "yes", "--appendfsync", "always"]);
        } else {
            cmd.args(["--appendonly", "no"]);
        }
        if self.cluster {
            cmd.args(["--cluster-enabled", "yes", "--cluster-config-file"])
                .arg(self.dir.path().join("nodes.conf"));
        }
        let mut child = cmd.spawn().expect("redis-server on PATH");
        let started = Instant::now();
        let client = self.client();
        loop {
            if let Ok(mut c) = client.get_connection()
                && redis::cmd("PING").query::<String>(&mut c).is_ok()
                && (!self.cluster || own_every_slot(&mut c))
            {
                self.child = Some(child);
                return Ok(());
            }
            let exited = child.try_wait().ok().flatten().is_some();
            if exited || started.elapsed() > Duration::from_secs(10) {
                let _ = child.kill();
                let _ = child.wait();
                return Err(std::fs::read_to_string(&log_path).unwrap_or_default());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// What the gateway is given: `redis+cluster://` in cluster mode.
    pub fn url(&self) -> String {
        match (&self.tls, self.cluster) {
            (None, false) => format!("redis://127.0.0.1:{}", self.port),
            (None, true) => format!("redis+cluster://127.0.0.1:{}", self.port),
            (Some(_), _) => format!("rediss://127.0.0.1:{}", self.port),
        }
    }

    /// The CA file a client of this TLS redis-server trusts.
    pub fn ca_file(&self) -> Option<&std::path::Path> {
        self.tls.as_ref().map(|t| t.ca_file.as_path())
    }

    /// A client of this redis-server (over TLS, trusting its CA, when it is TLS).
    pub fn client(&self) -> redis::Client {
        let client = match &self.tls {
            None => redis::Client::open(format!("redis://127.0.0.1:{}", self.port)),
            Some(tls) => redis::Client::build_with_tls(
                self.url(),
                redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(std::fs::read(&tls.ca_file).expect("the CA file")),
                },
            ),
        };
        client.expect("a redis url")
    }

    /// SIGKILL: no chance to write anything more.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills and starts again on the same port and data directory.
    pub fn restart(&mut self) {
        self.kill();
        self.boot();
    }

    pub async fn conn(&self) -> redis::aio::MultiplexedConnection {
        self.client()
            .get_multiplexed_async_connection()
            .await
            .expect("a redis connection")
    }
}

/// A one-node cluster's node takes every slot (once: a restart finds them
/// in its nodes.conf) and answers whether the cluster is up.
fn own_every_slot(c: &mut redis::Connection) -> bool {
    let _: redis::RedisResult<()> = redis::cmd("CLUSTER")
        .arg("ADDSLOTSRANGE")
        .arg(0)
        .arg(16383)
        .query(c);
    redis::cmd("CLUSTER")
        .arg("INFO")
        .query::<String>(c)
        .is_ok_and(|info| info.contains("cluster_state:ok"))
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Settings a test may change; everything else comes from the defaults.
#[derive(Clone)]
pub struct GatewayOptions {
    pub retry_schedule: Vec<&'static str>,
    pub visibility_timeout: &'static str,
    pub max_timeout_ms: u64,
    pub default_timeout_ms: u64,
    pub partitions: u16,
    /// `verification.required`: off unless a test is about the handshake,
    /// so the other tests' receivers need not answer it.
    pub verification_required: bool,
    /// More TOML appended to the config file, after its `[verification]`
    /// table (bare keys go on that table).
    pub extra: String,
    /// `GATEWAY_*` variables the gateway runs with (over the config file).
    pub env: Vec<(String, String)>,
}

impl Default for GatewayOptions {
    fn default() -> Self {
        GatewayOptions {
            retry_schedule: vec!["0s", "200ms", "200ms", "200ms"],
            visibility_timeout: "3s",
            max_timeout_ms: 2000,
            default_timeout_ms: 2000,
            partitions: 4,
            verification_required: false,
            extra: String::new(),
            env: Vec::new(),
        }
    }
}

/// The gateway binary as a child process.
pub struct Gateway {
    pub url: String,
    pub redis_url: String,
    /// The CA file of a TLS Redis (`redis_ca_file`).
    redis_ca_file: Option<PathBuf>,
    options: GatewayOptions,
    dir: TempDir,
    child: Option<Child>,
    listen: String,
}

impl Gateway {
    pub fn spawn(redis: &Redis) -> Gateway {
        Gateway::spawn_with(redis, GatewayOptions::default())
    }

    pub fn spawn_with(redis: &Redis, options: GatewayOptions) -> Gateway {
        let ca_file = redis.ca_file().map(std::path::Path::to_path_buf);
        Gateway::spawn_at(redis.url(), ca_file, options)
    }

    /// A gateway on whatever `redis_url` names (a cluster's seed list, say).
    pub fn spawn_on(redis_url: String, options: GatewayOptions) -> Gateway {
        Gateway::spawn_at(redis_url, None, options)
    }

    fn spawn_at(redis_url: String, ca_file: Option<PathBuf>, options: GatewayOptions) -> Gateway {
        let mut gateway = Gateway {
            url: String::new(),
            redis_url,
            redis_ca_file: ca_file,
            options,
            dir: TempDir::create(),
            child: None,
            listen: "127.0.0.1:0".into(),
        };
        gateway.boot();
        gateway
    }

    fn config(&self) -> String {
        let o = &self.options;
        let schedule: Vec<String> = o
            .retry_schedule
            .iter()
            .map(|s| format!("\"{s}\""))
            .collect();
        let ca = match &self.redis_ca_file {
            Some(path) => format!("redis_ca_file = {:?}\n", path.display().to_string()),
            None => String::new(),
        };
        format!(
            "listen = \"{listen}\"\nredis_url = \"{redis}\"\n{ca}operator_token = \"{OPERATOR_TOKEN}\"\npartitions = {p}\n\
             [ingest]\nretention = \"1h\"\nidempotency_window = \"1h\"\n\
             [delivery]\nretry_schedule = [{schedule}]\nvisibility_timeout = \"{vis}\"\n\
             max_timeout_ms = {max}\ndefault_timeout_ms = {default}\nallow_private_destinations = true\n\
             shutdown_grace = \"2s\"\n[verification]\nrequired = {verify}\n{extra}\n",
            listen = self.listen,
            redis = self.redis_url,
            p = o.partitions,
            schedule = schedule.join(", "),
            vis = o.visibility_timeout,
            max = o.max_timeout_ms,
            default = o.default_timeout_ms,
            verify = o.verification_required,
            extra = o.extra,
        )
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("gateway.log")
    }

    fn boot(&mut self) {
        let config = self.dir.path().join("gateway.toml");
        std::fs::write(&config, self.config()).expect("write the config");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("open the log");
        let mut child = Command::new(gateway_binary())
            .arg("serve")
            .arg("--config")
            .arg(&config)
            .env("RUST_LOG", "info")
            .env_remove("GATEWAY_OPERATOR_TOKEN")
            .envs(self.options.env.iter().cloned())
            // Each gateway keeps its compiled plugins in its own directory,
            // which a restart finds again.
            .env(
                "GATEWAY_PLUGINS__ARTIFACTS_DIR",
                self.dir.path().join("artifacts"),
            )
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("start the gateway");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read the gateway's first line");
        let url = line
            .trim()
            .strip_prefix("gateway listening on ")
            .unwrap_or_else(|| panic!("the gateway did not start: {line:?}\n{}", self.logs()))
            .to_string();
        // Restarts come back on the same address.
        self.listen = url.trim_start_matches("http://").to_string();
        self.url = url;
        self.child = Some(child);
    }

    /// Everything the gateway wrote to stderr so far (all runs).
    pub fn logs(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// The process's resident memory (`VmRSS` of /proc), in bytes.
    pub fn resident_bytes(&self) -> u64 {
        let pid = self.child.as_ref().expect("the gateway runs").id();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc");
        let kib: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS in kB");
        kib * 1024
    }

    /// SIGKILL: in-flight work is abandoned mid-way.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, then waits for a clean exit; returns the exit status.
    pub fn terminate(&mut self) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            if started.elapsed() > Duration::from_secs(15) {
                let _ = child.kill();
                return child.wait().ok();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends a signal (`TERM`, `INT`, ...) to the running gateway.
    pub fn signal(&self, name: &str) {
        let child = self.child.as_ref().expect("the gateway is running");
        let sent = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(child.id().to_string())
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -{name} failed");
    }

    /// Waits up to `timeout` for the gateway to exit; its exit status, or
    /// `None` when it is still running.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let started = Instant::now();
        while started.elapsed() < timeout {
            let child = self.child.as_mut()?;
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }

    /// Kills (if running) and starts again on the same address.
    pub fn restart(&mut self) {
        self.kill();
        self.boot();
    }

    pub fn api(&self) -> Api {
        Api::new(&self.url)
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A thin client of the gateway's HTTP API.
#[derive(Clone)]
pub struct Api {
    pub base: String,
    pub http: reqwest::Client,
}

/// A tenant made through the operator API.
#[derive(Clone, Debug)]
pub struct Tenant {
    pub id: String,
    pub key: String,
}

/// An endpoint made through the tenant API.
#[derive(Clone, Debug)]
pub struct Endpoint {
    pub id: String,
    pub secret: String,
}

/// A redis-server, a gateway on it and a tenant `acme`: both processes live
/// as long as the test holds this.
pub struct Setup {
    pub _redis: Redis,
    pub _gateway: Gateway,
    pub api: Api,
    pub tenant: Tenant,
}

pub async fn setup() -> Setup {
    let redis = Redis::ephemeral();
    let gateway = Gateway::spawn(&redis);
    let api = gateway.api();
    let tenant = api.create_tenant("acme").await;
    Setup {
        _redis: redis,
        _gateway: gateway,
        api,
        tenant,
    }
}

impl Api {
    /// Uploads component bytes as the tenant's plugin `name`; returns the
    /// status and the parsed body.
    pub async fn upload_plugin(&self, tenant: &Tenant, name: &str, bytes: &[u8]) -> (u16, Value) {
        let response = self
            .request(
                reqwest::Method::PUT,
                &format!("/v1/plugins/{name}"),
                &tenant.key,
            )
            .header("content-type", "application/wasm")
            .body(bytes.to_vec())
            .send()
            .await
            .expect("the gateway answers");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Uploads the built component `file` (e.g. `schema_upgrade`) as plugin
    /// `name`, asserting `201`.
    pub async fn install_plugin(&self, tenant: &Tenant, name: &str, file: &str) {
        let (status, body) = self.upload_plugin(tenant, name, &plugins::wasm(file)).await;
        assert_eq!(status, 201, "{body}");
    }

    /// Uploads `bytes` as plugin `name` and waits (up to `within`) until
    /// its new version is `ready`: at once for a `201`, or after a `202`
    /// when its background compile ends. Returns the version's record.
    pub async fn install_and_wait(
        &self,
        tenant: &Tenant,
        name: &str,
        bytes: &[u8],
        within: Duration,
    ) -> Value {
        let (status, version) = self.upload_plugin(tenant, name, bytes).await;
        assert!(status == 201 || status == 202, "{status}: {version}");
        let path = format!("/v1/plugins/{name}");
        wait_until(&format!("plugin {name} ready"), within, || async {
            let (_, plugin) = self.get(&path, &tenant.key).await;
            let versions = plugin["versions"].as_array().cloned().unwrap_or_default();
            let stored = versions
                .into_iter()
                .find(|v| v["version"] == version["version"])?;
            assert_ne!(stored["status"], "failed", "{stored}");
            (stored["status"] == "ready").then_some(stored)
        })
        .await
    }

    pub fn new(base: &str) -> Api {
        Api {
            base: base.to_string(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(20))
                .build()
                .expect("an HTTP client"),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A request with a bearer token.
    pub fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
    ) -> reqwest::RequestBuilder {
        self.http.request(method, self.url(path)).bearer_auth(token)
    }

    /// Sends a JSON body and returns the status and the parsed body (`null` when empty).
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self.request(method, path, token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("the gateway answers");
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub async fn create_tenant(&self, name: &str) -> Tenant {
        let (status, body) = self
            .call(
                reqwest::Method::POST,
                "/v1/admin/tenants",
                OPERATOR_TOKEN,
                Some(json!({"name": name})),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        Tenant {
            id: body["id"].as_str().expect("an id").to_string(),
            key: body["api_key"].as_str().expect("a key").to_string(),
        }
    }

    /// Creates an endpoint from `spec` (at least `url`).
    pub async fn create_endpoint(&self, tenant: &Tenant, spec: Value) -> Endpoint {
        let (status, body) = self
            .call(
                reqwest::Method::POST,
                "/v1/endpoints",
                &tenant.key,
                Some(spec),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        Endpoint {
            id: body["id"].as_str().expect("an id").to_string(),
            secret: body["secret"].as_str().expect("a secret").to_string(),
        }
    }

    /// Posts an event; returns its id (asserting 202).
    pub async fn post_event(&self, tenant: &Tenant, event: Value) -> String {
        let (status, body) = self
            .call(
                reqwest::Method::POST,
                "/v1/events",
                &tenant.key,
                Some(event),
            )
            .await;
        assert_eq!(status, 202, "{body}");
        body["id"].as_str().expect("an id").to_string()
    }

    /// The `/metrics` text.
    pub async fn metrics_text(&self) -> String {
        self.http
            .get(self.url("/metrics"))
            .send()
            .await
            .expect("the gateway answers")
            .text()
            .await
            .expect("a metrics body")
    }

    /// One counter or gauge from `/metrics`.
    pub async fn metric(&self, name: &str) -> f64 {
        let text = self.metrics_text().await;
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
            .unwrap_or_else(|| panic!("no {name} in /metrics:\n{text}"))
            .trim()
            .parse()
            .unwrap_or_else(|e| panic!("{name} is not a number: {e}"))
    }

    pub async fn get(&self, path: &str, token: &str) -> (u16, Value) {
        self.call(reqwest::Method::GET, path, token, None).await
    }
}
