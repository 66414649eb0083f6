//! Builds the guest plugins (`../plugins`, its own cargo workspace) for
//! `wasm32-wasip2` before the integration tests compile, so tests run real
//! components and no `.wasm` is committed.
//!
//! Tests find the components through `env!("PLUGINS_WASM_DIR")`, the absolute
//! path of `plugins/target/wasm32-wasip2/release`. The file names follow the
//! crate names (dashes become underscores):
//!
//! | file | crate |
//! | --- | --- |
//! | `schema_upgrade.wasm` | `plugins/examples/schema-upgrade` |
//! | `json_filter.wasm` | `plugins/examples/json-filter` |
//! | `pii_redactor.wasm` | `plugins/examples/pii-redactor` |
//! | `field_mapper.wasm` | `plugins/examples/field-mapper` |
//! | `infinite_loop.wasm` | `plugins/hostile/infinite-loop` |
//! | `memory_hog.wasm` | `plugins/hostile/memory-hog` |
//! | `trap.wasm` | `plugins/hostile/trap` |
//! | `oversized_output.wasm` | `plugins/hostile/oversized-output` |
//! | `log_flood.wasm` | `plugins/hostile/log-flood` |
//! | `wrong_world.wasm` | `plugins/hostile/wrong-world` |
//! | `state_keeper.wasm` | `plugins/hostile/state-keeper` |
//!
//! The JavaScript and Python plugins are built by `plugins/toolchains/build`
//! into `plugins/target/js/<name>.wasm` and `plugins/target/python/<name>.wasm`
//! (an example's folder name, or a hostile script's file name); tests find
//! that folder through `env!("PLUGINS_TARGET_DIR")`.
//!
//! The nested cargo gets a clean environment: the outer build's flags,
//! target, target dir, jobserver and wrappers are meant for the host build,
//! not for this one.

use std::env;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The guest target.
const TARGET: &str = "wasm32-wasip2";

/// Variables the outer cargo (or the user, for the outer build) sets that
/// would change or break the nested build.
const CLEARED_VARS: &[&str] = &[
    "RUSTFLAGS",
    "CARGO_ENCODED_RUSTFLAGS",
    "CARGO_BUILD_RUSTFLAGS",
    "RUSTDOCFLAGS",
    "CARGO_ENCODED_RUSTDOCFLAGS",
    "CARGO_TARGET_DIR",
    "CARGO_BUILD_TARGET_DIR",
    "CARGO_BUILD_TARGET",
    "CARGO_MAKEFLAGS",
    "MAKEFLAGS",
    "MFLAGS",
    "RUSTC_WRAPPER",
    "RUSTC_WORKSPACE_WRAPPER",
    "CARGO_PRIMARY_PACKAGE",
    "CARGO_MANIFEST_DIR",
    "CARGO_MANIFEST_PATH",
    "CARGO_PKG_NAME",
    "OUT_DIR",
    "TARGET",
    "HOST",
    "PROFILE",
    "OPT_LEVEL",
    "DEBUG",
    "NUM_JOBS",
];

/// Prefixes of per-build variables (target cfgs, features) to clear too.
const CLEARED_PREFIXES: &[&str] = &["CARGO_CFG_", "CARGO_FEATURE_"];

fn main() {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let repo = manifest_dir
        .parent()
        .expect("tests/ lives in the repository root");
    let plugins = repo.join("plugins");
    let target_dir = plugins.join("target");

    for watched in [
        plugins.join("Cargo.toml"),
        plugins.join("Cargo.lock"),
        plugins.join("sdk"),
        plugins.join("sdk-js"),
        plugins.join("sdk-python"),
        plugins.join("examples"),
        plugins.join("hostile"),
        plugins.join("toolchains"),
        repo.join("wit"),
    ] {
        println!("cargo:rerun-if-changed={}", watched.display());
    }

    build_plugins(&plugins.join("Cargo.toml"), &target_dir);
    build_other_languages(&plugins.join("toolchains").join("build"));

    let wasm_dir = target_dir.join(TARGET).join("release");
    println!("cargo:rustc-env=PLUGINS_WASM_DIR={}", wasm_dir.display());
    println!(
        "cargo:rustc-env=PLUGINS_TARGET_DIR={}",
        target_dir.display()
    );
}

/// Runs `plugins/toolchains/build`: the JavaScript and Python plugins into
/// `plugins/target/{js,python}/`, installing their pinned toolchains (npm,
/// pip) on first use.
fn build_other_languages(script: &Path) {
    let hint = format!(
        "building the JavaScript and Python plugins failed: `{}` (it needs node, npm \
         and python3 with venv, and reaches the npm registry and PyPI on first use)",
        script.display()
    );
    let status = Command::new("bash")
        .arg(script)
        .stdout(Stdio::from(std::io::stderr()))
        .stderr(Stdio::inherit())
        .status();
    match status {
        Ok(status) if status.success() => {}
        Ok(status) => panic!("{hint} (it exited with {status}; its output is above)"),
        Err(error) => panic!("{hint} (could not run bash: {error})"),
    }
}

/// Runs `cargo build --release --target wasm32-wasip2` on the plugins
/// workspace; panics (failing the build) with a hint when it fails.
fn build_plugins(manifest: &Path, target_dir: &Path) {
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .arg("build")
        .arg("--release")
        .args(["--target", TARGET])
        .arg("--manifest-path")
        .arg(manifest)
        .arg("--target-dir")
        .arg(target_dir)
        // Our stdout is cargo's directive channel: keep the nested build's
        // output on stderr, which cargo shows when the build script fails.
        .stdout(Stdio::from(std::io::stderr()))
        .stderr(Stdio::inherit());
    for var in CLEARED_VARS {
        command.env_remove(var);
    }
    for (var, _) in env::vars_os() {
        let name = var.to_string_lossy();
        if CLEARED_PREFIXES.iter().any(|p| name.starts_with(p)) {
            command.env_remove(&var);
        }
    }

    let hint = format!(
        "building the test plugins failed: `cargo build --release --target {TARGET} \
         --manifest-path {}`. If the target is missing, run `rustup target add {TARGET}`.",
        manifest.display()
    );
    match command.status() {
        Ok(status) if status.success() => {}
        Ok(status) => panic!("{hint} (cargo exited with {status}; its output is above)"),
        Err(error) => panic!("{hint} (could not run cargo: {error})"),
    }
}
