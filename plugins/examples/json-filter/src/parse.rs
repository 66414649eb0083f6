//! Reading the filter's condition from the plugin's config, with errors
//! that say where in the config the problem is (`config at /all/1: ...`).

use gateway_plugin::Value;
use gateway_plugin::serde_json::Map;

use crate::condition::{Condition, OPS, Op};

impl Condition {
    /// Parses the plugin's config as a condition; the error says where in the
    /// config the problem is.
    pub fn parse(config: &Value) -> Result<Condition, String> {
        parse_at(config, "")
    }
}

fn parse_at(config: &Value, at: &str) -> Result<Condition, String> {
    let location = || {
        if at.is_empty() {
            "config".to_owned()
        } else {
            format!("config at {at}")
        }
    };
    let Value::Object(object) = config else {
        return Err(format!(
            "{}: expected an object, found {config}",
            location()
        ));
    };
    for (group, make) in [
        ("all", Condition::All as fn(Vec<Condition>) -> Condition),
        ("any", Condition::Any),
    ] {
        let Some(list) = object.get(group) else {
            continue;
        };
        if object.len() != 1 {
            return Err(format!("{}: `{group}` must be the only key", location()));
        }
        let Value::Array(items) = list else {
            return Err(format!(
                "{}: `{group}` must be a list of conditions",
                location()
            ));
        };
        if items.is_empty() {
            return Err(format!(
                "{}: `{group}` needs at least one condition",
                location()
            ));
        }
        let conditions = items
            .iter()
            .enumerate()
            .map(|(i, item)| parse_at(item, &format!("{at}/{group}/{i}")))
            .collect::<Result<_, _>>()?;
        return Ok(make(conditions));
    }
    parse_test(object, &location())
}

fn parse_test(object: &Map<String, Value>, location: &str) -> Result<Condition, String> {
    if let Some(key) = object
        .keys()
        .find(|k| !matches!(k.as_str(), "pointer" | "op" | "value"))
    {
        return Err(format!(
            "{location}: unknown key `{key}` (a condition is `all`, `any` or `pointer`/`op`/`value`)"
        ));
    }
    let pointer = match object.get("pointer") {
        Some(Value::String(p)) if p.is_empty() || p.starts_with('/') => p.clone(),
        Some(Value::String(p)) => {
            return Err(format!(
                "{location}: pointer {p:?} must be empty or start with `/`"
            ));
        }
        Some(_) => return Err(format!("{location}: `pointer` must be a string")),
        None => return Err(format!("{location}: missing `pointer` (or `all`/`any`)")),
    };
    let op = match object.get("op") {
        Some(Value::String(name)) => OPS
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, op)| *op)
            .ok_or_else(|| {
                let names: Vec<&str> = OPS.iter().map(|(n, _)| *n).collect();
                format!(
                    "{location}: unknown op {name:?} (expected one of {})",
                    names.join(", ")
                )
            })?,
        Some(_) => return Err(format!("{location}: `op` must be a string")),
        None => return Err(format!("{location}: missing `op`")),
    };
    let value = match (op, object.get("value")) {
        (Op::Exists, None) => Value::Bool(true),
        (Op::Exists, Some(v @ Value::Bool(_))) => v.clone(),
        (Op::Exists, Some(_)) => {
            return Err(format!("{location}: `exists` takes a boolean `value`"));
        }
        (Op::Gt | Op::Gte | Op::Lt | Op::Lte, Some(v @ (Value::Number(_) | Value::String(_)))) => {
            v.clone()
        }
        (Op::Gt | Op::Gte | Op::Lt | Op::Lte, Some(_)) => {
            return Err(format!(
                "{location}: ordering ops take a number or string `value`"
            ));
        }
        (_, Some(v)) => v.clone(),
        (_, None) => return Err(format!("{location}: missing `value`")),
    };
    Ok(Condition::Test { pointer, op, value })
}

#[cfg(test)]
mod tests {
    use gateway_plugin::json;

    use super::*;

    #[test]
    fn parse_errors_point_into_the_config() {
        let cases = [
            (json!([]), "config: expected an object"),
            (json!({}), "config: missing `pointer`"),
            (
                json!({"all": []}),
                "config: `all` needs at least one condition",
            ),
            (json!({"all": {}}), "config: `all` must be a list"),
            (
                json!({"all": [{"pointer": "/a", "op": "eq", "value": 1}], "x": 1}),
                "config: `all` must be the only key",
            ),
            (
                json!({"any": [{"pointer": "a", "op": "eq", "value": 1}]}),
                "config at /any/0: pointer \"a\"",
            ),
            (
                json!({"all": [{"all": [{"pointer": "/a", "op": "like", "value": 1}]}]}),
                "config at /all/0/all/0: unknown op \"like\"",
            ),
            (
                json!({"pointer": "/a", "op": "gt", "value": [1]}),
                "config: ordering ops take",
            ),
            (
                json!({"pointer": "/a", "op": "exists", "value": 1}),
                "config: `exists` takes a boolean",
            ),
            (
                json!({"pointer": "/a", "op": "eq"}),
                "config: missing `value`",
            ),
            (
                json!({"pointer": "/a", "op": "eq", "value": 1, "extra": 2}),
                "config: unknown key `extra`",
            ),
        ];
        for (config, expected) in cases {
            let error = Condition::parse(&config).unwrap_err();
            assert!(error.starts_with(expected), "{config}: {error}");
        }
    }
}
