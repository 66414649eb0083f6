//! Resource usage per phase, read before and after it.
//!
//! CPU, in average cores: this process (the gateway, the load generator and
//! the receiver together), `redis-server`, and everything else on the
//! machine; on a shared machine the last says how much the figures were
//! squeezed by other work. Sources: `/proc/self/task/*/schedstat`
//! (nanoseconds on CPU per thread), Redis's `INFO cpu` (seconds), and the
//! `cpu` line of `/proc/stat` (machine-wide busy and idle time).
//!
//! Redis commands by name, from `INFO commandstats`: divided by the events
//! of a phase, they show the round trips and scripts each event costs.

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::Context;
use redis::aio::ConnectionLike;

/// Counters at one moment.
struct Sample {
    at: Instant,
    own_ns: u64,
    redis_s: f64,
    /// Machine-wide (busy, total) jiffies.
    machine: (u64, u64),
    commands: BTreeMap<String, u64>,
}

/// What a phase used.
#[derive(Debug, Clone, Default)]
pub struct Usage {
    /// Average cores: this process, redis-server, everything else.
    pub own: f64,
    pub redis: f64,
    pub others: f64,
    /// Length of the phase, in seconds.
    pub seconds: f64,
    /// Redis commands run during the phase, by name.
    pub commands: BTreeMap<String, u64>,
}

impl Usage {
    /// CPU microseconds per event: `(this process, redis-server)`.
    pub fn cpu_per_event_us(&self, events: u64) -> (f64, f64) {
        let per = |cores: f64| cores * self.seconds * 1e6 / events.max(1) as f64;
        (per(self.own), per(self.redis))
    }

    /// Redis commands per event, most first, those under 0.05 left out:
    /// `evalsha 3.00, xadd 1.00`.
    pub fn commands_per_event(&self, events: u64) -> String {
        let mut rates: Vec<(&str, f64)> = self
            .commands
            .iter()
            .map(|(name, calls)| (name.as_str(), *calls as f64 / events.max(1) as f64))
            .filter(|(_, rate)| *rate >= 0.05)
            .collect();
        rates.sort_by(|a, b| b.1.total_cmp(&a.1));
        let parts: Vec<String> = rates
            .iter()
            .map(|(name, rate)| format!("{name} {rate:.2}"))
            .collect();
        parts.join(", ")
    }
}

/// Measures from [`Meter::start`] to [`Meter::stop`].
pub struct Meter {
    start: Sample,
}

impl Meter {
    pub async fn start(conn: &mut impl ConnectionLike) -> anyhow::Result<Meter> {
        Ok(Meter {
            start: sample(conn).await?,
        })
    }

    pub async fn stop(&self, conn: &mut impl ConnectionLike) -> anyhow::Result<Usage> {
        let end = sample(conn).await?;
        let start = &self.start;
        let wall = end.at.duration_since(start.at).as_secs_f64().max(1e-9);
        let own = end.own_ns.saturating_sub(start.own_ns) as f64 / 1e9 / wall;
        let redis = (end.redis_s - start.redis_s).max(0.0) / wall;
        let busy = end.machine.0.saturating_sub(start.machine.0) as f64;
        let total = end.machine.1.saturating_sub(start.machine.1) as f64;
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        let machine = if total > 0.0 {
            busy / total * cores
        } else {
            0.0
        };
        let commands = end
            .commands
            .into_iter()
            .map(|(name, calls)| {
                let before = start.commands.get(&name).copied().unwrap_or(0);
                (name, calls.saturating_sub(before))
            })
            .collect();
        Ok(Usage {
            own,
            redis,
            others: (machine - own - redis).max(0.0),
            seconds: wall,
            commands,
        })
    }
}

async fn sample(conn: &mut impl ConnectionLike) -> anyhow::Result<Sample> {
    let cpu: String = redis::cmd("INFO").arg("cpu").query_async(conn).await?;
    let stats: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(conn)
        .await?;
    Ok(Sample {
        at: Instant::now(),
        own_ns: own_cpu_ns()?,
        redis_s: redis_cpu_seconds(&cpu)?,
        machine: machine_jiffies()?,
        commands: parse_commandstats(&stats),
    })
}

/// CPU time of every live thread of this process.
fn own_cpu_ns() -> anyhow::Result<u64> {
    let mut total = 0;
    for task in std::fs::read_dir("/proc/self/task").context("reading /proc/self/task")? {
        let path = task?.path().join("schedstat");
        // A thread may end between listing and reading: it is skipped.
        if let Ok(text) = std::fs::read_to_string(path) {
            total += text
                .split_whitespace()
                .next()
                .and_then(|ns| ns.parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    Ok(total)
}

/// `(busy, total)` from the `cpu` line of `/proc/stat`.
fn machine_jiffies() -> anyhow::Result<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").context("reading /proc/stat")?;
    parse_cpu_line(&stat).context("no cpu line in /proc/stat")
}

fn parse_cpu_line(stat: &str) -> Option<(u64, u64)> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is inside user).
    let at = |i: usize| fields.get(i).copied().unwrap_or(0);
    let idle = at(3) + at(4);
    let busy = at(0) + at(1) + at(2) + at(5) + at(6) + at(7);
    Some((busy, busy + idle))
}

/// `used_cpu_sys + used_cpu_user` from `INFO cpu`, in seconds.
fn redis_cpu_seconds(info: &str) -> anyhow::Result<f64> {
    let field = |name: &str| -> anyhow::Result<f64> {
        let value = info
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .with_context(|| format!("INFO cpu has no {name}"))?;
        Ok(value.trim().parse()?)
    };
    Ok(field("used_cpu_sys")? + field("used_cpu_user")?)
}

/// `cmdstat_xadd:calls=12,usec=...` lines to `{"xadd": 12}`, leaving out
/// the meter's own `INFO` calls.
fn parse_commandstats(info: &str) -> BTreeMap<String, u64> {
    info.lines()
        .filter_map(|line| {
            let (name, stats) = line.strip_prefix("cmdstat_")?.split_once(':')?;
            let calls = stats.split(',').find_map(|s| s.strip_prefix("calls="))?;
            Some((name.to_string(), calls.parse().ok()?))
        })
        .filter(|(name, _)| name != "info")
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cpu_line_splits_into_busy_and_total() {
        let stat = "cpu  100 5 50 800 20 3 2 1 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\n";
        assert_eq!(parse_cpu_line(stat), Some((161, 981)));
        assert_eq!(parse_cpu_line("intr 1 2 3"), None);
        let info = "# CPU\r\nused_cpu_sys:1.50\r\nused_cpu_user:2.25\r\n";
        assert_eq!(redis_cpu_seconds(info).unwrap(), 3.75);
    }

    #[test]
    fn command_stats_become_calls_per_event() {
        let stats = parse_commandstats(
            "# Commandstats\r\ncmdstat_xadd:calls=20,usec=9,usec_per_call=0.3\r\n\
             cmdstat_evalsha:calls=60,usec=1\r\ncmdstat_ping:calls=1\r\ncmdstat_info:calls=9\r\n",
        );
        assert_eq!(stats.get("info"), None);
        let usage = Usage {
            own: 0.5,
            redis: 0.25,
            seconds: 2.0,
            commands: stats,
            ..Usage::default()
        };
        assert_eq!(
            usage.commands_per_event(20),
            "evalsha 3.00, xadd 1.00, ping 0.05"
        );
        assert_eq!(usage.cpu_per_event_us(1_000), (1_000.0, 500.0));
        assert_eq!(Usage::default().commands_per_event(20), "");
    }

    #[test]
    fn this_process_has_spent_some_cpu() {
        assert!(own_cpu_ns().unwrap() > 0);
        let (busy, total) = machine_jiffies().unwrap();
        assert!(busy <= total && total > 0);
    }
}
