//! Helpers for driving `gateway::plugins::PluginHost` directly with the guest
//! components `build.rs` makes (`env!("PLUGINS_WASM_DIR")`).

use std::convert::Infallible;
use std::sync::Arc;

use gateway::config::{Config, PluginConfig};
use gateway::plugins::{
    Budget, Invocation, PluginEvent, PluginHost, PluginInput, PluginTarget, Verdict,
};
use serde_json::{Value, json};

/// The default `[plugins]` settings, except that compiled code is not kept
/// (a test that wants it names its own directory).
pub fn plugin_config() -> PluginConfig {
    PluginConfig {
        keep_artifacts: false,
        ..Config::load(None, Vec::new())
            .expect("the default config is valid")
            .plugins
    }
}

/// A host on the default settings as changed by `change`.
pub fn host_with(change: impl FnOnce(&mut PluginConfig)) -> PluginHost {
    let mut config = plugin_config();
    change(&mut config);
    PluginHost::new(&config).expect("the plugin host starts")
}

/// The bytes of the built component `name` (e.g. `schema_upgrade`).
pub fn wasm(name: &str) -> Arc<Vec<u8>> {
    let path = std::path::Path::new(env!("PLUGINS_WASM_DIR")).join(format!("{name}.wasm"));
    Arc::new(std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
}

/// The bytes of the JavaScript or Python component `name` that
/// `plugins/toolchains/build` made: `language` is `js` or `python`, `name`
/// an example's folder (`schema-upgrade`) or a hostile script's name.
pub fn component(language: &str, name: &str) -> Arc<Vec<u8>> {
    let path = std::path::Path::new(env!("PLUGINS_TARGET_DIR"))
        .join(language)
        .join(format!("{name}.wasm"));
    Arc::new(std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
}

/// A call input: an event `evt_1` with `data` for endpoint `ep_1` with the
/// plugin config `config`.
pub fn input(event_type: &str, version: Option<u32>, data: Value, config: Value) -> PluginInput {
    PluginInput {
        event: PluginEvent {
            id: "evt_1".into(),
            event_type: event_type.into(),
            schema_version: version,
            timestamp: "2026-01-31T12:00:00Z".into(),
            data: serde_json::to_vec(&data).expect("JSON"),
            metadata: vec![("tenant-id".into(), "t1".into())],
        },
        target: PluginTarget {
            endpoint_id: "ep_1".into(),
            schema_version: None,
            config: serde_json::to_vec(&config).expect("JSON"),
        },
    }
}

/// A small `order.created` v1 event, `schema_upgrade`'s input.
pub fn order_v1() -> PluginInput {
    let data = json!({"order_id": "ord_1", "customer_name": "Ada Lovelace", "amount_cents": 1250});
    input("order.created", Some(1), data, json!({}))
}

/// Compiles `name` on `host` and runs one call of it with `budget`.
pub async fn run(host: &PluginHost, name: &str, input: &PluginInput, budget: Budget) -> Invocation {
    let bytes = wasm(name);
    let sha = host.compile(bytes.clone()).await.expect("compiles");
    let load = || async move { Ok::<_, Infallible>(bytes) };
    host.invoke("t", &sha, load, input, budget).await
}

/// The delivered event of `invocation` and its data, or a panic.
pub fn delivered(invocation: &Invocation) -> (&PluginEvent, Value) {
    match &invocation.result {
        Ok(Verdict::Deliver(event)) => (
            event,
            serde_json::from_slice(&event.data).expect("delivered data is JSON"),
        ),
        other => panic!("expected a delivery, got {other:?}"),
    }
}
