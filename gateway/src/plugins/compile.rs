//! Turning uploaded bytes into a ready-to-instantiate plugin, off the request
//! path: a quick look at the header (is it wasm, is it a component), then a
//! Cranelift compile on tokio's blocking pool under a semaphore, then
//! type-checking against the world.
//!
//! Compiling also checks the component against the pool's per-component
//! limits (memory size, core instances, tables), so a plugin that could
//! never be instantiated is refused at upload with wasmtime's reason.

use std::sync::Arc;

use sha2::{Digest, Sha256};
use tokio::sync::OwnedSemaphorePermit;
use wasmtime::Engine;
use wasmtime::component::{Component, Linker};

use super::UploadError;
use super::artifacts::Artifacts;
use super::bindings::{CallState, PluginPre};
use super::denied;

/// A compiled plugin: instantiating it is a pool slot and a copy-on-write
/// memory image.
pub type Compiled = Arc<PluginPre<CallState>>;

/// A compiled plugin and the bytes of compiled code it holds in memory.
#[derive(Clone)]
pub struct Ready {
    pub pre: Compiled,
    pub code_bytes: usize,
}

/// Where a fresh compile's code is kept, and under which name.
pub struct Keep {
    pub artifacts: Arc<Artifacts>,
    pub sha256: String,
    pub engine_hash: u64,
}

/// The first 4 bytes of any wasm binary.
const WASM_MAGIC: &[u8] = b"\0asm";
/// Bytes 6-7 of the header: the layer, 0 for a core module, 1 for a
/// component.
const CORE_LAYER: [u8; 2] = [0, 0];

/// The lowercase hex sha256 of `bytes`, the plugin's content address.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Refuses what is not a wasm component without compiling anything.
pub fn check_header(bytes: &[u8], max_bytes: usize) -> Result<(), UploadError> {
    if bytes.len() > max_bytes {
        return Err(UploadError::Invalid(format!(
            "the component is {} bytes, more than the limit of {max_bytes}",
            bytes.len()
        )));
    }
    if bytes.len() < 8 || &bytes[..4] != WASM_MAGIC {
        return Err(UploadError::NotWasm);
    }
    if bytes[6..8] == CORE_LAYER {
        return Err(UploadError::CoreModule);
    }
    Ok(())
}

/// Compiles on the blocking pool while holding `permit` (one of the
/// bounded compile slots), to the end: whoever waits for it decides how
/// long to wait.
pub async fn compile_on_pool(
    engine: &Engine,
    linker: &Arc<Linker<CallState>>,
    permit: OwnedSemaphorePermit,
    bytes: Arc<Vec<u8>>,
    keep: Option<Keep>,
) -> Result<Ready, UploadError> {
    let (engine, linker) = (engine.clone(), linker.clone());
    let job = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        compile(&engine, &linker, &bytes, keep.as_ref())
    });
    match job.await {
        Err(join) => Err(UploadError::Invalid(format!("the compiler failed: {join}"))),
        Ok(result) => result,
    }
}

/// Compiles `bytes`, keeps the code (when `keep` says where) and
/// type-checks the component against the world.
fn compile(
    engine: &Engine,
    linker: &Linker<CallState>,
    bytes: &[u8],
    keep: Option<&Keep>,
) -> Result<Ready, UploadError> {
    let component = Component::from_binary(engine, bytes).map_err(|e| {
        let reason = format!("{e:#}");
        // Every pool limit check adds this phrase (wasmtime's
        // `PoolingInstanceAllocator::validate_component`).
        if reason.contains("pooling allocator") {
            UploadError::Limits(reason)
        } else {
            UploadError::Invalid(reason)
        }
    })?;
    if let Some(keep) = keep {
        keep.artifacts
            .keep(&keep.sha256, keep.engine_hash, &component);
    }
    prepare(engine, linker, &component)
}

/// Type-checks a compiled component against the world, ready to
/// instantiate; the interfaces it imports that the host does not grant are
/// linked as stubs that deny ([`super::denied`]).
pub fn prepare(
    engine: &Engine,
    linker: &Linker<CallState>,
    component: &Component,
) -> Result<Ready, UploadError> {
    let wrong_world = |e: wasmtime::Error| UploadError::WrongWorld(format!("{e:#}"));
    let stubbed = denied::linker_for(linker, engine, component).map_err(wrong_world)?;
    let pre = stubbed
        .as_ref()
        .unwrap_or(linker)
        .instantiate_pre(component)
        .map_err(wrong_world)?;
    let pre = PluginPre::new(pre).map_err(|e| UploadError::WrongWorld(format!("{e:#}")))?;
    let code = component.image_range();
    Ok(Ready {
        pre: Arc::new(pre),
        code_bytes: (code.end as usize).saturating_sub(code.start as usize),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_tell_components_from_modules_and_junk() {
        let component = b"\0asm\x0d\0\x01\0rest";
        assert!(check_header(component, 100).is_ok());
        assert!(matches!(
            check_header(b"\0asm\x01\0\0\0", 100),
            Err(UploadError::CoreModule)
        ));
        assert!(matches!(
            check_header(b"{\"json\": true}", 100),
            Err(UploadError::NotWasm)
        ));
        assert!(matches!(
            check_header(b"\0as", 100),
            Err(UploadError::NotWasm)
        ));
        assert!(matches!(
            check_header(component, 8),
            Err(UploadError::Invalid(m)) if m.contains("limit of 8")
        ));
    }

    #[test]
    fn sha256_is_lowercase_hex() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
