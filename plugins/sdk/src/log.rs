//! Logging, the one capability a plugin has.
//!
//! Lines are captured by the gateway with the call (the dry-run API returns
//! them) and capped in number and size; past the cap they are dropped. On the
//! host (unit tests) they go to stderr. The [`log!`](crate::log!) macro
//! formats and writes in one step.

use std::fmt;

/// Severity of a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// Detail useful while developing a plugin.
    Debug,
    /// Normal operation worth recording.
    Info,
    /// Something unexpected that the plugin worked around.
    Warn,
    /// A failure.
    Error,
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        })
    }
}

/// Records one line at `level`.
pub fn write(level: Level, message: &str) {
    #[cfg(target_arch = "wasm32")]
    crate::__glue::write_log(level, message);
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("[{level}] {message}");
}

/// Records one line at [`Level::Debug`].
pub fn debug(message: &str) {
    write(Level::Debug, message);
}

/// Records one line at [`Level::Info`].
pub fn info(message: &str) {
    write(Level::Info, message);
}

/// Records one line at [`Level::Warn`].
pub fn warn(message: &str) {
    write(Level::Warn, message);
}

/// Records one line at [`Level::Error`].
pub fn error(message: &str) {
    write(Level::Error, message);
}
