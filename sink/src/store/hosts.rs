//! The `hosts` table: one row per host, kept current by every batch.
//!
//! A batch locks its hosts' rows first (`SELECT ... FOR UPDATE`, in host
//! order, the same in every sink), so transactions writing the same host
//! run one after the other and two sinks cannot deadlock on them; the
//! rollups rely on it. Then one upsert per host: the newest sample decides
//! boot and status, the hello of the current boot the host's facts, and the
//! newest procs snapshot which process list is the current one.

use std::collections::HashMap;

use chrono::NaiveDateTime;
use sqlx::mysql::{MySql, MySqlConnection};
use sqlx::{QueryBuilder, Row};
use vigia_schema::sample::{DEFAULT_INTERVAL, DEFAULT_PROCS_INTERVAL};
use vigia_schema::{HelloBody, ProcsBody, Sample};

use super::error::{At as _, WriteError};
use super::insert::{insert, PacketLimit, Table};
use super::open_minutes::SeenBefore;
use super::rollup::ProcsBefore;
use super::rows::{datetime, fit, Plan};

/// Whether a host is heard from: `hosts.status`, an ENUM of these two.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HostStatus {
    Online,
    /// Since its bye, or since liveness.rs found it silent.
    Offline,
}

impl HostStatus {
    /// As the ENUM holds it.
    fn as_str(self) -> &'static str {
        match self {
            HostStatus::Online => "online",
            HostStatus::Offline => "offline",
        }
    }

    fn parse(text: &str) -> Result<Self, sqlx::Error> {
        match text {
            "online" => Ok(HostStatus::Online),
            "offline" => Ok(HostStatus::Offline),
            other => Err(sqlx::Error::Decode(
                format!("hosts.status {other:?} is neither online nor offline").into(),
            )),
        }
    }
}

/// Rows at most per `SELECT ... FOR UPDATE`.
const MAX_LOCKED: usize = 1_000;

const HOSTS: Table = Table {
    verb: "INSERT",
    name: "hosts",
    columns:
        "host, boot, status, first_seen, last_seen, offline_since, agent_version, kernel, os, \
              cpus, ram_total, booted_at, source, interval_ms, procs_interval_ms, procs_boot, \
              procs_seq, procs_ts",
    on_duplicate: " ON DUPLICATE KEY UPDATE boot = VALUES(boot), status = VALUES(status), \
         first_seen = VALUES(first_seen), last_seen = VALUES(last_seen), \
         offline_since = VALUES(offline_since), \
         agent_version = COALESCE(VALUES(agent_version), agent_version), \
         kernel = COALESCE(VALUES(kernel), kernel), os = COALESCE(VALUES(os), os), \
         cpus = COALESCE(VALUES(cpus), cpus), ram_total = COALESCE(VALUES(ram_total), ram_total), \
         booted_at = COALESCE(VALUES(booted_at), booted_at), \
         source = COALESCE(VALUES(source), source), \
         interval_ms = VALUES(interval_ms), procs_interval_ms = VALUES(procs_interval_ms), \
         procs_boot = COALESCE(VALUES(procs_boot), procs_boot), \
         procs_seq = COALESCE(VALUES(procs_seq), procs_seq), \
         procs_ts = COALESCE(VALUES(procs_ts), procs_ts)",
};

/// What the hosts' update leaves for the rest of the batch's write.
pub(super) struct HostsWritten<'a> {
    /// Each host's newest procs snapshot in the batch that is newer than
    /// the one stored: the process lists to replace.
    pub newer_procs: Vec<(&'a Sample, &'a ProcsBody)>,
    /// For the rollups: each host's newest snapshot stored before.
    pub procs_before: ProcsBefore<'a>,
    /// For the rollups: each host's newest sample stored before, which
    /// says the minute this batch may close.
    pub seen_before: SeenBefore<'a>,
}

/// The columns of `hosts` a batch needs to know before it updates them.
struct StoredHost {
    last_seen: NaiveDateTime,
    first_seen: NaiveDateTime,
    boot: String,
    status: HostStatus,
    offline_since: Option<NaiveDateTime>,
    procs_ts: Option<NaiveDateTime>,
    interval_ms: u32,
    procs_interval_ms: u32,
}

/// A host's row as this batch leaves it.
struct HostRow<'a> {
    host: &'a str,
    boot: String,
    status: HostStatus,
    first_seen: NaiveDateTime,
    last_seen: NaiveDateTime,
    offline_since: Option<NaiveDateTime>,
    /// The hello of the current boot, when this batch has it.
    hello: Option<&'a HelloBody>,
    interval_ms: u32,
    procs_interval_ms: u32,
    /// The procs snapshot that replaces the stored process list.
    procs: Option<&'a Sample>,
}

/// Locks and updates the batch's hosts.
pub(super) async fn write<'a>(
    conn: &mut MySqlConnection,
    packet: &PacketLimit,
    plan: &Plan<'a>,
) -> Result<HostsWritten<'a>, WriteError> {
    let stored = lock(conn, plan).await?;
    let mut newer_procs = Vec::new();
    let procs_before: ProcsBefore = plan
        .hosts
        .keys()
        .map(|host| (*host, stored.get(*host).and_then(|o| o.procs_ts)))
        .collect();
    let seen_before: SeenBefore = plan
        .hosts
        .keys()
        .map(|host| (*host, stored.get(*host).map(|o| o.last_seen)))
        .collect();
    let mut rows = Vec::with_capacity(plan.hosts.len());
    for (&host, seen) in &plan.hosts {
        let old = stored.get(host);
        let newest_ts = datetime(seen.newest.ts);
        let first_seen = old.map_or(datetime(seen.oldest_ts), |o| {
            o.first_seen.min(datetime(seen.oldest_ts))
        });
        // The newest sample decides boot and status, unless MySQL already
        // holds a newer one (a late redelivery).
        let (last_seen, boot, status, offline_since) = match old {
            Some(o) if o.last_seen > newest_ts => {
                (o.last_seen, o.boot.clone(), o.status, o.offline_since)
            }
            _ if seen.newest_is_bye() => (
                newest_ts,
                seen.newest.boot.clone(),
                HostStatus::Offline,
                Some(newest_ts),
            ),
            _ => (
                newest_ts,
                seen.newest.boot.clone(),
                HostStatus::Online,
                None,
            ),
        };
        // Host facts come from the hello of the current boot.
        let hello = seen.hello.filter(|(s, _)| s.boot == boot).map(|(_, h)| h);
        let interval_ms = hello.map_or(
            old.map_or(clamp_ms(DEFAULT_INTERVAL.as_millis() as u64), |o| {
                o.interval_ms
            }),
            |h| clamp_ms(h.interval_ms),
        );
        let procs_interval_ms = hello.map_or(
            old.map_or(clamp_ms(DEFAULT_PROCS_INTERVAL.as_millis() as u64), |o| {
                o.procs_interval_ms
            }),
            |h| clamp_ms(h.procs_interval_ms),
        );
        let newer = seen.procs.filter(|(s, _)| {
            old.and_then(|o| o.procs_ts)
                .is_none_or(|stored| datetime(s.ts) > stored)
        });
        newer_procs.extend(newer);
        rows.push(HostRow {
            host,
            boot,
            status,
            first_seen,
            last_seen,
            offline_since,
            hello,
            interval_ms,
            procs_interval_ms,
            procs: newer.map(|(s, _)| s),
        });
    }
    insert(
        conn,
        packet,
        &HOSTS,
        &rows,
        |_| HOSTS.row_bytes(),
        |b, r| {
            let hello = r.hello;
            b.push_bind(r.host)
                .push_bind(&r.boot)
                .push_bind(r.status.as_str())
                .push_bind(r.first_seen)
                .push_bind(r.last_seen)
                .push_bind(r.offline_since)
                .push_bind(hello.map(|h| fit(&h.agent_version, 64)))
                .push_bind(hello.map(|h| fit(&h.kernel, 128)))
                .push_bind(hello.map(|h| fit(&h.os, 128)))
                .push_bind(hello.map(|h| h.cpus))
                .push_bind(hello.map(|h| h.ram_total))
                .push_bind(hello.map(|h| datetime(h.boot_time)))
                .push_bind(hello.map(|h| fit(&h.source, 16)))
                .push_bind(r.interval_ms)
                .push_bind(r.procs_interval_ms)
                .push_bind(r.procs.map(|s| s.boot.as_str()))
                .push_bind(r.procs.map(|s| s.seq))
                .push_bind(r.procs.map(|s| datetime(s.ts)));
        },
    )
    .await?;
    Ok(HostsWritten {
        newer_procs,
        procs_before,
        seen_before,
    })
}

/// Reads and locks the stored rows of the batch's hosts, in host order,
/// chunk after chunk: the same lock order in every sink.
async fn lock(
    conn: &mut MySqlConnection,
    plan: &Plan<'_>,
) -> Result<HashMap<String, StoredHost>, WriteError> {
    let names: Vec<&str> = plan.hosts.keys().copied().collect();
    let mut stored = HashMap::new();
    for part in names.chunks(MAX_LOCKED) {
        let mut select = QueryBuilder::<MySql>::new(
            "SELECT host, last_seen, first_seen, boot, status, offline_since, procs_ts, \
             interval_ms, procs_interval_ms FROM hosts WHERE host IN (",
        );
        let mut list = select.separated(", ");
        for host in part {
            list.push_bind(*host);
        }
        select.push(") ORDER BY host FOR UPDATE");
        let found = select.build().fetch_all(&mut *conn).await.at("hosts")?;
        for row in found {
            let read = || -> Result<_, sqlx::Error> {
                Ok((
                    row.try_get("host")?,
                    StoredHost {
                        last_seen: row.try_get("last_seen")?,
                        first_seen: row.try_get("first_seen")?,
                        boot: row.try_get("boot")?,
                        status: HostStatus::parse(row.try_get("status")?)?,
                        offline_since: row.try_get("offline_since")?,
                        procs_ts: row.try_get("procs_ts")?,
                        interval_ms: row.try_get("interval_ms")?,
                        procs_interval_ms: row.try_get("procs_interval_ms")?,
                    },
                ))
            };
            let (host, old) = read().at("hosts")?;
            stored.insert(host, old);
        }
    }
    Ok(stored)
}

/// Reads and locks the `last_seen` of `hosts`, as [`lock`] does.
pub(super) async fn lock_last_seen(
    conn: &mut MySqlConnection,
    hosts: &[&str],
) -> Result<HashMap<String, NaiveDateTime>, WriteError> {
    lock_column(conn, hosts, "last_seen").await
}

/// Reads and locks the `procs_ts` of `hosts` that have one.
pub(super) async fn lock_procs_ts(
    conn: &mut MySqlConnection,
    hosts: &[&str],
) -> Result<HashMap<String, NaiveDateTime>, WriteError> {
    lock_column(conn, hosts, "procs_ts").await
}

/// Reads and locks one time column of `hosts`, in host order, chunk after
/// chunk, as [`lock`] does; rows where it is NULL are left out.
async fn lock_column(
    conn: &mut MySqlConnection,
    hosts: &[&str],
    column: &'static str,
) -> Result<HashMap<String, NaiveDateTime>, WriteError> {
    let mut sorted = hosts.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut seen = HashMap::new();
    for part in sorted.chunks(MAX_LOCKED) {
        let mut select =
            QueryBuilder::<MySql>::new(format!("SELECT host, {column} FROM hosts WHERE host IN ("));
        let mut list = select.separated(", ");
        for host in part {
            list.push_bind(*host);
        }
        select.push(") ORDER BY host FOR UPDATE");
        let found: Vec<(String, Option<NaiveDateTime>)> = select
            .build_query_as()
            .fetch_all(&mut *conn)
            .await
            .at("hosts")?;
        seen.extend(found.into_iter().filter_map(|(host, t)| Some((host, t?))));
    }
    Ok(seen)
}

/// The hosts heard from within `within` of the database's clock, in
/// host order.
pub(super) async fn heard_within(
    conn: &mut MySqlConnection,
    within: std::time::Duration,
) -> Result<Vec<String>, WriteError> {
    sqlx::query_scalar(
        "SELECT host FROM hosts WHERE last_seen >= UTC_TIMESTAMP(6) - INTERVAL ? SECOND \
         ORDER BY host",
    )
    .bind(within.as_secs())
    .fetch_all(&mut *conn)
    .await
    .at("hosts")
}

/// A sampling interval as stored: INT UNSIGNED milliseconds.
fn clamp_ms(ms: u64) -> u32 {
    ms.clamp(1, u32::MAX as u64) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_reads_back_as_written_and_nothing_else_reads() {
        for status in [HostStatus::Online, HostStatus::Offline] {
            assert_eq!(HostStatus::parse(status.as_str()).unwrap(), status);
        }
        assert!(HostStatus::parse("Online").is_err());
    }
}
