//! The settle step: applies an attempt's [`Outcome`] to its task in one
//! script (`settle.lua`), after writing its dead letters and disabling an
//! endpoint that answered 410 Gone.

use super::{Inner, Outcome, Unit};
use crate::model::{DeadLetter, DeadStage, Task, Time};
use crate::queue::Settle;

impl Inner {
    /// Settle: applies the outcome to the task in one script, after its
    /// dead letters (if any) are written and a 410's endpoint disabled.
    pub(super) async fn settle(&self, p: u16, unit: &Unit, outcome: Outcome) -> anyhow::Result<()> {
        let task = &unit.task;
        let status = outcome.status(task.attempt);
        let n = task.members().len() as u64;
        if let Outcome::Gone { .. } = outcome {
            self.disable_gone(task).await?;
        }
        if let Some(reason) = outcome.dead_letter_reason() {
            self.write_dead_letters(p, task, &outcome, reason).await?;
        }
        let (next, settle) = match &outcome {
            Outcome::Retry {
                attempts, at_ms, ..
            } => (
                Task {
                    attempt: *attempts,
                    reserved: None,
                    ..task.clone()
                },
                Settle::Retry { due_ms: *at_ms },
            ),
            Outcome::HeldBack {
                until_ms, reserved, ..
            } => (
                Task {
                    reserved: *reserved,
                    ..task.clone()
                },
                Settle::Retry { due_ms: *until_ms },
            ),
            Outcome::Parked { .. } => (
                Task {
                    reserved: None,
                    ..task.clone()
                },
                Settle::Park {
                    order_ms: crate::model::clock::now_ms(),
                },
            ),
            _ => (task.clone(), Settle::Finish),
        };
        self.queue
            .settle(p, &unit.entries, &next, settle, &status)
            .await?;
        match outcome {
            Outcome::Retry { .. } => self.metrics.retries_scheduled.inc(),
            Outcome::HeldBack { .. } => self.metrics.deliveries_held_back.inc(),
            Outcome::Parked { .. } => self.metrics.deliveries_parked.add(n),
            Outcome::Dropped { .. } => self.metrics.deliveries_dropped.add(n),
            Outcome::DeadLetter { .. } | Outcome::Gone { .. } => {
                self.metrics.deliveries_dead_lettered.add(n)
            }
            Outcome::Delivered { .. } => {}
        }
        Ok(())
    }

    /// One dead letter per member, each redeliverable on its own.
    pub(super) async fn write_dead_letters(
        &self,
        p: u16,
        task: &Task,
        outcome: &Outcome,
        reason: String,
    ) -> anyhow::Result<()> {
        let status = outcome.status(task.attempt);
        for member in task.members() {
            let letter = DeadLetter {
                task: Task {
                    attempt: status.attempts,
                    reserved: None,
                    ..member.clone()
                },
                partition: p,
                stage: DeadStage::Delivery,
                error: reason.clone(),
                last_status_code: status.last_status_code,
                dead_at: Time::now(),
            };
            self.queue.write_dead_letter(&letter).await?;
        }
        Ok(())
    }

    pub(super) async fn disable_gone(&self, task: &Task) -> anyhow::Result<()> {
        let reason = "the endpoint answered 410 Gone";
        if self
            .store
            .disable_endpoint(&task.tenant, &task.endpoint, reason)
            .await?
        {
            self.metrics.endpoints_disabled_gone.inc();
            let data = serde_json::json!({"endpoint_id": task.endpoint.as_str(), "reason": reason});
            let about = task.endpoint.as_str();
            self.notify
                .send(&task.tenant, crate::notify::DISABLED, about, data)
                .await;
            tracing::info!(tenant = %task.tenant, endpoint = %task.endpoint, "endpoint answered 410 Gone; disabled");
        }
        Ok(())
    }
}
