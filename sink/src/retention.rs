//! Expires what is past its retention: whole days of the partitioned
//! tables (crate::partitions), and row by row, in small chunks with pauses
//! between them, the few small tables that are not partitioned.
//!
//! Retention is in tiers ([`Tier`], sink flags --retention,
//! --minute-retention, --ten-minute-retention): the raw samples go first,
//! the per-minute rollup later, the ten-minute rollups last, so long
//! dashboard ranges keep a tier to read after the raw rows are gone.
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
use crate::partitions;

const CHUNK: u32 = 2_000;
const PAUSE: Duration = Duration::from_millis(20);
const EVERY: Duration = Duration::from_secs(60);

/// How much younger than the raw retention a sample must be for the sink
/// to take it ([`accepted`]): a sample taken just inside the retention but
/// written late (retries, a slow batch) must still find its day, or its
/// minute's rollup, kept longer, would be recomputed from that one sample
/// alone after the rest of the minute was dropped.
pub const GRACE: Duration = Duration::from_secs(3600);

/// The age up to which the sink takes samples under a raw retention of
/// `raw`: `raw` less [`GRACE`] (less half of it when it is shorter than
/// two graces).
pub fn accepted(raw: Duration) -> Duration {
    raw - GRACE.min(raw / 2)
}

/// `now` less `keep`, or the earliest time there is when `keep` reaches
/// past it (a retention of a million years keeps everything, it does not
/// overflow).
pub fn cutoff(now: NaiveDateTime, keep: Duration) -> NaiveDateTime {
    chrono::Duration::from_std(keep)
        .ok()
        .and_then(|d| now.checked_sub_signed(d))
        .unwrap_or(NaiveDateTime::MIN)
}

/// What a table holds, for how long it is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    /// Samples as they came, and the pipeline's health rows.
    Raw,
    /// host_minutes, the hosts' lifecycle events (small: two rows a boot),
    /// and `hosts` itself.
    Minutes,
    /// host_ten_minutes and process_ten_minutes.
    TenMinutes,
}

/// How long each tier is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub raw: Duration,
    pub minutes: Duration,
    pub ten_minutes: Duration,
}

impl Retention {
    /// Every tier kept for `period`.
    pub fn uniform(period: Duration) -> Self {
        Retention {
            raw: period,
            minutes: period,
            ten_minutes: period,
        }
    }

    pub fn of(&self, tier: Tier) -> Duration {
        match tier {
            Tier::Raw => self.raw,
            Tier::Minutes => self.minutes,
            Tier::TenMinutes => self.ten_minutes,
        }
    }
}

/// What a pass removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Expired {
    /// Whole days dropped from the partitioned tables.
    pub days: usize,
    /// Rows deleted from the tables that are not partitioned.
    pub rows: u64,
}

/// Why a pass failed.
#[derive(Debug, thiserror::Error)]
pub enum RetentionError {
    #[error(transparent)]
    Partitions(#[from] partitions::PartitionError),
    #[error(transparent)]
    Rows(#[from] sqlx::Error),
}

/// One pass over every table but `commands`: keeps the partitions (days
/// ahead created, expired days dropped) and deletes the expired rows of the
/// small tables.
pub async fn expire(pool: &MySqlPool, retention: &Retention) -> Result<Expired, RetentionError> {
    // The database's clock, not the sink's: days are dropped by it.
    let now: NaiveDateTime = sqlx::query_scalar("SELECT UTC_TIMESTAMP(6)")
        .fetch_one(pool)
        .await?;
    // The partitions' failure does not stop the small tables' retention.
    let partitioned = partitions::manage(pool, retention, now).await;
    let boots_before = cutoff(now, retention.raw);
    let mut deleted = 0;
    // Boots (0006_host_boots.sql) no longer live before the horizon, by
    // live_until, which is indexed (0009_host_boots_written_less.sql). It is
    // never earlier than last_seen but for a boot that said bye, where it is
    // the bye's time and a sample stamped after the bye may be later: such
    // a boot, already over, goes up to that gap sooner.
    let sql = format!("DELETE FROM host_boots WHERE live_until < ? LIMIT {CHUNK}");
    deleted += in_chunks(pool, &sql, boots_before).await?;
    // A host unheard of for as long as its minutes are kept is gone, and
    // so is its last process list: until then the dashboards list it, and
    // its Host dashboard draws its history from the minutes.
    let hosts_before = cutoff(now, retention.minutes);
    let hosts: Vec<String> =
        sqlx::query_scalar("SELECT host FROM hosts WHERE last_seen < ? ORDER BY host")
            .bind(hosts_before)
            .fetch_all(pool)
            .await?;
    for host in &hosts {
        let gone = sqlx::query("DELETE FROM hosts WHERE host = ? AND last_seen < ?")
            .bind(host)
            .bind(hosts_before)
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
    let report = partitioned?;
    Ok(Expired {
        days: report.dropped,
        rows: deleted,
    })
}

async fn in_chunks(pool: &MySqlPool, sql: &str, cutoff: NaiveDateTime) -> Result<u64, sqlx::Error> {
    let mut total = 0;
    loop {
        let n = sqlx::query(sql)
            .bind(cutoff)
            .execute(pool)
            .await?
            .rows_affected();
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
    let before = cutoff(Utc::now().naive_utc(), retention);
    let sql = format!("DELETE FROM commands WHERE ts < ? LIMIT {CHUNK}");
    in_chunks(pool, &sql, before).await
}

/// Expires once a minute, forever; `commands` only when
/// `commands_retention` is set.
pub(crate) async fn run(
    pool: MySqlPool,
    retention: Retention,
    commands_retention: Option<Duration>,
    metrics: std::sync::Arc<Metrics>,
) {
    // The first pass at once: a sink started after a day boundary creates
    // the day's partitions before its first batch needs them.
    let mut ticker = tokio::time::interval(EVERY);
    loop {
        ticker.tick().await;
        let mut pass = expire(&pool, &retention).await;
        if let (Ok(expired), Some(keep)) = (&mut pass, commands_retention) {
            match expire_commands(&pool, keep).await {
                Ok(n) => expired.rows += n,
                Err(error) => pass = Err(error.into()),
            }
        }
        match pass {
            Ok(expired) => {
                Metrics::add(&metrics.expired_rows, expired.rows);
                Metrics::add(&metrics.expired_days, expired.days as u64);
            }
            // Not at debug: a pass that keeps failing (a user without the
            // ALTER or DROP privilege, say) lets the disk fill.
            Err(error) => {
                tracing::warn!(%error, "retention pass failed; trying again next minute")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_taken_a_grace_short_of_the_retention() {
        let week = Duration::from_secs(7 * 86_400);
        assert_eq!(accepted(week), week - GRACE);
        assert_eq!(accepted(Duration::from_secs(60)), Duration::from_secs(30));
    }
}
