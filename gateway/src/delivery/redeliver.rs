//! Redelivery of one dead letter: a fresh task with a full retry schedule,
//! queued before the letter is removed (a crash in between leaves a
//! duplicate, never a loss). A letter from a failed plugin chain runs the
//! chain again first (the plugin may be fixed now).

use crate::chain::{Chain, Outcome};
use crate::model::{DeadStage, Task};
use crate::queue::Queue;
use crate::store::Store;

/// Why a dead letter cannot be redelivered now.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error("no such dead letter")]
    NoLetter,
    #[error("the dead letter's endpoint no longer exists")]
    NoEndpoint,
    #[error("the endpoint is disabled; enable it before redelivering")]
    Disabled,
    #[error("the event is past its retention window")]
    Expired,
    #[error("the plugin chain still does not deliver it: {0}")]
    ChainRefuses(String),
}

/// Queues dead letter `id` of `tenant` again; the task queued, or why not.
/// The outer error is a Redis (or plugin host) failure.
pub async fn redeliver(
    queue: &Queue,
    store: &Store,
    chain: &Chain,
    tenant: &str,
    id: &str,
) -> anyhow::Result<Result<Task, Refused>> {
    let Some(letter) = store.dead_letter(tenant, id).await? else {
        return Ok(Err(Refused::NoLetter));
    };
    let Some(endpoint) = store.endpoint(tenant, &letter.task.endpoint).await? else {
        return Ok(Err(Refused::NoEndpoint));
    };
    if endpoint.disabled {
        return Ok(Err(Refused::Disabled));
    }
    let p = letter.partition;
    if !queue.event_exists(p, tenant, &letter.task.event).await? {
        return Ok(Err(Refused::Expired));
    }
    let mut task = Task {
        attempt: 0,
        ..letter.task.clone()
    };
    if letter.stage == DeadStage::Plugin {
        let Some(body) = store.event_body(p, tenant, &task.event).await? else {
            return Ok(Err(Refused::Expired));
        };
        match chain.run(tenant, &endpoint, &task.event, &body).await? {
            Outcome::Deliver { body, .. } => task.body = body,
            Outcome::Dropped(reason) | Outcome::Failed(reason) => {
                return Ok(Err(Refused::ChainRefuses(reason)));
            }
        }
    }
    queue.enqueue(p, &task).await?;
    store.delete_dead_letter(tenant, id).await?;
    Ok(Ok(task))
}
