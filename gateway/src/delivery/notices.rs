//! The operational events an attempt's outcome sends: an event that has
//! failed `failing_after` attempts (`message.attempt.failing`, once), and
//! one that ran out of attempts (`message.attempt.exhausted`). None is
//! sent for a delivery to an operational endpoint itself, so a failing
//! operational endpoint cannot feed the others a stream of events about
//! their own events.

use serde_json::json;

use super::{Inner, Outcome};
use crate::model::Task;
use crate::notify;
use crate::store::Endpoint;

impl Inner {
    pub(super) async fn tell(&self, task: &Task, endpoint: &Endpoint, outcome: &Outcome) {
        if endpoint.operational {
            return;
        }
        let (kind, attempts, code, error) = match outcome {
            Outcome::Retry {
                attempts,
                code,
                error,
                ..
            } if *attempts == self.settings.failing_after => {
                (notify::FAILING, *attempts, *code, error)
            }
            Outcome::DeadLetter {
                attempts,
                code,
                reason,
            } => (notify::EXHAUSTED, *attempts, *code, reason),
            _ => return,
        };
        for member in task.members() {
            let data = json!({
                "endpoint_id": endpoint.id.as_str(),
                "event_id": member.event.as_str(),
                "msg_id": member.msg_id,
                "attempts": attempts,
                "last_status_code": code,
                "last_error": error,
            });
            self.notify
                .send(&task.tenant, kind, endpoint.id.as_str(), data)
                .await;
        }
    }
}
