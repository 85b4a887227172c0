//! What must never be signalled, whoever asks.
//!
//! The rules run in two steps: [`Policy::check_pid`] on the number alone
//! (before /proc is read), then [`Policy::check_target`] on what /proc says
//! the pid is. Every refusal is a sentence an operator can act on.

use std::path::Path;

use super::target::Target;

/// Names refused when `--deny` is not given: the way into the host, its
/// init, and the publisher itself (another instance, or this one restarted
/// under a new pid). OpenSSH 9.8 and later run each login as a process of
/// its own, `sshd-session` (and authenticate in `sshd-auth`): killing one
/// cuts an operator off as surely as killing `sshd`. Names match exactly,
/// so each is listed rather than matched by an `sshd*` prefix that would
/// also cover unrelated programs.
pub const DEFAULT_DENY: &[&str] = &[
    "sshd",
    "sshd-session",
    "sshd-auth",
    "systemd",
    "vigia-publisher",
];

/// The publisher's own rules.
#[derive(Debug, Clone)]
pub struct Policy {
    enabled: bool,
    deny: Vec<String>,
    own_pid: i32,
}

impl Policy {
    /// `enabled` is false under `--no-control`. `deny` entries match a
    /// process name (`comm`) or its executable's file name exactly, or by
    /// prefix when they end with `*` (`systemd*`).
    pub fn new(enabled: bool, deny: Vec<String>) -> Self {
        Self {
            enabled,
            deny: deny
                .into_iter()
                .map(|d| d.trim().to_owned())
                .filter(|d| !d.is_empty())
                .collect(),
            own_pid: std::process::id() as i32,
        }
    }

    /// Refuses everything when control is off.
    pub fn check_enabled(&self) -> Result<(), String> {
        if self.enabled {
            Ok(())
        } else {
            Err(
                "process control is disabled on this host (vigia-publisher runs with --no-control)"
                    .into(),
            )
        }
    }

    /// Rules on the number alone. Returns the pid as the kernel's type.
    pub fn check_pid(&self, pid: i64) -> Result<i32, String> {
        if pid <= 0 {
            // kill(2) reads 0 and negative numbers as process groups and
            // "everyone": never what a per-process command means.
            return Err(format!(
                "pid {pid} is not a process (0 and negative pids address process groups)"
            ));
        }
        let Ok(pid) = i32::try_from(pid) else {
            return Err(format!("no process with pid {pid}"));
        };
        if pid == 1 {
            return Err("pid 1 is init; it is never signalled".into());
        }
        if pid == self.own_pid || is_own_thread(pid) {
            return Err(format!(
                "pid {pid} is vigia-publisher itself; stop it through its service manager"
            ));
        }
        if pid == std::os::unix::process::parent_id() as i32 {
            return Err(format!(
                "pid {pid} is vigia-publisher's parent (its supervisor); it is never signalled"
            ));
        }
        Ok(pid)
    }

    /// Rules on what the pid turned out to be.
    pub fn check_target(&self, target: &Target) -> Result<(), String> {
        if target.is_kernel_thread() {
            return Err(format!(
                "pid {} ({}) is a kernel thread; signals do not stop kernel threads",
                target.pid, target.name
            ));
        }
        if target.tgid != target.pid {
            return Err(format!(
                "pid {} is a thread of process {}; signal the process",
                target.pid, target.tgid
            ));
        }
        let names = std::iter::once(target.name.as_str()).chain(target.exe_name.as_deref());
        for name in names {
            if let Some(rule) = self.deny.iter().find(|rule| matches(rule, name)) {
                return Err(format!(
                    "pid {} ({}) is protected by the deny list (rule {rule:?})",
                    target.pid, target.name
                ));
            }
        }
        Ok(())
    }
}

fn matches(rule: &str, name: &str) -> bool {
    match rule.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => name == rule,
    }
}

/// Whether `pid` is one of this process's threads: their ids name /proc
/// entries too, and a signal to one reaches the whole publisher.
fn is_own_thread(pid: i32) -> bool {
    Path::new("/proc/self/task").join(pid.to_string()).exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Policy {
        Policy::new(
            true,
            DEFAULT_DENY
                .iter()
                .map(|s| s.to_string())
                .chain(["kube*".to_string()])
                .collect(),
        )
    }

    fn target(pid: i32, name: &str) -> Target {
        Target {
            pid,
            name: name.into(),
            exe_name: None,
            ppid: 100,
            tgid: pid,
            flags: 0,
        }
    }

    #[test]
    fn pids_that_are_never_signalled() {
        let p = policy();
        for (pid, says) in [
            (0, "not a process"),
            (-1, "not a process"),
            (-1234, "not a process"),
            (1, "init"),
            (i64::from(i32::MAX) + 1, "no process"),
            (std::process::id() as i64, "itself"),
            (std::os::unix::process::parent_id() as i64, "parent"),
        ] {
            let e = p.check_pid(pid).unwrap_err();
            assert!(e.contains(says), "pid {pid}: {e}");
        }
        assert_eq!(p.check_pid(4242), Ok(4242));
    }

    #[test]
    fn own_threads_are_refused() {
        let p = policy();
        crate::control::with_other_thread(|tid| {
            let e = p.check_pid(i64::from(tid)).unwrap_err();
            assert!(e.contains("itself"), "{e}");
        });
    }

    #[test]
    fn deny_list_by_name_exe_or_prefix() {
        let p = policy();
        for name in [
            "sshd",
            "sshd-session",
            "sshd-auth",
            "systemd",
            "vigia-publisher",
            "kubelet",
        ] {
            let e = p.check_target(&target(500, name)).unwrap_err();
            assert!(e.contains("deny list"), "{name}: {e}");
        }
        // comm renamed, executable still sshd.
        let renamed = Target {
            exe_name: Some("sshd".into()),
            ..target(501, "sshd: alice")
        };
        assert!(p.check_target(&renamed).is_err());
        assert!(p.check_target(&target(502, "sleep")).is_ok());
        // Exact match unless the rule ends in '*'.
        assert!(p.check_target(&target(503, "systemd-journal")).is_ok());
        assert!(p.check_target(&target(504, "sshd2")).is_ok());
        assert!(p.check_target(&target(505, "sshd-sessionx")).is_ok());
        assert!(p.check_target(&target(506, "sshd-aut")).is_ok());
    }

    #[test]
    fn kernel_threads_and_other_threads_are_refused() {
        let p = policy();
        let kworker = Target {
            ppid: 2,
            ..target(600, "kworker/0:1")
        };
        assert!(p
            .check_target(&kworker)
            .unwrap_err()
            .contains("kernel thread"));
        let thread = Target {
            tgid: 700,
            ..target(701, "worker")
        };
        assert!(p
            .check_target(&thread)
            .unwrap_err()
            .contains("thread of process 700"));
    }

    #[test]
    fn disabled_refuses_everything() {
        let p = Policy::new(false, vec![]);
        assert!(p.check_enabled().unwrap_err().contains("--no-control"));
        assert!(policy().check_enabled().is_ok());
    }

    #[test]
    fn blank_rules_are_dropped() {
        let p = Policy::new(true, vec![" sshd ".into(), "".into(), "  ".into()]);
        assert_eq!(p.deny, ["sshd"]);
    }
}
