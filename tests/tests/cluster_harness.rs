//! The Redis Cluster harness itself: it forms a cluster, a killed master's
//! replica takes over with every acknowledged write, and the killed node
//! rejoins when started again.

use std::collections::HashSet;
use std::time::Instant;

use gateway_tests::cluster::RedisCluster;
use redis::AsyncCommands;
use redis::cluster_async::ClusterConnection;
use tokio::task::block_in_place;

/// 200 keys, each in a hash slot of its own.
async fn keys_in_distinct_slots(cluster: &RedisCluster) -> Vec<String> {
    let mut slots = HashSet::new();
    let mut keys = Vec::new();
    for i in 0.. {
        let key = format!("harness:{i}");
        if slots.insert(cluster.slot_of(&key).await) {
            keys.push(key);
        }
        if keys.len() == 200 {
            break;
        }
    }
    keys
}

async fn assert_all_there(conn: &mut ClusterConnection, keys: &[String]) {
    for key in keys {
        let value: Option<String> = conn.get(key).await.expect("a read");
        assert_eq!(value.as_deref(), Some(key.as_str()), "{key}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_master_fails_over_with_every_write_and_rejoins_when_restarted() {
    let started = Instant::now();
    let mut cluster = block_in_place(RedisCluster::start);
    eprintln!("cluster formed in {:?}", started.elapsed());
    assert_eq!(cluster.seed_urls().len(), 6);
    assert!(cluster.url().starts_with("redis+cluster://127.0.0.1:"));

    let keys = keys_in_distinct_slots(&cluster).await;
    let mut conn = cluster.conn().await;
    for key in &keys {
        let _: () = conn.set(key, key).await.expect("a write");
    }
    assert_all_there(&mut conn, &keys).await;

    let doomed = cluster.master_of(&keys[0]).await;
    cluster.wait_replicated(doomed).await;
    cluster.kill(doomed);
    let killed = Instant::now();
    cluster.wait_failover(&keys[0], doomed).await;
    eprintln!("failed over in {:?}", killed.elapsed());
    let promoted = cluster.master_of(&keys[0]).await;
    assert_ne!(promoted, doomed);

    let reading = Instant::now();
    assert_all_there(&mut cluster.conn().await, &keys).await;
    eprintln!(
        "a fresh connection read all back in {:?}",
        reading.elapsed()
    );
    let reading = Instant::now();
    assert_all_there(&mut conn, &keys).await;
    eprintln!(
        "the old connection read all back in {:?}",
        reading.elapsed()
    );

    block_in_place(|| cluster.restart(doomed));
    let restarted = Instant::now();
    cluster.wait_rejoined(doomed).await;
    eprintln!("rejoined in {:?}", restarted.elapsed());
    assert_eq!(cluster.master_of(&keys[0]).await, promoted);
    assert_all_there(&mut cluster.conn().await, &keys).await;
}
