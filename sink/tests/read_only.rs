//! A MySQL that answers but takes no writes is away, not a judge of data.
//!
//! During a managed failover (a replica promoted late) or an operator's
//! maintenance, MySQL runs with `read_only = 1`: it answers the sink's
//! probe, and refuses every write with 1290. Before the probe read
//! `@@read_only`, the sink took that answer to mean "the data is suspect"
//! and dead-lettered every sample of every batch: loss with no replay.
//! The sink must wait, as for an outage, and store everything once the
//! server takes writes again.
//!
//! The test runs its own mariadbd (it changes a global) with grant checks
//! on, and the sink as a user with the privileges compose gives it
//! (mysql/init/05-sink-user.sh): root (SUPER) is not stopped by read_only.

mod common;

use std::time::Duration;

use common::inproc::{now_ns, DeadLetters, InProcessSink};
use sqlx::MySqlPool;
use vigia_schema::{RamBody, Sample, SampleBody};
use vigia_testkit::{Mariadbd, NatsServer};

const HOST: &str = "ro-a";

fn ram(seq: u64) -> Sample {
    common::sample(
        HOST,
        "b1",
        seq,
        now_ns() - 60_000_000_000 + seq as i64,
        SampleBody::Ram(RamBody {
            total: 1 << 30,
            used: 1 << 29,
            ..RamBody::default()
        }),
    )
}

async fn wait_for_seqs(pool: &MySqlPool, want: &[u64]) {
    let mut got = Vec::new();
    for _ in 0..600 {
        got = common::seqs(pool, "ram_samples", HOST).await;
        if got == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("expected ram seqs {want:?}, MySQL has {got:?}");
}

/// Turns grant checks on in the private server (it starts without them)
/// and creates the database and the sink's user, with the grants of
/// mysql/init/05-sink-user.sh. Returns the sink's URL.
async fn sink_user(root: &MySqlPool, port: u16) -> String {
    // Loads the grant tables: from now on privileges are checked.
    sqlx::query("FLUSH PRIVILEGES").execute(root).await.unwrap();
    sqlx::query("CREATE DATABASE vigia CHARACTER SET utf8mb4")
        .execute(root)
        .await
        .unwrap();
    // Both hosts a local TCP client may be seen from: an anonymous
    // ''@localhost would otherwise take precedence over 'vigia_sink'@'%'.
    for host in ["localhost", "127.0.0.1"] {
        for statement in [
            format!("CREATE USER 'vigia_sink'@'{host}' IDENTIFIED BY 'sink-secret'"),
            format!(
                "GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, ALTER, INDEX, CREATE VIEW, \
                 SHOW VIEW ON `vigia`.* TO 'vigia_sink'@'{host}'"
            ),
            format!("GRANT CREATE, DROP ON `vigia`.`processes` TO 'vigia_sink'@'{host}'"),
        ] {
            sqlx::query(&statement).execute(root).await.unwrap();
        }
    }
    format!("mysql://vigia_sink:sink-secret@127.0.0.1:{port}/vigia")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_read_only_server_is_waited_for_and_nothing_is_dead_lettered() {
    let nats = NatsServer::start();
    let mariadb = Mariadbd::start();
    let root = common::pool(&mariadb.url("mysql")).await;
    let url = sink_user(&root, mariadb.port).await;
    let stored = common::pool(&mariadb.url("vigia")).await;
    let letters = DeadLetters::collect(&nats.url()).await;
    let sink = InProcessSink::start(&nats.url(), &url, Duration::from_millis(200)).await;

    // The schema exists and writes work.
    let before: Vec<u64> = (1..=3).collect();
    for &seq in &before {
        sink.send(&ram(seq)).await;
    }
    wait_for_seqs(&stored, &before).await;

    sqlx::query("SET GLOBAL read_only = 1")
        .execute(&root)
        .await
        .unwrap();
    // The sink's user is really stopped by it (root is not).
    let refused = sqlx::query("CREATE TABLE vigia.read_only_check (x INT)")
        .execute(&common::pool(&url).await)
        .await
        .expect_err("read_only refuses the sink's user");
    assert!(refused.to_string().contains("read-only"), "{refused}");

    // A few seconds of samples while the server is read-only: batch after
    // batch fails, MySQL answers every probe.
    let all: Vec<u64> = (1..=23).collect();
    for &seq in &all[before.len()..] {
        sink.send(&ram(seq)).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        letters.received().len(),
        0,
        "dead letters while read-only: {:?}",
        letters
            .received()
            .iter()
            .map(|l| &l.reason)
            .collect::<Vec<_>>()
    );
    assert_eq!(sink.metrics.snapshot().dead_lettered, 0);
    assert_eq!(
        common::seqs(&stored, "ram_samples", HOST).await,
        before,
        "nothing is stored while read-only"
    );
    assert!(
        sink.metrics.snapshot().write_retries > 0,
        "the sink waited on MySQL"
    );

    sqlx::query("SET GLOBAL read_only = 0")
        .execute(&root)
        .await
        .unwrap();
    // Every sample, each once (the table is keyed on (host, boot, seq):
    // the list would show a duplicate or a gap).
    wait_for_seqs(&stored, &all).await;
    assert_eq!(letters.received().len(), 0, "no dead letter after either");
    assert_eq!(sink.metrics.snapshot().dead_lettered, 0);
    sink.stop().await;
}
