//! The spine end to end with real processes: publishers → a private
//! nats-server → the sink → MariaDB, and the outages it must survive.
//! Each test checks that every sample each publisher stamped is in MySQL
//! exactly once (see `common::assert_complete`).

mod common;

use std::time::Duration;

use common::{assert_complete, byes, pool, stop_all, Spine};
use vigia_testkit::{Mariadbd, NatsServer};

fn mem_total_bytes() -> u64 {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap();
    let kib: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kib * 1024
}

#[tokio::test(flavor = "multi_thread")]
async fn three_hosts_arrive_complete() {
    let spine = Spine::new("three");
    // Two sinks share the durable consumer: JetStream splits the messages
    // between them and the result must be the same as with one.
    let _sinks = [spine.sink(), spine.sink()];
    let hosts = ["host-a", "host-b", "host-c"];
    let mut publishers: Vec<_> = hosts.iter().map(|h| spine.publisher(h)).collect();
    tokio::time::sleep(Duration::from_secs(4)).await;
    stop_all(&mut publishers);

    let pool = pool(&spine.db.url()).await;
    assert_complete(&pool, &byes(&spine.nats.url()).await, &hosts).await;

    for host in hosts {
        let pid1: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM processes WHERE host = ? AND pid = 1")
                .bind(host)
                .fetch_one(&pool)
                .await
                .unwrap();
        assert_eq!(pid1, 1, "{host}: pid 1 in the latest process list");
        let ram_total: u64 =
            sqlx::query_scalar("SELECT MAX(total) FROM ram_samples WHERE host = ?")
                .bind(host)
                .fetch_one(&pool)
                .await
                .unwrap();
        assert_eq!(ram_total, mem_total_bytes(), "{host}: RAM total = MemTotal");
        let (status, source): (String, String) =
            sqlx::query_as("SELECT CAST(status AS CHAR), source FROM hosts WHERE host = ?")
                .bind(host)
                .fetch_one(&pool)
                .await
                .unwrap();
        assert_eq!(
            (status.as_str(), source.as_str()),
            ("offline", "procfs"),
            "{host} after bye"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sink_killed_mid_stream_loses_and_duplicates_nothing() {
    let spine = Spine::new("sinkkill");
    let mut sink = spine.sink();
    let hosts = ["kill-a", "kill-b"];
    let mut publishers: Vec<_> = hosts.iter().map(|h| spine.publisher(h)).collect();
    let pool = pool(&spine.db.url()).await;
    // Let it write for a while, then kill it hard, twice.
    for _ in 0..2 {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        sink.signal("KILL");
        sink.wait_for_exit(Duration::from_secs(5))
            .expect("sink dies");
        tokio::time::sleep(Duration::from_secs(1)).await;
        sink = spine.sink();
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop_all(&mut publishers);
    assert_complete(&pool, &byes(&spine.nats.url()).await, &hosts).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn nats_restart_loses_and_duplicates_nothing() {
    let mut spine = Spine::new("natsdown");
    let _sink = spine.sink();
    let hosts = ["nats-a", "nats-b"];
    let mut publishers: Vec<_> = hosts.iter().map(|h| spine.publisher(h)).collect();
    tokio::time::sleep(Duration::from_secs(2)).await;
    spine.nats.stop();
    tokio::time::sleep(Duration::from_secs(10)).await;
    spine.nats.restart();
    // Publishers drain their outboxes; the sink resumes pulling.
    tokio::time::sleep(Duration::from_secs(6)).await;
    stop_all(&mut publishers);
    let pool = pool(&spine.db.url()).await;
    assert_complete(&pool, &byes(&spine.nats.url()).await, &hosts).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn mariadb_restart_loses_and_duplicates_nothing() {
    let nats = NatsServer::start();
    let mut mariadb = Mariadbd::start();
    let url = mariadb.url("vigia");
    let _sink = common::sink(&nats.url(), &url);
    let hosts = ["db-a", "db-b"];
    let mut publishers = common::publishers(&nats.url(), &hosts);
    tokio::time::sleep(Duration::from_secs(2)).await;
    mariadb.stop();
    tokio::time::sleep(Duration::from_secs(10)).await;
    mariadb.restart();
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop_all(&mut publishers);
    let pool = pool(&url).await;
    assert_complete(&pool, &byes(&nats.url()).await, &hosts).await;
    // MySQL away is an outage, not bad data: the probe finds it gone and
    // the sink waits (issue 11).
    assert_eq!(common::dead_letters(&nats.url()).await, 0, "dead letters");
}

#[tokio::test(flavor = "multi_thread")]
async fn sink_stopped_during_an_outage_hands_its_messages_back() {
    let nats = NatsServer::start();
    let mut mariadb = Mariadbd::start();
    let url = mariadb.url("vigia");
    let mut first = common::sink(&nats.url(), &url);
    let hosts = ["handback-a", "handback-b"];
    let mut publishers = common::publishers(&nats.url(), &hosts);
    tokio::time::sleep(Duration::from_secs(2)).await;
    // MySQL goes away: the sink holds what it pulled, acknowledging nothing.
    mariadb.stop();
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop_all(&mut publishers);
    tokio::time::sleep(Duration::from_secs(1)).await;
    // Stopping must not wait for MySQL, and must hand the held messages
    // back (NAK) rather than leave them to the consumer's 60 s ack wait.
    first.signal("TERM");
    let status = first
        .wait_for_exit(Duration::from_secs(10))
        .expect("the sink stops within 10 s of SIGTERM while MySQL is down");
    assert!(status.success(), "sink exited with {status}");
    mariadb.restart();
    let _second = common::sink(&nats.url(), &url);
    let pool = pool(&url).await;
    let last = byes(&nats.url()).await;
    // What the first sink held goes back to the stream (NAK) instead of
    // waiting out the 60 s ack wait: well within it, every sample is
    // stored but at most one (nats-server 2.9 may still hand the first
    // message given back to the stopped sink's last pull request).
    let expected: u64 = last
        .values()
        .flat_map(|kinds| ["cpu", "ram", "procs"].map(|k| kinds.get(k).copied().unwrap_or(0)))
        .sum();
    let deadline = std::time::Instant::now() + Duration::from_secs(25);
    loop {
        let mut stored = 0;
        for host in hosts {
            for table in ["cpu_samples", "ram_samples", "procs_snapshots"] {
                stored += common::seqs(&pool, table, host).await.len() as u64;
            }
        }
        if stored + 1 >= expected {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "25 s after the second sink started, {stored} of {expected} samples are stored: \
             the first sink's messages were not handed back"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_complete(&pool, &last, &hosts).await;
}
