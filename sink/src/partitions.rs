//! Daily partitions: created ahead of time, dropped whole by retention.
//!
//! Every table that grows with time is partitioned by RANGE COLUMNS on its
//! time column, one partition per UTC day, plus `future` for anything past
//! the newest day (mysql/migrations/0010_daily_partitions.sql). Retention
//! used to delete rows one by one, as many a day as ingest wrote, which
//! doubled the database's work at steady state; dropping a day is removing
//! a file, whatever it holds.
//!
//! A pass, once a minute from [`crate::retention`]:
//!
//! 1. reads each table's partitions from `information_schema`;
//! 2. splits the days from the newest one up to [`AHEAD_DAYS`] past today
//!    out of `future` (`REORGANIZE PARTITION future INTO (...)`), so a
//!    day's partition exists before its first row (and a row past them
//!    still has `future` to land in: no insert ever fails for want of a
//!    partition);
//! 3. drops the days wholly older than the table's retention.
//!
//! **Restart-safe by construction**: each step is one DDL statement, which
//! the server applies whole or not at all, and a pass plans from what the
//! server reports, never from what an earlier pass meant to do. A sink
//! killed mid-pass leaves a layout the next pass (of any sink) finishes.
//! Several sinks: a pass runs under a named lock, taken without waiting;
//! a sink that finds it taken skips its pass.
//!
//! **Never stalls ingest for long**: DDL waits for the transactions using
//! the table, and while it waits new ones queue behind it; the manager's
//! session gives up on that wait after [`LOCK_WAIT`] and tries again at
//! the next pass.
//!
//! A day stays until the whole day is past its table's retention, so rows
//! are kept at least the retention and less than a day longer.

use std::time::Duration;

use chrono::{Days, NaiveDate, NaiveDateTime};
use sqlx::mysql::{MySqlConnection, MySqlPool};
use sqlx::Connection as _;

use crate::retention::{cutoff, Retention, Tier};

/// Days created past today: time to spare for a sink that is down over a
/// day boundary (`future` takes the rows meanwhile) or for clocks ahead.
pub const AHEAD_DAYS: u64 = 2;
/// How long a pass waits for a table's metadata lock before it gives up.
pub const LOCK_WAIT: Duration = Duration::from_secs(10);

/// The partitioned tables, their time column and the tier that says how
/// long they are kept.
pub const TABLES: [(&str, &str, Tier); 10] = [
    ("cpu_samples", "ts", Tier::Raw),
    ("ram_samples", "ts", Tier::Raw),
    ("procs_snapshots", "ts", Tier::Raw),
    ("process_samples", "ts", Tier::Raw),
    ("publisher_health", "ts", Tier::Raw),
    ("host_events", "ts", Tier::Minutes),
    ("sink_health", "ts", Tier::Raw),
    ("host_minutes", "minute", Tier::Minutes),
    ("host_ten_minutes", "period", Tier::TenMinutes),
    ("process_ten_minutes", "period", Tier::TenMinutes),
];

/// The catch-all last partition.
const FUTURE: &str = "future";

/// One partition as the server reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    pub name: String,
    /// Its bound (rows are before midnight of this day); `None` for
    /// MAXVALUE.
    pub below: Option<NaiveDate>,
}

/// What one pass does to one table.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Days to split out of `future`, oldest first.
    pub add: Vec<NaiveDate>,
    /// Partitions to drop.
    pub drop: Vec<String>,
}

/// What a pass did, over every table.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Report {
    pub added: usize,
    pub dropped: usize,
    /// Whether another sink held the lock, so this pass did nothing.
    pub skipped: bool,
}

/// Why a pass failed.
#[derive(Debug, thiserror::Error)]
pub enum PartitionError {
    #[error("{table}: {source}")]
    Statement {
        table: &'static str,
        source: sqlx::Error,
    },
    #[error("{table}: partition {name} has a bound this sink cannot read: {bound}")]
    Bound {
        table: &'static str,
        name: String,
        bound: String,
    },
    #[error(
        "{table}: not partitioned by day (no `{FUTURE}` partition last); migration 0010 missing?"
    )]
    Layout { table: &'static str },
}

/// The day partition named for `day`: `dYYYYMMDD`.
pub fn name_of(day: NaiveDate) -> String {
    format!("d{}", day.format("%Y%m%d"))
}

/// The partition of `day` as `PARTITION BY` and `REORGANIZE` write it.
pub fn definition_of(day: NaiveDate) -> String {
    format!(
        "PARTITION {} VALUES LESS THAN ('{}')",
        name_of(day),
        day + Days::new(1)
    )
}

/// Plans one table: add every day after its newest (from `today` when it
/// has none) up to `today + AHEAD_DAYS`; drop every day whose bound is at
/// or before `cutoff` (all its rows are older). `future` is never dropped.
///
/// After a stop longer than the retention, the days already past the
/// cutoff are not created only to be dropped: the first day created takes
/// whatever `future` held before it (RANGE partitions hold everything
/// below their bound), and goes when it expires itself.
pub fn plan(parts: &[Partition], today: NaiveDate, cutoff: NaiveDateTime) -> Plan {
    let newest = parts.iter().filter_map(|p| p.below).max();
    let last = today + Days::new(AHEAD_DAYS);
    // The next day to create: the one that starts at the newest bound.
    let mut day = newest.map_or(today, |b| b.max(cutoff.date()));
    let mut add = Vec::new();
    while day <= last {
        add.push(day);
        day = day + Days::new(1);
    }
    let drop = parts
        .iter()
        .filter(|p| {
            p.below
                .is_some_and(|b| b.and_hms_opt(0, 0, 0) <= Some(cutoff))
        })
        .map(|p| p.name.clone())
        .collect();
    Plan { add, drop }
}

/// One pass over every table; returns what it did. `now` is the server's
/// UTC time as the caller read it (retention reads `UTC_TIMESTAMP()`: a
/// sink whose clock runs ahead must not drop the database's days early).
pub async fn manage(
    pool: &MySqlPool,
    retention: &Retention,
    now: NaiveDateTime,
) -> Result<Report, PartitionError> {
    // Detached from the pool: the lock is this session's, and a pass cut
    // short (the task aborted at shutdown) must end the session, releasing
    // the lock, not hand it back to the pool still holding it.
    let mut conn = pool.acquire().await.map_err(at("lock"))?.detach();
    let locked: Option<i64> =
        sqlx::query_scalar("SELECT GET_LOCK(CONCAT('vigia-partitions:', SHA1(DATABASE())), 0)")
            .fetch_one(&mut conn)
            .await
            .map_err(at("lock"))?;
    if locked != Some(1) {
        return Ok(Report {
            skipped: true,
            ..Report::default()
        });
    }
    let result = pass(&mut conn, retention, now).await;
    // Released even when the pass failed; closing the session would too.
    let _ = sqlx::query("SELECT RELEASE_LOCK(CONCAT('vigia-partitions:', SHA1(DATABASE())))")
        .execute(&mut conn)
        .await;
    let _ = conn.close().await;
    result
}

async fn pass(
    conn: &mut MySqlConnection,
    retention: &Retention,
    now: NaiveDateTime,
) -> Result<Report, PartitionError> {
    sqlx::query(&format!(
        "SET SESSION lock_wait_timeout = {}",
        LOCK_WAIT.as_secs()
    ))
    .execute(&mut *conn)
    .await
    .map_err(at("lock_wait_timeout"))?;
    // Every table's days ahead first, then the drops, each table on its
    // own: a table that fails (a user without DROP on it, a lock wait given
    // up) stops neither the others nor the creation of days, which keeps
    // rows out of `future`. The first error is returned once all are done.
    let mut report = Report::default();
    let mut first_error = None;
    let mut plans = Vec::with_capacity(TABLES.len());
    for (table, _, tier) in TABLES {
        let expired_before = cutoff(now, retention.of(tier));
        match layout(conn, table).await {
            Ok(parts) => plans.push((table, plan(&parts, now.date(), expired_before))),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    for (table, plan) in &plans {
        if plan.add.is_empty() {
            continue;
        }
        let days: Vec<String> = plan.add.iter().map(|d| definition_of(*d)).collect();
        let sql = format!(
            "ALTER TABLE {table} REORGANIZE PARTITION {FUTURE} INTO ({}, \
             PARTITION {FUTURE} VALUES LESS THAN (MAXVALUE))",
            days.join(", ")
        );
        match alter(conn, table, &sql).await {
            Ok(()) => {
                report.added += plan.add.len();
                tracing::debug!(table, days = plan.add.len(), "partitions created");
            }
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    for (table, plan) in &plans {
        if plan.drop.is_empty() {
            continue;
        }
        let names: Vec<String> = plan
            .drop
            .iter()
            .map(|n| format!("`{}`", n.replace('`', "``")))
            .collect();
        let sql = format!("ALTER TABLE {table} DROP PARTITION {}", names.join(", "));
        match alter(conn, table, &sql).await {
            Ok(()) => {
                report.dropped += plan.drop.len();
                tracing::info!(table, days = ?plan.drop, "expired days dropped");
            }
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(report),
    }
}

/// One ALTER of `table`.
async fn alter(
    conn: &mut MySqlConnection,
    table: &'static str,
    sql: &str,
) -> Result<(), PartitionError> {
    sqlx::query(sql)
        .execute(conn)
        .await
        .map(drop)
        .map_err(at(table))
}

/// A table's partitions in order, as the server reports them.
pub async fn layout(
    conn: &mut MySqlConnection,
    table: &'static str,
) -> Result<Vec<Partition>, PartitionError> {
    let rows: Vec<(Option<String>, Option<String>)> = sqlx::query_as(
        "SELECT PARTITION_NAME, PARTITION_DESCRIPTION FROM information_schema.PARTITIONS \
         WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? ORDER BY PARTITION_ORDINAL_POSITION",
    )
    .bind(table)
    .fetch_all(&mut *conn)
    .await
    .map_err(at(table))?;
    let mut parts = Vec::with_capacity(rows.len());
    for (name, bound) in rows {
        let (Some(name), Some(bound)) = (name, bound) else {
            return Err(PartitionError::Layout { table });
        };
        let below = parse_bound(&bound).ok_or_else(|| PartitionError::Bound {
            table,
            name: name.clone(),
            bound: bound.clone(),
        })?;
        parts.push(Partition { name, below });
    }
    match parts.last() {
        Some(last) if last.below.is_none() && last.name == FUTURE => Ok(parts),
        _ => Err(PartitionError::Layout { table }),
    }
}

/// A RANGE COLUMNS bound as `information_schema` shows it: `MAXVALUE`,
/// `'2026-12-08'` (MariaDB) or `'2026-12-08 00:00:00'` (MySQL 8).
fn parse_bound(text: &str) -> Option<Option<NaiveDate>> {
    if text == "MAXVALUE" {
        return Some(None);
    }
    let inner = text.strip_prefix('\'')?.strip_suffix('\'')?;
    if let Ok(day) = NaiveDate::parse_from_str(inner, "%Y-%m-%d") {
        return Some(Some(day));
    }
    let at = NaiveDateTime::parse_from_str(inner, "%Y-%m-%d %H:%M:%S%.f").ok()?;
    (at.time() == chrono::NaiveTime::MIN).then_some(Some(at.date()))
}

fn at(table: &'static str) -> impl Fn(sqlx::Error) -> PartitionError {
    move |source| PartitionError::Statement { table, source }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    fn days(from: &str, count: u64) -> Vec<Partition> {
        let mut parts: Vec<Partition> = (0..count)
            .map(|i| {
                let d = day(from) + Days::new(i);
                Partition {
                    name: name_of(d),
                    below: Some(d + Days::new(1)),
                }
            })
            .collect();
        parts.push(Partition {
            name: FUTURE.into(),
            below: None,
        });
        parts
    }

    fn at_noon(text: &str) -> NaiveDateTime {
        day(text).and_hms_opt(12, 0, 0).unwrap()
    }

    #[test]
    fn a_layout_kept_up_needs_nothing() {
        let parts = days("2026-11-30", 10); // to 2026-12-09
        let plan = plan(
            &parts,
            day("2026-12-07"),
            at_noon("2026-11-30") - chrono::Duration::days(1),
        );
        assert_eq!(plan, Plan::default());
    }

    #[test]
    fn days_ahead_are_created_from_the_newest() {
        let parts = days("2026-12-05", 2); // 05, 06
        let plan = plan(&parts, day("2026-12-07"), at_noon("2026-11-01"));
        assert_eq!(
            plan.add,
            vec![day("2026-12-07"), day("2026-12-08"), day("2026-12-09")]
        );
        assert!(plan.drop.is_empty());
    }

    #[test]
    fn a_gap_after_a_long_stop_is_filled_in_order() {
        // Down for a week: the days it missed are created too, so that
        // `future` never holds a day's rows longer than one pass.
        let parts = days("2026-11-25", 3); // to 11-27
        let plan = plan(&parts, day("2026-12-02"), at_noon("2026-11-01"));
        assert_eq!(plan.add.first(), Some(&day("2026-11-28")));
        assert_eq!(plan.add.last(), Some(&day("2026-12-04")));
        assert_eq!(plan.add.len(), 7);
    }

    #[test]
    fn a_stop_longer_than_the_retention_creates_no_day_to_drop() {
        let parts = days("2026-10-01", 3); // to 10-03
        let plan = plan(&parts, day("2026-12-07"), at_noon("2026-11-30"));
        assert_eq!(plan.add.first(), Some(&day("2026-11-30")));
        assert_eq!(plan.add.len(), 10); // 11-30 to 12-09
        assert_eq!(plan.drop, vec!["d20261001", "d20261002", "d20261003"]);
    }

    #[test]
    fn only_future_starts_at_today() {
        let parts = days("2026-12-07", 0);
        let plan = plan(&parts, day("2026-12-07"), at_noon("2026-11-01"));
        assert_eq!(plan.add.len(), 1 + AHEAD_DAYS as usize);
        assert_eq!(plan.add[0], day("2026-12-07"));
    }

    #[test]
    fn a_day_goes_only_once_wholly_past_the_cutoff() {
        let parts = days("2026-11-28", 12);
        // Cutoff at noon on 11-30: 11-28 and 11-29 end at or before it,
        // 11-30 ends after it and stays.
        let plan = plan(&parts, day("2026-12-07"), at_noon("2026-11-30"));
        assert_eq!(plan.drop, vec!["d20261128", "d20261129"]);
        // Cutoff exactly at midnight: the day ending then goes.
        let plan_midnight = plan_at(&parts, "2026-11-30");
        assert_eq!(plan_midnight, vec!["d20261128", "d20261129"]);
    }

    fn plan_at(parts: &[Partition], midnight: &str) -> Vec<String> {
        plan(
            parts,
            day("2026-12-07"),
            day(midnight).and_hms_opt(0, 0, 0).unwrap(),
        )
        .drop
    }

    #[test]
    fn future_is_never_dropped() {
        let parts = days("2026-11-01", 2);
        let plan = plan(&parts, day("2026-12-07"), at_noon("2030-01-01"));
        assert!(!plan.drop.iter().any(|n| n == FUTURE));
        assert_eq!(plan.drop.len(), 2);
    }

    #[test]
    fn a_retention_past_the_start_of_time_keeps_everything() {
        let now = at_noon("2026-12-07");
        let forever = Duration::from_secs(u64::MAX / 4);
        assert_eq!(cutoff(now, forever), NaiveDateTime::MIN);
        let parts = days("2026-11-01", 3);
        assert!(plan(&parts, now.date(), cutoff(now, forever))
            .drop
            .is_empty());
        assert_eq!(
            cutoff(now, Duration::from_secs(86_400)),
            at_noon("2026-12-06")
        );
    }

    #[test]
    fn bounds_read_as_both_servers_show_them() {
        assert_eq!(parse_bound("MAXVALUE"), Some(None));
        assert_eq!(parse_bound("'2026-12-08'"), Some(Some(day("2026-12-08"))));
        assert_eq!(
            parse_bound("'2026-12-08 00:00:00'"),
            Some(Some(day("2026-12-08")))
        );
        assert_eq!(
            parse_bound("'2026-12-08 00:00:00.000000'"),
            Some(Some(day("2026-12-08")))
        );
        assert_eq!(parse_bound("'2026-12-08 12:00:00'"), None);
        assert_eq!(parse_bound("TO_DAYS(ts)"), None);
    }
}
