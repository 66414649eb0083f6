//! The v1 → v2 mapping of `order.created`, as plain functions over serde
//! types.
//!
//! v1 `{"customer_name": "Ada Lovelace", "customer_email"?: "...",
//! "amount_cents": 1250, "currency"?: "EUR", ...}` becomes v2
//! `{..., "customer": {"first_name": "Ada", "last_name": "Lovelace",
//! "email"?: "..."}, "amount": {"value": 1250, "currency": "EUR"}}`; every
//! other field passes through unchanged.

use gateway_plugin::serde_json::{Map, Value};
use serde::{Deserialize, Serialize};

/// Fields that v2 introduces; a v1 event must not have them.
const V2_FIELDS: [&str; 2] = ["customer", "amount"];

/// An `order.created` payload at schema version 1.
#[derive(Debug, Deserialize)]
pub struct OrderV1 {
    /// The customer's full name, given name first.
    customer_name: String,
    /// The customer's email address, if known.
    #[serde(default)]
    customer_email: Option<String>,
    /// The order total in minor units.
    amount_cents: i64,
    /// The ISO 4217 currency, if given.
    #[serde(default)]
    currency: Option<String>,
    /// Every other field, passed through.
    #[serde(flatten)]
    rest: Map<String, Value>,
}

/// An `order.created` payload at schema version 2.
#[derive(Debug, Serialize, PartialEq)]
pub struct OrderV2 {
    /// The fields v1 and v2 share.
    #[serde(flatten)]
    rest: Map<String, Value>,
    /// Who ordered.
    customer: Customer,
    /// The order total.
    amount: Amount,
}

/// The customer of a v2 order.
#[derive(Debug, Serialize, PartialEq)]
struct Customer {
    first_name: String,
    last_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<String>,
}

/// The total of a v2 order.
#[derive(Debug, Serialize, PartialEq)]
struct Amount {
    /// Minor units (cents).
    value: i64,
    currency: String,
}

/// Maps a v1 order to v2; `default_currency` applies when v1 names none.
/// Fails when the input is not a plausible v1 order.
pub fn to_v2(v1: OrderV1, default_currency: &str) -> Result<OrderV2, String> {
    if let Some(field) = V2_FIELDS.iter().find(|f| v1.rest.contains_key(**f)) {
        return Err(format!("data has the v2 field `{field}`; expected v1"));
    }
    let (first_name, last_name) =
        split_name(&v1.customer_name).ok_or_else(|| "data: `customer_name` is empty".to_owned())?;
    Ok(OrderV2 {
        rest: v1.rest,
        customer: Customer {
            first_name,
            last_name,
            email: v1.customer_email,
        },
        amount: Amount {
            value: v1.amount_cents,
            currency: v1.currency.unwrap_or_else(|| default_currency.to_owned()),
        },
    })
}

/// Splits a full name at its first space: the first word is the first name,
/// the rest (possibly empty) the last name. `None` for a blank name.
fn split_name(full: &str) -> Option<(String, String)> {
    let full = full.trim();
    if full.is_empty() {
        return None;
    }
    let (first, last) = full.split_once(char::is_whitespace).unwrap_or((full, ""));
    Some((first.to_owned(), last.trim_start().to_owned()))
}

#[cfg(test)]
mod tests {
    use gateway_plugin::json;

    use super::*;

    fn upgrade(v1: Value) -> Result<Value, String> {
        let v1: OrderV1 = serde::Deserialize::deserialize(&v1).map_err(|e| e.to_string())?;
        to_v2(v1, "EUR").map(|v2| gateway_plugin::serde_json::to_value(v2).unwrap())
    }

    #[test]
    fn renames_and_splits_fields_and_keeps_the_rest_in_order() {
        let v2 = upgrade(json!({
            "order_id": "ord_1",
            "customer_name": "Ada Lovelace",
            "customer_email": "ada@example.com",
            "amount_cents": 1250,
            "currency": "GBP",
            "items": [{"sku": "A1", "qty": 2}],
        }))
        .unwrap();
        assert_eq!(
            v2,
            json!({
                "order_id": "ord_1",
                "items": [{"sku": "A1", "qty": 2}],
                "customer": {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com"},
                "amount": {"value": 1250, "currency": "GBP"},
            })
        );
        let keys: Vec<&String> = v2.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["order_id", "items", "customer", "amount"]);
    }

    #[test]
    fn missing_currency_takes_the_default() {
        let v2 = upgrade(json!({"customer_name": "Ada Lovelace", "amount_cents": 5})).unwrap();
        assert_eq!(v2["amount"], json!({"value": 5, "currency": "EUR"}));
        assert!(v2["customer"].get("email").is_none());
    }

    #[test]
    fn names_split_at_the_first_space() {
        assert_eq!(
            split_name("Ada Lovelace"),
            Some(("Ada".into(), "Lovelace".into()))
        );
        assert_eq!(
            split_name("  Vincent  van Gogh "),
            Some(("Vincent".into(), "van Gogh".into()))
        );
        assert_eq!(split_name("Plato"), Some(("Plato".into(), String::new())));
        assert_eq!(split_name("   "), None);
    }

    #[test]
    fn rejects_data_that_is_not_v1() {
        assert!(upgrade(json!({"amount_cents": 1})).is_err());
        assert!(upgrade(json!({"customer_name": "A B", "amount_cents": 1.5})).is_err());
        assert!(upgrade(json!({"customer_name": " ", "amount_cents": 1})).is_err());
        let error = upgrade(json!({
            "customer_name": "A B",
            "amount_cents": 1,
            "amount": {"value": 1, "currency": "EUR"},
        }))
        .unwrap_err();
        assert!(error.contains("v2 field `amount`"), "{error}");
    }
}
