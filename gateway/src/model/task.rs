//! A delivery task (one event to one endpoint, or a batch of them), what
//! fan-out decided per endpoint, the status of an event per endpoint, and
//! dead letters.

use serde::{Deserialize, Serialize};

use super::clock::Time;
use super::{EndpointId, EventId, TenantId};

/// One delivery of one event to one endpoint, as queued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Task {
    #[serde(rename = "t")]
    pub tenant: TenantId,
    #[serde(rename = "e")]
    pub event: EventId,
    #[serde(rename = "n")]
    pub endpoint: EndpointId,
    /// The `webhook-id`: the same for every attempt of this event to this endpoint.
    #[serde(rename = "m")]
    pub msg_id: String,
    /// Attempts already made.
    #[serde(rename = "a")]
    pub attempt: u32,
    /// The body to send: a plugin's rewrite of the event for this endpoint,
    /// or the event's own when fan-out copied it in (a small event to few
    /// endpoints); otherwise the stored event's body is read and sent. A
    /// task carrying its body is sent even if its event passed its
    /// retention while the task waited.
    #[serde(
        rename = "b",
        default,
        skip_serializing_if = "Option::is_none",
        with = "super::sealed::optional"
    )]
    pub body: Option<String>,
    /// The endpoint rate slot (ms) this task reserved when it was throttled;
    /// it goes without taking another one when it comes back at that time.
    #[serde(rename = "r", default, skip_serializing_if = "Option::is_none")]
    pub reserved: Option<u64>,
    /// A batch task carries its member tasks (each one event of the same
    /// endpoint); its `msg_id` is then the batch id and `event` is empty.
    #[serde(rename = "g", default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<Task>,
}

impl Task {
    pub fn new(tenant: &TenantId, event: &EventId, endpoint: &EndpointId) -> Task {
        let digest = super::sha256_hex(format!("{tenant}\0{event}\0{endpoint}").as_bytes());
        Task {
            tenant: tenant.clone(),
            event: event.clone(),
            endpoint: endpoint.clone(),
            msg_id: format!("msg_{}", &digest[..32]),
            attempt: 0,
            body: None,
            reserved: None,
            members: Vec::new(),
        }
    }

    /// A batch of `members` (tasks of one tenant and endpoint), with the
    /// stable batch id `batch_<hash of the member msg ids>`.
    pub fn batch(tenant: &TenantId, endpoint: &EndpointId, members: Vec<Task>) -> Task {
        let ids: Vec<&str> = members.iter().map(|m| m.msg_id.as_str()).collect();
        let digest = super::sha256_hex(ids.join("\0").as_bytes());
        Task {
            tenant: tenant.clone(),
            event: EventId::default(),
            endpoint: endpoint.clone(),
            msg_id: format!("batch_{}", &digest[..32]),
            attempt: 0,
            body: None,
            reserved: None,
            members,
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a task always serialises")
    }

    /// The deliveries this task carries: its members if it is a batch,
    /// else itself.
    pub fn members(&self) -> &[Task] {
        match self.members.is_empty() {
            true => std::slice::from_ref(self),
            false => &self.members,
        }
    }
}

/// What fan-out decided for one endpoint.
#[derive(Debug, Clone)]
pub enum Decision {
    /// Queue this task; `note` is recorded on its pending status.
    Deliver { task: Task, note: Option<String> },
    /// Queue nothing; record this status (dropped by a plugin, dead-lettered).
    Settled {
        endpoint: EndpointId,
        status: Status,
    },
}

/// The status of one event for one endpoint, kept in the event hash.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct Status {
    pub status: StatusKind,
    pub attempts: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_status_code: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub next_attempt_at: Option<Time>,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Time,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StatusKind {
    Pending,
    Retrying,
    Delivered,
    DeadLettered,
    Dropped,
}

impl Status {
    pub fn pending(attempts: u32) -> Status {
        Status::new(StatusKind::Pending, attempts)
    }

    pub fn new(status: StatusKind, attempts: u32) -> Status {
        Status {
            status,
            attempts,
            last_status_code: None,
            last_error: None,
            next_attempt_at: None,
            updated_at: Time::now(),
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a status always serialises")
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeadStage {
    #[default]
    Delivery,
    Plugin,
}

/// A task that ran out of attempts (or hit a disabled endpoint, or failed
/// in its plugin chain), with why.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeadLetter {
    pub task: Task,
    pub partition: u16,
    /// Where it died: `delivery` (out of attempts, endpoint gone or disabled)
    /// or `plugin` (the endpoint's plugin chain failed; redelivery runs it again).
    #[serde(default)]
    pub stage: DeadStage,
    pub error: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_status_code: Option<u16>,
    pub dead_at: Time,
}
