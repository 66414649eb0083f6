//! Batching endpoints: fresh tasks are collected per endpoint ([`super::batch::Collector`])
//! and go through the pipeline as one batch task when the collection is
//! full or its `max_wait_ms` is over.

use std::sync::Arc;
use std::time::Duration;

use super::batch::{self, Added, CollectKey};
use super::{Inner, Unit};
use crate::model::Task;
use crate::queue::Entry;
use crate::store::Batching;

impl Inner {
    /// Adds a fresh task to its endpoint's collection; sends the batch when
    /// it is full. The first task of a collection starts its `max_wait_ms` timer.
    pub(super) async fn collect(
        self: &Arc<Self>,
        p: u16,
        entry: &Entry,
        task: Task,
        batching: Batching,
    ) -> anyhow::Result<()> {
        let key: CollectKey = (p, task.tenant.clone(), task.endpoint.clone());
        match self
            .collector
            .add(key.clone(), &entry.id, task, batching.max_events)
        {
            Added::Full(full) => self.send_collected(p, full).await,
            Added::Started(seq) => {
                let inner = self.clone();
                let wait = Duration::from_millis(batching.max_wait_ms);
                self.tracker
                    .spawn(async move { inner.flush_after(key, seq, wait).await });
                Ok(())
            }
            Added::Joined => Ok(()),
        }
    }

    /// Sends collection `seq` of `key` after `wait`, unless it was sent full before.
    pub(super) async fn flush_after(&self, key: CollectKey, seq: u64, wait: Duration) {
        let permit = tokio::select! {
            permit = async {
                tokio::time::sleep(wait).await;
                self.permits.clone().acquire_owned().await
            } => permit,
            () = self.hard_stop.cancelled() => return,
        };
        let Ok(_permit) = permit else { return };
        if let Some(c) = self.collector.take(&key, seq)
            && let Err(e) = self.send_collected(key.0, c).await
        {
            tracing::warn!(partition = key.0, tenant = %key.1, endpoint = %key.2, error = format!("{e:#}"),
                "could not settle a batch; its tasks stay pending and will be taken over");
        }
    }

    pub(super) async fn send_collected(
        &self,
        p: u16,
        collected: batch::Collected,
    ) -> anyhow::Result<()> {
        let Some((entries, task)) = collected.into_batch() else {
            return Ok(());
        };
        let endpoints = self.endpoints.of(&task.tenant).await?;
        let loaded = self.load(p, &task, &endpoints).await?;
        self.run(p, Unit { entries, task }, loaded).await
    }
}
