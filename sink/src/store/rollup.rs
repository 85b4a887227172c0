//! Keeps the rollups exact: `host_minutes`, the per-host, per-minute
//! rollup of CPU, RAM and process states (mysql/migrations/0003_host_minutes.sql,
//! 0012_host_minutes_for_the_host_dashboard.sql), and for
//! ranges over 6 h `host_ten_minutes` (from host_minutes) and
//! `process_ten_minutes` (from the process history; 0005_long_range_rollups.sql).
//!
//! The stream may redeliver a message, and a raw insert of a sample already
//! stored is a no-op, so adding a batch's values to the rollup would count a
//! redelivered sample twice. Instead, after the batch's raw rows are written
//! and inside the same transaction, the (host, minute) rows the batch
//! closed or changed are recomputed from the raw tables:
//!
//! ```sql
//! INSERT INTO host_minutes (...)
//! SELECT host, <minute of ts>, AVG(busy_pct), ... FROM cpu_samples
//! WHERE (host = ? AND ts >= ? AND ts < ?) OR ...   -- one range per run of minutes
//! GROUP BY host, minute
//! ON DUPLICATE KEY UPDATE ...
//! ```
//!
//! Which minutes those are is [`super::open_minutes`]' choice: every closed
//! minute a batch touched or closed, and a host's open minute at most once
//! per `--rollup-refresh` (the rest of its refreshes come from the sink's
//! tick, [`refresh`]).
//!
//! `host_ten_minutes` is recomputed the same way from `host_minutes` (at
//! most 10 rows per host and period), for the periods of the minutes
//! recomputed. `process_ten_minutes` holds closed periods only, each
//! computed when it settles, up to two minutes after it closes, and again
//! only if a late snapshot reaches it (see [`closed_periods`]; with a
//! rollup refresh of zero also as it closes): recomputing a period on
//! every snapshot would read up to 120 snapshots x 2N history rows each
//! time.
//!
//! A redelivery then rewrites the same values, and samples of one minute
//! split across batches in any order end in the same row: the batch that
//! closes the minute reads all of it. The ranges follow the raw tables'
//! primary keys, (host, ts, ...) since 0013, so a recompute reads only the
//! raw rows of its minutes:
//! at 1 s sampling at most 60 rows per host, minute and table, the newest
//! rows and so in the buffer pool.
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
use super::open_minutes::{lag_under, minute, unsettled_from};
use super::rows::{datetime, Plan};

pub(super) const MINUTE_NS: i64 = 60_000_000_000;
const TEN_MINUTES_NS: i64 = 10 * MINUTE_NS;
/// Ranges per statement, well under 200, where MariaDB 10.11 and MySQL 8
/// stop estimating equality ranges from the index
/// (`eq_range_index_dive_limit`, default 200).
///
/// Past that limit the optimizer switched (measured before 0013, with a
/// (host, ts) index beside a (host, boot, seq) key) to the primary key's
/// host prefix: it reads every row each host has ever stored,
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
        for part in ranges.chunks(MAX_RANGES) {
            let mut query = QueryBuilder::<MySql>::new(&head);
            push_ranges(&mut query, part, self.time);
            query.push(&tail);
            query.build().execute(&mut *conn).await.at(self.table)?;
        }
        Ok(())
    }
}

/// Appends `(host = ? AND <time> >= ? AND <time> < ?) OR ...`, one term a
/// range, every bound a literal the optimizer sees: it prunes partitions
/// and reads each range from the index, which it cannot do for bounds taken
/// from another table's row (a correlated subquery reads every row the
/// host has in every partition).
fn push_ranges<'q>(query: &mut QueryBuilder<'q, MySql>, ranges: &[Range<'q>], time: &str) {
    for (i, r) in ranges.iter().enumerate() {
        if i > 0 {
            query.push(" OR ");
        }
        query
            .push("(host = ")
            .push_bind(r.host)
            .push(format_args!(" AND {time} >= "))
            .push_bind(datetime(r.from))
            .push(format_args!(" AND {time} < "))
            .push_bind(datetime(r.to))
            .push(")");
    }
}

/// `SELECT host, <count> FROM <table> WHERE <ranges> GROUP BY host` over
/// `ranges` (at most [`MAX_RANGES`]): each host's count.
async fn count_per_host<'a>(
    conn: &mut MySqlConnection,
    select: &str,
    time: &str,
    ranges: &[Range<'a>],
) -> Result<HashMap<String, i64>, WriteError> {
    let mut query = QueryBuilder::<MySql>::new(select);
    query.push(" WHERE ");
    push_ranges(&mut query, ranges, time);
    query.push(" GROUP BY host");
    let rows: Vec<(String, i64)> = query
        .build_query_as()
        .fetch_all(&mut *conn)
        .await
        .at("counts")?;
    Ok(rows.into_iter().collect())
}

/// A host and a run of whole periods, [from, to) in unix nanoseconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Range<'a> {
    pub host: &'a str,
    pub from: i64,
    pub to: i64,
}

/// The start of the period of `period_ns` that `ns` falls in, periods
/// aligned on the unix epoch (times before 1970 floor down).
pub(super) fn floor(ns: i64, period_ns: i64) -> i64 {
    ns.div_euclid(period_ns) * period_ns
}

/// The (host, period) pairs of `stamps`, periods of `period_ns` aligned on
/// the unix epoch, merged into runs of consecutive periods per host, sorted
/// by host and time.
pub(super) fn periods<'a>(
    stamps: impl IntoIterator<Item = (&'a str, i64)>,
    period_ns: i64,
) -> Vec<Range<'a>> {
    let starts: BTreeSet<(&str, i64)> = stamps
        .into_iter()
        .map(|(host, ts)| (host, floor(ts, period_ns)))
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

/// `ranges` sorted by host and start, the overlapping or adjacent ones of a
/// host joined: what [`periods`] gives for single periods, for runs of any
/// length without a step per period (a host's stored `last_seen` may be
/// days behind the batch's).
pub(super) fn merge(mut ranges: Vec<Range<'_>>) -> Vec<Range<'_>> {
    ranges.sort_by(|a, b| (a.host, a.from).cmp(&(b.host, b.from)));
    let mut out: Vec<Range<'_>> = Vec::with_capacity(ranges.len());
    for r in ranges {
        match out.last_mut() {
            Some(last) if last.host == r.host && r.from <= last.to => last.to = last.to.max(r.to),
            _ => out.push(r),
        }
    }
    out
}

/// The periods of `period_ns` that `ranges` overlap, as runs per host.
fn covering<'a>(ranges: &[Range<'a>], period_ns: i64) -> Vec<Range<'a>> {
    merge(
        ranges
            .iter()
            .filter(|r| r.from < r.to)
            .map(|r| Range {
                host: r.host,
                from: floor(r.from, period_ns),
                to: floor(r.to - 1, period_ns).saturating_add(period_ns),
            })
            .collect(),
    )
}

/// Recomputes the rollup rows `minutes` names, and the process periods
/// `plan`'s snapshots settle (or close, with `at_close`: see
/// [`closed_periods`]). Call after the raw rows are written, in the same
/// transaction.
pub(super) async fn write(
    conn: &mut MySqlConnection,
    plan: &Plan<'_>,
    procs_before: &ProcsBefore<'_>,
    minutes: &[Range<'_>],
    at_close: bool,
) -> Result<(), WriteError> {
    host_minutes(conn, minutes).await?;
    let procs = closed_periods(
        plan.procs.iter().map(|(s, _)| (s.host.as_str(), s.ts)),
        procs_before,
        at_close,
    );
    PROCESS_TEN_MINUTES.recompute(conn, &procs).await
}

/// Recomputes `minutes` of host_minutes from all three of its sources,
/// then the ten-minute periods they fall in.
async fn host_minutes(conn: &mut MySqlConnection, minutes: &[Range<'_>]) -> Result<(), WriteError> {
    HOST_MINUTES_FROM_CPU.recompute(conn, minutes).await?;
    HOST_MINUTES_FROM_RAM.recompute(conn, minutes).await?;
    HOST_MINUTES_FROM_PROCS.recompute(conn, minutes).await?;
    // After host_minutes, which it reads.
    HOST_TEN_MINUTES
        .recompute(conn, &covering(minutes, TEN_MINUTES_NS))
        .await
}

/// Recomputes the unsettled minutes of each of `hosts`: from the oldest
/// this sink skipped (or, for None, from [`unsettled_from`] of its
/// `last_seen`, whatever any sink skipped) to the minute of its `last_seen`,
/// under their row locks so that no batch writes them meanwhile. Returns
/// the hosts found.
pub(super) async fn refresh(
    conn: &mut MySqlConnection,
    hosts: &[(String, Option<i64>)],
) -> Result<usize, WriteError> {
    let names: Vec<&str> = hosts.iter().map(|(host, _)| host.as_str()).collect();
    let seen = super::hosts::lock_last_seen(conn, &names).await?;
    let mut minutes = Vec::new();
    for (host, stale_from) in hosts {
        let Some(ns) = seen
            .get(host)
            .and_then(|t| t.and_utc().timestamp_nanos_opt())
        else {
            continue;
        };
        let edge = unsettled_from(ns);
        minutes.push(Range {
            host: host.as_str(),
            from: stale_from.map_or(edge, |f| f.min(edge)),
            to: minute(ns) + MINUTE_NS,
        });
    }
    host_minutes(conn, &merge(minutes)).await?;
    Ok(seen.len())
}

/// Computes the newest process period of hosts that went quiet before it
/// settled: no snapshot for ten minutes and [`PROCESS_SETTLE_UP_TO`] (so
/// that period has ended and would have settled), but one within
/// [`QUIET_WITHIN`], and whose period in the rollup does not count every
/// history row of it (never computed, or computed before a late snapshot came:
/// such a snapshot is not late by [`closed_periods`]' rule while it is in
/// the host's newest period). The period before it too, in case it had
/// not settled either. At most [`SETTLE_AT_ONCE`] hosts a pass, each under
/// its row lock. Returns the hosts computed.
pub(super) async fn settle_quiet(conn: &mut MySqlConnection) -> Result<usize, WriteError> {
    let quiet = std::time::Duration::from_nanos((TEN_MINUTES_NS + PROCESS_SETTLE_UP_TO) as u64);
    let candidates: Vec<(String, NaiveDateTime)> = sqlx::query_as(
        "SELECT host, procs_ts FROM hosts \
         WHERE procs_ts < UTC_TIMESTAMP(6) - INTERVAL ? SECOND \
           AND procs_ts >= UTC_TIMESTAMP(6) - INTERVAL ? SECOND ORDER BY host",
    )
    .bind(quiet.as_secs())
    .bind(QUIET_WITHIN.as_secs())
    .fetch_all(&mut *conn)
    .await
    .at("hosts")?;
    // Each one's newest period, its history rows counted against the
    // samples its rollup holds, the bounds written out (see push_ranges).
    let newest: Vec<Range> = candidates
        .iter()
        .filter_map(|(host, ts)| {
            let period = floor(ts.and_utc().timestamp_nanos_opt()?, TEN_MINUTES_NS);
            Some(Range {
                host: host.as_str(),
                from: period,
                to: period + TEN_MINUTES_NS,
            })
        })
        .collect();
    let mut hosts: Vec<&str> = Vec::new();
    for part in newest.chunks(MAX_RANGES) {
        let history = count_per_host(
            conn,
            "SELECT host, COUNT(*) FROM process_samples",
            "ts",
            part,
        )
        .await?;
        let rolled_up = count_per_host(
            conn,
            "SELECT host, CAST(SUM(samples) AS SIGNED) FROM process_ten_minutes",
            "period",
            part,
        )
        .await?;
        hosts.extend(
            part.iter()
                .filter(|r| history.get(r.host) != rolled_up.get(r.host))
                .map(|r| r.host),
        );
        if hosts.len() >= SETTLE_AT_ONCE {
            hosts.truncate(SETTLE_AT_ONCE);
            break;
        }
    }
    let procs_ts = super::hosts::lock_procs_ts(conn, &hosts).await?;
    let mut computed = Vec::new();
    for (host, ts) in &procs_ts {
        let Some(ns) = ts.and_utc().timestamp_nanos_opt() else {
            continue;
        };
        let newest = floor(ns, TEN_MINUTES_NS);
        computed.push(Range {
            host: host.as_str(),
            from: newest - TEN_MINUTES_NS,
            to: newest + TEN_MINUTES_NS,
        });
    }
    PROCESS_TEN_MINUTES
        .recompute(conn, &merge(computed))
        .await?;
    Ok(procs_ts.len())
}

/// How long after a host's last snapshot [`settle_quiet`] still looks at
/// it. Each pass counts the history rows of every host gone quiet within
/// it (up to 2,400 a host at the defaults), so a fleet that churns hosts
/// must not keep a day of them in every pass; 48 passes is time enough for
/// a host to be computed, and again after a snapshot an hour late at most.
const QUIET_WITHIN: std::time::Duration = std::time::Duration::from_secs(3600);

/// Hosts at most per pass of [`settle_quiet`]: one transaction holds their
/// row locks; the rest wait for the next pass.
const SETTLE_AT_ONCE: usize = 500;

/// How long after a ten-minute period ends a host's period settles, at
/// most: each host's lag is spread over these two minutes
/// ([`super::open_minutes::lag_under`]), so that a fleet's periods are not
/// all computed in the same batches, a spike of a few seconds every ten
/// minutes (2,000 hosts x 120 snapshots x 20 history rows read at once).
const PROCESS_SETTLE_UP_TO: i64 = 2 * MINUTE_NS;

/// The periods of `process_ten_minutes` a batch must compute, given its
/// procs snapshots (host, ts) and each host's newest snapshot stored
/// before it.
///
/// A period *settles* once a snapshot is stored that is past its end by
/// the host's lag ([`PROCESS_SETTLE_UP_TO`]), and is computed then: every
/// period the batch settles, plus each settled period that a snapshot of
/// the batch fell in, late or redelivered. The rule reads nothing but the
/// snapshots' times, so every sink computes each period. With `at_close`
/// (a rollup refresh of zero: exact at every commit) a period is also
/// computed as soon as it closes, the lag aside. A host that goes quiet
/// before its last periods settle has them computed by [`settle_quiet`].
/// Periods not yet settled are left to the raw table: the Host dashboard's
/// top processes read the raw history after the newest period in the
/// rollup.
pub(super) fn closed_periods<'a>(
    snapshots: impl IntoIterator<Item = (&'a str, i64)>,
    before: &ProcsBefore<'_>,
    at_close: bool,
) -> Vec<Range<'a>> {
    let period = |ns: i64| floor(ns, TEN_MINUTES_NS);
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
        // Late: a snapshot of a period that had closed before the batch,
        // settled or not, so that a period computed early (by a sink with
        // `at_close`) is never left short of it.
        let closed_before = stored.map_or(period(newest), period);
        let late: Vec<(&str, i64)> = stamps
            .iter()
            .map(|&ts| period(ts))
            .filter(|&p| p < closed_before)
            .map(|p| (host, p))
            .collect();
        let lags = [
            Some(lag_under(host, PROCESS_SETTLE_UP_TO)),
            at_close.then_some(0),
        ];
        let mut computed = periods(late, TEN_MINUTES_NS);
        for lag in lags.into_iter().flatten() {
            let settled = |ns: i64| period(ns.saturating_sub(lag));
            if let Some(from) = stored.map(settled) {
                computed.push(Range {
                    host,
                    from,
                    to: settled(newest),
                });
            }
        }
        out.extend(merge(
            computed.into_iter().filter(|r| r.from < r.to).collect(),
        ));
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
        let got = periods(
            [
                ("b", t + 5),
                ("a", t + 2 * M + 1),
                ("a", t),
                ("a", t + M - 1),
                ("a", t + M),
                ("b", t + 3 * M),
            ],
            MINUTE_NS,
        );
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
        let snapshots = [
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
        ];
        let got = closed_periods(snapshots, &before, true);
        // At close, as without a lag; a period the lag settles only now
        // ("ahead"'s first, if its lag is over 5 ns) is computed again.
        let ahead_from = t0 + 2 * P
            - if lag_under("ahead", PROCESS_SETTLE_UP_TO) > 5 {
                P
            } else {
                0
            };
        assert_eq!(
            got,
            vec![
                at("ahead", ahead_from, t0 + 4 * P),
                at("behind", t0 + P, t0 + 2 * P),
                at("new", t0, t0 + P),
            ]
        );
    }

    #[test]
    fn without_at_close_a_period_waits_for_the_hosts_lag_past_its_end() {
        const P: i64 = TEN_MINUTES_NS;
        const S: i64 = 1_000_000_000;
        let t0 = 1_700_000_000 * S / P * P;
        // A host whose lag is at least ten seconds.
        let host = (0..)
            .map(|i| format!("host-{i}"))
            .find(|h| lag_under(h, PROCESS_SETTLE_UP_TO) >= 10 * S)
            .unwrap();
        let lag = lag_under(&host, PROCESS_SETTLE_UP_TO);
        assert!(lag < PROCESS_SETTLE_UP_TO);
        let before: ProcsBefore = [(host.as_str(), Some(datetime(t0 + P - 5 * S)))]
            .into_iter()
            .collect();
        // Past the end, short of the lag: nothing yet.
        let short = closed_periods([(host.as_str(), t0 + P + lag - S)], &before, false);
        assert_eq!(short, vec![]);
        // Past the lag: the period settles.
        let past = closed_periods([(host.as_str(), t0 + P + lag)], &before, false);
        assert_eq!(
            past,
            vec![Range {
                host: host.as_str(),
                from: t0,
                to: t0 + P
            }]
        );
        // Lags spread over the two minutes.
        let lags: BTreeSet<i64> = (0..300)
            .map(|i| lag_under(&format!("host-{i}"), PROCESS_SETTLE_UP_TO) / (10 * S))
            .collect();
        assert_eq!(lags.len(), 12, "{lags:?}");
    }

    #[test]
    fn times_before_1970_floor_down() {
        let got = periods([("a", -1)], MINUTE_NS);
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
