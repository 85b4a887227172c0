//! Which boots publish under each host token (`host_boots`, migration
//! 0006), so that two machines sharing a token are seen, not merged.
//!
//! A host token keeps only the short host name: `col.x` and `col.y` both
//! publish as `col`, their samples interleave in one host's rows, and a
//! command on `cmd.col` reaches both. A batch updates the row of each
//! (host, boot) it holds: the span of its samples, its bye, its interval,
//! and until when it counts as live. The view `live_boots` marks a host
//! shared when two of its boots are live with overlapping spans; `vigiactl
//! hosts` and the Fleet dashboard read it.
//!
//! # Not every batch rewrites every boot
//!
//! At a fleet's pace a host is in every batch (cpu and ram each second,
//! batches every 200 ms), and rewriting its boot's row each time moved
//! `last_seen` by a fraction of a second at the cost of an upsert and two
//! index updates per host per batch: the ingest benchmark lost about four
//! points of its ratio to it. What the rows are for needs `last_seen` only
//! to within seconds, so a sink remembers what it wrote ([`Written`]) and
//! writes a boot's row again only when the batch holds its hello or bye,
//! reaches before the span written, or is [`REFRESH`] past the `last_seen`
//! written. In exchange a row's `live_until` is its `last_seen` plus the
//! silence *plus* [`REFRESH`], so that:
//! - a boot that keeps publishing never drops out of `live_boots` between
//!   two writes;
//! - a boot that falls silent without a bye drops out between its silence
//!   and its silence plus [`REFRESH`] after its last sample;
//! - a stored `last_seen` never runs ahead of the boot's newest sample, so
//!   skipping cannot make two boots overlap that did not (a publisher
//!   restarted on one machine is still not "shared"); two that do overlap
//!   are seen within [`REFRESH`].
//!
//! Several sinks each remember their own writes; rows merge (LEAST,
//! GREATEST, COALESCE), so what one sink skips another may write, and a
//! sink that forgot (restart, [`MAX_REMEMBERED`]) writes again.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use chrono::NaiveDateTime;
use sqlx::mysql::{MySql, MySqlConnection};
use sqlx::QueryBuilder;
use vigia_schema::sample::DEFAULT_INTERVAL;
use vigia_schema::{Sample, SampleBody};

use super::error::{At as _, WriteError};
use super::rows::datetime;
use crate::liveness::{MIN_SILENCE, MISSED_INTERVALS};

/// What one batch says about one boot.
#[derive(Debug, Clone, PartialEq)]
pub struct BootSeen {
    pub first_seen: NaiveDateTime,
    pub last_seen: NaiveDateTime,
    /// Its bye's time, when the batch has it.
    pub ended: Option<NaiveDateTime>,
    /// From its hello, when the batch has it.
    pub interval_ms: Option<u32>,
}

/// The batch's boots, in (host, boot) order: the order their rows are
/// locked in, so two sinks cannot deadlock on them.
pub fn boots<'a>(samples: &[&'a Sample]) -> BTreeMap<(&'a str, &'a str), BootSeen> {
    let mut seen: BTreeMap<(&str, &str), BootSeen> = BTreeMap::new();
    for sample in samples {
        let ts = datetime(sample.ts);
        let entry = seen
            .entry((sample.host.as_str(), sample.boot.as_str()))
            .or_insert(BootSeen {
                first_seen: ts,
                last_seen: ts,
                ended: None,
                interval_ms: None,
            });
        entry.first_seen = entry.first_seen.min(ts);
        entry.last_seen = entry.last_seen.max(ts);
        match &sample.body {
            SampleBody::Bye(_) => entry.ended = Some(ts),
            SampleBody::Hello(h) => {
                entry.interval_ms = Some(h.interval_ms.clamp(1, u64::from(u32::MAX)) as u32)
            }
            _ => {}
        }
    }
    seen
}

/// How stale a boot's stored `last_seen` may grow before a batch writes
/// its row again, and how much longer than its silence a row counts as
/// live (see the module's doc).
pub const REFRESH: Duration = Duration::from_secs(10);

/// Boots remembered at most; when full, all are forgotten at once, and the
/// next batch of each boot writes its row (what every batch did before).
const MAX_REMEMBERED: usize = 100_000;

/// When a boot stops counting as live, in SQL over its row's columns: its
/// bye, or its newest sample plus the silence after which liveness.rs
/// marks a host offline, plus [`REFRESH`]. An interval not yet known (no
/// hello stored) counts as 1 s, the `hosts` table's default. Bound between
/// the parts: [`MISSED_INTERVALS`], [`MIN_SILENCE`] and [`REFRESH`] in ms.
const LIVE_UNTIL: [&str; 4] = [
    "COALESCE(ended, last_seen + INTERVAL (GREATEST(COALESCE(interval_ms, 1000) * ",
    ", ",
    ") + ",
    ") * 1000 MICROSECOND)",
];

/// The silence, in ms, after which a boot of this interval is not heard
/// from (the same as liveness.rs waits for a host).
fn silence_ms(interval_ms: Option<u32>) -> u64 {
    let interval_ms = interval_ms.map_or(DEFAULT_INTERVAL.as_millis() as u64, u64::from);
    (interval_ms * u64::from(MISSED_INTERVALS)).max(MIN_SILENCE.as_millis() as u64)
}

/// [`LIVE_UNTIL`] over what one batch says about a boot, as MySQL would
/// work it out over the same values (DATETIME(6): the microseconds are
/// cut when bound, here as there). For a new row only: a row already
/// stored is widened, and its `live_until` comes from the merged row.
fn live_until(s: &BootSeen) -> NaiveDateTime {
    s.ended.unwrap_or_else(|| {
        let live_ms = silence_ms(s.interval_ms) + REFRESH.as_millis() as u64;
        s.last_seen
            .checked_add_signed(chrono::TimeDelta::milliseconds(live_ms as i64))
            .unwrap_or(NaiveDateTime::MAX)
    })
}

/// What this sink last wrote of one boot's row, after its commit.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Written {
    first_seen: NaiveDateTime,
    last_seen: NaiveDateTime,
    ended: bool,
    interval_ms: Option<u32>,
}

impl Written {
    /// Whether the stored row already says what `seen` would add, to
    /// within [`REFRESH`] of `last_seen`.
    fn covers(&self, seen: &BootSeen) -> bool {
        let fresh = self
            .last_seen
            .checked_add_signed(chrono::TimeDelta::milliseconds(REFRESH.as_millis() as i64))
            .is_none_or(|limit| seen.last_seen < limit);
        (seen.ended.is_none() || self.ended)
            && (seen.interval_ms.is_none() || seen.interval_ms == self.interval_ms)
            && seen.first_seen >= self.first_seen
            && fresh
    }

    fn merged(this: Option<&Written>, seen: &BootSeen) -> Written {
        Written {
            first_seen: this.map_or(seen.first_seen, |w| w.first_seen.min(seen.first_seen)),
            last_seen: this.map_or(seen.last_seen, |w| w.last_seen.max(seen.last_seen)),
            ended: seen.ended.is_some() || this.is_some_and(|w| w.ended),
            interval_ms: seen.interval_ms.or(this.and_then(|w| w.interval_ms)),
        }
    }
}

/// The boots this sink has written, and what it wrote: see the module's
/// doc. Shared by the sink's writes (a short lock, never held across an
/// await).
#[derive(Debug, Default)]
pub(crate) struct Remembered(Mutex<HashMap<(String, String), Written>>);

/// The boots one batch writes, to remember once it has committed: a
/// write rolled back and remembered would skip rows never stored.
#[derive(Debug, Default)]
pub(crate) struct ToRemember(Vec<((String, String), BootSeen)>);

impl Remembered {
    /// Forgets every write: called when a write fails. A commit the sink
    /// saw succeed may still be gone (a failover to a replica that had not
    /// received it, a restore), and a hello or bye remembered as written
    /// would then never be written again; after a failure each boot's row
    /// is written once more instead.
    pub(crate) fn forget(&self) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    /// The boots of `seen` whose rows must be written.
    fn to_write<'a, 's>(
        &self,
        seen: &'s BTreeMap<(&'a str, &'a str), BootSeen>,
    ) -> Vec<(&'s (&'a str, &'a str), &'s BootSeen)> {
        let written = self.0.lock().unwrap_or_else(|e| e.into_inner());
        seen.iter()
            .filter(|((host, boot), s)| {
                !written
                    .get(&((*host).to_owned(), (*boot).to_owned()))
                    .is_some_and(|w| w.covers(s))
            })
            .collect()
    }

    /// Called after the commit of the batch that wrote `rows`.
    pub(crate) fn remember(&self, rows: ToRemember) {
        let mut written = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let new = rows.0.iter().filter(|(key, _)| !written.contains_key(key));
        if written.len() + new.count() > MAX_REMEMBERED {
            written.clear();
        }
        for (key, seen) in rows.0 {
            let merged = Written::merged(written.get(&key), &seen);
            written.insert(key, merged);
        }
    }
}

/// Inserts or widens the row of every boot in `samples` that `remembered`
/// does not cover. Boots per batch are few (one or two per host):
/// statements of at most `MAX_ROWS` rows. Returns what to remember once the
/// transaction has committed.
pub(crate) async fn record(
    conn: &mut MySqlConnection,
    samples: &[&Sample],
    remembered: &Remembered,
) -> Result<ToRemember, WriteError> {
    const MAX_ROWS: usize = 1_000;
    let seen = boots(samples);
    let rows = remembered.to_write(&seen);
    for part in rows.chunks(MAX_ROWS) {
        let mut query = QueryBuilder::<MySql>::new(
            "INSERT INTO host_boots (host, boot, first_seen, last_seen, ended, interval_ms, \
             live_until) ",
        );
        query.push_values(part, |mut b, ((host, boot), s)| {
            b.push_bind(*host)
                .push_bind(*boot)
                .push_bind(s.first_seen)
                .push_bind(s.last_seen)
                .push_bind(s.ended)
                .push_bind(s.interval_ms);
            // LIVE_UNTIL over this row's values, worked out here: as one
            // bound value instead of an expression of four, MariaDB spends
            // about a third less on the statement (measured: 183 live boots
            // per batch, the ingest benchmark's batches).
            b.push_bind(live_until(s));
        });
        // Assignments run left to right and later ones see the earlier
        // ones' results: live_until comes from the merged row.
        query.push(
            " ON DUPLICATE KEY UPDATE first_seen = LEAST(first_seen, VALUES(first_seen)), \
             last_seen = GREATEST(last_seen, VALUES(last_seen)), \
             ended = COALESCE(ended, VALUES(ended)), \
             interval_ms = COALESCE(VALUES(interval_ms), interval_ms), live_until = ",
        );
        query.push(LIVE_UNTIL[0]);
        query.push_bind(MISSED_INTERVALS);
        query.push(LIVE_UNTIL[1]);
        query.push_bind(MIN_SILENCE.as_millis() as u64);
        query.push(LIVE_UNTIL[2]);
        query.push_bind(REFRESH.as_millis() as u64);
        query.push(LIVE_UNTIL[3]);
        query.build().execute(&mut *conn).await.at("host_boots")?;
    }
    Ok(ToRemember(
        rows.into_iter()
            .map(|((host, boot), s)| (((*host).to_owned(), (*boot).to_owned()), s.clone()))
            .collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigia_schema::{ByeBody, HelloBody, RamBody, SCHEMA_VERSION};

    fn sample(host: &str, boot: &str, ts: i64, body: SampleBody) -> Sample {
        Sample {
            v: SCHEMA_VERSION,
            host: host.into(),
            boot: boot.into(),
            seq: 1,
            ts,
            body,
        }
    }

    #[test]
    fn one_entry_per_host_and_boot_with_its_span_bye_and_interval() {
        let samples = [
            sample("col", "b2", 5_000, SampleBody::Ram(RamBody::default())),
            sample(
                "col",
                "a1",
                1_000,
                SampleBody::Hello(HelloBody {
                    interval_ms: 500,
                    ..HelloBody::default()
                }),
            ),
            sample("col", "a1", 9_000, SampleBody::Bye(ByeBody::default())),
            sample("col", "b2", 2_000, SampleBody::Ram(RamBody::default())),
            sample("db", "c3", 3_000, SampleBody::Ram(RamBody::default())),
        ];
        let refs: Vec<&Sample> = samples.iter().collect();
        let seen = boots(&refs);
        let keys: Vec<_> = seen.keys().copied().collect();
        assert_eq!(keys, [("col", "a1"), ("col", "b2"), ("db", "c3")]);
        let a1 = &seen[&("col", "a1")];
        assert_eq!(
            (a1.first_seen, a1.last_seen),
            (datetime(1_000), datetime(9_000))
        );
        assert_eq!(a1.ended, Some(datetime(9_000)));
        assert_eq!(a1.interval_ms, Some(500));
        let b2 = &seen[&("col", "b2")];
        assert_eq!(
            (b2.first_seen, b2.last_seen),
            (datetime(2_000), datetime(5_000))
        );
        assert_eq!((b2.ended, b2.interval_ms), (None, None));
    }

    /// The same silence liveness.rs waits for (three intervals, at least
    /// 2 s, 1 s when no hello told the interval), plus REFRESH; a bye ends
    /// it at once.
    #[test]
    fn a_new_boot_is_live_until_its_bye_or_its_silence_and_refresh() {
        let seen = |ended: Option<i64>, interval_ms: Option<u32>| BootSeen {
            first_seen: datetime(1_000_000_000),
            last_seen: datetime(10_000_000_000),
            ended: ended.map(datetime),
            interval_ms,
        };
        assert_eq!(REFRESH, Duration::from_secs(10));
        assert_eq!(live_until(&seen(None, None)), datetime(23_000_000_000));
        assert_eq!(live_until(&seen(None, Some(500))), datetime(22_000_000_000));
        assert_eq!(
            live_until(&seen(None, Some(5_000))),
            datetime(35_000_000_000)
        );
        assert_eq!(
            live_until(&seen(Some(10_000_000_000), Some(500))),
            datetime(10_000_000_000)
        );
    }

    fn seen_at(first_s: i64, last_s: i64) -> BootSeen {
        BootSeen {
            first_seen: datetime(first_s * 1_000_000_000),
            last_seen: datetime(last_s * 1_000_000_000),
            ended: None,
            interval_ms: None,
        }
    }

    fn remembered_after(first_s: i64, last_s: i64) -> Remembered {
        let remembered = Remembered::default();
        remembered.remember(ToRemember(vec![(
            ("col".into(), "a1".into()),
            seen_at(first_s, last_s),
        )]));
        remembered
    }

    fn written(remembered: &Remembered, seen: BootSeen) -> bool {
        let batch = BTreeMap::from([(("col", "a1"), seen)]);
        !remembered.to_write(&batch).is_empty()
    }

    #[test]
    fn a_boot_not_written_by_this_sink_is_written() {
        assert!(written(&Remembered::default(), seen_at(100, 101)));
        let remembered = remembered_after(100, 101);
        let other = BTreeMap::from([(("col", "b2"), seen_at(100, 101))]);
        assert_eq!(remembered.to_write(&other).len(), 1, "another boot");
    }

    #[test]
    fn a_batch_within_refresh_of_the_written_last_seen_skips_the_row() {
        let remembered = remembered_after(100, 101);
        assert!(!written(&remembered, seen_at(101, 102)));
        assert!(!written(&remembered, seen_at(105, 110)));
        // A redelivered batch inside the written span.
        assert!(!written(&remembered, seen_at(100, 100)));
    }

    #[test]
    fn a_batch_refresh_past_the_written_last_seen_is_written() {
        let remembered = remembered_after(100, 101);
        assert!(written(&remembered, seen_at(110, 111)));
        // Once written, the next skips are measured from there.
        remembered.remember(ToRemember(vec![(
            ("col".into(), "a1".into()),
            seen_at(110, 111),
        )]));
        assert!(!written(&remembered, seen_at(112, 120)));
        assert!(written(&remembered, seen_at(112, 121)));
    }

    #[test]
    fn a_hello_a_bye_or_an_earlier_sample_is_always_written() {
        let remembered = remembered_after(100, 101);
        let mut bye = seen_at(101, 102);
        bye.ended = Some(datetime(102_000_000_000));
        assert!(written(&remembered, bye.clone()));
        let mut hello = seen_at(101, 102);
        hello.interval_ms = Some(500);
        assert!(written(&remembered, hello));
        assert!(written(&remembered, seen_at(99, 101)), "reaches back");
        // A bye already written is not written again.
        remembered.remember(ToRemember(vec![(("col".into(), "a1".into()), bye.clone())]));
        assert!(!written(&remembered, bye));
    }

    #[test]
    fn a_full_memory_forgets_everything_and_writes_again() {
        let remembered = Remembered::default();
        let many: Vec<_> = (0..MAX_REMEMBERED)
            .map(|i| (("h".to_owned(), i.to_string()), seen_at(100, 101)))
            .collect();
        remembered.remember(ToRemember(many));
        assert!(!written_of(&remembered, "h", "0"));
        remembered.remember(ToRemember(vec![(
            ("col".into(), "a1".into()),
            seen_at(100, 101),
        )]));
        assert!(written_of(&remembered, "h", "0"), "forgotten");
        assert!(!written(&remembered, seen_at(100, 101)), "the newest kept");
    }

    #[test]
    fn a_forgotten_memory_writes_every_boot_again() {
        let remembered = remembered_after(100, 101);
        assert!(!written(&remembered, seen_at(101, 102)));
        remembered.forget();
        assert!(written(&remembered, seen_at(101, 102)));
    }

    #[test]
    fn boots_already_remembered_do_not_count_toward_the_bound() {
        let remembered = Remembered::default();
        let many = |n: usize| -> Vec<_> {
            (0..n)
                .map(|i| (("h".to_owned(), i.to_string()), seen_at(100, 101)))
                .collect()
        };
        remembered.remember(ToRemember(many(MAX_REMEMBERED)));
        // The same boots again, a batch later: nothing new, nothing forgotten.
        remembered.remember(ToRemember(many(10)));
        assert!(!written_of(
            &remembered,
            "h",
            &(MAX_REMEMBERED - 1).to_string()
        ));
    }

    fn written_of(remembered: &Remembered, host: &str, boot: &str) -> bool {
        let batch = BTreeMap::from([((host, boot), seen_at(100, 101))]);
        !remembered.to_write(&batch).is_empty()
    }
}
