//! A synthetic fleet written through the sink's own insert path
//! (`vigia_sink::store::Writer`), so the tables hold exactly what the sink
//! would store for real publishers: hosts kept current, history trimmed to
//! the top processes, procs snapshots, lifecycle events.
//!
//! Each host starts with a `hello`, samples CPU and RAM every `interval` and
//! its processes every `procs_interval`; a tenth of the hosts join late and
//! another tenth leave before the end (half with a `bye`, half going silent,
//! which the sink's liveness sweep then marks offline): the autoscaling churn
//! the Fleet dashboard shows. Every ten minutes each host also records a
//! kill request's audit `event`, as a publisher does for process control.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use vigia_schema::{
    ByeBody, CpuBody, EventBody, HealthBody, HelloBody, Outcome, ProcessEntry, ProcsBody, RamBody,
    Sample, SampleBody, SCHEMA_VERSION,
};
use vigia_sink::store::{self, WriteError, Writer};

/// What to generate.
#[derive(Debug, Clone)]
pub struct Plan {
    pub hosts: u32,
    /// Host names are `{prefix}-{n:03}`.
    pub prefix: String,
    pub span: Duration,
    pub end: DateTime<Utc>,
    pub interval: Duration,
    pub procs_interval: Duration,
    /// Processes in each snapshot (the sink keeps the top N by CPU and by
    /// RSS of them in the history and all of the newest in `processes`).
    pub processes: u32,
    /// Messages per transaction, as the sink's batch size.
    pub batch: usize,
    /// Writers working at once, each on its own share of the hosts.
    pub writers: u32,
    /// The sink's `--history-top`.
    pub history_top: usize,
}

impl Plan {
    /// A small fleet over the last `span`, for tests.
    pub fn small(hosts: u32, span: Duration) -> Self {
        Self {
            hosts,
            prefix: "host".into(),
            span,
            end: Utc::now(),
            interval: Duration::from_secs(1),
            procs_interval: Duration::from_secs(5),
            processes: 40,
            batch: 5000,
            writers: 1,
            history_top: 10,
        }
    }
}

/// What was written.
#[derive(Debug, Clone, Copy, Default)]
pub struct Report {
    pub samples: u64,
    pub batches: u64,
    pub elapsed: Duration,
}

/// Fills the database at `url` (created and migrated by the sink's own
/// connect) with `plan`'s fleet, then runs the sink's liveness sweep.
pub async fn fill(url: &str, plan: &Plan) -> Result<Report> {
    let start = Instant::now();
    let pool = store::connect(url, plan.writers.max(1) + 1).await?;
    let mut tasks = Vec::new();
    for part in 0..plan.writers.max(1) {
        let writer = Writer::new(pool.clone(), plan.history_top);
        let plan = plan.clone();
        tasks.push(tokio::spawn(async move {
            write_part(&writer, &plan, part).await
        }));
    }
    let mut report = Report::default();
    let mut hosts = Vec::new();
    for t in tasks {
        let (r, part) = t.await.context("a fill writer panicked")??;
        report.samples += r.samples;
        report.batches += r.batches;
        hosts.extend(part);
    }
    // The writers finish at different moments: one last sample from every
    // live host at the same instant, as running publishers would send, so
    // that the sweep below finds only the hosts that really went silent.
    let writer = Writer::new(pool.clone(), plan.history_top);
    let now = Utc::now()
        .timestamp_nanos_opt()
        .context("now out of range")?;
    let mut last: Vec<Sample> = hosts
        .iter_mut()
        .filter(|h| h.leaves.is_none())
        .flat_map(|h| [h.cpu(now), h.ram(now)])
        .collect();
    flush(&writer, &mut last, &mut report).await?;
    vigia_sink::liveness::sweep(&pool)
        .await
        .context("marking silent hosts offline")?;
    // After the sweep: hundreds of single-row inserts on a busy server
    // could outlast the live hosts' silence limit (3 s).
    sink_health(&pool, plan, &report).await?;
    pool.close().await;
    report.elapsed = start.elapsed();
    Ok(report)
}

/// One host's life in the plan.
struct Host {
    name: String,
    boot: String,
    index: u32,
    /// Nanoseconds.
    joins: i64,
    leaves: Option<(i64, bool)>,
    seq: [u64; 7],
    procs: Vec<ProcessEntry>,
}

fn nanos(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

/// A cheap deterministic pseudo-random number in [0, 1) from integers.
fn noise(a: u64, b: u64) -> f32 {
    let mut x = a
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(b.wrapping_mul(0xC2B2_AE3D_27D4_EB4F));
    x ^= x >> 33;
    x = x.wrapping_mul(0xFF51_AFD7_ED55_8CCD);
    x ^= x >> 33;
    (x >> 40) as f32 / (1u64 << 24) as f32
}

const NAMES: &[&str] = &[
    "systemd",
    "sshd",
    "nginx",
    "postgres",
    "java",
    "python3",
    "node",
    "redis-server",
    "containerd",
    "dockerd",
    "kworker/0:1",
    "rsyslogd",
    "cron",
    "vigia-publisher",
    "bash",
    "envoy",
    "o'reilly-agent",
    "chronyd",
    "journald",
    "etcd",
];
const TOTAL_RAM: u64 = 16 << 30;
/// How often publishers send their `health` (their default).
const HEALTH_INTERVAL: Duration = Duration::from_secs(60);
/// How often the fill's sink records its own health (the sink's default).
const SINK_HEALTH_INTERVAL: Duration = Duration::from_secs(5);
/// Ticks between two kill requests to one host (10 minutes at 1 s).
const COMMAND_EVERY: i64 = 600;

fn new_host(plan: &Plan, index: u32, start: i64, end: i64) -> Host {
    let span = end - start;
    // Every tenth host joins a third of the way in; every tenth (offset by
    // five) leaves two thirds of the way in, alternately with a bye or not.
    let joins = if index % 10 == 3 {
        start + span / 3
    } else {
        start
    };
    let leaves = (index % 10 == 8).then(|| (start + 2 * span / 3, index % 20 == 8));
    let procs = (0..plan.processes)
        .map(|i| {
            let name = NAMES[i as usize % NAMES.len()];
            ProcessEntry {
                pid: if i == 0 { 1 } else { 100 + i as i32 * 7 },
                ppid: if i == 0 { 0 } else { 1 },
                name: name.to_string(),
                uid: if i % 3 == 0 { 0 } else { 1000 },
                user: if i % 3 == 0 {
                    "root".into()
                } else {
                    "app".into()
                },
                state: "S".into(),
                rss: 0,
                mem_pct: 0.0,
                cpu_pct: 0.0,
                threads: 1 + i % 8,
                start_ts: joins,
            }
        })
        .collect();
    Host {
        name: format!("{}-{index:03}", plan.prefix),
        boot: format!("b{index:03}{:x}", joins / 1_000_000_000),
        index,
        joins,
        leaves,
        seq: [0; 7],
        procs,
    }
}

impl Host {
    fn sample(&mut self, kind: usize, ts: i64, body: SampleBody) -> Sample {
        self.seq[kind] += 1;
        Sample {
            v: SCHEMA_VERSION,
            host: self.name.clone(),
            boot: self.boot.clone(),
            seq: self.seq[kind],
            ts,
            body,
        }
    }

    fn alive_at(&self, ts: i64) -> bool {
        ts >= self.joins && self.leaves.is_none_or(|(l, _)| ts < l)
    }

    fn hello(&mut self, plan: &Plan) -> Sample {
        let body = SampleBody::Hello(HelloBody {
            agent_version: "0.1.0".into(),
            kernel: "6.1.0-synthetic".into(),
            os: "Debian GNU/Linux 12 (bookworm)".into(),
            cpus: 4,
            ram_total: TOTAL_RAM,
            boot_time: self.joins - 3_600_000_000_000,
            source: self.source().into(),
            interval_ms: plan.interval.as_millis() as u64,
            procs_interval_ms: plan.procs_interval.as_millis() as u64,
        });
        self.sample(3, self.joins, body)
    }

    fn cpu(&mut self, ts: i64) -> Sample {
        let t = (ts / 1_000_000_000) as u64;
        let base = 10.0 + 70.0 * noise(self.index as u64, t / 600);
        let busy = (base + 10.0 * noise(self.index as u64, t)).min(100.0);
        let user = busy * 0.7;
        let system = busy * 0.25;
        let iowait = (100.0 - busy) * 0.02;
        let body = SampleBody::Cpu(CpuBody {
            busy_pct: busy,
            user_pct: user,
            system_pct: system,
            iowait_pct: iowait,
            steal_pct: busy - user - system,
            idle_pct: 100.0 - busy - iowait,
            per_cpu_busy_pct: vec![busy; 4],
            load1: busy / 25.0,
            load5: base / 25.0,
            load15: base / 25.0,
            cpus: 4,
        });
        self.sample(0, ts, body)
    }

    fn ram(&mut self, ts: i64) -> Sample {
        let t = (ts / 1_000_000_000) as u64;
        let used = (TOTAL_RAM as f32 * (0.2 + 0.6 * noise(self.index as u64 + 7, t / 900))) as u64;
        let cached = (TOTAL_RAM - used) / 2;
        let body = SampleBody::Ram(RamBody {
            total: TOTAL_RAM,
            used,
            free: TOTAL_RAM - used - cached,
            available: TOTAL_RAM - used,
            buffers: 64 << 20,
            cached,
            swap_total: 0,
            swap_free: 0,
        });
        self.sample(1, ts, body)
    }

    fn procs(&mut self, ts: i64) -> Sample {
        let t = (ts / 1_000_000_000) as u64;
        let host = self.index as u64;
        for (i, p) in self.procs.iter_mut().enumerate() {
            let weight = 1.0 / (1.0 + i as f32);
            p.cpu_pct = 100.0 * weight * noise(host * 1000 + i as u64, t / 30);
            p.rss = ((1u64 << 20) as f32 * 800.0 * weight * (0.5 + noise(host + i as u64, t / 300)))
                as u64;
            p.mem_pct = 100.0 * p.rss as f32 / TOTAL_RAM as f32;
            p.state = match i % 17 {
                0 if noise(host, t) < 0.5 => "R",
                16 => "I",
                13 => "D",
                _ => "S",
            }
            .into();
        }
        let body = SampleBody::Procs(ProcsBody {
            processes: self.procs.clone(),
        });
        self.sample(2, ts, body)
    }

    /// Every third host reads the kernel module, the others procfs.
    fn source(&self) -> &'static str {
        if self.index.is_multiple_of(3) {
            "module"
        } else {
            "procfs"
        }
    }

    /// The publisher's own health: a host in twenty lost its NATS
    /// connection once, half-way, and dropped samples meanwhile; a tenth
    /// run an older agent.
    fn health(&mut self, ts: i64, halfway: i64) -> Sample {
        let troubled = self.index % 20 == 5 && ts >= halfway;
        let body = SampleBody::Health(HealthBody {
            dropped: if troubled { 120 } else { 0 },
            outbox_depth: u64::from(troubled) * 3,
            reconnects: u64::from(troubled),
            source: self.source().into(),
            agent_version: if self.index % 10 == 9 {
                "0.0.9"
            } else {
                "0.1.0"
            }
            .into(),
        });
        self.sample(6, ts, body)
    }

    /// The audit record of a kill request an operator sent this host.
    fn event(&mut self, ts: i64, n: u64) -> Sample {
        let pid = self.procs[(n as usize) % self.procs.len()].pid;
        let name = self.procs[(n as usize) % self.procs.len()].name.clone();
        let (outcome, error) = match (u64::from(self.index) + n) % 5 {
            0 => (
                Outcome::Refused,
                Some("pid 1 and systemd are protected".to_string()),
            ),
            1 => (Outcome::Failed, Some("ESRCH: no such process".to_string())),
            _ => (Outcome::Ok, None),
        };
        let body = SampleBody::Event(EventBody {
            action: "kill".into(),
            pid: Some(i64::from(pid)),
            name: Some(name),
            signal: Some(if n.is_multiple_of(2) { "TERM" } else { "KILL" }.into()),
            requested_by: Some("operator@example".into()),
            nats_user: Some("ops".into()),
            outcome,
            error,
        });
        self.sample(5, ts, body)
    }

    fn bye(&mut self, ts: i64) -> Sample {
        const KINDS: [&str; 7] = ["cpu", "ram", "procs", "hello", "bye", "event", "health"];
        let last_seq = KINDS
            .iter()
            .zip(self.seq)
            .filter(|(_, n)| *n > 0)
            .map(|(k, n)| (k.to_string(), n))
            .collect();
        let body = SampleBody::Bye(ByeBody {
            reason: "SIGTERM".into(),
            dropped: 0,
            last_seq,
        });
        self.sample(4, ts, body)
    }
}

/// Writes the hosts `part`, `part + writers`, ... in time order, a batch at
/// a time, as a caught-up sink would receive them; then on up to the
/// present while writing took time.
async fn write_part(writer: &Writer, plan: &Plan, part: u32) -> Result<(Report, Vec<Host>)> {
    let mut end = plan
        .end
        .timestamp_nanos_opt()
        .context("end time out of range")?;
    let start = end - nanos(plan.span);
    let step = nanos(plan.interval).max(1);
    let procs_every = (nanos(plan.procs_interval) / step).max(1);
    let health_every = (nanos(HEALTH_INTERVAL) / step).max(1);
    let halfway = start + nanos(plan.span) / 2;
    let mut hosts: Vec<Host> = (0..plan.hosts)
        .filter(|i| i % plan.writers.max(1) == part)
        .map(|i| new_host(plan, i, start, end))
        .collect();
    let mut report = Report::default();
    let mut batch: Vec<Sample> = Vec::with_capacity(plan.batch + hosts.len() * 4);
    let mut tick: i64 = 0;
    loop {
        let ts = start + tick * step;
        if ts > end {
            end = Utc::now()
                .timestamp_nanos_opt()
                .context("now out of range")?;
            if ts > end {
                break;
            }
        }
        for h in hosts.iter_mut() {
            if ts <= h.joins && h.joins < ts + step {
                batch.push(h.hello(plan));
            }
            if let Some((leaves, with_bye)) = h.leaves {
                if with_bye && ts <= leaves && leaves < ts + step {
                    batch.push(h.bye(leaves));
                }
            }
            if !h.alive_at(ts) {
                continue;
            }
            // A little jitter inside the interval, as real clocks have.
            let at = ts + (noise(h.index as u64, tick as u64) * 0.2 * step as f32) as i64;
            batch.push(h.cpu(at));
            batch.push(h.ram(at));
            if tick % procs_every == 0 {
                batch.push(h.procs(at));
            }
            if tick % health_every == 0 {
                batch.push(h.health(at, halfway));
            }
            // Now and then an operator kills something: every host gets a
            // request every `COMMAND_EVERY` ticks, spread over the hosts.
            if (tick + i64::from(h.index) * 37) % COMMAND_EVERY == 0 {
                batch.push(h.event(at, (tick / COMMAND_EVERY) as u64));
            }
        }
        tick += 1;
        if batch.len() >= plan.batch {
            flush(writer, &mut batch, &mut report).await?;
        }
    }
    flush(writer, &mut batch, &mut report).await?;
    Ok((report, hosts))
}

/// The rows two sinks would have written about themselves over the span,
/// through the sink's own function: what they stored (shared), a few dead
/// letters of each class, batch write times and a small lag.
async fn sink_health(pool: &sqlx::MySqlPool, plan: &Plan, report: &Report) -> Result<()> {
    use std::sync::atomic::Ordering;
    use vigia_sink::metrics::{DeadLetterClass, Lag, Metrics};
    let end = Utc::now();
    let span = chrono::Duration::from_std(plan.span)?;
    let started = (end - span).naive_utc();
    let rows = (plan.span.as_secs() / SINK_HEALTH_INTERVAL.as_secs()).max(1);
    for (i, sink) in ["sink-a", "sink-b"].into_iter().enumerate() {
        let metrics = Metrics::default();
        for row in 0..=rows {
            let at = end - span + chrono::Duration::from_std(SINK_HEALTH_INTERVAL * row as u32)?;
            let share = report.samples * row / rows / 2;
            metrics.stored.store(share, Ordering::Relaxed);
            metrics.batches.store(share / 500 + 1, Ordering::Relaxed);
            if row % 40 == 7 {
                metrics.dead_lettered(DeadLetterClass::ALL[(row / 40 % 4) as usize]);
            }
            for ms in [8 + i as u64, 12, 30 + row % 20] {
                metrics.write_times.observe(Duration::from_millis(ms));
            }
            let lag = Lag {
                pending: row % 50,
                ack_pending: 500,
                seconds: 0.2 + (row % 10) as f64 / 10.0,
            };
            vigia_sink::health::write_row(pool, sink, started, at.naive_utc(), &metrics, Some(lag))
                .await
                .context("writing sink_health")?;
        }
    }
    Ok(())
}

async fn back_off(attempt: u32, _deadlock: &WriteError) {
    tokio::time::sleep(Duration::from_millis(10 * u64::from(attempt))).await;
}

async fn flush(writer: &Writer, batch: &mut Vec<Sample>, report: &mut Report) -> Result<()> {
    if batch.is_empty() {
        return Ok(());
    }
    let refs: Vec<&Sample> = batch.iter().collect();
    // Writers on different hosts can still deadlock on InnoDB's gap locks;
    // the sink retries such a batch, and so does the fill.
    let mut attempt = 0;
    loop {
        match writer.write(&refs).await {
            Ok(()) => break,
            // Deadlock (1213) or lock wait (1205): the same rows succeed
            // once the other writer is done.
            Err(e @ WriteError::Statement { .. })
                if attempt < 20 && matches!(e.mysql_number(), Some(1205 | 1213)) =>
            {
                attempt += 1;
                back_off(attempt, &e).await;
            }
            Err(e) => return Err(e).context("the sink's writer failed"),
        }
    }
    report.samples += batch.len() as u64;
    report.batches += 1;
    batch.clear();
    Ok(())
}
