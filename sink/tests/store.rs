//! The MySQL side of the sink against a real MariaDB: idempotent writes,
//! host state that late messages cannot regress, liveness and retention.

mod common;

use std::time::Duration;

use sqlx::MySqlPool;
use vigia_schema::{
    ByeBody, CpuBody, HelloBody, ProcessEntry, ProcsBody, RamBody, Sample, SampleBody,
};
use vigia_sink::retention::Retention;
use vigia_sink::store::{connect, Writer};
use vigia_testkit::TestDatabase;

use common::sample;

const SECOND: i64 = 1_000_000_000;

fn now_ns() -> i64 {
    chrono::Utc::now().timestamp_nanos_opt().unwrap()
}

fn procs(pids: &[i32]) -> SampleBody {
    SampleBody::Procs(ProcsBody {
        processes: pids
            .iter()
            .map(|&pid| ProcessEntry {
                pid,
                ppid: 1,
                name: format!("p{pid}"),
                user: "root".into(),
                state: "S".into(),
                rss: pid as u64 * 4096,
                cpu_pct: pid as f32,
                ..ProcessEntry::default()
            })
            .collect(),
    })
}

fn hello() -> SampleBody {
    SampleBody::Hello(HelloBody {
        agent_version: "0.1.0".into(),
        kernel: "6.1.0".into(),
        os: "Debian".into(),
        cpus: 2,
        ram_total: 1 << 30,
        boot_time: 1,
        source: "procfs".into(),
        interval_ms: 1000,
        procs_interval_ms: 5000,
    })
}

async fn setup(name: &str) -> (TestDatabase, MySqlPool, Writer) {
    let db = TestDatabase::new(name);
    let pool = connect(&db.url(), 2).await.expect("connect and migrate");
    let writer = Writer::new(pool.clone(), 2);
    (db, pool, writer)
}

async fn count(pool: &MySqlPool, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.unwrap()
}

#[tokio::test]
async fn writing_a_batch_twice_changes_nothing() {
    let (_db, pool, writer) = setup("idem").await;
    let t = now_ns();
    let batch = [
        sample("h", "b", 1, t, hello()),
        sample(
            "h",
            "b",
            1,
            t + 1,
            SampleBody::Cpu(CpuBody {
                busy_pct: 5.0,
                per_cpu_busy_pct: vec![5.0],
                ..CpuBody::default()
            }),
        ),
        sample(
            "h",
            "b",
            1,
            t + 2,
            SampleBody::Ram(RamBody {
                total: 10,
                ..RamBody::default()
            }),
        ),
        sample("h", "b", 1, t + 3, procs(&[1, 2, 3])),
    ];
    let refs: Vec<&Sample> = batch.iter().collect();
    writer.write(&refs).await.unwrap();
    writer.write(&refs).await.unwrap();
    for table in [
        "cpu_samples",
        "ram_samples",
        "procs_snapshots",
        "host_events",
    ] {
        assert_eq!(
            count(&pool, &format!("SELECT COUNT(*) FROM {table}")).await,
            1,
            "{table}"
        );
    }
    assert_eq!(count(&pool, "SELECT COUNT(*) FROM processes").await, 3);
    // top 2 by CPU ∪ top 2 by RSS: pids 3 and 2 both ways.
    assert_eq!(
        count(&pool, "SELECT COUNT(*) FROM process_samples").await,
        2
    );
    assert_eq!(
        count(
            &pool,
            "SELECT COUNT(*) FROM hosts WHERE status = 'online' AND cpus = 2"
        )
        .await,
        1
    );
}

#[tokio::test]
async fn an_older_snapshot_never_replaces_a_newer_one() {
    let (_db, pool, writer) = setup("procsorder").await;
    let t = now_ns();
    let newer = sample("h", "b", 2, t, procs(&[1, 20, 30]));
    let older = sample("h", "b", 1, t - 5 * SECOND, procs(&[1, 10]));
    writer.write(&[&newer]).await.unwrap();
    writer.write(&[&older]).await.unwrap();
    let pids: Vec<i32> =
        sqlx::query_scalar("SELECT pid FROM processes WHERE host = 'h' ORDER BY pid")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(pids, [1, 20, 30]);
    // The older snapshot is still in the history and the snapshot log.
    assert_eq!(
        count(&pool, "SELECT COUNT(*) FROM procs_snapshots").await,
        2
    );
    // And within one batch the newest wins too.
    let newest = sample("h", "b", 3, t + 5 * SECOND, procs(&[1, 40]));
    let stale = sample("h", "b", 1, t - 9 * SECOND, procs(&[1, 99]));
    writer.write(&[&newest, &stale]).await.unwrap();
    let pids: Vec<i32> =
        sqlx::query_scalar("SELECT pid FROM processes WHERE host = 'h' ORDER BY pid")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(pids, [1, 40]);
}

#[tokio::test]
async fn bye_sets_offline_and_a_late_sample_does_not_undo_it() {
    let (_db, pool, writer) = setup("bye").await;
    let t = now_ns();
    writer
        .write(&[&sample("h", "b", 1, t, hello())])
        .await
        .unwrap();
    let bye = sample(
        "h",
        "b",
        1,
        t + 2 * SECOND,
        SampleBody::Bye(ByeBody::default()),
    );
    writer.write(&[&bye]).await.unwrap();
    let late = sample("h", "b", 7, t + SECOND, SampleBody::Ram(RamBody::default()));
    writer.write(&[&late]).await.unwrap();
    let status: String =
        sqlx::query_scalar("SELECT CAST(status AS CHAR) FROM hosts WHERE host = 'h'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(status, "offline");
    // A new boot brings it back online.
    writer
        .write(&[&sample("h", "c", 1, t + 3 * SECOND, hello())])
        .await
        .unwrap();
    let (status, boot): (String, String) =
        sqlx::query_as("SELECT CAST(status AS CHAR), boot FROM hosts WHERE host = 'h'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!((status.as_str(), boot.as_str()), ("online", "c"));
}

#[tokio::test]
async fn silent_hosts_go_offline_after_three_intervals() {
    let (_db, pool, writer) = setup("liveness").await;
    let t = now_ns();
    // Interval 1 s: 'quiet' last spoke 10 s ago, 'chatty' just now.
    writer
        .write(&[&sample("quiet", "b", 1, t - 10 * SECOND, hello())])
        .await
        .unwrap();
    writer
        .write(&[&sample("chatty", "b", 1, t, hello())])
        .await
        .unwrap();
    let gone = vigia_sink::liveness::sweep(&pool).await.unwrap();
    assert_eq!(gone, ["quiet"]);
    assert_eq!(
        count(&pool, "SELECT COUNT(*) FROM hosts WHERE status = 'online'").await,
        1
    );
    assert!(vigia_sink::liveness::sweep(&pool).await.unwrap().is_empty());
}

#[tokio::test]
async fn retention_deletes_only_what_is_old() {
    let (_db, pool, writer) = setup("retention").await;
    let t = now_ns();
    let day = 86_400 * SECOND;
    let old = sample(
        "h",
        "b",
        1,
        t - 10 * day,
        SampleBody::Ram(RamBody::default()),
    );
    let new = sample("h", "b", 2, t, SampleBody::Ram(RamBody::default()));
    let gone_host = sample("gone", "b", 1, t - 10 * day, procs(&[1]));
    writer.write(&[&old, &new, &gone_host]).await.unwrap();
    let deleted =
        vigia_sink::retention::expire(&pool, &Retention::uniform(Duration::from_secs(7 * 86_400)))
            .await
            .unwrap();
    assert!(
        deleted.days >= 1 && deleted.rows >= 1,
        "expired {deleted:?}"
    );
    assert_eq!(common::seqs(&pool, "ram_samples", "h").await, [2]);
    assert_eq!(
        count(&pool, "SELECT COUNT(*) FROM hosts WHERE host = 'gone'").await,
        0
    );
    assert_eq!(
        count(&pool, "SELECT COUNT(*) FROM processes WHERE host = 'gone'").await,
        0
    );
    assert_eq!(
        count(&pool, "SELECT COUNT(*) FROM hosts WHERE host = 'h'").await,
        1
    );
    // Boots go by live_until (0009): the gone host's boot, not h's.
    assert_eq!(
        count(&pool, "SELECT COUNT(*) FROM host_boots WHERE host = 'gone'").await,
        0
    );
    assert_eq!(
        count(&pool, "SELECT COUNT(*) FROM host_boots WHERE host = 'h'").await,
        1
    );
}

/// A batch whose process lists add up to more than MySQL's default
/// max_allowed_packet (16 MiB) is still written: lists go in statements of
/// at most a few MiB.
#[tokio::test]
async fn many_large_process_lists_fit_in_one_batch() {
    let (_db, pool, writer) = setup("biglists").await;
    let t = now_ns();
    let pids: Vec<i32> = (1..=600).collect();
    let batch: Vec<Sample> = (0..200)
        .map(|h| sample(&format!("big-{h}"), "b", 1, t, procs(&pids)))
        .collect();
    let refs: Vec<&Sample> = batch.iter().collect();
    writer.write(&refs).await.unwrap();
    assert_eq!(
        count(&pool, "SELECT COUNT(*) FROM process_lists").await,
        200
    );
    assert_eq!(
        count(
            &pool,
            "SELECT SUM(LENGTH(processes)) > 16 * 1024 * 1024 FROM process_lists"
        )
        .await,
        1,
        "the lists together are larger than one packet"
    );
    assert_eq!(
        count(&pool, "SELECT COUNT(*) FROM processes WHERE host = 'big-7'").await,
        600
    );
}
