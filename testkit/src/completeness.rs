//! The one check that a host's telemetry reached MySQL whole: each kind
//! holds seq 1..N exactly once, from the host's one boot, and host_events
//! holds one hello (seq 1) and a bye exactly when the host left cleanly.
//!
//! The sink's integration tests (`sink/tests/common`) and the fleet
//! simulator (`vigia-bench`'s `simulate-fleet`) both judge with it, so the
//! promise "nothing lost, nothing duplicated" is written once. Reading
//! ([`read_host`]) is apart from judging ([`judge`]) so the judgement is a
//! pure function, tested below against broken records.

use std::time::Duration;

use sqlx::mysql::MySqlPool;
use sqlx::Row as _;

/// The sampled kinds and the table each lands in, in the order
/// [`HostRows::samples`], [`Expected`] and [`Verdict::kinds`] use.
pub const SAMPLED: [(&str, &str); 3] = [
    ("cpu", "cpu_samples"),
    ("ram", "ram_samples"),
    ("procs", "procs_snapshots"),
];

/// One host's rows as MySQL holds them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HostRows {
    /// Per sampled kind: `(boot, seq)` of every row, ordered by boot then
    /// seq, repeats kept.
    pub samples: [Vec<(String, u64)>; 3],
    /// host_events in time order.
    pub events: Vec<Event>,
}

/// One row of host_events.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// `hello` or `bye`.
    pub kind: String,
    pub boot: String,
    pub seq: u64,
}

/// What a host must hold.
#[derive(Debug, Clone, Default)]
pub struct Expected {
    /// The last seq of each sampled kind, when known (its bye announced
    /// them); otherwise N is however many rows there are, gap-free.
    pub last_seq: Option<[u64; 3]>,
    /// The fewest samples of each kind its lifetime allows.
    pub at_least: [u64; 3],
    /// Whether it left with a bye (SIGTERM) rather than died (SIGKILL).
    pub bye: bool,
}

/// The judgement of one host: each part holds what was found or why it is
/// wrong, so a caller can count and print each one.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// Per sampled kind: `Ok(N)` when the rows are seq 1..=N once each from
    /// the host's boot, with N as expected.
    pub kinds: [Result<u64, String>; 3],
    /// One hello with seq 1, one bye exactly when expected, both of the
    /// boot the samples carry.
    pub events: Result<(), String>,
}

impl Verdict {
    pub fn is_complete(&self) -> bool {
        self.problems().is_empty()
    }

    /// Every part found wrong, one sentence each.
    pub fn problems(&self) -> Vec<&str> {
        let kinds = self.kinds.iter().filter_map(|k| k.as_ref().err());
        kinds
            .chain(self.events.as_ref().err())
            .map(String::as_str)
            .collect()
    }
}

/// Reads `host`'s sample seqs and host_events.
pub async fn read_host(pool: &MySqlPool, host: &str) -> Result<HostRows, sqlx::Error> {
    let mut rows = HostRows::default();
    for (slot, (_, table)) in rows.samples.iter_mut().zip(SAMPLED) {
        *slot = sqlx::query(&format!(
            "SELECT boot, seq FROM {table} WHERE host = ? ORDER BY boot, seq"
        ))
        .bind(host)
        .fetch_all(pool)
        .await?
        .iter()
        .map(|r| Ok((r.try_get("boot")?, r.try_get("seq")?)))
        .collect::<Result<_, sqlx::Error>>()?;
    }
    rows.events = sqlx::query(
        "SELECT CAST(kind AS CHAR) AS kind, boot, seq FROM host_events \
         WHERE host = ? ORDER BY ts, kind",
    )
    .bind(host)
    .fetch_all(pool)
    .await?
    .iter()
    .map(|r| {
        Ok(Event {
            kind: r.try_get("kind")?,
            boot: r.try_get("boot")?,
            seq: r.try_get("seq")?,
        })
    })
    .collect::<Result<_, sqlx::Error>>()?;
    Ok(rows)
}

/// Judges `host`'s rows against what it must hold.
pub fn judge(host: &str, rows: &HostRows, expected: &Expected) -> Verdict {
    let kinds_of: Vec<&str> = rows.events.iter().map(|e| e.kind.as_str()).collect();
    let want_kinds: &[&str] = if expected.bye {
        &["hello", "bye"]
    } else {
        &["hello"]
    };
    // The boot every row must carry: the hello's, else the first sample's.
    let boot = rows
        .events
        .iter()
        .find(|e| e.kind == "hello")
        .or(rows.events.first())
        .map(|e| e.boot.as_str())
        .or_else(|| {
            rows.samples
                .iter()
                .flatten()
                .next()
                .map(|(b, _)| b.as_str())
        });
    let events = if kinds_of != want_kinds {
        Err(format!(
            "{host}: host_events {kinds_of:?}, want {want_kinds:?}"
        ))
    } else if rows.events[0].seq != 1 {
        Err(format!(
            "{host}: hello has seq {}, want 1",
            rows.events[0].seq
        ))
    } else if let Some(other) = rows.events.iter().find(|e| Some(e.boot.as_str()) != boot) {
        Err(format!(
            "{host}: {} of boot {} after a hello of boot {}",
            other.kind,
            other.boot,
            boot.unwrap_or("-")
        ))
    } else {
        Ok(())
    };
    let kinds = std::array::from_fn(|i| {
        let (kind, _) = SAMPLED[i];
        let got = &rows.samples[i];
        let n = expected.last_seq.map_or(got.len() as u64, |last| last[i]);
        let seqs: Vec<u64> = got.iter().map(|&(_, seq)| seq).collect();
        if seqs.iter().copied().ne(1..=n) {
            Err(format!(
                "{host} {kind}: expected seq 1..={n}, MySQL has {} rows: {}",
                seqs.len(),
                summarize(&seqs)
            ))
        } else if let Some((other, _)) = got.iter().find(|(b, _)| Some(b.as_str()) != boot) {
            Err(format!(
                "{host} {kind}: a row of boot {other}, the host's boot is {}",
                boot.unwrap_or("-")
            ))
        } else if n < expected.at_least[i] {
            Err(format!(
                "{host} {kind}: seq 1..={n}, want at least {}",
                expected.at_least[i]
            ))
        } else {
            Ok(n)
        }
    });
    Verdict { kinds, events }
}

/// Reads and judges `host` until its rows are complete or `deadline`
/// passes (the sink may still be writing the last batch); the last rows
/// read and their verdict.
pub async fn wait_for_complete(
    pool: &MySqlPool,
    host: &str,
    expected: &Expected,
    deadline: std::time::Instant,
) -> Result<(HostRows, Verdict), sqlx::Error> {
    loop {
        let rows = read_host(pool, host).await?;
        let verdict = judge(host, &rows, expected);
        if verdict.is_complete() || std::time::Instant::now() >= deadline {
            return Ok((rows, verdict));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Runs of consecutive numbers, to keep failure messages short:
/// `1-4,4,6`.
pub fn summarize(seqs: &[u64]) -> String {
    let mut out = Vec::new();
    let mut iter = seqs.iter().copied().peekable();
    while let Some(start) = iter.next() {
        let mut end = start;
        while iter.peek() == Some(&(end + 1)) {
            end = iter.next().unwrap_or(end);
        }
        out.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
    }
    out.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: &str, boot: &str, seq: u64) -> Event {
        Event {
            kind: kind.into(),
            boot: boot.into(),
            seq,
        }
    }

    fn rows(seqs: [&[u64]; 3], events: Vec<Event>) -> HostRows {
        HostRows {
            samples: seqs.map(|s| s.iter().map(|&q| ("b1".to_owned(), q)).collect()),
            events,
        }
    }

    fn clean() -> HostRows {
        rows(
            [&[1, 2, 3], &[1, 2, 3], &[1]],
            vec![event("hello", "b1", 1), event("bye", "b1", 1)],
        )
    }

    fn announced() -> Expected {
        Expected {
            last_seq: Some([3, 3, 1]),
            at_least: [1, 1, 0],
            bye: true,
        }
    }

    #[test]
    fn a_host_with_every_seq_once_and_hello_then_bye_is_complete() {
        let verdict = judge("h", &clean(), &announced());
        assert_eq!(verdict.kinds, [Ok(3), Ok(3), Ok(1)]);
        assert!(verdict.is_complete(), "{:?}", verdict);
    }

    #[test]
    fn a_gap_a_duplicate_or_a_missing_tail_is_each_found() {
        let mut broken = clean();
        broken.samples[0] = vec![("b1".into(), 1), ("b1".into(), 3)];
        broken.samples[1].push(("b1".into(), 3));
        broken.samples[2].clear();
        let verdict = judge("h", &broken, &announced());
        assert_eq!(
            verdict.kinds[0],
            Err("h cpu: expected seq 1..=3, MySQL has 2 rows: 1,3".into())
        );
        assert_eq!(
            verdict.kinds[1],
            Err("h ram: expected seq 1..=3, MySQL has 4 rows: 1-3,3".into())
        );
        assert!(verdict.kinds[2].is_err(), "procs stamped 1, stored none");
        assert_eq!(verdict.problems().len(), 3);
    }

    #[test]
    fn without_an_announced_end_rows_must_still_start_at_one_without_gaps() {
        let mut killed = clean();
        killed.events.pop();
        let expect = Expected {
            last_seq: None,
            at_least: [2, 2, 0],
            bye: false,
        };
        assert!(judge("h", &killed, &expect).is_complete());
        killed.samples[0].remove(0);
        assert_eq!(
            judge("h", &killed, &expect).kinds[0],
            Err("h cpu: expected seq 1..=2, MySQL has 2 rows: 2-3".into())
        );
    }

    #[test]
    fn fewer_samples_than_the_host_lived_for_is_a_failure() {
        let expect = Expected {
            at_least: [4, 1, 0],
            ..announced()
        };
        assert_eq!(
            judge("h", &clean(), &expect).kinds[0],
            Err("h cpu: seq 1..=3, want at least 4".into())
        );
    }

    #[test]
    fn a_second_boot_in_the_samples_is_a_failure() {
        let mut two_boots = clean();
        two_boots.samples[2] = vec![("b2".into(), 1)];
        assert_eq!(
            judge("h", &two_boots, &announced()).kinds[2],
            Err("h procs: a row of boot b2, the host's boot is b1".into())
        );
    }

    #[test]
    fn a_missing_hello_an_unexpected_bye_or_a_late_hello_seq_is_a_failure() {
        let mut no_hello = clean();
        no_hello.events.remove(0);
        assert!(judge("h", &no_hello, &announced()).events.is_err());

        let killed = Expected {
            bye: false,
            ..announced()
        };
        assert_eq!(
            judge("h", &clean(), &killed).events,
            Err(r#"h: host_events ["hello", "bye"], want ["hello"]"#.into())
        );

        let mut late = clean();
        late.events[0].seq = 2;
        assert_eq!(
            judge("h", &late, &announced()).events,
            Err("h: hello has seq 2, want 1".into())
        );

        let mut foreign_bye = clean();
        foreign_bye.events[1].boot = "b0".into();
        assert!(judge("h", &foreign_bye, &announced()).events.is_err());
    }

    #[test]
    fn summarize_folds_runs_and_keeps_repeats() {
        assert_eq!(summarize(&[1, 2, 3, 5, 5, 6, 9]), "1-3,5,5-6,9");
        assert_eq!(summarize(&[]), "");
    }
}
