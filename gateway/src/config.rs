//! Layered configuration: embedded defaults (`config.default.toml`), then an
//! optional file, then `GATEWAY_*` environment variables, then flags. The
//! result is validated once and shared as `Arc<Config>`.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// The commented defaults, also the reference for every setting.
pub const DEFAULTS: &str = include_str!("../config.default.toml");

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub listen: SocketAddr,
    pub redis_url: String,
    /// What every key starts with (`keys::install_prefix`).
    pub redis_prefix: String,
    /// PEM file of the CAs a `rediss://` server's certificate must chain
    /// to, instead of the web roots; empty for none.
    pub redis_ca_file: String,
    /// The contents of `redis_ca_file`, read once when the config is loaded.
    #[serde(skip)]
    pub redis_ca_pem: Option<Vec<u8>>,
    pub operator_token: String,
    pub partitions: u16,
    pub ingest: IngestConfig,
    pub delivery: DeliveryConfig,
    pub circuit: CircuitConfig,
    pub verification: VerificationConfig,
    pub quarantine: QuarantineConfig,
    pub operational: OperationalConfig,
    pub audit: AuditConfig,
    pub security: SecurityConfig,
    pub plugins: PluginConfig,
    pub limits: LimitsConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestConfig {
    pub max_body_bytes: usize,
    #[serde(deserialize_with = "duration")]
    pub idempotency_window: Duration,
    #[serde(deserialize_with = "duration")]
    pub retention: Duration,
    /// Replicas of the event's master that must have it before `202`.
    pub replica_acks: u8,
    #[serde(deserialize_with = "duration")]
    pub replica_ack_timeout: Duration,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryConfig {
    #[serde(deserialize_with = "durations")]
    pub retry_schedule: Vec<Duration>,
    pub jitter: f64,
    #[serde(deserialize_with = "duration")]
    pub max_retry_after: Duration,
    pub endpoint_schedule_max_attempts: usize,
    #[serde(deserialize_with = "duration")]
    pub endpoint_schedule_max_total: Duration,
    pub default_timeout_ms: u64,
    pub max_timeout_ms: u64,
    pub concurrency: usize,
    pub endpoint_concurrency: usize,
    #[serde(deserialize_with = "duration")]
    pub visibility_timeout: Duration,
    pub allow_private_destinations: bool,
    /// Endpoints (and failover URLs) must be `https://`, for tenants that
    /// did not choose otherwise in their settings.
    pub https_only: bool,
    #[serde(deserialize_with = "duration")]
    pub secret_rotation_overlap: Duration,
    #[serde(deserialize_with = "duration")]
    pub shutdown_grace: Duration,
}

/// The per-endpoint circuit breaker (`crate::delivery::flow`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CircuitConfig {
    pub failures: u32,
    #[serde(deserialize_with = "duration")]
    pub open_for: Duration,
}

/// The endpoint ownership handshake (`crate::readiness`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerificationConfig {
    pub required: bool,
    #[serde(deserialize_with = "duration")]
    pub every: Duration,
    #[serde(deserialize_with = "duration")]
    pub timeout: Duration,
    #[serde(deserialize_with = "duration")]
    pub retry_first: Duration,
    #[serde(deserialize_with = "duration")]
    pub retry_max: Duration,
}

/// When a failing endpoint is quarantined, and how it is probed.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuarantineConfig {
    #[serde(deserialize_with = "duration")]
    pub after: Duration,
    pub failures: u64,
    #[serde(deserialize_with = "duration")]
    pub probe_every: Duration,
    #[serde(deserialize_with = "duration")]
    pub probe_max: Duration,
}

/// Operational events (`crate::notify`).
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperationalConfig {
    pub failing_after: u32,
}

/// Encryption at rest (`crate::model::sealed`).
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecurityConfig {
    /// 32-byte keys, base64: the first seals, every one opens.
    pub encryption_key: Vec<String>,
    /// The keys decoded, checked once when the config is loaded.
    #[serde(skip)]
    pub encryption_keys: Vec<[u8; 32]>,
}

impl std::fmt::Debug for SecurityConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecurityConfig")
            .field(
                "encryption_key",
                &format!("[{} redacted]", self.encryption_key.len()),
            )
            .finish()
    }
}

impl SecurityConfig {
    fn decode(&self) -> Result<Vec<[u8; 32]>, ConfigError> {
        use base64::Engine;
        self.encryption_key
            .iter()
            .enumerate()
            .map(|(i, text)| {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(text.trim())
                    .map_err(|_| {
                        ConfigError(format!("security.encryption_key[{i}] is not base64"))
                    })?;
                <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| {
                    ConfigError(format!(
                        "security.encryption_key[{i}] is {} bytes, not 32",
                        bytes.len()
                    ))
                })
            })
            .collect()
    }
}

/// The audit log (`crate::store::audit`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// How long an entry is kept.
    #[serde(deserialize_with = "duration")]
    pub retention: Duration,
}

/// Settings of the plugin host (`crate::plugins`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginConfig {
    pub threads: usize,
    pub concurrency: u32,
    pub cpu_ms: u64,
    pub deadline_ms: u64,
    pub memory_bytes: u64,
    pub max_memory_bytes: u64,
    pub max_output_bytes: usize,
    pub max_log_lines: u32,
    pub max_log_bytes: usize,
    pub compile_concurrency: u32,
    pub tenant_compile_concurrency: u32,
    #[serde(deserialize_with = "duration")]
    pub compile_timeout: Duration,
    #[serde(deserialize_with = "duration")]
    pub upload_wait: Duration,
    pub cache_entries: usize,
    pub cache_bytes: usize,
    pub max_upload_bytes: usize,
    pub keep_artifacts: bool,
    pub artifacts_dir: String,
}

/// Limits per client address on unauthenticated routes (`/healthz`,
/// `/readyz`, `/metrics`) and on requests that fail authentication
/// (`crate::admission::ingest`). Tenants' own limits are set through the operator API.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    pub public_per_second: u32,
    pub public_burst: u32,
}

/// A configuration that could not be read or does not make sense.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(pub String);

impl Config {
    /// Defaults, then `file` (if any), then `GATEWAY_*` variables from `env`.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let mut merged: toml::Table = DEFAULTS
            .parse()
            .map_err(|e| ConfigError(format!("embedded defaults: {e}")))?;
        if let Some(path) = file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| ConfigError(format!("{}: {e}", path.display())))?;
            let table: toml::Table = text
                .parse()
                .map_err(|e| ConfigError(format!("{}: {e}", path.display())))?;
            merge(&mut merged, table);
        }
        for (name, value) in env {
            let Some(rest) = name.strip_prefix("GATEWAY_") else {
                continue;
            };
            let path: Vec<String> = rest.split("__").map(|s| s.to_ascii_lowercase()).collect();
            set_path(&mut merged, &path, env_value(&value));
        }
        Config::from_table(merged)
    }

    /// Deserialises and validates a complete table.
    pub fn from_table(table: toml::Table) -> Result<Config, ConfigError> {
        let mut config: Config = toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError(e.to_string()))?;
        config.redis_ca_pem = config.read_redis_ca()?;
        config.security.encryption_keys = config.security.decode()?;
        config.validate()?;
        Ok(config)
    }

    /// Reads `redis_ca_file` and checks that it holds CA certificates the
    /// Redis client takes, and that `redis_url` is one they are used for.
    fn read_redis_ca(&self) -> Result<Option<Vec<u8>>, ConfigError> {
        if self.redis_ca_file.is_empty() {
            return Ok(None);
        }
        let fail = |m: String| {
            Err(ConfigError(format!(
                "redis_ca_file {}: {m}",
                self.redis_ca_file
            )))
        };
        let pem = match std::fs::read(&self.redis_ca_file) {
            Ok(pem) => pem,
            Err(e) => return fail(format!("cannot be read: {e}")),
        };
        if !pem.windows(27).any(|w| w == b"-----BEGIN CERTIFICATE-----") {
            return fail("holds no PEM certificate".into());
        }
        if !self.redis_url.starts_with("rediss") {
            return fail("is set but redis_url is not a rediss:// (TLS) URL".into());
        }
        // Parses the certificates as the connections will.
        if let Err(e) = crate::redis_conn::RedisClient::open(&self.redis_url, Some(&pem)) {
            return fail(format!("is not usable: {e:#}"));
        }
        Ok(Some(pem))
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let d = &self.delivery;
        let fail = |m: &str| Err(ConfigError(m.to_string()));
        if self.partitions == 0 || self.partitions > 1024 {
            return fail("partitions must be between 1 and 1024");
        }
        let prefix_char = |c: char| c.is_ascii_alphanumeric() || "-_.".contains(c);
        if !(1..=32).contains(&self.redis_prefix.len())
            || !self.redis_prefix.chars().all(prefix_char)
        {
            return fail(
                "redis_prefix must be 1 to 32 letters, digits, `-`, `_` or `.` (a `{` or `}` \
                 would break the keys' hash tags)",
            );
        }
        if d.retry_schedule.is_empty() {
            return fail("delivery.retry_schedule needs at least one entry");
        }
        if !(0.0..=1.0).contains(&d.jitter) {
            return fail("delivery.jitter must be between 0 and 1");
        }
        if d.concurrency == 0 {
            return fail("delivery.concurrency must be at least 1");
        }
        if d.endpoint_concurrency == 0 || d.endpoint_concurrency > d.concurrency {
            return fail(
                "delivery.endpoint_concurrency must be between 1 and delivery.concurrency",
            );
        }
        if !(1..=10_000).contains(&self.circuit.failures) {
            return fail("circuit.failures must be between 1 and 10000");
        }
        if !(Duration::from_millis(100)..=Duration::from_secs(86_400))
            .contains(&self.circuit.open_for)
        {
            return fail("circuit.open_for must be between 100ms and 24h");
        }
        if d.default_timeout_ms == 0 || d.default_timeout_ms > d.max_timeout_ms {
            return fail("delivery.default_timeout_ms must be between 1 and max_timeout_ms");
        }
        if d.visibility_timeout <= Duration::from_millis(d.max_timeout_ms) {
            return fail("delivery.visibility_timeout must be longer than max_timeout_ms");
        }
        let schedule: Duration = d.retry_schedule.iter().sum();
        if self.ingest.retention <= schedule {
            return fail("ingest.retention must be longer than the whole retry schedule");
        }
        if !(1..=100).contains(&d.endpoint_schedule_max_attempts) {
            return fail("delivery.endpoint_schedule_max_attempts must be between 1 and 100");
        }
        if self.ingest.idempotency_window > self.ingest.retention {
            return fail(
                "ingest.idempotency_window must not be longer than ingest.retention \
                 (a remembered key must never point at an expired event)",
            );
        }
        if self.ingest.max_body_bytes < 64 {
            return fail("ingest.max_body_bytes must be at least 64");
        }
        let v = &self.verification;
        if !(Duration::from_secs(1)..=Duration::from_secs(365 * 86_400)).contains(&v.every) {
            return fail("verification.every must be between 1s and 365d");
        }
        if !(Duration::from_millis(100)..=Duration::from_secs(60)).contains(&v.timeout) {
            return fail("verification.timeout must be between 100ms and 60s");
        }
        if v.retry_first < Duration::from_millis(100) || v.retry_max < v.retry_first {
            return fail("verification.retry_first must be at least 100ms and at most retry_max");
        }
        let q = &self.quarantine;
        if q.after < Duration::from_secs(1) {
            return fail("quarantine.after must be at least 1s");
        }
        if q.probe_every < Duration::from_millis(100) || q.probe_max < q.probe_every {
            return fail("quarantine.probe_every must be at least 100ms and at most probe_max");
        }
        let l = &self.limits;
        if !(1..=1_000_000).contains(&l.public_per_second)
            || !(1..=1_000_000).contains(&l.public_burst)
        {
            return fail(
                "limits.public_per_second and limits.public_burst must be between 1 and 1000000",
            );
        }
        self.plugins.validate()
    }
}

impl PluginConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        let fail = |m: &str| Err(ConfigError(format!("plugins.{m}")));
        if !(1..=64).contains(&self.threads) {
            return fail("threads must be between 1 and 64");
        }
        if !(1..=1024).contains(&self.concurrency) {
            return fail("concurrency must be between 1 and 1024");
        }
        if self.cpu_ms == 0 || self.deadline_ms == 0 {
            return fail("cpu_ms and deadline_ms must be at least 1");
        }
        // A Rust guest starts with 17 pages (1.06 MiB), most of it its stack.
        if self.memory_bytes < 2 << 20 || self.memory_bytes > self.max_memory_bytes {
            return fail("memory_bytes must be between 2 MiB and max_memory_bytes");
        }
        if self.max_memory_bytes > 4 << 30 {
            return fail("max_memory_bytes must be at most 4 GiB");
        }
        if self.max_output_bytes < 1024 {
            return fail("max_output_bytes must be at least 1024");
        }
        if self.compile_concurrency == 0 || self.compile_timeout.is_zero() {
            return fail("compile_concurrency and compile_timeout must be above 0");
        }
        if !(1..=self.compile_concurrency).contains(&self.tenant_compile_concurrency) {
            return fail("tenant_compile_concurrency must be between 1 and compile_concurrency");
        }
        if self.cache_entries == 0 {
            return fail("cache_entries must be at least 1");
        }
        if self.max_upload_bytes < 1024 {
            return fail("max_upload_bytes must be at least 1024");
        }
        Ok(())
    }
}

fn merge(into: &mut toml::Table, from: toml::Table) {
    for (key, value) in from {
        match (into.get_mut(&key), value) {
            (Some(toml::Value::Table(a)), toml::Value::Table(b)) => merge(a, b),
            (_, value) => {
                into.insert(key, value);
            }
        }
    }
}

fn set_path(table: &mut toml::Table, path: &[String], value: toml::Value) {
    match path {
        [] => {}
        [last] => {
            table.insert(last.clone(), value);
        }
        [first, rest @ ..] => {
            let entry = table
                .entry(first.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            if let toml::Value::Table(inner) = entry {
                set_path(inner, rest, value);
            }
        }
    }
}

/// An environment value is read as a TOML value when it is one (`42`,
/// `true`, `["1s", "2s"]`) and as a plain string otherwise.
fn env_value(raw: &str) -> toml::Value {
    format!("v = {raw}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_string()))
}

/// Parses `250ms`, `5s`, `5m`, `2h`, `7d` (and `0`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration like 5s, 250ms, 2h"))?;
    let ms = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        "" if n == 0 => 0,
        _ => {
            return Err(format!(
                "`{text}` has an unknown unit (use ms, s, m, h or d)"
            ));
        }
    };
    let ms = n
        .checked_mul(ms)
        .ok_or_else(|| format!("`{text}` is too long a duration"))?;
    Ok(Duration::from_millis(ms))
}

fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    parse_duration(&text).map_err(serde::de::Error::custom)
}

fn durations<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Duration>, D::Error> {
    let texts = Vec::<String>::deserialize(d)?;
    texts
        .iter()
        .map(|t| parse_duration(t).map_err(serde::de::Error::custom))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_are_valid() {
        let c = Config::load(None, Vec::new()).unwrap();
        assert_eq!(c.delivery.retry_schedule.len(), 8);
        assert_eq!(c.delivery.retry_schedule[3], Duration::from_secs(1800));
        assert_eq!(c.ingest.max_body_bytes, 1 << 20);
        assert_eq!(c.plugins.max_upload_bytes, 32 << 20);
        assert_eq!(c.plugins.compile_timeout, Duration::from_secs(30));
    }

    #[test]
    fn env_overrides_nested_keys_with_typed_values() {
        let c = Config::load(
            None,
            env(&[
                ("GATEWAY_PARTITIONS", "2"),
                ("GATEWAY_DELIVERY__RETRY_SCHEDULE", r#"["0s", "100ms"]"#),
                ("GATEWAY_OPERATOR_TOKEN", "op-secret"),
                ("OTHER", "ignored"),
            ]),
        )
        .unwrap();
        assert_eq!(c.partitions, 2);
        assert_eq!(c.delivery.retry_schedule[1], Duration::from_millis(100));
        assert_eq!(c.operator_token, "op-secret");
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused() {
        let err = Config::load(None, env(&[("GATEWAY_NOPE", "1")])).unwrap_err();
        assert!(err.0.contains("nope"), "{err}");
        let err = Config::load(None, env(&[("GATEWAY_DELIVERY__JITTER", "3.0")])).unwrap_err();
        assert!(err.0.contains("jitter"), "{err}");
        let err = Config::load(None, env(&[("GATEWAY_INGEST__RETENTION", "\"5x\"")])).unwrap_err();
        assert!(err.0.contains("unknown unit"), "{err}");
        let err = Config::load(None, env(&[("GATEWAY_CIRCUIT__FAILURES", "0")])).unwrap_err();
        assert!(err.0.contains("circuit.failures"), "{err}");
        let err =
            Config::load(None, env(&[("GATEWAY_CIRCUIT__OPEN_FOR", "\"10ms\"")])).unwrap_err();
        assert!(err.0.contains("circuit.open_for"), "{err}");
        let err = Config::load(
            None,
            env(&[("GATEWAY_DELIVERY__ENDPOINT_CONCURRENCY", "0")]),
        )
        .unwrap_err();
        assert!(err.0.contains("endpoint_concurrency"), "{err}");
        let err = Config::load(None, env(&[("GATEWAY_LIMITS__PUBLIC_BURST", "0")])).unwrap_err();
        assert!(err.0.contains("limits.public_burst"), "{err}");
        let err =
            Config::load(None, env(&[("GATEWAY_PLUGINS__MEMORY_BYTES", "1024")])).unwrap_err();
        assert!(err.0.contains("plugins.memory_bytes"), "{err}");
        for bad in [
            "\"\"",
            "\"gw{p0}\"",
            "\"a b\"",
            &format!("\"{}\"", "x".repeat(33)),
        ] {
            let err = Config::load(None, env(&[("GATEWAY_REDIS_PREFIX", bad)])).unwrap_err();
            assert!(err.0.contains("redis_prefix"), "{bad}: {err}");
        }
        let ok = Config::load(None, env(&[("GATEWAY_REDIS_PREFIX", "\"gw-prod.eu_1\"")]));
        assert_eq!(ok.expect("a good prefix").redis_prefix, "gw-prod.eu_1");
    }

    #[test]
    fn a_redis_ca_file_is_read_once_and_checked() {
        let err = Config::load(
            None,
            env(&[
                ("GATEWAY_REDIS_URL", "rediss://127.0.0.1:6380"),
                ("GATEWAY_REDIS_CA_FILE", "/nonexistent/ca.pem"),
            ]),
        )
        .unwrap_err();
        assert!(
            err.0.contains("redis_ca_file") && err.0.contains("cannot be read"),
            "{err}"
        );
        let path =
            std::env::temp_dir().join(format!("gateway-config-ca-{}.pem", std::process::id()));
        std::fs::write(&path, "not a certificate").unwrap();
        let file = path.to_str().unwrap();
        let with = |url: &str| {
            Config::load(
                None,
                env(&[("GATEWAY_REDIS_URL", url), ("GATEWAY_REDIS_CA_FILE", file)]),
            )
        };
        let err = with("rediss://127.0.0.1:6380").unwrap_err();
        assert!(err.0.contains("no PEM certificate"), "{err}");
        std::fs::write(
            &path,
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let err = with("redis://127.0.0.1:6379").unwrap_err();
        assert!(err.0.contains("not a rediss://"), "{err}");
        let err = with("rediss://127.0.0.1:6380").unwrap_err();
        assert!(err.0.contains("is not usable"), "{err}");
        std::fs::remove_file(&path).unwrap();
        let c = Config::load(None, Vec::new()).unwrap();
        assert!(c.redis_ca_pem.is_none() && !c.delivery.https_only);
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(
            parse_duration("7d").unwrap(),
            Duration::from_secs(7 * 86_400)
        );
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("5").is_err());
    }

    #[test]
    fn durations_past_u64_milliseconds_are_refused() {
        // Found by fuzzing (fuzz/regressions/retry_backoff/): `n * ms`
        // overflowed, a panic with overflow checks and a wrapped, far
        // shorter duration without them (an endpoint's stored schedule, a
        // config value).
        let err = parse_duration("553130369678049031h").unwrap_err();
        assert!(err.contains("too long"), "{err}");
        assert!(parse_duration("213503982335d").is_err());
        assert!(parse_duration("18446744073709551616ms").is_err());
        assert_eq!(
            parse_duration("18446744073709551615ms").unwrap(),
            Duration::from_millis(u64::MAX)
        );
        assert_eq!(
            parse_duration("213503982334d").unwrap(),
            Duration::from_millis(213_503_982_334 * 86_400_000)
        );
    }
}
