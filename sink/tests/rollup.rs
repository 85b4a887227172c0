//! The rollups (`host_minutes`, `host_ten_minutes`, `process_ten_minutes`)
//! against a real MariaDB: exact however the samples arrive (redelivered,
//! split across batches, out of order), equal to a direct aggregate of the
//! raw tables, and expired by retention with them.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use sqlx::MySqlPool;
use vigia_schema::{CpuBody, ProcessEntry, ProcsBody, RamBody, Sample, SampleBody};
use vigia_sink::retention::Retention;
use vigia_sink::store::{connect, Writer};
use vigia_testkit::TestDatabase;

use common::sample;

const SECOND: i64 = 1_000_000_000;
const MINUTE: i64 = 60 * SECOND;

/// One row of host_minutes, floats as stored.
type Row = (
    String,
    String,
    Option<f64>,
    Option<f32>,
    Option<f64>,
    u64,
    Option<f64>,
    Option<f64>,
    u64,
);

const ROWS: &str = "SELECT host, CAST(minute AS CHAR), cpu_busy_pct, cpu_busy_max, load1, \
    CAST(cpu_samples AS UNSIGNED), ram_used_pct, ram_used_max, CAST(ram_samples AS UNSIGNED) FROM host_minutes ORDER BY host, minute";

/// The same figures straight from the raw tables.
const DIRECT: &str = "SELECT COALESCE(c.host, r.host) AS host, CAST(COALESCE(c.m, r.m) AS CHAR), \
    c.cpu, c.cpu_max, c.load1, CAST(COALESCE(c.n, 0) AS UNSIGNED), \
    CAST(r.ram AS DOUBLE), CAST(r.ram_max AS DOUBLE), CAST(COALESCE(r.n, 0) AS UNSIGNED) \
    FROM (SELECT host, CAST(DATE_FORMAT(ts, '%Y-%m-%d %H:%i:00') AS DATETIME) AS m, \
            AVG(busy_pct) AS cpu, MAX(busy_pct) AS cpu_max, AVG(load1) AS load1, \
            CAST(COUNT(*) AS UNSIGNED) AS n FROM cpu_samples GROUP BY host, m) c \
    LEFT JOIN (SELECT host, CAST(DATE_FORMAT(ts, '%Y-%m-%d %H:%i:00') AS DATETIME) AS m, \
            AVG(100 * used / total) AS ram, MAX(100 * used / total) AS ram_max, \
            CAST(COUNT(*) AS UNSIGNED) AS n FROM ram_samples WHERE total > 0 GROUP BY host, m) r \
      ON r.host = c.host AND r.m = c.m \
    ORDER BY 1, 2";

/// The same shape of rows from host_ten_minutes.
const TEN_ROWS: &str = "SELECT host, CAST(period AS CHAR), cpu_busy_pct, cpu_busy_max, load1, \
    CAST(cpu_samples AS UNSIGNED), ram_used_pct, ram_used_max, CAST(ram_samples AS UNSIGNED) \
    FROM host_ten_minutes ORDER BY host, period";

/// The ten-minute figures straight from the raw tables.
const TEN_DIRECT: &str =
    "SELECT COALESCE(c.host, r.host) AS host, CAST(COALESCE(c.p, r.p) AS CHAR), \
    c.cpu, c.cpu_max, c.load1, CAST(COALESCE(c.n, 0) AS UNSIGNED), \
    CAST(r.ram AS DOUBLE), CAST(r.ram_max AS DOUBLE), CAST(COALESCE(r.n, 0) AS UNSIGNED) \
    FROM (SELECT host, CAST(DATE_FORMAT(ts, '%Y-%m-%d %H:00:00') AS DATETIME) \
              + INTERVAL (MINUTE(ts) DIV 10 * 10) MINUTE AS p, \
            AVG(busy_pct) AS cpu, MAX(busy_pct) AS cpu_max, AVG(load1) AS load1, \
            CAST(COUNT(*) AS UNSIGNED) AS n FROM cpu_samples GROUP BY host, p) c \
    LEFT JOIN (SELECT host, CAST(DATE_FORMAT(ts, '%Y-%m-%d %H:00:00') AS DATETIME) \
              + INTERVAL (MINUTE(ts) DIV 10 * 10) MINUTE AS p, \
            AVG(100 * used / total) AS ram, MAX(100 * used / total) AS ram_max, \
            CAST(COUNT(*) AS UNSIGNED) AS n FROM ram_samples WHERE total > 0 GROUP BY host, p) r \
      ON r.host = c.host AND r.p = c.p \
    ORDER BY 1, 2";

/// One row of process_ten_minutes.
type ProcessRow = (String, String, i32, String, f64, u64, u64);

const PROCESS_ROWS: &str = "SELECT host, CAST(period AS CHAR), pid, name, cpu_pct, \
    CAST(rss AS UNSIGNED), CAST(samples AS UNSIGNED) FROM process_ten_minutes \
    ORDER BY host, period, pid, name";

/// The same from the history, for the periods closed so far: those before
/// the period of each host's newest snapshot.
const PROCESS_DIRECT: &str = "SELECT s.host, CAST(p AS CHAR), pid, name, AVG(cpu_pct), \
    CAST(MAX(rss) AS UNSIGNED), CAST(COUNT(*) AS UNSIGNED) \
    FROM (SELECT host, pid, name, cpu_pct, rss, \
            CAST(DATE_FORMAT(ts, '%Y-%m-%d %H:00:00') AS DATETIME) \
              + INTERVAL (MINUTE(ts) DIV 10 * 10) MINUTE AS p FROM process_samples) s \
    JOIN hosts h ON h.host = s.host \
    WHERE s.p < CAST(DATE_FORMAT(h.procs_ts, '%Y-%m-%d %H:00:00') AS DATETIME) \
              + INTERVAL (MINUTE(h.procs_ts) DIV 10 * 10) MINUTE \
    GROUP BY s.host, p, pid, name ORDER BY s.host, p, pid, name";

/// Every rollup's rows.
#[derive(Debug, PartialEq)]
struct Rollups {
    minutes: Vec<Row>,
    ten_minutes: Vec<Row>,
    processes: Vec<ProcessRow>,
}

async fn rollups(pool: &MySqlPool) -> Rollups {
    Rollups {
        minutes: rows(pool, ROWS).await,
        ten_minutes: rows(pool, TEN_ROWS).await,
        processes: sqlx::query_as(PROCESS_ROWS).fetch_all(pool).await.unwrap(),
    }
}

/// A tiny deterministic generator, so a failure replays.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
    fn pct(&mut self) -> f32 {
        (self.next() % 10_000) as f32 / 100.0
    }
}

/// Two hosts, CPU and RAM every second for three and a half minutes that
/// start and end mid-minute and cross into a new ten minutes, the second
/// host restarting (a new boot) in the middle of a minute.
fn fleet() -> Vec<Sample> {
    fleet_periods_ago(2)
}

/// [`fleet`], starting in the ten minutes `periods` before the current.
fn fleet_periods_ago(periods: i64) -> Vec<Sample> {
    let mut rng = Lcg(7);
    let ten = 10 * MINUTE;
    let start = (chrono::Utc::now().timestamp_nanos_opt().unwrap() / ten - periods) * ten
        + 8 * MINUTE
        + 17 * SECOND
        + 250_000_000;
    let mut out = Vec::new();
    for host in ["alpha", "beta"] {
        for i in 0..210u64 {
            let (boot, seq) = if host == "beta" && i >= 100 {
                ("b2", i - 100)
            } else {
                ("b1", i)
            };
            let ts = start + i as i64 * SECOND;
            out.push(sample(
                host,
                boot,
                3 * seq,
                ts,
                SampleBody::Cpu(CpuBody {
                    busy_pct: rng.pct(),
                    load1: rng.pct() / 10.0,
                    per_cpu_busy_pct: vec![1.0],
                    ..CpuBody::default()
                }),
            ));
            out.push(sample(
                host,
                boot,
                3 * seq + 1,
                ts + 1_000,
                SampleBody::Ram(RamBody {
                    total: 8 << 30,
                    used: rng.next() * 4,
                    ..RamBody::default()
                }),
            ));
            // A snapshot every 5 s of six processes, two of which share a
            // pid under different names (an exec); the writer keeps the
            // top 2 by CPU and by RSS.
            if i % 5 == 0 {
                let processes = (0..6)
                    .map(|p| ProcessEntry {
                        pid: 100 + p.min(4),
                        name: format!("proc-{p}"),
                        cpu_pct: rng.pct(),
                        rss: rng.next() * 1024,
                        state: "S".into(),
                        ..ProcessEntry::default()
                    })
                    .collect();
                out.push(sample(
                    host,
                    boot,
                    3 * seq + 2,
                    ts + 2_000,
                    SampleBody::Procs(ProcsBody { processes }),
                ));
            }
        }
    }
    out
}

async fn setup(name: &str) -> (TestDatabase, MySqlPool, Writer) {
    let db = TestDatabase::new(name);
    let pool = connect(&db.url(), 2).await.expect("connect and migrate");
    let writer = Writer::new(pool.clone(), 2);
    (db, pool, writer)
}

async fn rows(pool: &MySqlPool, sql: &str) -> Vec<Row> {
    sqlx::query_as(sql).fetch_all(pool).await.unwrap()
}

fn close(a: Option<f64>, b: Option<f64>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => (a - b).abs() <= 1e-9 * a.abs().max(1.0),
        (a, b) => a == b,
    }
}

fn same_aggregates(got: &[Row], want: &[Row], table: &str) {
    assert_eq!(got.len(), want.len(), "{table}");
    for (got, want) in got.iter().zip(want) {
        assert_eq!((&got.0, &got.1), (&want.0, &want.1), "{table}");
        assert!(close(got.2, want.2), "{table} cpu avg {got:?} vs {want:?}");
        assert_eq!(got.3, want.3, "{table} cpu max");
        assert!(close(got.4, want.4), "{table} load1 {got:?} vs {want:?}");
        assert_eq!(got.5, want.5, "{table} cpu count");
        assert!(close(got.6, want.6), "{table} ram avg {got:?} vs {want:?}");
        assert!(close(got.7, want.7), "{table} ram max {got:?} vs {want:?}");
        assert_eq!(got.8, want.8, "{table} ram count");
    }
}

/// Checks every rollup row against a direct aggregate of the raw tables;
/// returns the rows.
async fn matches_raw_tables(pool: &MySqlPool) -> Rollups {
    let (got, closed) = host_rollups_match(pool).await;
    same_processes(&got.processes, &closed);
    got
}

/// [`matches_raw_tables`] for a writer with a rollup refresh: the process
/// periods computed are exact, but a period may not have settled yet (the
/// last closed one, up to two minutes after it closed). Returns the rows.
async fn matches_raw_tables_settled(pool: &MySqlPool) -> Rollups {
    let (got, closed) = host_rollups_match(pool).await;
    for g in &got.processes {
        let w = closed
            .iter()
            .find(|w| (&w.0, &w.1, w.2, &w.3) == (&g.0, &g.1, g.2, &g.3))
            .unwrap_or_else(|| panic!("{g:?} is not a closed period"));
        assert_eq!((g.5, g.6), (w.5, w.6), "{g:?} vs {w:?}");
        assert!(close(Some(g.4), Some(w.4)), "process cpu {g:?} vs {w:?}");
    }
    got
}

/// Checks host_minutes and host_ten_minutes against the raw tables;
/// returns every rollup's rows and the closed process periods computed
/// from the history.
async fn host_rollups_match(pool: &MySqlPool) -> (Rollups, Vec<ProcessRow>) {
    let got = rollups(pool).await;
    same_aggregates(&got.minutes, &rows(pool, DIRECT).await, "host_minutes");
    same_aggregates(
        &got.ten_minutes,
        &rows(pool, TEN_DIRECT).await,
        "host_ten_minutes",
    );
    let closed: Vec<ProcessRow> = sqlx::query_as(PROCESS_DIRECT)
        .fetch_all(pool)
        .await
        .unwrap();
    (got, closed)
}

/// Whether `got`'s rows are `want`'s, process periods not yet settled
/// apart.
fn same_but_unsettled(got: &Rollups, want: &Rollups) {
    assert_eq!(got.minutes, want.minutes);
    assert_eq!(got.ten_minutes, want.ten_minutes);
    for g in &got.processes {
        assert!(want.processes.contains(g), "{g:?}");
    }
}

/// Asserts that `got` and `want` (process_ten_minutes rows) are the same
/// rows, averages within rounding.
fn same_processes(got: &[ProcessRow], want: &[ProcessRow]) {
    assert_eq!(got.len(), want.len(), "process_ten_minutes");
    for (g, w) in got.iter().zip(want) {
        assert_eq!(
            (&g.0, &g.1, g.2, &g.3, g.5, g.6),
            (&w.0, &w.1, w.2, &w.3, w.5, w.6)
        );
        assert!(close(Some(g.4), Some(w.4)), "process cpu {g:?} vs {w:?}");
    }
}

/// The reference: `samples` in one batch by a writer exact at every
/// commit, its rollups checked against the raw tables.
async fn reference(name: &str, samples: &[Sample]) -> (TestDatabase, Rollups) {
    let (db, pool, writer) = setup(name).await;
    let all: Vec<&Sample> = samples.iter().collect();
    writer.write(&all).await.unwrap();
    let once = matches_raw_tables(&pool).await;
    (db, once)
}

/// A writer whose rollup refresh is longer than any test, on a database
/// of its own.
async fn lazy_writer(name: &str) -> (TestDatabase, MySqlPool, Writer) {
    let (db, pool, _) = setup(name).await;
    let lazy = Writer::new(pool.clone(), 2).with_rollup_refresh(Duration::from_secs(60));
    (db, pool, lazy)
}

/// Writes `samples` in batches of 37, in order.
async fn write_forward(writer: &Writer, samples: &[Sample]) {
    let n = samples.len().div_ceil(37);
    write_in(writer, samples, 37, &(0..n).collect::<Vec<_>>()).await;
}

/// Writes `samples` in batches of `size`, in the order `order` gives.
async fn write_in(writer: &Writer, samples: &[Sample], size: usize, order: &[usize]) {
    let batches: Vec<&[Sample]> = samples.chunks(size).collect();
    for &i in order {
        let refs: Vec<&Sample> = batches[i].iter().collect();
        writer.write(&refs).await.unwrap();
    }
}

#[tokio::test]
async fn the_rollup_is_exact_however_the_samples_arrive() {
    let samples = fleet();
    let all: Vec<&Sample> = samples.iter().collect();

    // Once, in one batch: the reference, checked against the raw tables.
    let (_db, pool, writer) = setup("rollup_once").await;
    writer.write(&all).await.unwrap();
    let once = matches_raw_tables(&pool).await;
    // 210 s from :17 of a minute end at :47 of the fourth: 4 minutes per
    // host (beta's restart changes nothing here: the rollup is per host,
    // over every boot).
    assert_eq!(once.minutes.len(), 8, "{once:#?}");
    assert_eq!(once.minutes.iter().map(|r| r.5).sum::<u64>(), 420);
    assert_eq!(once.minutes.iter().map(|r| r.8).sum::<u64>(), 420);
    assert_eq!(once.ten_minutes.iter().map(|r| r.5).sum::<u64>(), 420);
    assert_eq!(once.ten_minutes.len(), 4, "two periods per host");
    // The first period (its last 103 s: 21 snapshots) is closed, the
    // second is open and left to the raw table; 3 or 4 processes kept from
    // each snapshot.
    let periods: BTreeSet<&str> = once.processes.iter().map(|r| r.1.as_str()).collect();
    assert_eq!(periods.len(), 1, "{periods:?}");
    let kept: u64 = once.processes.iter().map(|r| r.6).sum();
    assert!(
        (2 * 21 * 3..=2 * 21 * 4).contains(&kept),
        "{kept} history rows"
    );

    // The same batch again (a redelivery): nothing changes.
    writer.write(&all).await.unwrap();
    assert_eq!(rollups(&pool).await, once);

    // Split across batches, in several orders, some redelivered: the same rows.
    let (_db2, pool2, writer2) = setup("rollup_split").await;
    let size = 37;
    let n = samples.len().div_ceil(size);
    let forward: Vec<usize> = (0..n).collect();
    let backward: Vec<usize> = (0..n).rev().collect();
    let mut rng = Lcg(11);
    let mut shuffled = forward.clone();
    for i in (1..shuffled.len()).rev() {
        shuffled.swap(i, rng.next() as usize % (i + 1));
    }
    write_in(&writer2, &samples, size, &backward).await;
    assert_eq!(rollups(&pool2).await, once, "backward");
    write_in(&writer2, &samples, size, &shuffled).await;
    assert_eq!(rollups(&pool2).await, once, "redelivered, shuffled");

    let (_db3, pool3, writer3) = setup("rollup_shuffled").await;
    let mut odd_sizes = samples.clone();
    // Interleave the hosts differently from `samples`, too.
    odd_sizes.reverse();
    let m = odd_sizes.len().div_ceil(53);
    let odd_first: Vec<usize> = (0..m).rev().filter(|i| i % 2 == 1).collect();
    write_in(&writer3, &odd_sizes, 53, &odd_first).await;
    // The rows match the raw tables at every step, not only at the end.
    matches_raw_tables(&pool3).await;
    write_in(&writer3, &odd_sizes, 53, &(0..m).collect::<Vec<_>>()).await;
    assert_eq!(rollups(&pool3).await, once, "odd sizes, reversed");
}

#[tokio::test]
async fn retention_expires_the_rollup_with_the_samples() {
    let (_db, pool, writer) = setup("rollup_retention").await;
    let now = chrono::Utc::now().timestamp_nanos_opt().unwrap();
    let day = 86_400 * SECOND;
    let cpu = |seq, ts| {
        sample(
            "h",
            "b",
            seq,
            ts,
            SampleBody::Cpu(CpuBody {
                busy_pct: 50.0,
                ..CpuBody::default()
            }),
        )
    };
    let procs = |seq, ts| {
        let processes = vec![ProcessEntry {
            pid: 7,
            name: "p".into(),
            ..ProcessEntry::default()
        }];
        sample(
            "h",
            "b",
            seq,
            ts,
            SampleBody::Procs(ProcsBody { processes }),
        )
    };
    let samples = [
        cpu(1, now - 10 * day),
        cpu(2, now),
        procs(3, now - 10 * day),
        procs(4, now),
    ];
    writer
        .write(&samples.iter().collect::<Vec<_>>())
        .await
        .unwrap();
    let count = |table: &'static str| {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>(&format!("SELECT COUNT(*) FROM {table}"))
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    // Before: both samples' rows, except the open period of processes
    // (the new snapshot's), which stays in the raw table. After: the old
    // ones are gone.
    let tables = [
        ("host_minutes", 2, 1),
        ("host_ten_minutes", 2, 1),
        ("process_ten_minutes", 1, 0),
    ];
    for (table, before, _) in tables {
        assert_eq!(count(table).await, before, "{table} before");
    }
    vigia_sink::retention::expire(&pool, &Retention::uniform(Duration::from_secs(7 * 86_400)))
        .await
        .unwrap();
    for (table, _, after) in tables {
        assert_eq!(count(table).await, after, "{table} after");
    }
}

/// Writes `batches` with `writer` in the given order, retrying a batch
/// MySQL turned away as transient (a deadlock between sinks, a lock wait)
/// as the sink's ingest does; returns how many retries it took.
async fn write_retrying(writer: Writer, batches: Vec<Vec<Sample>>) -> u32 {
    let mut retries = 0;
    for batch in batches {
        let refs: Vec<&Sample> = batch.iter().collect();
        loop {
            match writer.write(&refs).await {
                Ok(()) => break,
                // A deadlock between sinks (1213) or a lock wait (1205):
                // the same rows succeed when tried again.
                Err(error) if matches!(error.mysql_number(), Some(1205 | 1213)) => {
                    retries += 1;
                    assert!(retries < 1_000, "MySQL keeps refusing: {error}");
                }
                Err(error) => panic!("a batch was rejected: {error}"),
            }
        }
    }
    retries
}

#[tokio::test(flavor = "multi_thread", worker_threads = 3)]
async fn three_sinks_writing_the_same_hosts_at_once_keep_every_rollup_exact() {
    let samples = fleet();
    let all: Vec<&Sample> = samples.iter().collect();
    let (_db, pool, writer) = setup("rollup_three_ref").await;
    writer.write(&all).await.unwrap();
    let once = matches_raw_tables(&pool).await;

    // Three sinks, each with its own pool, as three processes would have:
    // small batches of both hosts dealt round-robin, every third one also
    // handed to the next sink (a redelivery landing elsewhere), each sink
    // writing its share in its own order, all at once, so transactions on
    // the same host's rollup rows (host_minutes, host_ten_minutes,
    // process_ten_minutes) overlap all the time.
    let (_db2, pool2, _) = setup("rollup_three").await;
    let batches: Vec<Vec<Sample>> = samples.chunks(19).map(<[Sample]>::to_vec).collect();
    let mut shares: [Vec<Vec<Sample>>; 3] = Default::default();
    for (i, batch) in batches.iter().enumerate() {
        shares[i % 3].push(batch.clone());
        if i % 3 == 0 {
            shares[(i + 1) % 3].push(batch.clone());
        }
    }
    shares[1].reverse();
    let mut rng = Lcg(23);
    for i in (1..shares[2].len()).rev() {
        shares[2].swap(i, rng.next() as usize % (i + 1));
    }
    // One sink recomputes every minute it touches on every batch, two
    // only when a minute settles (--rollup-refresh longer than the test):
    // the minutes they leave unsettled are made exact by their flush at
    // stop. Each runs its start's recovery first (nothing to find yet), so
    // that the flush recomputes only what the sink itself left.
    let mut writers = Vec::new();
    for refresh in [0, 60, 60] {
        let sink_pool = connect(&_db2.url(), 2).await.expect("a sink's own pool");
        let writer = Writer::new(sink_pool, 2).with_rollup_refresh(Duration::from_secs(refresh));
        assert_eq!(writer.refresh_open_minutes().await.unwrap(), 0);
        writers.push(writer);
    }
    let tasks: Vec<_> = shares
        .into_iter()
        .zip(&writers)
        .map(|(share, writer)| tokio::spawn(write_retrying(writer.clone(), share)))
        .collect();
    let mut retries = 0;
    for task in tasks {
        retries += task.await.expect("a sink's task");
    }
    eprintln!("three concurrent sinks: {retries} batches retried after a transient error");
    for writer in &writers {
        writer.flush_open_minutes().await.expect("flush at stop");
    }
    let concurrent = matches_raw_tables_settled(&pool2).await;
    same_but_unsettled(&concurrent, &once);
    // A period missing can only be a host's last closed one, which may not
    // have settled yet.
    for missing in once
        .processes
        .iter()
        .filter(|p| !concurrent.processes.contains(p))
    {
        let last = once
            .processes
            .iter()
            .filter(|p| p.0 == missing.0)
            .map(|p| &p.1)
            .max();
        assert_eq!(Some(&missing.1), last, "{missing:?}");
    }
    let hosts_rows = |pool: &MySqlPool| {
        let pool = pool.clone();
        async move {
            sqlx::query_as::<_, (String, String, String)>(
                "SELECT host, CAST(status AS CHAR), CAST(last_seen AS CHAR) FROM hosts ORDER BY host",
            )
            .fetch_all(&pool)
            .await
            .unwrap()
        }
    };
    assert_eq!(
        hosts_rows(&pool2).await,
        hosts_rows(&pool).await,
        "hosts (liveness, last seen) as one sink leaves them"
    );
}

/// `rows` (host_minutes as read) without each host's newest two minutes:
/// what a refresh period longer than the test may leave not yet computed
/// (a minute settles up to a minute after it ends; see
/// sink/src/store/open_minutes.rs).
fn settled(rows: &[Row]) -> Vec<Row> {
    rows.iter()
        .filter(|r| {
            rows.iter()
                .filter(|later| later.0 == r.0 && later.1 > r.1)
                .count()
                >= 2
        })
        .cloned()
        .collect()
}

#[tokio::test]
async fn with_a_refresh_period_a_minute_is_computed_when_it_settles_and_before_by_the_refresh() {
    let samples = fleet();
    let (_db, once) = reference("rollup_refresh_ref", &samples).await;

    // Batches of 37 in order, a refresh period longer than the test: a
    // host's first batch computes its minutes, and from then on each
    // minute is computed by the batch that settles it; each host's last
    // minute or two are not settled yet, and not computed in full.
    let (_db2, pool2, lazy) = lazy_writer("rollup_refresh").await;
    assert_eq!(
        lazy.refresh_open_minutes().await.unwrap(),
        0,
        "nothing to recover"
    );
    write_forward(&lazy, &samples).await;
    let before = rollups(&pool2).await;
    let settled_once = settled(&once.minutes);
    let settled_before: Vec<Row> = before
        .minutes
        .iter()
        .filter(|r| settled_once.iter().any(|s| (&s.0, &s.1) == (&r.0, &r.1)))
        .cloned()
        .collect();
    assert_eq!(settled_before, settled_once, "{before:#?}");
    assert_ne!(before.minutes, once.minutes, "the last minutes wait");
    // The refresh each second finds them not yet due (30 s at least)...
    assert_eq!(lazy.refresh_open_minutes().await.unwrap(), 0);
    // ...and a flush, as at stop, makes them exact.
    assert_eq!(lazy.flush_open_minutes().await.unwrap(), 2);
    same_but_unsettled(&matches_raw_tables_settled(&pool2).await, &once);
    assert_eq!(
        lazy.flush_open_minutes().await.unwrap(),
        0,
        "nothing stale is left"
    );
    // A redelivery of the whole fleet changes nothing.
    let flushed = rollups(&pool2).await;
    write_forward(&lazy, &samples).await;
    lazy.flush_open_minutes().await.unwrap();
    assert_eq!(rollups(&pool2).await, flushed);
}

#[tokio::test]
async fn a_sink_that_stopped_with_open_minutes_left_stale_has_them_recomputed_by_the_next_start() {
    let samples = fleet();
    let (_db, once) = reference("rollup_recover_ref", &samples).await;

    let (_db2, pool2, killed) = lazy_writer("rollup_recover").await;
    // Its start's recovery ran (nothing to find), then batches, then it
    // is gone without a flush, as a SIGKILL leaves it.
    assert_eq!(killed.refresh_open_minutes().await.unwrap(), 0);
    write_forward(&killed, &samples).await;
    drop(killed);
    assert_ne!(rollups(&pool2).await, once, "the open minutes were left");

    let next = Writer::new(pool2.clone(), 2).with_rollup_refresh(Duration::from_secs(60));
    assert_eq!(
        next.refresh_open_minutes().await.unwrap(),
        2,
        "both hosts heard within a day"
    );
    assert_eq!(matches_raw_tables(&pool2).await, once);
}

/// Every process period from the history, the newest too.
const PROCESS_ALL_DIRECT: &str = "SELECT host, CAST(p AS CHAR), pid, name, AVG(cpu_pct), \
    CAST(MAX(rss) AS UNSIGNED), CAST(COUNT(*) AS UNSIGNED) \
    FROM (SELECT host, pid, name, cpu_pct, rss, \
            CAST(DATE_FORMAT(ts, '%Y-%m-%d %H:00:00') AS DATETIME) \
              + INTERVAL (MINUTE(ts) DIV 10 * 10) MINUTE AS p FROM process_samples) s \
    GROUP BY host, p, pid, name ORDER BY host, p, pid, name";

/// [`PROCESS_ALL_DIRECT`]'s rows.
async fn all_periods(pool: &MySqlPool) -> Vec<ProcessRow> {
    sqlx::query_as(PROCESS_ALL_DIRECT)
        .fetch_all(pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_host_gone_quiet_before_its_last_periods_settled_has_them_computed_by_the_sweep() {
    // Snapshots that ended over half an hour ago, 107 s into a period.
    let samples = fleet_periods_ago(4);
    let (_db, pool, lazy) = lazy_writer("rollup_quiet").await;
    write_forward(&lazy, &samples).await;
    lazy.flush_open_minutes().await.unwrap();
    let before = matches_raw_tables_settled(&pool).await;
    let periods = |r: &Rollups| -> BTreeSet<(String, String)> {
        r.processes
            .iter()
            .map(|p| (p.0.clone(), p.1.clone()))
            .collect()
    };
    assert!(periods(&before).len() < 4, "{:?}", periods(&before));

    // Both hosts' last two periods, the newest included: no snapshot
    // will come to settle them.
    assert_eq!(lazy.settle_quiet_hosts().await.unwrap(), 2);
    let after = rollups(&pool).await;
    assert_eq!(periods(&after).len(), 4, "{:?}", periods(&after));
    same_processes(&after.processes, &all_periods(&pool).await);
    // Done once: the next sweep finds nothing, and a redelivery changes
    // nothing.
    assert_eq!(lazy.settle_quiet_hosts().await.unwrap(), 0);
    write_forward(&lazy, &samples).await;
    assert_eq!(rollups(&pool).await, after);

    // A late snapshot of alpha's newest period (a sink that held it, an
    // agent whose clock is behind): not late by the batch's rule, since it
    // is in the newest period; the next sweep sees the counts differ.
    let last = samples
        .iter()
        .filter(|s| s.host == "alpha" && matches!(s.body, SampleBody::Procs(_)))
        .max_by_key(|s| s.ts)
        .unwrap();
    let mut late = last.clone();
    late.seq += 1_000_000;
    late.ts -= SECOND;
    lazy.write(&[&late]).await.unwrap();
    assert_eq!(lazy.settle_quiet_hosts().await.unwrap(), 1, "alpha again");
    same_processes(&rollups(&pool).await.processes, &all_periods(&pool).await);
    assert_eq!(lazy.settle_quiet_hosts().await.unwrap(), 0);
}

#[tokio::test]
async fn the_sweep_leaves_hosts_quiet_for_over_an_hour_so_its_cost_stays_bounded_on_a_churning_fleet(
) {
    // Snapshots that ended over an hour ago (70 to 80 minutes).
    let samples = fleet_periods_ago(8);
    let (_db, _, lazy) = lazy_writer("rollup_quiet_long").await;
    write_forward(&lazy, &samples).await;
    assert_eq!(lazy.settle_quiet_hosts().await.unwrap(), 0);
    // The same fleet half an hour ago is swept (the test above).
    let recent = fleet_periods_ago(4);
    let (_db2, _, lazy) = lazy_writer("rollup_quiet_recent").await;
    write_forward(&lazy, &recent).await;
    assert_eq!(lazy.settle_quiet_hosts().await.unwrap(), 2);
}
