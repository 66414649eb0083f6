//! Replay jobs: what `POST /v1/endpoints/{id}/replay` started and how far it
//! got, kept for a day after its last change. The job itself runs in the
//! background ([`crate::delivery::replay`]) and writes its progress here.

use redis::AsyncCommands;
use serde::{Deserialize, Serialize};

use super::{Store, decode_some};
use crate::keys;

/// How long a job's record is kept after its last change.
const KEPT_SECS: u64 = 86_400;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReplayState {
    /// Scanning and queueing.
    Running,
    /// Every kept event since `since` is queued again (or `truncated`).
    Done,
    /// Stopped by an error (`error` says which); replay again to finish.
    Failed,
    /// The instance running it stopped (its progress stopped moving);
    /// replay again to finish.
    Interrupted,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReplayJob {
    pub id: String,
    pub endpoint_id: String,
    /// RFC 3339: events accepted since then are queued again.
    pub since: String,
    pub state: ReplayState,
    /// Events queued again so far.
    pub replayed: usize,
    /// It stopped at the most events one replay queues: replay again from a
    /// later `since` for the rest.
    pub truncated: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub created_at: String,
    /// The job's last progress.
    pub updated_at: String,
}

impl Store {
    pub async fn put_replay(&self, tenant: &str, job: &ReplayJob) -> redis::RedisResult<()> {
        let json = serde_json::to_string(job).expect("a replay job always serialises");
        self.conn()
            .set_ex(keys::replay(tenant, &job.id), json, KEPT_SECS)
            .await
    }

    pub async fn replay(&self, tenant: &str, id: &str) -> redis::RedisResult<Option<ReplayJob>> {
        let key = keys::replay(tenant, id);
        let json: Option<String> = self.conn().get(&key).await?;
        decode_some(&key, json)
    }
}
