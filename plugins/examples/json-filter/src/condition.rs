//! The filter's conditions and checking them against an event's data
//! (`parse.rs` reads them from the config).
//!
//! A condition is `{"all": [...]}`, `{"any": [...]}` or a test
//! `{"pointer": "/amount", "op": "gt", "value": 100}` on the value at a JSON
//! pointer into the data. Tests on a missing value fail, except `ne` (nothing
//! differs from everything) and `exists` with `"value": false`.

use std::cmp::Ordering;
use std::fmt;

use gateway_plugin::Value;

/// The longest rendering of a found value in a drop reason.
const MAX_FOUND_CHARS: usize = 64;

/// A parsed condition over an event's data.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// Holds when every condition holds.
    All(Vec<Condition>),
    /// Holds when at least one condition holds.
    Any(Vec<Condition>),
    /// Holds when `op` holds between the value at `pointer` and `value`.
    Test {
        /// A JSON pointer into the data (`""` is the whole data).
        pointer: String,
        /// The comparison.
        op: Op,
        /// The operand (for `exists`, whether the value must exist).
        value: Value,
    },
}

/// A comparison between the value found in the data and the config's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Equal (numbers compare by value: `1` equals `1.0`).
    Eq,
    /// Not equal, or missing.
    Ne,
    /// Greater than (numbers with numbers, strings with strings).
    Gt,
    /// Greater than or equal.
    Gte,
    /// Less than.
    Lt,
    /// Less than or equal.
    Lte,
    /// The pointer resolves (or, with `"value": false`, does not).
    Exists,
    /// A string containing the given substring, or an array with an element
    /// equal to the given value.
    Contains,
}

/// Every op with its name in the config.
pub const OPS: [(&str, Op); 8] = [
    ("eq", Op::Eq),
    ("ne", Op::Ne),
    ("gt", Op::Gt),
    ("gte", Op::Gte),
    ("lt", Op::Lt),
    ("lte", Op::Lte),
    ("exists", Op::Exists),
    ("contains", Op::Contains),
];

impl Condition {
    /// `Ok` when the condition holds for `data`, otherwise the reason it
    /// does not, naming the failed test(s).
    pub fn check(&self, data: &Value) -> Result<(), String> {
        match self {
            Condition::All(conditions) => conditions.iter().try_for_each(|c| c.check(data)),
            Condition::Any(conditions) => {
                let mut reasons = Vec::with_capacity(conditions.len());
                for condition in conditions {
                    match condition.check(data) {
                        Ok(()) => return Ok(()),
                        Err(reason) => reasons.push(reason),
                    }
                }
                Err(format!("none of [{}]", reasons.join("; ")))
            }
            Condition::Test { pointer, op, value } => {
                let found = data.pointer(pointer);
                if op.holds(found, value) {
                    Ok(())
                } else {
                    Err(format!("{self} failed (found {})", render_found(found)))
                }
            }
        }
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Condition::All(conditions) | Condition::Any(conditions) => {
                let joiner = if matches!(self, Condition::All(_)) {
                    " and "
                } else {
                    " or "
                };
                f.write_str("(")?;
                for (i, condition) in conditions.iter().enumerate() {
                    if i > 0 {
                        f.write_str(joiner)?;
                    }
                    write!(f, "{condition}")?;
                }
                f.write_str(")")
            }
            Condition::Test { pointer, op, value } => {
                let name = OPS.iter().find(|(_, o)| o == op).map_or("?", |(n, _)| n);
                write!(f, "{pointer} {name} {value}")
            }
        }
    }
}

impl Op {
    fn holds(self, found: Option<&Value>, expected: &Value) -> bool {
        let Some(found) = found else {
            return match self {
                Op::Ne => true,
                Op::Exists => expected == &Value::Bool(false),
                _ => false,
            };
        };
        match self {
            Op::Eq => json_eq(found, expected),
            Op::Ne => !json_eq(found, expected),
            Op::Gt => compare(found, expected) == Some(Ordering::Greater),
            Op::Gte => matches!(
                compare(found, expected),
                Some(Ordering::Greater | Ordering::Equal)
            ),
            Op::Lt => compare(found, expected) == Some(Ordering::Less),
            Op::Lte => matches!(
                compare(found, expected),
                Some(Ordering::Less | Ordering::Equal)
            ),
            Op::Exists => expected == &Value::Bool(true),
            Op::Contains => match (found, expected) {
                (Value::String(s), Value::String(needle)) => s.contains(needle.as_str()),
                (Value::Array(items), _) => items.iter().any(|item| json_eq(item, expected)),
                _ => false,
            },
        }
    }
}

/// JSON equality where numbers compare by value (`1 == 1.0`).
fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(xs), Value::Array(ys)) => {
            xs.len() == ys.len() && xs.iter().zip(ys).all(|(x, y)| json_eq(x, y))
        }
        (Value::Object(xs), Value::Object(ys)) => {
            xs.len() == ys.len()
                && xs
                    .iter()
                    .all(|(k, x)| ys.get(k).is_some_and(|y| json_eq(x, y)))
        }
        _ => a == b,
    }
}

/// Orders numbers with numbers and strings with strings; nothing else.
fn compare(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64()?.partial_cmp(&y.as_f64()?),
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

fn render_found(found: Option<&Value>) -> String {
    let Some(value) = found else {
        return "nothing".to_owned();
    };
    let text = value.to_string();
    match text.char_indices().nth(MAX_FOUND_CHARS) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use gateway_plugin::{Value, json};

    use super::*;

    fn test(pointer: &str, op: &str, value: Value) -> Condition {
        Condition::parse(&json!({"pointer": pointer, "op": op, "value": value})).unwrap()
    }

    fn holds(condition: &Condition, data: Value) -> bool {
        condition.check(&data).is_ok()
    }

    #[test]
    fn eq_and_ne_compare_numbers_by_value() {
        assert!(holds(&test("/a", "eq", json!(1)), json!({"a": 1.0})));
        assert!(holds(
            &test("/a", "eq", json!({"b": [1]})),
            json!({"a": {"b": [1.0]}})
        ));
        assert!(!holds(&test("/a", "eq", json!("1")), json!({"a": 1})));
        assert!(holds(&test("/a", "ne", json!("NL")), json!({"a": "DE"})));
        assert!(!holds(&test("/a", "ne", json!("NL")), json!({"a": "NL"})));
    }

    #[test]
    fn ordering_ops_compare_numbers_and_strings_only() {
        let data = json!({"n": 100, "t": "2026-01-31T12:00:00Z", "s": true});
        assert!(holds(&test("/n", "gt", json!(99.5)), data.clone()));
        assert!(!holds(&test("/n", "gt", json!(100)), data.clone()));
        assert!(holds(&test("/n", "gte", json!(100)), data.clone()));
        assert!(holds(&test("/n", "lt", json!(101)), data.clone()));
        assert!(holds(&test("/n", "lte", json!(100)), data.clone()));
        assert!(holds(&test("/t", "lt", json!("2026-02-01")), data.clone()));
        assert!(!holds(&test("/n", "gt", json!("5")), data.clone()));
        assert!(!holds(&test("/s", "lt", json!(5)), data));
    }

    #[test]
    fn exists_and_contains() {
        let data = json!({"a": {"b": null}, "tags": ["x", 2], "s": "hello"});
        assert!(holds(&test("/a/b", "exists", json!(true)), data.clone()));
        assert!(holds(&test("/a/c", "exists", json!(false)), data.clone()));
        assert!(holds(
            &Condition::parse(&json!({"pointer": "/tags", "op": "exists"})).unwrap(),
            data.clone()
        ));
        assert!(holds(&test("/tags", "contains", json!(2.0)), data.clone()));
        assert!(holds(&test("/s", "contains", json!("ell")), data.clone()));
        assert!(!holds(&test("/s", "contains", json!("xyz")), data.clone()));
        assert!(!holds(&test("/a", "contains", json!("b")), data));
    }

    #[test]
    fn missing_values_fail_every_test_but_ne() {
        for op in ["eq", "gt", "gte", "lt", "lte", "contains"] {
            assert!(!holds(&test("/missing", op, json!(1)), json!({})), "{op}");
        }
        assert!(holds(&test("/missing", "ne", json!(1)), json!({})));
        assert!(!holds(&test("/missing", "exists", json!(true)), json!({})));
    }

    #[test]
    fn all_names_the_first_failed_test() {
        let condition = Condition::parse(&json!({"all": [
            {"pointer": "/amount", "op": "gt", "value": 100},
            {"pointer": "/country", "op": "eq", "value": "NL"},
        ]}))
        .unwrap();
        assert_eq!(
            condition.check(&json!({"amount": 101, "country": "NL"})),
            Ok(())
        );
        assert_eq!(
            condition.check(&json!({"amount": 5, "country": "DE"})),
            Err("/amount gt 100 failed (found 5)".to_owned())
        );
        assert_eq!(
            condition.check(&json!({"amount": 500})),
            Err(r#"/country eq "NL" failed (found nothing)"#.to_owned())
        );
    }

    #[test]
    fn any_lists_every_failed_test_and_groups_nest() {
        let condition = Condition::parse(&json!({"any": [
            {"pointer": "/vip", "op": "eq", "value": true},
            {"all": [
                {"pointer": "/amount", "op": "gte", "value": 10},
                {"pointer": "/currency", "op": "eq", "value": "EUR"},
            ]},
        ]}))
        .unwrap();
        assert!(holds(&condition, json!({"vip": true})));
        assert!(holds(&condition, json!({"amount": 10, "currency": "EUR"})));
        assert_eq!(
            condition.check(&json!({"amount": 10, "currency": "USD"})),
            Err(r#"none of [/vip eq true failed (found nothing); /currency eq "EUR" failed (found "USD")]"#
                .to_owned())
        );
    }

    #[test]
    fn long_found_values_are_cut() {
        let long = "x".repeat(500);
        let reason = test("/s", "eq", json!("y"))
            .check(&json!({"s": long}))
            .unwrap_err();
        assert!(reason.ends_with("...)"), "{reason}");
        assert!(reason.len() < 120, "{reason}");
    }
}
