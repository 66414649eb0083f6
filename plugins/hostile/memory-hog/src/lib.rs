//! Hostile test plugin `memory-hog`: allocates 1 MiB after 1 MiB, writing
//! every byte so the memory is really used, and keeps it all until an
//! allocation fails (the component then aborts, which is a trap). The
//! gateway's tests use it to show the per-call memory cap.

use std::hint::black_box;

use gateway_plugin::{Error, Event, Plugin, Target, Verdict};

/// How much is allocated at a time.
const CHUNK_BYTES: usize = 1 << 20;

/// The plugin: never returns; ends in a trap once memory runs out.
pub struct MemoryHog;

impl Plugin for MemoryHog {
    fn handle(_event: Event, _target: Target) -> Result<Verdict, Error> {
        let mut hoard: Vec<Vec<u8>> = Vec::new();
        loop {
            hoard.push(black_box(vec![0xA5; CHUNK_BYTES]));
            black_box(&hoard);
        }
    }
}

gateway_plugin::export!(MemoryHog);
