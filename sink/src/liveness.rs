//! Marks hosts offline that stopped sending without a `bye` (killed,
//! crashed, or deleted by the autoscaler): three missed sampling intervals,
//! and never less than [`MIN_SILENCE`], so a short interval does not flap
//! on an ordinary batch delay.
//!
//! The sweep only runs while the sink is caught up with the stream and
//! MySQL is taking writes: during a backlog or an outage every host's
//! newest stored sample is old, and marking them all offline would be
//! wrong. `last_seen` is the publisher's clock (sample `ts`), compared
//! with MySQL's: hosts are expected to keep time (NTP), as GCP VMs do.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::consumer::PullConsumer;
use sqlx::MySqlPool;

use crate::metrics::Metrics;
use crate::retry::Retry;

pub const MISSED_INTERVALS: u32 = 3;
/// The shortest silence that counts as gone, whatever the interval.
pub const MIN_SILENCE: Duration = Duration::from_secs(2);
const EVERY: Duration = Duration::from_secs(1);

const OVERDUE: &str = "status = 'online' AND last_seen < UTC_TIMESTAMP(6) - \
     INTERVAL GREATEST(interval_ms * ?, ?) * 1000 MICROSECOND";

/// Marks overdue hosts offline; returns their names.
///
/// Candidates are read without locks, then each is updated in its own
/// short statement that checks again, so the sweep never holds many host
/// rows locked against ingest, nor locks them in another order.
pub async fn sweep(pool: &MySqlPool) -> Result<Vec<String>, sqlx::Error> {
    let min_ms = MIN_SILENCE.as_millis() as u64;
    let candidates: Vec<String> = sqlx::query_scalar(&format!(
        "SELECT host FROM hosts WHERE {OVERDUE} ORDER BY host"
    ))
    .bind(MISSED_INTERVALS)
    .bind(min_ms)
    .fetch_all(pool)
    .await?;
    let update = format!(
        "UPDATE hosts SET status = 'offline', \
         offline_since = last_seen + INTERVAL GREATEST(interval_ms * ?, ?) * 1000 MICROSECOND \
         WHERE host = ? AND {OVERDUE}"
    );
    let mut gone = Vec::new();
    for host in candidates {
        let updated = sqlx::query(&update)
            .bind(MISSED_INTERVALS)
            .bind(min_ms)
            .bind(&host)
            .bind(MISSED_INTERVALS)
            .bind(min_ms)
            .execute(pool)
            .await?
            .rows_affected();
        if updated > 0 {
            gone.push(host);
        }
    }
    Ok(gone)
}

/// Sweeps once a second while ingest is healthy and fewer than `backlog`
/// messages wait (pending in the stream or delivered and unacknowledged).
pub(crate) async fn run(
    pool: MySqlPool,
    mut consumer: PullConsumer,
    backlog: u64,
    metrics: Arc<Metrics>,
) {
    let mut ticker = tokio::time::interval(EVERY);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut sweeps = Retry::new("offline sweep", "trying again every second");
    loop {
        ticker.tick().await;
        if metrics.ingest_stalled.load(Ordering::Relaxed) {
            continue;
        }
        let caught_up = match consumer.info().await {
            Ok(info) => info.num_pending + info.num_ack_pending as u64 <= backlog,
            Err(_) => false,
        };
        if !caught_up {
            continue;
        }
        match sweep(&pool).await {
            Ok(hosts) => {
                sweeps.ok();
                if !hosts.is_empty() {
                    tracing::info!(
                        hosts = %vigia_schema::text::Escaped(&hosts.join(",")),
                        "hosts went offline (no sample for {MISSED_INTERVALS} intervals)"
                    );
                }
            }
            // The ticker paces the tries, not the backoff.
            Err(error) => {
                sweeps.failed(&error, 0);
            }
        }
    }
}
