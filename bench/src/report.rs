//! The printed result: one table of measured figures, the ratios between
//! them, and a PASS/MISS line per target. Collected while the phases run,
//! printed once at the end so progress lines never break the table.

use std::fmt::Write;

use crate::usage::Usage;

/// One measured line of the table.
pub struct Row {
    pub label: String,
    pub rate: String,
    pub p50: String,
    pub p99: String,
    /// CPU and Redis commands over the phase.
    pub usage: Usage,
    /// Events (or requests) the phase handled, warm-up included: the
    /// divisor of the per-event costs.
    pub events: u64,
    pub note: String,
}

/// One target and whether the run met it.
struct Verdict {
    target: String,
    actual: String,
    pass: bool,
}

/// Everything to print, in order.
#[derive(Default)]
pub struct Report {
    header: Vec<String>,
    rows: Vec<Row>,
    ratios: Vec<(String, f64)>,
    verdicts: Vec<Verdict>,
    notes: Vec<String>,
}

impl Report {
    /// A line printed above the table (set-up, persistence, load shape).
    pub fn header(&mut self, line: impl Into<String>) {
        self.header.push(line.into());
    }

    pub fn row(&mut self, row: Row) {
        self.rows.push(row);
    }

    /// `numerator / denominator`, printed as `0.72x`.
    pub fn ratio(&mut self, name: &str, numerator: f64, denominator: f64) -> f64 {
        let value = if denominator > 0.0 {
            numerator / denominator
        } else {
            0.0
        };
        self.ratios.push((name.to_string(), value));
        value
    }

    pub fn verdict(&mut self, target: &str, actual: String, pass: bool) {
        self.verdicts.push(Verdict {
            target: target.to_string(),
            actual,
            pass,
        });
    }

    /// A remark printed after the targets (errors, duplicates, timeouts).
    pub fn note(&mut self, line: impl Into<String>) {
        self.notes.push(line.into());
    }

    /// Whether every target was met.
    pub fn all_passed(&self) -> bool {
        self.verdicts.iter().all(|v| v.pass)
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "\n== webhook gateway benchmark ==");
        for line in &self.header {
            let _ = writeln!(out, "{line}");
        }
        let label_width = self.rows.iter().map(|r| r.label.len()).max().unwrap_or(0);
        let _ = writeln!(
            out,
            "\n{:<label_width$}  {:>14}  {:>10}  {:>10}  {:>14}  {:>13}  note",
            "measurement", "throughput", "p50", "p99", "cores own/rds/oth", "cpu us/ev"
        );
        let _ = writeln!(out, "{}", "-".repeat(label_width + 80));
        for r in &self.rows {
            let u = &r.usage;
            let cores = format!("{:.2} {:.2} {:.2}", u.own, u.redis, u.others);
            let (own_us, redis_us) = u.cpu_per_event_us(r.events);
            let cost = format!("{own_us:.0}+{redis_us:.0}");
            let _ = writeln!(
                out,
                "{:<label_width$}  {:>14}  {:>10}  {:>10}  {cores:>17}  {cost:>13}  {}",
                r.label, r.rate, r.p50, r.p99, r.note
            );
        }
        let _ = writeln!(out, "\nredis commands per event");
        for r in &self.rows {
            let commands = r.usage.commands_per_event(r.events);
            if !commands.is_empty() {
                let _ = writeln!(out, "  {:<label_width$}  {commands}", r.label);
            }
        }
        if !self.ratios.is_empty() {
            let _ = writeln!(out, "\nratios");
            let width = self.ratios.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
            for (name, value) in &self.ratios {
                let _ = writeln!(out, "  {name:<width$} = {value:.2}x");
            }
        }
        if !self.verdicts.is_empty() {
            let _ = writeln!(out, "\ntargets");
            let width = self
                .verdicts
                .iter()
                .map(|v| v.target.len())
                .max()
                .unwrap_or(0);
            for v in &self.verdicts {
                let mark = if v.pass { "PASS" } else { "MISS" };
                let _ = writeln!(out, "  {:<width$}  {:>12}  {mark}", v.target, v.actual);
            }
        }
        for line in &self.notes {
            let _ = writeln!(out, "note: {line}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_shows_rows_ratios_and_verdicts() {
        let mut report = Report::default();
        report.header("persistence: none");
        report.row(Row {
            label: "gateway ingest".into(),
            rate: "7,000 ev/s".into(),
            p50: "1.00 ms".into(),
            p99: "2.00 ms".into(),
            usage: Usage {
                own: 1.25,
                redis: 0.5,
                seconds: 2.0,
                ..Usage::default()
            },
            events: 10_000,
            note: String::new(),
        });
        assert_eq!(report.ratio("ingest / bare handler", 7.0, 10.0), 0.7);
        assert_eq!(report.ratio("nothing / zero", 1.0, 0.0), 0.0);
        report.verdict("ingest / bare handler >= 0.60x", "0.70x".into(), true);
        assert!(report.all_passed());
        report.verdict("p99 < 25 ms", "30.00 ms".into(), false);
        assert!(!report.all_passed());
        report.note("2 requests failed");
        let text = report.render();
        for expected in [
            "persistence: none",
            "gateway ingest",
            "7,000 ev/s",
            "1.25 0.50 0.00",
            "250+100",
            "ingest / bare handler = 0.70x",
            "PASS",
            "MISS",
            "note: 2 requests failed",
        ] {
            assert!(text.contains(expected), "{expected} missing from\n{text}");
        }
    }
}
