//! One plugin call: a fresh `Store` and instance, run under the call's
//! budget, then dropped, so nothing survives to the next call.
//!
//! The CPU budget and the deadline are checked by the epoch callback: the
//! epoch deadline is always one tick ahead, so the callback runs once per
//! tick the plugin is on a CPU; it counts the tick and either interrupts
//! (budget spent or deadline passed) or yields to tokio and re-arms. A tokio
//! timeout around the whole call also bounds time the guest spends
//! suspended rather than running.
//!
//! The call runs on whichever runtime polls it; yielding every tick keeps a
//! spinning plugin from holding that runtime's worker for more than about a
//! tick. The gateway polls calls on a runtime of their own (`crate::admission::lane`),
//! so plugins only ever compete with each other for those threads.

use std::time::{Duration, Instant};

use tokio::sync::SemaphorePermit;
use wasmtime::{Engine, Store, UpdateDeadline};

use super::bindings::{CallState, PluginPre, event_to_wit, result_from_wit, target_to_wit};
use super::limits::{check_answer, classify};
use super::{Budget, LogLine, PluginFailure, PluginInput, Verdict};

/// The outcome of one call. `duration` runs from instantiation to the
/// plugin's return (not the wait for a pool slot); `cpu_ticks` counts the
/// 1 ms epoch ticks the plugin was running for; logs past the caps are
/// counted in `logs_dropped`.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub result: Result<Verdict, PluginFailure>,
    pub duration: Duration,
    pub cpu_ticks: u64,
    pub logs: Vec<LogLine>,
    pub logs_dropped: u32,
}

impl Invocation {
    /// A call that could not start.
    pub(super) fn failed(failure: PluginFailure) -> Invocation {
        Invocation {
            result: Err(failure),
            duration: Duration::ZERO,
            cpu_ticks: 0,
            logs: Vec::new(),
            logs_dropped: 0,
        }
    }
}

/// The per-call caps that do not vary with the tenant's budget.
#[derive(Debug, Clone, Copy)]
pub struct Caps {
    pub max_output_bytes: usize,
    pub max_log_lines: usize,
    pub max_log_bytes: usize,
}

/// Runs `input` through a fresh instance of `pre` within `budget`.
///
/// `_slot` is the call's pool permit: as a parameter it is dropped after the
/// store, even when the call is cancelled, so the pool never holds more
/// instances than there are permits.
pub async fn run(
    engine: &Engine,
    pre: &PluginPre<CallState>,
    input: &PluginInput,
    budget: Budget,
    caps: Caps,
    _slot: SemaphorePermit<'_>,
) -> Invocation {
    let event = event_to_wit(&input.event);
    let target = target_to_wit(&input.target);
    let started = Instant::now();
    let deadline = Duration::from_millis(budget.deadline_ms);
    let memory_cap = usize::try_from(budget.memory_bytes).unwrap_or(usize::MAX);
    let state = CallState::new(memory_cap, caps.max_log_lines, caps.max_log_bytes);
    let mut store = Store::new(engine, state);
    store.limiter(|state| &mut state.memory);
    store.set_epoch_deadline(1);
    let (cpu_budget, deadline_at) = (budget.cpu_ms, started + deadline);
    store.epoch_deadline_callback(move |mut ctx| {
        let state = ctx.data_mut();
        state.ticks += 1;
        if state.ticks >= cpu_budget {
            state.stopped = Some(PluginFailure::CpuBudget);
        } else if Instant::now() >= deadline_at {
            state.stopped = Some(PluginFailure::Deadline);
        } else {
            let yielded = Box::pin(tokio::task::yield_now());
            return Ok(UpdateDeadline::YieldCustom(1, yielded));
        }
        Ok(UpdateDeadline::Interrupt)
    });

    let outcome = tokio::time::timeout(deadline, async {
        let plugin = pre.instantiate_async(&mut store).await?;
        plugin.call_handle(&mut store, &event, &target).await
    })
    .await;
    let result = match outcome {
        Err(_) => Err(PluginFailure::Deadline),
        Ok(Err(error)) => {
            let state = store.data();
            Err(classify(
                &error,
                state.stopped.clone(),
                state.memory.refused(),
            ))
        }
        Ok(Ok(answer)) => check_answer(result_from_wit(answer), caps.max_output_bytes),
    };
    let duration = started.elapsed();
    let state = store.into_data();
    Invocation {
        result,
        duration,
        cpu_ticks: state.ticks,
        logs: state.logs.lines,
        logs_dropped: state.logs.dropped,
    }
}
