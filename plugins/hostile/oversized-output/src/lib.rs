//! Hostile test plugin `oversized-output`: delivers the event with its data
//! replaced by `{"padding": "xxxx..."}`, the string `bytes` long (config
//! `{"bytes": N}`, 20 MiB by default), so the gateway's tests can show the
//! output-size cap. The plugin needs about twice `bytes` of memory.

use gateway_plugin::{Error, Event, Plugin, Target, Verdict, json};

/// The padding's length when the config does not say.
const DEFAULT_BYTES: u64 = 20 << 20;

/// The plugin: delivers a huge payload.
pub struct OversizedOutput;

impl Plugin for OversizedOutput {
    fn handle(mut event: Event, target: Target) -> Result<Verdict, Error> {
        let bytes = match target.config.get("bytes") {
            None => DEFAULT_BYTES,
            Some(value) => value
                .as_u64()
                .ok_or_else(|| Error::invalid_config("`bytes` must be a whole number"))?,
        };
        let bytes =
            usize::try_from(bytes).map_err(|_| Error::invalid_config("`bytes` is too large"))?;
        event.data = json!({ "padding": "x".repeat(bytes) });
        Ok(Verdict::deliver(event))
    }
}

gateway_plugin::export!(OversizedOutput);
