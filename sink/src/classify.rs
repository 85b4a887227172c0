//! Decides whether a message is a sample the sink can store.
//!
//! Anything that is not goes to the dead-letter subject with the reason
//! given here; one bad message must never stop or stall the sink. Checks
//! beyond decoding enforce the contract's bounds (`vigia_schema::bounds`),
//! so that what MySQL would refuse (a NaN, an over-long boot id, RAM that
//! overflows the rollup) is turned away here, with the field named; what
//! still gets past is isolated by the writer (see `ingest/isolate.rs`).

use vigia_schema::bounds::{self, TimeWindow, MAX_BOOT_LEN};
use vigia_schema::text::{escape, truncate};
use vigia_schema::{subject, HostToken, Kind, Sample};

use crate::metrics::DeadLetterClass;

/// Why a message was not stored: the reason in words for the dead letter's
/// header, and its class for the counters, decided where the reason is
/// written rather than guessed back from its wording.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct Rejection {
    pub(crate) class: DeadLetterClass,
    pub(crate) reason: String,
}

impl Rejection {
    pub(crate) fn new(class: DeadLetterClass, reason: impl Into<String>) -> Self {
        Self {
            class,
            reason: reason.into(),
        }
    }
}

/// Longest piece of wire text (a subject, a host) a reason quotes.
const QUOTED_MAX: usize = 128;

/// A whole reason that may echo wire text (a decoder's message, a bound's
/// value): escaped and cut short.
fn escaped(text: &str) -> String {
    escape(&truncate(text, 4 * QUOTED_MAX)).into_owned()
}

/// `text` from the wire as a reason quotes it: escaped and cut short.
fn quoted(text: &str) -> String {
    format!("\"{}\"", escape(&truncate(text, QUOTED_MAX)))
}

/// Checks subject and payload together and returns the sample. `window`
/// is the sample times the sink takes: nothing older than its retention
/// keeps (it would be deleted at once), nothing from the future.
pub fn classify(subject: &str, payload: &[u8], window: &TimeWindow) -> Result<Sample, Rejection> {
    let (host, kind) = subject::split_telemetry(subject).ok_or_else(|| {
        Rejection::new(
            DeadLetterClass::Mismatch,
            format!("subject {} is not telemetry.<host>.<kind>", quoted(subject)),
        )
    })?;
    let sample = Sample::decode(payload)
        .map_err(|e| Rejection::new(DeadLetterClass::Decode, escaped(&e.to_string())))?;
    if sample.host != host {
        return Err(Rejection::new(
            DeadLetterClass::Mismatch,
            format!(
                "host mismatch: subject says {}, payload says {}",
                quoted(host),
                quoted(&sample.host)
            ),
        ));
    }
    if Kind::from_token(kind) != Some(sample.kind()) {
        return Err(Rejection::new(
            DeadLetterClass::Mismatch,
            format!(
                "kind mismatch: subject says {}, payload says {:?}",
                quoted(kind),
                sample.kind().as_str()
            ),
        ));
    }
    validate(&sample, window)?;
    Ok(sample)
}

/// What the contract forbids in a sample that decoded: class `invalid`.
fn validate(sample: &Sample, window: &TimeWindow) -> Result<(), Rejection> {
    let invalid = |reason: String| Rejection::new(DeadLetterClass::Invalid, reason);
    HostToken::parse(&sample.host).map_err(|e| invalid(escaped(&e.to_string())))?;
    let boot_ok = !sample.boot.is_empty()
        && sample.boot.len() <= MAX_BOOT_LEN
        && sample
            .boot
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !boot_ok {
        return Err(invalid(format!(
            "boot {} must be 1 to {MAX_BOOT_LEN} characters of [A-Za-z0-9_-]",
            quoted(&sample.boot)
        )));
    }
    if sample.seq == 0 {
        return Err(invalid("seq must start at 1".into()));
    }
    // The contract's bounds (vigia_schema::bounds): sizes, ranges and the
    // time window, so that nothing MySQL would refuse or that would
    // overflow the rollup reaches it.
    bounds::check(sample, window).map_err(|e| invalid(escaped(&e.to_string())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigia_schema::{
        ByeBody, CpuBody, ProcessEntry, ProcsBody, RamBody, SampleBody, SCHEMA_VERSION,
    };

    const DAY: i64 = 86_400 * 1_000_000_000;

    fn now() -> i64 {
        chrono::Utc::now().timestamp_nanos_opt().unwrap()
    }

    fn window() -> TimeWindow {
        TimeWindow::keeping(now(), 7 * DAY, "the 7d retention horizon")
    }

    fn sample(host: &str, body: SampleBody) -> Sample {
        Sample {
            v: SCHEMA_VERSION,
            host: host.into(),
            boot: "b1".into(),
            seq: 1,
            ts: now(),
            body,
        }
    }

    fn reason(subject: &str, payload: &[u8]) -> String {
        classify(subject, payload, &window()).unwrap_err().reason
    }

    #[test]
    fn accepts_a_matching_sample() {
        let s = sample("a", SampleBody::Bye(ByeBody::default()));
        assert_eq!(
            classify("telemetry.a.bye", &s.encode(), &window()).unwrap(),
            s
        );
    }

    /// The class an operator acts on (the dead-letter counters and the
    /// Pipeline dashboard): a broken publisher, the wrong subject, a value
    /// the contract forbids.
    #[test]
    fn rejections_fall_in_the_class_an_operator_acts_on() {
        let class = |subject: &str, payload: &[u8]| {
            classify(subject, payload, &window()).unwrap_err().class
        };
        let bye = sample("a", SampleBody::Bye(ByeBody::default()));
        let mut future = bye.clone();
        future.v = 9;
        let mut unnumbered = bye.clone();
        unnumbered.seq = 0;
        let nan = sample(
            "a",
            SampleBody::Cpu(CpuBody {
                busy_pct: f32::NAN,
                ..CpuBody::default()
            }),
        );
        let cases = [
            ("telemetry.a.bye", b"\xc1".to_vec(), DeadLetterClass::Decode),
            ("telemetry.a.bye", future.encode(), DeadLetterClass::Decode),
            ("x", bye.encode(), DeadLetterClass::Mismatch),
            ("telemetry.b.bye", bye.encode(), DeadLetterClass::Mismatch),
            ("telemetry.a.cpu", bye.encode(), DeadLetterClass::Mismatch),
            ("telemetry.a.cpu", nan.encode(), DeadLetterClass::Invalid),
            (
                "telemetry.a.bye",
                unnumbered.encode(),
                DeadLetterClass::Invalid,
            ),
        ];
        for (subject, payload, expected) in cases {
            assert_eq!(class(subject, &payload), expected, "{subject} {payload:?}");
        }
    }

    #[test]
    fn rejects_with_a_reason() {
        let bye = sample("a", SampleBody::Bye(ByeBody::default())).encode();
        assert!(reason("telemetry.b.bye", &bye).contains("host mismatch"));
        assert!(reason("telemetry.a.cpu", &bye).contains("kind mismatch"));
        assert!(reason("other.a.bye", &bye).contains("not telemetry"));
        assert!(reason("telemetry.a.bye", b"\xc1garbage").contains("not a vigia sample"));
        let nan = sample(
            "a",
            SampleBody::Cpu(CpuBody {
                busy_pct: f32::NAN,
                ..CpuBody::default()
            }),
        );
        assert!(reason("telemetry.a.cpu", &nan.encode()).contains("busy_pct"));
        let mut future = sample("a", SampleBody::Bye(ByeBody::default()));
        future.ts = now() + 3_600 * 1_000_000_000;
        assert!(reason("telemetry.a.bye", &future.encode()).contains("ahead"));
        let mut long_boot = sample("a", SampleBody::Bye(ByeBody::default()));
        long_boot.boot = "x".repeat(65);
        assert!(reason("telemetry.a.bye", &long_boot.encode()).contains("boot"));
    }

    /// Issue 11, case 1: passed the classifier on main, then MariaDB
    /// refused the rollup (error 1690) and the sink retried it forever.
    #[test]
    fn ram_values_beyond_the_bounds_are_refused_naming_the_field() {
        let ram = sample(
            "p1",
            SampleBody::Ram(RamBody {
                total: u64::MAX,
                used: 1 << 63,
                ..RamBody::default()
            }),
        );
        let r = reason("telemetry.p1.ram", &ram.encode());
        assert!(
            r.starts_with("ram.total 18446744073709551615 is above"),
            "{r}"
        );
    }

    /// Issue 11, case 2: 200,000 processes, 31 MB of JSON for MySQL.
    #[test]
    fn a_snapshot_of_too_many_processes_is_refused() {
        let process = ProcessEntry {
            pid: 7,
            name: "worker".into(),
            user: "www-data".into(),
            state: "S".into(),
            start_ts: now() - DAY,
            ..ProcessEntry::default()
        };
        let procs = sample(
            "p1",
            SampleBody::Procs(ProcsBody {
                processes: vec![process; 200_000],
            }),
        );
        let r = reason("telemetry.p1.procs", &procs.encode());
        assert_eq!(r, "procs.processes has 200000 entries (at most 10000)");
    }

    /// Stamped in 1677, 1900, 1969 or last month: stored on main, then
    /// deleted by retention a minute later without a trace.
    #[test]
    fn a_sample_older_than_the_retention_horizon_is_refused() {
        let unix = |year: i32| {
            chrono::NaiveDate::from_ymd_opt(year, 6, 1)
                .unwrap()
                .and_hms_opt(0, 0, 0)
                .unwrap()
                .and_utc()
                .timestamp_nanos_opt()
                .unwrap_or(i64::MIN)
        };
        for ts in [i64::MIN, unix(1900), unix(1969), now() - 30 * DAY] {
            let mut old = sample("a", SampleBody::Bye(ByeBody::default()));
            old.ts = ts;
            let r = reason("telemetry.a.bye", &old.encode());
            assert!(r.contains("older than the 7d retention horizon"), "{r}");
        }
    }

    #[test]
    fn wire_text_in_a_reason_is_escaped_and_cut() {
        let bye = sample("a", SampleBody::Bye(ByeBody::default())).encode();
        let subject = format!("telemetry.\u{202e}x\n{}.bye", "y".repeat(10_000));
        let r = reason(&subject, &bye);
        assert!(!r.chars().any(vigia_schema::text::is_unsafe), "{r}");
        assert!(r.len() < 400, "{} bytes", r.len());
    }
}
