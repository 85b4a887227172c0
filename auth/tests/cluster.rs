//! The authenticated three-node cluster, as docker-compose.cluster.yml and
//! `scripts/gcp/up --nats-nodes 3` run it: every node with the callout
//! configuration (the pinned nats-server), one vigia-auth given every node.
//! A client of any node is authorized by vigia-auth over the routes, gets
//! only its role's permissions there, and still gets in once the node
//! vigia-auth was connected to is gone.

mod common;

use std::time::{Duration, Instant};

use clap::Parser as _;
use common::{identity, Probe};
use nkeys::KeyPair;
use vigia_auth::registry;
use vigia_schema::Role;
use vigia_testkit::{auth_nats_server, binary, Child, NatsCluster, TempDir};

/// Connects `name` to `url` as `role`, retrying while vigia-auth is not yet
/// (or no longer) reachable from that node.
async fn connect_until_in(url: &str, key: &KeyPair, role: Role, name: &str) -> Probe {
    let deadline = Instant::now() + Duration::from_secs(45);
    loop {
        match Probe::connect(url, key, role, name).await {
            Ok(probe) => return probe,
            Err(e) if Instant::now() > deadline => {
                panic!("{role}:{name} never got in at {url}: {e}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_of_any_node_is_authorized_over_the_routes_and_vigia_auth_fails_over() {
    let dir = TempDir::new("vigia-auth-cluster");
    let issuer = KeyPair::new_account();
    let service = KeyPair::new_user();
    std::fs::write(dir.path().join("issuer.nk"), issuer.seed().unwrap()).unwrap();
    std::fs::write(dir.path().join("service.nk"), service.seed().unwrap()).unwrap();
    let registry = dir.path().join("identities");
    let mut cluster = NatsCluster::start_configured(
        auth_nats_server(),
        &vigia_auth::server_config::render(&service.public_key(), &issuer.public_key()),
    );
    // vigia-auth takes every node, and is on node 1 first.
    let issuer_path = dir.path().join("issuer.nk");
    let service_path = dir.path().join("service.nk");
    let urls = cluster.urls();
    let _auth = Child::spawn_with_log(
        binary("vigia-auth"),
        &[
            "serve",
            "--nats-url",
            &urls,
            "--nkey",
            service_path.to_str().unwrap(),
            "--issuer",
            issuer_path.to_str().unwrap(),
            "--registry",
            registry.to_str().unwrap(),
        ],
        &[("RUST_LOG", "info")],
        Some(&dir.path().join("vigia-auth.log")),
    );
    let enroll =
        |role: Role, name: &str| registry::enroll(&registry, &identity(role, name)).unwrap();

    // The sink prepares three-replica streams from node 2.
    let sink_key = enroll(Role::Sink, "sink-1");
    let sink = connect_until_in(&cluster.url(1), &sink_key, Role::Sink, "sink-1").await;
    let config = vigia_sink::config::Config::parse_from([
        "vigia-sink",
        "--stream-replicas",
        "3",
        "--stream-max-bytes",
        "67108864",
    ]);
    // (Placing three replicas takes a moment on a busy machine: retried, as
    // the sink's restart would.)
    let js = async_nats::jetstream::new(sink.client.clone());
    let deadline = Instant::now() + Duration::from_secs(60);
    while let Err(e) = vigia_sink::jetstream::prepare(&js, &config).await {
        assert!(
            Instant::now() < deadline,
            "the sink cannot prepare its streams through node 2: {e:#}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // A host on node 3: its own telemetry, acknowledged; nothing else.
    let host_key = enroll(Role::Host, "web-1");
    let mut host = connect_until_in(&cluster.url(2), &host_key, Role::Host, "web-1").await;
    async_nats::jetstream::new(host.client.clone())
        .publish("telemetry.web-1.cpu", "c".into())
        .await
        .unwrap()
        .await
        .expect("acknowledged through node 3");
    host.publish_refused("telemetry.web-2.cpu").await;
    host.subscribe_refused("cmd.>").await;

    // The node vigia-auth sits on goes; a new client still gets in, through
    // another node, once vigia-auth has reconnected elsewhere.
    let serving = cluster
        .node_serving("vigia-auth")
        .expect("vigia-auth is connected to a node");
    cluster.stop(serving);
    let other = (0..3).find(|&i| i != serving).unwrap();
    let late_key = enroll(Role::Watcher, "late");
    let mut late = connect_until_in(&cluster.url(other), &late_key, Role::Watcher, "late").await;
    let _watching = late.client.subscribe("telemetry.>").await.unwrap();
    late.client.flush().await.unwrap();
    assert_eq!(
        late.no_refusals(),
        Vec::<String>::new(),
        "the late watcher was refused"
    );
    // The late watcher was let in by vigia-auth, on the node it moved to.
    let log = || std::fs::read_to_string(dir.path().join("vigia-auth.log")).unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !log().contains("watcher:late") {
        assert!(Instant::now() < deadline, "{}", log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(log().contains("host:web-1"), "{}", log());
}
