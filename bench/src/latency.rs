//! Latency from a sample's `ts` to its row being committed, for a fleet
//! of simulated hosts at the publisher's defaults.
//!
//! The generator plays `--hosts` publishers: each sends cpu and ram every
//! `--interval` and a procs sample of `--processes` processes every
//! `--procs-interval`, the hosts spread evenly over the interval as real
//! ones would be. It stamps `ts` (unix ns, the wall clock) right before
//! encoding and publishing, and keeps it by (kind, host, seq).
//!
//! Commit time: a poller runs, every `--poll-ms`, `SELECT host, MAX(seq)
//! ... GROUP BY host, boot` on cpu_samples, ram_samples and
//! procs_snapshots (a procs sample's processes and history rows commit in
//! the same transaction as its snapshot row). A row is visible only once
//! its transaction has committed, and one sink commits each host's samples
//! in seq order, so every seq up to the new maximum committed after the
//! previous poll's read and before this one's. Latency = start of the
//! poll that first sees the row − ts: an upper bound, at most one poll
//! period (plus the query's own time) late. Same machine, same clock.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::rig::SinkRig;
use sqlx::Row;
use tokio::time::Instant;
use vigia_schema::stamp::unix_nanos;

use crate::fleet::{self, publish_for, Cadence, Hosts, HISTORY_ROWS};
use crate::stats::{quantile, weighted_quantile};

#[derive(clap::Args)]
pub struct Args {
    #[arg(long, default_value_t = 500)]
    hosts: usize,
    #[arg(long, default_value_t = 400)]
    processes: usize,
    #[command(flatten)]
    cadence: Cadence,
    /// How long the fleet sends.
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// Samples stamped in the first seconds are not counted (the sink's
    /// first batches pay for creating 500 hosts rows).
    #[arg(long, default_value_t = 10)]
    warmup: u64,
    #[arg(long, default_value_t = 20)]
    poll_ms: u64,
    /// Extra flags for vigia-sink.
    #[arg(long, default_value = "", allow_hyphen_values = true)]
    sink_args: String,
}

const KINDS: [&str; 3] = ["cpu", "ram", "procs"];
const TABLES: [&str; 3] = ["cpu_samples", "ram_samples", "procs_snapshots"];

/// ts of every sample sent: [kind][host][seq - 1].
type Sent = Arc<Mutex<Vec<Vec<Vec<i64>>>>>;

pub async fn run(args: Args) -> anyhow::Result<()> {
    args.cadence.check()?;
    anyhow::ensure!(args.hosts > 0, "--hosts must be at least 1");
    let rig = SinkRig::start("bench_latency", &args.sink_args, None).await?;
    let (sink, pool) = (&rig.sink, &rig.pool);
    let nats_url = rig.nats.url();
    let client = async_nats::connect(&nats_url).await?;

    let Cadence {
        interval_ms,
        procs_interval_ms,
    } = args.cadence;
    let per_s = args.hosts as f64 * 1000.0;
    let rows_per_s = per_s * 2.0 / interval_ms as f64
        + per_s * (1 + HISTORY_ROWS + 1) as f64 / procs_interval_ms as f64;
    println!("== latency, sample ts to committed row");
    println!(
        "config: {} hosts, each cpu + ram every {} ms and procs ({} processes) every {} ms, \
         spread evenly; {:.0} messages/s, {rows_per_s:.0} rows/s; {} s sending, first {} s \
         not counted; commit seen by polling max(seq) per host every {} ms; sink: {} \
         (release) with defaults{}; private nats-server {}, database {}",
        args.hosts,
        interval_ms,
        args.processes,
        procs_interval_ms,
        args.cadence.messages_per_s(args.hosts),
        args.seconds,
        args.warmup,
        args.poll_ms,
        rig.sink_bin.display(),
        rig.sink_args,
        nats_url,
        rig.db.name,
    );

    // Who spends the CPU: read before and after.
    let pid_file: String = sqlx::query_scalar("SELECT @@pid_file")
        .fetch_one(pool)
        .await?;
    let mariadbd = std::fs::read_to_string(&pid_file)
        .ok()
        .and_then(|t| t.trim().parse::<i32>().ok());
    let watched: Vec<(&str, Option<i32>)> = vec![
        ("vigia-sink", Some(sink.pid() as i32)),
        ("mariadbd (shared)", mariadbd),
        ("nats-server", crate::footprint::child_named("nats-server")),
        ("generator+poller", Some(std::process::id() as i32)),
    ];
    let cpu_before: Vec<f64> = watched
        .iter()
        .map(|(_, pid)| pid.map_or(0.0, crate::footprint::cpu_seconds))
        .collect();
    let sent: Sent = Arc::new(Mutex::new(vec![vec![Vec::new(); args.hosts]; 3]));
    let start = Instant::now();
    let start_ns = unix_nanos();
    let generator = tokio::spawn(generate(
        client.clone(),
        sent.clone(),
        start,
        Duration::from_secs(args.seconds),
        args.hosts,
        args.processes,
        args.cadence,
    ));

    // (kind, ts, latency ms) of every sample seen committed.
    let mut seen_upto = vec![vec![0usize; args.hosts]; 3];
    let mut latencies: Vec<(usize, i64, f64)> = Vec::new();
    let mut generator = Some(generator);
    let mut drain_deadline = None;
    let mut ticker = tokio::time::interval(Duration::from_millis(args.poll_ms));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        for (k, table) in TABLES.iter().enumerate() {
            let polled_at = unix_nanos();
            // Each host's newest committed sample: the primary key starts
            // (host, ts), so this reads one entry a host (a loose index
            // scan), not the table. A host's samples commit in order.
            let rows = sqlx::query(&format!(
                "SELECT host, MAX(ts) AS top FROM {table} GROUP BY host"
            ))
            .fetch_all(pool)
            .await?;
            let sent = sent.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
            for row in rows {
                let host: String = row.try_get("host")?;
                let top: chrono::NaiveDateTime = row.try_get("top")?;
                let Some(h) = fleet::host_index(&host).filter(|&h| h < args.hosts) else {
                    continue;
                };
                // Stored times are microseconds.
                let top_us = top.and_utc().timestamp_micros();
                let top = sent[k][h]
                    .partition_point(|&ts| ts.div_euclid(1000) <= top_us)
                    .max(seen_upto[k][h]);
                for &ts in &sent[k][h][seen_upto[k][h]..top] {
                    latencies.push((k, ts, (polled_at - ts) as f64 / 1e6));
                }
                seen_upto[k][h] = seen_upto[k][h].max(top);
            }
        }
        if let Some(g) = generator.take_if(|g| g.is_finished()) {
            g.await??;
            drain_deadline = Some(Instant::now() + Duration::from_secs(60));
        }
        if let Some(deadline) = drain_deadline {
            let sent = sent.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
            let total: usize = sent.iter().flatten().map(Vec::len).sum();
            let committed: usize = seen_upto.iter().flatten().sum();
            if committed >= total || Instant::now() >= deadline {
                println!(
                    "sent {total} samples, seen committed {committed} ({} never seen within 60 s \
                     of the end)",
                    total - committed
                );
                break;
            }
        }
    }

    let wall = start.elapsed().as_secs_f64();
    let spent: Vec<String> = watched
        .iter()
        .zip(&cpu_before)
        .map(|((name, pid), before)| match pid {
            Some(pid) => format!(
                "{name} {:.1} s",
                crate::footprint::cpu_seconds(*pid) - before
            ),
            None => format!("{name} ?"),
        })
        .collect();
    println!(
        "CPU seconds over the {wall:.1} s of sending and draining (2 cores = {:.0} s): {}; \
         load average then {}",
        2.0 * wall,
        spent.join(", "),
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    let counted_from = start_ns + args.warmup as i64 * 1_000_000_000;
    let counted: Vec<&(usize, i64, f64)> =
        latencies.iter().filter(|l| l.1 >= counted_from).collect();
    let mut worst_p99 = 0.0f64;
    for (k, kind) in KINDS.iter().enumerate() {
        let values: Vec<f64> = counted.iter().filter(|l| l.0 == k).map(|l| l.2).collect();
        report(kind, &values);
    }
    let all: Vec<f64> = counted.iter().map(|l| l.2).collect();
    report("all samples", &all);
    worst_p99 = worst_p99.max(quantile(&all, 0.99));
    let row_weight = (1 + HISTORY_ROWS + 1) as u64;
    let weighted: Vec<(f64, u64)> = counted
        .iter()
        .map(|l| (l.2, if l.0 == 2 { row_weight } else { 1 }))
        .collect();
    let total_rows: u64 = weighted.iter().map(|w| w.1).sum();
    let row_p99 = weighted_quantile(&weighted, 0.99);
    println!(
        "{:>12}: n {total_rows:>7}  p50 {:>7.1} ms  p99 {row_p99:>7.1} ms  (a procs sample \
         counts as its {row_weight} rows)",
        "all rows",
        weighted_quantile(&weighted, 0.5),
    );
    worst_p99 = worst_p99.max(row_p99);
    println!(
        "goal: p99 < 1 s: {} (worst p99 above {worst_p99:.0} ms)",
        crate::footprint::verdict(worst_p99 < 1000.0)
    );
    rig.stop().await;
    Ok(())
}

fn report(what: &str, values: &[f64]) {
    println!(
        "{what:>12}: n {:>7}  p50 {:>7.1} ms  p99 {:>7.1} ms  max {:>7.1} ms",
        values.len(),
        quantile(values, 0.5),
        quantile(values, 0.99),
        quantile(values, 1.0)
    );
}

async fn generate(
    client: async_nats::Client,
    sent: Sent,
    start: Instant,
    duration: Duration,
    hosts: usize,
    processes: usize,
    cadence: Cadence,
) -> anyhow::Result<()> {
    let mut fleet = Hosts::new("lat", processes);
    fleet.grow(hosts)?;
    publish_for(
        &client,
        &mut fleet,
        cadence,
        start,
        duration,
        |h, sample| {
            sent.lock().map_err(|_| anyhow::anyhow!("poisoned"))?[sample.kind().index()][h]
                .push(sample.ts);
            Ok(())
        },
    )
    .await
}
