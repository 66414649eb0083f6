//! The per-call bounds a plugin runs under, as plain data: the memory
//! limiter wasmtime consults, the capped log capture, the output checks, and
//! how a wasmtime error becomes a [`PluginFailure`].
//!
//! The CPU budget and the deadline are enforced in `call.rs` (an epoch
//! callback and a tokio timeout); this module only tells which one fired.

use wasmtime::{ResourceLimiter, Trap};

use super::denied::Denied;
use super::{LogLine, PluginFailure, Verdict};

/// Caps the linear memory of one call's store at `cap` bytes, summed over
/// all the component's memories, and remembers whether it refused a growth
/// (so the trap that usually follows, an allocator abort, is reported as
/// [`PluginFailure::Memory`]).
#[derive(Debug)]
pub struct MemoryLimiter {
    cap: usize,
    used: usize,
    refused: bool,
}

impl MemoryLimiter {
    pub fn new(cap: usize) -> MemoryLimiter {
        MemoryLimiter {
            cap,
            used: 0,
            refused: false,
        }
    }

    /// Whether a memory growth was refused during the call.
    pub fn refused(&self) -> bool {
        self.refused
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let used = self.used.saturating_add(desired.saturating_sub(current));
        if used > self.cap {
            self.refused = true;
            return Ok(false);
        }
        self.used = used;
        Ok(true)
    }

    /// Tables are bounded by the pool's `table_elements`.
    fn table_growing(
        &mut self,
        _current: usize,
        _desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(true)
    }
}

/// The log lines of one call, capped in number and total message bytes;
/// lines past either cap are dropped and counted.
#[derive(Debug)]
pub struct LogCapture {
    max_lines: usize,
    max_bytes: usize,
    bytes: usize,
    pub lines: Vec<LogLine>,
    pub dropped: u32,
}

impl LogCapture {
    pub fn new(max_lines: usize, max_bytes: usize) -> LogCapture {
        LogCapture {
            max_lines,
            max_bytes,
            bytes: 0,
            lines: Vec::new(),
            dropped: 0,
        }
    }

    pub fn push(&mut self, level: &str, message: String) {
        if self.lines.len() >= self.max_lines || self.bytes + message.len() > self.max_bytes {
            self.dropped = self.dropped.saturating_add(1);
            return;
        }
        self.bytes += message.len();
        self.lines.push(LogLine {
            level: level.to_string(),
            message,
        });
    }
}

/// Applies the output checks to a plugin's answer: at most `limit` bytes
/// (a verdict's strings and data, or an error's message), and a delivered
/// event's `data` must be one JSON value.
pub fn check_answer(
    answer: Result<Verdict, PluginFailure>,
    limit: usize,
) -> Result<Verdict, PluginFailure> {
    let bytes = match &answer {
        Ok(verdict) => verdict_size(verdict),
        Err(PluginFailure::PluginError { message, .. }) => message.len(),
        Err(_) => 0,
    };
    if bytes > limit {
        return Err(PluginFailure::OutputTooLarge { bytes, limit });
    }
    let verdict = answer?;
    if let Verdict::Deliver(event) = &verdict {
        serde_json::from_slice::<serde::de::IgnoredAny>(&event.data).map_err(|e| {
            PluginFailure::InvalidOutput(format!("the delivered event's data is not JSON: {e}"))
        })?;
    }
    Ok(verdict)
}

/// The bytes a verdict carries across the boundary: every string and the
/// data of a delivered event, or a drop's reason.
fn verdict_size(verdict: &Verdict) -> usize {
    match verdict {
        Verdict::Deliver(e) => {
            let metadata: usize = e.metadata.iter().map(|(k, v)| k.len() + v.len()).sum();
            e.id.len() + e.event_type.len() + e.timestamp.len() + e.data.len() + metadata
        }
        Verdict::Drop(reason) => reason.len(),
    }
}

/// What stopped a call that ended in a wasmtime error: `stopped` is what
/// the epoch callback interrupted it for (CPU budget or deadline), and
/// `memory_refused` whether the memory limiter refused a growth.
pub fn classify(
    error: &wasmtime::Error,
    stopped: Option<PluginFailure>,
    memory_refused: bool,
) -> PluginFailure {
    if let Some(Denied(import)) = error.downcast_ref::<Denied>() {
        return PluginFailure::Denied(import.clone());
    }
    let trap = error.downcast_ref::<Trap>();
    if let (Some(Trap::Interrupt), Some(stopped)) = (trap, stopped) {
        return stopped;
    }
    if memory_refused {
        return PluginFailure::Memory;
    }
    match trap {
        Some(trap) => PluginFailure::Trap(trap.to_string()),
        None => PluginFailure::Trap(format!("{error:#}")),
    }
}

#[cfg(test)]
mod tests {
    use super::super::PluginEvent;
    use super::*;

    fn event(data: &str) -> PluginEvent {
        PluginEvent {
            id: "evt_1".into(),
            event_type: "order.created".into(),
            schema_version: Some(1),
            timestamp: "2026-01-31T12:00:00Z".into(),
            data: data.as_bytes().to_vec(),
            metadata: vec![("tenant-id".into(), "t1".into())],
        }
    }

    #[test]
    fn memory_is_capped_across_memories_and_refusal_is_remembered() {
        let mut limiter = MemoryLimiter::new(4 << 20);
        assert!(limiter.memory_growing(0, 2 << 20, None).unwrap());
        assert!(limiter.memory_growing(0, 1 << 20, None).unwrap());
        assert!(!limiter.refused());
        assert!(!limiter.memory_growing(2 << 20, 4 << 20, None).unwrap());
        assert!(limiter.refused());
        assert!(limiter.memory_growing(1 << 20, 2 << 20, None).unwrap());
    }

    #[test]
    fn logs_are_capped_by_lines_and_bytes() {
        let mut logs = LogCapture::new(2, 100);
        logs.push("info", "one".into());
        logs.push("warn", "x".repeat(200));
        logs.push("debug", "two".into());
        logs.push("error", "three".into());
        let kept: Vec<_> = logs.lines.iter().map(|l| l.message.as_str()).collect();
        assert_eq!(kept, ["one", "two"]);
        assert_eq!(logs.lines[1].level, "debug");
        assert_eq!(logs.dropped, 2);
    }

    #[test]
    fn output_size_counts_every_string() {
        let e = event("{}");
        assert_eq!(verdict_size(&Verdict::Deliver(e)), 5 + 13 + 20 + 2 + 11);
        assert_eq!(verdict_size(&Verdict::Drop("nope".into())), 4);
    }

    #[test]
    fn answers_are_capped_and_delivered_data_must_be_json() {
        let ok = |data: &str| check_answer(Ok(Verdict::Deliver(event(data))), 1024);
        assert!(ok(r#"{"a": [1, 2]}"#).is_ok());
        assert!(matches!(ok("{oops"), Err(PluginFailure::InvalidOutput(_))));
        assert!(matches!(ok("1 2"), Err(PluginFailure::InvalidOutput(_))));
        assert!(check_answer(Ok(Verdict::Drop("not json at all".into())), 1024).is_ok());
        let big = "x".repeat(2000);
        assert!(matches!(
            check_answer(Ok(Verdict::Drop(big.clone())), 1024),
            Err(PluginFailure::OutputTooLarge {
                bytes: 2000,
                limit: 1024
            })
        ));
        let error = PluginFailure::PluginError {
            kind: "failed".into(),
            message: big,
        };
        assert!(matches!(
            check_answer(Err(error), 1024),
            Err(PluginFailure::OutputTooLarge { bytes: 2000, .. })
        ));
    }

    #[test]
    fn errors_are_classified_by_what_fired() {
        let interrupt = wasmtime::Error::from(Trap::Interrupt);
        let stopped = |f: PluginFailure| classify(&interrupt, Some(f.clone()), false) == f;
        assert!(stopped(PluginFailure::CpuBudget));
        assert!(stopped(PluginFailure::Deadline));
        let unreachable = wasmtime::Error::from(Trap::UnreachableCodeReached);
        assert_eq!(classify(&unreachable, None, true), PluginFailure::Memory);
        let PluginFailure::Trap(message) = classify(&unreachable, None, false) else {
            panic!("expected a trap");
        };
        assert!(message.contains("unreachable"), "{message}");
        let denied = wasmtime::Error::new(Denied("wasi:http/outgoing-handler#handle".into()));
        assert_eq!(
            classify(&denied, None, false),
            PluginFailure::Denied("wasi:http/outgoing-handler#handle".into())
        );
        let other = wasmtime::Error::msg("host failure");
        assert_eq!(
            classify(&other, None, false),
            PluginFailure::Trap("host failure".into())
        );
    }
}
