//! The WIT glue, compiled only for `wasm32`: the wit-bindgen bindings of
//! `wit/plugin.wit` and the conversions between their byte-level types and
//! the SDK's typed ones. [`export!`](crate::export!) expands to code that
//! calls [`handle`]; nothing here is meant to be used directly.

#![allow(unsafe_code, missing_docs)]

use serde_json::Value;

use crate::log::Level;
use crate::{Error, Event, Plugin, Target, Verdict};

/// The generated bindings; the one `generate!` of the SDK.
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "plugin",
        pub_export_macro: true,
        default_bindings_module: "gateway_plugin::__glue::bindings",
    });
}

pub use bindings::Guest;
use bindings::gateway::plugin::log as wit_log;
pub use bindings::gateway::plugin::types::{
    Error as WitError, Event as WitEvent, Target as WitTarget, Verdict as WitVerdict,
};

/// Runs `P` on one call: decodes the JSON, calls [`Plugin::handle`], encodes
/// the verdict.
pub fn handle<P: Plugin>(event: WitEvent, target: WitTarget) -> Result<WitVerdict, WitError> {
    let event = event_from_wit(event).map_err(error_to_wit)?;
    let target = target_from_wit(target).map_err(error_to_wit)?;
    match P::handle(event, target) {
        Ok(Verdict::Deliver(event)) => event_to_wit(event)
            .map(WitVerdict::Deliver)
            .map_err(error_to_wit),
        Ok(Verdict::Drop(reason)) => Ok(WitVerdict::Drop(reason)),
        Err(error) => Err(error_to_wit(error)),
    }
}

/// Sends one log line to the host.
pub fn write_log(level: Level, message: &str) {
    let level = match level {
        Level::Debug => wit_log::Level::Debug,
        Level::Info => wit_log::Level::Info,
        Level::Warn => wit_log::Level::Warn,
        Level::Error => wit_log::Level::Error,
    };
    wit_log::write(level, message);
}

fn event_from_wit(event: WitEvent) -> Result<Event, Error> {
    let data = serde_json::from_slice(&event.data)
        .map_err(|e| Error::invalid_event(format!("data is not JSON: {e}")))?;
    Ok(Event {
        id: event.id,
        event_type: event.event_type,
        schema_version: event.schema_version,
        timestamp: event.timestamp,
        data,
        metadata: event.metadata,
    })
}

fn target_from_wit(target: WitTarget) -> Result<Target, Error> {
    let config = if target.config.is_empty() {
        Value::Object(Default::default())
    } else {
        serde_json::from_slice(&target.config)
            .map_err(|e| Error::invalid_config(format!("config is not JSON: {e}")))?
    };
    Ok(Target {
        endpoint_id: target.endpoint_id,
        schema_version: target.schema_version,
        config,
    })
}

fn event_to_wit(event: Event) -> Result<WitEvent, Error> {
    let data = serde_json::to_vec(&event.data)
        .map_err(|e| Error::failed(format!("encoding data: {e}")))?;
    Ok(WitEvent {
        id: event.id,
        event_type: event.event_type,
        schema_version: event.schema_version,
        timestamp: event.timestamp,
        data,
        metadata: event.metadata,
    })
}

fn error_to_wit(error: Error) -> WitError {
    match error {
        Error::InvalidConfig(m) => WitError::InvalidConfig(m),
        Error::InvalidEvent(m) => WitError::InvalidEvent(m),
        Error::Failed(m) => WitError::Failed(m),
    }
}
