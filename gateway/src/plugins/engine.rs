//! The one wasmtime [`Engine`] of a [`super::PluginHost`] and the thread that
//! drives its epochs.
//!
//! The engine compiles with Cranelift, instantiates from a pooling allocator
//! sized to the plugin concurrency (so instantiation is a slot pick and a
//! copy-on-write memory image, not an `mmap`), and instruments code with epoch
//! checks: [`EpochTicker`] bumps the epoch every [`TICK`] on its own OS thread,
//! so a plugin's CPU budget is counted in ticks even when every tokio worker is
//! busy. The pool's per-component limits are checked when a component is
//! compiled, which is how uploads learn they do not fit.

use std::sync::mpsc::{self, RecvTimeoutError, SyncSender};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Context;
use wasmtime::{
    Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Strategy,
};

use crate::config::PluginConfig;

/// One epoch tick; a CPU budget of `n` ms is `n` ticks.
const TICK: Duration = Duration::from_millis(1);

/// Core module instances one component may hold: a Rust `wasm32-wasip2`
/// guest has three (its code and two small adapter shims), a JavaScript one
/// (componentize-js 0.23) 5, a Python one (componentize-py 0.25, which
/// links libc and libpython as modules of their own) 14; the rest is room
/// for other toolchains.
const CORE_INSTANCES_PER_COMPONENT: u32 = 24;
/// Linear memories one component may define.
const MEMORIES_PER_COMPONENT: u32 = 2;
/// Tables one component may define.
const TABLES_PER_COMPONENT: u32 = 4;

/// Memory kept resident (reset with `memset`, not `madvise`) in each slot
/// between calls: a small plugin then takes no page faults on reuse.
const MEMORY_KEEP_RESIDENT: usize = 16 << 20;
/// Table memory kept resident in each slot between calls.
const TABLE_KEEP_RESIDENT: usize = 1 << 20;
/// Wasm's page size: memory sizes are multiples of it.
const WASM_PAGE: u64 = 64 << 10;

/// Builds the engine for `config`: every pool total is the per-component
/// limit times the concurrency, so `concurrency` calls always find a slot.
pub fn build(config: &PluginConfig) -> anyhow::Result<Engine> {
    let concurrency = config.concurrency;
    let slot_bytes = config.max_memory_bytes.div_ceil(WASM_PAGE) * WASM_PAGE;
    let slot = usize::try_from(slot_bytes).context("plugins.max_memory_bytes is too large")?;

    let mut pool = PoolingAllocationConfig::new();
    pool.total_component_instances(concurrency)
        .total_core_instances(concurrency * CORE_INSTANCES_PER_COMPONENT)
        .total_memories(concurrency * MEMORIES_PER_COMPONENT)
        .total_tables(concurrency * TABLES_PER_COMPONENT)
        .total_stacks(concurrency)
        .max_core_instances_per_component(CORE_INSTANCES_PER_COMPONENT)
        .max_memories_per_component(MEMORIES_PER_COMPONENT)
        .max_tables_per_component(TABLES_PER_COMPONENT)
        .max_memory_size(slot)
        .linear_memory_keep_resident(MEMORY_KEEP_RESIDENT.min(slot))
        .table_keep_resident(TABLE_KEEP_RESIDENT)
        .pagemap_scan(Enabled::Auto);

    let mut wasm = Config::new();
    wasm.strategy(Strategy::Cranelift)
        .wasm_component_model(true)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool))
        .memory_init_cow(true)
        // Slots sized to the memory cap rather than wasmtime's 4 GiB each:
        // bounds checks become explicit, and the pool reserves
        // `total_memories` × (cap + guard) of address space instead of
        // `total_memories` × 8 GiB.
        .memory_reservation(slot_bytes)
        .memory_reservation_for_growth(0)
        .epoch_interruption(true)
        // One thread per compile: two big uploads compiling leave the
        // gateway its cores, and a small upload beside a big one gets a
        // core of its own instead of a share of every core.
        .parallel_compilation(false)
        // Traps are reported by kind; a guest backtrace would only cost time.
        .wasm_backtrace_max_frames(None);
    Engine::new(&wasm).map_err(|e| anyhow::anyhow!("cannot create the plugin engine: {e:#}"))
}

/// Increments an engine's epoch every [`TICK`] on a dedicated OS thread
/// until dropped. Dropping stops and joins the thread.
pub struct EpochTicker {
    stop: Option<SyncSender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl EpochTicker {
    /// Starts ticking `engine`.
    pub fn start(engine: Engine) -> anyhow::Result<EpochTicker> {
        let (stop, stopped) = mpsc::sync_channel::<()>(0);
        let thread = std::thread::Builder::new()
            .name("plugin-epoch".into())
            .spawn(move || {
                // The sender is dropped (never used to send) when the ticker
                // is dropped: that disconnects the channel and ends the loop.
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(TICK) {
                    engine.increment_epoch();
                }
            })
            .context("cannot start the plugin epoch thread")?;
        Ok(EpochTicker {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
