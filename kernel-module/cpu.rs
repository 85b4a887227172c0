// SPDX-License-Identifier: GPL-2.0

//! `/proc/vigia/cpu`: cumulative time per CPU state, in nanoseconds, for all
//! CPUs together and for each one, and the running and total task counts.
//! The counters are those /proc/stat prints (kernel_cpustat, with idle and
//! iowait from the tick code when it tracks them), unscaled. Format: FORMAT.md.

use crate::ffi;
use crate::rcu::RcuReadGuard;
use crate::seq::SeqFile;
use crate::task::processes;
use core::fmt::Write;
use kernel::bindings;
use kernel::prelude::*;

/// Column order of every `cpu` line.
pub(crate) const STATES: usize = 8;
const HEADER: &str = "vigia-cpu 1\ncolumns user nice system idle iowait irq softirq steal\n";

/// Times of one CPU in nanoseconds, in `HEADER`'s column order, and
/// whether it is online.
fn cpu_times(cpu: u32) -> ([u64; STATES], bool) {
    // SAFETY: kernel_cpustat is plain old data; all-zero is a valid value.
    let mut kcs: bindings::kernel_cpustat = unsafe { core::mem::zeroed() };
    let cpu_int = cpu as i32; // cpu < nr_cpu_ids <= NR_CPUS, fits an int
    // SAFETY: `cpu` is a possible CPU; kcpustat_cpu_fetch() copies its
    // per-CPU counters into `kcs` (with the vtime seqcount when needed).
    unsafe { ffi::vigia_kcpustat_fetch(&mut kcs, cpu_int) };
    let c = &kcs.cpustat;
    // SAFETY: cpu_online() reads the online mask; no precondition.
    let online = unsafe { ffi::vigia_cpu_online(cpu) } != 0;
    // As fs/proc/stat.c's get_idle_time()/get_iowait_time(): an online CPU
    // whose tick code tracks idle time (NO_HZ) reports it in microseconds;
    // otherwise (-1) the cpustat counter is authoritative.
    let tick_us = |us: u64| if online && us != u64::MAX { Some(us * 1000) } else { None };
    // SAFETY: `cpu` is a possible CPU; no precondition otherwise.
    let idle = tick_us(unsafe { ffi::vigia_cpu_idle_time_us(cpu_int) });
    // SAFETY: as above.
    let iowait = tick_us(unsafe { ffi::vigia_cpu_iowait_time_us(cpu_int) });
    let at = |i: bindings::cpu_usage_stat| c[i as usize];
    let times = [
        at(bindings::cpu_usage_stat_CPUTIME_USER),
        at(bindings::cpu_usage_stat_CPUTIME_NICE),
        at(bindings::cpu_usage_stat_CPUTIME_SYSTEM),
        idle.unwrap_or(at(bindings::cpu_usage_stat_CPUTIME_IDLE)),
        iowait.unwrap_or(at(bindings::cpu_usage_stat_CPUTIME_IOWAIT)),
        at(bindings::cpu_usage_stat_CPUTIME_IRQ),
        at(bindings::cpu_usage_stat_CPUTIME_SOFTIRQ),
        at(bindings::cpu_usage_stat_CPUTIME_STEAL),
    ];
    (times, online)
}

/// The possible CPUs (for_each_possible_cpu), as /proc/stat lists them.
fn possible_cpus() -> impl Iterator<Item = u32> {
    // SAFETY: nr_cpu_ids is fixed after boot.
    let nr = unsafe { ffi::vigia_nr_cpu_ids() };
    let mut prev: i32 = -1;
    core::iter::from_fn(move || {
        // SAFETY: cpumask_next() accepts -1..nr_cpu_ids and returns
        // >= nr_cpu_ids after the last set bit.
        let cpu = unsafe { ffi::vigia_next_possible_cpu(prev) };
        if cpu >= nr {
            return None;
        }
        prev = cpu as i32;
        Some(cpu)
    })
}

fn write_line(seq: &mut SeqFile, label: core::fmt::Arguments<'_>, t: &[u64; STATES]) {
    // SeqFile's fmt::Write never fails: an overflow is handled by the core.
    let _ = writeln!(
        seq,
        "{} {} {} {} {} {} {} {} {}",
        label, t[0], t[1], t[2], t[3], t[4], t[5], t[6], t[7]
    );
}

pub(crate) fn show(seq: &mut SeqFile) -> Result {
    seq.write(HEADER.as_bytes());
    // As /proc/stat: the total covers every possible CPU, a line is printed
    // for each online one. The lines are kept so that the total, which comes
    // first, is read at the same moment as them. On the heap: NR_CPUS can
    // be 8192 on a distribution kernel, far too much for a kernel stack.
    let mut per_cpu = KVec::new();
    let mut total = [0u64; STATES];
    for cpu in possible_cpus() {
        let (t, online) = cpu_times(cpu);
        for (sum, v) in total.iter_mut().zip(t) {
            *sum = sum.wrapping_add(v);
        }
        if online {
            per_cpu.push((cpu, t), GFP_KERNEL)?;
        }
    }
    write_line(seq, format_args!("cpu"), &total);
    for (cpu, t) in per_cpu.iter() {
        write_line(seq, format_args!("cpu{}", cpu), t);
    }

    // nr_running() and nr_threads are not exported to modules: count the
    // threads, and those in state R, in one RCU walk of the task list.
    let (mut running, mut total_tasks) = (0u64, 0u64);
    {
        let rcu = RcuReadGuard::new();
        for process in processes(&rcu) {
            for thread in process.thread_iter() {
                total_tasks += 1;
                if thread.state() == b'R' {
                    running += 1;
                }
            }
        }
    }
    let _ = writeln!(seq, "tasks_running {}\ntasks_total {}", running, total_tasks);

    // Load averages in thousandths, rounded (avenrun has 11 fraction bits).
    let load = |i: usize| {
        // SAFETY: avenrun is an exported array of 3 longs that the load
        // tracker overwrites whole words of; get_avenrun() reads it plainly.
        let v = unsafe { core::ptr::read_volatile(core::ptr::addr_of!(ffi::avenrun[i])) };
        (v as u64 * 1000 + (1 << 10)) >> 11
    };
    let _ = writeln!(seq, "loadavg_milli {} {} {}", load(0), load(1), load(2));
    Ok(())
}
