//! Times every panel query of every dashboard on an existing database, as a
//! first open of each dashboard would run them, and prints p50/p95 per
//! query. Figures only: nothing here passes or fails on time.
//!
//! vigia-dashboard-bench --database-url mysql://root@127.0.0.1:3307/vigia_bench --range 1h --range 24h

#![forbid(unsafe_code)]

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use chrono::Utc;
use clap::Parser;
use vigia_dashboards::dashboard;
use vigia_dashboards::runner;
use vigia_dashboards::QueryWindow;

#[derive(Debug, Parser)]
#[command(
    name = "vigia-dashboard-bench",
    about = "p50/p95 of every dashboard panel query"
)]
struct Args {
    #[arg(long, env = "VIGIA_DATABASE_URL")]
    database_url: String,
    /// Dashboard time ranges to time, ending now (repeatable).
    #[arg(long = "range", default_values = ["1h", "24h"], value_parser = vigia_dashboards::interval::parse)]
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
    dashboards: Option<std::path::PathBuf>,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn bench(args: &Args) -> Result<()> {
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
            vigia_dashboards::interval::format(*range),
            vigia_dashboards::interval::format(window.interval),
            args.runs
        );
        println!(
            "{:<18} {:<42} {:>8} {:>9} {:>9} {:>9}",
            "dashboard", "panel", "rows", "p50 ms", "p95 ms", "max ms"
        );
        let mut worst = Duration::ZERO;
        for d in &dashboards {
            let vars = runner::resolve_variables(&mut conn, d, &window).await?;
            for p in &d.panels {
                for t in &p.targets {
                    let first = runner::run_target(&mut conn, t, &vars, &window).await?;
                    let mut times = Vec::with_capacity(args.runs);
                    for _ in 0..args.runs {
                        times.push(
                            runner::run_target(&mut conn, t, &vars, &window)
                                .await?
                                .elapsed,
                        );
                    }
                    times.sort();
                    let p95 = percentile(&times, 0.95);
                    worst = worst.max(p95);
                    println!(
                        "{:<18} {:<42} {:>8} {:>9.1} {:>9.1} {:>9.1}",
                        d.uid,
                        p.title.chars().take(42).collect::<String>(),
                        first.rows,
                        ms(percentile(&times, 0.5)),
                        ms(p95),
                        ms(*times.last().unwrap_or(&Duration::ZERO)),
                    );
                }
            }
        }
        let under = worst < Duration::from_millis(200);
        println!(
            "worst p95 over range {}: {:.1} ms (goal < 200 ms: {})",
            vigia_dashboards::interval::format(*range),
            ms(worst),
            if under { "met" } else { "NOT met" }
        );
    }
    Ok(())
}

fn main() -> ExitCode {
    let args = Args::parse();
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(anyhow::Error::from)
        .and_then(|rt| rt.block_on(bench(&args)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vigia-dashboard-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}
