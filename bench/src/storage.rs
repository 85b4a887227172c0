//! Bytes on disk per host per day, for every table.
//!
//! A synthetic fleet at the publisher's defaults is written through the
//! sink's own insert path (`vigia_dashboards::fill`, the filler the
//! dashboard benchmark uses) into a private mariadbd started with
//! `mysql/conf/vigia.cnf`, the settings the product ships. Every table is
//! then rebuilt (`OPTIMIZE TABLE`, so pages are as full as steady state
//! leaves them, not as the fill's order happened to) and its data and index
//! bytes read from information_schema.
//!
//! Host-days are counted from the data, not assumed: each `cpu_samples` row
//! is one `--interval` of one host's life (the filler's fleet churns: some
//! hosts join late, some leave early). The per-host figures of tables that
//! hold one row per host whatever the history (`hosts`, `process_lists`) are
//! printed apart: they do not grow with retention. The totals follow the
//! sink's default retention tiers (sink/src/retention.rs).
//!
//! Then retention's cost, old way against new, on the same rows: each
//! partitioned table is copied without partitions and expired there as the
//! sink did before migration 0010 (per host, `DELETE ... LIMIT 2000` until
//! none is left; the statements' time, without the pauses between them),
//! and expired in the original by dropping its days, as the sink does now.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use sqlx::Row;
use vigia_dashboards::fill::{self, Plan};
use vigia_sink::partitions::TABLES;
use vigia_sink::retention::{Retention, Tier};
use vigia_testkit::{Mariadbd, TestDatabase};

#[derive(clap::Args)]
pub struct Args {
    #[arg(long, default_value_t = 20)]
    hosts: u32,
    /// History to generate, ending now.
    #[arg(long, default_value = "6h", value_parser = humantime::parse_duration)]
    span: Duration,
    /// Processes in each snapshot.
    #[arg(long, default_value_t = 400)]
    processes: u32,
    /// The option file of the private mariadbd.
    #[arg(long, default_value = "mysql/conf/vigia.cnf")]
    mysql_config: PathBuf,
}

/// Tables with one row per host (or a bounded number), whatever the
/// history: their bytes do not grow with retention.
const PER_HOST: [&str; 2] = ["hosts", "process_lists"];

pub async fn run(args: Args) -> anyhow::Result<()> {
    let config = std::fs::canonicalize(&args.mysql_config)
        .map_err(|e| anyhow::anyhow!("--mysql-config {}: {e}", args.mysql_config.display()))?;
    let server = Mariadbd::start_with_config(&config);
    let db = TestDatabase::on(
        &format!("mysql://root@127.0.0.1:{}", server.port),
        "bench_storage",
    );
    let plan = Plan {
        prefix: "vm".into(),
        processes: args.processes,
        writers: 2,
        ..Plan::small(args.hosts, args.span)
    };
    println!("== storage: bytes on disk per host per day, every table");
    println!(
        "config: {} hosts x {} through the sink's writer, cpu + ram every {}, procs ({} \
         processes) every {}, history top {}; private mariadbd --defaults-file={}",
        args.hosts,
        humantime::format_duration(args.span),
        humantime::format_duration(plan.interval),
        args.processes,
        humantime::format_duration(plan.procs_interval),
        plan.history_top,
        config.display()
    );
    let report = fill::fill(&db.url(), &plan).await?;
    println!(
        "filled: {} samples in {:.1} s",
        report.samples,
        report.elapsed.as_secs_f64()
    );
    let pool = sqlx::mysql::MySqlPool::connect(&db.url()).await?;
    let cpu_rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM cpu_samples")
        .fetch_one(&pool)
        .await?;
    let host_days = cpu_rows as f64 * plan.interval.as_secs_f64() / 86_400.0;
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name FROM information_schema.tables \
         WHERE table_schema = DATABASE() AND table_type = 'BASE TABLE' \
         AND table_name <> '_sqlx_migrations'",
    )
    .fetch_all(&pool)
    .await?;
    for table in &tables {
        sqlx::query(&format!("OPTIMIZE TABLE `{table}`"))
            .execute(&pool)
            .await?;
    }
    vigia_testkit::flush_dirty_pages(&pool).await?;
    let rows = tables_on_disk(&pool).await?;
    let compression: String =
        sqlx::query_scalar("SELECT CAST(@@innodb_compression_default AS CHAR)")
            .fetch_one(&pool)
            .await?;
    println!("host-days in the data: {host_days:.2} (from {cpu_rows} cpu rows)");
    println!("innodb_compression_default: {compression}");
    println!("| table | rows (est.) | pages MiB (data + index) | on disk MiB | bytes on disk per host-day |");
    println!("|---|---|---|---|---|");
    let (mut growing, mut fixed) = (0.0, 0.0);
    let mut per_table: Vec<(String, f64)> = Vec::new();
    for TableBytes {
        name,
        rows: n,
        pages,
        disk,
    } in rows
    {
        let bytes = disk as f64;
        let per = if PER_HOST.contains(&name.as_str()) {
            fixed += bytes / args.hosts as f64;
            format!("{:.0} per host (does not grow)", bytes / args.hosts as f64)
        } else {
            growing += bytes / host_days;
            per_table.push((name.clone(), bytes / host_days));
            format!("{:.0}", bytes / host_days)
        };
        println!(
            "| {name} | {n} | {:.1} | {:.1} | {per} |",
            pages as f64 / 1048576.0,
            disk as f64 / 1048576.0
        );
    }
    let tiers = default_tiers();
    let kept_days = |table: &str| {
        let tier = TABLES
            .iter()
            .find(|t| t.0 == table)
            .map_or(Tier::Raw, |t| t.2);
        tiers.of(tier).as_secs_f64() / 86_400.0
    };
    let at_retention: f64 = per_table
        .iter()
        .map(|(table, per_day)| per_day * kept_days(table))
        .sum::<f64>()
        + fixed;
    println!(
        "total: {:.1} MB per host-day of history, plus {:.1} kB per host; at the default \
         retention (raw {} d, minutes {} d, ten minutes {} d) {:.0} MB per host, {:.0} GB for 2,000 hosts",
        growing / 1e6,
        fixed / 1e3,
        tiers.raw.as_secs() / 86_400,
        tiers.minutes.as_secs() / 86_400,
        tiers.ten_minutes.as_secs() / 86_400,
        at_retention / 1e6,
        at_retention * 2000.0 / 1e9
    );
    retention_cost(&pool, host_days).await?;
    pool.close().await;
    drop(db);
    drop(server);
    Ok(())
}

/// One table's size.
pub(crate) struct TableBytes {
    pub name: String,
    /// information_schema's estimate.
    pub rows: u64,
    /// Data and index pages, uncompressed.
    pub pages: u64,
    /// What its files take on disk.
    pub disk: u64,
}

/// Every table of the connection's database, largest on disk first.
///
/// Bytes on disk are what the files take (their allocated blocks), not what
/// their pages hold. The two differ by the files' free space and, with
/// InnoDB page compression (`innodb-compression-default` in
/// mysql/conf/vigia.cnf), by the holes punched where a compressed page
/// needed fewer blocks. Call [`vigia_testkit::flush_dirty_pages`] first.
pub(crate) async fn tables_on_disk(pool: &sqlx::MySqlPool) -> anyhow::Result<Vec<TableBytes>> {
    let rows = sqlx::query(
        "SELECT t.table_name AS name, t.table_rows AS n, t.data_length + t.index_length AS pages, \
         CAST(COALESCE((SELECT SUM(s.ALLOCATED_SIZE) FROM information_schema.INNODB_SYS_TABLESPACES s \
           WHERE s.NAME = CONCAT(t.table_schema, '/', t.table_name) \
              OR LEFT(s.NAME, CHAR_LENGTH(t.table_schema) + CHAR_LENGTH(t.table_name) + 4) \
                 = CONCAT(t.table_schema, '/', t.table_name, '#P#')), 0) AS UNSIGNED) AS disk \
         FROM information_schema.tables t \
         WHERE t.table_schema = DATABASE() AND t.table_type = 'BASE TABLE' \
         AND t.table_name <> '_sqlx_migrations' ORDER BY disk DESC",
    )
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|row| {
            Ok(TableBytes {
                name: row.try_get("name")?,
                rows: row.try_get("n")?,
                pages: row.try_get("pages")?,
                disk: row.try_get("disk")?,
            })
        })
        .collect()
}

/// The sink's retention tiers when no flag is given.
pub(crate) fn default_tiers() -> Retention {
    use clap::Parser as _;
    vigia_sink::config::Config::try_parse_from(["vigia-sink"])
        .ok()
        .and_then(|c| c.retention().ok())
        .unwrap_or_else(|| Retention::uniform(Duration::from_secs(7 * 86_400)))
}

/// Expires every partitioned table's rows both ways; prints the time each
/// took, per table and per host-day dropped.
async fn retention_cost(pool: &sqlx::MySqlPool, host_days: f64) -> anyhow::Result<()> {
    println!(
        "== retention: the same rows expired row by row (before 0010) and by dropping their days"
    );
    println!("| table | rows | row by row s | drop days s | row by row / drop |");
    println!("|---|---|---|---|---|");
    let (mut old_total, mut new_total) = (Duration::ZERO, Duration::ZERO);
    for (table, column, _) in TABLES {
        let copy = format!("{table}_rowwise");
        for sql in [
            format!("CREATE TABLE {copy} LIKE {table}"),
            format!("ALTER TABLE {copy} REMOVE PARTITIONING"),
            format!("INSERT INTO {copy} SELECT * FROM {table}"),
        ] {
            sqlx::query(&sql).execute(pool).await?;
        }
        let rows: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
            .fetch_one(pool)
            .await?;
        // The old way: every host's rows older than the cutoff (here: all).
        let key = if table == "sink_health" {
            "sink"
        } else {
            "host"
        };
        let owners: Vec<String> = sqlx::query_scalar(&format!("SELECT DISTINCT {key} FROM {copy}"))
            .fetch_all(pool)
            .await?;
        let delete = format!("DELETE FROM {copy} WHERE {key} = ? AND {column} < ? LIMIT 2000");
        let cutoff = chrono::Utc::now().naive_utc() + chrono::Duration::days(30);
        let started = Instant::now();
        for owner in &owners {
            while sqlx::query(&delete)
                .bind(owner)
                .bind(cutoff)
                .execute(pool)
                .await?
                .rows_affected()
                == 2000
            {}
        }
        let old = started.elapsed();
        // The new way: drop the days (every one but `future`).
        let days: Vec<String> = sqlx::query_scalar(
            "SELECT CAST(PARTITION_NAME AS CHAR) FROM information_schema.PARTITIONS \
             WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND PARTITION_NAME <> 'future'",
        )
        .bind(table)
        .fetch_all(pool)
        .await?;
        let started = Instant::now();
        sqlx::query(&format!(
            "ALTER TABLE {table} DROP PARTITION {}",
            days.join(", ")
        ))
        .execute(pool)
        .await?;
        let new = started.elapsed();
        let left: i64 = sqlx::query_scalar(&format!(
            "SELECT (SELECT COUNT(*) FROM {table}) + (SELECT COUNT(*) FROM {copy})"
        ))
        .fetch_one(pool)
        .await?;
        anyhow::ensure!(left == 0, "{table}: {left} rows left after expiring all");
        sqlx::query(&format!("DROP TABLE {copy}"))
            .execute(pool)
            .await?;
        println!(
            "| {table} | {rows} | {:.3} | {:.3} | {:.0}x |",
            old.as_secs_f64(),
            new.as_secs_f64(),
            old.as_secs_f64() / new.as_secs_f64().max(1e-6)
        );
        old_total += old;
        new_total += new;
    }
    println!(
        "retention per host-day dropped: row by row {:.3} s, dropping days {:.4} s \
         ({:.0}x less database time)",
        old_total.as_secs_f64() / host_days,
        new_total.as_secs_f64() / host_days,
        old_total.as_secs_f64() / new_total.as_secs_f64().max(1e-6)
    );
    Ok(())
}
