//! The compatibility check between two versions of an event type's schema:
//! every difference a consumer could trip on, each marked breaking or not.
//!
//! Breaking: a property removed, a type changed, a property newly required,
//! enum values removed, `additionalProperties` closed, a constraint
//! (`format`, `pattern`, bounds, `const`, ...) or a composition (`allOf`,
//! `anyOf`, `oneOf`, `not`, `if`/`then`/`else`) changed. Additive: a new
//! optional property, a property no longer required, enum values added,
//! `additionalProperties` opened. Annotations (`title`, `description`,
//! `examples`, ...) are ignored. Local `$ref`s (`#/...`) are followed;
//! anything else that differs is reported as a changed constraint.

use std::collections::HashSet;

use serde_json::{Map, Value};

pub use crate::model::{Change, ChangeKind, Report};

/// Keywords compared for equality: any difference is a changed constraint.
const CONSTRAINTS: [&str; 24] = [
    "format",
    "pattern",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "uniqueItems",
    "minProperties",
    "maxProperties",
    "const",
    "allOf",
    "anyOf",
    "oneOf",
    "not",
    "if",
    "then",
    "else",
    "prefixItems",
    "patternProperties",
];

/// How deep `$ref`s and nesting are followed (a cycle stops here).
const MAX_DEPTH: usize = 48;

/// Compares `previous` with `next`.
pub fn compare(previous: &Value, next: &Value) -> Report {
    let mut diff = Diff {
        old_root: previous,
        new_root: next,
        changes: Vec::new(),
        compared: HashSet::new(),
    };
    diff.node(previous, next, "", 0);
    Report {
        compatible: diff.changes.iter().all(|c| !c.breaking),
        changes: diff.changes,
    }
}

struct Diff<'a> {
    old_root: &'a Value,
    new_root: &'a Value,
    changes: Vec<Change>,
    /// The pairs of (resolved) schemas already compared: each pair once,
    /// however many `$ref`s lead to it. Without it a schema with two
    /// references to itself (a tree's `left` and `right`) doubles the work
    /// at every level, 2^MAX_DEPTH comparisons.
    compared: HashSet<(*const Value, *const Value)>,
}

impl<'a> Diff<'a> {
    fn push(&mut self, kind: ChangeKind, pointer: &str, detail: String) {
        self.changes.push(Change {
            kind,
            breaking: kind.breaking(),
            pointer: if pointer.is_empty() {
                "/".to_string()
            } else {
                pointer.to_string()
            },
            detail,
        });
    }

    fn node(&mut self, old: &'a Value, new: &'a Value, at: &str, depth: usize) {
        if depth > MAX_DEPTH {
            return;
        }
        let old = resolve(self.old_root, old, 0);
        let new = resolve(self.new_root, new, 0);
        if !self
            .compared
            .insert((old as *const Value, new as *const Value))
        {
            return;
        }
        let (Some(old_map), Some(new_map)) = (old.as_object(), new.as_object()) else {
            // `true`/`false` schemas, or a schema that became one.
            if old != new {
                self.push(
                    ChangeKind::ConstraintChanged,
                    at,
                    format!("the schema changed from {old} to {new}"),
                );
            }
            return;
        };
        self.types(old_map, new_map, at);
        self.enums(old_map, new_map, at);
        for keyword in CONSTRAINTS {
            if old_map.get(keyword) != new_map.get(keyword) {
                self.push(
                    ChangeKind::ConstraintChanged,
                    &format!("{at}/{keyword}"),
                    format!(
                        "`{keyword}` changed from {} to {}",
                        shown(old_map.get(keyword)),
                        shown(new_map.get(keyword))
                    ),
                );
            }
        }
        self.properties(old_map, new_map, at, depth);
        self.required(old_map, new_map, at);
        self.additional(old_map, new_map, at, depth);
        if let (Some(o), Some(n)) = (old_map.get("items"), new_map.get("items")) {
            self.node(o, n, &format!("{at}/items"), depth + 1);
        } else if old_map.get("items") != new_map.get("items") {
            self.push(
                ChangeKind::ConstraintChanged,
                &format!("{at}/items"),
                "`items` was added or removed".into(),
            );
        }
    }

    fn types(&mut self, old: &Map<String, Value>, new: &Map<String, Value>, at: &str) {
        let (o, n) = (type_set(old), type_set(new));
        if o != n {
            self.push(
                ChangeKind::TypeChanged,
                &format!("{at}/type"),
                format!("the type changed from {} to {}", o.join("|"), n.join("|")),
            );
        }
    }

    fn enums(&mut self, old: &Map<String, Value>, new: &Map<String, Value>, at: &str) {
        let pointer = format!("{at}/enum");
        match (
            old.get("enum").and_then(Value::as_array),
            new.get("enum").and_then(Value::as_array),
        ) {
            (Some(o), Some(n)) => {
                let removed: Vec<String> = o
                    .iter()
                    .filter(|v| !n.contains(v))
                    .map(Value::to_string)
                    .collect();
                let added: Vec<String> = n
                    .iter()
                    .filter(|v| !o.contains(v))
                    .map(Value::to_string)
                    .collect();
                if !removed.is_empty() {
                    let detail = format!("enum values removed: {}", removed.join(", "));
                    self.push(ChangeKind::EnumValuesRemoved, &pointer, detail);
                }
                if !added.is_empty() {
                    let detail = format!("enum values added: {}", added.join(", "));
                    self.push(ChangeKind::EnumValuesAdded, &pointer, detail);
                }
            }
            (None, Some(_)) => self.push(
                ChangeKind::EnumValuesRemoved,
                &pointer,
                "an enum now restricts the values".into(),
            ),
            (Some(_), None) => self.push(
                ChangeKind::EnumValuesAdded,
                &pointer,
                "the enum was lifted".into(),
            ),
            (None, None) => {}
        }
    }

    fn properties(
        &mut self,
        old: &'a Map<String, Value>,
        new: &'a Map<String, Value>,
        at: &str,
        depth: usize,
    ) {
        let o = old.get("properties").and_then(Value::as_object);
        let n = new.get("properties").and_then(Value::as_object);
        for (name, old_schema) in o.into_iter().flatten() {
            let pointer = format!("{at}/properties/{}", escape(name));
            match n.and_then(|n| n.get(name)) {
                Some(new_schema) => self.node(old_schema, new_schema, &pointer, depth + 1),
                None => self.push(
                    ChangeKind::PropertyRemoved,
                    &pointer,
                    format!("property `{name}` was removed"),
                ),
            }
        }
        let added = n
            .into_iter()
            .flat_map(|n| n.keys())
            .filter(|name| !o.is_some_and(|o| o.contains_key(*name)));
        for name in added {
            let pointer = format!("{at}/properties/{}", escape(name));
            self.push(
                ChangeKind::PropertyAdded,
                &pointer,
                format!("property `{name}` was added"),
            );
        }
    }

    fn required(&mut self, old: &Map<String, Value>, new: &Map<String, Value>, at: &str) {
        let (o, n) = (names(old.get("required")), names(new.get("required")));
        let pointer = format!("{at}/required");
        for name in n.iter().filter(|name| !o.contains(name)) {
            let detail = format!("property `{name}` is now required");
            self.push(ChangeKind::RequiredAdded, &pointer, detail);
        }
        for name in o.iter().filter(|name| !n.contains(name)) {
            let detail = format!("property `{name}` is no longer required");
            self.push(ChangeKind::RequiredRemoved, &pointer, detail);
        }
    }

    fn additional(
        &mut self,
        old: &'a Map<String, Value>,
        new: &'a Map<String, Value>,
        at: &str,
        depth: usize,
    ) {
        let pointer = format!("{at}/additionalProperties");
        match (
            old.get("additionalProperties"),
            new.get("additionalProperties"),
        ) {
            (o, n) if o == n => {}
            (None | Some(Value::Bool(true)), Some(Value::Bool(false))) => self.push(
                ChangeKind::AdditionalPropertiesClosed,
                &pointer,
                "undeclared properties are no longer allowed".into(),
            ),
            (Some(Value::Bool(false)), None | Some(Value::Bool(true))) => self.push(
                ChangeKind::AdditionalPropertiesOpened,
                &pointer,
                "undeclared properties are now allowed".into(),
            ),
            (Some(o), Some(n)) if o.is_object() && n.is_object() => {
                self.node(o, n, &pointer, depth + 1)
            }
            (o, n) => self.push(
                ChangeKind::ConstraintChanged,
                &pointer,
                format!(
                    "`additionalProperties` changed from {} to {}",
                    shown(o),
                    shown(n)
                ),
            ),
        }
    }
}

/// Follows a local `$ref` (`#/$defs/x`); other schemas are returned as they are.
fn resolve<'a>(root: &'a Value, schema: &'a Value, hops: usize) -> &'a Value {
    let target = schema
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix('#'))
        .and_then(|pointer| root.pointer(pointer));
    match target {
        Some(target) if hops < MAX_DEPTH => resolve(root, target, hops + 1),
        _ => schema,
    }
}

/// The schema's `type` as a sorted set; empty means any type.
fn type_set(schema: &Map<String, Value>) -> Vec<String> {
    let mut types: Vec<String> = match schema.get("type") {
        Some(Value::String(t)) => vec![t.clone()],
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        _ => vec!["any".to_string()],
    };
    types.sort();
    types.dedup();
    types
}

fn names(value: Option<&Value>) -> Vec<&str> {
    value
        .and_then(Value::as_array)
        .map(|names| names.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

fn shown(value: Option<&Value>) -> String {
    value.map_or_else(|| "nothing".to_string(), Value::to_string)
}

fn escape(name: &str) -> String {
    name.replace('~', "~0").replace('/', "~1")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn base() -> Value {
        json!({
            "type": "object",
            "required": ["id", "total"],
            "properties": {
                "id": {"type": "string"},
                "total": {"type": "number", "minimum": 0},
                "status": {"enum": ["new", "paid"]},
                "customer": {
                    "type": "object",
                    "properties": {"email": {"type": "string", "format": "email"}}
                },
                "lines": {
                    "type": "array",
                    "items": {"$ref": "#/$defs/line"}
                }
            },
            "$defs": {"line": {"type": "object", "properties": {"sku": {"type": "string"}}}}
        })
    }

    fn kinds(report: &Report) -> Vec<(ChangeKind, &str)> {
        report
            .changes
            .iter()
            .map(|c| (c.kind, c.pointer.as_str()))
            .collect()
    }

    fn changed(edit: impl FnOnce(&mut Value)) -> Report {
        let mut next = base();
        edit(&mut next);
        compare(&base(), &next)
    }

    #[test]
    fn the_same_schema_has_no_changes() {
        let report = compare(&base(), &base());
        assert!(report.compatible);
        assert!(report.changes.is_empty());
    }

    #[test]
    fn each_breaking_change_is_named_with_its_pointer() {
        type Edit = Box<dyn FnOnce(&mut Value)>;
        let cases: Vec<(Edit, ChangeKind, &str)> = vec![
            (
                Box::new(|s| {
                    s["properties"].as_object_mut().unwrap().remove("total");
                }),
                ChangeKind::PropertyRemoved,
                "/properties/total",
            ),
            (
                Box::new(|s| s["properties"]["id"]["type"] = json!("integer")),
                ChangeKind::TypeChanged,
                "/properties/id/type",
            ),
            (
                Box::new(|s| s["required"] = json!(["id", "total", "status"])),
                ChangeKind::RequiredAdded,
                "/required",
            ),
            (
                Box::new(|s| s["properties"]["status"]["enum"] = json!(["new"])),
                ChangeKind::EnumValuesRemoved,
                "/properties/status/enum",
            ),
            (
                Box::new(|s| s["additionalProperties"] = json!(false)),
                ChangeKind::AdditionalPropertiesClosed,
                "/additionalProperties",
            ),
            (
                Box::new(|s| s["properties"]["total"]["minimum"] = json!(1)),
                ChangeKind::ConstraintChanged,
                "/properties/total/minimum",
            ),
            (
                Box::new(|s| {
                    s["properties"]["customer"]["properties"]["email"]["type"] = json!("object")
                }),
                ChangeKind::TypeChanged,
                "/properties/customer/properties/email/type",
            ),
            (
                Box::new(|s| s["$defs"]["line"]["properties"]["sku"]["type"] = json!("number")),
                ChangeKind::TypeChanged,
                "/properties/lines/items/properties/sku/type",
            ),
        ];
        for (edit, kind, pointer) in cases {
            let report = changed(edit);
            assert!(!report.compatible, "{kind:?} should break: {report:?}");
            assert_eq!(kinds(&report), vec![(kind, pointer)]);
            assert!(report.changes[0].breaking);
        }
    }

    #[test]
    fn additive_changes_are_allowed() {
        let report = changed(|s| {
            s["properties"]["note"] = json!({"type": "string"});
            s["properties"]["status"]["enum"] = json!(["new", "paid", "refunded"]);
            s["required"] = json!(["id"]);
            s["properties"]["id"]["description"] = json!("the order id");
            s["$defs"]["line"]["properties"]["qty"] = json!({"type": "integer"});
        });
        assert!(report.compatible, "{report:?}");
        let mut found = kinds(&report);
        found.sort_by_key(|(_, p)| p.to_string());
        assert_eq!(
            found,
            vec![
                (
                    ChangeKind::PropertyAdded,
                    "/properties/lines/items/properties/qty"
                ),
                (ChangeKind::PropertyAdded, "/properties/note"),
                (ChangeKind::EnumValuesAdded, "/properties/status/enum"),
                (ChangeKind::RequiredRemoved, "/required"),
            ]
        );
    }

    #[test]
    fn a_new_required_property_is_breaking_even_when_added_at_once() {
        let report = changed(|s| {
            s["properties"]["currency"] = json!({"type": "string"});
            s["required"] = json!(["id", "total", "currency"]);
        });
        assert!(!report.compatible);
        assert!(
            report
                .changes
                .iter()
                .any(|c| c.kind == ChangeKind::RequiredAdded && c.detail.contains("currency"))
        );
    }

    #[test]
    fn self_references_are_compared_once_not_once_per_path() {
        // Found by fuzzing (fuzz/regressions/compat/): two references to
        // the root took 2^48 steps, hanging the registering request.
        let tree = json!({
            "type": "object",
            "properties": {"left": {"$ref": "#"}, "right": {"$ref": "#"}}
        });
        let mut grown = tree.clone();
        grown["properties"]["value"] = json!({"type": "number"});
        let (done, finished) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let same = compare(&tree, &tree);
            let added = compare(&tree, &grown);
            let _ = done.send((same, added));
        });
        let (same, added) = finished
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("compare finishes");
        assert!(same.changes.is_empty(), "{same:?}");
        assert_eq!(
            kinds(&added),
            vec![(ChangeKind::PropertyAdded, "/properties/value")]
        );
    }

    #[test]
    fn cyclic_refs_terminate() {
        let cyclic = json!({"$defs": {"a": {"$ref": "#/$defs/a"}}, "$ref": "#/$defs/a"});
        compare(&cyclic, &cyclic);
    }
}
