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
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use procfs::{Current, CurrentSI, KernelStats, LoadAverage, Meminfo};
use rustix::fs::{openat, statat, AtFlags, Dir, Mode, OFlags, CWD};
use rustix::io::{read, retry_on_intr};

use super::pid_stat;
use super::{CpuCounters, CpuTimes, Memory, ProcessStat, Source, SourceError, SourceKind};

/// Room for one /proc/<pid>/stat line: 52 numbers and a name of at most 64
/// bytes (a kernel thread's; a process's own are 15) make well under 1 KiB.
const STAT_LINE_MAX: usize = 4096;

/// Reads /proc. Holds the two constants needed to turn ticks and pages into
/// nanoseconds and bytes, read once, and what the process walk reuses.
pub struct ProcfsSource {
    ns_per_tick: u64,
    page_size: u64,
    /// Where the process table is: /proc, or in tests a directory laid out
    /// like it.
    root: PathBuf,
    /// `root`, opened at the first walk and rewound for each next one.
    proc_dir: Option<Dir>,
    /// `<pid>/stat\0` and `<pid>\0`, built in place for each process.
    path: Vec<u8>,
    line: Vec<u8>,
    unparsed: Unparsed,
}

/// Processes left out of snapshots because their stat line would not
/// parse: counted, and reported at most once a minute. One odd line must
/// not cost the whole snapshot; a kernel whose format changed shows up as
/// a warning naming the file and what is wrong.
#[derive(Default)]
struct Unparsed {
    total: u64,
    reported_at: Option<Instant>,
}

impl Unparsed {
    const REPORT_EVERY: Duration = Duration::from_secs(60);

    fn skip(&mut self, pid: &[u8], message: &str) {
        self.total += 1;
        if self
            .reported_at
            .is_none_or(|at| at.elapsed() >= Self::REPORT_EVERY)
        {
            self.reported_at = Some(Instant::now());
            tracing::warn!(
                path = %format!("/proc/{}/stat", String::from_utf8_lossy(pid)),
                reason = message,
                skipped_total = self.total,
                "left a process out of the snapshot: its stat line does not parse"
            );
        }
    }
}

impl ProcfsSource {
    pub fn new() -> Self {
        Self {
            ns_per_tick: 1_000_000_000 / procfs::ticks_per_second().max(1),
            page_size: procfs::page_size(),
            root: PathBuf::from("/proc"),
            proc_dir: None,
            path: Vec::with_capacity(24),
            line: vec![0; STAT_LINE_MAX],
            unparsed: Unparsed::default(),
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
        let dir = rewound(&mut self.proc_dir, &self.root)?;
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
            // The kernel writes the whole line into its own buffer and
            // copies as much as fits: one read is all of it, or it was cut.
            let parsed = if text.ends_with(b"\n") {
                pid_stat::parse(text)
            } else {
                Err(format!("no end of line in the first {} bytes", text.len()))
            };
            let stat = match parsed {
                Ok(stat) => stat,
                Err(message) => {
                    self.unparsed.skip(pid, &message);
                    continue;
                }
            };
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

/// The process table's directory, opened on first use, ready to list from
/// its first entry.
fn rewound<'a>(proc_dir: &'a mut Option<Dir>, root: &Path) -> Result<&'a mut Dir, SourceError> {
    if let Some(dir) = proc_dir {
        dir.rewind();
        return Ok(dir);
    }
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let fd = openat(CWD, root, flags, Mode::empty()).map_err(|e| SourceError::read("/proc", e))?;
    let dir = Dir::new(fd).map_err(|e| SourceError::read("/proc", e))?;
    Ok(proc_dir.insert(dir))
}

/// Reads process `pid`'s stat line under `proc_dir` into `line`, with one
/// read, and its owner. `None` when the process is gone. `path` is scratch.
///
/// The owner is that of the `/proc/<pid>` directory, whose owner the kernel
/// makes the process's effective uid always; its files are root's when the
/// process is not dumpable (a daemon that dropped privileges, say). Line
/// and owner come from two lookups of `<pid>`: a pid reused in between
/// (the pid space wrapping around within microseconds) would pair one
/// process's line with the next one's owner.
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
    use std::os::unix::fs::MetadataExt;

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
        // Owners as the procfs crate reads them (it stats the /proc/<pid>
        // directory too), where the pid still names the same process.
        let mut compared = 0;
        for p in &procs {
            let Ok(q) = procfs::process::Process::new(p.pid) else {
                continue;
            };
            let (Ok(stat), Ok(uid)) = (q.stat(), q.uid()) else {
                continue;
            };
            if stat.starttime * source.ns_per_tick == p.start_ns {
                assert_eq!(p.uid, uid, "pid {} ({})", p.pid, p.name);
                compared += 1;
            }
        }
        assert!(compared > 1);
        // A second walk reads the table again from the start.
        let again = source.processes().unwrap();
        assert!(again.iter().any(|p| p.pid == me) && again.iter().any(|p| p.pid == 1));
    }

    /// One odd line leaves its process out, counted, not the snapshot; the
    /// next walk starts from the first entry again.
    #[test]
    fn an_unparsable_line_costs_its_process_only() {
        let root = std::env::temp_dir().join(format!("vigia-proc-{}", std::process::id()));
        let line = |pid: u32, name: &str| {
            format!("{pid} ({name}) S 1 {pid} {pid} 0 -1 0 0 0 0 0 7 3 0 0 20 0 1 0 500 0 9 0 0\n")
        };
        for (entry, text) in [
            ("1", line(1, "init")),
            ("2", "2 (cut) S 1".to_owned()),
            ("3", line(3, "no end of line").trim_end().to_owned()),
            ("self", line(9, "not a pid")),
        ] {
            std::fs::create_dir_all(root.join(entry)).unwrap();
            std::fs::write(root.join(entry).join("stat"), text).unwrap();
        }
        let mut source = ProcfsSource::new();
        source.root = root.clone();
        let walk = |source: &mut ProcfsSource| {
            let mut pids: Vec<i32> = source.processes().unwrap().iter().map(|p| p.pid).collect();
            pids.sort_unstable();
            pids
        };
        assert_eq!(walk(&mut source), [1]);
        assert_eq!(source.unparsed.total, 2);
        std::fs::write(root.join("2/stat"), line(2, "whole")).unwrap();
        assert_eq!(walk(&mut source), [1, 2]);
        assert_eq!(source.unparsed.total, 3);
        let procs = source.processes().unwrap();
        let init = procs.iter().find(|p| p.pid == 1).unwrap();
        assert_eq!(init.start_ns, 500 * source.ns_per_tick);
        assert_eq!(init.rss_bytes, 9 * source.page_size);
        assert_eq!(init.uid, rustix::process::geteuid().as_raw());
        std::fs::remove_dir_all(&root).unwrap();
    }

    /// Kills and reaps a forked child however the test ends.
    struct Forked(libc::pid_t);

    #[allow(unsafe_code)] // kill and waitpid have no safe wrapper here
    impl Drop for Forked {
        fn drop(&mut self) {
            // SAFETY: plain system calls on a child this test forked.
            unsafe {
                libc::kill(self.0, libc::SIGKILL);
                libc::waitpid(self.0, std::ptr::null_mut(), 0);
            }
        }
    }

    /// A process that changed its uid (or asked not to be dumpable) has its
    /// /proc files shown as root's; the walk still reports its own
    /// effective uid, as `ps` does.
    #[test]
    #[allow(unsafe_code)] // fork, setuid and prctl have no safe wrapper here
    fn a_non_dumpable_process_keeps_its_owner() {
        let root = rustix::process::geteuid().is_root();
        let expected = if root {
            65534
        } else {
            rustix::process::geteuid().as_raw()
        };
        // SAFETY: the child of this multi-threaded test makes raw system
        // calls only (no allocation, no lock another thread may hold) until
        // it is killed. As root, changing the uid makes it non-dumpable;
        // otherwise it asks for that itself.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
        if pid == 0 {
            unsafe {
                if root {
                    libc::syscall(libc::SYS_setuid, 65534);
                } else {
                    libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
                }
                loop {
                    libc::pause();
                }
            }
        }
        let _child = Forked(pid);
        let file_owner = || std::fs::metadata(format!("/proc/{pid}/stat")).map(|m| m.uid());
        let dir_owner = || std::fs::metadata(format!("/proc/{pid}")).map(|m| m.uid());
        let deadline = Instant::now() + Duration::from_secs(5);
        while (dir_owner().ok(), file_owner().ok()) != (Some(expected), Some(0)) {
            assert!(
                Instant::now() < deadline,
                "the child never became non-dumpable: /proc/{pid} owned by {:?}, its stat by {:?}",
                dir_owner(),
                file_owner()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        let procs = ProcfsSource::new().processes().unwrap();
        let child = procs.iter().find(|p| p.pid == pid).expect("the child");
        assert_eq!(child.uid, expected);
    }
}
