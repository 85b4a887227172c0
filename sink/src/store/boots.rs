//! Which boots publish under each host token (`host_boots`, migration
//! 0006), so that two machines sharing a token are seen, not merged.
//!
//! A host token keeps only the short host name: `col.x` and `col.y` both
//! publish as `col`, their samples interleave in one host's rows, and a
//! command on `cmd.col` reaches both. Every batch updates one row per
//! (host, boot) it holds: the span of its samples, its bye, its interval,
//! and until when it counts as live. The view `live_boots` marks a host
//! shared when two of its boots are live with overlapping spans; `vigiactl
//! hosts` and the Fleet dashboard read it.

use std::collections::BTreeMap;

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

/// When a boot stops counting as live, in SQL over its row's columns (or
/// the values bound in their place): its bye, or its newest sample plus the
/// silence after which liveness.rs marks a host offline. An interval not yet
/// known (no hello stored) counts as 1 s, the `hosts` table's default.
const LIVE_UNTIL: [&str; 3] = [
    "COALESCE(ended, last_seen + INTERVAL GREATEST(COALESCE(interval_ms, 1000) * ",
    ", ",
    ") * 1000 MICROSECOND)",
];

/// [`LIVE_UNTIL`] over what one batch says about a boot, as MySQL would
/// work it out over the same values (DATETIME(6): the microseconds are
/// cut when bound, here as there). For a new row only: a row already
/// stored is widened, and its `live_until` comes from the merged row.
fn live_until(s: &BootSeen) -> NaiveDateTime {
    let interval_ms = s
        .interval_ms
        .map_or(DEFAULT_INTERVAL.as_millis() as u64, u64::from);
    let silence_ms =
        (interval_ms * u64::from(MISSED_INTERVALS)).max(MIN_SILENCE.as_millis() as u64);
    s.ended.unwrap_or_else(|| {
        let silence = chrono::TimeDelta::milliseconds(silence_ms as i64);
        s.last_seen
            .checked_add_signed(silence)
            .unwrap_or(NaiveDateTime::MAX)
    })
}

/// Inserts or widens the row of every boot in `samples`. Boots per batch
/// are few (one or two per host): statements of at most `MAX_ROWS` rows.
pub async fn record(conn: &mut MySqlConnection, samples: &[&Sample]) -> Result<(), WriteError> {
    const MAX_ROWS: usize = 1_000;
    let seen: Vec<_> = boots(samples).into_iter().collect();
    let min_silence_ms = MIN_SILENCE.as_millis() as u64;
    for part in seen.chunks(MAX_ROWS) {
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
        query.push_bind(min_silence_ms);
        query.push(LIVE_UNTIL[2]);
        query.build().execute(&mut *conn).await.at("host_boots")?;
    }
    Ok(())
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

    /// The same silence liveness.rs waits for: three intervals, at least
    /// 2 s, 1 s when no hello told the interval; a bye ends it at once.
    #[test]
    fn a_new_boot_is_live_until_its_bye_or_three_intervals_of_silence() {
        let seen = |ended: Option<i64>, interval_ms: Option<u32>| BootSeen {
            first_seen: datetime(1_000_000_000),
            last_seen: datetime(10_000_000_000),
            ended: ended.map(datetime),
            interval_ms,
        };
        assert_eq!(live_until(&seen(None, None)), datetime(13_000_000_000));
        assert_eq!(live_until(&seen(None, Some(500))), datetime(12_000_000_000));
        assert_eq!(
            live_until(&seen(None, Some(5_000))),
            datetime(25_000_000_000)
        );
        assert_eq!(
            live_until(&seen(Some(10_000_000_000), Some(500))),
            datetime(10_000_000_000)
        );
    }
}
