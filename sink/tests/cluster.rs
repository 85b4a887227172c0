//! The spine on a three-node NATS cluster: three real nats-servers on
//! loopback (testkit's `NatsCluster`), the streams replicated on all three
//! (`--stream-replicas 3`), publishers and two sinks given every node's
//! URL. A node is lost, or the node leading the stream, and every sample
//! each publisher stamped must still reach MySQL exactly once
//! (`common::assert_complete`, the testkit completeness check).

mod common;

use std::time::Duration;

use common::{assert_complete, byes, pool, publishers, stop_all};
use vigia_testkit::{binary, Child, NatsCluster, TestDatabase};

/// A sink of the cluster: every node's URL, three replicas.
fn cluster_sink(cluster: &NatsCluster, database_url: &str) -> Child {
    Child::spawn(
        binary("vigia-sink"),
        &[
            "--nats-url",
            &cluster.urls(),
            "--stream-replicas",
            "3",
            "--database-url",
            database_url,
            "--batch-wait",
            "100ms",
        ],
        &[("RUST_LOG", "info")],
    )
}

/// The URL of a node that is up, to read the stream back.
fn live_url(cluster: &NatsCluster) -> String {
    let node = (0..vigia_testkit::cluster::NODES)
        .find(|&i| cluster.is_up(i))
        .expect("a node is up");
    cluster.url(node)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_node_killed_and_restarted_loses_and_duplicates_nothing() {
    let mut cluster = NatsCluster::start();
    let db = TestDatabase::new("cluster_node");
    let _sinks = [
        cluster_sink(&cluster, &db.url()),
        cluster_sink(&cluster, &db.url()),
    ];
    let hosts = ["node-a", "node-b", "node-c"];
    let mut publishers = publishers(&cluster.urls(), &hosts);
    // The sinks made both streams with a copy on every node.
    let leader = cluster.stream_leader(vigia_schema::subject::STREAM).await;
    assert_eq!(
        cluster.stream_replicas(vigia_schema::subject::STREAM).await,
        3
    );
    assert_eq!(
        cluster
            .stream_replicas(vigia_schema::subject::DEADLETTER_STREAM)
            .await,
        3
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    // A node that does not lead the stream goes away, and comes back.
    let lost = (leader + 1) % vigia_testkit::cluster::NODES;
    cluster.stop(lost);
    tokio::time::sleep(Duration::from_secs(5)).await;
    cluster.restart(lost);
    tokio::time::sleep(Duration::from_secs(4)).await;
    stop_all(&mut publishers);
    let pool = pool(&db.url()).await;
    assert_complete(&pool, &byes(&live_url(&cluster)).await, &hosts).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_stream_leader_killed_loses_and_duplicates_nothing() {
    let mut cluster = NatsCluster::start();
    let db = TestDatabase::new("cluster_leader");
    let _sinks = [
        cluster_sink(&cluster, &db.url()),
        cluster_sink(&cluster, &db.url()),
    ];
    let hosts = ["lead-a", "lead-b", "lead-c"];
    let mut publishers = publishers(&cluster.urls(), &hosts);
    tokio::time::sleep(Duration::from_secs(2)).await;
    // The node leading TELEMETRY dies and stays down: the other two elect
    // a new leader, the publishers and sinks on it fail over, and the
    // publishers' outboxes cover the gap.
    let leader = cluster.stream_leader(vigia_schema::subject::STREAM).await;
    cluster.stop(leader);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let successor = cluster.stream_leader(vigia_schema::subject::STREAM).await;
    assert_ne!(successor, leader, "a surviving node leads the stream");
    tokio::time::sleep(Duration::from_secs(6)).await;
    stop_all(&mut publishers);
    let pool = pool(&db.url()).await;
    assert_complete(&pool, &byes(&live_url(&cluster)).await, &hosts).await;
}
