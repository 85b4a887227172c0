//! The procfs source: the kernel's own /proc files, through the `procfs`
//! crate. Works on every Linux host; costs a few file opens per process.

use procfs::process::all_processes;
use procfs::{Current, CurrentSI, KernelStats, LoadAverage, Meminfo};

use super::{CpuCounters, CpuTimes, Memory, ProcessStat, Source, SourceError, SourceKind};

/// Reads /proc. Holds the two constants needed to turn ticks and pages into
/// nanoseconds and bytes, read once.
pub struct ProcfsSource {
    ns_per_tick: u64,
    page_size: u64,
}

impl ProcfsSource {
    pub fn new() -> Self {
        Self {
            ns_per_tick: 1_000_000_000 / procfs::ticks_per_second().max(1),
            page_size: procfs::page_size(),
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
        let all = all_processes().map_err(|e| SourceError::read("/proc", e))?;
        let mut out = Vec::with_capacity(512);
        for process in all {
            // A process that exits between the directory listing and the
            // read of its files is not an error: it is gone.
            let Ok(process) = process else { continue };
            let (Ok(stat), Ok(uid)) = (process.stat(), process.uid()) else {
                continue;
            };
            out.push(ProcessStat {
                pid: stat.pid,
                ppid: stat.ppid,
                uid,
                state: stat.state,
                utime_ns: stat.utime * self.ns_per_tick,
                stime_ns: stat.stime * self.ns_per_tick,
                rss_bytes: stat.rss * self.page_size,
                threads: u32::try_from(stat.num_threads).unwrap_or(0),
                start_ns: stat.starttime * self.ns_per_tick,
                name: stat.comm,
            });
        }
        Ok(out)
    }
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
    }
}
