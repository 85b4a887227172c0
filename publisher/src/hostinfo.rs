//! What a host is: its name, kernel, OS and boot time, for `hello`.

use procfs::Current;

/// The kernel's host name (what `hostname` prints).
pub fn hostname() -> std::io::Result<String> {
    Ok(std::fs::read_to_string("/proc/sys/kernel/hostname")?
        .trim()
        .to_owned())
}

/// Kernel release, as `uname -r`.
pub fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

/// PRETTY_NAME from /etc/os-release, or "Linux".
pub fn os_name() -> String {
    std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|text| pretty_name(&text))
        .unwrap_or_else(|| "Linux".to_owned())
}

fn pretty_name(os_release: &str) -> Option<String> {
    os_release.lines().find_map(|line| {
        let value = line.strip_prefix("PRETTY_NAME=")?;
        Some(value.trim_matches('"').to_owned())
    })
}

/// When the host booted, unix nanoseconds (from /proc/stat's btime).
pub fn boot_time_ns() -> i64 {
    procfs::boot_time_secs()
        .map(|s| s as i64 * 1_000_000_000)
        .unwrap_or(0)
}

/// Total RAM in bytes, 0 when /proc/meminfo cannot be read.
pub fn ram_total() -> u64 {
    procfs::Meminfo::current().map(|m| m.mem_total).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_pretty_name() {
        let text = "NAME=\"Debian GNU/Linux\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n";
        assert_eq!(
            pretty_name(text).as_deref(),
            Some("Debian GNU/Linux 12 (bookworm)")
        );
        assert_eq!(pretty_name("NAME=x\n"), None);
    }

    #[test]
    fn this_host_has_a_name_and_a_kernel() {
        assert!(!hostname().unwrap().is_empty());
        assert!(!kernel_release().is_empty());
        assert!(boot_time_ns() > 0);
    }
}
