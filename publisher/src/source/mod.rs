//! Where a host's numbers come from.
//!
//! A [`Source`] returns raw, cumulative readings: CPU time per state since
//! boot, memory now, and each process's CPU time since it started. Rates and
//! percentages are computed by [`crate::sampler`] from the difference between
//! two readings, so a read never sleeps and every source stays simple.
//!
//! Two sources exist: [`procfs::ProcfsSource`] reads the kernel's own /proc
//! files, and the kernel-module source reads vigia's /proc/vigia files, which
//! give the whole process table in one read.

pub mod module;
pub mod module_format;
pub mod pid_stat;
pub mod procfs;

use std::fmt;

/// Which source produced a reading; reported in `hello`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    Module,
    Procfs,
}

impl SourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Module => "module",
            SourceKind::Procfs => "procfs",
        }
    }
}

impl fmt::Display for SourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Cumulative time one CPU (or all of them) spent in each state since boot,
/// in nanoseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpuCounters {
    pub user: u64,
    pub nice: u64,
    pub system: u64,
    pub idle: u64,
    pub iowait: u64,
    pub irq: u64,
    pub softirq: u64,
    pub steal: u64,
}

impl CpuCounters {
    /// The sum of every state; saturates rather than overflows, since the
    /// counters are whatever a source read (a corrupt /proc/vigia file can
    /// say u64::MAX).
    pub fn total(&self) -> u64 {
        [
            self.nice,
            self.system,
            self.idle,
            self.iowait,
            self.irq,
            self.softirq,
            self.steal,
        ]
        .into_iter()
        .fold(self.user, u64::saturating_add)
    }
}

/// One reading of the CPU counters.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CpuTimes {
    /// All CPUs together.
    pub all: CpuCounters,
    /// Each CPU, in CPU order.
    pub per_cpu: Vec<CpuCounters>,
    /// Load averages over 1, 5 and 15 minutes.
    pub load: [f32; 3],
}

/// Memory now, in bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Memory {
    pub total: u64,
    pub free: u64,
    pub available: u64,
    pub buffers: u64,
    /// Page cache plus reclaimable slab.
    pub cached: u64,
    pub swap_total: u64,
    pub swap_free: u64,
}

/// One process (thread-group leader) as a source reads it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProcessStat {
    pub pid: i32,
    pub ppid: i32,
    pub uid: u32,
    /// State letter, as in /proc/<pid>/stat.
    pub state: char,
    /// CPU time in user and kernel mode since the process started, ns.
    pub utime_ns: u64,
    pub stime_ns: u64,
    pub rss_bytes: u64,
    pub threads: u32,
    /// When the process started, nanoseconds since the host booted.
    pub start_ns: u64,
    pub name: String,
}

/// Why a reading failed.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("reading {what}: {message}")]
    Read { what: &'static str, message: String },
    #[error("{path}: unexpected content: {message}")]
    Format { path: String, message: String },
}

impl SourceError {
    pub fn read(what: &'static str, err: impl fmt::Display) -> Self {
        SourceError::Read {
            what,
            message: err.to_string(),
        }
    }
}

/// A provider of raw readings. Blocking: callers run it on a thread where
/// blocking file reads are fine.
pub trait Source: Send {
    fn kind(&self) -> SourceKind;
    fn cpu(&mut self) -> Result<CpuTimes, SourceError>;
    fn memory(&mut self) -> Result<Memory, SourceError>;
    /// Every process; one that exits during the walk is simply left out.
    fn processes(&mut self) -> Result<Vec<ProcessStat>, SourceError>;
}

/// Opens the source the configuration asks for. `auto` takes the kernel
/// module when it is loaded and procfs otherwise, and says which it took.
pub fn open(choice: crate::config::SourceChoice) -> Result<Box<dyn Source>, SourceError> {
    use crate::config::SourceChoice;
    match choice {
        SourceChoice::Procfs => Ok(Box::new(procfs::ProcfsSource::new())),
        SourceChoice::Module => Ok(Box::new(module::ModuleSource::open()?)),
        SourceChoice::Auto if module::ModuleSource::available() => {
            tracing::info!("data source: module ({} exists)", module::PROC_DIR);
            Ok(Box::new(module::ModuleSource::open()?))
        }
        SourceChoice::Auto => {
            tracing::info!(
                "data source: procfs ({} does not exist: the vigia kernel module is not loaded)",
                module::PROC_DIR
            );
            Ok(Box::new(procfs::ProcfsSource::new()))
        }
    }
}
