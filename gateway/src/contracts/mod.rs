//! Event contracts as the pipeline uses them: each tenant's event types with
//! their compiled schema validators and version transforms, held in memory
//! and re-read when the tenant's contracts version moves.
//!
//! Ingest checks an event against its version's schema here; the plugin
//! chain asks for the shortest path of transforms between two versions and
//! validates each step's output. A change made through this instance is
//! seen at once; one made through another instance within [`FRESH`].

mod compat;
mod schema;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use jsonschema::Validator;
use serde_json::Value;

pub use compat::{Report, compare};
pub use schema::{compile, violations};

use crate::cache::{Aged, Cache};
use crate::model::FieldError;
use crate::store::{
    ContractSettings, EventTypeRecord, SchemaVersion, Store, Transform, Unregistered,
};

/// How long a tenant's contracts are used before their version is checked.
pub const FRESH: Duration = Duration::from_secs(1);

/// Tenants' contracts, compiled, shared by ingest and fan-out.
#[derive(Clone)]
pub struct Contracts {
    store: Store,
    /// A tenant's snapshot, trusted for [`FRESH`] since its version was last checked.
    cache: Arc<Cache<String, Arc<Snapshot>>>,
}

/// Everything one tenant registered, at one contracts version.
#[derive(Default)]
pub struct Snapshot {
    version: u64,
    pub settings: ContractSettings,
    types: HashMap<String, CompiledType>,
}

pub struct CompiledType {
    pub record: EventTypeRecord,
    versions: BTreeMap<u32, CompiledVersion>,
    transforms: Vec<Transform>,
}

pub struct CompiledVersion {
    pub record: SchemaVersion,
    validator: Validator,
}

/// What ingest learned about a valid event.
#[derive(Debug, Default, PartialEq)]
pub struct Checked {
    /// The version the event is stored at (its own, or the type's latest).
    pub version: Option<u32>,
    /// Set when the type or the version is deprecated (RFC 3339).
    pub deprecated_at: Option<String>,
}

impl Contracts {
    pub fn new(store: Store) -> Contracts {
        Contracts {
            store,
            cache: Arc::new(Cache::new(FRESH)),
        }
    }

    /// The tenant's contracts: cached, re-read when their version moved.
    pub async fn get(&self, tenant: &str) -> redis::RedisResult<Arc<Snapshot>> {
        let cached = self.cache.get_aged(tenant);
        if let Some(Aged { value, fresh: true }) = &cached {
            return Ok(value.clone());
        }
        if let Some(Aged {
            value: snapshot, ..
        }) = cached
        {
            // Stamped before the check, so the calls that arrive while it
            // runs keep using this snapshot instead of checking too.
            self.keep(tenant, snapshot.clone());
            if self.store.contracts_version(tenant).await? == snapshot.version {
                return Ok(snapshot);
            }
        }
        let (version, settings, types) = self.store.all_contracts(tenant).await?;
        let snapshot = Arc::new(Snapshot {
            version,
            settings,
            types: types
                .into_iter()
                .map(|t| (t.record.name.clone(), CompiledType::new(tenant, t)))
                .collect(),
        });
        self.keep(tenant, snapshot.clone());
        Ok(snapshot)
    }

    /// Forgets the tenant's copy after a change made here.
    pub fn invalidate(&self, tenant: &str) {
        self.cache.remove(tenant);
    }

    fn keep(&self, tenant: &str, snapshot: Arc<Snapshot>) {
        self.cache.put(tenant.to_string(), snapshot);
    }
}

impl CompiledType {
    fn new(tenant: &str, contract: crate::store::TypeContract) -> CompiledType {
        let mut versions = BTreeMap::new();
        for record in contract.versions {
            match compile(&record.schema, "/schema") {
                Ok(validator) => {
                    versions.insert(record.version, CompiledVersion { record, validator });
                }
                Err(errors) => tracing::error!(tenant, event_type = %contract.record.name,
                    version = record.version, ?errors,
                    "a stored schema no longer compiles; its version is left out"),
            }
        }
        CompiledType {
            record: contract.record,
            versions,
            transforms: contract.transforms,
        }
    }

    pub fn version(&self, version: u32) -> Option<&CompiledVersion> {
        self.versions.get(&version)
    }

    pub fn latest(&self) -> Option<&CompiledVersion> {
        self.versions.values().next_back()
    }

    /// The fewest transforms that turn `from` into `to`, in order.
    pub fn path(&self, from: u32, to: u32) -> Option<Vec<&Transform>> {
        shortest_path(&self.transforms, from, to)
    }
}

impl CompiledVersion {
    /// The violations of `data` against this version's schema, under `at`.
    pub fn violations(&self, data: &Value, at: &str) -> Vec<FieldError> {
        violations(&self.validator, data, at)
    }
}

impl Snapshot {
    pub fn event_type(&self, name: &str) -> Option<&CompiledType> {
        self.types.get(name)
    }

    /// Checks an event at ingest: its type is accepted, its version exists
    /// and its data matches the version's schema. Problems go to `errors`
    /// with pointers under `at`.
    pub fn check_event(
        &self,
        event_type: &str,
        version: Option<u32>,
        data: &str,
        at: &str,
        errors: &mut Vec<FieldError>,
    ) -> Checked {
        let Some(contract) = self.types.get(event_type) else {
            if self.settings.unregistered_types == Unregistered::Refuse {
                errors.push(FieldError::new(
                    format!("{at}/type"),
                    format!("`{event_type}` is not a registered event type, and this tenant refuses unregistered types"),
                ));
            }
            return Checked {
                version,
                deprecated_at: None,
            };
        };
        let type_deprecated = contract
            .record
            .deprecated
            .then(|| contract.record.deprecated_at.clone())
            .flatten();
        let Some(latest) = contract.latest() else {
            return Checked {
                version,
                deprecated_at: type_deprecated,
            };
        };
        let wanted = version.unwrap_or(latest.record.version);
        let Some(compiled) = contract.version(wanted) else {
            let known: Vec<String> = contract.versions.keys().map(u32::to_string).collect();
            errors.push(FieldError::new(
                format!("{at}/version"),
                format!(
                    "`{event_type}` has no version {wanted} (registered: {})",
                    known.join(", ")
                ),
            ));
            return Checked::default();
        };
        match serde_json::from_str::<Value>(data) {
            Ok(value) => errors.extend(compiled.violations(&value, &format!("{at}/data"))),
            Err(e) => errors.push(FieldError::new(format!("{at}/data"), e.to_string())),
        }
        let version_deprecated = compiled
            .record
            .deprecated
            .then(|| compiled.record.deprecated_at.clone())
            .flatten();
        Checked {
            version: Some(wanted),
            deprecated_at: version_deprecated.or(type_deprecated),
        }
    }
}

/// Breadth-first over the transform graph: the fewest hops from `from` to `to`.
fn shortest_path(transforms: &[Transform], from: u32, to: u32) -> Option<Vec<&Transform>> {
    let mut came_by: HashMap<u32, &Transform> = HashMap::new();
    let mut queue = VecDeque::from([from]);
    while let Some(at) = queue.pop_front() {
        if at == to {
            let mut path = Vec::new();
            let mut step = to;
            while step != from {
                let hop = came_by[&step];
                path.push(hop);
                step = hop.from;
            }
            path.reverse();
            return Some(path);
        }
        for hop in transforms.iter().filter(|t| t.from == at) {
            if hop.to != from && !came_by.contains_key(&hop.to) {
                came_by.insert(hop.to, hop);
                queue.push_back(hop.to);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hop(from: u32, to: u32) -> Transform {
        Transform {
            from,
            to,
            plugin: format!("p{from}{to}"),
            plugin_version: None,
            config: Value::Null,
            updated_at: String::new(),
        }
    }

    fn route(transforms: &[Transform], from: u32, to: u32) -> Option<Vec<(u32, u32)>> {
        shortest_path(transforms, from, to).map(|p| p.iter().map(|t| (t.from, t.to)).collect())
    }

    #[test]
    fn the_shortest_chain_of_transforms_is_found() {
        let all = [
            hop(1, 2),
            hop(2, 3),
            hop(3, 2),
            hop(2, 1),
            hop(1, 3),
            hop(3, 4),
        ];
        assert_eq!(route(&all, 1, 2), Some(vec![(1, 2)]));
        assert_eq!(route(&all, 1, 3), Some(vec![(1, 3)]));
        assert_eq!(route(&all, 1, 4), Some(vec![(1, 3), (3, 4)]));
        assert_eq!(route(&all, 3, 1), Some(vec![(3, 2), (2, 1)]));
        assert_eq!(route(&all, 4, 1), None);
        assert_eq!(route(&all, 2, 2), Some(vec![]));
    }
}
