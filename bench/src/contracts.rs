//! Phases 12 and 13: what validating events against their type's schema
//! costs at ingest. Two fresh tenants get the same closed-loop load of
//! ~1 KiB `order.placed` events ([`Payload::contract`]): the first has not
//! registered the type, so its events are stored unchecked (phase 12); the
//! second registered it with [`schema`], 20 fields that every event
//! satisfies, so each event's data is parsed and validated before it is
//! stored (phase 13). Before measuring, one event for each tenant must be
//! answered `202`, and an event breaking the schema `422` at the fields it
//! breaks, or the run stops: phase 13 provably validates.
//!
//! To limit drift (other processes on a shared machine, Redis growing, one
//! phase always running second), the phases run 12, 13, 13, 12, each
//! run with the same warm-up, length and concurrency as phases 2 and 3, and
//! each phase reports its best run: a stall caused by something else then
//! costs neither side its figure.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, bail};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::Bench;
use crate::harness::RunningGateway;
use crate::load::{CONTRACT_EVENT_TYPE, Payload};
use crate::paired::Phase;

/// Target: the share of ingest throughput left when every event is validated.
const TARGET_VALIDATED_RATIO: f64 = 0.85;
/// Where the gateway must refuse an event broken by [`break_schema`].
const BROKEN_AT: [&str; 2] = ["/data/customer_email", "/data/lines/0/qty"];

impl Bench {
    /// Phases 12 and 13 against `gateway`, their ratio and its target.
    pub async fn contracts(&mut self, gateway: &RunningGateway) -> anyhow::Result<()> {
        let payload = Arc::new(Payload::contract());
        let unregistered = gateway.create_tenant("bench-contract-none").await?;
        let registered = gateway.create_tenant("bench-contract-schema").await?;
        register(gateway, &registered).await?;
        self.check_events(gateway, &payload, &unregistered, &registered)
            .await?;
        let url = gateway.events_url();
        let phases = [
            Phase::new(
                12,
                "ingest, type not registered",
                "ev/s",
                self.target(&url, Some(unregistered))?,
            ),
            Phase::new(
                13,
                "ingest, 20-field schema validated",
                "ev/s",
                self.target(&url, Some(registered))?,
            ),
        ];
        let [unchecked_rate, checked_rate] = self.paired(phases, &payload, gateway).await?;
        let r = &mut self.report;
        let ratio = r.ratio(
            "schema-validated / unvalidated ingest",
            checked_rate,
            unchecked_rate,
        );
        r.verdict(
            &format!(
                "schema-validated ingest / unvalidated ingest >= {TARGET_VALIDATED_RATIO:.2}x"
            ),
            format!("{ratio:.2}x"),
            ratio >= TARGET_VALIDATED_RATIO,
        );
        Ok(())
    }

    /// One event for each tenant is accepted, and one breaking the schema
    /// is refused at the fields it breaks; an error says which was not.
    async fn check_events(
        &self,
        gateway: &RunningGateway,
        payload: &Payload,
        unregistered: &str,
        registered: &str,
    ) -> anyhow::Result<()> {
        let url = gateway.events_url();
        let tenants = [
            (unregistered, "without the event type"),
            (registered, "with the schema"),
        ];
        for (key, tenant) in tenants {
            let event = payload.next(self.clock.ns_at(Instant::now()));
            let (status, text) = self.post_event(&url, key, event).await?;
            if status != StatusCode::ACCEPTED {
                bail!(
                    "a valid {CONTRACT_EVENT_TYPE} event of the tenant {tenant} was answered \
                     {status}, not 202 Accepted: {text}"
                );
            }
        }
        let broken = break_schema(&payload.next(self.clock.ns_at(Instant::now())))?;
        let (status, text) = self.post_event(&url, registered, broken).await?;
        if status != StatusCode::UNPROCESSABLE_ENTITY {
            bail!(
                "a {CONTRACT_EVENT_TYPE} event breaking the registered schema was answered \
                 {status}, not 422 Unprocessable Entity, so the gateway does not validate it: \
                 {text}"
            );
        }
        let problem: Value = serde_json::from_str(&text)
            .with_context(|| format!("the 422 answer is not JSON: {text}"))?;
        let pointers: Vec<&str> = problem["errors"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e["pointer"].as_str())
            .collect();
        if let Some(missing) = BROKEN_AT.iter().find(|p| !pointers.contains(p)) {
            bail!("the 422 answer to an event breaking the schema does not name {missing}: {text}");
        }
        Ok(())
    }

    /// POSTs one event with a tenant's API key; the status and the body.
    pub(crate) async fn post_event(
        &self,
        url: &str,
        api_key: &str,
        event: Vec<u8>,
    ) -> anyhow::Result<(StatusCode, String)> {
        let response = self
            .http
            .post(url)
            .bearer_auth(api_key)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(event)
            .send()
            .await
            .context("POST /v1/events")?;
        let status = response.status();
        Ok((status, response.text().await?))
    }
}

/// Registers [`CONTRACT_EVENT_TYPE`] for the tenant, with [`schema`] as
/// version 1.
async fn register(gateway: &RunningGateway, api_key: &str) -> anyhow::Result<()> {
    let path = format!("/v1/event-types/{CONTRACT_EVENT_TYPE}");
    let description = json!({"description": "An order as the benchmark posts it"});
    gateway.put_json(api_key, &path, &description).await?;
    let version = json!({"schema": schema()});
    gateway
        .put_json(api_key, &format!("{path}/versions/1"), &version)
        .await
}

/// The schema of [`Payload::contract`] data (draft 2020-12): 20 fields,
/// every one declared and none other allowed.
fn schema() -> Value {
    let text = |max: u32| json!({"type": "string", "minLength": 1, "maxLength": max});
    let formatted = |format: &str| json!({"type": "string", "format": format});
    let count = |min: u64, max: u64| json!({"type": "integer", "minimum": min, "maximum": max});
    let address = json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["line1", "city", "postcode", "country"],
        "properties": {
            "line1": text(200),
            "city": text(100),
            "postcode": text(16),
            "country": {"type": "string", "pattern": "^[A-Z]{2}$"},
        },
    });
    let line = json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["sku", "qty", "unit_cents"],
        "properties": {
            "sku": {"type": "string", "pattern": "^SKU-[0-9]{4}$"},
            "qty": count(1, 100),
            "unit_cents": count(0, 10_000_000),
        },
    });
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "additionalProperties": false,
        "required": [
            "event_id", "occurred_at", "customer_email", "customer_name", "status",
            "amount_cents", "quantity", "currency", "shipping_address", "lines",
            "seq", "sent_ns",
        ],
        "properties": {
            "event_id": formatted("uuid"),
            "occurred_at": formatted("date-time"),
            "delivery_date": formatted("date"),
            "customer_email": {"type": "string", "format": "email", "maxLength": 254},
            "customer_name": text(200),
            "status": {"enum": ["pending", "paid", "shipped", "cancelled"]},
            "amount_cents": count(0, 100_000_000),
            "quantity": count(1, 1_000),
            "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
            "discount_rate": {"type": "number", "minimum": 0, "maximum": 1},
            "gift": {"type": "boolean"},
            "coupon": {"type": ["string", "null"], "maxLength": 32},
            "source_ip": formatted("ipv4"),
            "callback_url": formatted("uri"),
            "shipping_address": address,
            "lines": {"type": "array", "minItems": 1, "maxItems": 50, "items": line},
            "tags": {
                "type": "array",
                "maxItems": 10,
                "uniqueItems": true,
                "items": text(32),
            },
            "seq": {"type": "integer", "minimum": 0},
            "sent_ns": {"type": "integer", "minimum": 0},
            "pad": {"type": "string", "maxLength": 1024},
        },
    })
}

/// `event` with an address that is no email and a line of zero items.
fn break_schema(event: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut event: Value = serde_json::from_slice(event)?;
    event["data"]["customer_email"] = json!("not an email");
    event["data"]["lines"][0]["qty"] = json!(0);
    Ok(serde_json::to_vec(&event)?)
}

#[cfg(test)]
mod tests {
    use gateway::contracts::{compile, violations};

    use super::*;

    #[test]
    fn every_event_has_the_20_fields_of_the_schema_and_satisfies_it() {
        let schema = schema();
        let validator = compile(&schema, "/schema").unwrap();
        let mut declared: Vec<&String> = schema["properties"].as_object().unwrap().keys().collect();
        declared.sort();
        assert_eq!(declared.len(), 20);
        let payload = Payload::contract();
        for sent_ns in [0, 1 << 50] {
            let event: Value = serde_json::from_slice(&payload.next(sent_ns)).unwrap();
            let mut fields: Vec<&String> = event["data"].as_object().unwrap().keys().collect();
            fields.sort();
            assert_eq!(fields, declared);
            let found = violations(&validator, &event["data"], "/data");
            assert!(found.is_empty(), "{found:?}");
        }

        let broken: Value =
            serde_json::from_slice(&break_schema(&payload.next(0)).unwrap()).unwrap();
        let mut found: Vec<String> = violations(&validator, &broken["data"], "/data")
            .into_iter()
            .map(|e| e.pointer)
            .collect();
        found.sort();
        assert_eq!(found, BROKEN_AT);
    }
}
