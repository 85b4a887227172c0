//! Keeps the rollups exact: `host_minutes`, the per-host, per-minute
//! rollup of CPU, RAM and process states (mysql/migrations/0003_host_minutes.sql,
//! 0012_host_minutes_for_the_host_dashboard.sql), and for
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
//! snapshots: the writer locks the batch's `hosts` rows first (FOR UPDATE,
//! `super::hosts`), so transactions writing the same host run one after
//! the other.
//!
//! Each rollup is described once ([`Rollup`]: its table, the finer table it
//! is computed from, its aggregates), and its statement written from that.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::NaiveDateTime;
use sqlx::mysql::{MySql, MySqlConnection};
use sqlx::QueryBuilder;

use super::error::{At as _, WriteError};
use super::rows::{datetime, Plan};

const MINUTE_NS: i64 = 60_000_000_000;
const TEN_MINUTES_NS: i64 = 10 * MINUTE_NS;
/// Ranges per statement, well under 200, where MariaDB 10.11 and MySQL 8
/// stop estimating equality ranges from the index
/// (`eq_range_index_dive_limit`, default 200).
///
/// Past that limit the optimizer switches from the (host, ts) index to the
/// primary key's host prefix: it reads every row each host has ever stored,
/// and tests each against every range of the statement. Measured on
/// MariaDB 10.11 (1,000 hosts x 600 rows, one minute of each recomputed):
/// 1,000 hosts in statements of 199 ranges took 0.38 s, of 200 ranges
/// 3.1 s, of 1,000 ranges 18 s; of 50 ranges 0.17 s, of 25 0.14 s. With a
/// backlog, batches touch a thousand hosts, and the rollup step alone took
/// 3.3 s a batch and grew with history: the capacity benchmark's collapse
/// at 1,000 hosts (rows/s falling below the 500-host step's).
const MAX_RANGES: usize = 50;
const _: () = assert!(
    MAX_RANGES < 200,
    "under eq_range_index_dive_limit's default"
);

/// SQL for the start of the minute of `ts`, independent of the session's
/// time zone.
const MINUTE_OF_TS: &str = "CAST(DATE_FORMAT(ts, '%Y-%m-%d %H:%i:00') AS DATETIME)";

/// SQL for the start of the ten minutes of `ts`.
const TEN_MINUTES_OF_TS: &str = "CAST(DATE_FORMAT(ts, '%Y-%m-%d %H:00:00') AS DATETIME) \
    + INTERVAL (MINUTE(ts) DIV 10 * 10) MINUTE";

/// For each host of a batch, its newest procs snapshot stored before it:
/// which `process_ten_minutes` periods the batch closes. The hosts' update
/// reads it while it locks their rows (`super::hosts`).
pub(super) type ProcsBefore<'a> = HashMap<&'a str, Option<NaiveDateTime>>;

/// A rollup table and how its rows are recomputed from a finer table:
///
/// ```sql
/// INSERT INTO <table> (host, <period>, <keys>, <values>)
/// SELECT host, <period_of>, <keys>, <aggregates> FROM <source>
/// WHERE [<filter> AND] ((host = ? AND <time> >= ? AND <time> < ?) OR ...)
/// GROUP BY host, period, keys
/// ON DUPLICATE KEY UPDATE <value> = VALUES(<value>), ...
/// ```
struct Rollup {
    table: &'static str,
    /// Its period column, and the SQL of a source row's period.
    period: &'static str,
    period_of: &'static str,
    /// The finer table, the time column its ranges are on, and a condition
    /// its rows must meet besides.
    source: &'static str,
    time: &'static str,
    filter: Option<&'static str>,
    /// Columns copied from the source and grouped by, after host and period.
    keys: &'static [&'static str],
    /// Columns computed, each with its aggregate over the source rows.
    values: &'static [(&'static str, &'static str)],
}

/// The CPU half of host_minutes (0003_host_minutes.sql).
const HOST_MINUTES_FROM_CPU: Rollup = Rollup {
    table: "host_minutes",
    period: "minute",
    period_of: MINUTE_OF_TS,
    source: "cpu_samples",
    time: "ts",
    filter: None,
    keys: &[],
    values: &[
        ("cpu_busy_pct", "AVG(busy_pct)"),
        ("cpu_busy_max", "MAX(busy_pct)"),
        ("load1", "AVG(load1)"),
        ("cpu_samples", "COUNT(*)"),
        // The Host dashboard's series (0012).
        ("cpu_user_pct", "AVG(user_pct)"),
        ("cpu_system_pct", "AVG(system_pct)"),
        ("cpu_iowait_pct", "AVG(iowait_pct)"),
        ("cpu_steal_pct", "AVG(steal_pct)"),
        ("cpu_idle_pct", "AVG(idle_pct)"),
        ("load5", "AVG(load5)"),
        ("load15", "AVG(load15)"),
        ("cpus", "MAX(cpus)"),
    ],
};

/// The RAM half of host_minutes.
const HOST_MINUTES_FROM_RAM: Rollup = Rollup {
    table: "host_minutes",
    period: "minute",
    period_of: MINUTE_OF_TS,
    source: "ram_samples",
    time: "ts",
    filter: Some("total > 0"),
    keys: &[],
    values: &[
        ("ram_used_pct", "AVG(100 * used / total)"),
        ("ram_used_max", "MAX(100 * used / total)"),
        ("ram_samples", "COUNT(*)"),
        // The Host dashboard's series (0012).
        ("ram_used", "AVG(used)"),
        ("ram_cached", "AVG(cached)"),
        ("ram_free", "AVG(free)"),
        ("ram_total", "MAX(total)"),
    ],
};

/// The process states of host_minutes, for the Host dashboard (0012).
const HOST_MINUTES_FROM_PROCS: Rollup = Rollup {
    table: "host_minutes",
    period: "minute",
    period_of: MINUTE_OF_TS,
    source: "procs_snapshots",
    time: "ts",
    filter: None,
    keys: &[],
    values: &[
        ("procs_running", "AVG(running)"),
        ("procs_sleeping", "AVG(sleeping)"),
        ("procs_blocked", "AVG(blocked)"),
        ("procs_zombie", "AVG(zombie)"),
        ("procs_other", "AVG(other)"),
        ("procs_samples", "COUNT(*)"),
    ],
};

/// host_minutes in periods of ten minutes (0005_long_range_rollups.sql),
/// averages weighted by the minutes' sample counts.
const HOST_TEN_MINUTES: Rollup = Rollup {
    table: "host_ten_minutes",
    period: "period",
    period_of: "minute - INTERVAL (MINUTE(minute) MOD 10) MINUTE",
    source: "host_minutes",
    time: "minute",
    filter: None,
    keys: &[],
    values: &[
        (
            "cpu_busy_pct",
            "SUM(cpu_busy_pct * cpu_samples) / NULLIF(SUM(cpu_samples), 0)",
        ),
        ("cpu_busy_max", "MAX(cpu_busy_max)"),
        (
            "load1",
            "SUM(load1 * cpu_samples) / NULLIF(SUM(cpu_samples), 0)",
        ),
        ("cpu_samples", "SUM(cpu_samples)"),
        (
            "ram_used_pct",
            "SUM(ram_used_pct * ram_samples) / NULLIF(SUM(ram_samples), 0)",
        ),
        ("ram_used_max", "MAX(ram_used_max)"),
        ("ram_samples", "SUM(ram_samples)"),
    ],
};

/// The process history in periods of ten minutes, closed periods only.
const PROCESS_TEN_MINUTES: Rollup = Rollup {
    table: "process_ten_minutes",
    period: "period",
    period_of: TEN_MINUTES_OF_TS,
    source: "process_samples",
    time: "ts",
    filter: None,
    keys: &["pid", "name"],
    values: &[
        ("cpu_pct", "AVG(cpu_pct)"),
        ("rss", "MAX(rss)"),
        ("samples", "COUNT(*)"),
    ],
};

impl Rollup {
    /// The statement's text up to its ranges, and from them on.
    fn sql(&self) -> (String, String) {
        let keys: String = self.keys.iter().map(|k| format!(", {k}")).collect();
        let columns: Vec<&str> = self.values.iter().map(|(c, _)| *c).collect();
        let aggregates: Vec<&str> = self.values.iter().map(|(_, a)| *a).collect();
        let filter = self.filter.map_or(String::new(), |f| format!("{f} AND "));
        let head = format!(
            "INSERT INTO {} (host, {}{keys}, {}) SELECT host, {}{keys}, {} FROM {} WHERE {filter}(",
            self.table,
            self.period,
            columns.join(", "),
            self.period_of,
            aggregates.join(", "),
            self.source,
        );
        let group: String = (1..=2 + self.keys.len())
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(", ");
        let updates: Vec<String> = columns
            .iter()
            .map(|c| format!("{c} = VALUES({c})"))
            .collect();
        let tail = format!(
            ") GROUP BY {group} ON DUPLICATE KEY UPDATE {}",
            updates.join(", ")
        );
        (head, tail)
    }

    /// Recomputes the rows of `ranges`, in statements of [`MAX_RANGES`]
    /// ranges.
    async fn recompute(
        &self,
        conn: &mut MySqlConnection,
        ranges: &[Range<'_>],
    ) -> Result<(), WriteError> {
        let (head, tail) = self.sql();
        let (at_least, below) = (
            format!(" AND {} >= ", self.time),
            format!(" AND {} < ", self.time),
        );
        for part in ranges.chunks(MAX_RANGES) {
            let mut query = QueryBuilder::<MySql>::new(&head);
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
            query.push(&tail);
            query.build().execute(&mut *conn).await.at(self.table)?;
        }
        Ok(())
    }
}

/// A host and a run of whole periods, [from, to) in unix nanoseconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Range<'a> {
    pub host: &'a str,
    pub from: i64,
    pub to: i64,
}

/// The (host, minute) pairs of `stamps`, merged into runs of consecutive
/// minutes per host, sorted by host and time.
pub(super) fn ranges<'a>(stamps: impl IntoIterator<Item = (&'a str, i64)>) -> Vec<Range<'a>> {
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
pub(super) async fn write(
    conn: &mut MySqlConnection,
    plan: &Plan<'_>,
    procs_before: &ProcsBefore<'_>,
) -> Result<(), WriteError> {
    let cpu = ranges(plan.cpu.iter().map(|(s, _)| (s.host.as_str(), s.ts)));
    HOST_MINUTES_FROM_CPU.recompute(conn, &cpu).await?;
    let ram = ranges(plan.ram.iter().map(|(s, _)| (s.host.as_str(), s.ts)));
    HOST_MINUTES_FROM_RAM.recompute(conn, &ram).await?;
    let snapshots = ranges(plan.procs.iter().map(|(s, _)| (s.host.as_str(), s.ts)));
    HOST_MINUTES_FROM_PROCS.recompute(conn, &snapshots).await?;
    // After host_minutes, which it reads.
    let ten_minutes = periods(
        plan.cpu
            .iter()
            .map(|(s, _)| (s.host.as_str(), s.ts))
            .chain(plan.ram.iter().map(|(s, _)| (s.host.as_str(), s.ts))),
        TEN_MINUTES_NS,
    );
    HOST_TEN_MINUTES.recompute(conn, &ten_minutes).await?;
    let procs = closed_periods(
        plan.procs.iter().map(|(s, _)| (s.host.as_str(), s.ts)),
        procs_before,
    );
    PROCESS_TEN_MINUTES.recompute(conn, &procs).await
}

/// The periods of `process_ten_minutes` a batch must compute, given its
/// procs snapshots (host, ts) and each host's newest snapshot stored
/// before it. A period is closed once a snapshot of a later period is
/// stored, and computed then: every period from the one open before the
/// batch to the one open after it, plus each earlier (closed) period that
/// a snapshot of the batch fell in, late or redelivered. The open period
/// is left to the raw table.
pub(super) fn closed_periods<'a>(
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

#[cfg(test)]
mod tests {
    use super::*;

    const M: i64 = MINUTE_NS;

    #[test]
    fn a_rollup_statement_is_written_from_its_description() {
        let (head, tail) = PROCESS_TEN_MINUTES.sql();
        assert_eq!(
            format!("{head}(host = ? AND ts >= ? AND ts < ?){tail}"),
            format!(
                "INSERT INTO process_ten_minutes (host, period, pid, name, cpu_pct, rss, samples) \
                 SELECT host, {TEN_MINUTES_OF_TS}, pid, name, AVG(cpu_pct), MAX(rss), COUNT(*) \
                 FROM process_samples WHERE ((host = ? AND ts >= ? AND ts < ?)) \
                 GROUP BY 1, 2, 3, 4 ON DUPLICATE KEY UPDATE cpu_pct = VALUES(cpu_pct), \
                 rss = VALUES(rss), samples = VALUES(samples)"
            )
        );
        let (head, _) = HOST_MINUTES_FROM_RAM.sql();
        assert!(
            head.ends_with("FROM ram_samples WHERE total > 0 AND ("),
            "{head}"
        );
    }

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
