//! One Redis or a Redis Cluster behind the same two types: [`RedisClient`]
//! (what `redis_url` names) and [`Conn`] (a connection every layer sends
//! commands, pipelines and scripts on).
//!
//! `redis_url` names a cluster by a seed list: `redis+cluster://a:7000,b:7001`
//! (`rediss+cluster://` for TLS), or several URLs joined by commas
//! (`redis://a:7000,redis://b:7001`). One URL is a single server.
//!
//! On a cluster every key of the gateway carries a hash tag (`gw:{t.<tenant>}`,
//! `gw:{p.<partition>}`, ...), so each command, pipeline and script touches
//! one slot; redis-rs routes it to that slot's master and follows `MOVED`
//! and `ASK` itself, and a failed-over master's replica is found again on
//! the next attempt. A pipeline that touched two slots would be refused
//! (`CROSSSLOT`), and the suite's cluster tests would show it.

use std::time::Duration;

use anyhow::Context;
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::cluster_async::ClusterConnection;
use redis::{
    AsyncConnectionConfig, Cmd, FromRedisValue, Pipeline, RedisFuture, TlsCertificates, Value,
};

/// A fresh connection must be made within this.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// A reply to a shared connection's command must come within this: well
/// above a slow `appendfsync always` write.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);

/// Where the gateway's data lives: one server or a cluster's nodes.
#[derive(Clone)]
pub enum RedisClient {
    Single(Box<redis::Client>),
    Cluster(Box<ClusterClient>),
}

/// A connection to one server (reconnecting when it restarts) or to a
/// cluster (one multiplexed connection per node, re-routed on failover).
#[derive(Clone)]
pub enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
    /// A connection of its own to one server, for blocking reads.
    Dedicated(redis::aio::MultiplexedConnection),
}

/// The node URLs of a cluster seed list, or `None` for a single server's URL.
pub fn cluster_nodes(url: &str) -> Option<Vec<String>> {
    let (scheme, rest) = url.split_once("://")?;
    let scheme = match scheme {
        "redis+cluster" => "redis",
        "rediss+cluster" => "rediss",
        _ if url.contains(',') => {
            return Some(url.split(',').map(|u| u.trim().to_string()).collect());
        }
        _ => return None,
    };
    // Credentials given once, on the first node, go with every node.
    let (auth, hosts) = match rest.rsplit_once('@') {
        Some((auth, hosts)) => (format!("{auth}@"), hosts),
        None => (String::new(), rest),
    };
    Some(
        hosts
            .split(',')
            .map(|host| format!("{scheme}://{auth}{}", host.trim()))
            .collect(),
    )
}

impl RedisClient {
    /// The client for `url`; with `ca_pem` (`redis_ca_file`), a `rediss://`
    /// server's certificate must chain to those CAs instead of the web roots.
    pub fn open(url: &str, ca_pem: Option<&[u8]>) -> anyhow::Result<RedisClient> {
        let certificates = |pem: &[u8]| TlsCertificates {
            client_tls: None,
            root_cert: Some(pem.to_vec()),
        };
        let client = match cluster_nodes(url) {
            Some(nodes) => {
                let mut builder = ClusterClientBuilder::new(nodes)
                    .connection_timeout(CONNECT_TIMEOUT)
                    .response_timeout(RESPONSE_TIMEOUT)
                    // Retries (a failover's MOVED, CLUSTERDOWN) within the same bound.
                    .overall_response_timeout(Some(RESPONSE_TIMEOUT))
                    .retries(8)
                    .min_retry_wait(50)
                    .max_retry_wait(1_000);
                if let Some(pem) = ca_pem {
                    builder = builder.certs(certificates(pem));
                }
                builder.build().map(|c| RedisClient::Cluster(Box::new(c)))
            }
            None => match ca_pem {
                None => redis::Client::open(url),
                Some(pem) => redis::Client::build_with_tls(url, certificates(pem)),
            }
            .map(|c| RedisClient::Single(Box::new(c))),
        };
        client.with_context(|| format!("invalid Redis URL {url} (or its CA file)"))
    }

    pub fn is_cluster(&self) -> bool {
        matches!(self, RedisClient::Cluster(_))
    }

    /// The connection every layer shares: it reconnects when Redis restarts
    /// (a single server) or follows the cluster's slots (a cluster).
    pub async fn shared(&self) -> redis::RedisResult<Conn> {
        match self {
            RedisClient::Single(client) => {
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(CONNECT_TIMEOUT))
                    .set_response_timeout(Some(RESPONSE_TIMEOUT))
                    .set_number_of_retries(2)
                    .set_max_delay(Duration::from_millis(500));
                ConnectionManager::new_with_config(client.as_ref().clone(), config)
                    .await
                    .map(Conn::Single)
            }
            RedisClient::Cluster(client) => client.get_async_connection().await.map(Conn::Cluster),
        }
    }

    /// A connection of its own whose replies may take `response_timeout`
    /// (a blocking `XREADGROUP` must not stall commands of others).
    pub async fn dedicated(&self, response_timeout: Duration) -> redis::RedisResult<Conn> {
        match self {
            RedisClient::Single(client) => {
                let config = AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(CONNECT_TIMEOUT))
                    .set_response_timeout(Some(response_timeout));
                client
                    .get_multiplexed_async_connection_with_config(&config)
                    .await
                    .map(Conn::Dedicated)
            }
            RedisClient::Cluster(client) => {
                let config = redis::cluster::ClusterConfig::new()
                    .set_connection_timeout(CONNECT_TIMEOUT)
                    .set_response_timeout(response_timeout);
                client
                    .get_async_connection_with_config(config)
                    .await
                    .map(Conn::Cluster)
            }
        }
    }
}

impl Conn {
    /// Sends `cmds`, independent commands that need no transaction but may
    /// touch several slots, in their order: as one pipeline to a single
    /// server, one by one on a cluster (a pipeline stays on one slot there).
    pub async fn each<T: FromRedisValue>(&mut self, cmds: Vec<Cmd>) -> redis::RedisResult<Vec<T>> {
        if let Conn::Cluster(_) = self {
            let mut replies = Vec::with_capacity(cmds.len());
            for cmd in cmds {
                replies.push(cmd.query_async(self).await?);
            }
            return Ok(replies);
        }
        let mut pipe = redis::pipe();
        for cmd in cmds {
            pipe.add_command(cmd);
        }
        pipe.query_async(self).await
    }
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
            Conn::Dedicated(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Dedicated(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
            Conn::Dedicated(c) => c.get_db(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_list_names_a_cluster_and_one_url_a_server() {
        assert_eq!(cluster_nodes("redis://127.0.0.1:6379"), None);
        assert_eq!(cluster_nodes("rediss://h:6380/0"), None);
        assert_eq!(
            cluster_nodes("redis+cluster://a:7000,b:7001"),
            Some(vec!["redis://a:7000".into(), "redis://b:7001".into()])
        );
        assert_eq!(
            cluster_nodes("rediss+cluster://user:pw@a:7000, b:7001"),
            Some(vec![
                "rediss://user:pw@a:7000".into(),
                "rediss://user:pw@b:7001".into()
            ])
        );
        assert_eq!(
            cluster_nodes("redis://a:7000,redis://b:7001"),
            Some(vec!["redis://a:7000".into(), "redis://b:7001".into()])
        );
    }
}
