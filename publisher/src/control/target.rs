//! What a pid is, read from /proc just before it is signalled: its name,
//! its parent, whether it is a kernel thread, and which process it belongs
//! to (a thread id also names a /proc entry, and a signal to it reaches its
//! whole process).

use std::path::Path;

use procfs::process::Process;
use procfs::ProcError;

/// `PF_KTHREAD` in the flags field of /proc/<pid>/stat: set on every kernel
/// thread (include/linux/sched.h).
pub const PF_KTHREAD: u32 = 0x0020_0000;
/// kthreadd, the parent of every kernel thread.
pub const KTHREADD: i32 = 2;

/// A live process as /proc shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub pid: i32,
    /// `comm`: at most 15 bytes, what ps and top show.
    pub name: String,
    /// The file name of the executable, when /proc lets us read it (not
    /// for kernel threads, nor for other users' processes without
    /// privilege).
    pub exe_name: Option<String>,
    pub ppid: i32,
    /// The process (thread group) this pid belongs to; equal to `pid` for
    /// a process, different for one of its threads.
    pub tgid: i32,
    pub flags: u32,
}

impl Target {
    pub fn is_kernel_thread(&self) -> bool {
        self.flags & PF_KTHREAD != 0 || self.pid == KTHREADD || self.ppid == KTHREADD
    }
}

/// Why a pid could not be inspected.
#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    #[error("no process with pid {0}")]
    Missing(i32),
    #[error("cannot read /proc/{pid}: {message}")]
    Unreadable { pid: i32, message: String },
}

/// Reads `pid`'s entry. A process that exits during the read is missing,
/// like one that never existed.
pub fn inspect(pid: i32) -> Result<Target, InspectError> {
    let unreadable = |e: ProcError| match e {
        ProcError::NotFound(_) => InspectError::Missing(pid),
        other => InspectError::Unreadable {
            pid,
            message: other.to_string(),
        },
    };
    let process = Process::new(pid).map_err(unreadable)?;
    let stat = process.stat().map_err(unreadable)?;
    let status = process.status().map_err(unreadable)?;
    let exe_name = process.exe().ok().and_then(|path| {
        Path::new(&path)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
    });
    Ok(Target {
        pid,
        name: stat.comm,
        exe_name,
        ppid: stat.ppid,
        tgid: status.tgid,
        flags: stat.flags,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let me = std::process::id() as i32;
        let t = inspect(me).unwrap();
        assert_eq!(t.pid, me);
        assert_eq!(t.tgid, me);
        assert_eq!(t.ppid, std::os::unix::process::parent_id() as i32);
        assert!(!t.is_kernel_thread());
        assert!(!t.name.is_empty());
    }

    #[test]
    fn kthreadd_is_a_kernel_thread() {
        // Inside a pid namespace (a container) pid 2 may be anything or
        // nothing; only where it is kthreadd can it be checked.
        if let Ok(t) = inspect(KTHREADD) {
            if t.name == "kthreadd" {
                assert!(t.is_kernel_thread());
                assert_ne!(t.flags & PF_KTHREAD, 0);
            }
        }
        let spawned = Target {
            pid: 4321,
            name: "kworker/0:1".into(),
            exe_name: None,
            ppid: KTHREADD,
            tgid: 4321,
            flags: 0,
        };
        assert!(spawned.is_kernel_thread());
        let flagged = Target {
            ppid: 0,
            flags: PF_KTHREAD,
            ..spawned
        };
        assert!(flagged.is_kernel_thread());
    }

    #[test]
    fn a_missing_pid_is_missing() {
        // pid_max is at most 2^22; this pid cannot exist.
        let pid = i32::MAX;
        assert!(matches!(inspect(pid), Err(InspectError::Missing(p)) if p == pid));
    }

    #[test]
    fn a_thread_names_its_process() {
        let me = std::process::id() as i32;
        crate::control::with_other_thread(|tid| {
            let t = inspect(tid).unwrap();
            assert_eq!(t.tgid, me);
            assert_ne!(t.pid, me);
        });
    }
}
