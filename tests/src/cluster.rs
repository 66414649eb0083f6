//! A local Redis Cluster for the integration tests: six `redis-server`
//! processes on free ports, three masters each with one replica, formed by
//! `redis-cli --cluster create`. Each node keeps its `nodes.conf`, its AOF
//! (`appendfsync always`) and its log in a directory of its own, so a node
//! killed with SIGKILL and started again rejoins as the same node; a
//! one-second node timeout makes a failover take a few seconds. Every wait
//! polls a condition with a bounded timeout; a test that fails while it holds
//! the cluster shows the tail of every node's log.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use redis::FromRedisValue;
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;

use crate::{TempDir, wait_until};

/// Three masters and one replica of each.
const NODES: usize = 6;
/// `cluster-node-timeout`: silence for this long makes a node suspect.
const NODE_TIMEOUT_MS: &str = "1000";
/// How long the cluster may take to form.
const FORMING: Duration = Duration::from_secs(30);
/// How long a failover, a node rejoining or replicas catching up may take.
const FAILOVER: Duration = Duration::from_secs(20);
/// How long each harness query to one node may take.
const QUERY: Duration = Duration::from_secs(1);
/// How many lines of each node's log a failure shows.
const LOG_TAIL: usize = 30;

/// One `redis-server` of the cluster.
struct Node {
    port: u16,
    bus_port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl Node {
    /// Starts the process and waits until it answers PING; panics with its
    /// log when it does not.
    fn boot(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("redis.log"))
            .expect("a redis log file");
        let (port, bus_port) = (self.port.to_string(), self.bus_port.to_string());
        let mut child = Command::new("redis-server")
            .args(["--port", &port, "--cluster-port", &bus_port])
            .args(["--cluster-enabled", "yes"])
            .args(["--cluster-config-file", "nodes.conf"])
            .args(["--cluster-node-timeout", NODE_TIMEOUT_MS])
            .args(["--appendonly", "yes", "--appendfsync", "always"])
            .args(["--save", ""])
            // Replicas sync at once, not after the default 5 s wait for more.
            .args(["--repl-diskless-sync-delay", "0"])
            .args(["--bind", "127.0.0.1", "--daemonize", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(log.try_clone().expect("the log file again"))
            .stderr(log)
            .spawn()
            .expect("redis-server on PATH");
        let started = Instant::now();
        while query::<String>(self.port, &redis::cmd("PING")).is_err() {
            let exited = child.try_wait().ok().flatten().is_some();
            if exited || started.elapsed() > Duration::from_secs(10) {
                let _ = child.kill();
                let _ = child.wait();
                panic!("redis-server did not start:\n{}", self.log_tail());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.child = Some(child);
    }

    /// SIGKILL: nothing is flushed or handed over.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.join("redis.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(LOG_TAIL)..].join("\n")
    }
}

/// Six `redis-server` children forming one cluster; `Drop` kills them all.
pub struct RedisCluster {
    nodes: Vec<Node>,
    _dir: TempDir,
}

impl RedisCluster {
    /// Starts the six nodes, forms the cluster and waits until every node
    /// says `cluster_state:ok`, every replica is attached to its master and
    /// a write through a [`ClusterClient`] succeeds.
    pub fn start() -> RedisCluster {
        let dir = TempDir::create();
        let nodes = free_ports(2 * NODES)
            .chunks(2)
            .enumerate()
            .map(|(i, ports)| {
                let node_dir = dir.path().join(format!("node{i}"));
                std::fs::create_dir_all(&node_dir).expect("a node dir");
                Node {
                    port: ports[0],
                    bus_port: ports[1],
                    dir: node_dir,
                    child: None,
                }
            })
            .collect();
        let mut cluster = RedisCluster { nodes, _dir: dir };
        for node in &mut cluster.nodes {
            node.boot();
        }
        let output = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(cluster.nodes.iter().map(|n| host(n.port)))
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .stdin(Stdio::null())
            .output()
            .expect("redis-cli on PATH");
        assert!(
            output.status.success(),
            "redis-cli --cluster create failed:\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
        );
        let (started, client) = (Instant::now(), cluster.client());
        let probe = redis::cmd("SET").arg("harness:probe").arg("1").clone();
        loop {
            if cluster.nodes.iter().all(|n| node_formed(n.port))
                && let Ok(mut conn) = client.get_connection()
                && probe.query::<()>(&mut conn).is_ok()
            {
                return cluster;
            }
            assert!(
                started.elapsed() < FORMING,
                "the cluster did not form in {FORMING:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The seed list the gateway takes: every node, one URL.
    pub fn url(&self) -> String {
        let hosts: Vec<String> = self.nodes.iter().map(|n| host(n.port)).collect();
        format!("redis+cluster://{}", hosts.join(","))
    }

    /// Each node as a plain `redis://` URL.
    pub fn seed_urls(&self) -> Vec<String> {
        self.nodes.iter().map(|n| node_url(n.port)).collect()
    }

    /// A client seeded with every node.
    pub fn client(&self) -> ClusterClient {
        ClusterClient::builder(self.seed_urls())
            .build()
            .expect("a cluster client")
    }

    /// A new async connection from [`RedisCluster::client`].
    pub async fn conn(&self) -> ClusterConnection {
        self.client()
            .get_async_connection()
            .await
            .expect("a cluster connection")
    }

    /// The hash slot of `key` (`CLUSTER KEYSLOT` on a live node).
    pub async fn slot_of(&self, key: &str) -> u16 {
        let cmd = cluster_cmd("KEYSLOT").arg(key).clone();
        for (_, port) in self.live() {
            if let Ok(slot) = query_async(port, &cmd).await {
                return slot;
            }
        }
        panic!("no live node answers CLUSTER KEYSLOT")
    }

    /// The index of the node that serves `key`'s slot as master now.
    pub async fn master_of(&self, key: &str) -> usize {
        let slot = self.slot_of(key).await;
        let master = self.master_of_slot(slot).await;
        master.unwrap_or_else(|| panic!("no live master serves slot {slot}"))
    }

    /// The live node that says it is the master of `slot`; when two do (a
    /// restarted master before it learns it was replaced), the one with the
    /// higher config epoch, as the cluster itself decides.
    async fn master_of_slot(&self, slot: u16) -> Option<usize> {
        let mut best: Option<(u64, usize)> = None;
        for (i, port) in self.live() {
            let Ok(nodes) = query_async::<String>(port, &cluster_cmd("NODES")).await else {
                continue;
            };
            if let Some(epoch) = claimed_epoch(&nodes, slot)
                && best.is_none_or(|(higher, _)| epoch > higher)
            {
                best = Some((epoch, i));
            }
        }
        best.map(|(_, node)| node)
    }

    /// SIGKILL to one node.
    pub fn kill(&mut self, node: usize) {
        self.nodes[node].kill();
    }

    /// Starts a node again on its port and directory (killing it first if it
    /// runs): it rejoins from its `nodes.conf`, usually as a replica of the
    /// node promoted in its place. See [`RedisCluster::wait_rejoined`].
    pub fn restart(&mut self, node: usize) {
        self.nodes[node].kill();
        self.nodes[node].boot();
    }

    /// Waits until a node other than `old_master` serves `key`'s slot as
    /// master and every live node says `cluster_state:ok`.
    pub async fn wait_failover(&self, key: &str, old_master: usize) {
        let slot = self.slot_of(key).await;
        wait_until("a failover", FAILOVER, || async {
            let master = self.master_of_slot(slot).await?;
            for (_, port) in self.live() {
                cluster_ok(port).await.then_some(())?;
            }
            (master != old_master).then_some(())
        })
        .await;
    }

    /// Waits until every replica of master `node` has acknowledged all of
    /// its replication stream (`offset` equal to `master_repl_offset`).
    pub async fn wait_replicated(&self, node: usize) {
        let port = self.nodes[node].port;
        wait_until("the replicas to catch up", FAILOVER, || async {
            let replication = redis::cmd("INFO").arg("replication").clone();
            let info: String = query_async(port, &replication).await.ok()?;
            let offset = format!("offset={}", info_field(&info, "master_repl_offset")?);
            let replicas: usize = info_field(&info, "connected_slaves")?.parse().ok()?;
            let caught_up = (0..replicas).all(|i| {
                info_field(&info, &format!("slave{i}"))
                    .is_some_and(|r| r.split(',').any(|kv| kv == offset))
            });
            (replicas > 0 && caught_up).then_some(())
        })
        .await;
    }

    /// Waits until every other live node sees `node` connected and not
    /// failing, and `node` itself says `cluster_state:ok`.
    pub async fn wait_rejoined(&self, node: usize) {
        let port = self.nodes[node].port;
        wait_until("the node to rejoin", FAILOVER, || async {
            for (_, other) in self.live().filter(|(i, _)| *i != node) {
                let nodes: String = query_async(other, &cluster_cmd("NODES")).await.ok()?;
                sees_up(&nodes, port).then_some(())?;
            }
            cluster_ok(port).await.then_some(())
        })
        .await;
    }

    /// The index and port of every node that runs.
    fn live(&self) -> impl Iterator<Item = (usize, u16)> + '_ {
        let nodes = self.nodes.iter().enumerate();
        nodes.filter_map(|(i, n)| n.child.as_ref().map(|_| (i, n.port)))
    }
}

impl Drop for RedisCluster {
    /// Kills every node; a failing test first shows their logs.
    fn drop(&mut self) {
        if std::thread::panicking() {
            for (i, node) in self.nodes.iter().enumerate() {
                eprintln!("--- node {i} (port {}) ---\n{}", node.port, node.log_tail());
            }
        }
        for node in &mut self.nodes {
            node.kill();
        }
    }
}

/// The config epoch of the node whose `CLUSTER NODES` text this is, when
/// it says it is a master serving `slot`. A line reads `<id>
/// <ip:port@bus[,host]> <flags> <master> <ping-sent> <pong-recv>
/// <config-epoch> <link-state> <slot>...`.
fn claimed_epoch(nodes: &str, slot: u16) -> Option<u64> {
    nodes.lines().find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let flags: Vec<&str> = fields.get(2)?.split(',').collect();
        let serves = fields.get(8..)?.iter().any(|range| holds(range, slot));
        let claims = flags.contains(&"myself") && flags.contains(&"master") && serves;
        claims.then(|| fields[6].parse().ok()).flatten()
    })
}

/// A slot range of `CLUSTER NODES` (`7`, `0-5460`) holds `slot`; a slot
/// being migrated (`[7->-id]`) does not count.
fn holds(range: &str, slot: u16) -> bool {
    let (from, to) = range.split_once('-').unwrap_or((range, range));
    match (from.parse::<u16>(), to.parse::<u16>()) {
        (Ok(from), Ok(to)) => (from..=to).contains(&slot),
        _ => false,
    }
}

/// This `CLUSTER NODES` text shows the node on `port` connected and not
/// failing (neither `fail` nor `fail?`).
fn sees_up(nodes: &str, port: u16) -> bool {
    let address = format!("{}@", host(port));
    nodes.lines().any(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        fields.len() > 7
            && fields[1].starts_with(&address)
            && !fields[2].contains("fail")
            && fields[7] == "connected"
    })
}

/// `count` distinct ports nobody listens on right now, held together while
/// they are picked so that none comes back twice.
fn free_ports(count: usize) -> Vec<u16> {
    let bind = |_| std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let listeners: Vec<_> = (0..count).map(bind).collect();
    let port = |l: &std::net::TcpListener| l.local_addr().expect("a bound port").port();
    listeners.iter().map(port).collect()
}

fn host(port: u16) -> String {
    format!("127.0.0.1:{port}")
}

fn node_url(port: u16) -> String {
    format!("redis://{}", host(port))
}

/// `CLUSTER <sub>`.
fn cluster_cmd(sub: &str) -> redis::Cmd {
    redis::cmd("CLUSTER").arg(sub).clone()
}

/// The value of `name:` in `INFO` or `CLUSTER INFO` text.
fn info_field<'a>(info: &'a str, name: &str) -> Option<&'a str> {
    info.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
        .map(str::trim)
}

/// The node says `cluster_state:ok` and is attached: a master lists an
/// online replica, a replica's link to its master is up.
fn node_formed(port: u16) -> bool {
    let ok = query::<String>(port, &cluster_cmd("INFO"))
        .is_ok_and(|info| info_field(&info, "cluster_state") == Some("ok"));
    let attached = query::<String>(port, redis::cmd("INFO").arg("replication")).is_ok_and(|info| {
        info.contains("state=online") || info_field(&info, "master_link_status") == Some("up")
    });
    ok && attached
}

async fn cluster_ok(port: u16) -> bool {
    let info = query_async::<String>(port, &cluster_cmd("INFO")).await;
    info.is_ok_and(|info| info_field(&info, "cluster_state") == Some("ok"))
}

/// One command to one node, blocking, bounded by [`QUERY`].
fn query<T: FromRedisValue>(port: u16, cmd: &redis::Cmd) -> redis::RedisResult<T> {
    let client = redis::Client::open(node_url(port))?;
    let mut conn = client.get_connection_with_timeout(QUERY)?;
    conn.set_read_timeout(Some(QUERY))?;
    cmd.query(&mut conn)
}

/// One command to one node, bounded by [`QUERY`].
async fn query_async<T: FromRedisValue>(port: u16, cmd: &redis::Cmd) -> redis::RedisResult<T> {
    let client = redis::Client::open(node_url(port))?;
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(QUERY))
        .set_response_timeout(Some(QUERY));
    let mut conn = client
        .get_multiplexed_async_connection_with_config(&config)
        .await?;
    cmd.query_async(&mut conn).await
}
