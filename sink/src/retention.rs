//! Deletes what is older than the retention period, in small chunks with
//! pauses between them, so that retention never holds locks long enough to
//! stall ingest.
//!
//! The `commands` table, the audit trail of process control, has a period
//! of its own (`--commands-retention`, unset by default: kept forever). It
//! is apart on purpose: who signalled which process, and what became of
//! it, is asked after an incident, when the telemetry around it may be
//! long expired; and it is small (a row per command, not per second).

use std::time::Duration;

use chrono::{NaiveDateTime, Utc};
use sqlx::MySqlPool;

use crate::metrics::Metrics;

const CHUNK: u32 = 2_000;
const PAUSE: Duration = Duration::from_millis(20);
const EVERY: Duration = Duration::from_secs(60);

/// Tables keyed by (host, ..., time) and their time column: deleted host
/// by host through their (host, time) index. The rollups
/// (0003_host_minutes.sql, 0005_long_range_rollups.sql) go with their
/// samples.
const HOST_TABLES: [(&str, &str); 8] = [
    ("cpu_samples", "ts"),
    ("ram_samples", "ts"),
    ("procs_snapshots", "ts"),
    ("process_samples", "ts"),
    ("host_minutes", "minute"),
    ("host_ten_minutes", "period"),
    ("process_ten_minutes", "period"),
    ("publisher_health", "ts"),
];

/// One pass over every table but `commands`; returns the rows deleted.
pub async fn expire(pool: &MySqlPool, retention: Duration) -> Result<u64, sqlx::Error> {
    let cutoff: NaiveDateTime = (Utc::now() - retention).naive_utc();
    let hosts: Vec<String> = sqlx::query_scalar("SELECT host FROM hosts ORDER BY host")
        .fetch_all(pool)
        .await?;
    let mut deleted = 0;
    for (table, column) in HOST_TABLES {
        let sql = format!("DELETE FROM {table} WHERE host = ? AND {column} < ? LIMIT {CHUNK}");
        for host in &hosts {
            deleted += in_chunks(pool, &sql, Some(host), cutoff).await?;
        }
    }
    // Tables keyed by time alone: lifecycle events and the sinks' own
    // health rows (0007_pipeline_health.sql).
    for table in ["host_events", "sink_health"] {
        let sql = format!("DELETE FROM {table} WHERE ts < ? LIMIT {CHUNK}");
        deleted += in_chunks(pool, &sql, None, cutoff).await?;
    }
    // Boots (0006_host_boots.sql) no longer live before the horizon, by
    // live_until, which is indexed (0009_host_boots_written_less.sql). It is
    // never earlier than last_seen but for a boot that said bye, where it is
    // the bye's time and a sample stamped after the bye may be later: such
    // a boot, already over, goes up to that gap sooner.
    let sql = format!("DELETE FROM host_boots WHERE live_until < ? LIMIT {CHUNK}");
    deleted += in_chunks(pool, &sql, None, cutoff).await?;
    // A host unheard of for the whole retention period is gone, and so is
    // its last process list.
    for host in &hosts {
        let gone = sqlx::query("DELETE FROM hosts WHERE host = ? AND last_seen < ?")
            .bind(host)
            .bind(cutoff)
            .execute(pool)
            .await?
            .rows_affected();
        if gone > 0 {
            sqlx::query("DELETE FROM process_lists WHERE host = ?")
                .bind(host)
                .execute(pool)
                .await?;
            deleted += gone;
        }
    }
    Ok(deleted)
}

async fn in_chunks(
    pool: &MySqlPool,
    sql: &str,
    host: Option<&str>,
    cutoff: NaiveDateTime,
) -> Result<u64, sqlx::Error> {
    let mut total = 0;
    loop {
        let mut query = sqlx::query(sql);
        if let Some(host) = host {
            query = query.bind(host);
        }
        let n = query.bind(cutoff).execute(pool).await?.rows_affected();
        total += n;
        if n < u64::from(CHUNK) {
            return Ok(total);
        }
        tokio::time::sleep(PAUSE).await;
    }
}

/// One pass over the `commands` audit trail: deletes the commands handled
/// more than `retention` ago; returns the rows deleted.
pub async fn expire_commands(pool: &MySqlPool, retention: Duration) -> Result<u64, sqlx::Error> {
    let cutoff: NaiveDateTime = (Utc::now() - retention).naive_utc();
    let sql = format!("DELETE FROM commands WHERE ts < ? LIMIT {CHUNK}");
    in_chunks(pool, &sql, None, cutoff).await
}

/// Expires once a minute, forever; `commands` only when
/// `commands_retention` is set.
pub(crate) async fn run(
    pool: MySqlPool,
    retention: Duration,
    commands_retention: Option<Duration>,
    metrics: std::sync::Arc<Metrics>,
) {
    let mut ticker = tokio::time::interval(EVERY);
    loop {
        ticker.tick().await;
        let mut pass = expire(&pool, retention).await;
        if let (Ok(deleted), Some(keep)) = (&pass, commands_retention) {
            pass = expire_commands(&pool, keep).await.map(|n| n + deleted);
        }
        match pass {
            Ok(n) => Metrics::add(&metrics.expired_rows, n),
            Err(error) => {
                tracing::debug!(%error, "retention pass failed; trying again next minute")
            }
        }
    }
}
