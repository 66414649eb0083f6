//! Parked tasks flow again: every endpoint with tasks parked whose
//! handshake no longer holds them (or that is gone) has them moved back
//! into its partition's delivery stream, oldest first.

use crate::queue::Queue;
use crate::store::EndpointLists;
use crate::telemetry::Metrics;

/// Tasks moved back per script call.
const RELEASE_BATCH: usize = 500;

/// One pass over every partition's parked endpoints (`required`: whether
/// verification is required now).
pub async fn release_ready(
    queue: &Queue,
    endpoints: &EndpointLists,
    required: bool,
    metrics: &Metrics,
) -> anyhow::Result<()> {
    for p in queue.partitions().stored() {
        for (tenant, id) in queue.parked_endpoints(p).await? {
            let list = endpoints.of(&tenant).await?;
            let waits = list.get(&id).is_some_and(|e| e.held(required).is_some());
            if waits {
                continue;
            }
            loop {
                let moved = queue.release_parked(p, &tenant, &id, RELEASE_BATCH).await?;
                metrics.deliveries_released.add(moved as u64);
                if moved > 0 {
                    tracing::info!(%tenant, endpoint = %id, partition = p, moved, "parked deliveries released");
                }
                if moved < RELEASE_BATCH {
                    break;
                }
            }
        }
    }
    Ok(())
}
