// SPDX-License-Identifier: GPL-2.0

//! Declarations of the C functions vigia calls that `kernel::bindings` lacks:
//! the one-line wrappers of `vigia_helpers.c` and a few exported kernel
//! functions whose headers (`linux/proc_fs.h`, `linux/sched/cputime.h`) the
//! 6.12 bindings do not include. Signatures copied from those headers.

// Only pointers to these structs cross the boundary, but rustc still flags
// `task_struct` because it embeds structs that are empty in some configs
// (`sched_statistics` without SCHEDSTATS). `kernel::bindings` allows the
// same lint for the same reason.
#![allow(improper_ctypes)]

use kernel::bindings::{
    kernel_cpustat, mm_struct, proc_dir_entry, seq_file, signal_struct, task_struct,
};
use kernel::ffi::{c_char, c_int, c_long, c_uint, c_ulong, c_ushort, c_void};

/// `int (*show)(struct seq_file *, void *)` of a single-record seq_file.
pub(crate) type ShowFn = unsafe extern "C" fn(*mut seq_file, *mut c_void) -> c_int;

extern "C" {
    // linux/proc_fs.h (exported by fs/proc/generic.c).
    pub(crate) fn proc_mkdir(name: *const c_char, parent: *mut proc_dir_entry)
        -> *mut proc_dir_entry;
    pub(crate) fn proc_create_single_data(
        name: *const c_char,
        mode: c_ushort,
        parent: *mut proc_dir_entry,
        show: Option<ShowFn>,
        data: *mut c_void,
    ) -> *mut proc_dir_entry;
    pub(crate) fn proc_remove(de: *mut proc_dir_entry);

    // linux/sched/loadavg.h (exported by kernel/sched/loadavg.c): the load
    // averages in fixed point, FSHIFT (11) fractional bits.
    pub(crate) static avenrun: [c_ulong; 3];

    // linux/sched/cputime.h (exported by kernel/sched/cputime.c).
    pub(crate) fn task_cputime_adjusted(p: *mut task_struct, ut: *mut u64, st: *mut u64);

    // vigia_helpers.c
    pub(crate) fn vigia_rcu_read_lock();
    pub(crate) fn vigia_rcu_read_unlock();
    pub(crate) fn vigia_next_process(p: *mut task_struct) -> *mut task_struct;
    pub(crate) fn vigia_first_thread(p: *mut task_struct) -> *mut task_struct;
    pub(crate) fn vigia_next_thread(t: *mut task_struct) -> *mut task_struct;
    pub(crate) fn vigia_task_ppid(p: *mut task_struct) -> c_int;
    pub(crate) fn vigia_task_uid(p: *mut task_struct) -> c_uint;
    pub(crate) fn vigia_task_state_char(p: *mut task_struct) -> c_char;
    pub(crate) fn vigia_task_lock(p: *mut task_struct);
    pub(crate) fn vigia_task_unlock(p: *mut task_struct);
    pub(crate) fn vigia_mm_rss_pages(mm: *mut mm_struct) -> c_ulong;
    pub(crate) fn vigia_stats_read_begin(sig: *mut signal_struct) -> c_uint;
    pub(crate) fn vigia_stats_read_retry(sig: *mut signal_struct, seq: c_uint) -> c_int;
    pub(crate) fn vigia_nr_cpu_ids() -> c_uint;
    pub(crate) fn vigia_next_possible_cpu(cpu: c_int) -> c_uint;
    pub(crate) fn vigia_cpu_online(cpu: c_uint) -> c_int;
    pub(crate) fn vigia_kcpustat_fetch(dst: *mut kernel_cpustat, cpu: c_int);
    pub(crate) fn vigia_cpu_idle_time_us(cpu: c_int) -> u64;
    pub(crate) fn vigia_cpu_iowait_time_us(cpu: c_int) -> u64;
    pub(crate) fn vigia_file_pages() -> c_ulong;
    pub(crate) fn vigia_slab_reclaimable_pages() -> c_ulong;
    pub(crate) fn vigia_swapcache_pages() -> c_ulong;
    pub(crate) fn vigia_free_swap_pages() -> c_long;
}
