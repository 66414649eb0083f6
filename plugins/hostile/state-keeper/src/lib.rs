//! Hostile test plugin `state-keeper`: counts its calls in a static and
//! reports the count in the event's metadata (`calls`). Were an instance
//! reused, the count would climb; the gateway's tests show it is always 1,
//! because every call runs in a fresh instance.

use std::sync::atomic::{AtomicU32, Ordering};

use gateway_plugin::{Error, Event, Plugin, Target, Verdict};

/// Calls seen by this instance.
static CALLS: AtomicU32 = AtomicU32::new(0);

/// The plugin: delivers the event, tagged with its instance's call count.
pub struct StateKeeper;

impl Plugin for StateKeeper {
    fn handle(mut event: Event, _target: Target) -> Result<Verdict, Error> {
        let calls = CALLS.fetch_add(1, Ordering::Relaxed) + 1;
        event.set_metadata("calls", calls.to_string());
        Ok(Verdict::deliver(event))
    }
}

gateway_plugin::export!(StateKeeper);
