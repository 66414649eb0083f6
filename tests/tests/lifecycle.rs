//! The process's life seen from outside: readiness of an idle gateway, and
//! the signals that stop it.

use std::time::{Duration, Instant};

use gateway_tests::{Gateway, Receiver, Redis, Reply, wait_until};
use serde_json::json;
use tokio::task::block_in_place;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_gateway_stays_ready() {
    let redis = Redis::ephemeral();
    let gateway = Gateway::spawn(&redis);
    let api = gateway.api();
    wait_until("/readyz to answer 200", Duration::from_secs(10), || async {
        (api.get("/readyz", "").await.0 == 200).then_some(())
    })
    .await;
    // Past the stages' 10 s heartbeat allowance and the trimmer's first
    // tick, with nothing to do: every poll must still be 200.
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(14) {
        let (status, body) = api.get("/readyz", "").await;
        assert_eq!(
            status,
            200,
            "not ready after {:?} idle: {body}",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_sigterm_exits_at_once() {
    let redis = Redis::ephemeral();
    let mut gateway = Gateway::spawn(&redis);
    let api = gateway.api();
    let receiver = Receiver::start().await;
    // Answers only after the request timeout: the drain waits for it.
    receiver.set_default(Reply::ok().delay(Duration::from_secs(30)));
    let tenant = api.create_tenant("acme").await;
    api.create_endpoint(&tenant, json!({"url": receiver.url("/hook")}))
        .await;
    api.post_event(&tenant, json!({"type": "a.b", "data": {}}))
        .await;
    wait_until("a delivery in flight", Duration::from_secs(10), || async {
        (receiver.in_flight() == 1).then_some(())
    })
    .await;

    gateway.signal("TERM");
    // The first signal starts a drain bounded by the 2 s shutdown grace
    // and the 2 s request timeout; the second must not wait for it.
    assert!(
        block_in_place(|| gateway.wait_exit(Duration::from_millis(300))).is_none(),
        "the first SIGTERM should drain, not exit at once"
    );
    let sent = Instant::now();
    gateway.signal("TERM");
    let status =
        block_in_place(|| gateway.wait_exit(Duration::from_secs(5))).expect("the gateway exits");
    assert!(
        sent.elapsed() < Duration::from_millis(700),
        "exited {:?} after the second SIGTERM (status {status:?})",
        sent.elapsed()
    );
    assert_eq!(status.code(), Some(130), "{}", gateway.logs());
}
