//! Tracing set-up and the gateway's metrics, rendered as Prometheus text at
//! `/metrics`. Metrics are plain atomic counters and gauges: cheap to bump on
//! hot paths, and named here in one place.

use std::fmt::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// Starts the tracing subscriber (`RUST_LOG` filters; default `info`).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

#[derive(Debug, Default, Clone)]
pub struct Counter(Arc<AtomicU64>);

impl Counter {
    pub fn inc(&self) {
        self.add(1);
    }

    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

#[derive(Debug, Default, Clone)]
pub struct Gauge(Arc<AtomicI64>);

impl Gauge {
    pub fn add(&self, n: i64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Every metric the gateway exports. Cloning shares the same values.
#[derive(Debug, Default, Clone)]
pub struct Metrics {
    pub events_accepted: Counter,
    pub events_duplicate: Counter,
    pub tasks_fanned_out: Counter,
    pub deliveries_succeeded: Counter,
    pub deliveries_failed: Counter,
    pub deliveries_dead_lettered: Counter,
    pub deliveries_dropped: Counter,
    pub entries_quarantined: Counter,
    pub endpoints_disabled_gone: Counter,
    pub retries_scheduled: Counter,
    pub deliveries_held_back: Counter,
    pub deliveries_parked: Counter,
    pub deliveries_released: Counter,
    pub verifications_passed: Counter,
    pub verifications_failed: Counter,
    pub endpoints_quarantined: Counter,
    pub endpoints_recovered: Counter,
    pub deliveries_failed_over: Counter,
    pub deliveries_polled: Counter,
    pub retries_moved: Counter,
    pub tasks_reclaimed: Counter,
    pub redis_data_loss: Counter,
    pub plugin_calls: Counter,
    pub plugin_failures: Counter,
    pub plugin_compiles: Counter,
    pub plugin_artifacts_loaded: Counter,
    pub events_dropped_by_plugins: Counter,
    pub deliveries_in_flight: Gauge,
}

impl Metrics {
    pub fn render(&self) -> String {
        let counters: [(&str, &str, &Counter); 27] = [
            (
                "gateway_events_accepted_total",
                "Events stored on ingest.",
                &self.events_accepted,
            ),
            (
                "gateway_events_duplicate_total",
                "Ingest requests answered from an idempotency record.",
                &self.events_duplicate,
            ),
            (
                "gateway_tasks_fanned_out_total",
                "Delivery tasks created by fan-out.",
                &self.tasks_fanned_out,
            ),
            (
                "gateway_deliveries_succeeded_total",
                "Attempts answered with 2xx.",
                &self.deliveries_succeeded,
            ),
            (
                "gateway_deliveries_failed_total",
                "Attempts that failed (any non-2xx, timeout or connection error).",
                &self.deliveries_failed,
            ),
            (
                "gateway_deliveries_dead_lettered_total",
                "Tasks moved to a dead-letter stream.",
                &self.deliveries_dead_lettered,
            ),
            (
                "gateway_deliveries_dropped_total",
                "Tasks dropped because their endpoint or event no longer exists.",
                &self.deliveries_dropped,
            ),
            (
                "gateway_plugin_compiles_total",
                "Plugin components compiled from their bytes (uploads and cache misses).",
                &self.plugin_compiles,
            ),
            (
                "gateway_plugin_artifacts_loaded_total",
                "Plugin components loaded from their kept compiled code instead of compiled.",
                &self.plugin_artifacts_loaded,
            ),
            (
                "gateway_entries_quarantined_total",
                "Stream entries that did not decode, moved to a quarantine stream.",
                &self.entries_quarantined,
            ),
            (
                "gateway_endpoints_disabled_gone_total",
                "Endpoints disabled after answering 410 Gone.",
                &self.endpoints_disabled_gone,
            ),
            (
                "gateway_retries_scheduled_total",
                "Tasks put in a retry set.",
                &self.retries_scheduled,
            ),
            (
                "gateway_deliveries_held_back_total",
                "Tasks rescheduled by endpoint flow control (rate, in-flight cap, circuit), not as attempts.",
                &self.deliveries_held_back,
            ),
            (
                "gateway_deliveries_parked_total",
                "Tasks parked because their endpoint has not passed its handshake, not as attempts.",
                &self.deliveries_parked,
            ),
            (
                "gateway_deliveries_released_total",
                "Parked tasks moved back into a delivery stream once their endpoint could take them.",
                &self.deliveries_released,
            ),
            (
                "gateway_verifications_passed_total",
                "Endpoint ownership handshakes answered right.",
                &self.verifications_passed,
            ),
            (
                "gateway_verifications_failed_total",
                "Endpoint ownership handshakes not answered right.",
                &self.verifications_failed,
            ),
            (
                "gateway_endpoints_quarantined_total",
                "Endpoints quarantined for failing (their events parked).",
                &self.endpoints_quarantined,
            ),
            (
                "gateway_endpoints_recovered_total",
                "Quarantined endpoints that passed a probe and got their parked events.",
                &self.endpoints_recovered,
            ),
            (
                "gateway_deliveries_failed_over_total",
                "Requests sent to an endpoint's failover URL while its circuit was open or it was quarantined.",
                &self.deliveries_failed_over,
            ),
            (
                "gateway_deliveries_polled_total",
                "Events handed to a poll-mode endpoint's channel.",
                &self.deliveries_polled,
            ),
            (
                "gateway_retries_moved_total",
                "Due retries moved back into a delivery stream.",
                &self.retries_moved,
            ),
            (
                "gateway_tasks_reclaimed_total",
                "Entries taken over from a consumer that stopped.",
                &self.tasks_reclaimed,
            ),
            (
                "gateway_redis_data_loss_total",
                "Times a stream's consumer group was found missing and recreated.",
                &self.redis_data_loss,
            ),
            (
                "gateway_plugin_calls_total",
                "Plugin calls made by fan-out and redelivery.",
                &self.plugin_calls,
            ),
            (
                "gateway_plugin_failures_total",
                "Plugin calls that trapped, ran out of budget or returned an error.",
                &self.plugin_failures,
            ),
            (
                "gateway_events_dropped_by_plugins_total",
                "Deliveries not made because a plugin chain dropped the event.",
                &self.events_dropped_by_plugins,
            ),
        ];
        let mut out = String::new();
        for (name, help, counter) in counters {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                counter.get()
            );
        }
        let _ = writeln!(
            out,
            "# HELP gateway_deliveries_in_flight HTTP deliveries under way.\n# TYPE gateway_deliveries_in_flight gauge\ngateway_deliveries_in_flight {}",
            self.deliveries_in_flight.get()
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_shows_every_metric_with_its_value() {
        let m = Metrics::default();
        m.events_accepted.add(3);
        m.deliveries_in_flight.add(2);
        let text = m.render();
        assert!(text.contains("gateway_events_accepted_total 3\n"));
        assert!(text.contains(
            "# TYPE gateway_deliveries_in_flight gauge\ngateway_deliveries_in_flight 2\n"
        ));
    }
}
