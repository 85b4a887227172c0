//! Writes a batch of samples in one transaction.
//!
//! Every sample table is keyed on (host, boot, seq) and every insert ends
//! in `ON DUPLICATE KEY UPDATE seq = seq`, a no-op: a redelivered message
//! finds its row and changes nothing. Rows go in multi-row INSERTs of a fixed
//! size, so MySQL sees few statement shapes and sqlx reuses their prepared
//! statements.

use std::borrow::Cow;
use std::collections::HashMap;

use chrono::NaiveDateTime;
use sqlx::mysql::{MySql, MySqlConnection, MySqlPool};
use sqlx::query_builder::Separated;
use sqlx::{Connection, QueryBuilder, Row};
use vigia_schema::sample::{DEFAULT_INTERVAL, DEFAULT_PROCS_INTERVAL};
use vigia_schema::{ProcsBody, Sample, SampleBody};

use super::lists::{process_list_json, state_letter, ProcessLists};
use super::rows::{datetime, fit, history, state_counts, Plan};

/// MySQL's limit on placeholders in one statement is 65,535.
const MAX_PARAMS: usize = 60_000;
const MAX_ROWS: usize = 1_000;
/// Bytes of variable-size values (JSON) a multi-row statement aims at:
/// larger statements gain nothing and hold locks longer. One row may be
/// larger, up to what the server takes ([`PacketLimit::row_budget`]).
const MAX_STATEMENT_BYTES: usize = 4 << 20;
/// The protocol's framing, the statement's text and the fixed-size values
/// around the variable ones, kept free in every packet.
const PACKET_HEADROOM: usize = 64 << 10;
/// How long the probe may take to connect and answer.
const PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// Why a write failed. The writer does not judge whether MySQL is away or
/// the data is bad: an error number tells too little (issue 11: an
/// unlisted one stalled the sink for good). The caller asks MySQL itself
/// with [`Writer::probe`] and narrows the batch down when it answers.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// A statement failed; `at` names its table (or the step: `begin`,
    /// `commit`, `lock hosts`).
    #[error("{at}: {source}")]
    Statement {
        at: &'static str,
        source: sqlx::Error,
    },
    /// One row is more than a statement can carry: the server's
    /// max_allowed_packet, less headroom. No retry can help.
    #[error(
        "{at}: one row of {bytes} bytes is more than the {budget} bytes a statement may carry \
         (max_allowed_packet {packet})"
    )]
    TooLarge {
        at: &'static str,
        bytes: usize,
        budget: usize,
        packet: usize,
    },
    /// The write did not finish in time.
    #[error("the write took longer than {0:?}")]
    TimedOut(std::time::Duration),
}

impl WriteError {
    /// Whether no row was sent at all: the sink's own pool had no
    /// connection to give, or the transaction did not begin. Never the
    /// data's fault, so never a reason to dead-letter anything.
    pub fn sent_nothing(&self) -> bool {
        matches!(
            self,
            WriteError::Statement {
                source: sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed,
                ..
            } | WriteError::Statement { at: "begin", .. }
        )
    }

    /// Whether the error itself shows MySQL up, so no probe is needed:
    /// MySQL answered the statement with an error of its own, or the
    /// writer refused a row before sending it. Not SQLSTATE classes 08
    /// ("connection exception") and 70 ("interrupted"), which a server
    /// going down sends to the statements it cuts off; and a dropped
    /// connection or a timeout shows nothing: only a probe tells.
    pub fn shows_mysql_up(&self) -> bool {
        match self {
            WriteError::TooLarge { .. } => true,
            WriteError::Statement {
                source: sqlx::Error::Database(db),
                ..
            } => db
                .code()
                .is_none_or(|state| !(state.starts_with("08") || state.starts_with("70"))),
            _ => false,
        }
    }

    /// Whether the same rows may go through if written again a moment
    /// later, MySQL being up: the errors MySQL itself says to retry
    /// ("try restarting transaction": a deadlock or serialisation failure,
    /// SQLSTATE class 40, and a lock wait timeout, 1205), a statement
    /// interrupted (class 70) or cut off with its connection (class 08, or
    /// no error from MySQL at all), a timeout, and a failed commit. Any
    /// other error MySQL sends about a sample written alone is about the
    /// sample: retrying it only delays the batch (issue 11's review: 400
    /// refused samples tried three times each stalled storage for 247 s).
    pub fn may_pass_later(&self) -> bool {
        match self {
            WriteError::TooLarge { .. } => false,
            WriteError::TimedOut(_) | WriteError::Statement { at: "commit", .. } => true,
            WriteError::Statement {
                source: sqlx::Error::Database(db),
                ..
            } => {
                let class = db
                    .code()
                    .map(|state| state.chars().take(2).collect::<String>());
                matches!(class.as_deref(), Some("40" | "70" | "08"))
                    || self.mysql_number() == Some(ER_LOCK_WAIT_TIMEOUT)
            }
            WriteError::Statement { .. } => true,
        }
    }

    /// MySQL's own error number, when MySQL sent one.
    pub fn mysql_number(&self) -> Option<u16> {
        match self {
            WriteError::Statement {
                source: sqlx::Error::Database(db),
                ..
            } => db
                .try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>()
                .map(|e| e.number()),
            _ => None,
        }
    }
}

/// "Lock wait timeout exceeded; try restarting transaction" (SQLSTATE
/// HY000, so its class does not say it).
const ER_LOCK_WAIT_TIMEOUT: u16 = 1205;

/// Names the statement a sqlx error came from.
pub(super) trait At<T> {
    fn at(self, at: &'static str) -> Result<T, WriteError>;
}

impl<T> At<T> for Result<T, sqlx::Error> {
    fn at(self, at: &'static str) -> Result<T, WriteError> {
        self.map_err(|source| WriteError::Statement { at, source })
    }
}

/// The table a statement writes: the word after `INTO`.
pub(super) fn table_of(head: &'static str) -> &'static str {
    let mut words = head.split_whitespace();
    while let Some(word) = words.next() {
        if word.eq_ignore_ascii_case("INTO") {
            return words.next().unwrap_or(head);
        }
    }
    head
}

/// The server's max_allowed_packet, as last read: at the first write, and
/// by every probe (a failed write is followed by one, and a reconnect by a
/// failed write), so a server restarted with another value is followed.
#[derive(Debug, Clone, Default)]
pub struct PacketLimit(std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl PacketLimit {
    /// The packet size in bytes; 0 until read.
    pub fn get(&self) -> usize {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn set(&self, bytes: u64) {
        let bytes = usize::try_from(bytes).unwrap_or(usize::MAX);
        self.0.store(bytes, std::sync::atomic::Ordering::Relaxed);
    }

    /// Most bytes of values one row may bring to a statement.
    fn row_budget(&self) -> usize {
        let packet = self.get();
        packet
            .saturating_sub(packet / 8)
            .saturating_sub(PACKET_HEADROOM)
    }

    /// Most bytes of values a multi-row statement gathers.
    fn statement_budget(&self) -> usize {
        self.row_budget().min(MAX_STATEMENT_BYTES)
    }
}

async fn read_packet(conn: &mut MySqlConnection) -> Result<u64, sqlx::Error> {
    sqlx::query_scalar::<_, u64>("SELECT @@max_allowed_packet")
        .fetch_one(conn)
        .await
}

#[derive(Clone)]
pub struct Writer {
    pool: MySqlPool,
    history_top: usize,
    packet: PacketLimit,
}

/// A host's row as this batch leaves it.
struct HostRow<'a> {
    host: &'a &'a str,
    boot: String,
    status: String,
    first_seen: NaiveDateTime,
    last_seen: NaiveDateTime,
    offline_since: Option<NaiveDateTime>,
    /// The hello of the current boot, when this batch has it.
    hello: Option<&'a vigia_schema::HelloBody>,
    interval_ms: u32,
    procs_interval_ms: u32,
    /// The procs snapshot that replaces the stored process list.
    procs: Option<&'a Sample>,
}

/// For each host of a batch, its newest procs snapshot stored before it.
pub type ProcsBefore<'a> = HashMap<&'a str, Option<NaiveDateTime>>;

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

/// The columns of `hosts` a batch needs to know before it updates them.
struct StoredHost {
    last_seen: NaiveDateTime,
    first_seen: NaiveDateTime,
    boot: String,
    status: String,
    offline_since: Option<NaiveDateTime>,
    procs_ts: Option<NaiveDateTime>,
    interval_ms: u32,
    procs_interval_ms: u32,
}

impl Writer {
    pub fn new(pool: MySqlPool, history_top: usize) -> Self {
        Self {
            pool,
            history_top,
            packet: PacketLimit::default(),
        }
    }

    /// The server's max_allowed_packet as last read (0 before any write).
    pub fn max_allowed_packet(&self) -> usize {
        self.packet.get()
    }

    /// Whether MySQL answers: a cheap query on a fresh connection (not one
    /// from the pool, which may be the broken one), within a few seconds.
    /// Reads max_allowed_packet on the way. A failed write followed by an
    /// answering probe means the data is suspect, not MySQL.
    pub async fn probe(&self) -> Result<(), sqlx::Error> {
        let options = self.pool.connect_options();
        let answer = async {
            let mut conn = MySqlConnection::connect_with(&options).await?;
            let packet = read_packet(&mut conn).await;
            let _ = conn.close().await;
            packet
        };
        let packet = tokio::time::timeout(PROBE_TIMEOUT, answer)
            .await
            .map_err(|_| sqlx::Error::PoolTimedOut)??;
        self.packet.set(packet);
        Ok(())
    }

    /// Writes every sample, or none of them.
    pub async fn write(&self, samples: &[&Sample]) -> Result<(), WriteError> {
        self.write_prepared(samples, &ProcessLists::default()).await
    }

    /// [`Writer::write`] with the batch's process lists already encoded
    /// (a list missing from `lists` is encoded here).
    pub async fn write_prepared(
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
            self.packet
                .set(read_packet(&mut tx).await.at("max_allowed_packet")?);
        }
        let (procs_winners, procs_before) = self.write_hosts(&mut tx, &plan).await?;
        super::boots::record(&mut tx, samples).await?;
        let hosts = steps.next();
        self.write_processes(&mut tx, &procs_winners, lists).await?;
        let process_lists = steps.next();
        self.write_samples(&mut tx, &plan).await?;
        let samples = steps.next();
        super::rollup::write(&mut tx, &plan, &procs_before).await?;
        let rollup = steps.next();
        tx.commit().await.at("commit")?;
        let commit = steps.next();
        // Where a write's time goes (RUST_LOG=vigia_sink=trace).
        tracing::trace!(
            hosts,
            process_lists,
            samples,
            rollup,
            commit,
            "batch written (ms)"
        );
        Ok(())
    }

    /// Locks and updates the batch's hosts; returns each host's newest
    /// procs snapshot in this batch that is newer than the one stored, and
    /// for every host the time of the newest snapshot stored before it.
    async fn write_hosts<'a>(
        &self,
        conn: &mut MySqlConnection,
        plan: &Plan<'a>,
    ) -> Result<(Vec<(&'a Sample, &'a ProcsBody)>, ProcsBefore<'a>), WriteError> {
        let names: Vec<&str> = plan.hosts.keys().copied().collect();
        let mut stored: HashMap<String, StoredHost> = HashMap::new();
        // In host order, chunk after chunk: the same lock order in every sink.
        for part in names.chunks(MAX_ROWS) {
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
                            status: row.try_get("status")?,
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

        let mut winners = Vec::new();
        let procs_before: ProcsBefore = plan
            .hosts
            .keys()
            .map(|host| (*host, stored.get(*host).and_then(|o| o.procs_ts)))
            .collect();
        let mut rows = Vec::with_capacity(plan.hosts.len());
        for (host, seen) in &plan.hosts {
            let old = stored.get(*host);
            let newest_ts = datetime(seen.newest.ts);
            let first_seen = old.map_or(datetime(seen.oldest_ts), |o| {
                o.first_seen.min(datetime(seen.oldest_ts))
            });
            // The newest sample decides boot and status, unless MySQL
            // already holds a newer one (a late redelivery).
            let (last_seen, boot, status, offline_since) = match old {
                Some(o) if o.last_seen > newest_ts => (
                    o.last_seen,
                    o.boot.clone(),
                    o.status.clone(),
                    o.offline_since,
                ),
                _ if seen.newest_is_bye() => (
                    newest_ts,
                    seen.newest.boot.clone(),
                    "offline".to_owned(),
                    Some(newest_ts),
                ),
                _ => (
                    newest_ts,
                    seen.newest.boot.clone(),
                    "online".to_owned(),
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
            let newer_procs = seen.procs.filter(|(s, _)| {
                old.and_then(|o| o.procs_ts)
                    .is_none_or(|stored| datetime(s.ts) > stored)
            });
            winners.extend(newer_procs);
            let procs = newer_procs.map(|(s, _)| s);
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
                procs,
            });
        }
        insert(
            conn,
            &self.packet,
            "INSERT INTO hosts (host, boot, status, first_seen, last_seen, offline_since, \
             agent_version, kernel, os, cpus, ram_total, booted_at, source, interval_ms, \
             procs_interval_ms, procs_boot, procs_seq, procs_ts) ",
            18,
            " ON DUPLICATE KEY UPDATE boot = VALUES(boot), status = VALUES(status), \
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
            &rows,
            |b, r| {
                let hello = r.hello;
                b.push_bind(*r.host)
                    .push_bind(&r.boot)
                    .push_bind(&r.status)
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
        Ok((winners, procs_before))
    }

    /// Replaces the latest process list of each host that has a newer one:
    /// one row per host, the list as JSON (see migration 0004).
    async fn write_processes(
        &self,
        conn: &mut MySqlConnection,
        winners: &[(&Sample, &ProcsBody)],
        encoded: &ProcessLists,
    ) -> Result<(), WriteError> {
        let lists: Vec<(&Sample, Cow<str>)> = winners
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
        insert_sized(
            conn,
            &self.packet,
            "REPLACE INTO process_lists (host, boot, seq, ts, processes) ",
            5,
            "",
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
        const NO_OP: &str = " ON DUPLICATE KEY UPDATE seq = seq";
        insert_sized(
            conn,
            &self.packet,
            "INSERT INTO cpu_samples (host, boot, seq, ts, busy_pct, user_pct, system_pct, \
             iowait_pct, steal_pct, idle_pct, load1, load5, load15, cpus, per_cpu_busy_pct) ",
            15,
            NO_OP,
            &plan.cpu,
            // A per-CPU value is at most 15 bytes of JSON ("-1.2345678e-10,").
            |(_, c)| 15 * BYTES_PER_COLUMN + 16 * c.per_cpu_busy_pct.len(),
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
            &self.packet,
            "INSERT INTO ram_samples (host, boot, seq, ts, total, used, free, available, \
             buffers, cached, swap_total, swap_free) ",
            12,
            NO_OP,
            &plan.ram,
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
            &self.packet,
            "INSERT INTO procs_snapshots (host, boot, seq, ts, processes, running, sleeping, \
             blocked, zombie, other) ",
            10,
            NO_OP,
            &plan.procs,
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
            &self.packet,
            "INSERT INTO process_samples (host, boot, seq, ts, pid, name, user, state, rss, \
             mem_pct, cpu_pct, threads) ",
            12,
            " ON DUPLICATE KEY UPDATE pid = pid",
            &history_rows,
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
            &self.packet,
            "INSERT INTO host_events (host, boot, seq, ts, kind, detail) ",
            6,
            NO_OP,
            &plan.events,
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
        // The audit trail of process control (schemas/README.md, "Process control"); texts cut
        // to the columns so a long claim in a request cannot make MySQL
        // reject the batch.
        insert_sized(
            conn,
            &self.packet,
            "INSERT INTO commands (host, boot, seq, ts, action, pid, process_name, signal_name, \
             requested_by, nats_user, outcome, error) ",
            12,
            NO_OP,
            &plan.commands,
            // Texts cut to their columns: 1,678 characters of 4 bytes at most.
            |_| 12 * BYTES_PER_COLUMN + 4 * 1_678,
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
        // The publishers' own state (0007_pipeline_health.sql).
        insert(
            conn,
            &self.packet,
            "INSERT INTO publisher_health (host, boot, seq, ts, dropped, outbox_depth, \
             reconnects, source, agent_version) ",
            9,
            NO_OP,
            &plan.health,
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

/// Binds host, boot, seq and ts, the first four columns of every sample table.
fn envelope<'b, 'qb, 'args>(
    b: &'b mut Separated<'qb, 'args, MySql, &'static str>,
    s: &'args Sample,
) -> &'b mut Separated<'qb, 'args, MySql, &'static str> {
    b.push_bind(&s.host)
        .push_bind(&s.boot)
        .push_bind(s.seq)
        .push_bind(datetime(s.ts))
}

/// A sampling interval as stored: INT UNSIGNED milliseconds.
fn clamp_ms(ms: u64) -> u32 {
    ms.clamp(1, u32::MAX as u64) as u32
}

/// What [`insert`] counts for a row of `columns` values: more than any
/// row of fixed-size values and strings cut to their columns takes.
const BYTES_PER_COLUMN: usize = 200;

/// Multi-row INSERTs of `rows`, in chunks that keep under MySQL's
/// placeholder limit and under the server's max_allowed_packet.
#[allow(clippy::too_many_arguments)]
async fn insert<'q, T>(
    conn: &mut MySqlConnection,
    packet: &PacketLimit,
    head: &'static str,
    columns: usize,
    tail: &'static str,
    rows: &'q [T],
    bind: impl Fn(&mut Separated<'_, 'q, MySql, &'static str>, &'q T),
) -> Result<(), WriteError> {
    let row_bytes = columns * BYTES_PER_COLUMN;
    insert_sized(conn, packet, head, columns, tail, rows, |_| row_bytes, bind).await
}

/// [`insert`] for rows whose size varies a lot (JSON lists): a statement
/// also ends once its rows' `size` adds up to the statement budget (at
/// most [`MAX_STATEMENT_BYTES`]), so it stays under the server's
/// max_allowed_packet however many hosts a batch holds; a row that cannot
/// fit on its own is [`WriteError::TooLarge`], before MySQL sees it.
#[allow(clippy::too_many_arguments)]
async fn insert_sized<'q, T>(
    conn: &mut MySqlConnection,
    packet: &PacketLimit,
    head: &'static str,
    columns: usize,
    tail: &'static str,
    rows: &'q [T],
    size: impl Fn(&T) -> usize,
    bind: impl Fn(&mut Separated<'_, 'q, MySql, &'static str>, &'q T),
) -> Result<(), WriteError> {
    let table = table_of(head);
    let most_rows = (MAX_PARAMS / columns).min(MAX_ROWS);
    let (row_budget, statement_budget) = (packet.row_budget(), packet.statement_budget());
    let mut rest = rows;
    while !rest.is_empty() {
        let mut bytes = size(&rest[0]);
        if bytes > row_budget {
            return Err(WriteError::TooLarge {
                at: table,
                bytes,
                budget: row_budget,
                packet: packet.get(),
            });
        }
        let mut n = 1;
        while n < rest.len() && n < most_rows && bytes + size(&rest[n]) <= statement_budget {
            bytes += size(&rest[n]);
            n += 1;
        }
        let (part, tail_rows) = rest.split_at(n);
        let mut query = QueryBuilder::<'q, MySql>::new(head);
        query.push_values(part, |mut b, row| bind(&mut b, row));
        query.push(tail);
        query.build().execute(&mut *conn).await.at(table)?;
        rest = tail_rows;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_statement_is_named_by_its_table() {
        assert_eq!(
            table_of("INSERT INTO cpu_samples (host, boot) "),
            "cpu_samples"
        );
        assert_eq!(
            table_of("REPLACE INTO process_lists (host) "),
            "process_lists"
        );
    }

    #[test]
    fn budgets_follow_the_servers_packet() {
        let packet = PacketLimit::default();
        assert_eq!(packet.row_budget(), 0, "nothing fits before it is read");
        packet.set(16 << 20);
        assert_eq!(packet.row_budget(), (14 << 20) - PACKET_HEADROOM);
        assert_eq!(packet.statement_budget(), MAX_STATEMENT_BYTES);
        packet.set(1 << 20);
        assert_eq!(packet.statement_budget(), (7 << 17) - PACKET_HEADROOM);
    }
}
