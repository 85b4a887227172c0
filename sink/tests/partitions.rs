//! Daily partitions (mysql/migrations/0010_daily_partitions.sql,
//! sink/src/partitions.rs): days created ahead, expired days dropped whole
//! and each tier after its own retention, a row past the newest day kept,
//! a pass cut short anywhere finished by the next, several sinks at once,
//! and a database of the schema before 0010, holding data, migrated
//! without losing or changing a row.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{Days, NaiveDate, NaiveDateTime, Utc};
use sqlx::MySqlPool;
use vigia_schema::{CpuBody, RamBody, Sample, SampleBody};
use vigia_sink::partitions::{self, name_of, Partition, AHEAD_DAYS, TABLES};
use vigia_sink::retention::Retention;
use vigia_sink::store::{connect, Writer};
use vigia_testkit::TestDatabase;

use common::sample;

const DAY: Duration = Duration::from_secs(86_400);

fn week() -> Retention {
    Retention::uniform(7 * DAY)
}

fn today() -> NaiveDate {
    Utc::now().date_naive()
}

/// Noon of `today + offset` days, as unix nanoseconds.
fn noon(offset: i64) -> i64 {
    let day = today()
        .checked_add_signed(chrono::Duration::days(offset))
        .unwrap();
    day.and_hms_opt(12, 0, 0)
        .unwrap()
        .and_utc()
        .timestamp_nanos_opt()
        .unwrap()
}

fn cpu(seq: u64, ts: i64) -> Sample {
    sample(
        "h",
        "b",
        seq,
        ts,
        SampleBody::Cpu(CpuBody {
            busy_pct: 10.0 + seq as f32,
            per_cpu_busy_pct: vec![1.0],
            ..CpuBody::default()
        }),
    )
}

fn ram(seq: u64, ts: i64) -> Sample {
    sample(
        "h",
        "b",
        seq,
        ts,
        SampleBody::Ram(RamBody {
            total: 1000,
            used: 100 * seq,
            ..RamBody::default()
        }),
    )
}

/// One cpu and one ram sample at noon of each day `offsets`, seq from 1.
async fn write_days(writer: &Writer, offsets: &[i64]) {
    let samples: Vec<Sample> = offsets
        .iter()
        .enumerate()
        .flat_map(|(i, &d)| [cpu(i as u64 + 1, noon(d)), ram(i as u64 + 1, noon(d))])
        .collect();
    let refs: Vec<&Sample> = samples.iter().collect();
    writer.write(&refs).await.unwrap();
}

async fn layout(pool: &MySqlPool, table: &'static str) -> Vec<Partition> {
    let mut conn = pool.acquire().await.unwrap();
    partitions::layout(&mut conn, table).await.unwrap()
}

/// The days a table's partitions hold, oldest first (without `future`,
/// which must be last).
async fn days(pool: &MySqlPool, table: &'static str) -> Vec<NaiveDate> {
    let parts = layout(pool, table).await;
    let last = parts.last().unwrap();
    assert_eq!(
        (last.name.as_str(), last.below),
        ("future", None),
        "{table}"
    );
    parts[..parts.len() - 1]
        .iter()
        .map(|p| {
            let below = p.below.unwrap();
            let day = below - Days::new(1);
            assert_eq!(p.name, name_of(day), "{table}: a day named for another");
            day
        })
        .collect()
}

/// Every day from `first` to `last`, inclusive.
fn span(first: NaiveDate, last: NaiveDate) -> Vec<NaiveDate> {
    first.iter_days().take_while(|d| *d <= last).collect()
}

fn offset(days: i64) -> NaiveDate {
    today()
        .checked_add_signed(chrono::Duration::days(days))
        .unwrap()
}

/// Now, `days` on. (A run that crosses midnight UTC between its first
/// and last step could see two todays; the tests take seconds.)
fn at(days: i64) -> NaiveDateTime {
    Utc::now().naive_utc() + chrono::Duration::days(days)
}

async fn count(pool: &MySqlPool, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.unwrap()
}

/// Runs a pass, retrying while another session still holds the lock (a
/// pass cut short releases it when the server sees its session end).
async fn manage_until_done(
    pool: &MySqlPool,
    retention: &Retention,
    now: NaiveDateTime,
) -> partitions::Report {
    for _ in 0..100 {
        let report = partitions::manage(pool, retention, now).await.unwrap();
        if !report.skipped {
            return report;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the partitions lock was never free");
}

#[tokio::test]
async fn days_are_created_ahead_and_expired_days_dropped_whole_each_tier_after_its_own() {
    let db = TestDatabase::new("partitions_days");
    let pool = connect(&db.url(), 2).await.unwrap();
    let writer = Writer::new(pool.clone(), 10);
    // A new database has a day for each of the last eight, today and two
    // ahead.
    for (table, _, _) in TABLES {
        assert_eq!(
            days(&pool, table).await,
            span(offset(-8), offset(AHEAD_DAYS as i64)),
            "{table}"
        );
    }
    write_days(&writer, &[-9, -3, 0]).await;
    let tiers = Retention {
        raw: 7 * DAY,
        minutes: 35 * DAY,
        ten_minutes: 400 * DAY,
    };

    // Now: only the raw tables' oldest day is past 7 days (it also holds
    // the sample from nine days ago, older than any day).
    let report = manage_until_done(&pool, &tiers, at(0)).await;
    let raw = TABLES
        .iter()
        .filter(|t| t.2 == vigia_sink::retention::Tier::Raw)
        .count();
    assert_eq!((report.added, report.dropped), (0, raw));
    assert_eq!(
        days(&pool, "cpu_samples").await,
        span(offset(-7), offset(2))
    );
    assert_eq!(common::seqs(&pool, "cpu_samples", "h").await, [2, 3]);
    assert_eq!(common::seqs(&pool, "ram_samples", "h").await, [2, 3]);
    assert_eq!(
        count(&pool, "SELECT COUNT(*) FROM host_minutes").await,
        3,
        "the minute tier keeps what the raw tier dropped"
    );

    // Nine days on: nine days ahead created in every table; the raw days
    // up to the cutoff's dropped, the rollups' kept.
    let report = manage_until_done(&pool, &tiers, at(9)).await;
    assert_eq!(report.added, 9 * TABLES.len());
    assert_eq!(report.dropped, 9 * raw);
    assert_eq!(
        days(&pool, "cpu_samples").await,
        span(offset(2), offset(11))
    );
    assert_eq!(
        days(&pool, "host_minutes").await,
        span(offset(-8), offset(11))
    );
    assert!(common::seqs(&pool, "cpu_samples", "h").await.is_empty());
    assert_eq!(count(&pool, "SELECT COUNT(*) FROM host_minutes").await, 3);
    assert_eq!(
        count(&pool, "SELECT COUNT(*) FROM host_ten_minutes").await,
        3
    );

    // And a pass with nothing to do does nothing.
    let again = manage_until_done(&pool, &tiers, at(9)).await;
    assert_eq!((again.added, again.dropped), (0, 0));
}

#[tokio::test]
async fn a_row_past_the_newest_day_waits_in_future_and_moves_to_its_own_day() {
    let db = TestDatabase::new("partitions_future");
    let pool = connect(&db.url(), 2).await.unwrap();
    let writer = Writer::new(pool.clone(), 10);
    write_days(&writer, &[0, 4]).await;
    let in_partition = |name: String| {
        let pool = pool.clone();
        async move {
            count(
                &pool,
                &format!("SELECT COUNT(*) FROM cpu_samples PARTITION (`{name}`)"),
            )
            .await
        }
    };
    assert_eq!(in_partition("future".into()).await, 1);

    manage_until_done(&pool, &week(), at(3)).await;
    assert_eq!(in_partition("future".into()).await, 0);
    assert_eq!(in_partition(name_of(offset(4))).await, 1);
    assert_eq!(in_partition(name_of(offset(0))).await, 1);
    assert_eq!(common::seqs(&pool, "cpu_samples", "h").await, [1, 2]);
}

/// The layout every table must have after a completed pass at `at(days)`
/// with a week's retention: from the first day not wholly past the cutoff
/// to two days ahead.
async fn assert_layout_after(pool: &MySqlPool, days_on: i64) {
    for (table, _, _) in TABLES {
        assert_eq!(
            days(pool, table).await,
            span(offset(days_on - 7), offset(days_on + AHEAD_DAYS as i64)),
            "{table}"
        );
    }
}

#[tokio::test]
async fn a_pass_cut_short_anywhere_is_finished_by_the_next() {
    let db = TestDatabase::new("partitions_cut_short");
    let pool = connect(&db.url(), 4).await.unwrap();
    let writer = Writer::new(pool.clone(), 10);
    let offsets: Vec<i64> = (-6..=0).collect();
    write_days(&writer, &offsets).await;

    // Passes every half day, each aborted after a different delay: at the
    // lock, between tables, in the middle of a statement, or not at all.
    // The server applies or refuses each statement whole.
    let mut aborted = 0;
    for (half_days, delay_ms) in [0u64, 1, 3, 8, 20, 50, 120, 300].into_iter().enumerate() {
        let pool2 = pool.clone();
        let now = Utc::now().naive_utc() + chrono::Duration::hours(12 * half_days as i64);
        let task = tokio::spawn(async move { partitions::manage(&pool2, &week(), now).await });
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        task.abort();
        if let Err(e) = task.await {
            assert!(e.is_cancelled());
            aborted += 1;
        }
    }
    assert!(aborted > 0, "no pass was cut short");
    let days_on = 4;
    manage_until_done(&pool, &week(), at(days_on)).await;
    assert_layout_after(&pool, days_on).await;
    // Every row of a day still kept is there.
    let kept: Vec<u64> = offsets
        .iter()
        .enumerate()
        .filter(|(_, &d)| d >= days_on - 7)
        .map(|(i, _)| i as u64 + 1)
        .collect();
    assert_eq!(kept, [4, 5, 6, 7]);
    assert_eq!(common::seqs(&pool, "cpu_samples", "h").await, kept);
    assert_eq!(common::seqs(&pool, "ram_samples", "h").await, kept);
}

#[tokio::test]
async fn sinks_managing_at_once_leave_one_layout_and_no_error() {
    let db = TestDatabase::new("partitions_many_sinks");
    let writer_pool = connect(&db.url(), 2).await.unwrap();
    write_days(&Writer::new(writer_pool.clone(), 10), &[-2, -1, 0]).await;
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let pool = connect(&db.url(), 2).await.unwrap();
        tasks.push(tokio::spawn(async move {
            partitions::manage(&pool, &week(), at(5)).await
        }));
    }
    let mut done = 0;
    for task in tasks {
        let report = task.await.unwrap().unwrap();
        if !report.skipped {
            done += 1;
        }
    }
    assert!(done >= 1);
    manage_until_done(&writer_pool, &week(), at(5)).await;
    assert_layout_after(&writer_pool, 5).await;
    assert_eq!(
        common::seqs(&writer_pool, "cpu_samples", "h").await,
        [1, 2, 3]
    );
}

/// A table's columns, in order.
async fn columns(pool: &MySqlPool, table: &str) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT CAST(COLUMN_NAME AS CHAR) FROM information_schema.COLUMNS \
         WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
    )
    .bind(table)
    .fetch_all(pool)
    .await
    .unwrap()
}

/// A digest of every row of `table` over `columns`: its count and an
/// order-free hash of the values.
async fn digest(pool: &MySqlPool, table: &str, columns: &[String]) -> (i64, i64) {
    let quoted: Vec<String> = columns
        .iter()
        .map(|c| format!("COALESCE(`{c}`, '~')"))
        .collect();
    sqlx::query_as(&format!(
        "SELECT COUNT(*), CAST(COALESCE(BIT_XOR(CRC32(CONCAT_WS('|', {}))), 0) AS SIGNED) FROM {table}",
        quoted.join(", ")
    ))
    .fetch_one(pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_database_holding_data_is_migrated_without_losing_or_changing_a_row() {
    let db = TestDatabase::new("partitions_migration");
    use sqlx::migrate::MigrateDatabase as _;
    sqlx::MySql::create_database(&db.url()).await.unwrap();
    let pool = sqlx::mysql::MySqlPoolOptions::new()
        .max_connections(2)
        .connect(&db.url())
        .await
        .unwrap();
    // The schema as it was before 0010.
    let mut before = sqlx::migrate::Migrator::new(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../mysql/migrations"
    )))
    .await
    .unwrap();
    let earlier: Vec<_> = before
        .migrations
        .iter()
        .filter(|m| m.version < 10)
        .cloned()
        .collect();
    assert_eq!(earlier.len(), 9);
    before.migrations = earlier.into();
    before.run(&pool).await.unwrap();
    // Twelve days of samples, and the rollups and events kept from them,
    // written as the schema of then takes them (today's writer fills
    // columns later migrations add).
    let offsets: Vec<i64> = (-11..=0).collect();
    for (i, &d) in offsets.iter().enumerate() {
        let ts = chrono::DateTime::from_timestamp_nanos(noon(d)).naive_utc();
        let seq = i as u64 + 1;
        for sql in [
            "INSERT INTO cpu_samples (host, boot, seq, ts, busy_pct, user_pct, system_pct, \
             iowait_pct, steal_pct, idle_pct, load1, load5, load15, cpus, per_cpu_busy_pct) \
             VALUES ('h', 'b', ?, ?, 10 + ?, 1, 2, 3, 4, 5, 0.5, 0.25, 0.125, 2, '[1]')",
            "INSERT INTO ram_samples (host, boot, seq, ts, total, used, free, available, buffers, \
             cached, swap_total, swap_free) VALUES ('h', 'b', ?, ?, 1000, 100 * ?, 1, 2, 3, 4, 5, 6)",
            "INSERT INTO host_events (host, boot, kind, seq, ts, detail) \
             VALUES ('h', 'b', 'hello', ?, ?, CONCAT('day ', ?))",
            "INSERT INTO procs_snapshots (host, boot, seq, ts, processes, running, sleeping, \
             blocked, zombie, other) VALUES ('h', 'b', ?, ?, 40 + ?, 1, 2, 3, 4, 5)",
            "INSERT INTO process_samples (host, boot, seq, ts, pid, name, user, state, rss, \
             mem_pct, cpu_pct, threads) VALUES ('h', 'b', ?, ?, 7, 'nginx', 'www', 'S', 4096, \
             0.5, ?, 3)",
        ] {
            sqlx::query(sql)
                .bind(seq)
                .bind(ts)
                .bind(seq)
                .execute(&pool)
                .await
                .unwrap();
        }
    }
    for sql in [
        "INSERT INTO host_minutes (host, minute, cpu_busy_pct, cpu_busy_max, load1, cpu_samples) \
         SELECT host, CAST(DATE_FORMAT(ts, '%Y-%m-%d %H:%i:00') AS DATETIME), AVG(busy_pct), \
         MAX(busy_pct), AVG(load1), COUNT(*) FROM cpu_samples GROUP BY 1, 2",
        "INSERT INTO host_ten_minutes (host, period, cpu_busy_pct, cpu_samples) \
         SELECT host, minute, cpu_busy_pct, cpu_samples FROM host_minutes",
    ] {
        sqlx::query(sql).execute(&pool).await.unwrap();
    }
    // Each table's digest over the columns it has now.
    let mut digests = BTreeMap::new();
    for (table, _, _) in TABLES {
        let columns = columns(&pool, table).await;
        digests.insert(table, (digest(&pool, table, &columns).await, columns));
    }
    assert_eq!(digests["cpu_samples"].0 .0, 12);
    assert_eq!(digests["process_samples"].0 .0, 12);
    assert_eq!(digests["host_minutes"].0 .0, 12);

    // The sink starts on it: 0010 and every later migration run.
    let pool = connect(&db.url(), 2).await.unwrap();
    for (table, _, _) in TABLES {
        let (was, columns) = &digests[table];
        assert_eq!(&digest(&pool, table, columns).await, was, "{table}");
    }
    // 0013 keyed the raw samples by (host, ts, ...) and dropped the
    // (host, ts) indexes that only repeated it.
    for (table, key) in [
        ("cpu_samples", "host,ts,boot,seq"),
        ("ram_samples", "host,ts,boot,seq"),
        ("procs_snapshots", "host,ts,boot,seq"),
        ("process_samples", "host,ts,boot,seq,pid"),
        ("publisher_health", "host,ts,boot,seq"),
    ] {
        let indexes: Vec<(String, String)> = sqlx::query_as(
            "SELECT CAST(INDEX_NAME AS CHAR), \
             CAST(GROUP_CONCAT(COLUMN_NAME ORDER BY SEQ_IN_INDEX) AS CHAR) \
             FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() \
             AND TABLE_NAME = ? GROUP BY INDEX_NAME ORDER BY INDEX_NAME",
        )
        .bind(table)
        .fetch_all(&pool)
        .await
        .unwrap();
        assert!(
            indexes.contains(&("PRIMARY".into(), key.into())),
            "{table}: {indexes:?}"
        );
        assert!(
            !indexes.iter().any(|(_, columns)| columns == "host,ts"),
            "{table}: {indexes:?}"
        );
    }
    // 0012 computed the Host dashboard's minute columns from the samples.
    assert_eq!(
        count(
            &pool,
            "SELECT COUNT(*) FROM host_minutes WHERE cpu_user_pct = 1 AND load15 = 0.125 \
             AND ram_cached = 4 AND ram_total = 1000"
        )
        .await,
        12
    );
    // Every row in its own day, from the oldest data's.
    assert_eq!(
        days(&pool, "cpu_samples").await,
        span(offset(-11), offset(2))
    );
    for d in [-11, -5, 0] {
        let n = count(
            &pool,
            &format!(
                "SELECT COUNT(*) FROM cpu_samples PARTITION (`{}`)",
                name_of(offset(d))
            ),
        )
        .await;
        assert_eq!(n, 1, "day {d}");
    }
    // A redelivered sample is still a no-op.
    write_days(&Writer::new(pool.clone(), 10), &offsets).await;
    let (was, columns) = &digests["cpu_samples"];
    assert_eq!(&digest(&pool, "cpu_samples", columns).await, was);
    // And retention now drops the days past it.
    manage_until_done(&pool, &week(), at(0)).await;
    assert_eq!(
        common::seqs(&pool, "cpu_samples", "h").await,
        (5..=12).collect::<Vec<u64>>()
    );
}

#[tokio::test]
async fn the_shipped_settings_page_compress_every_table_and_every_day_the_sink_adds() {
    let server = vigia_testkit::Mariadbd::shipped();
    let db = TestDatabase::on(
        &format!("mysql://root@127.0.0.1:{}", server.port),
        "compressed",
    );
    let pool = connect(&db.url(), 2).await.unwrap();
    let plain: Vec<String> = sqlx::query_scalar(
        "SELECT CAST(table_name AS CHAR) FROM information_schema.TABLES \
         WHERE table_schema = DATABASE() AND table_type = 'BASE TABLE' \
         AND table_name <> '_sqlx_migrations' \
         AND LOWER(create_options) NOT LIKE '%page_compressed%'",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        plain,
        Vec::<String>::new(),
        "tables created without page compression"
    );

    // A day the sink creates itself, ten days on, filled with a day of one
    // host's cpu samples (one every second) and written out.
    manage_until_done(&pool, &week(), at(10)).await;
    let day = offset(10);
    let start = noon(10);
    let samples: Vec<Sample> = (0..20_000u64)
        .map(|i| cpu(i + 1, start + i as i64 * 1_000_000_000))
        .collect();
    let writer = Writer::new(pool.clone(), 10);
    for chunk in samples.chunks(5000) {
        let refs: Vec<&Sample> = chunk.iter().collect();
        writer.write(&refs).await.unwrap();
    }
    vigia_testkit::flush_dirty_pages(&pool).await.unwrap();
    let name = format!("{}/cpu_samples#P#{}", db.name, name_of(day));
    let (file, allocated): (u64, u64) = sqlx::query_as(
        "SELECT FILE_SIZE, ALLOCATED_SIZE FROM information_schema.INNODB_SYS_TABLESPACES \
         WHERE NAME = ?",
    )
    .bind(&name)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(
        file >= 2 << 20 && allocated * 10 < file * 7,
        "{name}: {allocated} bytes on disk of a {file}-byte file: not compressed"
    );
}
