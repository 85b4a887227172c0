//! No single message may stall the sink while MySQL is up (issue 11).
//!
//! Whatever MySQL refuses while it answers, under whatever error number,
//! is narrowed down to the samples that fail on their own, which are
//! dead-lettered with MySQL's error naming the table; the rest is stored.
//! MySQL-side refusals are provoked with a trigger that raises the error
//! (SIGNAL ... MYSQL_ERRNO), on a sample the classifier lets through.

mod common;

use std::time::Duration;

use common::inproc::{now_ns, InProcessSink};
use sqlx::MySqlPool;
use vigia_schema::{ByeBody, ProcessEntry, ProcsBody, RamBody, Sample, SampleBody};
use vigia_testkit::{Mariadbd, NatsServer, TestDatabase};

fn ram(host: &str, seq: u64, total: u64) -> Sample {
    common::sample(
        host,
        "b1",
        seq,
        now_ns() - 60_000_000_000 + seq as i64,
        SampleBody::Ram(RamBody {
            total,
            used: total / 2,
            ..RamBody::default()
        }),
    )
}

/// Creates and migrates the database, so a test can change it before the
/// sink starts.
async fn migrated(url: &str) -> MySqlPool {
    vigia_sink::store::connect(url, 2).await.unwrap()
}

async fn wait_for_seqs(pool: &MySqlPool, table: &str, host: &str, want: &[u64]) {
    let mut got = Vec::new();
    for _ in 0..300 {
        got = common::seqs(pool, table, host).await;
        if got == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{host} {table}: expected {want:?}, MySQL has {got:?}");
}

/// On main, 1690 was not in the writer's list of data errors: the batch
/// was retried forever and nothing more was stored for any host.
#[tokio::test(flavor = "multi_thread")]
async fn an_error_number_nobody_listed_dead_letters_the_sample_not_the_sink() {
    let nats = NatsServer::start();
    let db = TestDatabase::new("unlisted");
    let pool = migrated(&db.url()).await;
    sqlx::query(
        "CREATE TRIGGER refuse_ram BEFORE INSERT ON ram_samples FOR EACH ROW \
         IF NEW.total = 424242 THEN SIGNAL SQLSTATE '22003' SET MYSQL_ERRNO = 1690, \
         MESSAGE_TEXT = 'BIGINT UNSIGNED value is out of range in ''100 * used'''; END IF",
    )
    .execute(&pool)
    .await
    .unwrap();
    // A long batch wait: the bad sample shares its batch with good ones.
    let mut sink = InProcessSink::start(&nats.url(), &db.url(), Duration::from_millis(1500)).await;
    for sample in [
        ram("un-a", 1, 1 << 30),
        ram("un-b", 1, 1 << 30),
        ram("un-a", 2, 424242),
        ram("un-a", 3, 1 << 30),
        ram("un-b", 2, 1 << 30),
    ] {
        sink.send(&sample).await;
    }
    let dead = sink.next_dead_letter(Duration::from_secs(60)).await;
    assert_eq!(dead.subject, "deadletter.telemetry.un-a.ram");
    assert!(
        dead.reason.starts_with("MySQL rejected it: ram_samples: ") && dead.reason.contains("1690"),
        "{}",
        dead.reason
    );
    let sent = Sample::decode(&dead.payload).unwrap();
    assert_eq!(
        (sent.host.as_str(), sent.seq, &sent.body),
        ("un-a", 2, &ram("un-a", 2, 424242).body),
        "the payload as sent"
    );
    wait_for_seqs(&pool, "ram_samples", "un-a", &[1, 3]).await;
    wait_for_seqs(&pool, "ram_samples", "un-b", &[1, 2]).await;
    // The sink goes on: a later sample is stored too.
    sink.send(&ram("un-a", 4, 1 << 30)).await;
    wait_for_seqs(&pool, "ram_samples", "un-a", &[1, 3, 4]).await;
    assert_eq!(sink.metrics.snapshot().dead_lettered, 1);
    sink.stop().await;
}

/// A deadlock (1213) while MySQL answers is not the sample's fault: one
/// that fails twice and then goes through is stored, not dead-lettered.
#[tokio::test(flavor = "multi_thread")]
async fn a_sample_that_fails_twice_then_succeeds_is_stored_not_dead_lettered() {
    let nats = NatsServer::start();
    let db = TestDatabase::new("comes_and_goes");
    let pool = migrated(&db.url()).await;
    // A sequence is not transactional: it counts attempts across rollbacks.
    sqlx::query("CREATE SEQUENCE attempts")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query(
        "CREATE TRIGGER deadlock_twice BEFORE INSERT ON ram_samples FOR EACH ROW \
         IF NEW.total = 777777 AND NEXTVAL(attempts) <= 2 THEN SIGNAL SQLSTATE '40001' \
         SET MYSQL_ERRNO = 1213, MESSAGE_TEXT = 'Deadlock found'; END IF",
    )
    .execute(&pool)
    .await
    .unwrap();
    let sink = InProcessSink::start(&nats.url(), &db.url(), Duration::from_millis(1000)).await;
    for sample in [
        ram("dl-a", 1, 1 << 30),
        ram("dl-a", 2, 777777),
        ram("dl-a", 3, 1 << 30),
    ] {
        sink.send(&sample).await;
    }
    wait_for_seqs(&pool, "ram_samples", "dl-a", &[1, 2, 3]).await;
    let attempts: i64 = sqlx::query_scalar("SELECT NEXTVAL(attempts)")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(attempts > 3, "the trigger refused it twice ({attempts})");
    assert_eq!(sink.metrics.snapshot().dead_lettered, 0);
    sink.stop().await;
}

/// A sample the classifier lets through but MySQL refuses on every try
/// (a CHECK constraint the operator added) is dead-lettered after its
/// attempts alone, however its error is numbered.
#[tokio::test(flavor = "multi_thread")]
async fn a_constraint_mysql_enforces_dead_letters_only_the_samples_that_break_it() {
    let nats = NatsServer::start();
    let db = TestDatabase::new("constraint");
    let pool = migrated(&db.url()).await;
    sqlx::query("ALTER TABLE ram_samples ADD CONSTRAINT small_ram CHECK (total < 1000000000000)")
        .execute(&pool)
        .await
        .unwrap();
    let mut sink = InProcessSink::start(&nats.url(), &db.url(), Duration::from_millis(1500)).await;
    let big = 1 << 41;
    for sample in [
        ram("ck-a", 1, 1 << 30),
        ram("ck-a", 2, big),
        ram("ck-a", 3, 1 << 30),
        ram("ck-a", 4, big),
        ram("ck-a", 5, 1 << 30),
    ] {
        sink.send(&sample).await;
    }
    let mut dead = Vec::new();
    for _ in 0..2 {
        let letter = sink.next_dead_letter(Duration::from_secs(60)).await;
        assert!(
            letter
                .reason
                .starts_with("MySQL rejected it: ram_samples: ")
                && letter.reason.contains("small_ram"),
            "{}",
            letter.reason
        );
        dead.push(Sample::decode(&letter.payload).unwrap().seq);
    }
    dead.sort();
    assert_eq!(dead, [2, 4]);
    wait_for_seqs(&pool, "ram_samples", "ck-a", &[1, 3, 5]).await;
    sink.stop().await;
}

/// Stamped in 1677, 1900, 1969 or last week: stored on main and deleted by
/// retention a minute later, without a trace. Now dead-lettered.
#[tokio::test(flavor = "multi_thread")]
async fn a_sample_older_than_the_retention_horizon_is_dead_lettered() {
    let nats = NatsServer::start();
    let db = TestDatabase::new("horizon");
    let mut sink = InProcessSink::start(&nats.url(), &db.url(), Duration::from_millis(200)).await;
    let day = 86_400 * 1_000_000_000i64;
    let year = |y: i32| {
        chrono::NaiveDate::from_ymd_opt(y, 3, 1)
            .unwrap()
            .and_hms_opt(0, 0, 0)
            .unwrap()
            .and_utc()
            .timestamp_nanos_opt()
            .unwrap_or(i64::MIN)
    };
    let stamps = [i64::MIN, year(1900), year(1969), now_ns() - 8 * day];
    for (i, ts) in stamps.into_iter().enumerate() {
        let mut old = ram("old-a", 1 + i as u64, 1 << 30);
        old.ts = ts;
        sink.send(&old).await;
    }
    sink.send(&ram("old-a", 10, 1 << 30)).await;
    for _ in 0..stamps.len() {
        let dead = sink.next_dead_letter(Duration::from_secs(30)).await;
        assert!(
            dead.reason
                .contains("older than the sink's retention horizon (--retention)"),
            "{}",
            dead.reason
        );
    }
    let pool = common::pool(&db.url()).await;
    wait_for_seqs(&pool, "ram_samples", "old-a", &[10]).await;
    sink.stop().await;
}

/// Issue 11, case 1, through the whole sink: dead-lettered by the
/// classifier with the field named, before MySQL sees it; and a snapshot
/// of more processes than the contract takes.
#[tokio::test(flavor = "multi_thread")]
async fn values_outside_the_contract_are_dead_lettered_naming_field_and_bound() {
    let nats = NatsServer::start();
    let db = TestDatabase::new("bounds");
    let mut sink = InProcessSink::start(&nats.url(), &db.url(), Duration::from_millis(200)).await;
    let huge = common::sample(
        "p1",
        "b",
        1,
        now_ns(),
        SampleBody::Ram(RamBody {
            total: u64::MAX,
            used: 1 << 63,
            ..RamBody::default()
        }),
    );
    sink.send(&huge).await;
    let dead = sink.next_dead_letter(Duration::from_secs(30)).await;
    assert!(
        dead.reason
            .starts_with("ram.total 18446744073709551615 is above"),
        "{}",
        dead.reason
    );
    let process = ProcessEntry {
        pid: 1,
        state: "S".into(),
        start_ts: now_ns() - 1_000_000_000,
        ..ProcessEntry::default()
    };
    let many = common::sample(
        "p1",
        "b",
        1,
        now_ns(),
        SampleBody::Procs(ProcsBody {
            processes: vec![process; vigia_schema::bounds::MAX_PROCESSES + 1],
        }),
    );
    sink.send(&many).await;
    let dead = sink.next_dead_letter(Duration::from_secs(30)).await;
    assert_eq!(
        dead.reason,
        "procs.processes has 10001 entries (at most 10000)"
    );
    sink.send(&common::sample(
        "p1",
        "b",
        1,
        now_ns(),
        SampleBody::Bye(ByeBody::default()),
    ))
    .await;
    let pool = common::pool(&db.url()).await;
    for _ in 0..100 {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM host_events WHERE host = 'p1'")
            .fetch_one(&pool)
            .await
            .unwrap();
        if n == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(common::seqs(&pool, "ram_samples", "p1").await.is_empty());
    assert_eq!(sink.metrics.snapshot().dead_lettered, 2);
    sink.stop().await;
}

/// A process list whose JSON is more than the server's max_allowed_packet
/// dropped MySQL's connection and was retried forever (issue 11, case 2).
/// Now statements are split to fit the packet the server announces, and a
/// row that cannot fit on its own is dead-lettered with the reason.
#[tokio::test(flavor = "multi_thread")]
async fn statements_fit_max_allowed_packet_and_a_row_that_cannot_is_dead_lettered() {
    let nats = NatsServer::start();
    let mariadb = Mariadbd::start();
    let url = mariadb.url("vigia");
    // The server is this test's own: its setting holds for new connections.
    let server = common::pool(&mariadb.url("mysql")).await;
    sqlx::query("SET GLOBAL max_allowed_packet = 1048576")
        .execute(&server)
        .await
        .unwrap();
    server.close().await;
    let mut sink = InProcessSink::start(&nats.url(), &url, Duration::from_millis(1500)).await;
    let procs = |host: &str, n: usize, name: &str| {
        let process = ProcessEntry {
            pid: 1,
            name: name.into(),
            user: name.into(),
            state: "S".into(),
            start_ts: now_ns() - 1_000_000_000,
            ..ProcessEntry::default()
        };
        // Distinct pids: a list keeps each pid once.
        let processes = (1..=n as i32)
            .map(|pid| ProcessEntry {
                pid,
                ..process.clone()
            })
            .collect();
        common::sample(
            host,
            "b1",
            1,
            now_ns(),
            SampleBody::Procs(ProcsBody { processes }),
        )
    };
    // Eight lists of about 240 kB of JSON: 1.9 MB together, more than one
    // statement may carry; and one list of about 2.5 MB of JSON (its
    // control characters take six bytes each), under 1 MB of MessagePack.
    let control = "\u{1}".repeat(64);
    let hosts: Vec<String> = (0..8).map(|i| format!("pk-{i}")).collect();
    for host in &hosts {
        sink.send(&procs(host, 1_500, "nginx-worker-process")).await;
    }
    sink.send(&procs("pk-big", 3_000, &control)).await;
    let dead = sink.next_dead_letter(Duration::from_secs(60)).await;
    assert_eq!(dead.subject, "deadletter.telemetry.pk-big.procs");
    assert!(
        dead.reason
            .starts_with("MySQL rejected it: process_lists: one row of ")
            && dead.reason.contains("max_allowed_packet 1048576"),
        "{}",
        dead.reason
    );
    let pool = common::pool(&url).await;
    for host in &hosts {
        wait_for_seqs(&pool, "procs_snapshots", host, &[1]).await;
    }
    let lists: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM process_lists")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(lists, 8);
    assert_eq!(sink.metrics.snapshot().dead_lettered, 1);
    sink.stop().await;
}
