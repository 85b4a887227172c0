//! vigia's sink: telemetry from a JetStream stream into MySQL.
//!
//! ```text
//! JetStream consumer "sink"  (durable, pull, explicit acks)
//!   → ingest    batches of up to N messages, M MiB or W milliseconds
//!   → classify  decode + check; rejects → deadletter.<subject>   ┐ while the
//!               process lists encoded as JSON                    ┘ previous batch
//!   → store     one transaction per batch, idempotent inserts      is written
//!   → ack       only after commit
//! beside it: liveness (offline hosts), retention (old rows), stats logs,
//!            health (its own state into sink_health), exporter (/metrics)
//! ```

#![forbid(unsafe_code)]

// What other crates use (bench, grafana, auth's tests, the fuzz targets)
// and the sink's own integration tests; everything else is the crate's.
pub mod classify;
pub mod config;
pub mod discards;
pub mod health;
pub mod held;
pub mod jetstream;
pub mod liveness;
pub mod metrics;
pub mod partitions;
pub mod retention;
pub mod store;

mod deadletter;
mod exporter;
mod ingest;
mod retry;
mod shutdown;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;

use crate::config::Config;
use crate::metrics::Metrics;

/// Connects to MySQL and NATS, prepares both, and ingests until
/// `shutdown` resolves. Fails fast, with the place named, when either
/// cannot be reached at start; once running it waits out their outages.
pub async fn run(
    config: Config,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let retention = config.retention().map_err(anyhow::Error::msg)?;
    let pool = store::connect(&config.database_url, 4).await?;
    let client = connect_nats(&config).await?;
    let jetstream = async_nats::jetstream::new(client.clone());
    let consumer = jetstream::prepare_when_ready(&jetstream, &config).await?;
    let exporter = match config.metrics_addr {
        Some(addr) => {
            let probe = exporter::SinkProbe {
                client: client.clone(),
                metrics: metrics.clone(),
            };
            let (bound, server) =
                exporter::bind(addr, exporter::registry(metrics.clone()), probe).await?;
            tracing::info!(%bound, "serving /metrics and /healthz");
            Some(tokio::spawn(server))
        }
        None => None,
    };
    tracing::info!(
        stream = %config.stream,
        consumer = %config.consumer,
        database = %vigia_schema::url::redact(&config.database_url),
        "sink started"
    );

    let health = match config.health_interval {
        every if every.is_zero() => None,
        every => {
            let mut reporter = health::Reporter {
                pool: pool.clone(),
                consumer: consumer.clone(),
                stream: jetstream
                    .get_stream(&config.stream)
                    .await
                    .with_context(|| format!("opening stream {}", config.stream))?,
                metrics: metrics.clone(),
                instance: config
                    .instance
                    .as_deref()
                    .map_or_else(health::default_instance, health::instance_name),
                started: chrono::Utc::now(),
                every,
                discards: discards::Discards::default(),
            };
            // Before ingest's first pull: a gap an outage left is seen
            // whole (crate::discards).
            reporter.read().await;
            Some(tokio::spawn(reporter.run()))
        }
    };
    let background = [
        tokio::spawn(liveness::run(
            pool.clone(),
            consumer.clone(),
            u64::from(config.batch_size),
            metrics.clone(),
        )),
        tokio::spawn(retention::run(
            pool.clone(),
            retention,
            config.commands_retention,
            metrics.clone(),
        )),
        tokio::spawn(log_stats(metrics.clone())),
    ];
    let ingest = ingest::Ingest {
        consumer,
        jetstream,
        writer: store::Writer::new(pool.clone(), config.history_top as usize)
            .with_rollup_refresh(config.rollup_refresh),
        metrics: metrics.clone(),
        stream: config.stream.clone(),
        batch_size: config.batch_size as usize,
        batch_wait: config.batch_wait,
        batch_max_bytes: config.batch_max_mib as usize * (1 << 20),
        dead_letter_log: retry::LogLimit::every(Duration::from_secs(60)),
        retention: config.retention,
    };
    let result = ingest.run(shutdown).await;
    for task in background.into_iter().chain(health).chain(exporter) {
        task.abort();
    }
    let _ = client.flush().await;
    pool.close().await;
    let totals = metrics.snapshot();
    tracing::info!(
        stored = totals.stored,
        dead_lettered = totals.dead_lettered,
        "sink stopped"
    );
    result
}

async fn connect_nats(config: &Config) -> anyhow::Result<async_nats::Client> {
    let mut options = async_nats::ConnectOptions::new()
        .name("vigia-sink")
        .connection_timeout(Duration::from_secs(5))
        .event_callback(|event| async move {
            match event {
                async_nats::Event::Connected => tracing::info!("connected to NATS"),
                async_nats::Event::Disconnected => {
                    tracing::warn!("disconnected from NATS; reconnecting")
                }
                // Each failed reconnect attempt reports a client error; the
                // disconnect was already logged once.
                async_nats::Event::ClientError(error) => tracing::debug!("NATS: {error}"),
                other => tracing::warn!("NATS: {other}"),
            }
        });
    if let Some(token) = &config.nats_token {
        options = options.token(token.clone());
    }
    let servers = vigia_schema::servers::server_urls(&config.nats_url).context("--nats-url")?;
    if let Some(path) = &config.nats_nkey {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("--nats-nkey {}", path.display()))?;
        let seed = vigia_schema::identity::parse_seed(&text)
            .with_context(|| format!("--nats-nkey {}", path.display()))?;
        options = options.nkey(seed);
    }
    if let Some(ca) = &config.nats_ca {
        options = options.add_root_certificates(ca.clone()).require_tls(true);
    }
    options
        // Under vigia-auth the sink may read only the sinks' inbox (its
        // pulled messages arrive there).
        .custom_inbox_prefix(vigia_schema::identity::inbox_prefix(
            vigia_schema::Role::Sink,
            &vigia_schema::HostToken::parse("sink").expect("a valid token"),
        ))
        .connect(servers)
        .await
        .with_context(|| format!("cannot reach NATS at {}", config.nats_url))
}

async fn log_stats(metrics: Arc<Metrics>) {
    let mut ticker = tokio::time::interval(Duration::from_secs(60));
    ticker.tick().await;
    let mut before = metrics.snapshot();
    loop {
        ticker.tick().await;
        let now = metrics.snapshot();
        if now != before {
            tracing::info!(
                stored = now.stored - before.stored,
                dead_lettered = now.dead_lettered - before.dead_lettered,
                batches = now.batches - before.batches,
                write_retries = now.write_retries - before.write_retries,
                expired_rows = now.expired_rows - before.expired_rows,
                expired_days = now.expired_days - before.expired_days,
                stream_discarded = now.stream_discarded - before.stream_discarded,
                "last minute"
            );
        }
        before = now;
    }
}
