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
//! printed apart: they do not grow with retention.

use std::path::PathBuf;
use std::time::Duration;

use sqlx::Row;
use vigia_dashboards::fill::{self, Plan};
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
    let rows = sqlx::query(
        "SELECT table_name AS name, table_rows AS n, data_length AS data, \
         index_length AS idx FROM information_schema.tables \
         WHERE table_schema = DATABASE() AND table_type = 'BASE TABLE' \
         AND table_name <> '_sqlx_migrations' ORDER BY data_length + index_length DESC",
    )
    .fetch_all(&pool)
    .await?;
    println!("host-days in the data: {host_days:.2} (from {cpu_rows} cpu rows)");
    println!("| table | rows (est.) | data MiB | index MiB | bytes per host-day |");
    println!("|---|---|---|---|---|");
    let (mut growing, mut fixed) = (0.0, 0.0);
    for row in rows {
        let name: String = row.try_get("name")?;
        let n: u64 = row.try_get("n")?;
        let data: u64 = row.try_get("data")?;
        let idx: u64 = row.try_get("idx")?;
        let bytes = (data + idx) as f64;
        let per = if PER_HOST.contains(&name.as_str()) {
            fixed += bytes / args.hosts as f64;
            format!("{:.0} per host (does not grow)", bytes / args.hosts as f64)
        } else {
            growing += bytes / host_days;
            format!("{:.0}", bytes / host_days)
        };
        println!(
            "| {name} | {n} | {:.1} | {:.1} | {per} |",
            data as f64 / 1048576.0,
            idx as f64 / 1048576.0
        );
    }
    println!(
        "total: {:.1} MB per host-day of history, plus {:.1} kB per host; at a 7-day \
         retention {:.0} MB per host, {:.0} GB for 2,000 hosts",
        growing / 1e6,
        fixed / 1e3,
        (growing * 7.0 + fixed) / 1e6,
        (growing * 7.0 + fixed) * 2000.0 / 1e9
    );
    pool.close().await;
    drop(db);
    drop(server);
    Ok(())
}
