//! What the ingest, latency and capacity benchmarks run against: a private
//! nats-server, a database of its own on the machine's MariaDB, and the
//! release vigia-sink on both, its log in a file; for the capacity curve,
//! optionally several sinks sharing the durable consumer, as a fleet that
//! scales its sinks out runs them.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sqlx::mysql::MySqlPool;
use vigia_schema::subject::STREAM;
use vigia_testkit::{Child, NatsServer, TempDir, TestDatabase};

use crate::sibling;

/// Fields drop in this order: the sink stops before its servers go.
pub struct SinkRig {
    pub sink: Child,
    /// Sinks beyond the first (`start_sinks`), same flags, same consumer.
    pub more_sinks: Vec<Child>,
    pub pool: MySqlPool,
    pub sink_bin: PathBuf,
    /// `--sink-args` as the configuration line prints it.
    pub sink_args: String,
    pub db: TestDatabase,
    pub nats: NatsServer,
    _logs: TempDir,
}

impl SinkRig {
    /// Starts the sink with `sink_args` (extra flags) and waits until it
    /// has created and migrated the database. With `log`, the sink logs
    /// there at trace level; otherwise warnings go to a temporary file.
    pub async fn start(tag: &str, sink_args: &str, log: Option<&Path>) -> anyhow::Result<Self> {
        Self::start_on(TestDatabase::new(tag), tag, sink_args, log).await
    }

    /// [`SinkRig::start`] with the sink's database `db` (which may be on a
    /// server other than the machine's).
    pub async fn start_on(
        db: TestDatabase,
        tag: &str,
        sink_args: &str,
        log: Option<&Path>,
    ) -> anyhow::Result<Self> {
        Self::start_sinks(db, tag, sink_args, log, 1).await
    }

    /// [`SinkRig::start_on`] with `sinks` sinks (at least one) sharing the
    /// consumer; each logs to its own file (`sink.log`, `sink-2.log`, ...
    /// beside `log`).
    pub async fn start_sinks(
        db: TestDatabase,
        tag: &str,
        sink_args: &str,
        log: Option<&Path>,
        sinks: usize,
    ) -> anyhow::Result<Self> {
        anyhow::ensure!(sinks >= 1, "at least one sink");
        let sink_bin = sibling("vigia-sink")?;
        let nats = NatsServer::start();
        let logs = TempDir::new(&format!("vigia-{tag}"));
        let (log, level) = match log {
            Some(path) => (path.to_owned(), "warn,vigia_sink=trace"),
            None => (logs.path().join("sink.log"), "warn"),
        };
        let (nats_url, db_url) = (nats.url(), db.url());
        let mut argv = vec!["--nats-url", &nats_url, "--database-url", &db_url];
        argv.extend(sink_args.split_whitespace());
        let sink = Child::spawn_with_log(&sink_bin, &argv, &[("RUST_LOG", level)], Some(&log));
        let pool = wait_for_schema(&db_url).await?;
        // The others start once the first has migrated the database, as a
        // scaled-out deployment adds sinks to a running one.
        let more_sinks = (2..=sinks)
            .map(|n| {
                let log = log.with_file_name(format!("sink-{n}.log"));
                Child::spawn_with_log(&sink_bin, &argv, &[("RUST_LOG", level)], Some(&log))
            })
            .collect();
        wait_for_stream(&nats_url).await?;
        Ok(Self {
            sink,
            more_sinks,
            pool,
            sink_bin,
            sink_args: if sink_args.is_empty() {
                String::new()
            } else {
                format!(" plus {sink_args}")
            },
            db,
            nats,
            _logs: logs,
        })
    }

    /// Every sink's pid, the first one first.
    pub fn sink_pids(&self) -> Vec<i32> {
        std::iter::once(&self.sink)
            .chain(&self.more_sinks)
            .map(|s| s.pid() as i32)
            .collect()
    }

    /// Stops the sinks, then closes the pool.
    pub async fn stop(self) {
        drop(self.sink);
        drop(self.more_sinks);
        self.pool.close().await;
    }
}

/// Returns once the sink has created its stream, which it does
/// after migrating the database: publishing earlier finds no stream.
async fn wait_for_stream(nats_url: &str) -> anyhow::Result<()> {
    let js = async_nats::jetstream::new(async_nats::connect(nats_url).await?);
    let deadline = Instant::now() + Duration::from_secs(60);
    while js.get_stream(STREAM).await.is_err() {
        anyhow::ensure!(
            Instant::now() < deadline,
            "the sink did not create stream {STREAM} on {nats_url} within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// Connects once the sink has created the database and migrated it.
async fn wait_for_schema(url: &str) -> anyhow::Result<MySqlPool> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(pool) = MySqlPool::connect(url).await {
            let tables: Result<i64, _> = sqlx::query_scalar(
                "SELECT COUNT(*) FROM information_schema.tables \
                 WHERE table_schema = DATABASE() AND table_name = 'procs_snapshots'",
            )
            .fetch_one(&pool)
            .await;
            if matches!(tables, Ok(1)) {
                return Ok(pool);
            }
            pool.close().await;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the sink did not create {url} within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
