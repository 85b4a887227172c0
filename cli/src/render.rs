//! One readable line per sample, for `watch`, and the units `hosts` shows.

use std::borrow::Cow;
use std::fmt::Write as _;

use vigia_schema::{Sample, SampleBody};

/// How many processes a procs line lists.
pub const TOP_PROCESSES: usize = 10;

/// `HH:MM:SS.mmm host kind #seq  details`, time in UTC.
pub fn line(sample: &Sample) -> String {
    let mut out = format!(
        "{} {} {:<5} #{}  ",
        clock(sample.ts),
        shown(&sample.host),
        sample.kind().as_str(),
        sample.seq
    );
    // Writing into a String cannot fail.
    let _ = match &sample.body {
        SampleBody::Cpu(c) => write!(
            out,
            "busy {:.1}% (user {:.1} sys {:.1} iowait {:.1} steal {:.1})  load {:.2} {:.2} {:.2}  {} CPUs",
            c.busy_pct, c.user_pct, c.system_pct, c.iowait_pct, c.steal_pct,
            c.load1, c.load5, c.load15, c.cpus
        ),
        SampleBody::Ram(r) => write!(
            out,
            "used {} of {} ({:.1}%)  available {}  cache {}  swap used {} of {}",
            bytes(r.used),
            bytes(r.total),
            percent(r.used, r.total),
            bytes(r.available),
            bytes(r.cached),
            bytes(r.swap_total.saturating_sub(r.swap_free)),
            bytes(r.swap_total)
        ),
        SampleBody::Procs(p) => {
            let mut top: Vec<_> = p.processes.iter().collect();
            top.sort_by(|a, b| b.cpu_pct.total_cmp(&a.cpu_pct).then(a.pid.cmp(&b.pid)));
            let listed: Vec<String> = top
                .iter()
                .take(TOP_PROCESSES)
                .map(|e| format!("{} {} {:.1}%", e.pid, shown(&e.name), e.cpu_pct))
                .collect();
            write!(
                out,
                "{} processes; top by CPU: {}",
                p.processes.len(),
                listed.join(", ")
            )
        }
        SampleBody::Hello(h) => write!(
            out,
            "vigia-publisher {} on {} (kernel {}), {} CPUs, {} RAM, source {}",
            shown(&h.agent_version),
            shown(&h.os),
            shown(&h.kernel),
            h.cpus,
            bytes(h.ram_total),
            shown(&h.source)
        ),
        SampleBody::Bye(b) => write!(
            out,
            "stopped ({}), {} samples dropped",
            shown(&b.reason),
            b.dropped
        ),
        SampleBody::Event(e) => {
            let pid = e.pid.map(|p| p.to_string()).unwrap_or_else(|| "-".into());
            let action = if e.action.is_empty() { "?" } else { &e.action };
            let _ = write!(out, "{} pid {pid}", shown(action));
            if let Some(name) = &e.name {
                let _ = write!(out, " ({})", shown(name));
            }
            if let Some(signal) = &e.signal {
                let _ = write!(out, " SIG{}", shown(signal));
            }
            if let Some(by) = &e.requested_by {
                let _ = write!(out, " by {}", shown(by));
            }
            if let Some(user) = &e.nats_user {
                let _ = write!(out, " (nats user {})", shown(user));
            }
            let _ = write!(out, ": {}", e.outcome);
            match &e.error {
                Some(error) => write!(out, ": {}", shown(error)),
                None => Ok(()),
            }
        }
        SampleBody::Health(h) => write!(
            out,
            "vigia-publisher {}, source {}: outbox {} waiting, {} dropped, {} reconnects",
            shown(&h.agent_version),
            shown(&h.source),
            h.outbox_depth,
            h.dropped,
            h.reconnects
        ),
    };
    out
}

/// Text from the wire as it is safe to print: control characters (say, a
/// terminal escape sequence in a process name) and bidirectional overrides
/// shown escaped, not obeyed — the contract's one rule
/// ([`vigia_schema::text`]), so the CLI and the logs show the same text.
pub fn shown(text: &str) -> Cow<'_, str> {
    vigia_schema::text::escape(text)
}

/// Unix nanoseconds as `HH:MM:SS.mmm` UTC.
pub fn clock(ts: i64) -> String {
    chrono::DateTime::from_timestamp_nanos(ts)
        .format("%H:%M:%S%.3f")
        .to_string()
}

/// Bytes in binary units, one decimal: `7.8 GiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigia_schema::{EventBody, Outcome, ProcessEntry, ProcsBody, RamBody};

    fn sample(body: SampleBody) -> Sample {
        // 2025-11-27 14:44:01.123 UTC
        Sample::new("web-1", "b", 7, 1_764_254_641_123_000_000, body)
    }

    #[test]
    fn units() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(8 << 30), "8.0 GiB");
        assert_eq!(clock(1_764_254_641_123_000_000), "14:44:01.123");
    }

    #[test]
    fn procs_lists_the_top_ten_by_cpu() {
        let processes = (1..=15)
            .map(|i| ProcessEntry {
                pid: i,
                name: format!("p{i}"),
                cpu_pct: i as f32,
                ..ProcessEntry::default()
            })
            .collect();
        let text = line(&sample(SampleBody::Procs(ProcsBody { processes })));
        assert!(
            text.starts_with(
                "14:44:01.123 web-1 procs #7  15 processes; top by CPU: 15 p15 15.0%, 14 p14 14.0%"
            ),
            "{text}"
        );
        assert!(text.ends_with("6 p6 6.0%"), "{text}");
        assert!(!text.contains("5 p5"), "{text}");
        assert!(!text.contains('\n'));
    }

    #[test]
    fn control_characters_from_the_wire_are_shown_not_obeyed() {
        let processes = vec![ProcessEntry {
            pid: 9,
            name: "\u{1b}[2Jevil\nname".into(),
            cpu_pct: 1.0,
            ..ProcessEntry::default()
        }];
        let text = line(&sample(SampleBody::Procs(ProcsBody { processes })));
        assert!(text.contains(r"9 \u{1b}[2Jevil\u{a}name 1.0%"), "{text}");
        assert!(!text.chars().any(char::is_control), "{text:?}");
        assert_eq!(shown("plain ñame"), "plain ñame");
    }

    #[test]
    fn bidi_overrides_from_the_wire_are_shown_not_obeyed() {
        let processes = vec![ProcessEntry {
            pid: 9,
            name: "evil\u{202e}gpj.sh".into(),
            cpu_pct: 1.0,
            ..ProcessEntry::default()
        }];
        let mut s = sample(SampleBody::Procs(ProcsBody { processes }));
        s.host = "h\u{2066}x".into();
        let text = line(&s);
        assert!(text.contains(r"9 evil\u{202e}gpj.sh 1.0%"), "{text}");
        assert!(text.contains(r" h\u{2066}x procs"), "{text}");
        assert!(!text.chars().any(vigia_schema::text::is_unsafe), "{text:?}");
    }

    #[test]
    fn ram_and_event_lines() {
        let ram = line(&sample(SampleBody::Ram(RamBody {
            total: 8 << 30,
            used: 2 << 30,
            available: 6 << 30,
            ..RamBody::default()
        })));
        assert!(ram.contains("used 2.0 GiB of 8.0 GiB (25.0%)"), "{ram}");
        let event = line(&sample(SampleBody::Event(EventBody {
            action: "kill".into(),
            pid: Some(1),
            signal: Some("TERM".into()),
            requested_by: Some("alice".into()),
            outcome: Outcome::Refused,
            error: Some("pid 1 is init; it is never signalled".into()),
            ..EventBody::default()
        })));
        assert_eq!(
            event,
            "14:44:01.123 web-1 event #7  kill pid 1 SIGTERM by alice: refused: pid 1 is init; it is never signalled"
        );
    }

    #[test]
    fn health_lines_show_the_publishers_losses_escaped() {
        let text = line(&sample(SampleBody::Health(vigia_schema::HealthBody {
            dropped: 12,
            outbox_depth: 3,
            reconnects: 2,
            source: "procfs".into(),
            agent_version: "0.1.0\u{1b}[31m".into(),
        })));
        assert_eq!(
            text,
            r"14:44:01.123 web-1 health #7  vigia-publisher 0.1.0\u{1b}[31m, source procfs: outbox 3 waiting, 12 dropped, 2 reconnects"
        );
    }
}
