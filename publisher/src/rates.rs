//! Turns raw readings from a [`Source`](crate::source::Source) into sample
//! bodies: percentages from the difference of two cumulative readings, and
//! user names and absolute times for processes.
//!
//! Each transform keeps the previous reading it needs, nothing more: the
//! CPU counters, and one `(start, cpu time)` pair per live process.

use std::collections::HashMap;
use std::time::Instant;

use vigia_schema::{CpuBody, ProcessEntry, ProcsBody, RamBody};

use crate::source::{CpuCounters, CpuTimes, Memory, ProcessStat};
use crate::users::UserNames;

/// CPU % over the interval between consecutive readings.
#[derive(Default)]
pub struct CpuRates {
    previous: Option<CpuTimes>,
}

impl CpuRates {
    /// The body for the interval ending at `now`; `None` for the very first
    /// reading, which has nothing to compare with.
    pub fn next(&mut self, now: CpuTimes) -> Option<CpuBody> {
        let body = self.previous.as_ref().map(|before| cpu_body(before, &now));
        self.previous = Some(now);
        body
    }
}

fn cpu_body(before: &CpuTimes, now: &CpuTimes) -> CpuBody {
    let d = delta(&before.all, &now.all);
    let total = d.total();
    let pct = |part: u64| percent(part, total);
    // No time counted at all (counters stepped back, or two reads within
    // one tick) reads as idle, not as fully busy.
    let idle = if total == 0 { 100.0 } else { pct(d.idle) };
    let iowait = pct(d.iowait);
    let per_cpu_busy_pct = now
        .per_cpu
        .iter()
        .zip(
            before
                .per_cpu
                .iter()
                .chain(std::iter::repeat(&CpuCounters::default())),
        )
        .map(|(n, b)| {
            let d = delta(b, n);
            if d.total() == 0 {
                0.0
            } else {
                (100.0 - percent(d.idle + d.iowait, d.total())).max(0.0)
            }
        })
        .collect();
    CpuBody {
        busy_pct: (100.0 - idle - iowait).max(0.0),
        user_pct: pct(d.user + d.nice),
        system_pct: pct(d.system + d.irq + d.softirq),
        iowait_pct: iowait,
        steal_pct: pct(d.steal),
        idle_pct: idle,
        per_cpu_busy_pct,
        load1: now.load[0],
        load5: now.load[1],
        load15: now.load[2],
        cpus: now.per_cpu.len() as u32,
    }
}

/// Counters can step back (a CPU taken offline and back, a kernel that
/// rounds); a negative step counts as zero rather than a huge number.
fn delta(before: &CpuCounters, now: &CpuCounters) -> CpuCounters {
    CpuCounters {
        user: now.user.saturating_sub(before.user),
        nice: now.nice.saturating_sub(before.nice),
        system: now.system.saturating_sub(before.system),
        idle: now.idle.saturating_sub(before.idle),
        iowait: now.iowait.saturating_sub(before.iowait),
        irq: now.irq.saturating_sub(before.irq),
        softirq: now.softirq.saturating_sub(before.softirq),
        steal: now.steal.saturating_sub(before.steal),
    }
}

fn percent(part: u64, whole: u64) -> f32 {
    if whole == 0 {
        return if part == 0 { 0.0 } else { 100.0 };
    }
    (part as f64 * 100.0 / whole as f64) as f32
}

/// The ram body of a reading; `used` is what cannot be handed out.
pub fn ram_body(m: &Memory) -> RamBody {
    RamBody {
        total: m.total,
        used: m.total.saturating_sub(m.available),
        free: m.free,
        available: m.available,
        buffers: m.buffers,
        cached: m.cached,
        swap_total: m.swap_total,
        swap_free: m.swap_free,
    }
}

/// Process snapshots with CPU % per process since the previous snapshot.
pub struct ProcessRates {
    /// pid → (start time, CPU ns) at the previous snapshot. The start time
    /// tells a reused pid from the process that had it before.
    previous: HashMap<i32, (u64, u64)>,
    previous_at: Option<Instant>,
    users: UserNames,
    /// When the host booted, unix ns: turns start times into dates.
    boot_time_ns: i64,
}

impl ProcessRates {
    pub fn new(users: UserNames, boot_time_ns: i64) -> Self {
        Self {
            previous: HashMap::new(),
            previous_at: None,
            users,
            boot_time_ns,
        }
    }

    /// The procs body for `processes`, read at `at`, on a host with
    /// `mem_total` bytes of RAM.
    pub fn next(&mut self, processes: Vec<ProcessStat>, at: Instant, mem_total: u64) -> ProcsBody {
        let elapsed_ns = self
            .previous_at
            .map(|before| at.saturating_duration_since(before).as_nanos() as u64)
            .unwrap_or(0);
        let mut current = HashMap::with_capacity(processes.len());
        let mut entries = Vec::with_capacity(processes.len());
        for p in processes {
            let cpu_ns = p.utime_ns + p.stime_ns;
            let cpu_pct = match self.previous.get(&p.pid) {
                Some(&(start, before)) if start == p.start_ns && elapsed_ns > 0 => {
                    percent(cpu_ns.saturating_sub(before), elapsed_ns)
                }
                _ => 0.0,
            };
            current.insert(p.pid, (p.start_ns, cpu_ns));
            entries.push(ProcessEntry {
                pid: p.pid,
                ppid: p.ppid,
                user: self.users.name(p.uid),
                uid: p.uid,
                state: p.state.to_string(),
                rss: p.rss_bytes,
                mem_pct: percent(p.rss_bytes, mem_total),
                cpu_pct,
                threads: p.threads,
                start_ts: self.boot_time_ns.saturating_add(p.start_ns as i64),
                name: p.name,
            });
        }
        self.previous = current;
        self.previous_at = Some(at);
        ProcsBody { processes: entries }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn counters(busy: u64, idle: u64) -> CpuCounters {
        CpuCounters {
            user: busy,
            idle,
            ..CpuCounters::default()
        }
    }

    #[test]
    fn cpu_percentages_come_from_deltas() {
        let mut rates = CpuRates::default();
        let first = CpuTimes {
            all: counters(1_000, 1_000),
            per_cpu: vec![counters(500, 500), counters(500, 500)],
            load: [0.5, 0.4, 0.3],
        };
        assert!(rates.next(first).is_none());
        let second = CpuTimes {
            // +300 busy, +100 idle: 75 % busy.
            all: counters(1_300, 1_100),
            per_cpu: vec![counters(800, 500), counters(500, 600)],
            load: [1.0, 0.5, 0.25],
        };
        let body = rates.next(second).unwrap();
        assert_eq!(body.busy_pct, 75.0);
        assert_eq!(body.user_pct, 75.0);
        assert_eq!(body.idle_pct, 25.0);
        assert_eq!(body.per_cpu_busy_pct, vec![100.0, 0.0]);
        assert_eq!(body.cpus, 2);
        assert_eq!(body.load1, 1.0);
    }

    #[test]
    fn counters_that_go_back_count_as_zero() {
        let mut rates = CpuRates::default();
        rates.next(CpuTimes {
            all: counters(100, 100),
            ..CpuTimes::default()
        });
        let body = rates
            .next(CpuTimes {
                all: counters(50, 100),
                ..CpuTimes::default()
            })
            .unwrap();
        assert_eq!(body.busy_pct, 0.0);
    }

    #[test]
    fn ram_used_is_total_minus_available() {
        let body = ram_body(&Memory {
            total: 1000,
            available: 600,
            free: 100,
            ..Memory::default()
        });
        assert_eq!(body.used, 400);
    }

    fn stat(pid: i32, start_ns: u64, cpu_ns: u64) -> ProcessStat {
        ProcessStat {
            pid,
            ppid: 1,
            uid: 0,
            state: 'R',
            utime_ns: cpu_ns,
            stime_ns: 0,
            rss_bytes: 250,
            threads: 1,
            start_ns,
            name: format!("p{pid}"),
        }
    }

    #[test]
    fn process_cpu_is_relative_to_one_cpu_and_ignores_reused_pids() {
        let mut rates = ProcessRates::new(UserNames::from_file("/nonexistent"), 1_000);
        let t0 = Instant::now();
        let first = rates.next(vec![stat(10, 5, 0), stat(11, 7, 0)], t0, 1000);
        assert!(first.processes.iter().all(|p| p.cpu_pct == 0.0));
        let t1 = t0 + Duration::from_secs(1);
        // pid 10 used 1.5 s of CPU in 1 s (two threads); pid 11 is a new
        // process with the same pid.
        let second = rates.next(
            vec![stat(10, 5, 1_500_000_000), stat(11, 9, 900_000_000)],
            t1,
            1000,
        );
        assert_eq!(second.processes[0].cpu_pct, 150.0);
        assert_eq!(second.processes[1].cpu_pct, 0.0);
        assert_eq!(second.processes[0].mem_pct, 25.0);
        assert_eq!(second.processes[0].start_ts, 1_005);
        assert_eq!(second.processes[0].user, "0");
    }
}
