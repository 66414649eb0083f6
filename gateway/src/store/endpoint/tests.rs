use super::*;

fn endpoint() -> Endpoint {
    Endpoint {
        id: "ep_1".into(),
        url: "https://example.com/hook".into(),
        description: String::new(),
        consumer_id: None,
        channels: vec![],
        event_types: vec![],
        disabled: false,
        disabled_reason: None,
        mode: Mode::Push,
        operational: false,
        failover_urls: vec![],
        client_cert_pem: None,
        client_key_pem: None,
        ca_pem: None,
        headers: BTreeMap::new(),
        timeout_ms: None,
        retry_schedule: None,
        rate_per_second: None,
        max_in_flight: None,
        batch: None,
        plugins: vec![],
        on_plugin_error: OnPluginError::default(),
        created_at: String::new(),
        updated_at: String::new(),
        signature: SignatureScheme::Hmac,
        secrets: vec![EndpointSecret {
            secret: Secret::generate().expose(),
            expires_at_ms: None,
        }],
        verification: None,
        quarantine: None,
    }
}

fn entry(event_type: &str, about: Option<&str>) -> IngestEntry {
    IngestEntry {
        tenant: "tn_a".into(),
        event: "evt_1".into(),
        event_type: event_type.into(),
        version: None,
        timestamp: String::new(),
        about: about.map(str::to_string),
        consumers: vec![],
        channels: vec![],
    }
}

#[test]
fn operational_events_go_to_operational_endpoints_but_the_one_they_are_about() {
    let mut ep = endpoint();
    ep.event_types = vec![Subscription::Any("order.created".into())];
    let quarantined = |about| entry("endpoint.quarantined", about);
    assert!(!ep.takes_entry(&quarantined(Some("ep_2"))));
    ep.operational = true;
    assert!(ep.takes_entry(&quarantined(Some("ep_2"))));
    assert!(!ep.takes_entry(&quarantined(Some("ep_1"))), "about itself");
    assert!(ep.takes_entry(&entry("order.created", None)));
    assert!(
        !ep.takes_entry(&quarantined(None)),
        "a producer's event of that name"
    );
    ep.disabled = true;
    assert!(!ep.takes_entry(&quarantined(Some("ep_2"))));
}

#[test]
fn an_event_for_consumers_goes_to_their_endpoints_only() {
    let mut mine = endpoint();
    mine.consumer_id = Some("cs_a".into());
    let tenants_own = endpoint();
    let mut event = entry("order.created", None);
    assert!(mine.takes_entry(&event) && tenants_own.takes_entry(&event));
    event.consumers = vec!["cs_b".into()];
    assert!(!mine.takes_entry(&event) && !tenants_own.takes_entry(&event));
    event.consumers.push("cs_a".into());
    assert!(mine.takes_entry(&event) && !tenants_own.takes_entry(&event));
}

#[test]
fn an_endpoint_with_channels_takes_events_of_one_of_them() {
    let mut labelled = endpoint();
    labelled.channels = vec!["eu".into(), "beta".into()];
    let open = endpoint();
    let mut event = entry("order.created", None);
    assert!(!labelled.takes_entry(&event), "an event of no channel");
    assert!(open.takes_entry(&event));
    event.channels = vec!["us".into()];
    assert!(!labelled.takes_entry(&event) && open.takes_entry(&event));
    event.channels.push("beta".into());
    assert!(labelled.takes_entry(&event));
}

#[test]
fn a_quarantined_endpoint_is_held_whatever_its_verification() {
    let mut ep = endpoint();
    assert_eq!(ep.held(true), None);
    ep.quarantine = Some(Quarantine {
        since: String::new(),
        reason: "failing for 1 h".into(),
        by_tenant: false,
        probes: 0,
        last_probe_error: None,
    });
    assert_eq!(ep.held(false).unwrap(), "quarantined: failing for 1 h");
    ep.quarantine = None;
    ep.verification = Some(Verification::pending());
    assert!(ep.held(true).unwrap().contains("verification"));
}

fn verified(capabilities: Capabilities) -> Option<Verification> {
    Some(Verification {
        state: VerificationState::Verified,
        capabilities,
        ..Verification::pending()
    })
}

#[test]
fn events_wait_for_a_handshake_only_when_one_is_required_and_not_passed() {
    let mut ep = endpoint();
    assert_eq!(ep.unverified(true), None, "created without verification");
    ep.verification = Some(Verification::pending());
    assert!(ep.unverified(true).unwrap().contains("not answered"));
    assert_eq!(ep.unverified(false), None, "not required");
    ep.verification.as_mut().unwrap().exempt = true;
    assert_eq!(ep.unverified(true), None, "exempt");
    ep.verification = Some(Verification {
        state: VerificationState::Failed,
        reason: Some("answered 500".into()),
        ..Verification::pending()
    });
    assert_eq!(
        ep.unverified(true).unwrap(),
        "the endpoint failed its last verification: answered 500"
    );
    ep.verification = verified(Capabilities::default());
    assert_eq!(ep.unverified(true), None);
}

#[test]
fn declared_capabilities_only_ever_lower_the_limits() {
    let mut ep = endpoint();
    ep.batch = Some(Batching {
        max_events: 10,
        max_wait_ms: 5,
    });
    assert_eq!(ep.rate_limit(Some(100)), Some(100));
    assert_eq!(ep.rate_limit(Some(0)), None);
    ep.verification = verified(Capabilities {
        max_rate_per_second: Some(10),
        max_in_flight: Some(4),
        accepts_batches: Some(false),
        versions: None,
    });
    assert_eq!(ep.rate_limit(Some(100)), Some(10));
    assert_eq!(ep.rate_limit(Some(5)), Some(5));
    assert_eq!(ep.rate_limit(None), Some(10));
    assert_eq!(ep.in_flight_cap(), Some(4));
    ep.max_in_flight = Some(2);
    assert_eq!(ep.in_flight_cap(), Some(2));
    assert_eq!(ep.batching(), None);
    ep.verification.as_mut().unwrap().state = VerificationState::Failed;
    assert_eq!(
        ep.rate_limit(Some(100)),
        Some(100),
        "only a verified answer counts"
    );
    assert!(ep.batching().is_some());
}

#[test]
fn rotation_keeps_the_old_secret_for_the_overlap_only() {
    let mut ep = endpoint();
    let first = ep.live_secrets(0);
    ep.rotate_secret(1_000, 5_000);
    let live = ep.live_secrets(1_000);
    assert_eq!(live.len(), 2);
    assert_eq!(live[1], first[0]);
    assert_eq!(ep.live_secrets(5_000).len(), 1);
    assert_ne!(ep.live_secrets(5_000)[0], first[0]);
}

#[test]
fn an_ed25519_endpoint_rotates_keys_and_has_no_hmac_secret() {
    let mut ep = endpoint();
    let hmac = ep.live_keys(0);
    ep.set_signature(SignatureScheme::Ed25519);
    let first = ep.live_keys(0);
    assert_eq!(first.len(), 1, "the old secret is gone at once");
    assert_ne!(first, hmac);
    assert_eq!(first[0].scheme(), SignatureScheme::Ed25519);
    assert!(ep.live_secrets(0).is_empty());
    ep.set_signature(SignatureScheme::Ed25519);
    assert_eq!(ep.live_keys(0), first, "the same scheme keeps its keys");
    ep.rotate_secret(1_000, 5_000);
    let live = ep.live_keys(1_000);
    assert_eq!(live.len(), 2);
    assert_eq!(live[0].scheme(), SignatureScheme::Ed25519);
    assert_eq!(live[1], first[0]);
    assert!(!format!("{ep:?}").contains("whsk_"));
    let stored = serde_json::to_value(&ep).unwrap();
    assert_eq!(stored["signature"], "ed25519");
}

#[test]
fn an_endpoint_stored_before_schemes_signs_with_hmac() {
    let stored = serde_json::to_value(endpoint()).unwrap();
    assert!(stored.get("signature").is_none(), "hmac is left out");
    let ep: Endpoint = serde_json::from_value(stored).unwrap();
    assert!(ep.signature.is_hmac());
}

#[test]
fn empty_event_types_subscribe_to_everything() {
    let mut ep = endpoint();
    assert!(ep.subscribes_to("a.b"));
    ep.event_types = vec![Subscription::Any("x".into())];
    assert!(!ep.subscribes_to("a.b"));
    assert!(ep.subscribes_to("x"));
    assert_eq!(ep.wanted_version("x"), None);
}

#[test]
fn subscriptions_read_as_a_type_or_a_type_at_a_version() {
    let subs: Vec<Subscription> =
        serde_json::from_str(r#"["a.b", {"type": "c.d", "version": 2}]"#).unwrap();
    let mut ep = endpoint();
    ep.event_types = subs;
    assert!(ep.subscribes_to("a.b") && ep.subscribes_to("c.d"));
    assert_eq!(ep.wanted_version("c.d"), Some(2));
    assert_eq!(ep.wanted_version("a.b"), None);
    let refused = serde_json::from_str::<Vec<Subscription>>(r#"[{"type": "c.d"}]"#);
    assert!(refused.is_err());
}

#[test]
fn debug_never_shows_secrets() {
    let mut ep = endpoint();
    ep.client_key_pem = Some(String::from("-----BEGIN PRIVATE KEY-----").into());
    let shown = format!("{ep:?}");
    assert!(!shown.contains("whsec_"));
    assert!(!shown.contains("PRIVATE KEY") && shown.contains("[redacted]"));
}
