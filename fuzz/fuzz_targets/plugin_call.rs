//! The WIT boundary: random events (random bytes or random JSON as `data`,
//! random strings, metadata and plugin config) through calls of real
//! compiled components, the example and hostile plugins of `plugins/`
//! built for wasm32-wasip2 (`scripts/fuzz` builds them). The host is built
//! and the components compiled once; each input is one call. A trap or a
//! failure is a fine answer; a panic, or a delivered event whose data is
//! not JSON or is over the output cap, is not.
#![no_main]

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use arbitrary::Unstructured;
use gateway::config::Config;
use gateway::plugins::{PluginEvent, PluginHost, PluginInput, PluginTarget, Verdict};
use libfuzzer_sys::fuzz_target;

/// The components called, by file name (`plugins/target/wasm32-wasip2/release`).
const COMPONENTS: &[&str] = &[
    "json_filter",
    "field_mapper",
    "pii_redactor",
    "schema_upgrade",
    "trap",
    "oversized_output",
    "log_flood",
    "state_keeper",
];

struct Harness {
    runtime: tokio::runtime::Runtime,
    host: PluginHost,
    /// (file name, sha256) of each compiled component.
    plugins: Vec<(String, String)>,
    max_output_bytes: usize,
}

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let dir = std::env::var_os("PLUGIN_WASM_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                PathBuf::from(concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/target/plugins/wasm32-wasip2/release"
                ))
            });
        let env = [(
            "GATEWAY_PLUGINS__KEEP_ARTIFACTS".to_string(),
            "false".to_string(),
        )];
        let config = Config::load(None, env).expect("the default config");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let host = PluginHost::new(&config.plugins).expect("the plugin host");
        let mut plugins = Vec::new();
        for name in COMPONENTS {
            let path = dir.join(format!("{name}.wasm"));
            let Ok(bytes) = std::fs::read(&path) else {
                eprintln!("plugin_call: no {} (skipped)", path.display());
                continue;
            };
            let sha256 = runtime
                .block_on(host.compile(Arc::new(bytes)))
                .unwrap_or_else(|e| panic!("{name} does not compile: {e}"));
            plugins.push((name.to_string(), sha256));
        }
        assert!(
            !plugins.is_empty(),
            "no plugin components in {} (set PLUGIN_WASM_DIR, or run scripts/fuzz)",
            dir.display()
        );
        eprintln!(
            "plugin_call: {} components from {}",
            plugins.len(),
            dir.display()
        );
        Harness {
            runtime,
            host,
            plugins,
            max_output_bytes: config.plugins.max_output_bytes,
        }
    })
}

/// Random JSON, small and nested, with keys the example plugins look at.
fn json(u: &mut Unstructured, depth: u32) -> arbitrary::Result<serde_json::Value> {
    use serde_json::Value;
    const KEYS: &[&str] = &[
        "all",
        "any",
        "pointer",
        "op",
        "value",
        "moves",
        "remove",
        "set",
        "from",
        "to",
        "event_type",
        "from_version",
        "to_version",
        "fields",
        "email",
        "amount",
        "a",
        "",
    ];
    let pick = if depth > 4 {
        u.int_in_range(0..=4u8)?
    } else {
        u.int_in_range(0..=7u8)?
    };
    Ok(match pick {
        0 => Value::Null,
        1 => Value::Bool(u.arbitrary()?),
        2 => Value::from(u.arbitrary::<i64>()?),
        3 => serde_json::Number::from_f64(u.arbitrary()?).map_or(Value::Null, Value::Number),
        4 => Value::String(if u.arbitrary()? {
            u.arbitrary()?
        } else {
            format!("/{}", u.choose(KEYS)?)
        }),
        5 => Value::Array(
            (0..u.int_in_range(0..=4u8)?)
                .map(|_| json(u, depth + 1))
                .collect::<arbitrary::Result<_>>()?,
        ),
        _ => {
            let mut map = serde_json::Map::new();
            for _ in 0..u.int_in_range(0..=4u8)? {
                let key = if u.arbitrary()? {
                    u.choose(KEYS)?.to_string()
                } else {
                    u.arbitrary()?
                };
                map.insert(key, json(u, depth + 1)?);
            }
            Value::Object(map)
        }
    })
}

/// Bytes for `data` or `config`: raw, random JSON, or `{}`.
fn payload(u: &mut Unstructured) -> arbitrary::Result<Vec<u8>> {
    Ok(match u.int_in_range(0..=3u8)? {
        0 => u.arbitrary::<Vec<u8>>()?,
        1 => b"{}".to_vec(),
        _ => serde_json::to_vec(&json(u, 0)?).expect("a Value serialises"),
    })
}

fn input(u: &mut Unstructured) -> arbitrary::Result<(usize, PluginInput)> {
    let plugin = u.arbitrary::<u8>()? as usize;
    let event = PluginEvent {
        id: u.arbitrary()?,
        event_type: u.arbitrary()?,
        schema_version: u.arbitrary()?,
        timestamp: u.arbitrary()?,
        data: payload(u)?,
        metadata: u
            .arbitrary::<Vec<(String, String)>>()?
            .into_iter()
            .take(16)
            .collect(),
    };
    let target = PluginTarget {
        endpoint_id: u.arbitrary()?,
        schema_version: u.arbitrary()?,
        config: payload(u)?,
    };
    Ok((plugin, PluginInput { event, target }))
}

fuzz_target!(|data: &[u8]| {
    let h = harness();
    let mut u = Unstructured::new(data);
    let Ok((plugin, input)) = input(&mut u) else {
        return;
    };
    let (_, sha256) = &h.plugins[plugin % h.plugins.len()];
    let budget = h.host.default_budget();
    let load = || async { Err::<Arc<Vec<u8>>, _>("compiled at start: never loaded") };
    let call = h
        .runtime
        .block_on(h.host.invoke("tenant_fuzz", sha256, load, &input, budget));
    if let Ok(Verdict::Deliver(event)) = &call.result {
        assert!(
            serde_json::from_slice::<serde::de::IgnoredAny>(&event.data).is_ok(),
            "delivered data that is not JSON"
        );
        assert!(event.data.len() <= h.max_output_bytes);
    }
});
