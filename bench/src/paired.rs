//! Two closed-loop phases compared by a ratio (2 and 3, 12 and 13, 17 and
//! 18, 21 and 22), run in the order first, second, second, first: a drift
//! that grows with time (Redis holding more events, a warmer cache) weighs
//! on both alike. Each run has the same warm-up, length and concurrency,
//! and each phase reports its best run, so a stall caused by something else
//! on the machine costs neither side its figure. A phase may bring its own
//! events, a setting made before each of its runs (the encryption key of
//! 17 and 18), and a wait after each run for every delivery its events
//! made (21 and 22).

use std::sync::Arc;
use std::time::Duration;

use crate::harness::{self, RunningGateway};
use crate::load::{Payload, Target};
use crate::report::Row;
use crate::stats::thousands;
use crate::{Bench, PHASES};

/// Runs of each phase; the best of each is reported.
const ROUNDS: usize = 2;

/// One of the two phases and the runs it had.
pub struct Phase {
    number: u8,
    what: &'static str,
    unit: &'static str,
    target: Target,
    /// Its own events, instead of the pair's.
    payload: Option<Arc<Payload>>,
    /// Called before each of its runs.
    setup: Option<fn()>,
    /// The longest wait after each run for every delivery to finish.
    drain: Option<Duration>,
    runs: Vec<(f64, Row)>,
}

impl Phase {
    pub fn new(number: u8, what: &'static str, unit: &'static str, target: Target) -> Phase {
        Phase {
            number,
            what,
            unit,
            target,
            payload: None,
            setup: None,
            drain: None,
            runs: Vec::new(),
        }
    }

    /// Posts `payload`'s events rather than those given to [`Bench::paired`].
    pub fn with_payload(mut self, payload: Arc<Payload>) -> Phase {
        self.payload = Some(payload);
        self
    }

    /// Calls `setup` before each run of this phase.
    pub fn before_each(mut self, setup: fn()) -> Phase {
        self.setup = Some(setup);
        self
    }

    /// After each run, waits up to `timeout` until no delivery is left.
    pub fn drained(mut self, timeout: Duration) -> Phase {
        self.drain = Some(timeout);
        self
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
                    "[{}/{PHASES}] {} (run {round} of {ROUNDS})",
                    phase.number, phase.what
                );
                if let Some(setup) = phase.setup {
                    setup();
                }
                let label = phase.label();
                let events = phase.payload.as_ref().unwrap_or(payload);
                let run = self
                    .closed_row(&label, phase.unit, &phase.target, events)
                    .await?;
                let number = phase.number.to_string();
                self.wait_idle(gateway, &number).await?;
                if let Some(timeout) = phase.drain {
                    self.wait_delivered(gateway, &number, timeout).await?;
                }
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

    /// Waits up to `timeout` for every delivery left by `phase` to finish,
    /// or notes that they did not.
    pub(crate) async fn wait_delivered(
        &mut self,
        gateway: &RunningGateway,
        phase: &str,
        timeout: Duration,
    ) -> anyhow::Result<()> {
        if !harness::wait_delivered(&mut self.conn, gateway.partitions, timeout).await? {
            self.report.note(format!(
                "the deliveries of phase {phase} were not all made within {timeout:?}"
            ));
        }
        Ok(())
    }
}
