//! The audit log: one entry per change to a tenant's configuration or the
//! operator's, append-only, in two Redis streams — the tenant's own
//! (`gw:{t.<tenant>}:audit`) and everyone's (`gw:audit`) — trimmed to the
//! retention (`audit.retention`) by `MINID`. An entry holds when, who (the
//! operator, or a key by id and name), the action, the object, and each
//! changed field before and after, with secrets redacted.
//!
//! The entry is written before its change and the change is made only if
//! it was: no change without its record. (A change that then fails, say
//! Redis going away in between, leaves its entry standing: the answer was
//! an error, and the entry records the attempt.)

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Store, decode};
use crate::keys;
use crate::model::Actor;

/// What a redacted field shows.
pub const REDACTED: &str = "[redacted]";

/// Fields never written to the log: shown as [`REDACTED`] (so a rotation
/// still shows as a change).
const SECRET_FIELDS: [&str; 6] = [
    "secret",
    "secrets",
    "api_key",
    "key",
    "client_key_pem",
    "token",
];

/// The object a change was made to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditObject {
    /// `tenant`, `limits`, `key`, `consumer`, `endpoint`, `plugin`,
    /// `event_type`, `schema_version`, `transform`, `settings`, `producer_key`.
    pub kind: String,
    pub id: String,
}

/// One field's values before and after a change (absent: the field was
/// not there).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FieldChange {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub before: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub after: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditEntry {
    /// The entry's stream id: entries sort by it.
    #[serde(default)]
    pub id: String,
    /// RFC 3339.
    pub at: String,
    /// The tenant whose object it is (absent for the operator's own, such
    /// as producer keys).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    pub actor: Actor,
    /// `<kind>.<verb>`: `endpoint.created`, `key.revoked`, ...
    pub action: String,
    pub object: AuditObject,
    /// Each top-level field that changed.
    pub changes: BTreeMap<String, FieldChange>,
}

/// A change to record.
pub struct Change<'a> {
    pub tenant: Option<&'a str>,
    pub actor: &'a Actor,
    pub action: &'a str,
    pub kind: &'a str,
    pub id: &'a str,
    pub before: Option<Value>,
    pub after: Option<Value>,
}

/// The top-level fields that differ between two JSON objects (a value
/// that is not an object counts as the one field `value`), secrets redacted.
pub fn diff(before: Option<&Value>, after: Option<&Value>) -> BTreeMap<String, FieldChange> {
    fn fields(v: Option<&Value>) -> BTreeMap<String, Value> {
        match v {
            None | Some(Value::Null) => BTreeMap::new(),
            // A field set to null is taken as absent.
            Some(Value::Object(map)) => map
                .iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            Some(other) => BTreeMap::from([("value".to_string(), other.clone())]),
        }
    }
    let (old, new) = (fields(before), fields(after));
    let names: std::collections::BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    let redact = |name: &str, v: Option<&Value>| match SECRET_FIELDS.contains(&name) {
        true => v.map(|_| Value::String(REDACTED.into())),
        false => v.cloned(),
    };
    names
        .into_iter()
        .filter(|name| old.get(*name) != new.get(*name))
        .map(|name| {
            let change = FieldChange {
                before: redact(name, old.get(name)),
                after: redact(name, new.get(name)),
            };
            (name.clone(), change)
        })
        .collect()
}

/// Oldest entry id kept: `retention` ago.
fn min_id(retention: std::time::Duration) -> String {
    let now = crate::model::clock::now_ms();
    format!("{}-0", now.saturating_sub(retention.as_millis() as u64))
}

impl Store {
    /// Appends a change to the log (the tenant's and everyone's).
    pub async fn audit(
        &self,
        change: Change<'_>,
        retention: std::time::Duration,
    ) -> redis::RedisResult<()> {
        let entry = AuditEntry {
            id: String::new(),
            at: crate::model::clock::now_rfc3339(),
            tenant: change.tenant.map(str::to_string),
            actor: change.actor.clone(),
            action: change.action.to_string(),
            object: AuditObject {
                kind: change.kind.to_string(),
                id: change.id.to_string(),
            },
            changes: diff(change.before.as_ref(), change.after.as_ref()),
        };
        let json = serde_json::to_string(&entry).expect("an audit entry always serialises");
        let floor = min_id(retention);
        // The tenant's log first, then everyone's: an entry the tenant's
        // log refuses is nowhere.
        let mut streams = vec![keys::audit()];
        if let Some(tenant) = change.tenant {
            streams.insert(0, keys::tenant_audit(tenant));
        }
        for stream in &streams {
            let _: String = redis::cmd("XADD")
                .arg(stream)
                .arg("MINID")
                .arg("~")
                .arg(&floor)
                .arg("*")
                .arg("j")
                .arg(&json)
                .query_async(&mut self.conn())
                .await?;
        }
        Ok(())
    }

    /// A page of the log (a tenant's, or everyone's), oldest first, after
    /// entry `cursor`, from `since` to `until` (ms), of object `object`
    /// (an id) if given.
    pub async fn audit_page(
        &self,
        tenant: Option<&str>,
        query: &AuditQuery<'_>,
    ) -> redis::RedisResult<super::Page<AuditEntry>> {
        let stream = tenant.map_or_else(keys::audit, keys::tenant_audit);
        let start = match query.cursor {
            Some(c) => format!("({c}"),
            None => query.since_ms.map_or("-".into(), |ms| format!("{ms}-0")),
        };
        let end = query
            .until_ms
            .map_or("+".into(), |ms| format!("{ms}-18446744073709551615"));
        let mut data = Vec::new();
        let mut next = start;
        // Read in chunks until the page is full or the range is read: a
        // filter by object may skip most entries.
        loop {
            let chunk: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
                .arg(&stream)
                .arg(&next)
                .arg(&end)
                .arg("COUNT")
                .arg(500)
                .query_async(&mut self.conn())
                .await?;
            let done = chunk.len() < 500;
            for (id, fields) in chunk {
                next = format!("({id}");
                let Some((_, json)) = fields.into_iter().find(|(f, _)| f == "j") else {
                    continue;
                };
                let mut entry: AuditEntry = decode("audit entry", &json)?;
                entry.id = id;
                if query.object.is_none_or(|o| entry.object.id == o) {
                    data.push(entry);
                }
                if data.len() > query.limit {
                    break;
                }
            }
            if done || data.len() > query.limit {
                break;
            }
        }
        let next_cursor = match data.len() > query.limit {
            true => {
                data.truncate(query.limit);
                data.last().map(|e| e.id.clone())
            }
            false => None,
        };
        Ok(super::Page { data, next_cursor })
    }
}

/// Which entries a page of the log holds.
pub struct AuditQuery<'a> {
    pub limit: usize,
    pub cursor: Option<&'a str>,
    pub since_ms: Option<u64>,
    pub until_ms: Option<u64>,
    pub object: Option<&'a str>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_diff_lists_changed_fields_only_with_secrets_redacted() {
        let before = json!({"url": "https://a", "secrets": ["whsec_x"], "name": "n"});
        let after = json!({"url": "https://b", "secrets": ["whsec_y"], "name": "n", "x": 1});
        let changes = diff(Some(&before), Some(&after));
        assert_eq!(changes.keys().collect::<Vec<_>>(), ["secrets", "url", "x"]);
        assert_eq!(changes["url"].before, Some(json!("https://a")));
        assert_eq!(changes["secrets"].after, Some(json!(REDACTED)));
        assert_eq!(changes["x"].before, None);
        let text = serde_json::to_string(&changes).unwrap();
        assert!(!text.contains("whsec_"), "{text}");
    }

    #[test]
    fn a_creation_has_every_field_after_and_a_deletion_every_field_before() {
        let record = json!({"uid": "u1", "name": "A"});
        let created = diff(None, Some(&record));
        assert!(
            created
                .values()
                .all(|c| c.before.is_none() && c.after.is_some())
        );
        let deleted = diff(Some(&record), None);
        assert!(
            deleted
                .values()
                .all(|c| c.before.is_some() && c.after.is_none())
        );
    }
}
