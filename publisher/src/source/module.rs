//! The kernel-module source: vigia's own files under /proc/vigia, written
//! by `kernel-module/` (formats: `kernel-module/FORMAT.md`).
//!
//! The point is the process table: one open and one read of
//! /proc/vigia/procs return every process, where the procfs source opens
//! two files per process. CPU and RAM are one small read each.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::module_format::{parse_cpu, parse_procs, parse_ram, ParseError};
use super::{CpuTimes, Memory, ProcessStat, Source, SourceError, SourceKind};

/// Where the module puts its files.
pub const PROC_DIR: &str = "/proc/vigia";

/// Reads /proc/vigia. Keeps one buffer across reads so that a steady
/// process table costs no allocation for the raw text.
pub struct ModuleSource {
    dir: PathBuf,
    buf: Vec<u8>,
}

impl ModuleSource {
    /// Whether the module is loaded (its directory exists).
    pub fn available() -> bool {
        Path::new(PROC_DIR).join("procs").exists()
    }

    /// The module's files under /proc/vigia; fails when it is not loaded.
    pub fn open() -> Result<Self, SourceError> {
        Self::open_dir(PROC_DIR)
    }

    /// The module's files under `dir` (tests point this at fixtures).
    pub fn open_dir(dir: impl Into<PathBuf>) -> Result<Self, SourceError> {
        let dir = dir.into();
        let probe = dir.join("procs");
        if !probe.exists() {
            return Err(SourceError::Read {
                what: "the vigia kernel module",
                message: format!(
                    "{} does not exist: the module is not loaded (see kernel-module/README.md)",
                    probe.display()
                ),
            });
        }
        Ok(Self {
            dir,
            buf: Vec::with_capacity(64 * 1024),
        })
    }

    /// Reads one file whole. The module serves each file from one snapshot,
    /// so reading to the end gives a consistent text.
    fn read(&mut self, name: &'static str) -> Result<&[u8], SourceError> {
        let path = self.dir.join(name);
        self.buf.clear();
        File::open(&path)
            .and_then(|mut f| f.read_to_end(&mut self.buf))
            .map_err(|e| SourceError::Read {
                what: name,
                message: format!("{}: {e}", path.display()),
            })?;
        Ok(&self.buf)
    }

    fn format_error(&self, name: &str, e: ParseError) -> SourceError {
        SourceError::Format {
            path: self.dir.join(name).display().to_string(),
            message: e.to_string(),
        }
    }
}

impl Source for ModuleSource {
    fn kind(&self) -> SourceKind {
        SourceKind::Module
    }

    fn cpu(&mut self) -> Result<CpuTimes, SourceError> {
        let parsed = parse_cpu(self.read("cpu")?);
        parsed
            .map(|c| c.times)
            .map_err(|e| self.format_error("cpu", e))
    }

    fn memory(&mut self) -> Result<Memory, SourceError> {
        let parsed = parse_ram(self.read("ram")?);
        let ram = parsed.map_err(|e| self.format_error("ram", e))?;
        let mut memory = ram.memory;
        if ram.swap_total.is_none() {
            // A kernel with swap support does not export the swap total to
            // modules; /proc/meminfo has it (FORMAT.md).
            memory.swap_total = swap_total_from_meminfo()?;
        }
        Ok(memory)
    }

    fn processes(&mut self) -> Result<Vec<ProcessStat>, SourceError> {
        let parsed = parse_procs(self.read("procs")?);
        parsed.map_err(|e| self.format_error("procs", e))
    }
}

fn swap_total_from_meminfo() -> Result<u64, SourceError> {
    use procfs::Current;
    procfs::Meminfo::current()
        .map(|m| m.swap_total)
        .map_err(|e| SourceError::read("/proc/meminfo", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixtures() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/module")
    }

    #[test]
    fn reads_captured_module_files() {
        let mut source = ModuleSource::open_dir(fixtures()).unwrap();
        assert_eq!(source.kind(), SourceKind::Module);
        assert_eq!(source.cpu().unwrap().per_cpu.len(), 2);
        assert_eq!(source.memory().unwrap().total, 2_037_208 * 1024);
        assert!(source.processes().unwrap().iter().any(|p| p.pid == 1));
    }

    #[test]
    fn missing_module_is_a_clear_error() {
        let err = ModuleSource::open_dir("/nonexistent/vigia").err().unwrap();
        assert!(err.to_string().contains("not loaded"), "{err}");
    }
}
