//! Tenant-owned state in Redis: tenants and their API keys, consumers,
//! endpoints, event contracts, the audit log, producer keys, and the read
//! side of events, attempts and dead letters. Key
//! names live in
//! [`crate::keys`]; every tenant-owned key carries the tenant id, so one
//! tenant can never reach another's objects.

mod api_keys;
mod audit;
mod consumers;
mod endpoint;
mod endpoint_lists;
mod endpoint_parts;
mod endpoints;
mod event_types;
mod events;
mod plugins;
mod poll_keys;
mod producer_keys;
mod replays;
mod tenants;
mod verifications;

pub use api_keys::{API_KEY_PREFIX, ApiKey, KeyGrant, NewKey};
pub use audit::{AuditEntry, AuditQuery, Change};
pub use consumers::Consumer;
pub use endpoint::Endpoint;
pub use endpoint_lists::{EndpointLists, TenantEndpoints};
pub use endpoint_parts::{
    Batching, Capabilities, Circuit, CircuitState, EndpointSecret, Mode, OnPluginError, PluginRef,
    Quarantine, Subscription, Verification, VerificationState,
};
pub use event_types::{
    ContractSettings, EventTypeRecord, SchemaVersion, Transform, TypeContract, Unregistered,
};
pub use events::{AttemptRecord, StoredEvent, delivery_body, is_stream_id};
pub use plugins::{CompileStatus, Plugin, PluginVersion, TenantLimits};
pub use poll_keys::POLL_KEY_PREFIX;
pub use producer_keys::{PRODUCER_KEY_PREFIX, ProducerGrant, ProducerKey};
pub use replays::{ReplayJob, ReplayState};
pub use tenants::Tenant;

use crate::redis_conn::Conn;

use crate::keys::Partitions;

#[derive(Clone)]
pub struct Store {
    conn: Conn,
    partitions: Partitions,
}

impl Store {
    pub fn new(conn: Conn, partitions: Partitions) -> Store {
        Store { conn, partitions }
    }

    fn conn(&self) -> Conn {
        self.conn.clone()
    }
}

/// Decodes a stored record. A record that does not decode is corrupt: it is
/// logged loudly and answered as an error (the caller retries or answers
/// 500), never taken for an absent record or a default.
pub(crate) fn decode<T: serde::de::DeserializeOwned>(
    what: &str,
    json: &str,
) -> redis::RedisResult<T> {
    serde_json::from_str(json).map_err(|e| {
        tracing::error!(record = what, error = %e, "a stored record does not decode");
        redis::RedisError::from((
            redis::ErrorKind::Parse,
            "a stored record does not decode",
            format!("{what}: {e}"),
        ))
    })
}

/// [`decode`] of a record that may be absent.
pub(crate) fn decode_some<T: serde::de::DeserializeOwned>(
    what: &str,
    json: Option<String>,
) -> redis::RedisResult<Option<T>> {
    json.map(|j| decode(what, &j)).transpose()
}

/// A page of a list: the items and the cursor for the next page, if any.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Page<T> {
    pub data: Vec<T>,
    pub next_cursor: Option<String>,
}

/// Reads a lex-ordered sorted set page after `cursor`.
async fn lex_page(
    conn: &mut Conn,
    key: &str,
    limit: usize,
    cursor: Option<&str>,
) -> redis::RedisResult<(Vec<String>, Option<String>)> {
    let start = cursor.map_or_else(|| "-".to_string(), |c| format!("({c}"));
    let mut ids: Vec<String> = redis::cmd("ZRANGE")
        .arg(key)
        .arg(start)
        .arg("+")
        .arg("BYLEX")
        .arg("LIMIT")
        .arg(0)
        .arg(limit + 1)
        .query_async(conn)
        .await?;
    let next = if ids.len() > limit {
        ids.truncate(limit);
        ids.last().cloned()
    } else {
        None
    };
    Ok((ids, next))
}
