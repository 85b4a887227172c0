//! A private three-node NATS cluster on loopback: three real nats-server
//! processes with JetStream, each on free ports (client, monitoring,
//! routes) with its own store directory, routed to each other under one
//! cluster name. A test stops and restarts any node, or finds the one that
//! leads a stream, to play a node lost in production.

use std::time::{Duration, Instant};

use crate::net::http_get;
use crate::{free_port, wait_for_port, Child, TempDir};

/// How many nodes: the smallest cluster that survives losing one with its
/// replicated streams still writable (two of three is a quorum).
pub const NODES: usize = 3;

/// One node's ports, store and process.
struct Node {
    name: String,
    port: u16,
    monitor_port: u16,
    cluster_port: u16,
    store: TempDir,
    process: Option<Child>,
}

/// Three nats-servers routed into one cluster.
pub struct NatsCluster {
    nodes: Vec<Node>,
    routes: String,
    /// The nats-server to run, and a config file every node reads (the
    /// command line's ports, names and routes win over it).
    program: String,
    config: Option<(TempDir, std::path::PathBuf)>,
}

impl NatsCluster {
    /// Starts the three nodes and waits until JetStream has elected its
    /// meta leader, so that creating a stream succeeds at once.
    pub fn start() -> Self {
        let program =
            std::env::var("VIGIA_TEST_NATS_SERVER").unwrap_or_else(|_| "nats-server".into());
        Self::start_with(program, None)
    }

    /// The same with `program` as every node's nats-server and `config`
    /// (the text of a config file) read by every node: the authenticated
    /// cluster (auth callout) runs the pinned server with its accounts.
    pub fn start_configured(program: String, config: &str) -> Self {
        let dir = TempDir::new("vigia-nats-cluster-config");
        let path = dir.path().join("nats-server.conf");
        std::fs::write(&path, config).expect("writing the cluster's config");
        Self::start_with(program, Some((dir, path)))
    }

    fn start_with(program: String, config: Option<(TempDir, std::path::PathBuf)>) -> Self {
        let nodes: Vec<Node> = (1..=NODES)
            .map(|i| Node {
                name: format!("n{i}"),
                port: free_port(),
                monitor_port: free_port(),
                cluster_port: free_port(),
                store: TempDir::new(&format!("vigia-nats-n{i}")),
                process: None,
            })
            .collect();
        let routes = nodes
            .iter()
            .map(|n| format!("nats-route://127.0.0.1:{}", n.cluster_port))
            .collect::<Vec<_>>()
            .join(",");
        let mut cluster = Self {
            nodes,
            routes,
            program,
            config,
        };
        for i in 0..NODES {
            cluster.spawn(i);
        }
        cluster.wait_for_jetstream();
        cluster
    }

    /// Every node's client URL, comma-separated: what `--nats-url` takes.
    pub fn urls(&self) -> String {
        self.nodes
            .iter()
            .map(|n| format!("nats://127.0.0.1:{}", n.port))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// One node's client URL.
    pub fn url(&self, node: usize) -> String {
        format!("nats://127.0.0.1:{}", self.nodes[node].port)
    }

    /// The server name of `node` (`n1`, `n2`, `n3`), as stream info's
    /// `cluster.leader` reports it.
    pub fn name(&self, node: usize) -> &str {
        &self.nodes[node].name
    }

    /// The node whose server name is `name`.
    pub fn node_named(&self, name: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n.name == name)
    }

    /// Whether `node` is running.
    pub fn is_up(&self, node: usize) -> bool {
        self.nodes[node].process.is_some()
    }

    /// Stops `node` with SIGKILL: a node lost, not a clean shutdown.
    pub fn stop(&mut self, node: usize) {
        if let Some(mut process) = self.nodes[node].process.take() {
            process.kill();
        }
    }

    /// Starts `node` again on the same ports with the same store: it
    /// rejoins the cluster and catches its replicas up.
    pub fn restart(&mut self, node: usize) {
        self.stop(node);
        self.spawn(node);
    }

    /// The node a client named `client_name` (its ConnectOptions name) is
    /// connected to, from each running node's /connz.
    pub fn node_serving(&self, client_name: &str) -> Option<usize> {
        (0..NODES).filter(|&i| self.is_up(i)).find(|&i| {
            http_get(self.nodes[i].monitor_port, "/connz?limit=100000").is_some_and(|body| {
                body.contains(&format!("\"name\":\"{client_name}\""))
                    || body.contains(&format!("\"name\": \"{client_name}\""))
            })
        })
    }

    fn spawn(&mut self, i: usize) {
        let routes = self.routes.clone();
        let node = &mut self.nodes[i];
        let port = node.port.to_string();
        let monitor_port = node.monitor_port.to_string();
        let cluster = format!("nats://127.0.0.1:{}", node.cluster_port);
        let store = node.store.path().to_string_lossy().into_owned();
        let log = node.store.path().join("nats-server.log");
        let config = self
            .config
            .as_ref()
            .map(|(_, path)| path.to_string_lossy().into_owned());
        let mut args: Vec<&str> = Vec::new();
        if let Some(config) = &config {
            args.extend(["-c", config.as_str()]);
        }
        args.extend([
            "-a",
            "127.0.0.1",
            "-p",
            &port,
            "-m",
            &monitor_port,
            "-js",
            "-sd",
            &store,
            "--name",
            &node.name,
            "--cluster_name",
            "vigia-test",
            "--cluster",
            &cluster,
            "--routes",
            &routes,
        ]);
        node.process = Some(Child::spawn_with_log(
            self.program.clone(),
            &args,
            &[],
            Some(&log),
        ));
        assert!(
            wait_for_port(node.port, Duration::from_secs(10)),
            "nats-server {} did not listen on 127.0.0.1:{port}",
            node.name
        );
    }

    /// Waits up to 30 s until a running node reports a JetStream meta
    /// leader with every other running node current: only then can a
    /// replicated stream be placed (right after the election a request to
    /// create one times out).
    pub fn wait_for_jetstream(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let others = (0..NODES)
            .filter(|&i| self.is_up(i))
            .count()
            .saturating_sub(1);
        loop {
            let formed = (0..NODES).filter(|&i| self.is_up(i)).any(|i| {
                http_get(self.nodes[i].monitor_port, "/jsz").is_some_and(|body| {
                    let body: String = body.split_whitespace().collect();
                    body.contains("\"meta_cluster\":{")
                        && body.contains("\"leader\":\"n")
                        && body.matches("\"current\":true").count() >= others
                })
            });
            if formed {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the NATS cluster elected no JetStream leader within 30 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        for i in 0..NODES {
            self.stop(i);
        }
    }
}

impl NatsCluster {
    /// A client connected to every node (it fails over between them).
    pub async fn client(&self) -> async_nats::Client {
        let urls: Vec<String> = (0..NODES)
            .filter(|&i| self.is_up(i))
            .map(|i| self.url(i))
            .collect();
        async_nats::connect(urls)
            .await
            .unwrap_or_else(|e| panic!("connecting to the cluster {}: {e}", self.urls()))
    }

    /// The node leading `stream`'s replicas (stream info's
    /// `cluster.leader`), waiting up to 30 s for the stream to exist and
    /// have one.
    pub async fn stream_leader(&self, stream: &str) -> usize {
        let client = self.client().await;
        let jetstream = async_nats::jetstream::new(client);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(info) = jetstream
                .get_stream(stream)
                .await
                .map(|s| s.cached_info().clone())
            {
                let leader = info.cluster.and_then(|c| c.leader);
                if let Some(node) = leader.as_deref().and_then(|l| self.node_named(l)) {
                    return node;
                }
            }
            assert!(
                Instant::now() < deadline,
                "stream {stream} has no leader after 30 s"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Replicas of `stream` as stream info reports them (the leader's
    /// config), for a test that checks what the sink created.
    pub async fn stream_replicas(&self, stream: &str) -> usize {
        let client = self.client().await;
        let info = async_nats::jetstream::new(client)
            .get_stream(stream)
            .await
            .unwrap_or_else(|e| panic!("stream {stream}: {e}"))
            .cached_info()
            .clone();
        info.config.num_replicas
    }
}
