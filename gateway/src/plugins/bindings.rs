//! The one `bindgen!` of the gateway: host bindings for the world
//! `gateway:plugin/plugin@0.1.0` (`wit/plugin.wit`), the state each call's
//! `Store` holds, and conversions between the generated types and the
//! module's public ones.
//!
//! Exports are async (calls yield to tokio at every epoch tick); the one
//! import, `log.write`, is a plain synchronous host function that appends to
//! the call's capped [`LogCapture`]. WASI p2 is linked with an empty
//! [`WasiCtx`]: a Rust std guest imports interfaces it never uses, and they
//! resolve to a context that grants nothing.

use wasmtime::Engine;
use wasmtime::component::{HasSelf, Linker, ResourceTable};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::limits::{LogCapture, MemoryLimiter};
use super::{PluginEvent, PluginFailure, PluginTarget};

wasmtime::component::bindgen!({
    path: "../wit",
    world: "plugin",
    exports: { default: async },
});

use self::gateway::plugin::log::Level;
use self::gateway::plugin::types;

/// Everything one call's `Store` owns; dropped with the store after the call.
pub struct CallState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub memory: MemoryLimiter,
    pub logs: LogCapture,
    /// Epoch ticks seen while the plugin ran (its CPU time in ms).
    pub ticks: u64,
    /// Why the epoch callback interrupted the plugin, if it did.
    pub stopped: Option<PluginFailure>,
}

impl CallState {
    pub fn new(memory_cap: usize, max_log_lines: usize, max_log_bytes: usize) -> CallState {
        let wasi = WasiCtx::builder()
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        CallState {
            wasi,
            table: ResourceTable::new(),
            memory: MemoryLimiter::new(memory_cap),
            logs: LogCapture::new(max_log_lines, max_log_bytes),
            ticks: 0,
            stopped: None,
        }
    }
}

impl WasiView for CallState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl gateway::plugin::log::Host for CallState {
    fn write(&mut self, level: Level, message: String) {
        let level = match level {
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        };
        self.logs.push(level, message);
    }
}

impl types::Host for CallState {}

/// The linker every plugin is instantiated against: WASI p2 (granting
/// nothing) and the world's `log` import.
pub fn linker(engine: &Engine) -> anyhow::Result<Linker<CallState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)
        .map_err(|e| anyhow::anyhow!("linking WASI: {e:#}"))?;
    Plugin::add_to_linker::<CallState, HasSelf<CallState>>(&mut linker, |state| state)
        .map_err(|e| anyhow::anyhow!("linking the plugin world: {e:#}"))?;
    Ok(linker)
}

pub fn event_to_wit(e: &PluginEvent) -> types::Event {
    types::Event {
        id: e.id.clone(),
        event_type: e.event_type.clone(),
        schema_version: e.schema_version,
        timestamp: e.timestamp.clone(),
        data: e.data.clone(),
        metadata: e.metadata.clone(),
    }
}

pub fn target_to_wit(t: &PluginTarget) -> types::Target {
    types::Target {
        endpoint_id: t.endpoint_id.clone(),
        schema_version: t.schema_version,
        config: t.config.clone(),
    }
}

/// The guest's answer in the module's types (`super::Verdict`: the world
/// brings the WIT `verdict` into this module as `Verdict`): a verdict, or the plugin's own
/// error as [`PluginFailure::PluginError`].
pub fn result_from_wit(
    result: Result<types::Verdict, types::Error>,
) -> Result<super::Verdict, PluginFailure> {
    match result {
        Ok(types::Verdict::Deliver(e)) => Ok(super::Verdict::Deliver(PluginEvent {
            id: e.id,
            event_type: e.event_type,
            schema_version: e.schema_version,
            timestamp: e.timestamp,
            data: e.data,
            metadata: e.metadata,
        })),
        Ok(types::Verdict::Drop(reason)) => Ok(super::Verdict::Drop(reason)),
        Err(error) => {
            let (kind, message) = match error {
                types::Error::InvalidConfig(m) => ("invalid-config", m),
                types::Error::InvalidEvent(m) => ("invalid-event", m),
                types::Error::Failed(m) => ("failed", m),
            };
            Err(PluginFailure::PluginError {
                kind: kind.to_string(),
                message,
            })
        }
    }
}
