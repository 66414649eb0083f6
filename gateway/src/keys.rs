//! The Redis key layout: every key the gateway reads or writes is built here.
//!
//! Keys that must change together share a hash tag, so that one Lua script
//! can touch them on Redis Cluster too:
//!
//! | key | type | what |
//! | --- | --- | --- |
//! | `gw:{pN}:ingest` | stream | accepted events of partition N (`j`: tenant, id, type; `b`: the delivery body); group `fanout`; trimmed by MINID after the retention window |
//! | `gw:{pN}:delivery` | stream | one task per (event, endpoint) attempt; group `delivery` |
//! | `gw:{pN}:quarantine` | stream | entries of partition N's ingest or delivery stream that did not decode, moved here raw (`stream`, `id`, `j`, `b`, `error`) by `quarantine.lua`; the newest 10,000 kept |
//! | `gw:{pN}:retry` | sorted set | tasks waiting for their next attempt, scored by due time (ms) |
//! | `gw:{pN}:parked:<tenant>:<endpoint>` | sorted set | tasks of partition N held for an endpoint that has not passed its handshake, scored by the order they were parked in (ms); `settle.lua` parks, `release.lua` moves them back to the delivery stream |
//! | `gw:{pN}:parked` | set | the `<tenant>\0<endpoint>`s with tasks parked in partition N |
//! | `gw:{pN}:evt:<tenant>:<event>` | hash | the stored event (`body`, `type`, ...) and `s:<endpoint>` status fields; written at ingest for an event with a dedup key, else by fan-out when an endpoint subscribes to it |
//! | `gw:{pN}:idem:<tenant>:<sha256(key)>` | string | event id answered for an idempotency key |
//! | `gw:{pN}:backlog:<tenant>` | string | the tenant's unfinished delivery tasks in partition N (delivery stream + retry set + park sets): `fanout.lua` and `Queue::enqueue` add, `settle.lua` subtracts; absent = 0 |
//! | `gw:{t.<tenant>}:tenant` | string | the tenant record (JSON) |
//! | `gw:{t.<tenant>}:eps` | sorted set | the tenant's endpoint ids (score 0, listed by lex order) |
//! | `gw:{t.<tenant>}:epver` | string | bumped on every endpoint change (fan-out cache check) |
//! | `gw:{t.<tenant>}:ep:<id>` | string | an endpoint (JSON, with its secrets) |
//! | `gw:{t.<tenant>}:ep:<id>:attempts` | stream | the endpoint's delivery attempts |
//! | `gw:{t.<tenant>}:ep:<id>:rate` | string | the endpoint's GCRA theoretical arrival time (µs, Redis clock) |
//! | `gw:{t.<tenant>}:ep:<id>:inflight` | sorted set | leases of requests in flight to the endpoint, scored by expiry (ms) |
//! | `gw:{t.<tenant>}:ep:<id>:circuit` | hash | the endpoint's circuit: `failures` in a row, `open_until` (ms) |
//! | `gw:{t.<tenant>}:ep:<id>:probe` | string | the one half-open probe's lease (expires on its own) |
//! | `gw:{t.<tenant>}:ep:<id>:poll` | stream | a poll-mode endpoint's events (`e` event id, `m` webhook-id, `b` body, `h` signature headers as JSON), trimmed by MINID after the retention window |
//! | `gw:{t.<tenant>}:ep:<id>:pollack` | string | the stream id its consumer acknowledged last |
//! | `gw:{t.<tenant>}:dead` | stream | the tenant's dead letters |
//! | `gw:{t.<tenant>}:replay:<id>` | string | a replay job and its progress (JSON); expires a day after its last change |
//! | `gw:{t.<tenant>}:plugins` | sorted set | the tenant's plugin names (score 0, lex order) |
//! | `gw:{t.<tenant>}:plugin:<name>` | string | a plugin's record and versions (JSON) |
//! | `gw:{t.<tenant>}:wasm:<sha256>` | string | a component's bytes |
//! | `gw:{t.<tenant>}:limits` | string | the operator's overrides for the tenant (JSON) |
//! | `gw:{t.<tenant>}:etypes` | sorted set | the tenant's event type names (score 0, lex order) |
//! | `gw:{t.<tenant>}:etype:<type>` | string | an event type's record (JSON) |
//! | `gw:{t.<tenant>}:etype:<type>:versions` | hash | version number → schema version record (JSON); a version is written once |
//! | `gw:{t.<tenant>}:etype:<type>:transforms` | hash | `<from>><to>` → version transform (JSON) |
//! | `gw:{t.<tenant>}:contracts` | string | bumped on every change to event types, versions, transforms or settings (cache check) |
//! | `gw:{t.<tenant>}:settings` | string | the tenant's contract settings (JSON) |
//! | `gw:{partitions}:writers` | sorted set | each partition count an instance writes with, scored by when an instance last said so (ms); see [`Partitions::stored`] |
//! | `gw:verify:due` | sorted set | `<tenant>\0<endpoint>`s by when their next handshake is due (ms); a gateway that takes one pushes it a lease ahead first |
//! | `gw:tenants` | sorted set | every tenant id (score 0, listed by lex order) |
//! | `gw:apikey:<sha256(key)>` | string | the tenant id owning an API key |
//! | `gw:pollkey:<sha256(key)>` | string | `<tenant>\0<endpoint>` a poll key (`gwp_...`) is good for |
//!
//! The partition of an event is chosen from its tenant and its idempotency
//! key (or its id), or in turn when it has neither, and its delivery tasks
//! stay in that partition.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU16, Ordering};

use parking_lot::RwLock;

use crate::model::sha256_hex;

/// What every key starts with unless `redis_prefix` says otherwise.
pub const DEFAULT_PREFIX: &str = "gw";

static PREFIX: OnceLock<String> = OnceLock::new();

/// Sets what every key of this process starts with (`redis_prefix`), so
/// that several deployments can share one Redis. Once per process: a
/// second, different prefix is refused.
pub fn install_prefix(prefix: &str) -> Result<(), String> {
    let installed = PREFIX.get_or_init(|| prefix.to_string());
    match installed == prefix {
        true => Ok(()),
        false => Err(format!(
            "this process already uses the key prefix {installed:?}, not {prefix:?}"
        )),
    }
}

fn prefix() -> &'static str {
    PREFIX.get().map_or(DEFAULT_PREFIX, String::as_str)
}

pub const FANOUT_GROUP: &str = "fanout";
pub const DELIVERY_GROUP: &str = "delivery";
/// Every tenant id (score 0, listed by lex order).
pub fn tenants() -> String {
    format!("{}:tenants", prefix())
}

/// The partition counts instances write with, each scored by when an
/// instance last said it writes with it (ms).
pub fn partition_writers() -> String {
    format!("{}:{{partitions}}:writers", prefix())
}

/// What this process last read of every instance's partition counts
/// ([`Partitions::learn`]).
struct Seen {
    /// One past the highest partition any instance has written to.
    stored: AtomicU16,
    /// The counts instances wrote with within the idempotency window.
    recent: RwLock<Vec<u16>>,
}

static SEEN: Seen = Seen {
    stored: AtomicU16::new(0),
    recent: RwLock::new(Vec::new()),
};

/// Builds partitioned key names. An instance writes new events into
/// `count` partitions; every instance reads from every partition any of
/// them wrote to ([`Partitions::stored`]), so `partitions` can change on a
/// running deployment.
#[derive(Debug, Clone, Copy)]
pub struct Partitions {
    count: u16,
}

impl Partitions {
    pub fn new(count: u16) -> Self {
        assert!(count > 0, "at least one partition");
        Partitions { count }
    }

    pub fn count(&self) -> u16 {
        self.count
    }

    /// The partitions this instance writes new events into.
    pub fn all(&self) -> impl Iterator<Item = u16> + use<> {
        0..self.count
    }

    /// Every partition that may hold events: this instance's and those
    /// any instance wrote to, as last read from the registry.
    pub fn stored(&self) -> impl Iterator<Item = u16> + use<> {
        0..self.stored_count()
    }

    /// One past the highest of [`Partitions::stored`].
    pub fn stored_count(&self) -> u16 {
        self.count.max(SEEN.stored.load(Ordering::Relaxed))
    }

    /// Records what the registry holds: one past the highest partition
    /// written to, and the counts written with within the idempotency window.
    pub fn learn(stored: u16, recent: Vec<u16>) {
        SEEN.stored.store(stored, Ordering::Relaxed);
        *SEEN.recent.write() = recent;
    }

    /// Where an event with this dedup key went under the other counts
    /// written with lately: partitions other than [`Partitions::of`]'s
    /// that may hold its idempotency record.
    pub fn others_of(&self, tenant: &str, key: &str) -> Vec<u16> {
        self.others_under(&SEEN.recent.read(), tenant, key)
    }

    /// [`Partitions::others_of`] for the counts `recent`.
    fn others_under(&self, recent: &[u16], tenant: &str, key: &str) -> Vec<u16> {
        let mine = self.of(tenant, key);
        let mut others: Vec<u16> = recent
            .iter()
            .filter(|&&n| n != self.count && n > 0)
            .map(|&n| Partitions { count: n }.of(tenant, key))
            .filter(|&p| p != mine)
            .collect();
        others.sort_unstable();
        others.dedup();
        others
    }

    /// The partition for a tenant's event, from its dedup key (idempotency
    /// key or event id). FNV-1a: stable across processes and releases.
    pub fn of(&self, tenant: &str, key: &str) -> u16 {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in tenant.bytes().chain([0u8]).chain(key.bytes()) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        (hash % u64::from(self.count)) as u16
    }

    /// A partition for an event with no dedup key to place it by: each in
    /// turn, per process.
    pub fn spread(&self) -> u16 {
        static NEXT: AtomicU16 = AtomicU16::new(0);
        NEXT.fetch_add(1, Ordering::Relaxed) % self.count
    }
}

pub fn ingest_stream(p: u16) -> String {
    format!("{}:{{p{p}}}:ingest", prefix())
}

pub fn delivery_stream(p: u16) -> String {
    format!("{}:{{p{p}}}:delivery", prefix())
}

pub fn quarantine(p: u16) -> String {
    format!("{}:{{p{p}}}:quarantine", prefix())
}

pub fn retry_set(p: u16) -> String {
    format!("{}:{{p{p}}}:retry", prefix())
}

/// Tasks parked for one endpoint until it passes its handshake, by the
/// order they were parked in.
pub fn parked(p: u16, tenant: &str, endpoint: &str) -> String {
    format!("{}:{{p{p}}}:parked:{tenant}:{endpoint}", prefix())
}

/// The endpoints with tasks parked in partition `p`, as [`endpoint_member`]s.
pub fn parked_index(p: u16) -> String {
    format!("{}:{{p{p}}}:parked", prefix())
}

/// How a set or a value names one endpoint: `<tenant>\0<endpoint>`
/// ([`parked_index`], [`VERIFY_DUE`], a [`poll_key`]'s scope).
pub fn endpoint_member(tenant: &str, endpoint: &str) -> String {
    format!("{tenant}\0{endpoint}")
}

/// The `(tenant, endpoint)` an [`endpoint_member`] names.
pub fn parse_endpoint_member(member: &str) -> Option<(String, String)> {
    let (tenant, endpoint) = member.split_once('\0')?;
    Some((tenant.to_string(), endpoint.to_string()))
}

/// Endpoints by when their next handshake is due (ms), as [`endpoint_member`]s.
pub fn verify_due() -> String {
    format!("{}:verify:due", prefix())
}

pub fn event(p: u16, tenant: &str, event: &str) -> String {
    format!("{}:{{p{p}}}:evt:{tenant}:{event}", prefix())
}

pub fn idempotency(p: u16, tenant: &str, key: &str) -> String {
    format!(
        "{}:{{p{p}}}:idem:{tenant}:{}",
        prefix(),
        sha256_hex(key.as_bytes())
    )
}

pub fn backlog(p: u16, tenant: &str) -> String {
    format!("{}:{{p{p}}}:backlog:{tenant}", prefix())
}

pub fn tenant(tenant: &str) -> String {
    format!("{}:{{t.{tenant}}}:tenant", prefix())
}

pub fn endpoints(tenant: &str) -> String {
    format!("{}:{{t.{tenant}}}:eps", prefix())
}

pub fn endpoints_version(tenant: &str) -> String {
    format!("{}:{{t.{tenant}}}:epver", prefix())
}

pub fn endpoint(tenant: &str, endpoint: &str) -> String {
    format!("{}:{{t.{tenant}}}:ep:{endpoint}", prefix())
}

pub fn attempts(tenant: &str, endpoint: &str) -> String {
    format!("{}:{{t.{tenant}}}:ep:{endpoint}:attempts", prefix())
}

/// A per-endpoint flow-control key (`rate`, `inflight`, `circuit`, `probe`).
pub fn endpoint_flow(tenant: &str, endpoint: &str, what: &str) -> String {
    format!("{}:{{t.{tenant}}}:ep:{endpoint}:{what}", prefix())
}

/// A counter of the tenant's failed attempts, bumped by each: while it
/// stays the same, no endpoint of the tenant has failed, so one found clear
/// is still clear (`admission::endpoint`).
pub fn flow_epoch(tenant: &str) -> String {
    format!("{}:{{t.{tenant}}}:flow-epoch", prefix())
}

/// An endpoint in poll mode: its events as handed to the channel.
pub fn poll_stream(tenant: &str, endpoint: &str) -> String {
    format!("{}:{{t.{tenant}}}:ep:{endpoint}:poll", prefix())
}

/// The poll channel's cursor its consumer acknowledged last.
pub fn poll_cursor(tenant: &str, endpoint: &str) -> String {
    format!("{}:{{t.{tenant}}}:ep:{endpoint}:pollack", prefix())
}

pub fn replay(tenant: &str, id: &str) -> String {
    format!("{}:{{t.{tenant}}}:replay:{id}", prefix())
}

pub fn dead_letters(tenant: &str) -> String {
    format!("{}:{{t.{tenant}}}:dead", prefix())
}

pub fn plugins(tenant: &str) -> String {
    format!("{}:{{t.{tenant}}}:plugins", prefix())
}

pub fn plugin(tenant: &str, name: &str) -> String {
    format!("{}:{{t.{tenant}}}:plugin:{name}", prefix())
}

pub fn plugin_bytes(tenant: &str, sha256: &str) -> String {
    format!("{}:{{t.{tenant}}}:wasm:{sha256}", prefix())
}

pub fn limits(tenant: &str) -> String {
    format!("{}:{{t.{tenant}}}:limits", prefix())
}

pub fn event_types(tenant: &str) -> String {
    format!("{}:{{t.{tenant}}}:etypes", prefix())
}

pub fn event_type(tenant: &str, name: &str) -> String {
    format!("{}:{{t.{tenant}}}:etype:{name}", prefix())
}

pub fn schema_versions(tenant: &str, name: &str) -> String {
    format!("{}:{{t.{tenant}}}:etype:{name}:versions", prefix())
}

pub fn transforms(tenant: &str, name: &str) -> String {
    format!("{}:{{t.{tenant}}}:etype:{name}:transforms", prefix())
}

pub fn contracts_version(tenant: &str) -> String {
    format!("{}:{{t.{tenant}}}:contracts", prefix())
}

pub fn contract_settings(tenant: &str) -> String {
    format!("{}:{{t.{tenant}}}:settings", prefix())
}

/// A tenant's API keys as listed: key id → the key (without the key).
pub fn tenant_keys(tenant: &str) -> String {
    format!("{}:{{t.{tenant}}}:keys", prefix())
}

/// A tenant's consumers: consumer id → the consumer.
pub fn consumers(tenant: &str) -> String {
    format!("{}:{{t.{tenant}}}:consumers", prefix())
}

/// A tenant's audit log, oldest first.
pub fn tenant_audit(tenant: &str) -> String {
    format!("{}:{{t.{tenant}}}:audit", prefix())
}

/// Every audit entry of every tenant and the operator, oldest first.
pub fn audit() -> String {
    format!("{}:audit", prefix())
}

/// The producer keys as listed: key id → the key (without the key).
pub fn producer_keys() -> String {
    format!("{}:producer-keys", prefix())
}

/// A producer key's grant, by its SHA-256.
pub fn producer_key(key_hash: &str) -> String {
    format!("{}:producerkey:{key_hash}", prefix())
}

pub fn api_key(key_hash: &str) -> String {
    format!("{}:apikey:{key_hash}", prefix())
}

/// A poll key, good for one endpoint's poll routes only.
pub fn poll_key(key_hash: &str) -> String {
    format!("{}:pollkey:{key_hash}", prefix())
}

/// Event status field for one endpoint inside the event hash.
pub fn status_field(endpoint: &str) -> String {
    format!("s:{endpoint}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_choice_is_stable_and_spread() {
        let p = Partitions::new(8);
        assert_eq!(p.of("t1", "k"), p.of("t1", "k"));
        let mut seen = [0u32; 8];
        for i in 0..800 {
            seen[p.of("tenant", &format!("key-{i}")) as usize] += 1;
        }
        assert!(seen.iter().all(|&n| n > 50), "{seen:?}");
    }

    #[test]
    fn a_key_is_looked_for_where_the_other_counts_put_it() {
        let four = Partitions::new(4);
        let eight = Partitions::new(8);
        let mut moved = 0;
        for k in 0..64 {
            let key = format!("key-{k}");
            let (p4, p8) = (four.of("t", &key), eight.of("t", &key));
            // Doubling moves a key only to the partition 4 above its own.
            assert!(
                p8 == p4 || p8 == p4 + 4,
                "{key}: {p4} under 4, {p8} under 8"
            );
            let others = four.others_under(&[4, 8, 8], "t", &key);
            match p8 == p4 {
                true => assert!(others.is_empty(), "{key}: {others:?}"),
                false => {
                    moved += 1;
                    assert_eq!(others, [p8], "{key}");
                }
            }
            assert_eq!(
                eight.others_under(&[4, 8], "t", &key).contains(&p4),
                p4 != p8
            );
            assert!(four.others_under(&[4], "t", &key).is_empty());
        }
        assert!((16..=48).contains(&moved), "{moved} of 64 keys moved");
    }

    #[test]
    fn partitioned_keys_share_a_hash_tag() {
        assert_eq!(ingest_stream(3), "gw:{p3}:ingest");
        assert!(event(3, "t", "e").starts_with("gw:{p3}:"));
        assert!(retry_set(3).starts_with("gw:{p3}:"));
        assert_eq!(backlog(3, "t"), "gw:{p3}:backlog:t");
        assert!(endpoint("abc", "ep").starts_with("gw:{t.abc}:"));
    }
}
