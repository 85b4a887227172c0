//! Writes a batch of samples in one transaction.
//!
//! In order: the batch's `hosts` rows are locked and updated
//! ([`super::hosts`]), its boots recorded ([`super::boots`]), the newest
//! process list of each host replaced (`REPLACE INTO process_lists`), the
//! samples inserted, a multi-row INSERT per table ([`super::insert`]), and
//! the rollups recomputed ([`super::rollup`]); then the commit.
//!
//! Every sample table is keyed on (host, ts, boot, seq), process_samples on
//! (host, ts, boot, seq, pid) (ts since the tables are partitioned by day,
//! 0010_daily_partitions.sql; first after host since
//! 0013_raw_samples_keyed_by_time.sql), and their inserts end in a no-op `ON
//! DUPLICATE KEY UPDATE seq = seq` (`pid = pid`): a redelivered message
//! carries the same ts, finds its row and changes nothing. (A publisher
//! resending a seq with another ts would now store a second row: only
//! under its own host, which only it may publish.) Statements hold as many rows as fit under the
//! placeholder limit, a row count and the server's max_allowed_packet, so a
//! table gets one statement per batch in the usual case.

use std::borrow::Cow;

use sqlx::mysql::{MySql, MySqlConnection, MySqlPool};
use sqlx::query_builder::Separated;
use sqlx::Connection;
use vigia_schema::{ProcsBody, Sample, SampleBody};

use super::error::{At as _, ProbeError, WriteError};
use super::insert::{insert, PacketLimit, Table};
use super::lists::{process_list_json, state_letter, ProcessLists};
use super::open_minutes::OpenMinutes;
use super::rows::{datetime, fit, history, state_counts, Plan};

/// How long the probe may take to connect and answer.
const PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// What a sample's row does when the stream redelivers it: nothing.
const NO_OP: &str = " ON DUPLICATE KEY UPDATE seq = seq";

/// A sample table's columns: host, boot, seq and ts first, bound by
/// [`envelope`], then its own.
macro_rules! sample_columns {
    ($own:literal) => {
        concat!("host, boot, seq, ts, ", $own)
    };
}

const PROCESS_LISTS: Table = Table {
    verb: "REPLACE",
    name: "process_lists",
    columns: sample_columns!("processes"),
    on_duplicate: "",
};

const CPU_SAMPLES: Table = Table {
    verb: "INSERT",
    name: "cpu_samples",
    columns: sample_columns!(
        "busy_pct, user_pct, system_pct, iowait_pct, steal_pct, idle_pct, \
         load1, load5, load15, cpus, per_cpu_busy_pct"
    ),
    on_duplicate: NO_OP,
};

const RAM_SAMPLES: Table = Table {
    verb: "INSERT",
    name: "ram_samples",
    columns: sample_columns!(
        "total, used, free, available, buffers, cached, swap_total, swap_free"
    ),
    on_duplicate: NO_OP,
};

const PROCS_SNAPSHOTS: Table = Table {
    verb: "INSERT",
    name: "procs_snapshots",
    columns: sample_columns!("processes, running, sleeping, blocked, zombie, other"),
    on_duplicate: NO_OP,
};

const PROCESS_SAMPLES: Table = Table {
    verb: "INSERT",
    name: "process_samples",
    columns: sample_columns!("pid, name, user, state, rss, mem_pct, cpu_pct, threads"),
    on_duplicate: " ON DUPLICATE KEY UPDATE pid = pid",
};

const HOST_EVENTS: Table = Table {
    verb: "INSERT",
    name: "host_events",
    columns: sample_columns!("kind, detail"),
    on_duplicate: NO_OP,
};

/// The audit trail of process control (schemas/README.md, "Process
/// control").
const COMMANDS: Table = Table {
    verb: "INSERT",
    name: "commands",
    columns: sample_columns!(
        "action, pid, process_name, signal_name, requested_by, nats_user, outcome, error"
    ),
    on_duplicate: NO_OP,
};

/// The publishers' own state (0007_pipeline_health.sql).
const PUBLISHER_HEALTH: Table = Table {
    verb: "INSERT",
    name: "publisher_health",
    columns: sample_columns!("dropped, outbox_depth, reconnects, source, agent_version"),
    on_duplicate: NO_OP,
};

/// Longest a batch write may take before it counts as failed and is
/// retried: a half-open connection to MySQL would otherwise hang ingest
/// (and shutdown) until TCP gives up, minutes later. Timed here, where a
/// write that timed out is treated like any other failure (the boots'
/// memory is forgotten: the commit may or may not have happened).
const WRITE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Hosts per transaction of [`Writer::refresh_open_minutes`]: each holds
/// its hosts' row locks, so batches of those hosts wait for it.
const REFRESH_CHUNK: usize = 500;

/// How far back a starting sink looks for minutes a stopped sink may have
/// left stale: a quiet host's last two, recomputable while its raw rows
/// are kept (--retention, 48 h by default).
const RECOVER_WITHIN: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// `work`, failed as timed out after [`WRITE_TIMEOUT`].
async fn timed<T>(
    work: impl std::future::Future<Output = Result<T, WriteError>>,
) -> Result<T, WriteError> {
    tokio::time::timeout(WRITE_TIMEOUT, work)
        .await
        .unwrap_or(Err(WriteError::TimedOut(WRITE_TIMEOUT)))
}

#[derive(Clone)]
pub struct Writer {
    pool: MySqlPool,
    history_top: usize,
    packet: PacketLimit,
    /// The host_boots rows this sink has written (see store/boots.rs).
    boots: std::sync::Arc<super::boots::Remembered>,
    /// The minutes this sink left for later (see store/open_minutes.rs).
    minutes: std::sync::Arc<OpenMinutes>,
}

/// Milliseconds spent in each step of a write, for the trace log.
struct Steps(std::time::Instant);

impl Steps {
    fn start() -> Self {
        Steps(std::time::Instant::now())
    }

    /// Milliseconds since the previous step ended.
    fn next(&mut self) -> f64 {
        let now = std::time::Instant::now();
        let ms = now.duration_since(self.0).as_secs_f64() * 1e3;
        self.0 = now;
        ms
    }
}

impl Writer {
    pub fn new(pool: MySqlPool, history_top: usize) -> Self {
        Self {
            pool,
            history_top,
            packet: PacketLimit::default(),
            boots: Default::default(),
            minutes: Default::default(),
        }
    }

    /// Recomputes a host's minutes that have not settled yet (its current
    /// one and the one before) at most once per `every` instead of on every
    /// batch, and its process periods a little after they close instead of
    /// at once (zero, the default: every batch, exact at every commit).
    /// Every minute is still recomputed when it settles, up to a minute
    /// after it ends; [`Writer::refresh_open_minutes`] keeps a quiet host's
    /// current. See store/open_minutes.rs.
    pub fn with_rollup_refresh(mut self, every: std::time::Duration) -> Self {
        self.minutes = std::sync::Arc::new(OpenMinutes::new(every));
        self
    }

    /// Recomputes the unsettled minutes that batches left stale and that
    /// are due, at most [`REFRESH_CHUNK`] hosts; at first, instead, those of
    /// every host heard from within [`RECOVER_WITHIN`], which a stopped sink
    /// may have left stale, a chunk a call. Returns how many hosts' minutes
    /// it recomputed. Call every second or so, between batches.
    pub async fn refresh_open_minutes(&self) -> Result<usize, WriteError> {
        self.recompute_open_minutes(false).await
    }

    /// Recomputes every unsettled minute that batches left stale, due or
    /// not, and what is left of the start's recovery: when the sink stops,
    /// and in tests.
    pub async fn flush_open_minutes(&self) -> Result<usize, WriteError> {
        self.recompute_open_minutes(true).await
    }

    /// Computes the last process periods of hosts that went quiet before
    /// those settled (store/rollup.rs, `settle_quiet`). Returns how many
    /// hosts. Call once a minute or so.
    pub async fn settle_quiet_hosts(&self) -> Result<usize, WriteError> {
        timed(async {
            let mut tx = self.pool.begin().await.at("begin")?;
            let settled = super::rollup::settle_quiet(&mut tx).await?;
            tx.commit().await.at("commit")?;
            Ok(settled)
        })
        .await
    }

    /// In transactions of [`REFRESH_CHUNK`] hosts, each under its hosts'
    /// row locks and timed out on its own; one recovery chunk and one of
    /// due hosts a call, or everything (`all`).
    async fn recompute_open_minutes(&self, all: bool) -> Result<usize, WriteError> {
        let at = std::time::Instant::now();
        if self.minutes.recovery_unread() {
            let heard = timed(async {
                let mut conn = self.pool.acquire().await.at("connect")?;
                super::hosts::heard_within(&mut conn, RECOVER_WITHIN).await
            })
            .await?;
            self.minutes.recovery_read(heard);
        }
        // Read once: a batch that skips more meanwhile leaves them for the
        // next call, so a flush ends however busy the writer is.
        let mut stale = self.minutes.stale((!all).then_some(at)).into_iter();
        let mut refreshed = 0;
        loop {
            let recover = self.minutes.recovery_take(REFRESH_CHUNK);
            let mut hosts: Vec<(String, Option<i64>)> =
                recover.iter().map(|host| (host.clone(), None)).collect();
            hosts.extend(
                stale
                    .by_ref()
                    .take(REFRESH_CHUNK)
                    .map(|(host, from)| (host, Some(from))),
            );
            if hosts.is_empty() {
                break;
            }
            let done = timed(async {
                let mut tx = self.pool.begin().await.at("begin")?;
                let found = super::rollup::refresh(&mut tx, &hosts).await?;
                tx.commit().await.at("commit")?;
                Ok(found)
            })
            .await;
            match done {
                Ok(found) => {
                    refreshed += found;
                    self.minutes.refreshed(&hosts, at);
                }
                Err(error) => {
                    self.minutes.recovery_put_back(recover);
                    return Err(error);
                }
            }
            if !all {
                break;
            }
        }
        self.minutes.prune(at);
        Ok(refreshed)
    }

    /// Whether MySQL answers and takes writes: a cheap query on a fresh
    /// connection (not one from the pool, which may be the broken one),
    /// within a few seconds. A failed write followed by a probe that works
    /// means the data is suspect, not MySQL.
    ///
    /// A server that answers but is read-only (`@@read_only`: a managed
    /// failover, a replica promoted late, maintenance) fails every write
    /// whatever the data, so it counts as not answering
    /// ([`ProbeError::ReadOnly`]) and the sink waits; taken for an answer,
    /// it made the sink dead-letter every sample of every batch. MySQL 8's
    /// super_read_only sets read_only too. A user with SUPER (MariaDB) or
    /// CONNECTION_ADMIN (MySQL) writes through read_only, and the probe
    /// then says read-only for writes that would work: the sink runs as a
    /// user of its own without them (mysql/init/05-sink-user.sh).
    ///
    /// Reads max_allowed_packet in the same query.
    pub(crate) async fn probe(&self) -> Result<(), ProbeError> {
        let options = self.pool.connect_options();
        let answer = async {
            let mut conn = MySqlConnection::connect_with(&options).await?;
            // read_only as text: an integer on MariaDB 10.11 and MySQL 8,
            // and decoded alike whatever type a server gives it.
            let read = sqlx::query_as::<_, (u64, String)>(
                "SELECT @@max_allowed_packet, CAST(@@read_only AS CHAR)",
            )
            .fetch_one(&mut conn)
            .await;
            let _ = conn.close().await;
            let (packet, read_only) = read?;
            self.packet.set(packet);
            if is_on(&read_only) {
                return Err(ProbeError::ReadOnly);
            }
            Ok(())
        };
        tokio::time::timeout(PROBE_TIMEOUT, answer)
            .await
            .map_err(|_| ProbeError::TimedOut(PROBE_TIMEOUT))?
    }

    /// Writes every sample, or none of them.
    pub async fn write(&self, samples: &[&Sample]) -> Result<(), WriteError> {
        self.write_prepared(samples, &ProcessLists::default()).await
    }

    /// [`Writer::write`] with the batch's process lists already encoded
    /// (a list missing from `lists` is encoded here).
    pub(crate) async fn write_prepared(
        &self,
        samples: &[&Sample],
        lists: &ProcessLists,
    ) -> Result<(), WriteError> {
        let written = timed(self.write_in_one_transaction(samples, lists)).await;
        if written.is_err() {
            self.boots.forget();
        }
        written
    }

    async fn write_in_one_transaction(
        &self,
        samples: &[&Sample],
        lists: &ProcessLists,
    ) -> Result<(), WriteError> {
        if samples.is_empty() {
            return Ok(());
        }
        let mut steps = Steps::start();
        let plan = Plan::new(samples);
        let mut tx = self.pool.begin().await.at("begin")?;
        if self.packet.get() == 0 {
            self.packet.read(&mut tx).await.at("max_allowed_packet")?;
        }
        let hosts = super::hosts::write(&mut tx, &self.packet, &plan).await?;
        let boots = super::boots::record(&mut tx, samples, &self.boots).await?;
        let planned_at = std::time::Instant::now();
        let minutes = self.minutes.plan(&plan, &hosts.seen_before, planned_at);
        let hosts_ms = steps.next();
        self.write_processes(&mut tx, &hosts.newer_procs, lists)
            .await?;
        let process_lists = steps.next();
        self.write_samples(&mut tx, &plan).await?;
        let samples = steps.next();
        super::rollup::write(
            &mut tx,
            &plan,
            &hosts.procs_before,
            &minutes.recompute,
            self.minutes.at_every_commit(),
        )
        .await?;
        let rollup = steps.next();
        tx.commit().await.at("commit")?;
        self.boots.remember(boots);
        self.minutes.committed(&minutes, planned_at);
        let commit = steps.next();
        // Where a write's time goes (RUST_LOG=vigia_sink=trace).
        tracing::trace!(
            hosts = hosts_ms,
            process_lists,
            samples,
            rollup,
            commit,
            "batch written (ms)"
        );
        Ok(())
    }

    /// Replaces the latest process list of each host that has a newer one:
    /// one row per host, the list as JSON (see migration 0004).
    async fn write_processes(
        &self,
        conn: &mut MySqlConnection,
        newer: &[(&Sample, &ProcsBody)],
        encoded: &ProcessLists,
    ) -> Result<(), WriteError> {
        let lists: Vec<(&Sample, Cow<str>)> = newer
            .iter()
            .map(|&(sample, body)| {
                let json = match encoded.get(sample) {
                    Some(json) => Cow::Borrowed(json),
                    None => Cow::Owned(process_list_json(body)),
                };
                (sample, json)
            })
            .collect();
        // REPLACE, not INSERT ... ON DUPLICATE KEY UPDATE: every column is
        // new, and the upsert first reads the old 60 kB list back and
        // compares it (+15 % on this statement, measured with 500 hosts of
        // 400 processes); REPLACE on a table with no triggers or foreign
        // keys deletes the row and inserts the new one, which is all we want.
        insert(
            conn,
            &self.packet,
            &PROCESS_LISTS,
            &lists,
            |(_, json)| json.len(),
            |b, (s, json)| {
                envelope(b, s).push_bind(json);
            },
        )
        .await
    }

    async fn write_samples(
        &self,
        conn: &mut MySqlConnection,
        plan: &Plan<'_>,
    ) -> Result<(), WriteError> {
        let packet = &self.packet;
        insert(
            conn,
            packet,
            &CPU_SAMPLES,
            &plan.cpu,
            // A per-CPU value is at most 15 bytes of JSON ("-1.2345678e-10,").
            |(_, c)| CPU_SAMPLES.row_bytes() + 16 * c.per_cpu_busy_pct.len(),
            |b, (s, c)| {
                let per_cpu =
                    serde_json::to_string(&c.per_cpu_busy_pct).unwrap_or_else(|_| "[]".into());
                envelope(b, s)
                    .push_bind(c.busy_pct)
                    .push_bind(c.user_pct)
                    .push_bind(c.system_pct)
                    .push_bind(c.iowait_pct)
                    .push_bind(c.steal_pct)
                    .push_bind(c.idle_pct)
                    .push_bind(c.load1)
                    .push_bind(c.load5)
                    .push_bind(c.load15)
                    .push_bind(c.cpus)
                    .push_bind(per_cpu);
            },
        )
        .await?;
        insert(
            conn,
            packet,
            &RAM_SAMPLES,
            &plan.ram,
            |_| RAM_SAMPLES.row_bytes(),
            |b, (s, r)| {
                envelope(b, s)
                    .push_bind(r.total)
                    .push_bind(r.used)
                    .push_bind(r.free)
                    .push_bind(r.available)
                    .push_bind(r.buffers)
                    .push_bind(r.cached)
                    .push_bind(r.swap_total)
                    .push_bind(r.swap_free);
            },
        )
        .await?;
        insert(
            conn,
            packet,
            &PROCS_SNAPSHOTS,
            &plan.procs,
            |_| PROCS_SNAPSHOTS.row_bytes(),
            |b, (s, p)| {
                let [running, sleeping, blocked, zombie, other] = state_counts(p);
                envelope(b, s)
                    .push_bind(p.processes.len() as u32)
                    .push_bind(running)
                    .push_bind(sleeping)
                    .push_bind(blocked)
                    .push_bind(zombie)
                    .push_bind(other);
            },
        )
        .await?;
        let history_rows: Vec<_> = plan
            .procs
            .iter()
            .flat_map(|(s, body)| {
                history(body, self.history_top)
                    .into_iter()
                    .map(move |p| (*s, p))
            })
            .collect();
        insert(
            conn,
            packet,
            &PROCESS_SAMPLES,
            &history_rows,
            |_| PROCESS_SAMPLES.row_bytes(),
            |b, (s, p)| {
                envelope(b, s)
                    .push_bind(p.pid)
                    .push_bind(fit(&p.name, 255))
                    .push_bind(fit(&p.user, 64))
                    .push_bind(state_letter(&p.state))
                    .push_bind(p.rss)
                    .push_bind(p.mem_pct)
                    .push_bind(p.cpu_pct)
                    .push_bind(p.threads);
            },
        )
        .await?;
        insert(
            conn,
            packet,
            &HOST_EVENTS,
            &plan.lifecycle,
            |_| HOST_EVENTS.row_bytes(),
            |b, s| {
                let detail = match &s.body {
                    SampleBody::Hello(h) => format!(
                        "agent {} on {} ({}), source {}, {} CPUs",
                        h.agent_version, h.os, h.kernel, h.source, h.cpus
                    ),
                    SampleBody::Bye(bye) => {
                        format!("{}, {} samples dropped", bye.reason, bye.dropped)
                    }
                    _ => String::new(),
                };
                envelope(b, s)
                    .push_bind(s.kind().as_str())
                    .push_bind(fit(&detail, 255).to_owned());
            },
        )
        .await?;
        // Texts cut to the columns so a long claim in a request cannot make
        // MySQL reject the batch.
        insert(
            conn,
            packet,
            &COMMANDS,
            &plan.command_events,
            // 1,678 characters of text in all, of 4 bytes at most.
            |_| COMMANDS.row_bytes() + 4 * 1_678,
            |b, (s, e)| {
                envelope(b, s)
                    .push_bind(fit(&e.action, 64))
                    .push_bind(e.pid)
                    .push_bind(e.name.as_deref().map(|n| fit(n, 64)))
                    .push_bind(e.signal.as_deref().map(|n| fit(n, 16)))
                    .push_bind(e.requested_by.as_deref().map(|r| fit(r, 255)))
                    .push_bind(e.nats_user.as_deref().map(|u| fit(u, 255)))
                    .push_bind(e.outcome.as_str())
                    .push_bind(e.error.as_deref().map(|r| fit(r, 1024)));
            },
        )
        .await?;
        insert(
            conn,
            packet,
            &PUBLISHER_HEALTH,
            &plan.health,
            |_| PUBLISHER_HEALTH.row_bytes(),
            |b, (s, h)| {
                envelope(b, s)
                    .push_bind(h.dropped)
                    .push_bind(h.outbox_depth)
                    .push_bind(h.reconnects)
                    .push_bind(fit(&h.source, 16))
                    .push_bind(fit(&h.agent_version, 64));
            },
        )
        .await
    }
}

/// Binds host, boot, seq and ts, the first four columns of every sample
/// table.
fn envelope<'b, 'qb, 'args>(
    b: &'b mut Separated<'qb, 'args, MySql, &'static str>,
    s: &'args Sample,
) -> &'b mut Separated<'qb, 'args, MySql, &'static str> {
    b.push_bind(&s.host)
        .push_bind(&s.boot)
        .push_bind(s.seq)
        .push_bind(datetime(s.ts))
}

/// Whether a server variable read as text is on: `1`/`ON`, or any other
/// mode but off (so a mode a newer server adds counts as read-only: the
/// sink waits rather than dead-letter).
fn is_on(value: &str) -> bool {
    let value = value.trim();
    !(value == "0" || value.eq_ignore_ascii_case("OFF"))
}

#[cfg(test)]
mod tests {
    use super::is_on;

    #[test]
    fn read_only_is_off_only_for_zero_or_off() {
        for off in ["0", "OFF", "off", " 0 "] {
            assert!(!is_on(off), "{off:?}");
        }
        for on in ["1", "ON", "on", "NO_LOCK"] {
            assert!(is_on(on), "{on:?}");
        }
    }
}
