//! A local stand-in for the GCP instance group: runs simulated VMs as
//! separate vigia-publisher processes, each with its own host name, and
//! grows and shrinks that set on a schedule as an autoscaler would. Hosts
//! join; some leave cleanly (SIGTERM: the publisher flushes and sends
//! `bye`), some are killed without a word (SIGKILL, as a VM deleted under
//! load). At the end it checks in MariaDB, for every host, with the same
//! completeness check as the sink's tests (`vigia_testkit::completeness`):
//!   - each kind (cpu, ram, procs) has seq 1..N with no gap and no
//!     duplicate, from the host's one boot, and N fits how long it lived;
//!   - hello came once; bye came exactly when the host left cleanly;
//!   - the hosts table says offline for every host that left (and, midway,
//!     online for every host still running).
//!
//! It prints the hosts-online curve it produced, next to the same curve
//! read back from the hosts table (what the Fleet dashboard's churn panel
//! shows), each point read when the sink can know (see [`fleet::grace`]);
//! the two must agree.
//!
//! It runs its own nats-server (a free loopback port, a temporary store)
//! and its own sink with its own database on the local MariaDB
//! (`VIGIA_MYSQL_HOST`:`VIGIA_MYSQL_PORT`, default 127.0.0.1:3306, root,
//! no password): a sink elsewhere on this machine sharing the stream's
//! consumer would take part of the messages, and two streams cannot both
//! hold telemetry.>.
//!
//! Ends with "simulate-fleet: N passed, N failed"; exits non-zero on a
//! failure. `scripts/simulate-fleet.sh` runs it.

#![forbid(unsafe_code)]

mod fleet;
mod verify;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context as _};
use clap::Parser;
use sqlx::mysql::MySqlPool;
use vigia_testkit::{Child, NatsServer};

use fleet::{Fleet, Period};
use verify::Tally;

#[derive(Parser)]
#[command(
    name = "simulate-fleet",
    about = "A fleet of publishers joining and leaving against a private NATS, the sink and \
             the local MariaDB, then every host's data checked complete"
)]
pub struct Args {
    /// Fewest hosts; the default schedule climbs from --min to --max one
    /// host a step and comes back down.
    #[arg(long, default_value_t = 2)]
    min: u32,
    /// Most hosts.
    #[arg(long, default_value_t = 5)]
    max: u32,
    /// The hosts wanted at each step instead, e.g. 2,6,3,8,1.
    #[arg(long, value_delimiter = ',')]
    schedule: Vec<u32>,
    /// Seconds between steps.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..))]
    step: u64,
    /// The publishers' cpu/ram interval.
    #[arg(long, default_value = "500ms")]
    interval: Period,
    /// The publishers' procs interval.
    #[arg(long, default_value = "2s")]
    procs_interval: Period,
    /// Where vigia-publisher and vigia-sink are (default: beside this
    /// binary, built with cargo if missing).
    #[arg(long)]
    bin_dir: Option<PathBuf>,
    /// Database for the sink (default vigia_sim_<run id>, dropped at the
    /// end unless --keep).
    #[arg(long)]
    database: Option<String>,
    /// Keep the database and the logs.
    #[arg(long)]
    keep: bool,
}

impl Args {
    /// The hosts wanted at each step.
    fn steps(&self) -> Vec<u32> {
        if !self.schedule.is_empty() {
            return self.schedule.clone();
        }
        (self.min..=self.max)
            .chain((self.min..self.max).rev())
            .collect()
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let outcome = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the runtime")
        .and_then(|runtime| runtime.block_on(run(args)));
    match outcome {
        Ok(tally) => {
            println!(
                "simulate-fleet: {} passed, {} failed",
                tally.passed, tally.failed
            );
            if tally.failed == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(error) => {
            log(&format!("error: {error:#}"));
            ExitCode::FAILURE
        }
    }
}

/// A progress line on stderr, apart from the report on stdout.
pub fn log(line: &str) {
    eprintln!("simulate-fleet: {line}");
}

async fn run(args: Args) -> anyhow::Result<Tally> {
    ensure!(
        args.max >= 1 && args.max >= args.min,
        "need 0 <= --min <= --max, --max >= 1"
    );
    let (publisher, sink_bin) = binaries(args.bin_dir.as_deref())?;
    let run = run_id();
    let database = args
        .database
        .clone()
        .unwrap_or_else(|| format!("vigia_sim_{run}"));
    ensure!(
        !database.is_empty()
            && database
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_'),
        "--database: letters, digits and _ only"
    );
    let host = std::env::var("VIGIA_MYSQL_HOST").unwrap_or_else(|_| "127.0.0.1".into());
    let port = std::env::var("VIGIA_MYSQL_PORT").unwrap_or_else(|_| "3306".into());
    let server = format!("mysql://root@{host}:{port}");
    let admin = MySqlPool::connect(&server)
        .await
        .with_context(|| format!("cannot reach MariaDB as root at {host}:{port}"))?;
    let work = std::env::temp_dir().join(format!("vigia-sim-{run}"));
    std::fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;

    let outcome = simulate(
        &args, &run, &publisher, &sink_bin, &server, &database, &work,
    )
    .await;

    if args.keep {
        log(&format!(
            "kept: database {database}, logs in {}",
            work.display()
        ));
    } else {
        let dropped = sqlx::query(&format!("DROP DATABASE IF EXISTS `{database}`"))
            .execute(&admin)
            .await;
        if let Err(error) = dropped {
            log(&format!("could not drop database {database}: {error}"));
        }
        let _ = std::fs::remove_dir_all(&work);
    }
    admin.close().await;
    outcome
}

/// Everything between starting the servers and stopping them; the caller
/// removes the database and the logs whatever happens here.
async fn simulate(
    args: &Args,
    run: &str,
    publisher: &Path,
    sink_bin: &Path,
    server: &str,
    database: &str,
    work: &Path,
) -> anyhow::Result<Tally> {
    let nats = NatsServer::start();
    let db_url = format!("{server}/{database}");
    let sink_log = work.join("sink.log");
    let mut sink = Child::spawn_with_log(
        sink_bin,
        &[
            "--nats-url",
            &nats.url(),
            "--database-url",
            &db_url,
            "--batch-wait",
            "100ms",
        ],
        &[],
        Some(&sink_log),
    );
    let pool = wait_for_schema(&db_url, &mut sink, &sink_log).await?;
    let steps = args.steps();
    log(&format!(
        "run {run}: NATS {}, sink into {database}, schedule {steps:?} every {}s",
        nats.url(),
        args.step
    ));

    let mut fleet = Fleet::new(
        publisher,
        &nats.url(),
        run,
        &args.interval,
        &args.procs_interval,
        work,
    );
    let outcome = async {
        fleet.follow(&steps, Duration::from_secs(args.step)).await?;
        verify::judge_fleet(&pool, &mut fleet, &args.interval, &args.procs_interval).await
    }
    .await;
    drop(fleet);
    if sink.terminate(Duration::from_secs(10)).is_none() {
        log("the sink did not stop within 10 s of SIGTERM");
    }
    pool.close().await;
    outcome
}

/// The publisher and sink binaries: from `dir`, or beside this one, built
/// with cargo when missing there.
fn binaries(dir: Option<&Path>) -> anyhow::Result<(PathBuf, PathBuf)> {
    let dir = match dir {
        Some(dir) => dir.to_owned(),
        None => {
            let exe = std::env::current_exe().context("finding this binary's own path")?;
            let dir = exe.parent().context("this binary's directory")?.to_owned();
            if !dir.join("vigia-publisher").exists() || !dir.join("vigia-sink").exists() {
                log("building vigia-publisher and vigia-sink");
                let mut cargo = std::process::Command::new("cargo");
                cargo.args([
                    "build",
                    "--locked",
                    "-q",
                    "-p",
                    "vigia-publisher",
                    "-p",
                    "vigia-sink",
                ]);
                if dir.ends_with("release") {
                    cargo.arg("--release");
                }
                let status = cargo.status().context("running cargo build")?;
                ensure!(status.success(), "cargo build failed");
            }
            dir
        }
    };
    let (publisher, sink) = (dir.join("vigia-publisher"), dir.join("vigia-sink"));
    if !publisher.exists() || !sink.exists() {
        bail!("no vigia-publisher/vigia-sink in {}", dir.display());
    }
    Ok((publisher, sink))
}

/// Six hex digits that name this run's hosts and database.
fn run_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "{:06x}",
        (nanos ^ std::process::id().rotate_left(12)) & 0xff_ffff
    )
}

/// Connects once the sink has created and migrated the database (30 s).
async fn wait_for_schema(
    url: &str,
    sink: &mut Child,
    sink_log: &Path,
) -> anyhow::Result<MySqlPool> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(pool) = MySqlPool::connect(url).await {
            if sqlx::query("SELECT 1 FROM hosts LIMIT 1")
                .fetch_optional(&pool)
                .await
                .is_ok()
            {
                return Ok(pool);
            }
            pool.close().await;
        }
        if sink.wait_for_exit(Duration::ZERO).is_some() {
            bail!("the sink exited: {}", fleet::tail(sink_log));
        }
        if Instant::now() >= deadline {
            bail!("the sink made no schema in 30 s: {}", fleet::tail(sink_log));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(flags: &[&str]) -> Args {
        Args::try_parse_from(std::iter::once("simulate-fleet").chain(flags.iter().copied()))
            .expect("flags parse")
    }

    #[test]
    fn the_default_schedule_climbs_from_min_to_max_and_comes_back_down() {
        assert_eq!(
            args(&["--min", "1", "--max", "4"]).steps(),
            [1, 2, 3, 4, 3, 2, 1]
        );
        assert_eq!(args(&["--min", "3", "--max", "3"]).steps(), [3]);
    }

    #[test]
    fn a_schedule_replaces_the_climb() {
        assert_eq!(args(&["--schedule", "2,6,3,8,1"]).steps(), [2, 6, 3, 8, 1]);
    }

    #[test]
    fn a_zero_step_a_bad_count_or_a_bad_duration_is_refused() {
        let refused = |flags: &[&str]| {
            Args::try_parse_from(std::iter::once("simulate-fleet").chain(flags.iter().copied()))
                .is_err()
        };
        assert!(refused(&["--step", "0"]));
        assert!(refused(&["--schedule", "2,x"]));
        assert!(refused(&["--interval", "5x"]));
        assert!(refused(&["--interval", "0s"]));
        assert!(refused(&["--max", "-1"]));
    }
}
