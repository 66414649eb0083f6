//! What a plugin answers: a verdict, or an error saying why it could not
//! decide.

use std::fmt;

use crate::Event;

/// What to do with the event.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Deliver this event: the input unchanged, or rewritten.
    Deliver(Event),
    /// Do not deliver it to this endpoint; the reason is recorded in the
    /// event's status for the endpoint.
    Drop(String),
}

impl Verdict {
    /// Deliver `event` (unchanged or rewritten).
    pub fn deliver(event: Event) -> Self {
        Verdict::Deliver(event)
    }

    /// Do not deliver the event to this endpoint, for `reason`.
    pub fn drop(reason: impl Into<String>) -> Self {
        Verdict::Drop(reason.into())
    }
}

/// Why the plugin could not decide. The event then follows the endpoint's
/// `on_plugin_error` policy (dead-letter by default), with the message
/// recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The plugin's configuration is unusable; the message says why.
    InvalidConfig(String),
    /// The event is not one this plugin can handle; the message says why.
    InvalidEvent(String),
    /// Any other failure.
    Failed(String),
}

impl Error {
    /// An [`Error::InvalidConfig`] with `message`.
    pub fn invalid_config(message: impl Into<String>) -> Self {
        Error::InvalidConfig(message.into())
    }

    /// An [`Error::InvalidEvent`] with `message`.
    pub fn invalid_event(message: impl Into<String>) -> Self {
        Error::InvalidEvent(message.into())
    }

    /// An [`Error::Failed`] with `message`.
    pub fn failed(message: impl Into<String>) -> Self {
        Error::Failed(message.into())
    }

    /// The message, whatever the kind.
    pub fn message(&self) -> &str {
        match self {
            Error::InvalidConfig(m) | Error::InvalidEvent(m) | Error::Failed(m) => m,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self {
            Error::InvalidConfig(_) => "invalid config",
            Error::InvalidEvent(_) => "invalid event",
            Error::Failed(_) => "failed",
        };
        write!(f, "{kind}: {}", self.message())
    }
}

impl std::error::Error for Error {}
