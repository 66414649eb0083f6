//! The config loader: arbitrary text as the config file and arbitrary
//! `GATEWAY_*` variables over the embedded defaults (`Config::load`), and
//! `parse_duration` on every value. Never a panic: a bad config is an error.
#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use arbitrary::Arbitrary;
use gateway::config::{Config, parse_duration};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    file: Option<&'a str>,
    /// Names without their `GATEWAY_` prefix (`DELIVERY__JITTER`), values.
    env: Vec<(&'a str, &'a str)>,
    other: Vec<(&'a str, &'a str)>,
}

/// This process's config file; each input overwrites it.
fn file_path() -> &'static std::path::Path {
    static PATH: OnceLock<std::path::PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let dir = if std::path::Path::new("/dev/shm").is_dir() {
            std::path::PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        dir.join(format!("gateway-fuzz-config-{}.toml", std::process::id()))
    })
}

/// `redis_ca_file` is read whole: keep the harness off devices that never end.
fn names_a_device(text: &str) -> bool {
    ["/dev/", "/proc/", "/sys/"]
        .iter()
        .any(|d| text.contains(d))
}

fuzz_target!(|input: Input| {
    for (_, value) in input.env.iter().chain(&input.other) {
        check_duration(value);
    }
    if let Some(text) = input.file {
        check_duration(text);
    }
    let texts = input
        .file
        .into_iter()
        .chain(input.env.iter().flat_map(|(n, v)| [*n, *v]));
    if texts.clone().any(names_a_device) {
        return;
    }
    let env: Vec<(String, String)> = input
        .env
        .iter()
        .map(|(name, value)| (format!("GATEWAY_{name}"), value.to_string()))
        .chain(
            input
                .other
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string())),
        )
        .filter(|(n, _)| !names_a_device(n))
        .collect();
    if env
        .iter()
        .any(|(n, v)| n.starts_with("GATEWAY_") && names_a_device(v))
    {
        return;
    }
    let file = input.file.map(|text| {
        std::fs::write(file_path(), text).expect("write the config file");
        file_path()
    });
    if let Ok(config) = Config::load(file, env) {
        // What `validate` promises the rest of the gateway.
        assert!((1..=1024).contains(&config.partitions));
        assert!(!config.delivery.retry_schedule.is_empty());
        assert!((0.0..=1.0).contains(&config.delivery.jitter));
        let schedule: Duration = config.delivery.retry_schedule.iter().sum();
        assert!(config.ingest.retention > schedule);
    }
});

fn check_duration(text: &str) {
    if let Ok(d) = parse_duration(text) {
        let digits: String = text
            .trim()
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        let n: u128 = digits.parse().expect("a duration starts with digits");
        let unit: u128 = match &text.trim()[digits.len()..] {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "" => 0,
            other => panic!("accepted the unit {other:?}"),
        };
        assert_eq!(d.as_millis(), n * unit, "{text:?}");
    }
}
