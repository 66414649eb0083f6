//! Hostile test plugin `log-flood`: writes `lines` log lines (10,000 by
//! default) of about `line_bytes` bytes each (1 KiB by default), then
//! delivers the event unchanged, so the gateway's tests can show the caps on
//! captured log lines and bytes. Config: `{"lines": N, "line_bytes": N}`.

use gateway_plugin::{Error, Event, Plugin, Target, Value, Verdict};

/// Lines written when the config does not say.
const DEFAULT_LINES: u64 = 10_000;
/// Bytes of padding per line when the config does not say.
const DEFAULT_LINE_BYTES: u64 = 1024;

/// The plugin: floods the log, then delivers.
pub struct LogFlood;

impl Plugin for LogFlood {
    fn handle(event: Event, target: Target) -> Result<Verdict, Error> {
        let lines = setting(&target.config, "lines", DEFAULT_LINES)?;
        let line_bytes = setting(&target.config, "line_bytes", DEFAULT_LINE_BYTES)?;
        let padding = "x".repeat(
            usize::try_from(line_bytes)
                .map_err(|_| Error::invalid_config("`line_bytes` is too large"))?,
        );
        for line in 0..lines {
            gateway_plugin::log!(info, "flood line {line}: {padding}");
        }
        Ok(Verdict::deliver(event))
    }
}

/// The whole number at `key` in the config, or `default`.
fn setting(config: &Value, key: &str, default: u64) -> Result<u64, Error> {
    match config.get(key) {
        None => Ok(default),
        Some(value) => value
            .as_u64()
            .ok_or_else(|| Error::invalid_config(format!("`{key}` must be a whole number"))),
    }
}

gateway_plugin::export!(LogFlood);
