//! The domain model, shared by every layer: ids and digests, times, events
//! as ingested, delivery tasks and their statuses, dead letters, signing
//! secrets and keys, API key scopes, who made a change, sealing at rest,
//! field errors and schema compatibility reports. A leaf: it imports nothing
//! from the rest of the crate.

mod actor;
pub mod clock;
mod event;
mod field_error;
mod ids;
mod report;
mod scope;
pub mod sealed;
mod secret;
mod signing_key;
mod task;

pub use actor::Actor;
pub use clock::Time;
pub use event::{IngestEntry, entry_event_id, entry_ms, entry_of_event};
pub use field_error::FieldError;
pub use ids::{EndpointId, EventId, TenantId, new_id, sha256_hex};
pub use report::{Change, ChangeKind, Report};
pub use scope::{Scope, Scopes};
pub use secret::Secret;
pub use signing_key::{Ed25519Key, SignatureScheme, SigningKey};
pub use task::{DeadLetter, DeadStage, Decision, Status, StatusKind, Task};
