//! The sink's `classify(subject, payload, window)`: what it stores and what
//! it dead-letters. The window takes every time the contract does (from
//! 2000 on), so that samples with old seeds still reach the checks after
//! the time window.
//!
//! Input: the first byte picks how the subject is made.
//! - even: the rest is the payload, and the subject is the one its own
//!   envelope names (`telemetry.<host>.<kind>`), so that the checks after
//!   decoding (host token, boot, seq, finite numbers) are reached;
//! - odd: the rest is `<subject>\n<payload>`, subject and payload as sent.
//!
//! Beyond "never panics": an accepted sample agrees with its subject, passes
//! every rule the sink documents (nothing MySQL would reject later, no ts
//! from the future), and is accepted again, unchanged, when re-encoded.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vigia_schema::bounds::{self, TimeWindow};
use vigia_schema::{subject, HostToken, Kind, Sample, SampleBody};
use vigia_sink::classify::classify;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let (subject, payload) = if mode % 2 == 0 {
        let subject = match Sample::decode(rest) {
            Ok(s) => format!("{}.{}.{}", subject::TELEMETRY, s.host, s.kind()),
            Err(_) => "telemetry.fuzz.cpu".to_owned(),
        };
        (subject, rest)
    } else {
        let cut = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
        let subject = String::from_utf8_lossy(&rest[..cut]).into_owned();
        (subject, rest.get(cut + 1..).unwrap_or_default())
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(i64::MAX, |d| {
            i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
        });
    let window = TimeWindow::any_kept(now);
    let Ok(sample) = classify(&subject, payload, &window) else {
        return;
    };

    let (host, kind) =
        subject::split_telemetry(&subject).expect("accepted a non-telemetry subject");
    assert_eq!(sample.host, host);
    assert_eq!(Kind::from_token(kind), Some(sample.kind()));
    HostToken::parse(&sample.host).expect("accepted a bad host token");
    assert!(
        (1..=64).contains(&sample.boot.len())
            && sample
                .boot
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "accepted boot {:?}",
        sample.boot
    );
    assert!(sample.seq >= 1, "accepted seq 0");
    // The sink refuses samples more than 5 minutes ahead of its clock,
    // and anything outside the contract's bounds.
    assert!(
        bounds::check(&sample, &window).is_ok(),
        "accepted a sample outside the bounds"
    );
    assert!(
        sample.ts <= now.saturating_add(300_000_000_000),
        "accepted ts {} from the future",
        sample.ts
    );
    match &sample.body {
        SampleBody::Cpu(c) => {
            let numbers = [
                c.busy_pct,
                c.user_pct,
                c.system_pct,
                c.iowait_pct,
                c.steal_pct,
                c.idle_pct,
                c.load1,
                c.load5,
                c.load15,
            ];
            assert!(
                numbers
                    .iter()
                    .chain(&c.per_cpu_busy_pct)
                    .all(|v| v.is_finite()),
                "accepted a cpu sample with a non-finite number: {c:?}"
            );
        }
        SampleBody::Procs(p) => assert!(
            p.processes
                .iter()
                .all(|e| e.cpu_pct.is_finite() && e.mem_pct.is_finite()),
            "accepted a procs sample with a non-finite number"
        ),
        SampleBody::Ram(_) | SampleBody::Hello(_) | SampleBody::Bye(_) | SampleBody::Event(_) => {}
    }

    // Every number is finite here, so PartialEq is exact.
    let decoded = Sample::decode(payload).expect("accepted an undecodable payload");
    assert_eq!(decoded, sample);
    let again = classify(&subject, &sample.encode(), &window).expect("re-encoded sample rejected");
    assert_eq!(again, sample);
});
