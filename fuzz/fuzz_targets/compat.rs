//! The schema compatibility check (`contracts::compare`) on pairs of schemas:
//! built from schema keywords with `arbitrary` (first byte even) or two JSON
//! texts split at the first `\n` (first byte odd). Also compiles each as a
//! tenant's schema would be. Checks: no panic, a schema compared with itself
//! has no changes, `compatible` means no breaking change.
#![no_main]

use arbitrary::Unstructured;
use gateway::contracts::{compare, compile};
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};

const KEYWORDS: &[&str] = &[
    "type",
    "properties",
    "required",
    "items",
    "enum",
    "additionalProperties",
    "$ref",
    "$defs",
    "definitions",
    "format",
    "pattern",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
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
    "title",
    "description",
    "a",
    "b",
    "c",
];
const TYPES: &[&str] = &[
    "object", "string", "integer", "number", "array", "boolean", "null",
];
const REFS: &[&str] = &[
    "#",
    "#/$defs/a",
    "#/$defs/b",
    "#/properties/a",
    "#/definitions/c",
    "#/items",
    "x.json",
];

/// A JSON value biased towards schemas.
fn schema(u: &mut Unstructured, depth: u32) -> arbitrary::Result<Value> {
    if depth > 6 {
        return Ok(Value::Bool(u.arbitrary()?));
    }
    Ok(match u.int_in_range(0..=9u8)? {
        0 => Value::Bool(u.arbitrary()?),
        1 => Value::String(u.choose(TYPES)?.to_string()),
        2 => Value::String(u.arbitrary::<String>()?),
        3 => Value::from(u.arbitrary::<i64>()?),
        4 => {
            let f = u.arbitrary::<f64>()?;
            serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)
        }
        5 => {
            let n = u.int_in_range(0..=4u8)?;
            let mut items = Vec::new();
            for _ in 0..n {
                items.push(schema(u, depth + 1)?);
            }
            Value::Array(items)
        }
        6 => Value::String(u.choose(REFS)?.to_string()),
        _ => {
            let n = u.int_in_range(0..=5u8)?;
            let mut map = Map::new();
            for _ in 0..n {
                let key = u.choose(KEYWORDS)?.to_string();
                let value = match key.as_str() {
                    "type" if u.arbitrary()? => Value::String(u.choose(TYPES)?.to_string()),
                    "$ref" => Value::String(u.choose(REFS)?.to_string()),
                    "required" => Value::Array(
                        (0..u.int_in_range(0..=3u8)?)
                            .map(|_| u.choose(KEYWORDS).map(|k| Value::String(k.to_string())))
                            .collect::<arbitrary::Result<_>>()?,
                    ),
                    _ => schema(u, depth + 1)?,
                };
                map.insert(key, value);
            }
            Value::Object(map)
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let (old, new) = if mode % 2 == 0 {
        let mut u = Unstructured::new(rest);
        let (Ok(old), Ok(new)) = (schema(&mut u, 0), schema(&mut u, 0)) else {
            return;
        };
        (old, new)
    } else {
        let split = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
        let (a, b) = rest.split_at(split);
        let b = b.get(1..).unwrap_or_default();
        let (Ok(old), Ok(new)) = (serde_json::from_slice(a), serde_json::from_slice(b)) else {
            return;
        };
        (old, new)
    };

    if std::env::var_os("FUZZ_PRINT").is_some() {
        eprintln!("old: {old}\nnew: {new}");
    }
    let report = compare(&old, &new);
    assert_eq!(
        report.compatible,
        report.changes.iter().all(|c| !c.breaking)
    );
    for change in &report.changes {
        assert!(change.pointer.starts_with('/'), "{change:?}");
        assert_eq!(change.breaking, change.kind.breaking());
    }
    for schema in [&old, &new] {
        let same = compare(schema, schema);
        assert!(same.changes.is_empty(), "{schema} against itself: {same:?}");
        if let Ok(validator) = compile(schema, "/schema") {
            let _ = gateway::contracts::violations(&validator, &old, "/data");
        }
    }
});
