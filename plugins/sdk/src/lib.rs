//! Write plugins for the webhook gateway in ordinary Rust.
//!
//! A plugin is a WebAssembly component of the world `gateway:plugin/plugin`
//! (see `wit/plugin.wit` in the gateway's repository). For each event and
//! each endpoint the event is prepared for, the gateway calls the plugin with
//! the [`Event`] and the [`Target`] (the endpoint and this plugin's JSON config
//! for it); the plugin answers with a [`Verdict`] (deliver the event, possibly
//! rewritten, or drop it with a reason) or an [`Error`].
//!
//! This crate hides the WIT glue: implement [`Plugin`] for a type and call
//! [`export!`] once.
//!
//! ```
//! use gateway_plugin::{Error, Event, Plugin, Target, Verdict};
//!
//! struct OnlyPaid;
//!
//! impl Plugin for OnlyPaid {
//!     fn handle(event: Event, _target: Target) -> Result<Verdict, Error> {
//!         if event.data["status"] == "paid" {
//!             Ok(Verdict::deliver(event))
//!         } else {
//!             gateway_plugin::log!(debug, "dropping {}", event.id);
//!             Ok(Verdict::drop("not paid"))
//!         }
//!     }
//! }
//!
//! gateway_plugin::export!(OnlyPaid);
//! ```
//!
//! Build it with `cargo build --release --target wasm32-wasip2`: the `.wasm`
//! file is the component to upload. On any other target the glue is left out,
//! so the same crate's unit tests run on the host with plain `cargo test`
//! (calling `Plugin::handle` directly; log lines then go to stderr).

mod event;
pub mod log;
mod verdict;

#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
pub mod __glue;

pub use event::{Event, Target};
pub use serde_json::{self, Value, json};
pub use verdict::{Error, Verdict};

/// What a plugin does: decide the fate of one event on its way to one
/// endpoint.
///
/// Every call runs in a fresh instance, so there is no `self` and no state
/// survives between calls.
pub trait Plugin {
    /// Decides what happens to `event` on its way to `target`.
    ///
    /// Return [`Verdict::deliver`] with the event (unchanged or rewritten) or
    /// [`Verdict::drop`] with a reason. An [`Error`] sends the event where the
    /// endpoint's `on_plugin_error` policy says (dead-letter by default).
    fn handle(event: Event, target: Target) -> Result<Verdict, Error>;
}

/// Makes a type implementing [`Plugin`] the component's export.
///
/// Call it once per plugin crate, at the crate root:
///
/// ```
/// use gateway_plugin::{Error, Event, Plugin, Target, Verdict};
///
/// struct PassThrough;
///
/// impl Plugin for PassThrough {
///     fn handle(event: Event, _target: Target) -> Result<Verdict, Error> {
///         Ok(Verdict::deliver(event))
///     }
/// }
///
/// gateway_plugin::export!(PassThrough);
/// ```
///
/// On targets other than `wasm32` it expands to nothing, so host unit tests
/// build without the WIT glue.
#[macro_export]
macro_rules! export {
    ($plugin:ty) => {
        #[cfg(target_arch = "wasm32")]
        #[allow(unsafe_code)]
        const _: () = {
            struct GatewayPluginExport;

            impl $crate::__glue::Guest for GatewayPluginExport {
                fn handle(
                    event: $crate::__glue::WitEvent,
                    target: $crate::__glue::WitTarget,
                ) -> ::core::result::Result<$crate::__glue::WitVerdict, $crate::__glue::WitError>
                {
                    $crate::__glue::handle::<$plugin>(event, target)
                }
            }

            $crate::__glue::bindings::export!(GatewayPluginExport with_types_in $crate::__glue::bindings);
        };
    };
}

/// Writes a formatted log line at a level: `debug`, `info`, `warn` or `error`.
///
/// ```
/// let n = 3;
/// gateway_plugin::log!(info, "rewrote {n} fields");
/// gateway_plugin::log!(warn, "unknown currency {:?}", "XTS");
/// ```
///
/// The gateway captures the lines with the call (the dry-run API shows them)
/// and caps their number and size.
#[macro_export]
macro_rules! log {
    (debug, $($arg:tt)+) => {
        $crate::log::write($crate::log::Level::Debug, &::std::format!($($arg)+))
    };
    (info, $($arg:tt)+) => {
        $crate::log::write($crate::log::Level::Info, &::std::format!($($arg)+))
    };
    (warn, $($arg:tt)+) => {
        $crate::log::write($crate::log::Level::Warn, &::std::format!($($arg)+))
    };
    (error, $($arg:tt)+) => {
        $crate::log::write($crate::log::Level::Error, &::std::format!($($arg)+))
    };
}
