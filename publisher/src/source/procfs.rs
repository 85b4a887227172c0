//! The procfs source: the kernel's own /proc files. Works on every Linux
//! host; costs one file open per process.
//!
//! CPU and memory come through the `procfs` crate. The process table is
//! read by hand ([`pid_stat`](super::pid_stat) says why): `/proc` stays
//! open, and each process is one `openat` of `<pid>/stat` relative to it,
//! one `read` into a buffer kept between walks, and a `stat` of `<pid>`
//! for its owner.

use std::ffi::CStr;
use std::os::fd::BorrowedFd;

use procfs::{Current, CurrentSI, KernelStats, LoadAverage, Meminfo};
use rustix::fs::{openat, statat, AtFlags, Dir, Mode, OFlags, CWD};
use rustix::io::{read, retry_on_intr};

use super::pid_stat;
use super::{CpuCounters, CpuTimes, Memory, ProcessStat, Source, SourceError, SourceKind};

/// Room for one /proc/<pid>/stat line: 52 numbers and a 15-byte name make
/// well under 1 KiB.
const STAT_LINE_MAX: usize = 4096;

/// Reads /proc. Holds the two constants needed to turn ticks and pages into
/// nanoseconds and bytes, read once, and what the process walk reuses.
pub struct ProcfsSource {
    ns_per_tick: u64,
    page_size: u64,
    /// `/proc`, opened at the first walk and rewound for each next one.
    proc_dir: Option<Dir>,
    /// `<pid>/stat\0` and `<pid>\0`, built in place for each process.
    path: Vec<u8>,
    line: Vec<u8>,
}

impl ProcfsSource {
    pub fn new() -> Self {
        Self {
            ns_per_tick: 1_000_000_000 / procfs::ticks_per_second().max(1),
            page_size: procfs::page_size(),
            proc_dir: None,
            path: Vec::with_capacity(24),
            line: vec![0; STAT_LINE_MAX],
        }
    }

    fn counters(&self, t: &procfs::CpuTime) -> CpuCounters {
        let ns = |ticks: u64| ticks * self.ns_per_tick;
        CpuCounters {
            user: ns(t.user),
            nice: ns(t.nice),
            system: ns(t.system),
            idle: ns(t.idle),
            iowait: ns(t.iowait.unwrap_or(0)),
            irq: ns(t.irq.unwrap_or(0)),
            softirq: ns(t.softirq.unwrap_or(0)),
            steal: ns(t.steal.unwrap_or(0)),
        }
    }
}

impl Default for ProcfsSource {
    fn default() -> Self {
        Self::new()
    }
}

impl Source for ProcfsSource {
    fn kind(&self) -> SourceKind {
        SourceKind::Procfs
    }

    fn cpu(&mut self) -> Result<CpuTimes, SourceError> {
        let stats = KernelStats::current().map_err(|e| SourceError::read("/proc/stat", e))?;
        let load = LoadAverage::current().map_err(|e| SourceError::read("/proc/loadavg", e))?;
        Ok(CpuTimes {
            all: self.counters(&stats.total),
            per_cpu: stats.cpu_time.iter().map(|t| self.counters(t)).collect(),
            load: [load.one, load.five, load.fifteen],
        })
    }

    fn memory(&mut self) -> Result<Memory, SourceError> {
        let m = Meminfo::current().map_err(|e| SourceError::read("/proc/meminfo", e))?;
        Ok(memory_from(&m))
    }

    fn processes(&mut self) -> Result<Vec<ProcessStat>, SourceError> {
        let dir = rewound(&mut self.proc_dir)?;
        let mut out = Vec::with_capacity(512);
        while let Some(entry) = dir.read() {
            let entry = entry.map_err(|e| SourceError::read("/proc", e))?;
            let pid = entry.file_name().to_bytes();
            if pid.is_empty() || !pid.iter().all(u8::is_ascii_digit) {
                continue;
            }
            let proc_fd = dir.fd().map_err(|e| SourceError::read("/proc", e))?;
            // A process that exits between the directory listing and the
            // read of its file is not an error: it is gone.
            let Some((text, uid)) = read_stat(proc_fd, pid, &mut self.path, &mut self.line) else {
                continue;
            };
            let format_error = |message: String| SourceError::Format {
                path: format!("/proc/{}/stat", String::from_utf8_lossy(pid)),
                message,
            };
            // The kernel writes the whole line into its own buffer and
            // copies as much as fits: one read is all of it, or it was cut.
            if !text.ends_with(b"\n") {
                return Err(format_error(format!(
                    "no end of line in the first {} bytes",
                    text.len()
                )));
            }
            let stat = pid_stat::parse(text).map_err(format_error)?;
            out.push(ProcessStat {
                pid: stat.pid,
                ppid: stat.ppid,
                uid,
                state: stat.state,
                utime_ns: stat.utime_ticks.saturating_mul(self.ns_per_tick),
                stime_ns: stat.stime_ticks.saturating_mul(self.ns_per_tick),
                rss_bytes: stat.rss_pages.saturating_mul(self.page_size),
                threads: stat.num_threads,
                start_ns: stat.starttime_ticks.saturating_mul(self.ns_per_tick),
                name: stat.comm,
            });
        }
        Ok(out)
    }
}

/// `/proc`, opened on first use, ready to list from its first entry.
fn rewound(proc_dir: &mut Option<Dir>) -> Result<&mut Dir, SourceError> {
    if let Some(dir) = proc_dir {
        dir.rewind();
        return Ok(dir);
    }
    let fd = openat(
        CWD,
        "/proc",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| SourceError::read("/proc", e))?;
    let dir = Dir::new(fd).map_err(|e| SourceError::read("/proc", e))?;
    Ok(proc_dir.insert(dir))
}

/// Reads process `pid`'s stat line under `proc_dir` into `line`, with one
/// read, and its owner. `None` when the process is gone. `path` is scratch.
///
/// The owner is that of the `/proc/<pid>` directory, whose owner the kernel
/// makes the process's effective uid always; its files are root's when the
/// process is not dumpable (a daemon that dropped privileges, say).
fn read_stat<'a>(
    proc_dir: BorrowedFd<'_>,
    pid: &[u8],
    path: &mut Vec<u8>,
    line: &'a mut [u8],
) -> Option<(&'a [u8], u32)> {
    path.clear();
    path.extend_from_slice(pid);
    path.extend_from_slice(b"/stat\0");
    let stat_file = CStr::from_bytes_with_nul(path).ok()?;
    let flags = OFlags::RDONLY | OFlags::CLOEXEC;
    let fd = retry_on_intr(|| openat(proc_dir, stat_file, flags, Mode::empty())).ok()?;
    let len = retry_on_intr(|| read(&fd, &mut *line)).ok()?;
    drop(fd);
    path.truncate(pid.len());
    path.push(0);
    let dir = CStr::from_bytes_with_nul(path).ok()?;
    let uid = statat(proc_dir, dir, AtFlags::empty()).ok()?.st_uid;
    Some((&line[..len], uid))
}

/// Maps /proc/meminfo to [`Memory`], counting reclaimable slab as cache the
/// way `free(1)` does. Old kernels without MemAvailable get free + cache.
pub fn memory_from(m: &Meminfo) -> Memory {
    let cached = m.cached + m.s_reclaimable.unwrap_or(0);
    Memory {
        total: m.mem_total,
        free: m.mem_free,
        available: m
            .mem_available
            .unwrap_or(m.mem_free + m.buffers + cached)
            .min(m.mem_total),
        buffers: m.buffers,
        cached,
        swap_total: m.swap_total,
        swap_free: m.swap_free,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_host() {
        let mut source = ProcfsSource::new();
        let cpu = source.cpu().unwrap();
        assert!(cpu.all.total() > 0);
        assert!(!cpu.per_cpu.is_empty());
        let mem = source.memory().unwrap();
        assert!(mem.total > 0 && mem.available <= mem.total);
        let procs = source.processes().unwrap();
        let me = std::process::id() as i32;
        let mine = procs
            .iter()
            .find(|p| p.pid == me)
            .expect("this test's own process");
        assert!(mine.rss_bytes > 0);
        assert!(mine.threads >= 1);
        assert!(procs.iter().any(|p| p.pid == 1));
        // Owners as the procfs crate reads them (from the /proc/<pid>
        // directory; the walk reads the stat file's, the same by the kernel's
        // rule); a process may exit in between.
        let mut compared = 0;
        for p in &procs {
            let Ok(uid) = procfs::process::Process::new(p.pid).and_then(|q| q.uid()) else {
                continue;
            };
            assert_eq!(p.uid, uid, "pid {} ({})", p.pid, p.name);
            compared += 1;
        }
        assert!(compared > 1);
        // A second walk reads the table again from the start.
        let again = source.processes().unwrap();
        assert!(again.iter().any(|p| p.pid == me));
        assert!(again.len() + 50 > procs.len() && procs.len() + 50 > again.len());
    }
}
