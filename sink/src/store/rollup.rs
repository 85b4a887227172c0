//! Keeps the rollups exact: `host_minutes`, the per-host, per-minute
//! rollup of CPU and RAM (mysql/migrations/0003_host_minutes.sql), and for
//! ranges over 6 h `host_ten_minutes` (from host_minutes) and
//! `process_ten_minutes` (from the process history; 0005_long_range_rollups.sql).
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
//! `host_ten_minutes` is recomputed the same way from `host_minutes` (at
//! most 10 rows per host and period). `process_ten_minutes` holds closed
//! periods only and computes each once, when it closes (see
//! [`closed_periods`]): recomputing a period on every snapshot would read
//! up to 120 snapshots x 2N history rows each time.
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

use std::collections::{BTreeMap, BTreeSet};

use sqlx::mysql::{MySql, MySqlConnection};
use sqlx::QueryBuilder;

use super::rows::{datetime, Plan};
use super::writer::{table_of, At, ProcsBefore, WriteError};

const MINUTE_NS: i64 = 60_000_000_000;
const TEN_MINUTES_NS: i64 = 10 * MINUTE_NS;
/// Ranges per statement: three placeholders each.
const MAX_RANGES: usize = 1_000;

/// SQL for the start of the minute of `ts`, independent of the session's
/// time zone.
const MINUTE_OF_TS: &str = "CAST(DATE_FORMAT(ts, '%Y-%m-%d %H:%i:00') AS DATETIME)";

/// SQL for the start of the ten minutes of `ts`.
const TEN_MINUTES_OF_TS: &str = "CAST(DATE_FORMAT(ts, '%Y-%m-%d %H:00:00') AS DATETIME) \
    + INTERVAL (MINUTE(ts) DIV 10 * 10) MINUTE";

/// A host and a run of whole periods, [from, to) in unix nanoseconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Range<'a> {
    pub host: &'a str,
    pub from: i64,
    pub to: i64,
}

/// The (host, minute) pairs of `stamps`, merged into runs of consecutive
/// minutes per host, sorted by host and time.
pub fn ranges<'a>(stamps: impl IntoIterator<Item = (&'a str, i64)>) -> Vec<Range<'a>> {
    periods(stamps, MINUTE_NS)
}

/// [`ranges`] for periods of `period_ns`, aligned on the unix epoch.
fn periods<'a>(stamps: impl IntoIterator<Item = (&'a str, i64)>, period_ns: i64) -> Vec<Range<'a>> {
    let starts: BTreeSet<(&str, i64)> = stamps
        .into_iter()
        .map(|(host, ts)| (host, ts.div_euclid(period_ns) * period_ns))
        .collect();
    let mut out: Vec<Range<'a>> = Vec::new();
    for (host, start) in starts {
        match out.last_mut() {
            Some(last) if last.host == host && last.to == start => last.to += period_ns,
            _ => out.push(Range {
                host,
                from: start,
                to: start + period_ns,
            }),
        }
    }
    out
}

/// Recomputes the rollup rows of every period that `plan`'s samples fall
/// in. Call after the raw rows are written, in the same transaction.
pub async fn write(
    conn: &mut MySqlConnection,
    plan: &Plan<'_>,
    procs_before: &ProcsBefore<'_>,
) -> Result<(), WriteError> {
    let cpu = ranges(plan.cpu.iter().map(|(s, _)| (s.host.as_str(), s.ts)));
    recompute(
        conn,
        "INSERT INTO host_minutes (host, minute, cpu_busy_pct, cpu_busy_max, load1, \
         cpu_samples) SELECT host, ",
        MINUTE_OF_TS,
        ", AVG(busy_pct), MAX(busy_pct), AVG(load1), COUNT(*) FROM cpu_samples WHERE (",
        "ts",
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
        MINUTE_OF_TS,
        ", AVG(100 * used / total), MAX(100 * used / total), COUNT(*) FROM ram_samples \
         WHERE total > 0 AND (",
        "ts",
        ") GROUP BY 1, 2 ON DUPLICATE KEY UPDATE ram_used_pct = VALUES(ram_used_pct), \
         ram_used_max = VALUES(ram_used_max), ram_samples = VALUES(ram_samples)",
        &ram,
    )
    .await?;
    // After host_minutes, which it reads.
    let ten_minutes = periods(
        plan.cpu
            .iter()
            .map(|(s, _)| (s.host.as_str(), s.ts))
            .chain(plan.ram.iter().map(|(s, _)| (s.host.as_str(), s.ts))),
        TEN_MINUTES_NS,
    );
    recompute(
        conn,
        "INSERT INTO host_ten_minutes (host, period, cpu_busy_pct, cpu_busy_max, load1, \
         cpu_samples, ram_used_pct, ram_used_max, ram_samples) SELECT host, ",
        "minute - INTERVAL (MINUTE(minute) MOD 10) MINUTE",
        ", SUM(cpu_busy_pct * cpu_samples) / NULLIF(SUM(cpu_samples), 0), MAX(cpu_busy_max), \
         SUM(load1 * cpu_samples) / NULLIF(SUM(cpu_samples), 0), SUM(cpu_samples), \
         SUM(ram_used_pct * ram_samples) / NULLIF(SUM(ram_samples), 0), MAX(ram_used_max), \
         SUM(ram_samples) FROM host_minutes WHERE (",
        "minute",
        ") GROUP BY 1, 2 ON DUPLICATE KEY UPDATE cpu_busy_pct = VALUES(cpu_busy_pct), \
         cpu_busy_max = VALUES(cpu_busy_max), load1 = VALUES(load1), \
         cpu_samples = VALUES(cpu_samples), ram_used_pct = VALUES(ram_used_pct), \
         ram_used_max = VALUES(ram_used_max), ram_samples = VALUES(ram_samples)",
        &ten_minutes,
    )
    .await?;
    let procs = closed_periods(
        plan.procs.iter().map(|(s, _)| (s.host.as_str(), s.ts)),
        procs_before,
    );
    recompute(
        conn,
        "INSERT INTO process_ten_minutes (host, period, pid, name, cpu_pct, rss, samples) \
         SELECT host, ",
        TEN_MINUTES_OF_TS,
        ", pid, name, AVG(cpu_pct), MAX(rss), COUNT(*) FROM process_samples WHERE (",
        "ts",
        ") GROUP BY 1, 2, 3, 4 ON DUPLICATE KEY UPDATE cpu_pct = VALUES(cpu_pct), \
         rss = VALUES(rss), samples = VALUES(samples)",
        &procs,
    )
    .await
}

/// The periods of `process_ten_minutes` a batch must compute, given its
/// procs snapshots (host, ts) and each host's newest snapshot stored
/// before it. A period is closed once a snapshot of a later period is
/// stored, and computed then: every period from the one open before the
/// batch to the one open after it, plus each earlier (closed) period that
/// a snapshot of the batch fell in, late or redelivered. The open period
/// is left to the raw table.
pub fn closed_periods<'a>(
    snapshots: impl IntoIterator<Item = (&'a str, i64)>,
    before: &ProcsBefore<'_>,
) -> Vec<Range<'a>> {
    let period = |ns: i64| ns.div_euclid(TEN_MINUTES_NS) * TEN_MINUTES_NS;
    let mut by_host: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
    for (host, ts) in snapshots {
        by_host.entry(host).or_default().push(ts);
    }
    let mut out = Vec::new();
    for (host, stamps) in by_host {
        let stored = before
            .get(host)
            .copied()
            .flatten()
            .and_then(|t| t.and_utc().timestamp_nanos_opt());
        let newest = stamps
            .iter()
            .copied()
            .chain(stored)
            .max()
            .unwrap_or(i64::MIN);
        let open_after = period(newest);
        let open_before = stored.map(period);
        let late = stamps
            .iter()
            .map(|&ts| period(ts))
            .filter(|&p| open_before.map_or(p < open_after, |b| p < b));
        out.extend(periods(late.map(|p| (host, p)), TEN_MINUTES_NS));
        if let Some(from) = open_before.filter(|&b| b < open_after) {
            out.push(Range {
                host,
                from,
                to: open_after,
            });
        }
    }
    out
}

/// `head` + `period` (the SQL of a row's period) + `from` + one condition
/// per range on `column` + `tail`, in statements of [`MAX_RANGES`] ranges.
async fn recompute(
    conn: &mut MySqlConnection,
    head: &'static str,
    period: &str,
    from: &str,
    column: &str,
    tail: &str,
    ranges: &[Range<'_>],
) -> Result<(), WriteError> {
    let (at_least, below) = (format!(" AND {column} >= "), format!(" AND {column} < "));
    for part in ranges.chunks(MAX_RANGES) {
        let mut query = QueryBuilder::<MySql>::new(head);
        query.push(period).push(from);
        for (i, r) in part.iter().enumerate() {
            if i > 0 {
                query.push(" OR ");
            }
            query
                .push("(host = ")
                .push_bind(r.host)
                .push(&at_least)
                .push_bind(datetime(r.from))
                .push(&below)
                .push_bind(datetime(r.to))
                .push(")");
        }
        query.push(tail);
        query.build().execute(&mut *conn).await.at(table_of(head))?;
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
    fn ten_minute_periods_align_on_the_clock() {
        let t = 1_700_000_000 * 1_000_000_000 / TEN_MINUTES_NS * TEN_MINUTES_NS;
        let got = periods(
            [("a", t + 9 * M), ("a", t + 10 * M), ("a", t + 31 * M)],
            TEN_MINUTES_NS,
        );
        let at = |from, to| Range {
            host: "a",
            from,
            to,
        };
        assert_eq!(got, vec![at(t, t + 20 * M), at(t + 30 * M, t + 40 * M)]);
    }

    #[test]
    fn a_period_is_computed_when_it_closes_or_when_late_samples_reach_it() {
        const P: i64 = TEN_MINUTES_NS;
        let t0 = 1_700_000_000 * 1_000_000_000 / P * P;
        let at = |host, from, to| Range { host, from, to };
        let stored = |ns: i64| Some(datetime(ns));
        let before: ProcsBefore = [
            ("new", None),
            ("same", stored(t0 + 2 * P + 5)),
            ("ahead", stored(t0 + 2 * P + 5)),
            ("behind", stored(t0 + 5 * P)),
        ]
        .into_iter()
        .collect();
        let got = closed_periods(
            [
                // Never seen: the periods before its newest are closed.
                ("new", t0 + 1),
                ("new", t0 + 2 * P + 1),
                // Still in its open period: nothing to do.
                ("same", t0 + 2 * P + 9),
                // Moves on by two periods: the two it left close.
                ("ahead", t0 + 4 * P),
                // Late: a closed period gets one more snapshot.
                ("behind", t0 + P + 3),
                ("behind", t0 + 5 * P + 3),
            ],
            &before,
        );
        assert_eq!(
            got,
            vec![
                at("ahead", t0 + 2 * P, t0 + 4 * P),
                at("behind", t0 + P, t0 + 2 * P),
                at("new", t0, t0 + P),
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
