//! `field-mapper`: a config-driven version transform. It moves, removes and
//! sets values in an event's data at JSON pointers, and writes the schema
//! version, so simple version transforms need no code (see the README for
//! the config). This file reads the config and checks the event and
//! versions; `mapping.rs` rewrites the data, `pointer.rs` walks it.

mod mapping;
mod pointer;

use gateway_plugin::{Error, Event, Plugin, Target, Verdict};
use serde::Deserialize;

use mapping::{Move, Sets};
use pointer::Pointer;

/// The plugin's config.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Config {
    /// The only event type accepted, if given.
    event_type: Option<String>,
    /// The only schema version accepted, if given.
    from_version: Option<u32>,
    /// The schema version written; the endpoint's when absent.
    to_version: Option<u32>,
    /// Applied first, in order.
    moves: Vec<Move>,
    /// Removed next; missing ones are fine.
    remove: Vec<Pointer>,
    /// Written last, in order.
    set: Sets,
}

/// The plugin: data at one schema version in, rewritten data at another out.
pub struct FieldMapper;

impl Plugin for FieldMapper {
    fn handle(mut event: Event, target: Target) -> Result<Verdict, Error> {
        // serde would also read a list as the fields in order; refuse that.
        if !target.config.is_object() {
            return Err(Error::invalid_config("config: expected an object"));
        }
        let config: Config = target.parse_config()?;
        let written = match (config.to_version, target.schema_version) {
            (Some(to), Some(wanted)) if to != wanted => {
                return Err(Error::invalid_config(format!(
                    "config: `to_version` is {to}, but the endpoint wants v{wanted}"
                )));
            }
            (to, wanted) => to.or(wanted),
        };
        if let Some(expected) = config.event_type.filter(|t| *t != event.event_type) {
            return Err(Error::invalid_event(format!(
                "expected a {expected} event, got {}",
                event.event_type
            )));
        }
        if let Some(expected) = config.from_version
            && event.schema_version != Some(expected)
        {
            let found = event
                .schema_version
                .map_or_else(|| "none".to_owned(), |v| v.to_string());
            return Err(Error::invalid_event(format!(
                "expected schema version {expected}, got {found}"
            )));
        }
        let counts = mapping::rewrite(&mut event.data, &config.moves, &config.remove, &config.set)
            .map_err(Error::invalid_event)?;
        if written.is_some() {
            event.schema_version = written;
        }
        gateway_plugin::log!(
            debug,
            "moved {} (skipped {} missing), removed {}, set {}",
            counts.moved,
            counts.skipped,
            counts.removed,
            counts.set
        );
        Ok(Verdict::deliver(event))
    }
}

gateway_plugin::export!(FieldMapper);

#[cfg(test)]
mod tests {
    use gateway_plugin::{Value, json};

    use super::*;

    /// `order.created` v2, as in schema-upgrade's README.
    fn v2() -> Value {
        json!({
            "order_id": "ord_1",
            "items": [{"sku": "A1", "qty": 2}],
            "customer": {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com"},
            "amount": {"value": 1250, "currency": "GBP"},
        })
    }

    /// The README's v2 → v3 config.
    fn v2_to_v3() -> Value {
        json!({
            "event_type": "order.created",
            "from_version": 2,
            "to_version": 3,
            "moves": [
                {"from": "/amount/value", "to": "/total/minor_units", "required": true},
                {"from": "/amount/currency", "to": "/total/currency", "required": true},
            ],
            "remove": ["/amount"],
        })
    }

    fn event(version: Option<u32>, data: Value) -> Event {
        let mut event = Event::new("order.created", data);
        event.schema_version = version;
        event
    }

    fn target(wanted: Option<u32>, config: Value) -> Target {
        let mut target = Target::new(config);
        target.schema_version = wanted;
        target
    }

    fn deliver(event: Event, target: Target) -> Event {
        match FieldMapper::handle(event, target) {
            Ok(Verdict::Deliver(event)) => event,
            other => panic!("expected deliver, got {other:?}"),
        }
    }

    #[test]
    fn maps_v2_to_v3_and_back() {
        let v3 = deliver(event(Some(2), v2()), target(Some(3), v2_to_v3()));
        assert_eq!(v3.schema_version, Some(3));
        assert_eq!(
            v3.data,
            json!({
                "order_id": "ord_1",
                "items": [{"sku": "A1", "qty": 2}],
                "customer": {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com"},
                "total": {"minor_units": 1250, "currency": "GBP"},
            })
        );
        let keys: Vec<&String> = v3.data.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["order_id", "items", "customer", "total"]);

        let v3_to_v2 = json!({
            "event_type": "order.created",
            "from_version": 3,
            "moves": [
                {"from": "/total/minor_units", "to": "/amount/value", "required": true},
                {"from": "/total/currency", "to": "/amount/currency", "required": true},
            ],
            "remove": ["/total"],
        });
        let back = deliver(v3, target(Some(2), v3_to_v2));
        assert_eq!(back.schema_version, Some(2));
        assert_eq!(back.data, v2());
    }

    #[test]
    fn maps_v2_down_to_v1_as_far_as_pointers_go() {
        let v2_to_v1 = json!({
            "event_type": "order.created",
            "from_version": 2,
            "to_version": 1,
            "moves": [
                {"from": "/amount/value", "to": "/amount_cents", "required": true},
                {"from": "/amount/currency", "to": "/currency"},
                {"from": "/customer/email", "to": "/customer_email"},
            ],
            "remove": ["/amount"],
        });
        let v1 = deliver(event(Some(2), v2()), target(None, v2_to_v1));
        assert_eq!(v1.schema_version, Some(1));
        assert_eq!(
            v1.data,
            json!({
                "order_id": "ord_1",
                "items": [{"sku": "A1", "qty": 2}],
                "customer": {"first_name": "Ada", "last_name": "Lovelace"},
                "amount_cents": 1250,
                "currency": "GBP",
                "customer_email": "ada@example.com",
            })
        );
    }

    #[test]
    fn the_version_written_is_the_configs_the_endpoints_or_unchanged() {
        let config = json!({"to_version": 3});
        assert_eq!(
            deliver(event(Some(2), v2()), target(None, config.clone())).schema_version,
            Some(3)
        );
        assert_eq!(
            deliver(event(Some(2), v2()), target(Some(3), config)).schema_version,
            Some(3)
        );
        assert_eq!(
            deliver(event(Some(2), v2()), target(Some(4), json!({}))).schema_version,
            Some(4)
        );
        let unchanged = deliver(event(Some(2), v2()), target(None, json!({})));
        assert_eq!(unchanged.schema_version, Some(2));
        assert_eq!(unchanged.data, v2());
        assert_eq!(
            deliver(event(None, v2()), target(None, json!({}))).schema_version,
            None
        );
    }

    #[test]
    fn a_to_version_other_than_the_endpoints_is_invalid_config() {
        let error =
            FieldMapper::handle(event(Some(2), v2()), target(Some(4), v2_to_v3())).unwrap_err();
        assert_eq!(
            error,
            Error::invalid_config("config: `to_version` is 3, but the endpoint wants v4")
        );
    }

    #[test]
    fn other_event_types_and_versions_are_invalid_events() {
        let mut paid = event(Some(2), v2());
        paid.event_type = "order.paid".to_owned();
        for (event, expected) in [
            (paid, "expected a order.created event, got order.paid"),
            (event(Some(1), v2()), "expected schema version 2, got 1"),
            (event(None, v2()), "expected schema version 2, got none"),
        ] {
            let error = FieldMapper::handle(event, target(Some(3), v2_to_v3())).unwrap_err();
            assert_eq!(error, Error::invalid_event(expected));
        }
    }

    #[test]
    fn data_the_mapping_cannot_apply_to_is_an_invalid_event() {
        let error = FieldMapper::handle(
            event(Some(2), json!({"order_id": "ord_1"})),
            target(Some(3), v2_to_v3()),
        )
        .unwrap_err();
        assert_eq!(
            error,
            Error::invalid_event(
                "move /amount/value to /total/minor_units: the data has no /amount/value"
            )
        );

        let config = json!({"set": {"/total/scale": 2}});
        let error =
            FieldMapper::handle(event(Some(3), json!({"total": 1250})), target(None, config))
                .unwrap_err();
        assert_eq!(
            error,
            Error::invalid_event("set /total/scale: /total is a number, not an object")
        );
    }

    #[test]
    fn bad_config_is_invalid_config() {
        for config in [
            json!({"moves": [{"from": "amount", "to": "/total"}]}),
            json!({"remove": "/amount"}),
            json!({"set": {"/a~9": 1}}),
            json!({"to_version": -1}),
            json!({"rename": {}}),
            json!(["order.created", 2, 3]),
        ] {
            let error = FieldMapper::handle(event(Some(2), v2()), target(None, config.clone()))
                .unwrap_err();
            assert!(
                matches!(error, Error::InvalidConfig(_)),
                "{config}: {error:?}"
            );
        }
    }
}
