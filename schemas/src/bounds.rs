//! The contract's bounds: how large, how long and how far out a sample's
//! values may be.
//!
//! A sample outside them is not one a real host sends, and storing it would
//! either fail in MySQL (a value that overflows a column or an expression
//! of the rollup, a statement larger than the server accepts) or poison
//! what operators see (RAM used above total, a process at 10⁹ % CPU). The
//! sink checks every sample against [`check`] before MySQL sees it and
//! dead-letters what fails, with the field and the bound in the reason; the
//! publisher keeps within them (it sends the busiest [`MAX_PROCESSES`]
//! processes when a host has more). schemas/README.md lists them.
//!
//! The numbers are generous for real hosts and chosen so that the worst
//! sample within them still fits MySQL: a process list of [`MAX_PROCESSES`]
//! entries with every string at its bound and every character escaped in
//! JSON is under 12 MB, within MariaDB's default 16 MiB max_allowed_packet;
//! [`MAX_RAM_BYTES`] × 100 fits BIGINT UNSIGNED (the rollup computes
//! `100 * used`); [`MAX_CPUS`] per-CPU values fit the TEXT column.

use crate::sample::{Sample, SampleBody};

/// Most processes in one procs snapshot.
pub const MAX_PROCESSES: usize = 10_000;
/// Most CPUs a host may report (`cpus`, and the per-CPU array's length).
pub const MAX_CPUS: u32 = 4_096;
/// Most bytes of RAM, swap or a process's RSS: 1 PiB.
pub const MAX_RAM_BYTES: u64 = 1 << 50;
/// Highest load average taken as real.
pub const MAX_LOAD: f32 = 1_000_000.0;
/// Rounding allowed above 100 % (and below 0 %): percentages are ratios
/// of counters read at slightly different moments.
pub const PCT_SLACK: f32 = 1.0;
/// Longest boot id, in bytes; also the `boot` column's width.
pub const MAX_BOOT_LEN: usize = 64;
/// Longest process name (`comm` is 15 bytes on Linux), in bytes.
pub const MAX_PROCESS_NAME_LEN: usize = 64;
/// Longest user name, in bytes (the `user` column's width).
pub const MAX_USER_LEN: usize = 64;
/// Longest process state (one letter as in ps), in bytes.
pub const MAX_STATE_LEN: usize = 4;
/// Longest `agent_version` of a hello, in bytes (its column's width).
pub const MAX_AGENT_VERSION_LEN: usize = 64;
/// Longest `kernel` and `os` of a hello, in bytes (their columns' width).
pub const MAX_KERNEL_LEN: usize = 128;
/// Longest `source` of a hello, in bytes (its column's width).
pub const MAX_SOURCE_LEN: usize = 16;
/// Longest `reason` of a bye, in bytes.
pub const MAX_BYE_REASON_LEN: usize = 255;
/// Most kinds in a bye's `last_seq`, and the longest kind name.
pub const MAX_LAST_SEQ_KINDS: usize = 16;
pub const MAX_KIND_LEN: usize = 16;
/// Longest text of an event (command audit) field, in bytes: the audit
/// table cuts them to its columns, this only keeps a payload from being
/// mostly one string.
pub const MAX_EVENT_TEXT_LEN: usize = 4_096;
/// Longest sampling interval a hello may announce: a day, in ms.
pub const MAX_INTERVAL_MS: u64 = 86_400_000;
/// How far ahead of the reader's clock a sample's `ts` may be: clocks
/// drift, not by hours, and a sample from the future would stay its host's
/// newest for good.
pub const MAX_CLOCK_AHEAD_NS: i64 = 5 * 60 * 1_000_000_000;
/// The earliest `ts` (and process start or boot time) of any sample:
/// 2000-01-01T00:00:00Z. Readers also refuse samples older than what they
/// keep (the sink: its retention), see [`TimeWindow`].
pub const EARLIEST_TS: i64 = 946_684_800 * 1_000_000_000;

/// Which sample times a reader takes, unix nanoseconds, inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeWindow {
    pub earliest: i64,
    pub latest: i64,
    /// What `earliest` is, for the reason: e.g. "the 7d retention horizon".
    pub horizon: &'static str,
}

impl TimeWindow {
    /// From `now` back `keep_ns` (what the reader keeps, never before
    /// [`EARLIEST_TS`]) up to [`MAX_CLOCK_AHEAD_NS`] ahead of `now`.
    pub fn keeping(now: i64, keep_ns: i64, horizon: &'static str) -> Self {
        Self {
            earliest: now.saturating_sub(keep_ns).max(EARLIEST_TS),
            latest: now.saturating_add(MAX_CLOCK_AHEAD_NS),
            horizon,
        }
    }

    /// Any time from [`EARLIEST_TS`] to [`MAX_CLOCK_AHEAD_NS`] past `now`.
    pub fn any_kept(now: i64) -> Self {
        Self::keeping(now, i64::MAX, "2000-01-01")
    }
}

/// A value outside the contract's bounds: which field, what it holds and
/// the bound, e.g. `ram.used 9223372036854775808 is above total 1048576`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} {value} {bound}")]
pub struct OutOfBounds {
    pub field: String,
    /// The value, cut short when it is a long text.
    pub value: String,
    pub bound: String,
}

fn out(field: impl Into<String>, value: impl ToString, bound: impl Into<String>) -> OutOfBounds {
    OutOfBounds {
        field: field.into(),
        value: value.to_string(),
        bound: bound.into(),
    }
}

/// Checks every bound of the sample's kind, the first failure reported.
pub fn check(sample: &Sample, window: &TimeWindow) -> Result<(), OutOfBounds> {
    time("ts", sample.ts, window)?;
    text("boot", &sample.boot, MAX_BOOT_LEN)?;
    match &sample.body {
        SampleBody::Cpu(c) => {
            for (name, v) in [
                ("cpu.busy_pct", c.busy_pct),
                ("cpu.user_pct", c.user_pct),
                ("cpu.system_pct", c.system_pct),
                ("cpu.iowait_pct", c.iowait_pct),
                ("cpu.steal_pct", c.steal_pct),
                ("cpu.idle_pct", c.idle_pct),
            ] {
                pct(name, v, 100.0)?;
            }
            for (name, v) in [
                ("cpu.load1", c.load1),
                ("cpu.load5", c.load5),
                ("cpu.load15", c.load15),
            ] {
                if !(v.is_finite() && (0.0..=MAX_LOAD).contains(&v)) {
                    return Err(out(name, v, format!("is outside 0 to {MAX_LOAD}")));
                }
            }
            cpus("cpu.cpus", c.cpus)?;
            if c.per_cpu_busy_pct.len() > MAX_CPUS as usize {
                return Err(out(
                    "cpu.per_cpu_busy_pct",
                    format!("has {} values", c.per_cpu_busy_pct.len()),
                    format!("(at most {MAX_CPUS})"),
                ));
            }
            for v in &c.per_cpu_busy_pct {
                pct("cpu.per_cpu_busy_pct[]", *v, 100.0)?;
            }
        }
        SampleBody::Ram(r) => {
            bytes("ram.total", r.total)?;
            for (name, v) in [
                ("ram.used", r.used),
                ("ram.free", r.free),
                ("ram.available", r.available),
                ("ram.buffers", r.buffers),
                ("ram.cached", r.cached),
            ] {
                if v > r.total {
                    return Err(out(name, v, format!("is above total {}", r.total)));
                }
            }
            bytes("ram.swap_total", r.swap_total)?;
            if r.swap_free > r.swap_total {
                return Err(out(
                    "ram.swap_free",
                    r.swap_free,
                    format!("is above swap_total {}", r.swap_total),
                ));
            }
        }
        SampleBody::Procs(p) => {
            if p.processes.len() > MAX_PROCESSES {
                return Err(out(
                    "procs.processes",
                    format!("has {} entries", p.processes.len()),
                    format!("(at most {MAX_PROCESSES})"),
                ));
            }
            let ahead = TimeWindow {
                earliest: 0,
                latest: sample.ts.saturating_add(MAX_CLOCK_AHEAD_NS),
                horizon: "1970-01-01",
            };
            for e in &p.processes {
                if e.pid <= 0 || e.ppid < 0 {
                    return Err(out(
                        "procs.processes[].pid",
                        format!("{} (ppid {})", e.pid, e.ppid),
                        "must be above 0 (ppid at least 0)",
                    ));
                }
                text("procs.processes[].name", &e.name, MAX_PROCESS_NAME_LEN)?;
                text("procs.processes[].user", &e.user, MAX_USER_LEN)?;
                text("procs.processes[].state", &e.state, MAX_STATE_LEN)?;
                bytes("procs.processes[].rss", e.rss)?;
                pct("procs.processes[].mem_pct", e.mem_pct, 100.0)?;
                pct(
                    "procs.processes[].cpu_pct",
                    e.cpu_pct,
                    100.0 * MAX_CPUS as f32,
                )?;
                time("procs.processes[].start_ts", e.start_ts, &ahead)?;
            }
        }
        SampleBody::Hello(h) => {
            text(
                "hello.agent_version",
                &h.agent_version,
                MAX_AGENT_VERSION_LEN,
            )?;
            text("hello.kernel", &h.kernel, MAX_KERNEL_LEN)?;
            text("hello.os", &h.os, MAX_KERNEL_LEN)?;
            text("hello.source", &h.source, MAX_SOURCE_LEN)?;
            cpus("hello.cpus", h.cpus)?;
            bytes("hello.ram_total", h.ram_total)?;
            let booted = TimeWindow {
                earliest: 0,
                latest: sample.ts.saturating_add(MAX_CLOCK_AHEAD_NS),
                horizon: "1970-01-01",
            };
            time("hello.boot_time", h.boot_time, &booted)?;
            for (name, ms) in [
                ("hello.interval_ms", h.interval_ms),
                ("hello.procs_interval_ms", h.procs_interval_ms),
            ] {
                if !(1..=MAX_INTERVAL_MS).contains(&ms) {
                    return Err(out(name, ms, format!("is outside 1 to {MAX_INTERVAL_MS}")));
                }
            }
        }
        SampleBody::Bye(b) => {
            text("bye.reason", &b.reason, MAX_BYE_REASON_LEN)?;
            if b.last_seq.len() > MAX_LAST_SEQ_KINDS {
                return Err(out(
                    "bye.last_seq",
                    format!("has {} kinds", b.last_seq.len()),
                    format!("(at most {MAX_LAST_SEQ_KINDS})"),
                ));
            }
            for kind in b.last_seq.keys() {
                text("bye.last_seq key", kind, MAX_KIND_LEN)?;
            }
        }
        SampleBody::Event(e) => {
            text("event.action", &e.action, MAX_EVENT_TEXT_LEN)?;
            for (name, value) in [
                ("event.name", &e.name),
                ("event.signal", &e.signal),
                ("event.requested_by", &e.requested_by),
                ("event.nats_user", &e.nats_user),
                ("event.error", &e.error),
            ] {
                if let Some(value) = value {
                    text(name, value, MAX_EVENT_TEXT_LEN)?;
                }
            }
        }
        // Its counters are u64 like their BIGINT UNSIGNED columns: any
        // value fits; only the texts have a width.
        SampleBody::Health(h) => {
            text("health.source", &h.source, MAX_SOURCE_LEN)?;
            text(
                "health.agent_version",
                &h.agent_version,
                MAX_AGENT_VERSION_LEN,
            )?;
        }
    }
    Ok(())
}

fn time(field: &str, ts: i64, window: &TimeWindow) -> Result<(), OutOfBounds> {
    if ts < window.earliest {
        return Err(out(
            field,
            ts,
            format!(
                "is older than {} ({} ns): it would never be kept",
                window.horizon, window.earliest
            ),
        ));
    }
    if ts > window.latest {
        return Err(out(
            field,
            ts,
            format!(
                "is more than 5 minutes ahead of the reader's clock ({} ns)",
                window.latest
            ),
        ));
    }
    Ok(())
}

fn text(field: &str, value: &str, max: usize) -> Result<(), OutOfBounds> {
    if value.len() > max {
        return Err(out(
            field,
            format!("of {} bytes", value.len()),
            format!("is longer than {max} bytes"),
        ));
    }
    Ok(())
}

fn bytes(field: &str, value: u64) -> Result<(), OutOfBounds> {
    if value > MAX_RAM_BYTES {
        return Err(out(
            field,
            value,
            format!("is above {MAX_RAM_BYTES} bytes (1 PiB)"),
        ));
    }
    Ok(())
}

fn cpus(field: &str, value: u32) -> Result<(), OutOfBounds> {
    if value > MAX_CPUS {
        return Err(out(field, value, format!("is above {MAX_CPUS} CPUs")));
    }
    Ok(())
}

fn pct(field: &str, value: f32, max: f32) -> Result<(), OutOfBounds> {
    if !(value.is_finite() && (-PCT_SLACK..=max + PCT_SLACK).contains(&value)) {
        return Err(out(field, value, format!("is outside 0 to {max} %")));
    }
    Ok(())
}

/// Cuts `text` to at most `max` bytes at a character boundary: what a
/// publisher does to a name longer than the contract takes, rather than
/// have its whole snapshot refused.
pub fn clip(text: &mut String, max: usize) {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample::{
        ByeBody, CpuBody, HealthBody, HelloBody, ProcessEntry, ProcsBody, RamBody,
    };

    const NOW: i64 = 1_800_000_000 * 1_000_000_000;
    const DAY: i64 = 86_400 * 1_000_000_000;

    fn window() -> TimeWindow {
        TimeWindow::keeping(NOW, 7 * DAY, "the 7d retention horizon")
    }

    fn sample(body: SampleBody) -> Sample {
        Sample::new("h", "b", 1, NOW, body)
    }

    fn reason(body: SampleBody) -> String {
        check(&sample(body), &window()).unwrap_err().to_string()
    }

    fn process() -> ProcessEntry {
        ProcessEntry {
            pid: 1,
            name: "init".into(),
            user: "root".into(),
            state: "S".into(),
            start_ts: NOW - DAY,
            ..ProcessEntry::default()
        }
    }

    #[test]
    fn a_real_looking_sample_of_each_kind_is_within_bounds() {
        let ram = RamBody {
            total: 8 << 30,
            used: 2 << 30,
            free: 1 << 30,
            available: 6 << 30,
            buffers: 1 << 20,
            cached: 3 << 30,
            swap_total: 1 << 30,
            swap_free: 1 << 30,
        };
        let cpu = CpuBody {
            busy_pct: 100.0,
            per_cpu_busy_pct: vec![100.0; 64],
            cpus: 64,
            load1: 70.0,
            ..CpuBody::default()
        };
        let hello = HelloBody {
            cpus: 64,
            ram_total: 8 << 30,
            boot_time: NOW - DAY,
            source: "procfs".into(),
            interval_ms: 1000,
            procs_interval_ms: 5000,
            ..HelloBody::default()
        };
        let procs = ProcsBody {
            processes: vec![process(); MAX_PROCESSES],
        };
        for body in [
            SampleBody::Ram(ram),
            SampleBody::Cpu(cpu),
            SampleBody::Hello(hello),
            SampleBody::Procs(procs),
            SampleBody::Bye(ByeBody::default()),
        ] {
            assert_eq!(check(&sample(body.clone()), &window()), Ok(()), "{body:?}");
        }
    }

    /// Issue 11, case 1: total 2^64-1 and used 2^63 passed every check and
    /// overflowed `100 * used` in the rollup.
    #[test]
    fn ram_beyond_a_pebibyte_or_above_total_names_the_field() {
        let huge = RamBody {
            total: u64::MAX,
            used: 1 << 63,
            ..RamBody::default()
        };
        let r = reason(SampleBody::Ram(huge));
        assert!(
            r.starts_with("ram.total 18446744073709551615 is above"),
            "{r}"
        );
        let used = RamBody {
            total: 1 << 30,
            used: 1 << 31,
            ..RamBody::default()
        };
        let r = reason(SampleBody::Ram(used));
        assert_eq!(r, "ram.used 2147483648 is above total 1073741824");
    }

    /// Issue 11, case 2: 200,000 processes made 31 MB of JSON.
    #[test]
    fn too_many_processes_or_long_names_are_refused() {
        let many = ProcsBody {
            processes: vec![process(); 200_000],
        };
        let r = reason(SampleBody::Procs(many));
        assert_eq!(r, "procs.processes has 200000 entries (at most 10000)");
        let mut long = process();
        long.name = "n".repeat(MAX_PROCESS_NAME_LEN + 1);
        let r = reason(SampleBody::Procs(ProcsBody {
            processes: vec![long],
        }));
        assert!(
            r.starts_with("procs.processes[].name of 65 bytes is longer than 64"),
            "{r}"
        );
    }

    #[test]
    fn percentages_counts_and_arrays_have_ranges() {
        let r = reason(SampleBody::Cpu(CpuBody {
            busy_pct: -50.0,
            ..CpuBody::default()
        }));
        assert!(r.starts_with("cpu.busy_pct -50 is outside"), "{r}");
        let r = reason(SampleBody::Cpu(CpuBody {
            per_cpu_busy_pct: vec![0.0; MAX_CPUS as usize + 1],
            ..CpuBody::default()
        }));
        assert!(r.starts_with("cpu.per_cpu_busy_pct has 4097 values"), "{r}");
        let r = reason(SampleBody::Cpu(CpuBody {
            load5: f32::INFINITY,
            ..CpuBody::default()
        }));
        assert!(r.starts_with("cpu.load5 inf"), "{r}");
        let mut p = process();
        p.cpu_pct = 1e9;
        let r = reason(SampleBody::Procs(ProcsBody { processes: vec![p] }));
        assert!(r.starts_with("procs.processes[].cpu_pct"), "{r}");
        let r = reason(SampleBody::Hello(HelloBody {
            interval_ms: 0,
            procs_interval_ms: 1,
            boot_time: NOW,
            ..HelloBody::default()
        }));
        assert!(r.starts_with("hello.interval_ms 0 is outside"), "{r}");
    }

    #[test]
    fn times_outside_the_window_name_the_horizon() {
        for ts in [i64::MIN, -9_000_000_000_000_000_000, -1, 0, NOW - 8 * DAY] {
            let mut s = sample(SampleBody::Bye(ByeBody::default()));
            s.ts = ts;
            let r = check(&s, &window()).unwrap_err().to_string();
            assert!(r.contains("older than the 7d retention horizon"), "{r}");
        }
        let mut s = sample(SampleBody::Bye(ByeBody::default()));
        s.ts = NOW + DAY;
        let r = check(&s, &window()).unwrap_err().to_string();
        assert!(r.contains("ahead"), "{r}");
        s.ts = NOW - 6 * DAY;
        assert_eq!(check(&s, &window()), Ok(()));
        assert_eq!(TimeWindow::any_kept(NOW).earliest, EARLIEST_TS);
    }

    #[test]
    fn clip_cuts_at_a_character_boundary() {
        let mut s = "aé".to_owned();
        clip(&mut s, 2);
        assert_eq!(s, "a");
        let mut s = "abc".to_owned();
        clip(&mut s, 3);
        assert_eq!(s, "abc");
    }

    #[test]
    fn a_health_sample_has_only_its_texts_bounded() {
        let health = HealthBody {
            dropped: u64::MAX,
            outbox_depth: u64::MAX,
            reconnects: u64::MAX,
            source: "procfs".into(),
            agent_version: "0.1.0".into(),
        };
        check(&sample(SampleBody::Health(health.clone())), &window()).unwrap();
        let long = HealthBody {
            agent_version: "9".repeat(MAX_AGENT_VERSION_LEN + 1),
            ..health.clone()
        };
        assert!(reason(SampleBody::Health(long)).contains("health.agent_version"));
        let long = HealthBody {
            source: "m".repeat(MAX_SOURCE_LEN + 1),
            ..health
        };
        assert!(reason(SampleBody::Health(long)).contains("health.source"));
    }
}
