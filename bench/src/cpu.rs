//! Where the CPU went during a phase, in average cores: this process (the
//! gateway, the load generator and the receiver together), `redis-server`,
//! and everything else on the machine. On a shared machine the last column
//! says how much the figures were squeezed by other work.
//!
//! Sources: `/proc/self/task/*/schedstat` (nanoseconds on CPU per thread),
//! Redis's `INFO cpu` (seconds), and the first line of `/proc/stat`
//! (machine-wide busy and idle time, as a share of all cores).

use std::time::Instant;

use anyhow::Context;
use redis::aio::ConnectionLike;

/// CPU counters at one moment.
struct Sample {
    at: Instant,
    own_ns: u64,
    redis_s: f64,
    /// Machine-wide (busy, total) jiffies.
    machine: (u64, u64),
}

/// Average cores used over a phase.
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuUse {
    pub own: f64,
    pub redis: f64,
    pub others: f64,
}

/// Measures from [`CpuMeter::start`] to [`CpuMeter::stop`].
pub struct CpuMeter {
    start: Sample,
}

impl CpuMeter {
    pub async fn start(conn: &mut impl ConnectionLike) -> anyhow::Result<CpuMeter> {
        Ok(CpuMeter {
            start: sample(conn).await?,
        })
    }

    pub async fn stop(&self, conn: &mut impl ConnectionLike) -> anyhow::Result<CpuUse> {
        let end = sample(conn).await?;
        let wall = end.at.duration_since(self.start.at).as_secs_f64().max(1e-9);
        let own = end.own_ns.saturating_sub(self.start.own_ns) as f64 / 1e9 / wall;
        let redis = (end.redis_s - self.start.redis_s).max(0.0) / wall;
        let busy = end.machine.0.saturating_sub(self.start.machine.0) as f64;
        let total = end.machine.1.saturating_sub(self.start.machine.1) as f64;
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        let machine = if total > 0.0 {
            busy / total * cores
        } else {
            0.0
        };
        Ok(CpuUse {
            own,
            redis,
            others: (machine - own - redis).max(0.0),
        })
    }
}

async fn sample(conn: &mut impl ConnectionLike) -> anyhow::Result<Sample> {
    let redis_s = redis_cpu_seconds(conn).await?;
    Ok(Sample {
        at: Instant::now(),
        own_ns: own_cpu_ns()?,
        redis_s,
        machine: machine_jiffies()?,
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

/// `used_cpu_sys + used_cpu_user` of the Redis server, in seconds.
async fn redis_cpu_seconds(conn: &mut impl ConnectionLike) -> anyhow::Result<f64> {
    let info: String = redis::cmd("INFO").arg("cpu").query_async(conn).await?;
    let field = |name: &str| -> anyhow::Result<f64> {
        let value = info
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .with_context(|| format!("INFO cpu has no {name}"))?;
        Ok(value.trim().parse()?)
    };
    Ok(field("used_cpu_sys")? + field("used_cpu_user")?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cpu_line_splits_into_busy_and_total() {
        let stat = "cpu  100 5 50 800 20 3 2 1 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\n";
        assert_eq!(parse_cpu_line(stat), Some((161, 981)));
        assert_eq!(parse_cpu_line("intr 1 2 3"), None);
    }

    #[test]
    fn this_process_has_spent_some_cpu() {
        assert!(own_cpu_ns().unwrap() > 0);
        let (busy, total) = machine_jiffies().unwrap();
        assert!(busy <= total && total > 0);
    }
}
