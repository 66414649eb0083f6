//! The operator's view of the partitions: which counts instances write
//! with, and each partition's state while `partitions` changes on a
//! running deployment (`crate::partition_keeper`).

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use super::Operator;
use super::openapi::OperatorErrors;
use crate::error::ApiResult;
use crate::model::clock::{ms_to_rfc3339, now_ms};
use crate::partition_keeper::View;
use crate::state::AppState;

/// A partition count some instance writes or wrote new events with.
#[derive(Serialize, ToSchema)]
struct WriterOut {
    partitions: u16,
    /// When an instance last said it writes with this count.
    #[schema(format = DateTime)]
    last_seen: String,
    /// Said within the last 10 s: some instance writes with it now.
    live: bool,
}

/// What a partition is doing.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
enum PartitionState {
    /// Instances write new events into it.
    Active,
    /// No instance writes into it, but it holds work, which is delivered.
    Draining,
    /// No instance writes into it and it holds no work: no instance reads it.
    Retired,
}

#[derive(Serialize, ToSchema)]
struct PartitionOut {
    partition: u16,
    state: PartitionState,
}

#[derive(Serialize, ToSchema)]
struct PartitionsOut {
    writers: Vec<WriterOut>,
    partitions: Vec<PartitionOut>,
}

/// Show the partitions
///
/// The partition counts instances write with, and each partition's state.
/// After `partitions` is lowered, the partitions above the new count drain
/// (every instance keeps reading them until no work is left in them), then
/// retire.
#[utoipa::path(
    get,
    path = "/v1/admin/partitions",
    operation_id = "show_partitions",
    tag = "admin",
    security(("operator_token" = [])),
    responses(
        (status = OK, description = "The partition counts and states", body = PartitionsOut),
        OperatorErrors,
    ),
)]
pub async fn show(State(state): State<AppState>, _: Operator) -> ApiResult<Response> {
    let queue = &state.queue;
    let writers = queue.writers().await?;
    let now = now_ms();
    let view = View::of(
        &writers,
        queue.partitions().count(),
        now,
        queue.idempotency_ms(),
    );
    let gone_ms = crate::partition_keeper::GONE_AFTER.as_millis() as u64;
    let writers = writers
        .iter()
        .map(|w| WriterOut {
            partitions: w.partitions,
            last_seen: ms_to_rfc3339(w.seen_ms),
            live: now.saturating_sub(w.seen_ms) < gone_ms,
        })
        .collect();
    let mut partitions = Vec::new();
    for p in 0..view.stored {
        let state = match p < view.live {
            true => PartitionState::Active,
            false if queue.drained(p).await? => PartitionState::Retired,
            false => PartitionState::Draining,
        };
        partitions.push(PartitionOut {
            partition: p,
            state,
        });
    }
    Ok(axum::Json(PartitionsOut {
        writers,
        partitions,
    })
    .into_response())
}
