//! Consumer readiness: an endpoint proves it holds its URL (and maybe its
//! secret) before it gets events, and declares what it can take.
//!
//! ```text
//! create / rotate / verify / due ─▶ gw:verify:due ─▶ handshake ─▶ endpoint.verification
//! delivery load: unverified ─▶ parked (gw:{pN}:parked:...) ─▶ released once verified or gone
//! ```
//!
//! - [`handshake`]: the challenge request and the judgement of its answer.
//! - [`Verifier`]: runs handshakes (one on request, or every due one),
//!   records each on its endpoint and schedules the next: `every` after a
//!   right answer, backing off from `retry_first` to `retry_max` after a
//!   wrong one.
//! - [`health`]: an endpoint's health, summed up from its attempt log.
//! - [`release_ready`]: moves the tasks parked for an endpoint back into
//!   delivery once it may take them (verified, exempt, verification no
//!   longer required) or is gone (they are then dropped as for any deleted
//!   endpoint).

pub mod handshake;
pub mod health;
mod release;
mod verifier;

pub use release::release_ready;
pub use verifier::Verifier;
