//! Which minutes of `host_minutes` a batch recomputes now, and which wait.
//!
//! Recomputing every (host, minute) a batch touches, on every batch, was
//! the largest share of a batch's write (84 of 157 ms at 1,000 hosts,
//! docs/scale.md): a host's current minute was recomputed from the raw
//! tables once per batch, a hundred times or more before it closed, each
//! result overwritten a moment later. And recomputing a minute the moment
//! it closes puts every host's in the same second's batches, a spike the
//! latency's p99 sees. So a minute is recomputed
//!
//! - **when the host has moved on past it by its settling lag**: a minute
//!   is *settled* once the host's `last_seen` (its newest sample of any
//!   kind) is past the minute's end plus a lag between 0 and 60 s that is
//!   fixed per host ([`lag`]), which spreads a fleet's settling over the
//!   minute instead of its first second. The batch that moves `last_seen`
//!   past that point recomputes every minute it settles, whether or not it
//!   has samples in them: under the host's row lock, after every sample of
//!   them that any sink committed. This rule reads nothing but `last_seen`,
//!   so it holds across sinks and restarts;
//! - **when a late or redelivered sample reaches a settled minute**, at
//!   once;
//! - **before it settles** (the open minute and the one before), at most
//!   once per host every `refresh`, jittered per host between half and all
//!   of it, by the batch that finds the host due, or by the sink's refresh
//!   tick for a host that has gone quiet ([`OpenMinutes`]).
//!
//! So only a host's last two minutes are ever stale, and a sink that starts
//! recomputes them for every host heard from in the last day, in case a
//! sink stopped with skips it had not refreshed (killed, or scaled in) and
//! the host went quiet at the same time.
//!
//! A `refresh` of zero recomputes every touched minute on every batch: the
//! rollup is then exact at every commit. That is [`super::Writer::new`]'s
//! default, for code that writes and reads back at once; the sink's
//! `--rollup-refresh` defaults to 10 s, what a Grafana refresh shows.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::NaiveDateTime;

use super::rollup::{floor, merge, Range, MINUTE_NS};
use super::rows::Plan;

/// Each host's `last_seen` as stored before the batch (None: a new host).
pub(super) type SeenBefore<'a> = HashMap<&'a str, Option<NaiveDateTime>>;

/// What this sink remembers of the minutes it left for later: when it
/// last refreshed each host's, and the oldest it has skipped since.
///
/// Bounded by the hosts heard from within the last `refresh`: an entry
/// that is neither stale nor recent says nothing an absent one does not,
/// and [`OpenMinutes::prune`] drops it.
#[derive(Debug, Default)]
pub(crate) struct OpenMinutes {
    refresh: Duration,
    hosts: Mutex<HashMap<String, Open>>,
    /// The hosts whose last minutes a stopped sink may have left stale,
    /// recomputed once, at start, a chunk a tick.
    recovery: Mutex<Recovery>,
}

/// Where the start's recovery stands.
#[derive(Debug, Default)]
enum Recovery {
    /// The hosts are still to be read.
    #[default]
    Unread,
    /// These hosts are left.
    Left(Vec<String>),
}

#[derive(Debug, Clone, Copy)]
struct Open {
    /// When this sink last refreshed the host's unsettled minutes.
    refreshed: Instant,
    /// The oldest minute a batch skipped since, if any.
    stale_from: Option<i64>,
}

/// The minutes a batch recomputes, and what to remember once it commits.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct MinutePlan<'a> {
    /// Runs of minutes per host, sorted by host and time.
    pub recompute: Vec<Range<'a>>,
    /// Hosts whose unsettled minutes this batch refreshes.
    pub refreshed: Vec<&'a str>,
    /// Hosts whose unsettled minutes this batch touched and left for
    /// later, each with the oldest it left.
    pub skipped: Vec<(&'a str, i64)>,
}

impl OpenMinutes {
    pub fn new(refresh: Duration) -> Self {
        Self {
            refresh,
            ..Self::default()
        }
    }

    /// Whether `host`'s unsettled minutes may be refreshed again at `now`.
    fn due(hosts: &HashMap<String, Open>, refresh: Duration, host: &str, now: Instant) -> bool {
        hosts.get(host).is_none_or(|open| {
            now.saturating_duration_since(open.refreshed) >= jittered(refresh, host)
        })
    }

    /// Which minutes `plan` recomputes, given each host's `last_seen`
    /// before it: the minutes it settles, the settled minutes it touched
    /// (late samples), and its unsettled minutes if the host is due.
    pub(super) fn plan<'a>(
        &self,
        plan: &Plan<'a>,
        before: &SeenBefore<'_>,
        now: Instant,
    ) -> MinutePlan<'a> {
        let mut touched: HashMap<&str, BTreeSet<i64>> = HashMap::new();
        let stamps = plan
            .cpu
            .iter()
            .map(|(s, _)| s)
            .chain(plan.ram.iter().map(|(s, _)| s))
            .chain(plan.procs.iter().map(|(s, _)| s));
        for s in stamps {
            touched
                .entry(s.host.as_str())
                .or_default()
                .insert(minute(s.ts));
        }
        let hosts = self.hosts.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = MinutePlan::default();
        let mut minutes: Vec<Range<'a>> = Vec::new();
        for (&host, seen) in &plan.hosts {
            let stored = before
                .get(host)
                .copied()
                .flatten()
                .and_then(|t| t.and_utc().timestamp_nanos_opt());
            let newest = stored.map_or(seen.newest.ts, |s| s.max(seen.newest.ts));
            // Minutes before this one are settled once the batch is in.
            let settled = settled_before(host, newest);
            if let Some(from) = stored.map(|s| settled_before(host, s)) {
                minutes.push(Range {
                    host,
                    from,
                    to: settled,
                });
            }
            let mine = touched.remove(host).unwrap_or_default();
            let (late, unsettled): (Vec<i64>, Vec<i64>) =
                mine.into_iter().partition(|&m| m < settled);
            minutes.extend(late.into_iter().map(|m| Range {
                host,
                from: m,
                to: m + MINUTE_NS,
            }));
            let stale_from = hosts.get(host).and_then(|open| open.stale_from);
            let Some(from) = unsettled
                .first()
                .copied()
                .into_iter()
                .chain(stale_from)
                .min()
            else {
                continue;
            };
            if Self::due(&hosts, self.refresh, host, now) {
                let open = minute(newest);
                minutes.push(Range {
                    host,
                    from,
                    to: open + MINUTE_NS,
                });
                out.refreshed.push(host);
            } else if let Some(&first) = unsettled.first() {
                out.skipped.push((host, first));
            }
        }
        out.recompute = merge(minutes.into_iter().filter(|r| r.from < r.to).collect());
        out
    }

    /// Remembers what a committed batch did (`at`: when it was planned).
    pub(super) fn committed(&self, done: &MinutePlan<'_>, at: Instant) {
        let mut hosts = self.hosts.lock().unwrap_or_else(|e| e.into_inner());
        for &host in &done.refreshed {
            hosts.insert(
                host.to_owned(),
                Open {
                    refreshed: at,
                    stale_from: None,
                },
            );
        }
        for &(host, from) in &done.skipped {
            // A skipped host has an entry: it was not due.
            let open = hosts.entry(host.to_owned()).or_insert(Open {
                refreshed: at,
                stale_from: None,
            });
            open.stale_from = Some(open.stale_from.map_or(from, |f| f.min(from)));
        }
    }

    /// Hosts with skipped minutes that are due a refresh at `now`, or all
    /// of them (`due_at` None), each with the oldest minute skipped.
    pub(super) fn stale(&self, due_at: Option<Instant>) -> Vec<(String, i64)> {
        let hosts = self.hosts.lock().unwrap_or_else(|e| e.into_inner());
        let mut due: Vec<(String, i64)> = hosts
            .iter()
            .filter(|(host, _)| due_at.is_none_or(|now| Self::due(&hosts, self.refresh, host, now)))
            .filter_map(|(host, open)| Some((host.clone(), open.stale_from?)))
            .collect();
        due.sort();
        due
    }

    /// Remembers that `refreshed` hosts' minutes were recomputed from the
    /// minute given (None: from [`unsettled_from`]), planned at `at`.
    pub(super) fn refreshed(&self, refreshed: &[(String, Option<i64>)], at: Instant) {
        let mut hosts = self.hosts.lock().unwrap_or_else(|e| e.into_inner());
        for (host, from) in refreshed {
            if let Some(open) = hosts.get_mut(host) {
                // Skipped since from an older minute (a batch between the
                // plan and this): still stale.
                open.stale_from = open
                    .stale_from
                    .filter(|&f| from.is_some_and(|from| f < from));
                open.refreshed = open.refreshed.max(at);
            }
        }
    }

    /// Forgets hosts that are neither stale nor refreshed recently.
    pub(super) fn prune(&self, now: Instant) {
        let mut hosts = self.hosts.lock().unwrap_or_else(|e| e.into_inner());
        let refresh = self.refresh;
        hosts.retain(|_, open| {
            open.stale_from.is_some() || now.saturating_duration_since(open.refreshed) < refresh
        });
    }

    /// Whether every commit leaves the rollups exact (a refresh of zero).
    pub(super) fn at_every_commit(&self) -> bool {
        self.refresh.is_zero()
    }

    /// Whether the start's recovery still has to read its hosts.
    pub(super) fn recovery_unread(&self) -> bool {
        matches!(
            *self.recovery.lock().unwrap_or_else(|e| e.into_inner()),
            Recovery::Unread
        )
    }

    /// The hosts the start's recovery must recompute.
    pub(super) fn recovery_read(&self, mut hosts: Vec<String>) {
        // Taken from the end: keep host order.
        hosts.reverse();
        *self.recovery.lock().unwrap_or_else(|e| e.into_inner()) = Recovery::Left(hosts);
    }

    /// Up to `n` hosts of the recovery, taken off it.
    pub(super) fn recovery_take(&self, n: usize) -> Vec<String> {
        match &mut *self.recovery.lock().unwrap_or_else(|e| e.into_inner()) {
            Recovery::Unread => Vec::new(),
            Recovery::Left(left) => {
                let from = left.len().saturating_sub(n);
                let mut taken = left.split_off(from);
                taken.reverse();
                taken
            }
        }
    }

    /// Puts back hosts whose recompute failed.
    pub(super) fn recovery_put_back(&self, hosts: Vec<String>) {
        if let Recovery::Left(left) = &mut *self.recovery.lock().unwrap_or_else(|e| e.into_inner())
        {
            left.extend(hosts.into_iter().rev());
        }
    }

    /// How many hosts this sink remembers (for tests of the bound).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.hosts.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

/// The start of the minute of `ns`.
pub(super) fn minute(ns: i64) -> i64 {
    floor(ns, MINUTE_NS)
}

/// The first minute of `host` not yet settled when its `last_seen` is
/// `ns`: every minute before it ended at least [`lag`] before `ns`.
fn settled_before(host: &str, ns: i64) -> i64 {
    minute(ns.saturating_sub(lag(host)))
}

/// The oldest minute that may be stale for a host whose `last_seen` is
/// `ns`, whatever any sink skipped: the minute before its open one, since
/// a minute settles at most 60 s after it ends.
pub(super) fn unsettled_from(ns: i64) -> i64 {
    minute(ns) - MINUTE_NS
}

/// A host's settling lag for minutes, in nanoseconds: between 0 and 60 s,
/// the same for a host every time, in every sink.
fn lag(host: &str) -> i64 {
    lag_under(host, MINUTE_NS)
}

/// A lag of `host` in [0, `up_to`) nanoseconds, whole milliseconds: the
/// same for a host every time, in every sink.
pub(super) fn lag_under(host: &str, up_to: i64) -> i64 {
    let ms = (up_to / 1_000_000).max(1) as u64;
    (spread(host) % ms) as i64 * 1_000_000
}

/// A number from `host` alone, the same in every sink, run and version
/// (std's hasher may change between Rust releases, and two sinks must
/// agree on a host's lag): FNV-1a, then MurmurHash3's finalizer so that
/// names differing in their last character land far apart.
fn spread(host: &str) -> u64 {
    let mut h = host.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// `refresh` scaled by a per-host factor between 1/2 and 1, the same for a
/// host every time: hosts that start together spread their refreshes over
/// half the period instead of all falling in one batch.
fn jittered(refresh: Duration, host: &str) -> Duration {
    let parts = 256 + (spread(host) >> 32) as u32 % 256;
    refresh * parts / 512
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::rows::datetime;
    use vigia_schema::{CpuBody, HealthBody, Sample, SampleBody, SCHEMA_VERSION};

    const M: i64 = MINUTE_NS;
    const S: i64 = 1_000_000_000;
    const T: i64 = 1_700_000_000 * S / M * M;

    fn sample(host: &str, ts: i64, body: SampleBody) -> Sample {
        Sample {
            v: SCHEMA_VERSION,
            host: host.into(),
            boot: "boot".into(),
            seq: ts as u64,
            ts,
            body,
        }
    }

    fn cpu(host: &str, ts: i64) -> Sample {
        sample(host, ts, SampleBody::Cpu(CpuBody::default()))
    }

    fn at(host: &str, from: i64, to: i64) -> Range<'_> {
        Range { host, from, to }
    }

    /// A host whose settling lag is within `seconds`, and its lag.
    fn host_with_lag(seconds: std::ops::Range<i64>) -> (String, i64) {
        (0..)
            .map(|i| format!("host-{i}"))
            .map(|h| {
                let l = lag(&h);
                (h, l)
            })
            .find(|(_, l)| (seconds.start * S..seconds.end * S).contains(l))
            .expect("some host")
    }

    fn write<'a>(
        open: &OpenMinutes,
        batch: &'a [Sample],
        before: &SeenBefore,
        now: Instant,
    ) -> MinutePlan<'a> {
        let refs: Vec<&Sample> = batch.iter().collect();
        let done = open.plan(&Plan::new(&refs), before, now);
        open.committed(&done, now);
        done
    }

    #[test]
    fn a_new_host_gets_its_minutes_at_once_then_waits_for_the_refresh() {
        // Its minutes settle 20 to 60 s after they end: past the test's.
        let (a, _) = host_with_lag(20..60);
        let a = a.as_str();
        let open = OpenMinutes::new(Duration::from_secs(10));
        let now = Instant::now();
        let first = [cpu(a, T + S), cpu(a, T + M + S)];
        let done = write(&open, &first, &SeenBefore::new(), now);
        assert_eq!(done.recompute, vec![at(a, T, T + 2 * M)]);
        assert_eq!(done.refreshed, vec![a]);

        // One second later, the same open minute: skipped, and stale.
        let second = [cpu(a, T + M + 2 * S)];
        let before: SeenBefore = [(a, Some(datetime(T + M + S)))].into_iter().collect();
        let later = now + Duration::from_secs(1);
        let done = write(&open, &second, &before, later);
        assert_eq!(done.recompute, vec![]);
        assert_eq!(done.skipped, vec![(a, T + M)]);
        assert!(open.stale(Some(later)).is_empty(), "not due yet");
        assert_eq!(open.stale(None), vec![(a.to_owned(), T + M)]);
        assert_eq!(
            open.stale(Some(now + Duration::from_secs(10))),
            vec![(a.to_owned(), T + M)]
        );

        // Ten seconds on, a batch finds it due and recomputes from the
        // oldest minute skipped.
        let third = [cpu(a, T + M + 12 * S)];
        let before: SeenBefore = [(a, Some(datetime(T + M + 2 * S)))].into_iter().collect();
        let done = write(&open, &third, &before, now + Duration::from_secs(10));
        assert_eq!(done.recompute, vec![at(a, T + M, T + 2 * M)]);
        assert!(open.stale(None).is_empty());
    }

    #[test]
    fn the_batch_that_moves_a_host_past_a_minute_and_its_lag_recomputes_it_without_samples_in_it() {
        let (host, lag) = host_with_lag(5..30);
        let host = host.as_str();
        let open = OpenMinutes::new(Duration::from_secs(10));
        let now = Instant::now();
        // Refreshed just now: nothing unsettled is due.
        write(&open, &[cpu(host, T + S)], &SeenBefore::new(), now);
        // Stored up to T + 30 s; the batch brings only a health sample
        // past T + 1 min + the lag: minute T settles.
        let past = T + M + lag + 5 * S;
        let batch = [sample(
            host,
            past,
            SampleBody::Health(HealthBody::default()),
        )];
        let before: SeenBefore = [(host, Some(datetime(T + 30 * S)))].into_iter().collect();
        let done = write(&open, &batch, &before, now);
        assert_eq!(done.recompute, vec![at(host, T, T + M)]);
        assert!(
            done.refreshed.is_empty() && done.skipped.is_empty(),
            "{done:?}"
        );
        // Short of the lag, nothing settles.
        if lag > 2 * S {
            let short = [sample(
                host,
                T + M + lag - S,
                SampleBody::Health(HealthBody::default()),
            )];
            let done = write(&open, &short, &before, now);
            assert_eq!(done.recompute, vec![], "{lag}");
        }
    }

    #[test]
    fn hosts_settle_their_minutes_spread_over_the_minute_not_at_its_end() {
        let lags: BTreeSet<i64> = (0..500).map(|i| lag(&format!("host-{i}")) / S).collect();
        assert!(lags.iter().all(|l| (0..60).contains(l)));
        assert!(lags.len() > 45, "{} distinct seconds of 60", lags.len());
        assert_eq!(lag("host-7"), lag("host-7"));
        // FNV-1a, fixed: every sink agrees on a host's lag.
        // Pinned: a change here moves every host's lag.
        assert_eq!(spread("a"), 0x82a2_a958_a9be_ce5b);
    }

    #[test]
    fn late_samples_of_settled_minutes_are_recomputed_at_once() {
        let open = OpenMinutes::new(Duration::from_secs(10));
        let now = Instant::now();
        write(&open, &[cpu("a", T + 9 * M)], &SeenBefore::new(), now);
        let samples = [
            cpu("a", T + S),
            cpu("a", T + 5 * M + S),
            cpu("a", T + 9 * M + S),
        ];
        let before: SeenBefore = [("a", Some(datetime(T + 9 * M)))].into_iter().collect();
        let done = write(&open, &samples, &before, now);
        assert_eq!(
            done.recompute,
            vec![at("a", T, T + M), at("a", T + 5 * M, T + 6 * M)]
        );
        assert_eq!(done.skipped, vec![("a", T + 9 * M)]);
    }

    #[test]
    fn a_refresh_of_zero_recomputes_every_touched_minute_every_batch() {
        let open = OpenMinutes::new(Duration::ZERO);
        let now = Instant::now();
        let before: SeenBefore = [("a", Some(datetime(T)))].into_iter().collect();
        let batch = [cpu("a", T + S)];
        for _ in 0..3 {
            let done = write(&open, &batch, &before, now);
            assert_eq!(done.recompute, vec![at("a", T, T + M)]);
        }
        assert!(open.stale(None).is_empty());
    }

    #[test]
    fn a_refresh_planned_before_a_later_skip_of_an_older_minute_leaves_it_stale() {
        let open = OpenMinutes::new(Duration::from_secs(10));
        let now = Instant::now();
        open.committed(
            &MinutePlan {
                refreshed: vec!["a"],
                skipped: vec![("a", T + M)],
                ..MinutePlan::default()
            },
            now,
        );
        let later = now + Duration::from_secs(20);
        let due = open.stale(Some(later));
        assert_eq!(due, vec![("a".to_owned(), T + M)]);
        // A batch skipped an older minute after the tick planned.
        open.committed(
            &MinutePlan {
                skipped: vec![("a", T)],
                ..MinutePlan::default()
            },
            later,
        );
        let planned: Vec<(String, Option<i64>)> =
            due.into_iter().map(|(h, f)| (h, Some(f))).collect();
        open.refreshed(&planned, later);
        assert_eq!(open.stale(None), vec![("a".to_owned(), T)]);
        // Refreshed from that minute: clean.
        open.refreshed(&[("a".to_owned(), Some(T))], later);
        assert!(open.stale(None).is_empty());
    }

    #[test]
    fn hosts_neither_stale_nor_recent_are_forgotten() {
        let open = OpenMinutes::new(Duration::from_secs(10));
        let now = Instant::now();
        open.committed(
            &MinutePlan {
                refreshed: vec!["quiet", "stale"],
                skipped: vec![("stale", T)],
                ..MinutePlan::default()
            },
            now,
        );
        open.prune(now + Duration::from_secs(5));
        assert_eq!(open.len(), 2);
        open.prune(now + Duration::from_secs(11));
        assert_eq!(open.len(), 1);
        assert_eq!(open.stale(None), vec![("stale".to_owned(), T)]);
    }

    #[test]
    fn the_recovery_is_taken_a_chunk_at_a_time_in_host_order_and_a_failed_chunk_comes_back() {
        let open = OpenMinutes::new(Duration::from_secs(10));
        assert!(open.recovery_unread());
        assert!(open.recovery_take(2).is_empty(), "nothing read yet");
        open.recovery_read(vec!["a".into(), "b".into(), "c".into()]);
        assert!(!open.recovery_unread());
        let first = open.recovery_take(2);
        assert_eq!(first, ["a", "b"]);
        open.recovery_put_back(first);
        assert_eq!(open.recovery_take(2), ["a", "b"]);
        assert_eq!(open.recovery_take(2), ["c"]);
        assert!(open.recovery_take(2).is_empty());
        assert!(!open.recovery_unread(), "done, not read again");
    }

    #[test]
    fn refreshes_spread_over_half_the_period_and_stay_put_per_host() {
        let refresh = Duration::from_secs(10);
        let spread: Vec<Duration> = (0..200)
            .map(|i| jittered(refresh, &format!("host-{i}")))
            .collect();
        assert!(spread.iter().all(|d| *d >= refresh / 2 && *d <= refresh));
        let distinct: BTreeSet<_> = spread.iter().collect();
        assert!(distinct.len() > 50, "{} distinct", distinct.len());
        assert_eq!(jittered(refresh, "host-7"), spread[7]);
    }
}
