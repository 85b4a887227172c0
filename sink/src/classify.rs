//! Decides whether a message is a sample the sink can store.
//!
//! Anything that is not goes to the dead-letter subject with the reason
//! given here; one bad message must never stop or stall the sink. Checks
//! beyond decoding catch what MySQL would reject later (a NaN, an over-long
//! boot id), because a batch that MySQL rejects would otherwise be retried
//! forever.

use vigia_schema::{subject, HostToken, Kind, Sample, SampleBody};

/// Why a message was not stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Rejection(pub String);

/// Checks subject and payload together and returns the sample.
pub fn classify(subject: &str, payload: &[u8]) -> Result<Sample, Rejection> {
    let (host, kind) = subject::split_telemetry(subject).ok_or_else(|| {
        Rejection(format!(
            "subject {subject:?} is not telemetry.<host>.<kind>"
        ))
    })?;
    let sample = Sample::decode(payload).map_err(|e| Rejection(e.to_string()))?;
    if sample.host != host {
        return Err(Rejection(format!(
            "host mismatch: subject says {host:?}, payload says {:?}",
            sample.host
        )));
    }
    if Kind::from_token(kind) != Some(sample.kind()) {
        return Err(Rejection(format!(
            "kind mismatch: subject says {kind:?}, payload says {:?}",
            sample.kind().as_str()
        )));
    }
    validate(&sample)?;
    Ok(sample)
}

/// How far ahead of the sink's clock a sample's ts may be.
const MAX_CLOCK_AHEAD_NS: i64 = 5 * 60 * 1_000_000_000;

/// The longest boot id the schema stores.
const MAX_BOOT_LEN: usize = 64;

fn validate(sample: &Sample) -> Result<(), Rejection> {
    HostToken::parse(&sample.host).map_err(|e| Rejection(e.to_string()))?;
    let boot_ok = !sample.boot.is_empty()
        && sample.boot.len() <= MAX_BOOT_LEN
        && sample
            .boot
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !boot_ok {
        return Err(Rejection(format!(
            "boot {:?} must be 1 to 64 characters of [A-Za-z0-9_-]",
            sample.boot
        )));
    }
    if sample.seq == 0 {
        return Err(Rejection("seq must start at 1".into()));
    }
    // A sample from the future would become its host's newest for good and
    // freeze its status and process list; clocks may drift, not by hours.
    let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX);
    if sample.ts > now.saturating_add(MAX_CLOCK_AHEAD_NS) {
        return Err(Rejection(format!(
            "ts {} is more than 5 minutes ahead of the sink's clock",
            sample.ts
        )));
    }
    let finite = |name: &str, v: f32| {
        if v.is_finite() {
            Ok(())
        } else {
            Err(Rejection(format!("{name} is {v}, not a finite number")))
        }
    };
    match &sample.body {
        SampleBody::Cpu(c) => {
            for (name, v) in [
                ("busy_pct", c.busy_pct),
                ("user_pct", c.user_pct),
                ("system_pct", c.system_pct),
                ("iowait_pct", c.iowait_pct),
                ("steal_pct", c.steal_pct),
                ("idle_pct", c.idle_pct),
                ("load1", c.load1),
                ("load5", c.load5),
                ("load15", c.load15),
            ] {
                finite(name, v)?;
            }
            for v in &c.per_cpu_busy_pct {
                finite("per_cpu_busy_pct", *v)?;
            }
        }
        SampleBody::Procs(p) => {
            for process in &p.processes {
                finite("cpu_pct", process.cpu_pct)?;
                finite("mem_pct", process.mem_pct)?;
            }
        }
        // Event texts are cut to the commands table's columns when written.
        // Health texts are cut to the publisher_health columns when written.
        SampleBody::Ram(_)
        | SampleBody::Hello(_)
        | SampleBody::Bye(_)
        | SampleBody::Event(_)
        | SampleBody::Health(_) => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigia_schema::{ByeBody, CpuBody, SCHEMA_VERSION};

    fn sample(host: &str, body: SampleBody) -> Sample {
        Sample {
            v: SCHEMA_VERSION,
            host: host.into(),
            boot: "b1".into(),
            seq: 1,
            ts: 1,
            body,
        }
    }

    #[test]
    fn accepts_a_matching_sample() {
        let s = sample("a", SampleBody::Bye(ByeBody::default()));
        assert_eq!(classify("telemetry.a.bye", &s.encode()).unwrap(), s);
    }

    #[test]
    fn rejects_with_a_reason() {
        let bye = sample("a", SampleBody::Bye(ByeBody::default())).encode();
        let reason = |subject: &str, payload: &[u8]| classify(subject, payload).unwrap_err().0;
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
        future.ts = chrono::Utc::now().timestamp_nanos_opt().unwrap() + 3_600 * 1_000_000_000;
        assert!(reason("telemetry.a.bye", &future.encode()).contains("ahead"));
        let mut long_boot = sample("a", SampleBody::Bye(ByeBody::default()));
        long_boot.boot = "x".repeat(65);
        assert!(reason("telemetry.a.bye", &long_boot.encode()).contains("boot"));
    }
}
