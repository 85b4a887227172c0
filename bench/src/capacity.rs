//! How far one central VM goes: the capacity curve.
//!
//! A simulated fleet at the publisher's defaults (cpu and ram every second,
//! a procs snapshot of 400 processes every 5 s, hosts spread evenly over
//! the interval) grows step by step — 250, 500, 1,000, 2,000, 4,000 hosts
//! by default — against one sink, one private nats-server and a private
//! mariadbd started with `mysql/conf/vigia.cnf`, the settings the product
//! ships (docker compose mounts the same file). Each step lasts long
//! enough to see whether the lag is bounded, and prints:
//!
//! - latency from a sample's `ts` to its row being committed, p50/p99/max,
//!   over the samples stamped after the step's warm-up; samples of the step
//!   still uncommitted when it ends count at their age then (a lower bound),
//!   and their number is printed;
//! - the consumer's lag at the step's start and end: messages not yet
//!   acknowledged (JetStream's pending + ack pending) and seconds (the age
//!   of the oldest sample not yet committed);
//! - rows/s MariaDB wrote (its `Handler_write`: rows written to tables,
//!   temporary ones apart; a private server, so nothing else counts) and
//!   MB/s it wrote to disk (`write_bytes` of /proc/<mariadbd>/io: data,
//!   redo log and doublewrite buffer together);
//! - CPU seconds per second of the sink, nats-server, mariadbd and the
//!   generator itself (from /proc: the reader subtracts the generator), and
//!   the sink's peak RSS;
//! - the stream's bytes per host per second and the outage its byte cap
//!   absorbs at this fleet size (the horizon).
//!
//! Commit detection: one poll of `hosts.last_seen` (one row per host) every
//! `--poll-ms`. One sink commits a host's samples in stream order, and the
//! generator publishes each host's samples in `ts` order, so once a host's
//! `last_seen` reaches T every sample of it stamped at or before T is
//! committed. Cheap at any fleet size, unlike scanning the sample tables.
//!
//! `--sinks N` runs N sinks sharing the consumer (scaled out on one
//! machine: they share its two cores and its one mariadbd, so the curve
//! shows whether they contend, not what more machines would add). Their
//! CPU is summed and the peak RSS is the largest one's. With several sinks
//! a host's batches commit in any order between them, so `last_seen` may
//! run ahead of an older sample another sink still writes: latencies are
//! then a lower bound, while the lag (JetStream's own count of messages
//! not yet acknowledged) stays exact; the output says so.
//!
//! The knee is the largest step with p99 under 1 s and a lag that ends
//! the step under [`BOUNDED_LAG`]: a lag that small after several minutes
//! at a fixed fleet size is not growing.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::mysql::MySqlPool;
use sqlx::Row;
use tokio::time::Instant;
use vigia_schema::stamp::unix_nanos;
use vigia_schema::subject::{CONSUMER, STREAM};
use vigia_schema::Kind;
use vigia_testkit::{Mariadbd, TestDatabase};

use crate::fleet::{self, publish_for, Cadence, Hosts};
use crate::rig::SinkRig;
use crate::stats::quantile;

#[derive(clap::Args)]
pub struct Args {
    /// Fleet sizes, one step each, in order.
    #[arg(long, value_delimiter = ',', default_value = "250,500,1000,2000,4000")]
    steps: Vec<usize>,
    /// How long each step sends.
    #[arg(long, default_value_t = 180)]
    step_seconds: u64,
    /// Samples stamped in a step's first seconds are not counted: the
    /// step's new hosts and the lag the previous step left are settling.
    #[arg(long, default_value_t = 30)]
    warmup: u64,
    #[arg(long, default_value_t = 400)]
    processes: usize,
    #[command(flatten)]
    cadence: Cadence,
    /// How often `hosts.last_seen` is read: latencies are upper bounds,
    /// at most one poll late.
    #[arg(long, default_value_t = 100)]
    poll_ms: u64,
    /// Stop after this many steps past the knee: each larger step only
    /// piles up more lag.
    #[arg(long, default_value_t = 1)]
    past_knee: usize,
    /// Run against the machine's MariaDB (its own settings, shared with
    /// anything else it serves) instead of a private one.
    #[arg(long)]
    shared_mariadb: bool,
    /// The option file of the private mariadbd.
    #[arg(long, default_value = "mysql/conf/vigia.cnf")]
    mysql_config: PathBuf,
    /// Extra flags for vigia-sink.
    #[arg(long, default_value = "", allow_hyphen_values = true)]
    sink_args: String,
    /// Sinks sharing the durable consumer (1–16).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=16))]
    sinks: u8,
    /// Keep the sink's log here, at trace level: per batch, where its time
    /// went (each step of the write). Several sinks log beside it.
    #[arg(long)]
    sink_log: Option<PathBuf>,
}

/// A lag below this at the end of a step counts as bounded.
const BOUNDED_LAG: Duration = Duration::from_secs(5);

/// Samples sent and not yet seen committed, per host: (kind, ts).
type Pending = Arc<Mutex<Vec<VecDeque<(Kind, i64)>>>>;

/// What one step measured.
struct Step {
    hosts: usize,
    p50: f64,
    p99: f64,
    max: f64,
    counted: usize,
    uncommitted: usize,
    lag_start: Lag,
    lag_end: Lag,
    rows_s: f64,
    mb_s: f64,
    cpu: [f64; 4],
    sink_hwm_mib: f64,
    stream_bytes_host_s: f64,
    horizon_min: f64,
}

impl Step {
    fn within_goal(&self) -> bool {
        self.p99 < 1000.0 && self.lag_end.seconds < BOUNDED_LAG.as_secs_f64()
    }
}

#[derive(Clone, Copy)]
struct Lag {
    messages: u64,
    seconds: f64,
}

/// Counters read at a step's start and end.
#[derive(Clone, Copy)]
struct Counters {
    at: Instant,
    rows: f64,
    disk_bytes: f64,
    cpu: [f64; 4],
    stream_seq: u64,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    args.cadence.check()?;
    anyhow::ensure!(
        !args.steps.is_empty() && args.steps.windows(2).all(|w| w[0] < w[1]),
        "--steps must be growing fleet sizes, e.g. 250,500,1000"
    );
    let (mariadbd, db) = if args.shared_mariadb {
        (None, TestDatabase::new("bench_capacity"))
    } else {
        let config = std::fs::canonicalize(&args.mysql_config)
            .map_err(|e| anyhow::anyhow!("--mysql-config {}: {e}", args.mysql_config.display()))?;
        let server = Mariadbd::start_with_config(&config);
        let db = TestDatabase::on(
            &format!("mysql://root@127.0.0.1:{}", server.port),
            "bench_capacity",
        );
        (Some(server), db)
    };
    let sinks = usize::from(args.sinks);
    let rig = SinkRig::start_sinks(
        db,
        "bench_capacity",
        &args.sink_args,
        args.sink_log.as_deref(),
        sinks,
    )
    .await?;
    let pool = &rig.pool;
    let client = async_nats::connect(&rig.nats.url()).await?;
    let js = async_nats::jetstream::new(client.clone());

    if sinks == 1 {
        println!("== capacity: one sink, one nats-server, one mariadbd on this machine");
    } else {
        println!(
            "== capacity: {sinks} sinks sharing the consumer, one nats-server, one mariadbd on \
             this machine (same cores: shows contention, not scale-out); CPU-s/s sink is their \
             sum, peak RSS the largest; latencies are lower bounds with several sinks (a host's \
             last_seen may pass a sample another sink still writes), lag is exact"
        );
    }
    println!(
        "config: steps {:?} hosts, {} s each (first {} s of each not counted); each host cpu + \
         ram every {} ms and procs ({} processes) every {} ms, spread evenly; commits seen by \
         polling hosts.last_seen every {} ms; sink {} with defaults{}",
        args.steps,
        args.step_seconds,
        args.warmup,
        args.cadence.interval_ms,
        args.processes,
        args.cadence.procs_interval_ms,
        args.poll_ms,
        rig.sink_bin.display(),
        rig.sink_args,
    );
    print_database_settings(pool, args.shared_mariadb, &args.mysql_config).await?;

    let mariadbd_pid = match &mariadbd {
        Some(server) => server.pid().map(|p| p as i32),
        None => shared_mariadbd_pid(pool).await,
    };
    let sink_pids = rig.sink_pids();
    let pids: [Option<i32>; 4] = [
        Some(rig.sink.pid() as i32),
        crate::footprint::child_named("nats-server"),
        mariadbd_pid,
        Some(std::process::id() as i32),
    ];

    let pending: Pending = Arc::new(Mutex::new(Vec::new()));
    let mut fleet = Hosts::new("cap", args.processes);
    let mut steps: Vec<Step> = Vec::new();
    let mut past_knee = 0;
    for &hosts in &args.steps {
        fleet.grow(hosts)?;
        pending
            .lock()
            .map_err(|_| anyhow::anyhow!("poisoned"))?
            .resize(hosts, VecDeque::new());
        let lag_start = lag(&js, &pending).await;
        let before = counters(pool, &js, &pids, &sink_pids).await?;
        let step_start = Instant::now();
        let counted_from = unix_nanos() + args.warmup as i64 * 1_000_000_000;
        let generator = tokio::spawn(generate(
            client.clone(),
            fleet,
            pending.clone(),
            step_start,
            Duration::from_secs(args.step_seconds),
            args.cadence,
        ));
        let mut latencies: Vec<f64> = Vec::new();
        let mut ticker = tokio::time::interval(Duration::from_millis(args.poll_ms));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        while !generator.is_finished() {
            ticker.tick().await;
            poll(pool, &pending, counted_from, &mut latencies).await?;
        }
        fleet = generator.await??;
        let after = counters(pool, &js, &pids, &sink_pids).await?;
        let lag_end = lag(&js, &pending).await;
        // What the step sent and has not committed counts at its age now.
        let now = unix_nanos();
        let uncommitted: Vec<f64> = pending
            .lock()
            .map_err(|_| anyhow::anyhow!("poisoned"))?
            .iter()
            .flatten()
            .filter(|(_, ts)| *ts >= counted_from)
            .map(|(_, ts)| (now - ts) as f64 / 1e6)
            .collect();
        let counted = latencies.len() + uncommitted.len();
        latencies.extend(&uncommitted);
        let wall = after.at.duration_since(before.at).as_secs_f64();
        let stream_bytes_host_s = stream_bytes_per_host_s(&js, &before, &after, hosts).await;
        let max_bytes = stream_max_bytes(&js).await;
        let step = Step {
            hosts,
            p50: quantile(&latencies, 0.5),
            p99: quantile(&latencies, 0.99),
            max: quantile(&latencies, 1.0),
            counted,
            uncommitted: uncommitted.len(),
            lag_start,
            lag_end,
            rows_s: (after.rows - before.rows) / wall,
            mb_s: (after.disk_bytes - before.disk_bytes) / wall / 1e6,
            cpu: std::array::from_fn(|i| (after.cpu[i] - before.cpu[i]) / wall),
            sink_hwm_mib: sink_pids.iter().map(|&p| hwm_mib(p)).fold(0.0, f64::max),
            stream_bytes_host_s,
            horizon_min: max_bytes / (stream_bytes_host_s * hosts as f64) / 60.0,
        };
        print_step(&step);
        let met = step.within_goal();
        steps.push(step);
        if !met {
            past_knee += 1;
            if past_knee >= args.past_knee {
                break;
            }
        }
    }
    print_table(&steps);
    rig.stop().await;
    drop(mariadbd);
    Ok(())
}

/// Sends every host's samples for `duration`, evenly spread, and records
/// each in `pending`. Returns the fleet with its seqs advanced.
async fn generate(
    client: async_nats::Client,
    mut fleet: Hosts,
    pending: Pending,
    start: Instant,
    duration: Duration,
    cadence: Cadence,
) -> anyhow::Result<Hosts> {
    publish_for(
        &client,
        &mut fleet,
        cadence,
        start,
        duration,
        |h, sample| {
            pending.lock().map_err(|_| anyhow::anyhow!("poisoned"))?[h]
                .push_back((sample.kind(), sample.ts));
            Ok(())
        },
    )
    .await?;
    Ok(fleet)
}

/// Takes from `pending` every sample whose host's `last_seen` reached it,
/// recording the latency of those stamped at or after `counted_from`.
async fn poll(
    pool: &MySqlPool,
    pending: &Pending,
    counted_from: i64,
    latencies: &mut Vec<f64>,
) -> anyhow::Result<()> {
    let polled_at = unix_nanos();
    let rows = sqlx::query("SELECT host, last_seen FROM hosts")
        .fetch_all(pool)
        .await?;
    let mut pending = pending.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
    for row in rows {
        let host: String = row.try_get("host")?;
        let last_seen: chrono::NaiveDateTime = row.try_get("last_seen")?;
        let Some(queue) = fleet::host_index(&host).and_then(|h| pending.get_mut(h)) else {
            continue;
        };
        // DATETIME(6) keeps microseconds: a ts within the same microsecond
        // as last_seen is committed too.
        let reached = last_seen.and_utc().timestamp_nanos_opt().unwrap_or(0) + 999;
        while let Some(&(_, ts)) = queue.front().filter(|(_, ts)| *ts <= reached) {
            queue.pop_front();
            if ts >= counted_from {
                latencies.push((polled_at - ts) as f64 / 1e6);
            }
        }
    }
    Ok(())
}

async fn lag(js: &async_nats::jetstream::Context, pending: &Pending) -> Lag {
    let messages = match js
        .get_consumer_from_stream::<async_nats::jetstream::consumer::pull::Config, _, _>(
            CONSUMER, STREAM,
        )
        .await
    {
        Ok(mut consumer) => match consumer.info().await {
            Ok(info) => info.num_pending + info.num_ack_pending as u64,
            Err(_) => 0,
        },
        Err(_) => 0,
    };
    let oldest = pending
        .lock()
        .ok()
        .and_then(|p| p.iter().filter_map(|q| q.front().map(|e| e.1)).min());
    let seconds = oldest.map_or(0.0, |ts| (unix_nanos() - ts) as f64 / 1e9);
    Lag { messages, seconds }
}

/// `pids`: sink, nats-server, mariadbd, generator; `sink_pids`: every sink
/// (the first is `pids[0]`), whose CPU is summed into the sink's figure.
async fn counters(
    pool: &MySqlPool,
    js: &async_nats::jetstream::Context,
    pids: &[Option<i32>; 4],
    sink_pids: &[i32],
) -> anyhow::Result<Counters> {
    let status = |name: &'static str| async move {
        let value: String = sqlx::query_scalar(
            "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = ?",
        )
        .bind(name)
        .fetch_one(pool)
        .await?;
        anyhow::Ok(value.parse::<f64>().unwrap_or(0.0))
    };
    let stream_seq = match js.get_stream(STREAM).await {
        Ok(mut stream) => stream.info().await.map_or(0, |i| i.state.last_sequence),
        Err(_) => 0,
    };
    Ok(Counters {
        at: Instant::now(),
        rows: status("Handler_write").await?,
        disk_bytes: pids[2].map_or(f64::NAN, |pid| {
            procfs::process::Process::new(pid)
                .and_then(|p| p.io())
                .map_or(f64::NAN, |io| io.write_bytes as f64)
        }),
        cpu: {
            let mut cpu = pids.map(|p| p.map_or(0.0, crate::footprint::cpu_seconds));
            cpu[0] = sink_pids
                .iter()
                .map(|&p| crate::footprint::cpu_seconds(p))
                .sum();
            cpu
        },
        stream_seq,
    })
}

/// The stream's average stored bytes per message times the messages the
/// step added, per host and second. The average holds even after the
/// stream started discarding its oldest messages.
async fn stream_bytes_per_host_s(
    js: &async_nats::jetstream::Context,
    before: &Counters,
    after: &Counters,
    hosts: usize,
) -> f64 {
    let Ok(mut stream) = js.get_stream(STREAM).await else {
        return f64::NAN;
    };
    let Ok(info) = stream.info().await else {
        return f64::NAN;
    };
    let per_message = info.state.bytes as f64 / info.state.messages.max(1) as f64;
    let messages = after.stream_seq.saturating_sub(before.stream_seq) as f64;
    let wall = after.at.duration_since(before.at).as_secs_f64();
    per_message * messages / wall / hosts as f64
}

async fn stream_max_bytes(js: &async_nats::jetstream::Context) -> f64 {
    match js.get_stream(STREAM).await {
        Ok(mut stream) => stream
            .info()
            .await
            .map_or(f64::NAN, |i| i.config.max_bytes as f64),
        Err(_) => f64::NAN,
    }
}

fn hwm_mib(pid: i32) -> f64 {
    procfs::process::Process::new(pid)
        .and_then(|p| p.status())
        .map_or(f64::NAN, |s| s.vmhwm.unwrap_or(0) as f64 / 1024.0)
}

async fn shared_mariadbd_pid(pool: &MySqlPool) -> Option<i32> {
    let pid_file: String = sqlx::query_scalar("SELECT @@pid_file")
        .fetch_one(pool)
        .await
        .ok()?;
    std::fs::read_to_string(pid_file).ok()?.trim().parse().ok()
}

/// The settings that decide MariaDB's throughput, as the server reports
/// them, next to where they come from.
async fn print_database_settings(
    pool: &MySqlPool,
    shared: bool,
    config: &std::path::Path,
) -> anyhow::Result<()> {
    let row = sqlx::query(
        "SELECT @@version, @@innodb_buffer_pool_size, @@innodb_log_file_size, \
         @@innodb_flush_log_at_trx_commit, @@innodb_flush_method, @@sync_binlog, @@log_bin, \
         @@max_allowed_packet, @@innodb_io_capacity",
    )
    .fetch_one(pool)
    .await?;
    let mib = |i: usize| -> anyhow::Result<String> {
        Ok(format!("{} MiB", row.try_get::<u64, _>(i)? >> 20))
    };
    println!(
        "database: MariaDB {} ({}); buffer pool {}, redo log {}, flush_log_at_trx_commit {}, \
         flush_method {}, binlog {} (sync {}), max_allowed_packet {}, io_capacity {}",
        row.try_get::<String, _>(0)?,
        if shared {
            "the machine's, its own settings, shared".to_owned()
        } else {
            format!("private, --defaults-file={}", config.display())
        },
        mib(1)?,
        mib(2)?,
        row.try_get::<u32, _>(3)?,
        row.try_get::<String, _>(4)?,
        if row.try_get::<i64, _>(6)? == 1 {
            "on"
        } else {
            "off"
        },
        row.try_get::<u32, _>(5)?,
        mib(7)?,
        row.try_get::<u64, _>(8)?,
    );
    println!(
        "machine: {} cores, load average {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    Ok(())
}

fn print_step(s: &Step) {
    println!(
        "-- {} hosts: p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms over {} samples ({} still \
         uncommitted at the end, counted at their age); lag {} msgs / {:.1} s at the start, {} \
         msgs / {:.1} s at the end; {:.0} rows/s, {:.1} MB/s written; CPU-s/s sink {:.2}, \
         nats-server {:.2}, mariadbd {:.2}, generator {:.2}; sink peak RSS {:.1} MiB; stream \
         {:.0} B per host per s, horizon {:.0} min; {}",
        s.hosts,
        s.p50,
        s.p99,
        s.max,
        s.counted,
        s.uncommitted,
        s.lag_start.messages,
        s.lag_start.seconds,
        s.lag_end.messages,
        s.lag_end.seconds,
        s.rows_s,
        s.mb_s,
        s.cpu[0],
        s.cpu[1],
        s.cpu[2],
        s.cpu[3],
        s.sink_hwm_mib,
        s.stream_bytes_host_s,
        s.horizon_min,
        if s.within_goal() {
            "within the goal (p99 < 1 s, lag bounded)"
        } else {
            "past the knee"
        },
    );
}

/// The whole curve as a Markdown table, ready for README.md.
fn print_table(steps: &[Step]) {
    println!();
    println!(
        "| hosts | p50 | p99 | max | lag at end (msgs / s) | rows/s | MB/s | CPU-s/s sink, \
         nats, mariadbd, generator | sink peak RSS | stream B/host/s | horizon |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for s in steps {
        println!(
            "| {} | {:.0} ms | {:.0} ms | {:.0} ms | {} / {:.1} s | {:.0} | {:.1} | {:.2}, \
             {:.2}, {:.2}, {:.2} | {:.0} MiB | {:.0} | {:.0} min |",
            s.hosts,
            s.p50,
            s.p99,
            s.max,
            s.lag_end.messages,
            s.lag_end.seconds,
            s.rows_s,
            s.mb_s,
            s.cpu[0],
            s.cpu[1],
            s.cpu[2],
            s.cpu[3],
            s.sink_hwm_mib,
            s.stream_bytes_host_s,
            s.horizon_min,
        );
    }
    let knee = steps
        .iter()
        .filter(|s| s.within_goal())
        .map(|s| s.hosts)
        .max();
    match knee {
        Some(hosts) => println!(
            "knee: {hosts} hosts (the largest step with p99 < 1 s and lag under {} s)",
            BOUNDED_LAG.as_secs()
        ),
        None => println!(
            "knee: below the first step ({} hosts)",
            steps.first().map_or(0, |s| s.hosts)
        ),
    }
}
