//! Ingest on a database already holding a full retention of history,
//! against the same ingest on empty tables, side by side in one run.
//!
//! Whether the database's cost stays flat as history grows is a question
//! about the write path only: each sample table is partitioned by day, so
//! a sample lands in today's partition and retention drops whole days. This
//! benchmark checks that claim where it could fail: the buffer pool shared
//! with the history, today's partition grown to its size of the day, the
//! rollups' reads of the raw tables, and the sink's start-up work on a big
//! database.
//!
//! One private mariadbd (`mysql/conf/vigia.cnf`, the settings the product
//! ships) holds two databases:
//!
//! - **full**: the fleet's history at the sink's default retention tiers,
//!   every day in its own partition. An hour of it is written through the
//!   sink's own writer (`vigia_dashboards::fill`), then copied back hour by
//!   hour, server-side, as far as each table's tier keeps it: raw samples
//!   2 days, minutes 35, ten minutes 90. Writing 90 days of a fleet through
//!   the writer would take this machine a day; the copies are the same rows
//!   an hour earlier, so the tables hold what the writer would have left.
//! - **empty**: the same schema, no rows.
//!
//! Each has its own nats-server and release vigia-sink (defaults). A round
//! is `--round-seconds` of every host's life at the publisher's defaults
//! (cpu and ram each second, the 400-process snapshot every 5 s), published
//! while that sink is stopped (SIGSTOP); the clock runs from SIGCONT until
//! every host's newest sample is committed; then every row is counted. The
//! other sink stays stopped meanwhile. Rounds alternate which database goes
//! first; the figures are the medians and the median of per-round ratios.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use chrono::{NaiveDateTime, Utc};
use sqlx::mysql::MySqlPool;
use vigia_dashboards::fill::{self, Plan};
use vigia_schema::bounds::MAX_CLOCK_AHEAD_NS;
use vigia_schema::stamp::unix_nanos;
use vigia_schema::Kind;
use vigia_sink::partitions::{self, TABLES};
use vigia_sink::retention::Retention;
use vigia_testkit::{Mariadbd, TestDatabase};

use crate::fleet::{self, Hosts, HISTORY_ROWS};
use crate::rig::SinkRig;
use crate::stats::median;

#[derive(clap::Args)]
pub struct Args {
    /// Simulated hosts, with history in one database and none in the other.
    #[arg(long, default_value_t = 50)]
    hosts: usize,
    /// Processes in each snapshot.
    #[arg(long, default_value_t = 400)]
    processes: usize,
    /// Seconds of every host's life in one round.
    #[arg(long, default_value_t = 60)]
    round_seconds: u64,
    /// Measured rounds per database (after one untimed warm-up round).
    #[arg(long, default_value_t = 13)]
    rounds: u64,
    /// The option file of the private mariadbd.
    #[arg(long, default_value = "mysql/conf/vigia.cnf")]
    mysql_config: PathBuf,
    /// Extra flags for both sinks. A round's samples are all in the
    /// stream when the sink resumes, so a short batch wait times the sink's
    /// work, not its wait for the round's last, partial batch to fill.
    #[arg(long, default_value = "--batch-wait 10ms", allow_hyphen_values = true)]
    sink_args: String,
    /// Keep the log of the sink on the full database here, at trace level.
    #[arg(long)]
    sink_log: Option<PathBuf>,
}

/// Boots of the rounds' samples are named for this.
const TAG: &str = "hist";

/// The most rows one copying statement writes, so that no statement holds
/// a transaction of millions of rows.
const COPY_ROWS: i64 = 400_000;

pub async fn run(args: Args) -> anyhow::Result<()> {
    anyhow::ensure!(args.hosts > 0, "--hosts must be at least 1");
    anyhow::ensure!(
        args.round_seconds >= 5,
        "--round-seconds must be at least 5"
    );
    let config = std::fs::canonicalize(&args.mysql_config)
        .map_err(|e| anyhow::anyhow!("--mysql-config {}: {e}", args.mysql_config.display()))?;
    let server = Mariadbd::start_with_config(&config);
    let root = format!("mysql://root@127.0.0.1:{}", server.port);
    let tiers = crate::storage::default_tiers();
    println!("== history: ingest on a database holding a full retention, against empty tables");
    println!(
        "config: {} hosts, {} processes a snapshot; rounds of {} s of every host's life (cpu + \
         ram each second, procs every 5 s); {} measured rounds per database after 1 warm-up, \
         order alternating; sinks: release, defaults{}; one private mariadbd \
         --defaults-file={}; retention tiers raw {} d, minutes {} d, ten minutes {} d",
        args.hosts,
        args.processes,
        args.round_seconds,
        args.rounds,
        if args.sink_args.is_empty() {
            String::new()
        } else {
            format!(" plus {}", args.sink_args)
        },
        config.display(),
        tiers.raw.as_secs() / 86_400,
        tiers.minutes.as_secs() / 86_400,
        tiers.ten_minutes.as_secs() / 86_400,
    );

    let full = TestDatabase::on(&root, "bench_history_full");
    let empty = TestDatabase::on(&root, "bench_history_empty");
    let started = Instant::now();
    let filled_to = fill_history(&full, &tiers, &args).await?;
    println!(
        "filled the full database in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    print_tables(&full.url()).await?;

    let full = SinkRig::start_on(
        full,
        "history_full",
        &args.sink_args,
        args.sink_log.as_deref(),
    )
    .await?;
    let empty = SinkRig::start_on(empty, "history_empty", &args.sink_args, None).await?;
    let mut lanes = [
        Lane::new("empty", empty, args.processes),
        Lane::new("full", full, args.processes),
    ];
    for lane in &mut lanes {
        lane.hosts.grow(args.hosts)?;
        lane.rig.sink.signal("STOP");
    }
    let rows = round_rows(&args);
    println!(
        "a round: {} messages, {rows} rows (cpu, ram, procs snapshots, {HISTORY_ROWS} history \
         rows a snapshot, the latest list)",
        round_messages(&args)
    );
    let mut rates: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    let mut ratios = Vec::new();
    let span = args.round_seconds as i64 * 1_000_000_000;
    for round in 0..=args.rounds {
        // Each round goes on from where the last ended, from where the
        // history ends: no sample is older than its host's newest, as with
        // a publisher, and both databases get the same times. The sink
        // refuses samples stamped more than 5 minutes ahead of it: a round
        // waits until its last second is at most a minute less ahead.
        let first = filled_to + round as i64 * span;
        let ahead = first + span - unix_nanos() - (MAX_CLOCK_AHEAD_NS - 60_000_000_000);
        if ahead > 0 {
            tokio::time::sleep(Duration::from_nanos(ahead as u64)).await;
        }
        let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        let mut secs = [0.0; 2];
        for i in order {
            secs[i] = lanes[i].round(&args, first).await?;
        }
        let rate = |i: usize| rows as f64 / secs[i];
        let label = if round == 0 {
            "warm-up".to_owned()
        } else {
            format!("round {round}")
        };
        println!(
            "{label:>8}: empty {:>8.0} rows/s ({:.3} s)  full {:>8.0} rows/s ({:.3} s)  \
             full / empty {:.1} %  ({} first)",
            rate(0),
            secs[0],
            rate(1),
            secs[1],
            rate(1) / rate(0) * 100.0,
            lanes[order[0]].name
        );
        if round > 0 {
            rates[0].push(rate(0));
            rates[1].push(rate(1));
            ratios.push(rate(1) / rate(0));
        }
    }
    let (empty_median, full_median) = (median(&rates[0]), median(&rates[1]));
    println!(
        "median: empty {empty_median:.0} rows/s, full {full_median:.0} rows/s, ratio of medians \
         {:.1} %, median of per-round ratios {:.1} %",
        full_median / empty_median * 100.0,
        median(&ratios) * 100.0
    );
    println!(
        "goal: with history >= 90 % of the empty-table rate: {}",
        crate::footprint::verdict(median(&ratios) >= 0.9)
    );
    for lane in lanes {
        lane.rig.sink.signal("CONT");
        lane.rig.stop().await;
    }
    drop(server);
    Ok(())
}

/// One database and its sink, and the hosts publishing to it.
struct Lane {
    name: &'static str,
    rig: SinkRig,
    hosts: Hosts,
    js: Option<async_nats::jetstream::Context>,
}

impl Lane {
    fn new(name: &'static str, rig: SinkRig, processes: usize) -> Self {
        Self {
            name,
            rig,
            hosts: Hosts::new(TAG, processes),
            js: None,
        }
    }

    /// Publishes the round of `--round-seconds` from `first` (ns) to the
    /// stopped sink, lets it go, times it to the commit of every host's
    /// newest sample, stops it again and counts the round's rows.
    async fn round(&mut self, args: &Args, first: i64) -> anyhow::Result<f64> {
        let js = match &self.js {
            Some(js) => js.clone(),
            None => {
                let js =
                    async_nats::jetstream::new(async_nats::connect(self.rig.nats.url()).await?);
                self.js = Some(js.clone());
                js
            }
        };
        let end = first + args.round_seconds as i64 * 1_000_000_000;
        let mut messages = Vec::new();
        for second in 0..args.round_seconds {
            for h in 0..args.hosts {
                // Hosts spread over each second, as unsynchronised
                // publishers are.
                let ts = first
                    + second as i64 * 1_000_000_000
                    + (h as i64 * 1_000_000_000) / args.hosts as i64;
                let mut kinds = vec![Kind::Cpu, Kind::Ram];
                if (second + h as u64).is_multiple_of(5) {
                    kinds.push(Kind::Procs);
                }
                for kind in kinds {
                    messages.push(fleet::message(&self.hosts.sample_at(h, kind, ts)));
                }
            }
        }
        crate::ingest::publish_all(&js, messages).await?;
        let newest = datetime(first + (args.round_seconds as i64 - 1) * 1_000_000_000);
        let pool = &self.rig.pool;
        self.rig.sink.signal("CONT");
        let started = Instant::now();
        let deadline = started + Duration::from_secs(300);
        loop {
            let done: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM hosts WHERE last_seen >= ?")
                .bind(newest)
                .fetch_one(pool)
                .await?;
            if done as usize >= args.hosts {
                break;
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "{}: {done} of {} hosts committed in 300 s",
                self.name,
                args.hosts
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let elapsed = started.elapsed().as_secs_f64();
        self.rig.sink.signal("STOP");
        self.check(first, end, args).await?;
        Ok(elapsed)
    }

    /// Every row of the round is there.
    async fn check(&self, first: i64, end: i64, args: &Args) -> anyhow::Result<()> {
        let (first, end) = (datetime(first), datetime(end));
        let pool = &self.rig.pool;
        let boots = format!("{TAG}%");
        let mut counts = Vec::new();
        for table in [
            "cpu_samples",
            "ram_samples",
            "procs_snapshots",
            "process_samples",
        ] {
            let n: i64 = sqlx::query_scalar(&format!(
                "SELECT COUNT(*) FROM {table} WHERE boot LIKE ? AND ts >= ? AND ts < ?"
            ))
            .bind(&boots)
            .bind(first)
            .bind(end)
            .fetch_one(pool)
            .await?;
            counts.push(n as u64);
        }
        let per_kind = args.hosts as u64 * args.round_seconds;
        let snapshots = snapshots(args);
        let expected = [
            per_kind,
            per_kind,
            snapshots,
            snapshots * HISTORY_ROWS as u64,
        ];
        anyhow::ensure!(
            counts == expected,
            "{}: round rows (cpu, ram, snapshots, history) {counts:?}, expected {expected:?}",
            self.name
        );
        Ok(())
    }
}

fn snapshots(args: &Args) -> u64 {
    (0..args.round_seconds)
        .flat_map(|s| (0..args.hosts as u64).map(move |h| s + h))
        .filter(|n| n.is_multiple_of(5))
        .count() as u64
}

fn round_messages(args: &Args) -> u64 {
    2 * args.hosts as u64 * args.round_seconds + snapshots(args)
}

/// Rows a round writes: a cpu and a ram row a message, and per snapshot
/// its own row, the history rows and the latest list.
fn round_rows(args: &Args) -> u64 {
    2 * args.hosts as u64 * args.round_seconds + snapshots(args) * (HISTORY_ROWS as u64 + 2)
}

fn datetime(ns: i64) -> NaiveDateTime {
    chrono::DateTime::from_timestamp_nanos(ns).naive_utc()
}

/// Creates and migrates `db`, gives each table a partition per day of its
/// tier, writes an hour of the fleet through the sink's writer and copies
/// it back, hour by hour, over each table's tier. Returns when the history
/// ends (ns): every host's newest sample is older.
async fn fill_history(db: &TestDatabase, tiers: &Retention, args: &Args) -> anyhow::Result<i64> {
    let pool = vigia_sink::store::connect(&db.url(), 2).await?;
    let today = Utc::now().date_naive();
    for (table, _, tier) in TABLES {
        split_past_days(&pool, table, today, tiers.of(tier)).await?;
    }
    let template_start = Utc::now().naive_utc() - chrono::Duration::hours(1);
    let plan = Plan {
        prefix: "sim".into(),
        processes: args.processes as u32,
        writers: 2,
        ..Plan::small(args.hosts as u32, Duration::from_secs(3600))
    };
    fill::fill(&db.url(), &plan).await?;
    // The last samples of the fill are stamped when it ends.
    let filled_to = unix_nanos() + 1_000_000_000;
    for (table, column, tier) in TABLES {
        let hours = (tiers.of(tier).as_secs() / 3600) as i64 - 1;
        copy_back(&pool, table, column, template_start, hours).await?;
    }
    pool.close().await;
    Ok(filled_to)
}

/// Splits the table's oldest partition (which takes everything before its
/// bound) into one partition per day, back to the first day `keep` reaches.
async fn split_past_days(
    pool: &MySqlPool,
    table: &'static str,
    today: chrono::NaiveDate,
    keep: Duration,
) -> anyhow::Result<()> {
    let mut conn = pool.acquire().await?;
    let parts = partitions::layout(&mut conn, table).await?;
    let Some(oldest) = parts.first() else {
        anyhow::bail!("{table}: no partitions");
    };
    let Some(below) = oldest.below else {
        anyhow::bail!("{table}: only `{}`", oldest.name);
    };
    // The day it holds (and everything before).
    let held = below - chrono::Days::new(1);
    let first = today - chrono::Days::new(keep.as_secs() / 86_400);
    if first >= held {
        return Ok(());
    }
    let days: Vec<String> = first
        .iter_days()
        .take_while(|d| *d <= held)
        .map(partitions::definition_of)
        .collect();
    sqlx::query(&format!(
        "ALTER TABLE {table} REORGANIZE PARTITION {} INTO ({})",
        oldest.name,
        days.join(", ")
    ))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Copies the rows from `start` on (the hour the writer wrote) to each of
/// the `hours` hours before, `column` moved back by that many hours.
async fn copy_back(
    pool: &MySqlPool,
    table: &str,
    column: &str,
    start: NaiveDateTime,
    hours: i64,
) -> anyhow::Result<()> {
    let columns: Vec<String> = sqlx::query_scalar(
        "SELECT CAST(COLUMN_NAME AS CHAR) FROM information_schema.COLUMNS \
         WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
    )
    .bind(table)
    .fetch_all(pool)
    .await?;
    let list = columns
        .iter()
        .map(|c| format!("`{c}`"))
        .collect::<Vec<_>>()
        .join(", ");
    let select = columns
        .iter()
        .map(|c| {
            if c == column {
                format!("t.`{c}` - INTERVAL s.seq HOUR")
            } else {
                format!("t.`{c}`")
            }
        })
        .collect::<Vec<_>>()
        .join(", ");
    let template: i64 = sqlx::query_scalar(&format!(
        "SELECT COUNT(*) FROM {table} WHERE `{column}` >= ?"
    ))
    .bind(start)
    .fetch_one(pool)
    .await?;
    let per_statement = (COPY_ROWS / template.max(1)).max(1);
    let mut from = 1;
    while from <= hours {
        let to = (from + per_statement - 1).min(hours);
        // A key repeats only where the hour the writer wrote spans more than
        // an hour of keys (its first and last minute): IGNORE keeps the
        // first copy.
        sqlx::query(&format!(
            "INSERT IGNORE INTO {table} ({list}) SELECT {select} FROM {table} t \
             JOIN seq_{from}_to_{to} s WHERE t.`{column}` >= ?"
        ))
        .bind(start)
        .execute(pool)
        .await?;
        from = to + 1;
    }
    Ok(())
}

/// Rows and bytes on disk of every table of the database at `url`.
async fn print_tables(url: &str) -> anyhow::Result<()> {
    let pool = MySqlPool::connect(url).await?;
    vigia_testkit::flush_dirty_pages(&pool).await?;
    let tables = crate::storage::tables_on_disk(&pool).await?;
    println!("| table | rows (est.) | on disk MiB |");
    println!("|---|---|---|");
    let mut total = 0;
    for t in &tables {
        println!(
            "| {} | {} | {:.1} |",
            t.name,
            t.rows,
            t.disk as f64 / 1048576.0
        );
        total += t.disk;
    }
    println!(
        "full database: {:.2} GiB on disk",
        total as f64 / (1u64 << 30) as f64
    );
    pool.close().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(hosts: usize, round_seconds: u64) -> Args {
        Args {
            hosts,
            processes: 400,
            round_seconds,
            rounds: 1,
            mysql_config: PathBuf::new(),
            sink_args: String::new(),
            sink_log: None,
        }
    }

    #[test]
    fn a_round_holds_one_snapshot_per_host_every_five_seconds() {
        assert_eq!(snapshots(&args(50, 60)), 50 * 12);
        // Hosts take turns: 3 hosts over 7 s send 4 snapshots (seconds
        // 0 and 5 of host 0, 4 of host 1, 3 of host 2).
        assert_eq!(snapshots(&args(3, 7)), 4);
        assert_eq!(round_messages(&args(50, 60)), 2 * 50 * 60 + 600);
        assert_eq!(
            round_rows(&args(50, 60)),
            2 * 50 * 60 + 600 * (HISTORY_ROWS as u64 + 2)
        );
    }
}
