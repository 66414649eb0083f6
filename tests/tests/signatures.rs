//! Asymmetric signatures end to end: an endpoint made with `"signature":
//! "ed25519"` signs every delivery (push, batch, handshake, poll channel) with
//! `v1a,<base64 ed25519 signature>`, checked here with ed25519-dalek (not
//! the gateway's own code) against the `whpk_` public key its secret route
//! shows; the private key is never shown; a rotation signs with both keys;
//! a change of scheme by PATCH replaces the keys; an unknown scheme is
//! refused.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use gateway_tests::{
    Api, Gateway, GatewayOptions, Handshake, Receiver, Recorded, Redis, Setup, Tenant, setup,
    verify_signature, wait_until,
};
use reqwest::Method;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(15);

/// The `whpk_...` public key as an ed25519-dalek key.
fn public_key(text: &str) -> VerifyingKey {
    let bytes = STANDARD
        .decode(text.strip_prefix("whpk_").expect("a whpk_ public key"))
        .expect("base64");
    let bytes: [u8; 32] = bytes.try_into().expect("32 bytes");
    VerifyingKey::from_bytes(&bytes).expect("a valid ed25519 public key")
}

/// For each signature in `header` (all must be `v1a,`), whether it verifies
/// with `key` over `{id}.{timestamp}.{body}`.
fn verdicts(key: &VerifyingKey, id: &str, timestamp: &str, body: &[u8], header: &str) -> Vec<bool> {
    let mut signed = format!("{id}.{timestamp}.").into_bytes();
    signed.extend_from_slice(body);
    header
        .split(' ')
        .map(|part| {
            let sig = part
                .strip_prefix("v1a,")
                .unwrap_or_else(|| panic!("not v1a: {part}"));
            let bytes: [u8; 64] = STANDARD.decode(sig).unwrap().try_into().expect("64 bytes");
            key.verify(&signed, &Signature::from_bytes(&bytes)).is_ok()
        })
        .collect()
}

/// [`verdicts`] of a received request, over the exact bytes received.
fn request_verdicts(key: &VerifyingKey, request: &Recorded) -> Vec<bool> {
    verdicts(
        key,
        request.header("webhook-id").unwrap(),
        request.header("webhook-timestamp").unwrap(),
        &request.body,
        request.header("webhook-signature").unwrap(),
    )
}

/// `GET .../secret`, asserting no private key is in it.
async fn secret_of(api: &Api, tenant: &Tenant, id: &str) -> Value {
    let (status, body) = api
        .get(&format!("/v1/endpoints/{id}/secret"), &tenant.key)
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(
        !body.to_string().contains("whsk_"),
        "a private key shown: {body}"
    );
    body
}

async fn ed25519_endpoint(api: &Api, tenant: &Tenant, spec: Value) -> (String, VerifyingKey) {
    let mut spec = spec;
    spec["signature"] = json!("ed25519");
    let (status, created) = api
        .call(Method::POST, "/v1/endpoints", &tenant.key, Some(spec))
        .await;
    assert_eq!(status, 201, "{created}");
    assert!(!created.to_string().contains("whsk_"), "{created}");
    assert_eq!(created["signature"], "ed25519");
    let id = created["id"].as_str().unwrap().to_string();
    let shown = secret_of(api, tenant, &id).await;
    assert_eq!(
        shown["secret"], created["secret"],
        "both show the public key"
    );
    (id, public_key(shown["secret"].as_str().unwrap()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_carry_v1a_signatures_that_verify_with_the_public_key() {
    let Setup {
        _redis,
        _gateway,
        api,
        tenant,
    } = setup().await;
    let receiver = Receiver::start().await;
    let (id, key) = ed25519_endpoint(&api, &tenant, json!({"url": receiver.url("/")})).await;
    let (_, shown) = api.get(&format!("/v1/endpoints/{id}"), &tenant.key).await;
    assert_eq!(shown["signature"], "ed25519", "{shown}");
    assert!(!shown.to_string().contains("whsk_"));

    api.post_event(&tenant, json!({"type": "order.created", "data": {"n": 1}}))
        .await;
    let got = receiver.wait_for(1, WAIT).await;
    let request = &got[0];
    assert!(
        request
            .header("webhook-signature")
            .unwrap()
            .starts_with("v1a,")
    );
    assert_eq!(request_verdicts(&key, request), vec![true]);

    let mut tampered = request.body.clone();
    tampered.extend_from_slice(b" ");
    let header = request.header("webhook-signature").unwrap();
    let (msg_id, ts) = (
        request.header("webhook-id").unwrap(),
        request.header("webhook-timestamp").unwrap(),
    );
    assert_eq!(verdicts(&key, msg_id, ts, &tampered, header), vec![false]);
    assert_eq!(
        verdicts(&key, "msg_other", ts, &request.body, header),
        vec![false]
    );
    let other = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]).verifying_key();
    assert_eq!(request_verdicts(&other, request), vec![false]);

    let batched = Receiver::start().await;
    let batch = json!({"max_events": 2, "max_wait_ms": 200});
    let spec = json!({"url": batched.url("/"), "batch": batch});
    let (_, batch_key) = ed25519_endpoint(&api, &tenant, spec).await;
    for n in 0..2 {
        api.post_event(&tenant, json!({"type": "order.created", "data": {"n": n}}))
            .await;
    }
    let got = batched.wait_for(1, WAIT).await;
    assert!(got[0].json().is_array(), "a batch");
    assert_eq!(request_verdicts(&batch_key, &got[0]), vec![true]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_rotation_the_old_and_the_new_key_both_sign() {
    let Setup {
        _redis,
        _gateway,
        api,
        tenant,
    } = setup().await;
    let receiver = Receiver::start().await;
    let (id, old) = ed25519_endpoint(&api, &tenant, json!({"url": receiver.url("/")})).await;

    let path = format!("/v1/endpoints/{id}/secret/rotate");
    let (status, rotated) = api.call(Method::POST, &path, &tenant.key, None).await;
    assert_eq!(status, 200, "{rotated}");
    assert!(!rotated.to_string().contains("whsk_"), "{rotated}");
    assert_eq!(rotated["previous"].as_array().unwrap().len(), 1);
    let shown = secret_of(&api, &tenant, &id).await;
    assert_eq!(shown["secret"], rotated["secret"]);
    let new = public_key(rotated["secret"].as_str().unwrap());
    assert_ne!(new, old);

    api.post_event(&tenant, json!({"type": "order.created", "data": {}}))
        .await;
    let got = receiver.wait_for(1, WAIT).await;
    assert_eq!(
        request_verdicts(&new, &got[0]),
        vec![true, false],
        "the new key first"
    );
    assert_eq!(request_verdicts(&old, &got[0]), vec![false, true]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_of_scheme_by_patch_replaces_the_keys() {
    let Setup {
        _redis,
        _gateway,
        api,
        tenant,
    } = setup().await;
    let receiver = Receiver::start().await;
    let hmac = api
        .create_endpoint(&tenant, json!({"url": receiver.url("/")}))
        .await;
    let path = format!("/v1/endpoints/{}", hmac.id);
    let (_, shown) = api.get(&path, &tenant.key).await;
    assert_eq!(shown["signature"], "hmac", "the default");

    let patch = Some(json!({"signature": "ed25519"}));
    let (status, patched) = api.call(Method::PATCH, &path, &tenant.key, patch).await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["signature"], "ed25519");
    let shown = secret_of(&api, &tenant, &hmac.id).await;
    assert_eq!(
        shown["previous"],
        json!([]),
        "the HMAC secret is gone at once"
    );
    let key = public_key(shown["secret"].as_str().unwrap());
    api.post_event(&tenant, json!({"type": "a.b", "data": {}}))
        .await;
    let got = receiver.wait_for(1, WAIT).await;
    assert_eq!(request_verdicts(&key, &got[0]), vec![true]);

    let patch = Some(json!({"signature": "hmac"}));
    let (status, patched) = api.call(Method::PATCH, &path, &tenant.key, patch).await;
    assert_eq!(status, 200, "{patched}");
    let secret = secret_of(&api, &tenant, &hmac.id).await["secret"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(secret.starts_with("whsec_") && secret != hmac.secret);
    api.post_event(&tenant, json!({"type": "a.b", "data": {}}))
        .await;
    let got = receiver.wait_for(2, WAIT).await;
    verify_signature(&secret, &got[1]).expect("a fresh HMAC secret signs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_handshake_and_the_poll_channel_are_signed_with_ed25519_too() {
    let redis = Redis::ephemeral();
    let options = GatewayOptions {
        verification_required: true,
        ..GatewayOptions::default()
    };
    let gateway = Gateway::spawn_with(&redis, options);
    let api = gateway.api();
    let tenant = api.create_tenant("acme").await;
    let receiver = Receiver::start().await;
    receiver.answer_handshakes(Handshake::Echo(json!({})));
    let (id, key) = ed25519_endpoint(&api, &tenant, json!({"url": receiver.url("/")})).await;
    let handshake = wait_until("a handshake", WAIT, || async {
        receiver.handshakes().into_iter().next()
    })
    .await;
    assert_eq!(request_verdicts(&key, &handshake), vec![true]);
    wait_until("the endpoint to be active", WAIT, || async {
        let (_, ep) = api.get(&format!("/v1/endpoints/{id}"), &tenant.key).await;
        (ep["state"] == "active").then_some(())
    })
    .await;

    let (poll_id, poll_key) = ed25519_endpoint(&api, &tenant, json!({"mode": "poll"})).await;
    api.post_event(&tenant, json!({"type": "a.b", "data": {"n": 1}}))
        .await;
    let item = wait_until("an event in the poll channel", WAIT, || async {
        let path = format!("/v1/endpoints/{poll_id}/poll");
        let (status, page) = api.get(&path, &tenant.key).await;
        assert_eq!(status, 200, "{page}");
        page["data"].as_array()?.first().cloned()
    })
    .await;
    let headers = &item["headers"];
    let verdict = verdicts(
        &poll_key,
        headers["webhook-id"].as_str().unwrap(),
        headers["webhook-timestamp"].as_str().unwrap(),
        item["raw"].as_str().unwrap().as_bytes(),
        headers["webhook-signature"].as_str().unwrap(),
    );
    assert_eq!(verdict, vec![true]);
    let pushed = receiver.wait_for(1, WAIT).await;
    assert_eq!(request_verdicts(&key, &pushed[0]), vec![true]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_scheme_or_a_given_secret_for_ed25519_is_refused() {
    let Setup {
        _redis,
        _gateway,
        api,
        tenant,
    } = setup().await;
    let pointers = |body: &Value| -> Vec<String> {
        let errors = body["errors"].as_array().cloned().unwrap_or_default();
        errors
            .iter()
            .map(|e| e["pointer"].as_str().unwrap().to_string())
            .collect()
    };
    let url = "http://127.0.0.1:9/";
    let response = api
        .request(Method::POST, "/v1/endpoints", &tenant.key)
        .json(&json!({"url": url, "signature": "rsa"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 422);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(pointers(&body), ["/signature"], "{body}");

    let endpoint = api.create_endpoint(&tenant, json!({"url": url})).await;
    let path = format!("/v1/endpoints/{}", endpoint.id);
    let patch = Some(json!({"signature": "rsa"}));
    let (status, body) = api.call(Method::PATCH, &path, &tenant.key, patch).await;
    assert_eq!(
        (status, pointers(&body)),
        (422, vec!["/signature".into()]),
        "{body}"
    );

    let spec = json!({"url": url, "signature": "ed25519", "secret": endpoint.secret});
    let (status, body) = api
        .call(Method::POST, "/v1/endpoints", &tenant.key, Some(spec))
        .await;
    assert_eq!(
        (status, pointers(&body)),
        (422, vec!["/secret".into()]),
        "{body}"
    );

    let (_, spec) = api.get("/openapi.json", &tenant.key).await;
    let schemes = &spec["components"]["schemas"]["SignatureScheme"];
    assert_eq!(schemes["enum"], json!(["hmac", "ed25519"]), "{schemes}");
}
