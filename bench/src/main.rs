//! vigia's benchmarks, run by `scripts/bench.sh`. Each subcommand starts
//! what it needs (a private nats-server on a free port, a database of its
//! own on the machine's MariaDB, the release binaries of the workspace),
//! prints its configuration and figures, and removes everything it made.
//! The dashboard benchmark is the exception: `fill` and `dashboards` work
//! on a database they are given, which `scripts/bench-dashboards.sh` (or
//! `scripts/bench.sh dashboards`) serves from a private mariadbd and keeps
//! between runs on request.

#![forbid(unsafe_code)]

mod capacity;
mod dashboards;
mod fleet;
mod footprint;
mod history;
mod ingest;
mod latency;
mod rig;
mod stats;
mod storage;

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "vigia-bench",
    about = "vigia's benchmarks (see scripts/bench.sh)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// CPU time and peak RSS of vigia-publisher at its defaults.
    Footprint(footprint::Args),
    /// Rows/s of vigia-sink for a flood of procs samples, against a plain
    /// multi-row INSERT loop writing the same rows.
    Ingest(ingest::Args),
    /// Time from a sample's `ts` to its row being committed, for a
    /// simulated fleet at the publisher's default intervals.
    Latency(latency::Args),
    /// The capacity curve: a growing simulated fleet against one sink,
    /// one nats-server and a mariadbd with the product's settings.
    Capacity(capacity::Args),
    /// Bytes on disk per host per day, every table, as the sink writes
    /// them into MariaDB with the product's settings.
    Storage(storage::Args),
    /// Ingest on a database holding a full retention of history, against
    /// the same ingest on empty tables.
    History(history::Args),
    /// Fills a database with a synthetic fleet through the sink's writer
    /// (the data of `dashboards`).
    Fill(dashboards::FillArgs),
    /// p50/p95 of every dashboard panel query on an existing database.
    Dashboards(dashboards::Args),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Footprint(args) => footprint::run(args),
        Command::Ingest(args) => runtime()?.block_on(ingest::run(args)),
        Command::Latency(args) => runtime()?.block_on(latency::run(args)),
        Command::Capacity(args) => runtime()?.block_on(capacity::run(args)),
        Command::Storage(args) => runtime()?.block_on(storage::run(args)),
        Command::History(args) => runtime()?.block_on(history::run(args)),
        Command::Fill(args) => runtime()?.block_on(dashboards::fill(args)),
        Command::Dashboards(args) => runtime()?.block_on(dashboards::run(args)),
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

/// A binary built beside this one (`target/release/<name>`).
pub fn sibling(name: &str) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("finding vigia-bench's own path")?;
    let path = exe
        .parent()
        .context("vigia-bench has no directory")?
        .join(name);
    anyhow::ensure!(
        path.exists(),
        "{} is not built; run `cargo build --release --workspace --bins`",
        path.display()
    );
    Ok(path)
}
