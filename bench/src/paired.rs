//! Two closed-loop phases compared by a ratio (2 and 3, 12 and 13), run in
//! the order first, second, second, first: a drift that grows with time
//! (Redis holding more events, a warmer cache) weighs on both alike. Each
//! run has the same warm-up, length and concurrency, and each phase reports
//! its best run, so a stall caused by something else on the machine costs
//! neither side its figure.

use std::sync::Arc;

use crate::Bench;
use crate::harness::RunningGateway;
use crate::load::{Payload, Target};
use crate::report::Row;
use crate::stats::thousands;

/// Runs of each phase; the best of each is reported.
const ROUNDS: usize = 2;

/// One of the two phases and the runs it had.
pub struct Phase {
    number: u8,
    what: &'static str,
    unit: &'static str,
    target: Target,
    runs: Vec<(f64, Row)>,
}

impl Phase {
    pub fn new(number: u8, what: &'static str, unit: &'static str, target: Target) -> Phase {
        Phase {
            number,
            what,
            unit,
            target,
            runs: Vec::new(),
        }
    }

    fn label(&self) -> String {
        format!("{} {}", self.number, self.what)
    }

    /// The best run's rate and row, its note listing every run's rate.
    fn best(self) -> (f64, Row) {
        let rates: Vec<String> = self.runs.iter().map(|(r, _)| thousands(*r)).collect();
        let (rate, mut row) = self
            .runs
            .into_iter()
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .expect("every phase runs at least once");
        row.note = format!(
            "{}; best of {} runs ({} {})",
            row.note,
            rates.len(),
            rates.join(" and "),
            self.unit
        );
        (rate, row)
    }
}

impl Bench {
    /// Runs both phases [`ROUNDS`] times each, waiting after every run for
    /// `gateway`'s fan-out to catch up; reports each phase's best run and
    /// answers their rates.
    pub async fn paired(
        &mut self,
        mut phases: [Phase; 2],
        payload: &Arc<Payload>,
        gateway: &RunningGateway,
    ) -> anyhow::Result<[f64; 2]> {
        for round in 1..=ROUNDS {
            let order = if round % 2 == 1 { [0, 1] } else { [1, 0] };
            for i in order {
                let phase = &mut phases[i];
                eprintln!(
                    "[{}/13] {} (run {round} of {ROUNDS})",
                    phase.number, phase.what
                );
                let label = phase.label();
                let run = self
                    .closed_row(&label, phase.unit, &phase.target, payload)
                    .await?;
                self.wait_idle(gateway, &phase.number.to_string()).await?;
                phase.runs.push(run);
            }
        }
        let mut rates = [0.0; 2];
        for (rate, phase) in rates.iter_mut().zip(phases) {
            let row;
            (*rate, row) = phase.best();
            self.report.row(row);
        }
        Ok(rates)
    }
}
