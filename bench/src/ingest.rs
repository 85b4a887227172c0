//! Sink ingest against a ceiling, side by side in one run.
//!
//! A round is one procs sample from each of `--hosts` simulated hosts,
//! each with `--processes` processes. What "rows" means: every row a procs
//! sample makes the sink write,
//!
//! ```text
//! process_lists    1 row   (the host's latest list as JSON, replaced;
//!                            the `processes` view expands it)
//! process_samples  20 rows (top 10 by CPU + top 10 by RSS)
//! procs_snapshots  1 row
//! ```
//!
//! so a round is hosts x 22 rows, checked by counting them
//! after each phase. Each round has two phases, in alternating order:
//!
//! - sink: the sink (release binary, defaults) is stopped with SIGSTOP,
//!   the round's pre-encoded samples are published into JetStream with
//!   `Nats-Msg-Id` headers and acknowledged by the stream, then the clock
//!   starts and the sink gets SIGCONT; the clock stops at the first poll
//!   (every 10 ms) that finds the round's snapshots committed. This is the
//!   whole path: pull, decode, plan, hosts upsert, the JSON list upsert,
//!   history, commit.
//! - ceiling: one connection writes the same rows (same tables, same
//!   server, same count) with plain multi-row INSERTs in one transaction,
//!   from rows prepared in memory (the JSON lists too, made by the sink's
//!   own function). `process_lists` is emptied before the clock starts, as
//!   plain INSERTs need.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use chrono::{DateTime, NaiveDateTime};
use sqlx::mysql::{MySql, MySqlConnection, MySqlPool};
use sqlx::{Connection, QueryBuilder};
use vigia_schema::stamp::unix_nanos;
use vigia_schema::{ProcsBody, Sample, SampleBody};
use vigia_testkit::Child;

use crate::fleet::{self, HISTORY_ROWS, HISTORY_TOP};
use crate::rig::SinkRig;
use crate::stats::median;

#[derive(clap::Args)]
pub struct Args {
    /// Simulated hosts; each sends one procs sample per round.
    #[arg(long, default_value_t = 500)]
    hosts: usize,
    /// Processes in each procs sample.
    #[arg(long, default_value_t = 400)]
    processes: usize,
    /// Measured rounds (after one untimed warm-up round).
    #[arg(long, default_value_t = 5)]
    rounds: u64,
    /// Rows per INSERT statement in the ceiling loop.
    #[arg(long, default_value_t = 1000)]
    ceiling_chunk: usize,
    /// Extra flags for vigia-sink, e.g. "--batch-size 1000".
    #[arg(long, default_value = "", allow_hyphen_values = true)]
    sink_args: String,
    /// Keep the sink's log here, at trace level: per batch, where its time
    /// went (gather, decode, write, ack, and each step of the write).
    #[arg(long)]
    sink_log: Option<std::path::PathBuf>,
}

/// Offset of the ceiling's seqs, so its rows never collide with the sink's.
const CEILING_SEQ: u64 = 1_000_000;

pub async fn run(args: Args) -> anyhow::Result<()> {
    let rig = SinkRig::start("bench_ingest", &args.sink_args, args.sink_log.as_deref()).await?;
    let (sink, pool) = (&rig.sink, &rig.pool);
    let (nats_url, db_url) = (rig.nats.url(), rig.db.url());
    let client = async_nats::connect(&nats_url).await?;
    let js = async_nats::jetstream::new(client);

    let bodies: Vec<ProcsBody> = (0..args.hosts)
        .map(|h| fleet::processes(h, args.processes))
        .collect();
    let rows_per_round = (args.hosts * (1 + HISTORY_ROWS + 1)) as f64;

    println!("== sink ingest");
    println!(
        "config: {} hosts x 1 procs sample of {} processes per round = {} rows per round \
         ({} process_lists + {} process_samples + {} procs_snapshots); {} measured rounds after \
         1 warm-up, phase order alternating; sink: {} (release) with defaults \
         (--batch-size 5000 --batch-wait 200ms --history-top {HISTORY_TOP}){}; ceiling: \
         one connection, plain multi-row INSERT of {} rows per statement, one transaction; \
         MariaDB 127.0.0.1:3306 database {}; private nats-server {}",
        args.hosts,
        args.processes,
        rows_per_round,
        args.hosts,
        args.hosts * HISTORY_ROWS,
        args.hosts,
        args.rounds,
        rig.sink_bin.display(),
        rig.sink_args,
        args.ceiling_chunk,
        rig.db.name,
        nats_url,
    );

    let mut ceiling_conn = MySqlConnection::connect(&db_url).await?;
    let mut sink_rates = Vec::new();
    let mut ceiling_rates = Vec::new();
    let mut ratios = Vec::new();
    for round in 0..=args.rounds {
        let sink_first = round % 2 == 0;
        let mut sink_s = 0.0;
        let mut ceiling_s = 0.0;
        for phase in 0..2 {
            if (phase == 0) == sink_first {
                sink_s = sink_round(&js, sink, pool, &bodies, round + 1, &args).await?;
            } else {
                ceiling_s =
                    ceiling_round(&mut ceiling_conn, pool, &bodies, round + 1, &args).await?;
            }
        }
        let sink_rate = rows_per_round / sink_s;
        let ceiling_rate = rows_per_round / ceiling_s;
        let label = if round == 0 {
            "warm-up".to_owned()
        } else {
            format!("round {round}")
        };
        println!(
            "{label:>8}: sink {sink_rate:>9.0} rows/s ({sink_s:.3} s)  ceiling \
             {ceiling_rate:>9.0} rows/s ({ceiling_s:.3} s)  ratio {:.1} %  ({} first)",
            sink_rate / ceiling_rate * 100.0,
            if sink_first { "sink" } else { "ceiling" }
        );
        if round > 0 {
            sink_rates.push(sink_rate);
            ceiling_rates.push(ceiling_rate);
            ratios.push(sink_rate / ceiling_rate);
        }
    }
    let sink_median = median(&sink_rates);
    let ceiling_median = median(&ceiling_rates);
    println!(
        "median: sink {sink_median:.0} rows/s, ceiling {ceiling_median:.0} rows/s, ratio of \
         medians {:.1} %, median of per-round ratios {:.1} %",
        sink_median / ceiling_median * 100.0,
        median(&ratios) * 100.0
    );
    println!(
        "goal: sink >= 70 % of the ceiling: {}",
        crate::footprint::verdict(median(&ratios) >= 0.7)
    );
    rig.stop().await;
    Ok(())
}

fn datetime(ns: i64) -> NaiveDateTime {
    DateTime::from_timestamp_nanos(ns).naive_utc()
}

/// Publishes the round to a stopped sink, lets it go, and times it to the
/// commit of the round's last snapshot.
async fn sink_round(
    js: &async_nats::jetstream::Context,
    sink: &Child,
    pool: &MySqlPool,
    bodies: &[ProcsBody],
    seq: u64,
    args: &Args,
) -> anyhow::Result<f64> {
    let ts = unix_nanos();
    let messages: Vec<fleet::Message> = bodies
        .iter()
        .enumerate()
        .map(|(h, body)| {
            let sample = Sample::new(
                fleet::host_name(h),
                fleet::boot_id(h, "sink"),
                seq,
                ts,
                SampleBody::Procs(body.clone()),
            );
            fleet::message(&sample)
        })
        .collect();
    sink.signal("STOP");
    let published = publish_all(js, messages).await;
    sink.signal("CONT");
    published?;
    let started = Instant::now();
    let deadline = started + Duration::from_secs(300);
    loop {
        let done: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM procs_snapshots WHERE seq = ?")
            .bind(seq)
            .fetch_one(pool)
            .await?;
        if done as usize == args.hosts {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the sink stored {done} of {} snapshots of round {seq} in 300 s",
            args.hosts
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    check_rows(pool, seq, datetime(ts), args).await?;
    Ok(elapsed)
}

/// Publishes through JetStream, 256 acknowledgements in flight at most.
pub(crate) async fn publish_all(
    js: &async_nats::jetstream::Context,
    messages: Vec<fleet::Message>,
) -> anyhow::Result<()> {
    let mut pending = Vec::with_capacity(256);
    for m in messages {
        pending.push(
            js.publish_with_headers(m.subject, m.headers, m.payload)
                .await?,
        );
        if pending.len() == 256 {
            for ack in pending.drain(..) {
                ack.await?;
            }
        }
    }
    for ack in pending {
        ack.await?;
    }
    Ok(())
}

/// Every row of the round is there: the same count as the ceiling writes.
async fn check_rows(
    pool: &MySqlPool,
    seq: u64,
    ts: NaiveDateTime,
    args: &Args,
) -> anyhow::Result<()> {
    let history: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM process_samples WHERE seq = ?")
        .bind(seq)
        .fetch_one(pool)
        .await?;
    let current: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM process_lists WHERE ts = ?")
        .bind(ts)
        .fetch_one(pool)
        .await?;
    anyhow::ensure!(
        history as usize == args.hosts * HISTORY_ROWS && current as usize == args.hosts,
        "round {seq}: {history} process_samples rows and {current} process_lists rows, \
         expected {} and {}",
        args.hosts * HISTORY_ROWS,
        args.hosts
    );
    Ok(())
}

/// The process a history row holds, in the sink's order of columns.
struct HistoryRow<'a> {
    host: &'a str,
    boot: &'a str,
    p: &'a vigia_schema::ProcessEntry,
}

async fn ceiling_round(
    conn: &mut MySqlConnection,
    pool: &MySqlPool,
    bodies: &[ProcsBody],
    round: u64,
    args: &Args,
) -> anyhow::Result<f64> {
    let seq = CEILING_SEQ + round;
    let ts = datetime(unix_nanos());
    let hosts: Vec<String> = (0..bodies.len()).map(fleet::host_name).collect();
    let boots: Vec<String> = (0..bodies.len())
        .map(|h| fleet::boot_id(h, "ceil"))
        .collect();
    let (hosts, boots) = (&hosts, &boots);
    // The latest lists, as the JSON the sink stores (made by its own code).
    let current: Vec<(&str, &str, String)> = bodies
        .iter()
        .enumerate()
        .map(|(h, b)| {
            (
                hosts[h].as_str(),
                boots[h].as_str(),
                vigia_sink::store::process_list_json(b),
            )
        })
        .collect();
    // The generated tables put the top 10 by CPU first and the top 10 by
    // RSS next (see fleet::processes).
    let history: Vec<HistoryRow> = bodies
        .iter()
        .enumerate()
        .flat_map(|(h, b)| {
            b.processes[..HISTORY_ROWS].iter().map(move |p| HistoryRow {
                host: &hosts[h],
                boot: &boots[h],
                p,
            })
        })
        .collect();
    sqlx::query("DELETE FROM process_lists")
        .execute(&mut *conn)
        .await?;

    let started = Instant::now();
    let mut tx = conn.begin().await?;
    // JSON lists are large: as many per statement as fit in 4 MiB, as the
    // sink does, under MariaDB's max_allowed_packet.
    let json_bytes = current
        .iter()
        .map(|(_, _, j)| j.len())
        .max()
        .unwrap_or(1)
        .max(1);
    let lists_per_statement = ((4 << 20) / json_bytes).clamp(1, args.ceiling_chunk);
    for part in current.chunks(lists_per_statement) {
        let mut q = QueryBuilder::<MySql>::new(
            "INSERT INTO process_lists (host, boot, seq, ts, processes) ",
        );
        q.push_values(part, |mut b, (host, boot, json)| {
            b.push_bind(*host)
                .push_bind(*boot)
                .push_bind(seq)
                .push_bind(ts)
                .push_bind(json.as_str());
        });
        q.build().execute(&mut *tx).await?;
    }
    for part in history.chunks(args.ceiling_chunk) {
        let mut q = QueryBuilder::<MySql>::new(
            "INSERT INTO process_samples (host, boot, seq, ts, pid, name, user, state, rss, \
             mem_pct, cpu_pct, threads) ",
        );
        q.push_values(part, |mut b, r| {
            b.push_bind(r.host)
                .push_bind(r.boot)
                .push_bind(seq)
                .push_bind(ts)
                .push_bind(r.p.pid)
                .push_bind(r.p.name.as_str())
                .push_bind(r.p.user.as_str())
                .push_bind(r.p.state.as_str())
                .push_bind(r.p.rss)
                .push_bind(r.p.mem_pct)
                .push_bind(r.p.cpu_pct)
                .push_bind(r.p.threads);
        });
        q.build().execute(&mut *tx).await?;
    }
    let snapshots: Vec<usize> = (0..bodies.len()).collect();
    for part in snapshots.chunks(args.ceiling_chunk) {
        let mut q = QueryBuilder::<MySql>::new(
            "INSERT INTO procs_snapshots (host, boot, seq, ts, processes, running, sleeping, \
             blocked, zombie, other) ",
        );
        q.push_values(part, |mut b, &h| {
            let n = bodies[h].processes.len() as u32;
            let running = bodies[h]
                .processes
                .iter()
                .filter(|p| p.state == "R")
                .count() as u32;
            b.push_bind(hosts[h].as_str())
                .push_bind(boots[h].as_str())
                .push_bind(seq)
                .push_bind(ts)
                .push_bind(n)
                .push_bind(running)
                .push_bind(n - running)
                .push_bind(0u32)
                .push_bind(0u32)
                .push_bind(0u32);
        });
        q.build().execute(&mut *tx).await?;
    }
    tx.commit().await?;
    let elapsed = started.elapsed().as_secs_f64();

    let snapshots: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM procs_snapshots WHERE seq = ?")
        .bind(seq)
        .fetch_one(pool)
        .await
        .context("counting the ceiling's rows")?;
    anyhow::ensure!(snapshots as usize == args.hosts, "ceiling lost snapshots");
    check_rows(pool, seq, ts, args).await?;
    Ok(elapsed)
}
