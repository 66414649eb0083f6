//! `POST /v1/events`: the body as the API parses it (`parse_json::<EventIn>`)
//! and checks it (`prepare`, against an empty contracts snapshot), with no
//! Redis. The first byte picks the tenant settings, the idempotency key and
//! the partition count; the rest is the body.
#![no_main]

use gateway::api::parse_json;
use gateway::api::{EventIn, prepare};
use gateway::contracts::Snapshot;
use gateway::error::ApiError;
use gateway::keys::Partitions;
use gateway::store::Unregistered;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&control, body)) = data.split_first() else {
        return;
    };
    let mut snapshot = Snapshot::default();
    if control & 1 == 1 {
        snapshot.settings.unregistered_types = Unregistered::Refuse;
    }
    // As `ingest_one`: a key of 1 to 255 characters, or none.
    let idempotency_key = (control & 2 == 2).then_some("order-42:attempt-1");
    let partitions = Partitions::new(u16::from(control >> 2) + 1);

    match parse_json::<EventIn>(body) {
        Ok(event) => {
            let mut errors = Vec::new();
            let prepared = prepare(
                partitions,
                &snapshot,
                "tenant_fuzz",
                event,
                idempotency_key,
                "",
                &mut errors,
            );
            // A valid event has no problems, an invalid one at least one,
            // each with a JSON pointer.
            assert_eq!(prepared.is_some(), errors.is_empty(), "{errors:?}");
            for e in &errors {
                assert!(e.pointer.starts_with('/'), "{e:?}");
            }
        }
        Err(ApiError::Invalid(errors)) => {
            assert!(!errors.is_empty());
            for e in &errors {
                assert!(e.pointer.starts_with('/'), "{e:?}");
            }
        }
        Err(ApiError::BadRequest(message)) => assert!(message.starts_with("malformed JSON")),
        Err(other) => panic!("parse_json answered {other:?}"),
    }
});
