//! Imports a plugin may have but is not granted: every interface outside
//! the packages the host links (WASI p2's io, clocks, random, cli,
//! filesystem and sockets, which grant nothing beyond clocks and random,
//! and the world's own `gateway:plugin`) is linked as stubs, so a component
//! built with a toolchain's defaults (componentize-js imports `wasi:http`)
//! still instantiates. A stub fails the call with [`Denied`], which the
//! host reports as [`super::PluginFailure::Denied`]: the event then follows
//! the endpoint's `on_plugin_error`, like any other plugin failure.

use wasmtime::Engine;
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, Linker, ResourceType};

use super::bindings::CallState;

/// The packages the host links; an import from any other is stubbed.
const LINKED: &[&str] = &[
    "wasi:io/",
    "wasi:clocks/",
    "wasi:random/",
    "wasi:cli/",
    "wasi:filesystem/",
    "wasi:sockets/",
    "gateway:plugin/",
];

/// A call to a stub: the import's full name, such as
/// `wasi:http/outgoing-handler@0.2.10#handle`.
#[derive(Debug, thiserror::Error)]
#[error("the plugin called `{0}`, which plugins are not granted")]
pub struct Denied(pub String);

/// Whether the host links the interface `name` (`package/interface@version`).
pub fn is_linked(name: &str) -> bool {
    LINKED.iter().any(|package| name.starts_with(package))
}

/// `base` plus stubs for every function and resource of each interface
/// `component` imports that `base` does not link; `None` when it imports
/// none (then `base` is used as it is).
pub fn linker_for(
    base: &Linker<CallState>,
    engine: &Engine,
    component: &Component,
) -> wasmtime::Result<Option<Linker<CallState>>> {
    let ty = component.component_type();
    if ty.imports(engine).all(|(name, _)| is_linked(name)) {
        return Ok(None);
    }
    let mut linker = base.clone();
    // A resource an interface takes from another (`input-stream` in
    // `wasi:http/types` is `wasi:io`'s) is the same type as there: it is
    // defined once, by the first interface that has it, and left out of the
    // others' stubs.
    let mut seen: Vec<ResourceType> = Vec::new();
    for (interface, item) in ty.imports(engine) {
        let ComponentItem::ComponentInstance(instance) = item.ty else {
            if is_linked(interface) {
                continue;
            }
            let message = format!("the import `{interface}` is not an interface");
            return Err(wasmtime::Error::msg(message));
        };
        if is_linked(interface) {
            seen.extend(instance.exports(engine).filter_map(|(_, e)| match e.ty {
                ComponentItem::Resource(r) => Some(r),
                _ => None,
            }));
            continue;
        }
        let mut stubs = linker.instance(interface)?;
        for (name, export) in instance.exports(engine) {
            match export.ty {
                ComponentItem::ComponentFunc(_) => {
                    let full = format!("{interface}#{name}");
                    stubs.func_new(name, move |_, _, _, _| {
                        Err(wasmtime::Error::new(Denied(full.clone())))
                    })?;
                }
                ComponentItem::Resource(resource) if !seen.contains(&resource) => {
                    stubs.resource(name, ResourceType::host::<Denied>(), |_, _| Ok(()))?;
                    seen.push(resource);
                }
                _ => {}
            }
        }
    }
    Ok(Some(linker))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_granted_packages_are_linked() {
        for linked in [
            "wasi:io/poll@0.2.12",
            "wasi:clocks/wall-clock@0.2.0",
            "wasi:sockets/tcp@0.2.6",
            "gateway:plugin/log@0.1.0",
        ] {
            assert!(is_linked(linked), "{linked}");
        }
        for denied in [
            "wasi:http/outgoing-handler@0.2.10",
            "wasi:keyvalue/store@0.2.0-draft",
            "wasi:iox/thing@1.0.0",
            "acme:secrets/vault",
        ] {
            assert!(!is_linked(denied), "{denied}");
        }
    }
}
