//! Hostile test plugin `infinite-loop`: spins forever in `handle`, so the
//! gateway's tests can show the CPU budget and deadline stop it.

use gateway_plugin::{Error, Event, Plugin, Target, Verdict};

/// The plugin: never returns.
pub struct InfiniteLoop;

impl Plugin for InfiniteLoop {
    fn handle(_event: Event, _target: Target) -> Result<Verdict, Error> {
        let mut spins: u64 = 0;
        loop {
            spins = std::hint::black_box(spins.wrapping_add(1));
        }
    }
}

gateway_plugin::export!(InfiniteLoop);
