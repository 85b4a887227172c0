//! Marks hosts offline that stopped sending without a `bye` (killed,
//! crashed, or deleted by the autoscaler): three missed sampling intervals.
//!
//! The sweep only runs while the sink is caught up with the stream: during
//! a backlog every host's newest stored sample is old, and marking them all
//! offline would be wrong.

use std::time::Duration;

use async_nats::jetstream::consumer::PullConsumer;
use sqlx::MySqlPool;

pub const MISSED_INTERVALS: u32 = 3;
const EVERY: Duration = Duration::from_secs(1);

/// Marks overdue hosts offline; returns their names.
pub async fn sweep(pool: &MySqlPool) -> Result<Vec<String>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let overdue: Vec<String> = sqlx::query_scalar(
        "SELECT host FROM hosts WHERE status = 'online' \
         AND last_seen < UTC_TIMESTAMP(6) - INTERVAL (interval_ms * ? * 1000) MICROSECOND \
         ORDER BY host FOR UPDATE",
    )
    .bind(MISSED_INTERVALS)
    .fetch_all(&mut *tx)
    .await?;
    if !overdue.is_empty() {
        sqlx::query(
            "UPDATE hosts SET status = 'offline', \
             offline_since = last_seen + INTERVAL (interval_ms * ? * 1000) MICROSECOND \
             WHERE status = 'online' \
             AND last_seen < UTC_TIMESTAMP(6) - INTERVAL (interval_ms * ? * 1000) MICROSECOND",
        )
        .bind(MISSED_INTERVALS)
        .bind(MISSED_INTERVALS)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(overdue)
}

/// Sweeps once a second while the consumer has less than `backlog` pending.
pub async fn run(pool: MySqlPool, mut consumer: PullConsumer, backlog: u64) {
    let mut ticker = tokio::time::interval(EVERY);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let caught_up = match consumer.info().await {
            Ok(info) => info.num_pending < backlog,
            Err(_) => false,
        };
        if !caught_up {
            continue;
        }
        match sweep(&pool).await {
            Ok(hosts) if !hosts.is_empty() => {
                tracing::info!(hosts = %hosts.join(","), "hosts went offline (no sample for {MISSED_INTERVALS} intervals)");
            }
            Ok(_) => {}
            Err(error) => tracing::debug!(%error, "offline sweep failed; trying again"),
        }
    }
}
