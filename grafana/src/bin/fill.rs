//! Fills a database with a synthetic fleet through the sink's insert path.
//!
//! vigia-fill --database-url mysql://root@127.0.0.1:3306/vigia_bench --hosts 100 --span 24h

#![forbid(unsafe_code)]

use std::process::ExitCode;
use std::time::Duration;

use chrono::Utc;
use clap::Parser;
use vigia_dashboards::fill::{self, Plan};

#[derive(Debug, Parser)]
#[command(
    name = "vigia-fill",
    about = "Fills MySQL with a synthetic vigia fleet through the sink's writer"
)]
struct Args {
    /// Database to fill; created and migrated when missing.
    #[arg(long, env = "VIGIA_DATABASE_URL")]
    database_url: String,
    #[arg(long, default_value_t = 100)]
    hosts: u32,
    /// History to generate, ending now.
    #[arg(long, default_value = "24h", value_parser = humantime_duration)]
    span: Duration,
    /// CPU and RAM sampling interval (the publisher's --interval).
    #[arg(long, default_value = "1s", value_parser = humantime_duration)]
    interval: Duration,
    /// Process sampling interval (the publisher's --procs-interval).
    #[arg(long, default_value = "5s", value_parser = humantime_duration)]
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

fn humantime_duration(text: &str) -> Result<Duration, String> {
    vigia_dashboards::interval::parse(text)
}

fn main() -> ExitCode {
    let args = Args::parse();
    let plan = Plan {
        hosts: args.hosts,
        prefix: "vm".into(),
        span: args.span,
        end: Utc::now(),
        interval: args.interval,
        procs_interval: args.procs_interval,
        processes: args.processes,
        batch: args.batch,
        writers: args.writers,
        history_top: 10,
    };
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(anyhow::Error::from)
        .and_then(|rt| rt.block_on(fill::fill(&args.database_url, &plan)));
    match result {
        Ok(r) => {
            let secs = r.elapsed.as_secs_f64();
            println!(
                "filled {} hosts x {:?}: {} samples in {} batches, {secs:.1} s ({:.0} samples/s)",
                plan.hosts,
                plan.span,
                r.samples,
                r.batches,
                r.samples as f64 / secs.max(1e-9)
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("vigia-fill: {e:#}");
            ExitCode::FAILURE
        }
    }
}
