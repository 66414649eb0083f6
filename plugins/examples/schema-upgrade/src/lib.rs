//! `schema-upgrade`: rewrites `order.created` events from schema version 1 to
//! version 2 (see the README for both shapes). The mapping itself lives in
//! `upgrade.rs` as plain functions; this file checks versions and config.

mod upgrade;

use gateway_plugin::{Error, Event, Plugin, Target, Verdict};
use serde::Deserialize;

/// The event type this plugin upgrades.
const EVENT_TYPE: &str = "order.created";
/// The version it reads.
const FROM_VERSION: u32 = 1;
/// The version it writes.
const TO_VERSION: u32 = 2;

/// The plugin's config.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Config {
    /// The currency of v1 orders that do not name one.
    default_currency: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            default_currency: "EUR".to_owned(),
        }
    }
}

/// The plugin: `order.created` v1 in, v2 out.
pub struct SchemaUpgrade;

impl Plugin for SchemaUpgrade {
    fn handle(mut event: Event, target: Target) -> Result<Verdict, Error> {
        let config: Config = target.parse_config()?;
        if let Some(wanted) = target.schema_version.filter(|v| *v != TO_VERSION) {
            return Err(Error::invalid_config(format!(
                "this plugin upgrades {EVENT_TYPE} v{FROM_VERSION} to v{TO_VERSION}, \
                 but the endpoint wants v{wanted}"
            )));
        }
        if event.event_type != EVENT_TYPE {
            return Err(Error::invalid_event(format!(
                "expected a {EVENT_TYPE} event, got {}",
                event.event_type
            )));
        }
        if let Some(version) = event.schema_version.filter(|v| *v != FROM_VERSION) {
            return Err(Error::invalid_event(format!(
                "expected schema version {FROM_VERSION}, got {version}"
            )));
        }
        let v1: upgrade::OrderV1 = event.parse_data()?;
        let v2 = upgrade::to_v2(v1, &config.default_currency).map_err(Error::invalid_event)?;
        event.set_data(&v2)?;
        event.schema_version = Some(TO_VERSION);
        Ok(Verdict::deliver(event))
    }
}

gateway_plugin::export!(SchemaUpgrade);

#[cfg(test)]
mod tests {
    use gateway_plugin::json;

    use super::*;

    fn v1_event() -> Event {
        let mut event = Event::new(
            "order.created",
            json!({"order_id": "ord_1", "customer_name": "Ada Lovelace", "amount_cents": 1250}),
        );
        event.schema_version = Some(1);
        event
    }

    #[test]
    fn upgrades_and_sets_the_version() {
        let mut target = Target::new(json!({"default_currency": "GBP"}));
        target.schema_version = Some(2);
        let Verdict::Deliver(event) = SchemaUpgrade::handle(v1_event(), target).unwrap() else {
            panic!("expected deliver");
        };
        assert_eq!(event.schema_version, Some(2));
        assert_eq!(
            event.data,
            json!({
                "order_id": "ord_1",
                "customer": {"first_name": "Ada", "last_name": "Lovelace"},
                "amount": {"value": 1250, "currency": "GBP"},
            })
        );
    }

    #[test]
    fn rejects_other_versions_types_and_targets() {
        let mut event = v1_event();
        event.schema_version = Some(2);
        let error = SchemaUpgrade::handle(event, Target::new(json!({}))).unwrap_err();
        assert!(matches!(error, Error::InvalidEvent(_)), "{error:?}");

        let mut event = v1_event();
        event.event_type = "order.paid".to_owned();
        let error = SchemaUpgrade::handle(event, Target::new(json!({}))).unwrap_err();
        assert!(matches!(error, Error::InvalidEvent(_)), "{error:?}");

        let mut target = Target::new(json!({}));
        target.schema_version = Some(3);
        let error = SchemaUpgrade::handle(v1_event(), target).unwrap_err();
        assert!(matches!(error, Error::InvalidConfig(_)), "{error:?}");

        let error =
            SchemaUpgrade::handle(v1_event(), Target::new(json!({"currency": 1}))).unwrap_err();
        assert!(matches!(error, Error::InvalidConfig(_)), "{error:?}");
    }

    #[test]
    fn data_that_is_not_v1_is_an_invalid_event() {
        for data in [
            json!({"customer_name": "Ada Lovelace"}),
            json!({"customer_name": "Ada", "amount_cents": "12.50"}),
            json!([1, 2]),
        ] {
            let mut event = v1_event();
            event.data = data;
            let error = SchemaUpgrade::handle(event, Target::new(json!({}))).unwrap_err();
            assert!(matches!(error, Error::InvalidEvent(_)), "{error:?}");
        }
    }
}
