//! `pii-redactor`: blanks out the fields named in the config, then redacts
//! email addresses and card numbers in every string value of the event's
//! data, at any depth. The text scanning lives in `scanner.rs`.

mod scanner;

use gateway_plugin::{Error, Event, Plugin, Target, Value, Verdict};
use serde::Deserialize;

/// What a field named in the config is replaced with.
const REDACTED_FIELD: &str = "[redacted]";

/// The plugin's config.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Config {
    /// JSON pointers into the data whose values are replaced whole,
    /// whatever their type (e.g. `/customer/phone`). Missing ones are
    /// skipped.
    pointers: Vec<String>,
}

/// The plugin: data in, the same data with PII redacted out.
pub struct PiiRedactor;

impl Plugin for PiiRedactor {
    fn handle(mut event: Event, target: Target) -> Result<Verdict, Error> {
        let config: Config = target.parse_config()?;
        if let Some(bad) = config.pointers.iter().find(|p| !p.starts_with('/')) {
            return Err(Error::invalid_config(format!(
                "config: pointer {bad:?} must start with `/`"
            )));
        }
        let mut fields = 0;
        for pointer in &config.pointers {
            if let Some(value) = event.data.pointer_mut(pointer) {
                *value = Value::String(REDACTED_FIELD.to_owned());
                fields += 1;
            }
        }
        let matches = redact_strings(&mut event.data);
        gateway_plugin::log!(debug, "redacted {fields} fields and {matches} matches");
        Ok(Verdict::deliver(event))
    }
}

gateway_plugin::export!(PiiRedactor);

/// Redacts every string inside `value`, at any depth (object keys are left
/// alone); returns how many emails and card numbers were replaced.
fn redact_strings(value: &mut Value) -> usize {
    match value {
        Value::String(text) => {
            let (redacted, count) = scanner::redact(text);
            if count > 0 {
                *text = redacted;
            }
            count
        }
        Value::Array(items) => items.iter_mut().map(redact_strings).sum(),
        Value::Object(fields) => fields.values_mut().map(redact_strings).sum(),
        Value::Null | Value::Bool(_) | Value::Number(_) => 0,
    }
}

#[cfg(test)]
mod tests {
    use gateway_plugin::json;

    use super::*;

    fn run(config: Value, data: Value) -> Result<Value, Error> {
        match PiiRedactor::handle(Event::new("user.updated", data), Target::new(config))? {
            Verdict::Deliver(event) => Ok(event.data),
            Verdict::Drop(reason) => panic!("unexpected drop: {reason}"),
        }
    }

    #[test]
    fn redacts_strings_at_any_depth_and_configured_fields() {
        let data = json!({
            "note": "mail ada@example.com, card 4111 1111 1111 1111",
            "contacts": [{"email": "bob@example.org"}, 42, null],
            "customer": {"phone": "+31 6 1234 5678", "age": 36},
            "amount": 1250,
        });
        let config = json!({"pointers": ["/customer/phone", "/missing/field"]});
        assert_eq!(
            run(config, data).unwrap(),
            json!({
                "note": "mail [redacted email], card [redacted card]",
                "contacts": [{"email": "[redacted email]"}, 42, null],
                "customer": {"phone": "[redacted]", "age": 36},
                "amount": 1250,
            })
        );
    }

    #[test]
    fn leaves_clean_data_alone() {
        let data = json!({"id": "ord_1", "total": 4111111111111111_u64, "at": "2026-01-31"});
        assert_eq!(run(json!({}), data.clone()).unwrap(), data);
    }

    #[test]
    fn bad_config_is_invalid_config() {
        for config in [
            json!({"pointers": ["name"]}),
            json!({"pointers": "/a"}),
            json!({"x": 1}),
        ] {
            let error = run(config, json!({})).unwrap_err();
            assert!(matches!(error, Error::InvalidConfig(_)), "{error:?}");
        }
    }
}
