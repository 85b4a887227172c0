//! Keeps `host_minutes`, the per-host, per-minute rollup of CPU and RAM
//! (mysql/migrations/0003_host_minutes.sql), exact.
//!
//! The stream may redeliver a message, and a raw insert of a sample already
//! stored is a no-op, so adding a batch's values to the rollup would count a
//! redelivered sample twice. Instead, after the batch's raw rows are written
//! and inside the same transaction, every (host, minute) that the batch
//! touched is recomputed from the raw table:
//!
//! ```sql
//! INSERT INTO host_minutes (...)
//! SELECT host, <minute of ts>, AVG(busy_pct), ... FROM cpu_samples
//! WHERE (host = ? AND ts >= ? AND ts < ?) OR ...   -- one range per run of minutes
//! GROUP BY host, minute
//! ON DUPLICATE KEY UPDATE ...
//! ```
//!
//! A redelivery then rewrites the same values, and samples of one minute
//! split across batches in any order end in the same row: the last batch to
//! touch the minute reads all of it. The ranges follow the raw tables'
//! (host, ts) index, so a batch reads only the raw rows of the minutes it
//! touched: at 1 s sampling at most 60 rows per host, minute and table, and
//! in steady state (a batch a second) about 30 on average, which are the
//! newest rows and so in the buffer pool.
//!
//! Two sinks cannot recompute one host's minute at once from different
//! snapshots: `Writer::write` locks the batch's `hosts` rows first (FOR
//! UPDATE), so transactions writing the same host run one after the other.

use std::collections::BTreeSet;

use sqlx::mysql::{MySql, MySqlConnection};
use sqlx::QueryBuilder;

use super::rows::{datetime, Plan};
use super::writer::WriteError;

const MINUTE_NS: i64 = 60_000_000_000;
/// Ranges per statement: three placeholders each.
const MAX_RANGES: usize = 1_000;

/// SQL for the start of the minute of `ts`, independent of the session's
/// time zone.
const MINUTE_OF_TS: &str = "CAST(DATE_FORMAT(ts, '%Y-%m-%d %H:%i:00') AS DATETIME)";

/// A host and a run of whole minutes, [from, to) in unix nanoseconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Range<'a> {
    pub host: &'a str,
    pub from: i64,
    pub to: i64,
}

/// The (host, minute) pairs of `stamps`, merged into runs of consecutive
/// minutes per host, sorted by host and time.
pub fn ranges<'a>(stamps: impl IntoIterator<Item = (&'a str, i64)>) -> Vec<Range<'a>> {
    let minutes: BTreeSet<(&str, i64)> = stamps
        .into_iter()
        .map(|(host, ts)| (host, ts.div_euclid(MINUTE_NS) * MINUTE_NS))
        .collect();
    let mut out: Vec<Range<'a>> = Vec::new();
    for (host, minute) in minutes {
        match out.last_mut() {
            Some(last) if last.host == host && last.to == minute => last.to += MINUTE_NS,
            _ => out.push(Range {
                host,
                from: minute,
                to: minute + MINUTE_NS,
            }),
        }
    }
    out
}

/// Recomputes the `host_minutes` rows of every minute that `plan`'s cpu and
/// ram samples fall in. Call after the raw rows are written, in the same
/// transaction.
pub async fn write(conn: &mut MySqlConnection, plan: &Plan<'_>) -> Result<(), WriteError> {
    let cpu = ranges(plan.cpu.iter().map(|(s, _)| (s.host.as_str(), s.ts)));
    recompute(
        conn,
        "INSERT INTO host_minutes (host, minute, cpu_busy_pct, cpu_busy_max, load1, \
         cpu_samples) SELECT host, ",
        ", AVG(busy_pct), MAX(busy_pct), AVG(load1), COUNT(*) FROM cpu_samples WHERE (",
        ") GROUP BY 1, 2 ON DUPLICATE KEY UPDATE cpu_busy_pct = VALUES(cpu_busy_pct), \
         cpu_busy_max = VALUES(cpu_busy_max), load1 = VALUES(load1), \
         cpu_samples = VALUES(cpu_samples)",
        &cpu,
    )
    .await?;
    let ram = ranges(plan.ram.iter().map(|(s, _)| (s.host.as_str(), s.ts)));
    recompute(
        conn,
        "INSERT INTO host_minutes (host, minute, ram_used_pct, ram_used_max, ram_samples) \
         SELECT host, ",
        ", AVG(100 * used / total), MAX(100 * used / total), COUNT(*) FROM ram_samples \
         WHERE total > 0 AND (",
        ") GROUP BY 1, 2 ON DUPLICATE KEY UPDATE ram_used_pct = VALUES(ram_used_pct), \
         ram_used_max = VALUES(ram_used_max), ram_samples = VALUES(ram_samples)",
        &ram,
    )
    .await
}

async fn recompute(
    conn: &mut MySqlConnection,
    head: &str,
    from: &str,
    tail: &str,
    ranges: &[Range<'_>],
) -> Result<(), WriteError> {
    for part in ranges.chunks(MAX_RANGES) {
        let mut query = QueryBuilder::<MySql>::new(head);
        query.push(MINUTE_OF_TS).push(from);
        for (i, r) in part.iter().enumerate() {
            if i > 0 {
                query.push(" OR ");
            }
            query
                .push("(host = ")
                .push_bind(r.host)
                .push(" AND ts >= ")
                .push_bind(datetime(r.from))
                .push(" AND ts < ")
                .push_bind(datetime(r.to))
                .push(")");
        }
        query.push(tail);
        query.build().execute(&mut *conn).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: i64 = MINUTE_NS;

    #[test]
    fn runs_of_minutes_merge_per_host() {
        let t = 1_700_000_000 * 1_000_000_000 / M * M;
        let got = ranges([
            ("b", t + 5),
            ("a", t + 2 * M + 1),
            ("a", t),
            ("a", t + M - 1),
            ("a", t + M),
            ("b", t + 3 * M),
        ]);
        assert_eq!(
            got,
            vec![
                Range {
                    host: "a",
                    from: t,
                    to: t + 3 * M
                },
                Range {
                    host: "b",
                    from: t,
                    to: t + M
                },
                Range {
                    host: "b",
                    from: t + 3 * M,
                    to: t + 4 * M
                },
            ]
        );
    }

    #[test]
    fn times_before_1970_floor_down() {
        let got = ranges([("a", -1)]);
        assert_eq!(
            got,
            vec![Range {
                host: "a",
                from: -M,
                to: 0
            }]
        );
    }
}
