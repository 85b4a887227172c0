// SPDX-License-Identifier: GPL-2.0

//! `/proc/vigia/ram`: the memory figures of /proc/meminfo, in KiB, computed
//! the way fs/proc/meminfo.c computes them. Format: FORMAT.md.

use crate::ffi;
use crate::seq::SeqFile;
use core::fmt::Write;
use kernel::bindings;

/// KiB per page.
const PAGE_KIB: u64 = 1 << (bindings::PAGE_SHIFT - 10);

pub(crate) fn show(seq: &mut SeqFile) {
    // SAFETY: sysinfo is plain old data; all-zero is a valid value.
    let mut si: bindings::sysinfo = unsafe { core::mem::zeroed() };
    // SAFETY: si_meminfo() fills the struct it is given; it takes no lock
    // that could sleep.
    unsafe { bindings::si_meminfo(&mut si) };
    // SAFETY: no precondition; sums vmstat counters.
    let available = unsafe { bindings::si_mem_available() };
    // As meminfo's "Cached": file pages not in the swap cache nor buffers.
    // SAFETY: both read global vmstat counters; no precondition.
    let (file, swapcache) = unsafe { (ffi::vigia_file_pages(), ffi::vigia_swapcache_pages()) };
    let cached = (file as i64) - (swapcache as i64) - (si.bufferram as i64);
    // SAFETY: reads a global vmstat counter; no precondition.
    let slab_reclaimable = unsafe { ffi::vigia_slab_reclaimable_pages() };
    // SAFETY: reads the global atomic counter of free swap pages.
    let swap_free = unsafe { ffi::vigia_free_swap_pages() };

    // c_ulong is usize, which is 64 bits on every arch Rust modules build for.
    let kib = |pages: usize| pages as u64 * PAGE_KIB;
    let _ = write!(
        seq,
        "vigia-ram 1\ntotal_kib {}\nfree_kib {}\navailable_kib {}\nbuffers_kib {}\n\
         cached_kib {}\nshared_kib {}\nslab_reclaimable_kib {}\n",
        kib(si.totalram),
        kib(si.freeram),
        kib(available.max(0) as usize),
        kib(si.bufferram),
        kib(cached.max(0) as usize),
        kib(si.sharedram),
        kib(slab_reclaimable),
    );
    // The total of swap (si_swapinfo(), total_swap_pages) is not exported to
    // modules. Without CONFIG_SWAP it is known to be 0; with it, the line is
    // left out and FORMAT.md tells readers to take SwapTotal from meminfo.
    if !cfg!(CONFIG_SWAP) {
        let _ = writeln!(seq, "swap_total_kib 0");
    }
    let _ = writeln!(seq, "swap_free_kib {}", kib(swap_free.max(0) as usize));
}
