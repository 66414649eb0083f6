//! `json-filter`: delivers an event only when its data meets the conditions
//! in the plugin's config, and drops it otherwise, naming the condition that
//! failed. See the README for the config format.

mod condition;
mod parse;

use condition::Condition;
use gateway_plugin::{Error, Event, Plugin, Target, Verdict};

/// The plugin: one config-driven condition over the event's data.
pub struct JsonFilter;

impl Plugin for JsonFilter {
    fn handle(event: Event, target: Target) -> Result<Verdict, Error> {
        let condition = Condition::parse(&target.config).map_err(Error::invalid_config)?;
        Ok(match condition.check(&event.data) {
            Ok(()) => Verdict::deliver(event),
            Err(reason) => Verdict::drop(format!("json-filter: {reason}")),
        })
    }
}

gateway_plugin::export!(JsonFilter);

#[cfg(test)]
mod tests {
    use gateway_plugin::json;

    use super::*;

    fn run(config: gateway_plugin::Value, data: gateway_plugin::Value) -> Result<Verdict, Error> {
        JsonFilter::handle(Event::new("order.created", data), Target::new(config))
    }

    #[test]
    fn delivers_matching_events_unchanged() {
        let config = json!({"all": [
            {"pointer": "/amount", "op": "gt", "value": 100},
            {"pointer": "/country", "op": "eq", "value": "NL"},
        ]});
        let data = json!({"amount": 250, "country": "NL"});
        match run(config, data.clone()).unwrap() {
            Verdict::Deliver(event) => assert_eq!(event.data, data),
            other => panic!("expected deliver, got {other:?}"),
        }
    }

    #[test]
    fn drops_with_the_failed_condition_as_reason() {
        let config = json!({"all": [
            {"pointer": "/amount", "op": "gt", "value": 100},
            {"pointer": "/country", "op": "eq", "value": "NL"},
        ]});
        let verdict = run(config, json!({"amount": 250, "country": "DE"})).unwrap();
        assert_eq!(
            verdict,
            Verdict::drop(r#"json-filter: /country eq "NL" failed (found "DE")"#)
        );
    }

    #[test]
    fn bad_config_is_invalid_config() {
        let error = run(json!({"all": [{"pointer": "/a", "op": "like"}]}), json!({})).unwrap_err();
        assert!(matches!(error, Error::InvalidConfig(_)), "{error:?}");
    }
}
