//! The dashboards' queries over a big fleet (`scripts/bench-dashboards.sh`
//! runs both steps on a private mariadbd):
//!
//! - `vigia-bench fill` writes the synthetic fleet through the sink's
//!   insert path (`vigia_dashboards::fill`) into a database;
//! - `vigia-bench dashboards` times every panel query of every dashboard on
//!   it, as a first open of each dashboard would run them, and prints
//!   p50/p95 per query. Figures only: nothing here passes or fails on time.

use std::path::PathBuf;
use std::time::Duration;

use chrono::Utc;
use vigia_dashboards::fill::{self, Plan};
use vigia_dashboards::interval;
use vigia_dashboards::{dashboard, runner, QueryWindow};
use vigia_schema::sample::{DEFAULT_INTERVAL, DEFAULT_PROCS_INTERVAL};
use vigia_testkit::fleet::HISTORY_TOP;

use crate::stats::quantile;

#[derive(clap::Args)]
pub struct FillArgs {
    /// Database to fill; created and migrated when missing.
    #[arg(long, env = "VIGIA_DATABASE_URL")]
    database_url: String,
    #[arg(long, default_value_t = 100)]
    hosts: u32,
    /// History to generate, ending now.
    #[arg(long, default_value = "24h", value_parser = interval::parse)]
    span: Duration,
    /// CPU and RAM sampling interval (the publisher's --interval).
    #[arg(long, default_value = interval::format(DEFAULT_INTERVAL), value_parser = interval::parse)]
    interval: Duration,
    /// Process sampling interval (the publisher's --procs-interval).
    #[arg(long, default_value = interval::format(DEFAULT_PROCS_INTERVAL), value_parser = interval::parse)]
    procs_interval: Duration,
    /// Processes per snapshot.
    #[arg(long, default_value_t = 40)]
    processes: u32,
    /// Messages per transaction (the sink's --batch-size).
    #[arg(long, default_value_t = 5000)]
    batch: usize,
    /// Concurrent writers, each on its own hosts.
    #[arg(long, default_value_t = 2)]
    writers: u32,
}

pub async fn fill(args: FillArgs) -> anyhow::Result<()> {
    let plan = Plan {
        hosts: args.hosts,
        prefix: "vm".into(),
        span: args.span,
        interval: args.interval,
        procs_interval: args.procs_interval,
        processes: args.processes,
        batch: args.batch,
        writers: args.writers,
        history_top: HISTORY_TOP,
    };
    let r = fill::fill(&args.database_url, &plan).await?;
    let secs = r.elapsed.as_secs_f64();
    println!(
        "filled {} hosts x {:?}: {} samples in {} batches, {secs:.1} s ({:.0} samples/s)",
        plan.hosts,
        plan.span,
        r.samples,
        r.batches,
        r.samples as f64 / secs.max(1e-9)
    );
    Ok(())
}

#[derive(clap::Args)]
pub struct Args {
    #[arg(long, env = "VIGIA_DATABASE_URL")]
    database_url: String,
    /// Dashboard time ranges to time, ending now (repeatable).
    #[arg(long = "range", default_values = ["1h", "24h"], value_parser = interval::parse)]
    ranges: Vec<Duration>,
    /// Timed runs of each query (after one untimed warm-up run).
    #[arg(long, default_value_t = 20)]
    runs: usize,
    /// Points a panel shows (its width in pixels); sets $__interval.
    #[arg(long, default_value_t = 1000)]
    max_data_points: u32,
    /// Dashboards to time (default: grafana/dashboards/), e.g. an older
    /// version's, to compare queries on the same data.
    #[arg(long)]
    dashboards: Option<PathBuf>,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let dir = args
        .dashboards
        .clone()
        .unwrap_or_else(dashboard::dashboards_dir);
    let dashboards = dashboard::load_all(&dir)?;
    let mut conn = runner::connect(&args.database_url).await?;
    for range in &args.ranges {
        let window = QueryWindow::for_range(
            Utc::now(),
            *range,
            args.max_data_points,
            Duration::from_secs(1),
        )?;
        println!(
            "\nrange {} (interval {}), {} runs each",
            interval::format(*range),
            interval::format(window.interval),
            args.runs
        );
        println!(
            "{:<18} {:<42} {:>8} {:>9} {:>9} {:>9}",
            "dashboard", "panel", "rows", "p50 ms", "p95 ms", "max ms"
        );
        let mut worst: f64 = 0.0;
        for d in &dashboards {
            let vars = runner::resolve_variables(&mut conn, d, &window).await?;
            for p in &d.panels {
                for t in &p.targets {
                    let first = runner::run_target(&mut conn, t, &vars, &window).await?;
                    let mut times = Vec::with_capacity(args.runs);
                    for _ in 0..args.runs {
                        let run = runner::run_target(&mut conn, t, &vars, &window).await?;
                        times.push(ms(run.elapsed));
                    }
                    let p95 = quantile(&times, 0.95);
                    worst = worst.max(p95);
                    println!(
                        "{:<18} {:<42} {:>8} {:>9.1} {:>9.1} {:>9.1}",
                        d.uid,
                        p.title.chars().take(42).collect::<String>(),
                        first.rows,
                        quantile(&times, 0.5),
                        p95,
                        quantile(&times, 1.0),
                    );
                }
            }
        }
        println!(
            "worst p95 over range {}: {worst:.1} ms (goal < 200 ms: {})",
            interval::format(*range),
            if worst < 200.0 { "met" } else { "NOT met" }
        );
    }
    Ok(())
}
