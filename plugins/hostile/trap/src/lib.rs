//! Hostile test plugin `trap`: logs one line, then panics. Plugins are built
//! with `panic = "abort"`, so the panic is a wasm trap (`unreachable`); the
//! gateway's tests use it to show a trap is contained and reported.

use gateway_plugin::{Error, Event, Plugin, Target, Verdict};

/// The plugin: always traps.
pub struct Trap;

impl Plugin for Trap {
    fn handle(event: Event, _target: Target) -> Result<Verdict, Error> {
        gateway_plugin::log!(error, "trapping on event {}", event.id);
        panic!("trap plugin: panicking on purpose");
    }
}

gateway_plugin::export!(Trap);
