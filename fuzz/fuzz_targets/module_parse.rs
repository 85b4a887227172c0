//! The publisher's parsers of the kernel module's /proc/vigia text files
//! (`source::module_format`: `parse_cpu`, `parse_ram`, `parse_procs`), and
//! the rates the publisher then computes from what they return.
//!
//! Every input goes to all three parsers; each rejects the others' headers
//! at once. Beyond "never panics":
//! - cpu: at least one CPU; two readings turn into finite percentages;
//! - ram: `available` never exceeds `total`, and `used` follows from them;
//! - procs: one process per line after the two header lines, each name
//!   escaped as the module would escape it parses back to itself, and a
//!   snapshot turns into finite percentages.
#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use vigia_publisher::rates::{ram_body, CpuRates, ProcessRates};
use vigia_publisher::source::module_format::{parse_cpu, parse_procs, parse_ram, unescape_name};
use vigia_publisher::source::{CpuCounters, CpuTimes};
use vigia_publisher::users::UserNames;

/// The module's escaping (kernel-module/FORMAT.md): every byte <= 0x20,
/// 0x7f and the backslash as `\ooo`, every other byte as is.
fn escape(name: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(name.len());
    for &b in name.as_bytes() {
        if b <= b' ' || b == 0x7f || b == b'\\' {
            out.extend_from_slice(format!("\\{b:03o}").as_bytes());
        } else {
            out.push(b);
        }
    }
    out
}

fn assert_pct(what: &str, v: f32) {
    assert!(v.is_finite() && v >= 0.0, "{what} is {v}");
}

fuzz_target!(|data: &[u8]| {
    if let Ok(cpu) = parse_cpu(data) {
        let cpus = cpu.times.per_cpu.len();
        assert!(cpus > 0, "a cpu file without a CPU parsed");
        let mut rates = CpuRates::default();
        let zero = CpuTimes {
            all: CpuCounters::default(),
            per_cpu: vec![CpuCounters::default(); cpus],
            load: cpu.times.load,
        };
        assert!(rates.next(zero).is_none());
        let body = rates.next(cpu.times).expect("a second reading has rates");
        assert_eq!(body.cpus as usize, cpus);
        for (what, v) in [
            ("busy_pct", body.busy_pct),
            ("user_pct", body.user_pct),
            ("system_pct", body.system_pct),
            ("iowait_pct", body.iowait_pct),
            ("steal_pct", body.steal_pct),
            ("idle_pct", body.idle_pct),
        ] {
            assert_pct(what, v);
        }
        for &v in &body.per_cpu_busy_pct {
            assert_pct("per_cpu_busy_pct", v);
        }
    }

    if let Ok(ram) = parse_ram(data) {
        let m = ram.memory;
        assert!(m.available <= m.total, "available above total: {m:?}");
        assert_eq!(m.swap_total, ram.swap_total.unwrap_or(0));
        let body = ram_body(&m);
        assert_eq!(body.used, m.total - m.available);
    }

    if let Ok(processes) = parse_procs(data) {
        let lines = data.iter().filter(|&&b| b == b'\n').count();
        assert_eq!(processes.len() + 2, lines, "one process per line");
        for p in &processes {
            let escaped = escape(&p.name);
            assert_eq!(unescape_name(&escaped).as_deref(), Ok(p.name.as_str()));
        }
        let mem_total = processes.iter().map(|p| p.rss_bytes).max().unwrap_or(0);
        let mut rates = ProcessRates::new(UserNames::from_file("/dev/null"), 0);
        let start = Instant::now();
        rates.next(processes.clone(), start, mem_total);
        let body = rates.next(processes, start + Duration::from_secs(1), mem_total);
        for e in &body.processes {
            assert_pct("cpu_pct", e.cpu_pct);
            assert_pct("mem_pct", e.mem_pct);
        }
    }
});
