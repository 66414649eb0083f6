//! Compiling a tenant's JSON Schema (draft 2020-12, formats asserted) and
//! validating event data against it, each problem with its JSON pointer.
//!
//! Only the schema itself is read: `$ref`s to other documents are refused
//! (the crate is built without its HTTP and file resolvers), so a schema
//! can never make the gateway fetch anything.

use crate::model::FieldError;
use jsonschema::{Draft, Validator};
use serde_json::Value;

/// The dialect accepted in `$schema` (and assumed without it).
pub const DIALECT: &str = "https://json-schema.org/draft/2020-12/schema";

/// Most violations reported for one event.
pub const MAX_VIOLATIONS: usize = 50;

/// Compiles `schema`; problems are reported under `at` (e.g. `/schema`).
pub fn compile(schema: &Value, at: &str) -> Result<Validator, Vec<FieldError>> {
    if !schema.is_object() {
        return Err(vec![FieldError::new(at, "must be a JSON Schema object")]);
    }
    if let Some(dialect) = schema.get("$schema")
        && dialect.as_str().map(|d| d.trim_end_matches('#')) != Some(DIALECT)
    {
        return Err(vec![FieldError::new(
            format!("{at}/$schema"),
            format!("only JSON Schema draft 2020-12 (`{DIALECT}`) is supported"),
        )]);
    }
    jsonschema::options()
        .with_draft(Draft::Draft202012)
        .should_validate_formats(true)
        .build(schema)
        .map_err(|e| {
            vec![FieldError::new(
                format!("{at}{}", e.instance_path().as_str()),
                format!("is not a valid JSON Schema: {e}"),
            )]
        })
}

/// Every way `data` fails `validator` (at most [`MAX_VIOLATIONS`]), with
/// pointers prefixed by `at` (e.g. `/data`).
pub fn violations(validator: &Validator, data: &Value, at: &str) -> Vec<FieldError> {
    // The common case, valid data, takes the short path that collects nothing.
    if validator.is_valid(data) {
        return Vec::new();
    }
    validator
        .iter_errors(data)
        .take(MAX_VIOLATIONS)
        .map(|e| FieldError::new(format!("{at}{}", e.instance_path().as_str()), e.to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn order() -> Validator {
        compile(
            &json!({
                "$schema": DIALECT,
                "type": "object",
                "required": ["id", "lines"],
                "properties": {
                    "id": {"type": "string"},
                    "email": {"type": "string", "format": "email"},
                    "placed_at": {"type": "string", "format": "date-time"},
                    "lines": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "object",
                            "required": ["sku", "qty"],
                            "properties": {
                                "sku": {"type": "string"},
                                "qty": {"type": "integer", "minimum": 1}
                            }
                        }
                    }
                }
            }),
            "/schema",
        )
        .expect("a valid schema")
    }

    fn pointers(data: Value) -> Vec<String> {
        let mut found: Vec<String> = violations(&order(), &data, "/data")
            .into_iter()
            .map(|e| e.pointer)
            .collect();
        found.sort();
        found
    }

    #[test]
    fn valid_data_has_no_violations() {
        let data = json!({"id": "o1", "email": "a@b.example", "lines": [{"sku": "x", "qty": 2}]});
        assert!(pointers(data).is_empty());
    }

    #[test]
    fn each_violation_names_its_pointer() {
        let data = json!({
            "email": "not an email",
            "placed_at": "yesterday",
            "lines": [{"sku": "x", "qty": 1}, {"sku": 7, "qty": 0}, {"qty": 1}]
        });
        assert_eq!(
            pointers(data),
            vec![
                "/data",
                "/data/email",
                "/data/lines/1/qty",
                "/data/lines/1/sku",
                "/data/lines/2",
                "/data/placed_at",
            ]
        );
    }

    #[test]
    fn bad_schemas_are_refused_with_a_pointer() {
        let err = compile(&json!({"type": "nope"}), "/schema").unwrap_err();
        assert!(err[0].pointer.starts_with("/schema"), "{err:?}");
        let err = compile(
            &json!({"$schema": "http://json-schema.org/draft-07/schema#"}),
            "/schema",
        )
        .unwrap_err();
        assert_eq!(err[0].pointer, "/schema/$schema");
        assert!(compile(&json!([]), "/schema").is_err());
        let remote = json!({"$ref": "https://example.com/other.json"});
        assert!(compile(&remote, "/schema").is_err());
    }
}
