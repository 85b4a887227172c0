//! Publisher footprint: vigia-publisher at its defaults (cpu and ram every
//! 1 s, procs every 5 s) against a private nats-server, on a machine made
//! to run about `--processes` processes by starting `sleep`s. CPU time is
//! utime + stime from /proc/<pid>/stat, peak RSS is VmHWM from
//! /proc/<pid>/status, both read just before the publisher is stopped.
//!
//! With `--against OTHER`, a second publisher binary (a build of main, say)
//! runs beside the first over the same seconds on the same processes, and
//! the two are compared window by window: on a machine whose speed drifts
//! from one minute to the next, only figures taken side by side compare.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use vigia_testkit::{Child, NatsServer};

use crate::{sibling, stats};

#[derive(clap::Args)]
pub struct Args {
    /// How long the publisher runs.
    #[arg(long, default_value = "60", value_name = "SECONDS")]
    seconds: u64,
    /// Processes on the machine while it runs (tops up with `sleep`s).
    #[arg(long, default_value_t = 400)]
    processes: usize,
    /// Start of the steady-state window (the first seconds hold start-up:
    /// connecting, the hello, the first /etc/passwd read).
    #[arg(long, default_value = "5", value_name = "SECONDS")]
    warmup: u64,
    /// The publisher binary (default: the release build beside this one),
    /// e.g. a build with symbols for a profiler.
    #[arg(long)]
    publisher: Option<std::path::PathBuf>,
    /// A command to run the publisher under, e.g. "valgrind
    /// --tool=callgrind --callgrind-out-file=/tmp/cg.out" (its CPU figures
    /// are then the profiler's, not the publisher's).
    #[arg(long)]
    wrap: Option<String>,
    /// A second publisher binary to run beside the first, at the same
    /// time, as `--host bench-footprint-against`; prints both and their
    /// ratio.
    #[arg(long, value_name = "BINARY")]
    against: Option<std::path::PathBuf>,
    /// Length of the windows the steady state is cut into for medians.
    #[arg(long, default_value = "10", value_name = "SECONDS")]
    window: u64,
}

/// CPU seconds and memory of one process, read from /proc.
struct Usage {
    cpu_s: f64,
    user_s: f64,
    system_s: f64,
    /// Time on a CPU of the live threads, from /proc/<pid>/task/*/schedstat:
    /// nanoseconds, where utime and stime count 1/CLK_TCK ticks.
    sched_s: f64,
    hwm_kib: u64,
    rss_kib: u64,
    threads: i64,
}

fn usage(pid: u32) -> anyhow::Result<Usage> {
    let process = procfs::process::Process::new(pid as i32)
        .with_context(|| format!("/proc/{pid}: the publisher is gone"))?;
    let stat = process.stat().context("reading /proc/<pid>/stat")?;
    let status = process.status().context("reading /proc/<pid>/status")?;
    let ticks = procfs::ticks_per_second() as f64;
    let mut sched_ns = 0u64;
    for task in process.tasks().context("listing /proc/<pid>/task")? {
        let Ok(task) = task else { continue };
        let path = format!("/proc/{pid}/task/{}/schedstat", task.tid);
        if let Ok(text) = std::fs::read_to_string(&path) {
            sched_ns += text
                .split_whitespace()
                .next()
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    Ok(Usage {
        cpu_s: (stat.utime + stat.stime) as f64 / ticks,
        user_s: stat.utime as f64 / ticks,
        system_s: stat.stime as f64 / ticks,
        sched_s: sched_ns as f64 / 1e9,
        hwm_kib: status.vmhwm.unwrap_or(0),
        rss_kib: status.vmrss.unwrap_or(0),
        threads: stat.num_threads,
    })
}

/// utime + stime of a process, seconds; 0 when it cannot be read.
pub fn cpu_seconds(pid: i32) -> f64 {
    procfs::process::Process::new(pid)
        .and_then(|p| p.stat())
        .map(|s| (s.utime + s.stime) as f64 / procfs::ticks_per_second() as f64)
        .unwrap_or(0.0)
}

/// The pid of this process's child running `comm`, if any.
pub fn child_named(comm: &str) -> Option<i32> {
    let me = std::process::id() as i32;
    procfs::process::all_processes()
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|p| p.stat().ok())
        .find(|s| s.ppid == me && s.comm == comm)
        .map(|s| s.pid)
}

fn count_processes() -> anyhow::Result<usize> {
    Ok(procfs::process::all_processes()
        .context("listing /proc")?
        .count())
}

/// The publisher's default procs interval: windows are whole multiples of
/// it, so each holds as many walks.
const PROCS_INTERVAL_S: u64 = vigia_schema::sample::DEFAULT_PROCS_INTERVAL.as_secs();

/// Half the procs interval, and a whole number of cpu and ram intervals
/// (1 s) plus a half.
const AGAINST_OFFSET: Duration = Duration::from_millis(PROCS_INTERVAL_S * 1000 / 2);

/// Readings are taken this long after a whole number of procs intervals
/// since the first publisher started: a quarter interval away from every
/// walk of both publishers, and from their 1 s ticks.
const READING_OFFSET: Duration = Duration::from_millis(PROCS_INTERVAL_S * 1000 / 4);

/// One publisher under measurement and its readings at the end of the
/// warm-up and of each window.
struct Measured {
    label: String,
    child: Child,
    spawned_at: Instant,
    readings: Vec<(Instant, Usage)>,
}

impl Measured {
    fn read(&mut self) -> anyhow::Result<()> {
        let usage = usage(self.child.pid()).with_context(|| self.label.clone())?;
        self.readings.push((Instant::now(), usage));
        Ok(())
    }

    /// On-CPU time (schedstat) of each window after the warm-up, as % of
    /// one core.
    fn window_pcts(&self) -> Vec<f64> {
        self.readings
            .windows(2)
            .map(|w| {
                let wall = w[1].0.duration_since(w[0].0).as_secs_f64();
                (w[1].1.sched_s - w[0].1.sched_s) / wall * 100.0
            })
            .collect()
    }
}

pub fn run(args: Args) -> anyhow::Result<()> {
    // Whole procs intervals: every window holds as many walks, and every
    // reading falls between walks.
    for (flag, value) in [("--window", args.window), ("--seconds", args.seconds)] {
        anyhow::ensure!(
            value > 0 && value.is_multiple_of(PROCS_INTERVAL_S),
            "{flag} {value}: must be a multiple of the publisher's procs interval \
             ({PROCS_INTERVAL_S} s)"
        );
    }
    anyhow::ensure!(
        args.seconds >= args.warmup + args.window,
        "--seconds {}: must be at least --warmup + --window ({} s)",
        args.seconds,
        args.warmup + args.window
    );
    let windows = (args.seconds - args.warmup) / args.window;
    let publisher_bin = match &args.publisher {
        Some(path) => path.clone(),
        None => sibling("vigia-publisher")?,
    };
    let before = count_processes()?;
    let mut sleeps = Vec::new();
    while before + sleeps.len() < args.processes {
        sleeps.push(Child::spawn("sleep", &["3600"], &[]));
    }
    std::thread::sleep(Duration::from_millis(300));
    let on_machine = count_processes()?;

    let nats = NatsServer::start();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let js = runtime.block_on(async {
        let client = async_nats::connect(nats.url()).await?;
        vigia_testkit::telemetry::create_telemetry_stream(&client).await;
        anyhow::Ok(async_nats::jetstream::new(client))
    })?;

    println!("== publisher footprint");
    println!(
        "config: {}{} --nats-url {} --host bench-footprint (defaults: --interval 1s \
         --procs-interval 5s, procfs source); {}s run (+ 1.25 s), steady state after at least {}s; \
         processes on the machine: {} ({} of them sleeps started by the bench); \
         release build",
        args.wrap
            .as_ref()
            .map_or(String::new(), |w| format!("{w} ")),
        publisher_bin.display(),
        nats.url(),
        args.seconds,
        args.warmup,
        on_machine,
        sleeps.len(),
    );
    let url = nats.url();
    let spawn = |binary: &std::path::Path, host: &str| {
        let path = binary.to_string_lossy().into_owned();
        let mut argv: Vec<&str> = args
            .wrap
            .as_deref()
            .map_or(Vec::new(), |w| w.split_whitespace().collect());
        argv.extend([path.as_str(), "--nats-url", &url, "--host", host]);
        Child::spawn(argv[0], &argv[1..], &[])
    };
    let started = Instant::now();
    let mut measured = vec![Measured {
        label: publisher_bin.display().to_string(),
        child: spawn(&publisher_bin, "bench-footprint"),
        spawned_at: started,
        readings: Vec::new(),
    }];
    if let Some(other) = &args.against {
        // Started half a procs interval later. Walks at the same moment
        // would not compare: the second finds the kernel's caches warm
        // from the first (measured: 12 % cheaper).
        std::thread::sleep(AGAINST_OFFSET);
        println!(
            "against: {} --host bench-footprint-against, running beside it, started {:.1} s later",
            other.display(),
            AGAINST_OFFSET.as_secs_f64()
        );
        measured.push(Measured {
            label: other.display().to_string(),
            child: spawn(other, "bench-footprint-against"),
            spawned_at: Instant::now(),
            readings: Vec::new(),
        });
    }
    // The last reading ends the run; the first comes whole windows before
    // it, at least --warmup after the start.
    let first_reading =
        started + Duration::from_secs(args.seconds - windows * args.window) + READING_OFFSET;
    for k in 0..=windows {
        let at = first_reading + Duration::from_secs(k * args.window);
        std::thread::sleep(at.saturating_duration_since(Instant::now()));
        for m in &mut measured {
            m.read()?;
        }
    }
    let wall = started.elapsed();
    let in_stream = runtime.block_on(async {
        let mut stream = js.get_stream(vigia_schema::subject::STREAM).await?;
        anyhow::Ok(stream.info().await?.state.messages)
    })?;
    let exits: Vec<_> = measured
        .iter_mut()
        .map(|m| m.child.terminate(Duration::from_secs(10)))
        .collect();
    drop(sleeps);

    println!(
        "wall {:.1} s, samples in the stream {in_stream}{}; readings from {:.2} s, {windows} windows of {} s",
        wall.as_secs_f64(),
        if measured.len() > 1 { " (both publishers)" } else { "" },
        (first_reading - started).as_secs_f64(),
        args.window,
    );
    for (m, exit) in measured.iter().zip(&exits) {
        if measured.len() > 1 {
            println!("-- {}", m.label);
        }
        report(m);
        println!(
            "publisher stopped: {}",
            exit.map_or("did not exit within 10 s".to_owned(), |s| s.to_string())
        );
    }
    if let [this, other] = &measured[..] {
        let (a, b) = (this.window_pcts(), other.window_pcts());
        let ratios: Vec<f64> = a.iter().zip(&b).map(|(x, y)| x / y).collect();
        let steady = |m: &Measured| {
            let (first, last) = (&m.readings[0], &m.readings[m.readings.len() - 1]);
            last.1.sched_s - first.1.sched_s
        };
        println!(
            "side by side: {} / {}: steady-state on-CPU time ratio {:.3}; median of \
             {} per-window ratios {:.3} (min {:.3}, max {:.3}); window medians {:.3} % vs {:.3} %",
            this.label,
            other.label,
            steady(this) / steady(other),
            ratios.len(),
            stats::median(&ratios),
            ratios.iter().copied().fold(f64::INFINITY, f64::min),
            ratios.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            stats::median(&a),
            stats::median(&b),
        );
    }
    Ok(())
}

/// Prints one publisher's figures: in all since it started, and in the
/// steady state between its first and last readings.
fn report(m: &Measured) {
    let (warm_at, warm) = &m.readings[0];
    let (end_at, end) = &m.readings[m.readings.len() - 1];
    let wall = end_at.duration_since(m.spawned_at).as_secs_f64();
    let core_pct = end.cpu_s / wall * 100.0;
    let steady_wall = end_at.duration_since(*warm_at).as_secs_f64();
    let steady_s = end.cpu_s - warm.cpu_s;
    let steady_pct = steady_s / steady_wall * 100.0;
    let hwm_mib = end.hwm_kib as f64 / 1024.0;
    println!(
        "cpu: {:.2} s in all = {core_pct:.3} % of one core; steady state {:.2} s over {steady_wall:.1} s = {steady_pct:.3} % of one core",
        end.cpu_s, steady_s
    );
    let windows = m.window_pcts();
    println!(
        "cpu split: user {:.2} s, system {:.2} s; on-CPU time of the live threads \
         (schedstat, ns resolution) {:.3} s in all = {:.3} % of one core, steady state \
         {:.3} % of one core; per window: median {:.3} % over {} windows",
        end.user_s,
        end.system_s,
        end.sched_s,
        end.sched_s / wall * 100.0,
        (end.sched_s - warm.sched_s) / steady_wall * 100.0,
        stats::median(&windows),
        windows.len(),
    );
    println!(
        "memory: peak RSS (VmHWM) {hwm_mib:.2} MiB, RSS at end {:.2} MiB, threads {}",
        end.rss_kib as f64 / 1024.0,
        end.threads
    );
    println!(
        "goal: < 0.2 % of one core and < 8 MiB: cpu {}, memory {}",
        verdict(core_pct < 0.2),
        verdict(hwm_mib < 8.0)
    );
}

pub fn verdict(met: bool) -> &'static str {
    if met {
        "met"
    } else {
        "NOT met"
    }
}
